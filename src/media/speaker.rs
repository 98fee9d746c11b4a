//! Active-speaker detection from RFC 6464 audio levels. Pure: levels and time are inputs.
//!
//! Each site's level is a smoothed loudness in 0.0..=1.0 (see [`loudness`]). The loudest
//! eligible site (present, not muted) above a threshold becomes the active speaker only after
//! it has stayed loudest for a short while, and a speaker is kept through short pauses, so
//! the highlight does not flicker between sites on every syllable.

/// dBov at or below which a site counts as silent (a quiet room sits around -60 dBov).
const SILENCE_DBOV: f32 = 60.0;

/// Maps an RFC 6464 level (0 = 0 dBov, loudest … 127 = silence) to loudness 0.0..=1.0.
pub fn loudness(level_dbov: u8) -> f32 {
    ((SILENCE_DBOV - level_dbov as f32) / SILENCE_DBOV).clamp(0.0, 1.0)
}

/// Parses the one-byte RFC 6464 payload: V flag in the top bit, level in the low seven.
pub fn level_from_extension(payload: &[u8]) -> Option<u8> {
    payload.first().map(|b| b & 0x7f)
}

#[derive(Debug, Clone)]
pub(crate) struct SpeakerDetector {
    current: Option<usize>,
    candidate: Option<(usize, i64)>,
    last_heard_ms: i64,
    /// Loudness a site needs to count as speaking.
    pub(crate) threshold: f32,
    /// How long a new site must stay loudest before it takes over.
    pub(crate) switch_after_ms: i64,
    /// How long the current speaker is kept through silence.
    pub(crate) hold_ms: i64,
}

impl Default for SpeakerDetector {
    fn default() -> Self {
        Self { current: None, candidate: None, last_heard_ms: 0, threshold: 0.25, switch_after_ms: 600, hold_ms: 1500 }
    }
}

impl SpeakerDetector {
    pub(crate) fn current(&self) -> Option<usize> {
        self.current
    }

    /// Feeds the current levels (index = site) and which sites may be chosen; returns the
    /// active speaker after this update.
    pub(crate) fn update(&mut self, now_ms: i64, levels: &[f32], eligible: &[bool]) -> Option<usize> {
        let loudest = levels
            .iter()
            .enumerate()
            .filter(|(i, l)| eligible.get(*i).copied().unwrap_or(false) && **l >= self.threshold)
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map(|(i, _)| i);
        if let Some(c) = self.current {
            if !eligible.get(c).copied().unwrap_or(false) {
                self.current = None;
            }
        }
        match loudest {
            None => {
                self.candidate = None;
                if self.current.is_some() && now_ms - self.last_heard_ms > self.hold_ms {
                    self.current = None;
                }
            }
            Some(site) if Some(site) == self.current => {
                self.candidate = None;
                self.last_heard_ms = now_ms;
            }
            Some(site) => {
                if self.current.is_none() {
                    // Nobody is speaking: take the first voice at once.
                    self.current = Some(site);
                    self.candidate = None;
                    self.last_heard_ms = now_ms;
                } else {
                    match self.candidate {
                        Some((c, since)) if c == site => {
                            if now_ms - since >= self.switch_after_ms {
                                self.current = Some(site);
                                self.candidate = None;
                                self.last_heard_ms = now_ms;
                            }
                        }
                        _ => self.candidate = Some((site, now_ms)),
                    }
                }
            }
        }
        self.current
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [bool; 3] = [true, true, true];

    #[test]
    fn loudness_maps_dbov_to_a_unit_scale() {
        assert_eq!(loudness(0), 1.0);
        assert_eq!(loudness(30), 0.5);
        assert_eq!(loudness(60), 0.0);
        assert_eq!(loudness(127), 0.0);
        assert_eq!(level_from_extension(&[0x80 | 42]), Some(42));
        assert_eq!(level_from_extension(&[]), None);
    }

    #[test]
    fn the_first_voice_becomes_the_speaker_at_once() {
        let mut d = SpeakerDetector::default();
        assert_eq!(d.update(0, &[0.0, 0.0, 0.0], &ALL), None);
        assert_eq!(d.update(250, &[0.0, 0.7, 0.1], &ALL), Some(1));
    }

    #[test]
    fn a_louder_site_takes_over_only_after_staying_loudest() {
        let mut d = SpeakerDetector::default();
        d.update(0, &[0.6, 0.0, 0.0], &ALL);
        assert_eq!(d.update(250, &[0.5, 0.8, 0.0], &ALL), Some(0), "one loud burst is not enough");
        assert_eq!(d.update(500, &[0.5, 0.8, 0.0], &ALL), Some(0));
        assert_eq!(d.update(850, &[0.5, 0.8, 0.0], &ALL), Some(1), "600 ms loudest: switch");
    }

    #[test]
    fn the_speaker_is_kept_through_a_short_pause_then_dropped() {
        let mut d = SpeakerDetector::default();
        d.update(0, &[0.6, 0.0, 0.0], &ALL);
        assert_eq!(d.update(1000, &[0.0, 0.0, 0.0], &ALL), Some(0));
        assert_eq!(d.update(1600, &[0.0, 0.0, 0.0], &ALL), None);
    }

    #[test]
    fn muted_or_absent_sites_are_never_chosen() {
        let mut d = SpeakerDetector::default();
        assert_eq!(d.update(0, &[0.9, 0.4, 0.0], &[false, true, true]), Some(1));
        d.update(100, &[0.9, 0.4, 0.0], &[true, true, true]);
        assert_eq!(d.update(200, &[0.0, 0.9, 0.0], &[true, false, true]), None, "the speaker was muted");
    }
}
