//! Alarm rules for site link health: turns the per-site snapshots produced
//! once per second into raised and cleared alarms, with hysteresis so that a
//! flapping condition does not flood the technicians' board. It owns only the
//! rules and their per-site, per-kind timers, in str0m's sans-IO style: time
//! and snapshots are passed in, changes are returned. It must never read a
//! clock, measure media itself, do I/O, spawn threads or draw random numbers;
//! measurement belongs to the stats code and delivery to the caller.
//!
//! Why an alarm holds is a [`Reason`]: a stable code and its numbers, never a
//! sentence. The technicians' page words it in Vietnamese or English; its
//! `Display` is the English of logs and the event log.

use serde::Serialize;
use std::fmt;

/// What the bridge knows about one site at one evaluation.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct SiteSnapshot {
    /// The site holds its seat: connected, or `held` for it after its connection dropped.
    pub(crate) present: bool,
    /// The site's connection dropped and its seat is held for it to reconnect.
    pub(crate) held: bool,
    /// Age of the last RTP packet of any kind from the site; `None` = never.
    pub(crate) ms_since_last_media: Option<f64>,
    /// Audio packets per second received from the site.
    pub(crate) audio_in_pps: f64,
    /// Frames per second received from the site's camera.
    pub(crate) video_in_fps: f64,
    /// The site's camera is on, so video should flow.
    pub(crate) video_expected: bool,
    /// What the bridge knows of why video may be missing (a refused codec, say); shown on
    /// the frozen-video alarm.
    pub(crate) video_cause: Option<VideoCause>,
    /// The site's own page reports receiving HQ's audio; `None` = no report, or HQ sends
    /// none (absent or muted).
    pub(crate) receives_hq_audio: Option<bool>,
    /// HQ's page reports receiving this site's audio; `None` = no report, or the site sends
    /// none (muted).
    pub(crate) hq_receives_site_audio: Option<bool>,
    /// The site is not muted, so its audio should flow.
    pub(crate) audio_expected: bool,
    pub(crate) holds_floor: bool,
    /// Recent average loudness, 0.0 (silence) ..= 1.0.
    pub(crate) audio_level: Option<f64>,
    /// Inbound loss over the last interval.
    pub(crate) loss_percent: f64,
    pub(crate) rtt_ms: Option<f64>,
}

/// Alarm limits and hysteresis windows, all in milliseconds or percent.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Thresholds {
    pub(crate) dropped_after_ms: f64,
    pub(crate) floor_silent_after_ms: f64,
    pub(crate) loss_percent: f64,
    pub(crate) rtt_ms: f64,
    pub(crate) silence_level: f64,
    /// A condition must hold this long before it is raised.
    pub(crate) raise_after_ms: f64,
    /// A raised alarm must be healthy this long before it clears.
    pub(crate) clear_after_ms: f64,
    /// A page's "no audio arrives" is not evidence of one-way audio until this long after
    /// that direction's audio became expected (a join, an unmute, HQ's unmute, the first
    /// report of a page, media back after a stall): pages report every 3 s, over the last
    /// 3 s, and a newly received site has no earlier count to compare with.
    pub(crate) audio_grace_ms: f64,
}

/// The one-way-audio grace, from measurement: real Chromium pages' reports first show the
/// audio of a newly joined or unmuted site 3.6–6.1 s after the change, mostly 6.0 s (two
/// report periods; docs/operations.md, "Alarms"); 8 s leaves room for a loaded room PC.
pub(crate) const AUDIO_GRACE_MS: f64 = 8000.0;

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            dropped_after_ms: 3000.0,
            floor_silent_after_ms: 10_000.0,
            loss_percent: 5.0,
            rtt_ms: 300.0,
            silence_level: 0.02,
            raise_after_ms: 2000.0,
            clear_after_ms: 5000.0,
            audio_grace_ms: AUDIO_GRACE_MS,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum AlarmKind {
    SiteDropped,
    OneWayAudio,
    FloorHolderSilent,
    FrozenVideo,
    HighLoss,
    HighRtt,
}

impl AlarmKind {
    /// Evaluation and reporting order; `SiteDropped` comes first because it
    /// decides whether the others are suppressed.
    pub(crate) const ALL: [AlarmKind; 6] =
        [AlarmKind::SiteDropped, AlarmKind::OneWayAudio, AlarmKind::FloorHolderSilent, AlarmKind::FrozenVideo, AlarmKind::HighLoss, AlarmKind::HighRtt];

    /// Stable identifier for logs and the technicians' UI.
    pub(crate) fn code(&self) -> &'static str {
        match self {
            AlarmKind::SiteDropped => "site_dropped",
            AlarmKind::OneWayAudio => "one_way_audio",
            AlarmKind::FloorHolderSilent => "floor_holder_silent",
            AlarmKind::FrozenVideo => "frozen_video",
            AlarmKind::HighLoss => "high_loss",
            AlarmKind::HighRtt => "high_rtt",
        }
    }

    fn index(self) -> usize {
        self as usize
    }

    /// A dead link also starves video, loses packets and silences audio;
    /// reporting those as well would bury the one alarm that matters. They
    /// pause while SiteDropped is raised (including its clear window, so a
    /// reconnecting site does not flash symptoms) and while media is stalled
    /// or has never arrived, which is when a drop may still be on its way.
    fn suppressed_by_drop(self) -> bool {
        matches!(self, AlarmKind::FrozenVideo | AlarmKind::HighLoss | AlarmKind::OneWayAudio)
    }
}

/// Why an alarm holds, as a stable `code` with its numbers (rounded as shown). Serialised
/// as `{"code": "high_rtt", "ms": 530.0, "limit": 300.0}` for the technicians' page.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "code", rename_all = "snake_case")]
pub(crate) enum Reason {
    /// Connected, but nothing has arrived for `seconds`.
    NoMedia {
        seconds: f64,
    },
    /// Nothing has arrived since the site joined, `seconds` ago.
    NoMediaSinceJoining {
        seconds: f64,
    },
    /// The site's connection dropped (its seat is held for it); no media for `seconds`.
    ConnectionLost {
        seconds: f64,
    },
    SiteDoesNotHearHq,
    HqDoesNotHearSite,
    NoAudioEitherWay,
    FloorHolderSilent {
        level: f64,
        limit: f64,
    },
    FrozenVideo {
        cause: Option<VideoCause>,
    },
    HighLoss {
        percent: f64,
        limit: f64,
    },
    HighRtt {
        ms: f64,
        limit: f64,
    },
    /// The bridge's own `recording_failed` (raised by the monitor, not by these rules):
    /// the error as the operating system gave it.
    RecordingFailed {
        error: String,
    },
    /// The bridge's own `composition_failed`: recording `recording` could not be made into
    /// one watchable file (ffmpeg missing, failed or too slow); its per-site files stay.
    CompositionFailed {
        recording: String,
        error: String,
    },
    /// The bridge's own `storage_failed`: the store cannot write (its file and why). The
    /// meeting goes on; its events, minutes and sign-ins after a restart are at stake.
    StorageFailed {
        path: String,
        problem: crate::store::fault::Problem,
        error: String,
    },
    /// The site asked for more than one of its budgets allows (raised by the monitor from the
    /// board's counts): `budget` is the code of the one that refused last, `refused` its total.
    OverBudget {
        budget: &'static str,
        refused: u64,
    },
    /// The shared media ports refused strangers' traffic (checks with wrong credentials over
    /// their address's budget, oversized or idle ICE-TCP connections): `refused` in all.
    StrangerTraffic {
        refused: u64,
    },
}

/// What the bridge knows of why a camera that is on sends no pictures.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "code", rename_all = "snake_case")]
pub(crate) enum VideoCause {
    /// The bridge refused part of the site's offer; `detail` names codecs and sections.
    Refused { detail: String },
    /// Its audio arrives but no video packets do.
    NoVideoPackets,
    /// Video packets arrive but carry no pictures.
    NoPictures,
}

fn tenths(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::NoMedia { seconds } => write!(f, "no media for {seconds:.1} s"),
            Reason::NoMediaSinceJoining { seconds } => write!(f, "no media since joining {seconds:.1} s ago"),
            Reason::ConnectionLost { seconds } => write!(f, "connection lost, seat held; no media for {seconds:.1} s"),
            Reason::SiteDoesNotHearHq => f.write_str("site does not hear HQ"),
            Reason::HqDoesNotHearSite => f.write_str("HQ does not hear site"),
            Reason::NoAudioEitherWay => f.write_str("no audio in either direction"),
            Reason::FloorHolderSilent { level, limit } => write!(f, "holds floor but audio level {level:.3} < {limit}"),
            Reason::FrozenVideo { cause: None } => f.write_str("camera on but 0 fps received"),
            Reason::FrozenVideo { cause: Some(cause) } => write!(f, "camera on but 0 fps received: {cause}"),
            Reason::HighLoss { percent, limit } => write!(f, "loss {percent:.1} % > {limit} %"),
            Reason::HighRtt { ms, limit } => write!(f, "rtt {ms:.0} ms > {limit} ms"),
            Reason::RecordingFailed { error } => f.write_str(error),
            Reason::CompositionFailed { recording, error } => write!(f, "recording {recording} could not be composed into one file: {error}"),
            Reason::StorageFailed { path, problem, error } => crate::store::WriteFault { path: path.clone(), problem: *problem, error: error.clone() }.fmt(f),
            Reason::OverBudget { budget, refused } => write!(f, "over its {budget} budget: {refused} refused"),
            Reason::StrangerTraffic { refused } => write!(f, "strangers' traffic on the media ports: {refused} refused"),
        }
    }
}

impl fmt::Display for VideoCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VideoCause::Refused { detail } => f.write_str(detail),
            VideoCause::NoVideoPackets => f.write_str("its audio arrives but no video packets do (the browser sends none, or none the bridge recognised)"),
            VideoCause::NoPictures => f.write_str("video packets arrive but carry no pictures"),
        }
    }
}

/// How long an `over_budget` or `stranger_traffic` alarm stays raised after its refusals
/// stop growing.
pub(crate) const REFUSALS_CLEAR_MS: f64 = 30_000.0;

/// Raises an alarm at once when a monotonic count of refusals grows, and clears it once the
/// count has not grown for [`REFUSALS_CLEAR_MS`]: refusals are facts, not a flapping
/// measurement, so there is no raise window. Time is passed in.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct RefusalWatch {
    seen: u64,
    raised_since: Option<f64>,
    last_growth_ms: f64,
}

/// What one observation of a [`RefusalWatch`] changed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum RefusalChange {
    Raised,
    Cleared { duration_ms: f64 },
}

impl RefusalWatch {
    /// The count is `total` at `now_ms`.
    pub(crate) fn observe(&mut self, now_ms: f64, total: u64) -> Option<RefusalChange> {
        if total > self.seen {
            self.seen = total;
            self.last_growth_ms = now_ms;
            if self.raised_since.is_none() {
                self.raised_since = Some(now_ms);
                return Some(RefusalChange::Raised);
            }
            return None;
        }
        let since = self.raised_since?;
        if now_ms - self.last_growth_ms < REFUSALS_CLEAR_MS {
            return None;
        }
        self.raised_since = None;
        Some(RefusalChange::Cleared { duration_ms: now_ms - since })
    }

    /// Since when (the watch's ms) the alarm is raised.
    pub(crate) fn raised_since(&self) -> Option<f64> {
        self.raised_since
    }
}

/// A state transition to show or log.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum AlarmChange {
    /// `since_ms` is when the condition was first seen to hold, not when the
    /// hysteresis let it through, because technicians want the onset.
    Raised { site: usize, kind: AlarmKind, since_ms: f64, reason: Reason },
    /// `duration_ms` runs from `since_ms` of the raise to this clear.
    Cleared { site: usize, kind: AlarmKind, duration_ms: f64 },
}

/// An alarm currently raised; `reason` is refreshed on every evaluation.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ActiveAlarm {
    pub(crate) site: usize,
    pub(crate) kind: AlarmKind,
    pub(crate) since_ms: f64,
    pub(crate) reason: Reason,
}

#[derive(Debug, Clone, PartialEq, Default)]
struct RuleState {
    /// Start of the current unbroken run of the condition holding.
    bad_since: Option<f64>,
    /// Start of the current unbroken healthy run while raised.
    good_since: Option<f64>,
    /// (since_ms, reason) while raised.
    raised: Option<(f64, Reason)>,
}

/// Since when each direction of a site's audio has been expected and reported on without a
/// break; a page's "nothing arrives" counts only [`Thresholds::audio_grace_ms`] after that.
#[derive(Debug, Clone, PartialEq, Default)]
struct AudioWatch {
    site_hears_hq: Option<f64>,
    hq_hears_site: Option<f64>,
}

impl AudioWatch {
    /// Carries each direction's start on while it is reported, restarts it when it is not.
    fn follow(&mut self, now_ms: f64, s: &SiteSnapshot) {
        self.site_hears_hq = s.receives_hq_audio.map(|_| self.site_hears_hq.unwrap_or(now_ms));
        self.hq_hears_site = s.hq_receives_site_audio.map(|_| self.hq_hears_site.unwrap_or(now_ms));
    }

    /// (the site's report counts, HQ's report counts) at `now_ms`.
    fn settled(&self, now_ms: f64, grace_ms: f64) -> (bool, bool) {
        let past = |since: Option<f64>| since.is_some_and(|t| now_ms - t >= grace_ms);
        (past(self.site_hears_hq), past(self.hq_hears_site))
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
struct SiteState {
    present_since: Option<f64>,
    audio: AudioWatch,
    rules: [RuleState; 6],
}

/// Per-site, per-kind alarm state machine.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct AlarmEngine {
    thresholds: Thresholds,
    sites: Vec<SiteState>,
}

impl AlarmEngine {
    pub(crate) fn new(site_count: usize, thresholds: Thresholds) -> Self {
        AlarmEngine { thresholds, sites: vec![SiteState::default(); site_count] }
    }

    /// Evaluates `snapshots[i]` as site `i`. A longer slice adds sites; sites
    /// beyond a shorter slice keep their state untouched, since no news is
    /// not evidence of health. Changes are ordered by site, then kind.
    pub(crate) fn evaluate(&mut self, now_ms: f64, snapshots: &[SiteSnapshot]) -> Vec<AlarmChange> {
        if self.sites.len() < snapshots.len() {
            self.sites.resize(snapshots.len(), SiteState::default());
        }
        let mut changes = Vec::new();
        for (site, snap) in snapshots.iter().enumerate() {
            let state = &mut self.sites[site];
            if !snap.present {
                // A site that left its seat is an attendance fact, not a link
                // fault; keeping its alarms up would page someone for nothing.
                for (kind, rule) in AlarmKind::ALL.iter().zip(state.rules.iter_mut()) {
                    if let Some((since_ms, _)) = rule.raised.take() {
                        changes.push(AlarmChange::Cleared { site, kind: *kind, duration_ms: now_ms - since_ms });
                    }
                }
                *state = SiteState::default();
                continue;
            }
            let present_for = now_ms - *state.present_since.get_or_insert(now_ms);
            // A stall is declared at half the raise window so that its
            // symptoms are paused before they could finish their own window
            // and beat the slower SiteDropped verdict to the board.
            let stalled = snap.ms_since_last_media.is_none_or(|age| age > self.thresholds.raise_after_ms / 2.0);
            for kind in AlarmKind::ALL {
                let dropped = state.rules[AlarmKind::SiteDropped.index()].raised.is_some();
                if (dropped || stalled) && kind.suppressed_by_drop() {
                    // Neither side of the hysteresis may progress on data
                    // from a dead link; start both afresh once it is back,
                    // and give the pages' audio reports their grace again.
                    let rule = &mut state.rules[kind.index()];
                    rule.bad_since = None;
                    rule.good_since = None;
                    if kind == AlarmKind::OneWayAudio {
                        state.audio = AudioWatch::default();
                    }
                    continue;
                }
                if kind == AlarmKind::OneWayAudio {
                    state.audio.follow(now_ms, snap);
                }
                let settled = state.audio.settled(now_ms, self.thresholds.audio_grace_ms);
                let condition = check(kind, snap, present_for, settled, &self.thresholds);
                let hold_ms = match kind {
                    AlarmKind::SiteDropped => 0.0,
                    AlarmKind::FloorHolderSilent => self.thresholds.floor_silent_after_ms,
                    _ => self.thresholds.raise_after_ms,
                };
                if let Some(change) = step(&mut state.rules[kind.index()], site, kind, now_ms, condition, hold_ms, self.thresholds.clear_after_ms) {
                    changes.push(change);
                }
            }
        }
        changes
    }

    /// Raised alarms, ordered by site, then kind.
    pub(crate) fn active(&self) -> Vec<ActiveAlarm> {
        let mut out = Vec::new();
        for (site, state) in self.sites.iter().enumerate() {
            for (kind, rule) in AlarmKind::ALL.iter().zip(state.rules.iter()) {
                if let Some((since_ms, reason)) = &rule.raised {
                    out.push(ActiveAlarm { site, kind: *kind, since_ms: *since_ms, reason: reason.clone() });
                }
            }
        }
        out
    }
}

/// Advances one rule's hysteresis by one evaluation.
fn step(rule: &mut RuleState, site: usize, kind: AlarmKind, now_ms: f64, condition: Option<Reason>, hold_ms: f64, clear_after_ms: f64) -> Option<AlarmChange> {
    match condition {
        Some(reason) => {
            rule.good_since = None;
            let bad_since = *rule.bad_since.get_or_insert(now_ms);
            if let Some((_, shown)) = &mut rule.raised {
                *shown = reason;
                return None;
            }
            if now_ms - bad_since < hold_ms {
                return None;
            }
            rule.raised = Some((bad_since, reason.clone()));
            Some(AlarmChange::Raised { site, kind, since_ms: bad_since, reason })
        }
        None => {
            rule.bad_since = None;
            let (since_ms, _) = rule.raised.as_ref()?;
            let since_ms = *since_ms;
            let good_since = *rule.good_since.get_or_insert(now_ms);
            if now_ms - good_since < clear_after_ms {
                return None;
            }
            rule.raised = None;
            rule.good_since = None;
            Some(AlarmChange::Cleared { site, kind, duration_ms: now_ms - since_ms })
        }
    }
}

/// Returns why `kind`'s condition holds right now, if it does. Missing
/// reports and NaN never trigger an alarm, because an alarm claims a fault
/// and missing data is not one; the exception is `ms_since_last_media ==
/// None`, which is a fact ("nothing ever arrived"). `audio_settled` says
/// whether (the site's, HQ's) audio report is past its grace.
fn check(kind: AlarmKind, s: &SiteSnapshot, present_for_ms: f64, audio_settled: (bool, bool), t: &Thresholds) -> Option<Reason> {
    match kind {
        AlarmKind::SiteDropped => {
            let (seconds, ever) = match s.ms_since_last_media {
                Some(age) if age > t.dropped_after_ms => (age / 1000.0, true),
                None if present_for_ms >= t.dropped_after_ms => (present_for_ms / 1000.0, false),
                _ => return None,
            };
            let seconds = tenths(seconds);
            Some(match (s.held, ever) {
                (true, _) => Reason::ConnectionLost { seconds },
                (false, true) => Reason::NoMedia { seconds },
                (false, false) => Reason::NoMediaSinceJoining { seconds },
            })
        }
        AlarmKind::OneWayAudio => {
            let site_deaf = audio_settled.0 && s.receives_hq_audio == Some(false);
            let hq_deaf = audio_settled.1 && s.audio_expected && s.hq_receives_site_audio == Some(false);
            match (site_deaf, hq_deaf) {
                (true, true) => Some(Reason::NoAudioEitherWay),
                (true, false) => Some(Reason::SiteDoesNotHearHq),
                (false, true) => Some(Reason::HqDoesNotHearSite),
                (false, false) => None,
            }
        }
        AlarmKind::FloorHolderSilent => match s.audio_level {
            Some(level) if s.holds_floor && s.audio_expected && level < t.silence_level => {
                Some(Reason::FloorHolderSilent { level: (level * 1000.0).round() / 1000.0, limit: t.silence_level })
            }
            _ => None,
        },
        AlarmKind::FrozenVideo => (s.video_expected && s.video_in_fps <= 0.0).then(|| Reason::FrozenVideo { cause: s.video_cause.clone() }),
        AlarmKind::HighLoss => (s.loss_percent > t.loss_percent).then(|| Reason::HighLoss { percent: tenths(s.loss_percent), limit: t.loss_percent }),
        AlarmKind::HighRtt => match s.rtt_ms {
            Some(rtt) if rtt > t.rtt_ms => Some(Reason::HighRtt { ms: rtt.round(), limit: t.rtt_ms }),
            _ => None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn healthy() -> SiteSnapshot {
        SiteSnapshot {
            present: true,
            held: false,
            ms_since_last_media: Some(20.0),
            audio_in_pps: 50.0,
            video_in_fps: 25.0,
            video_expected: true,
            video_cause: None,
            receives_hq_audio: Some(true),
            hq_receives_site_audio: Some(true),
            audio_expected: true,
            holds_floor: false,
            audio_level: Some(0.3),
            loss_percent: 0.0,
            rtt_ms: Some(40.0),
        }
    }

    /// Evaluates once per second for seconds `from..to`, returning each change
    /// with the second it happened in.
    fn run(e: &mut AlarmEngine, from: u32, to: u32, snaps: impl Fn(f64) -> Vec<SiteSnapshot>) -> Vec<(f64, AlarmChange)> {
        let mut out = Vec::new();
        for s in from..to {
            let now = f64::from(s) * 1000.0;
            out.extend(e.evaluate(now, &snaps(now)).into_iter().map(|c| (now, c)));
        }
        out
    }

    /// (second, site, kind) of the raises (`want_raised`) or the clears.
    fn picked(changes: &[(f64, AlarmChange)], want_raised: bool) -> Vec<(f64, usize, AlarmKind)> {
        let pick = |(t, c): &(f64, AlarmChange)| match c {
            AlarmChange::Raised { site, kind, .. } if want_raised => Some((*t, *site, *kind)),
            AlarmChange::Cleared { site, kind, .. } if !want_raised => Some((*t, *site, *kind)),
            _ => None,
        };
        changes.iter().filter_map(pick).collect()
    }

    fn raised(changes: &[(f64, AlarmChange)]) -> Vec<(f64, usize, AlarmKind)> {
        picked(changes, true)
    }

    fn cleared(changes: &[(f64, AlarmChange)]) -> Vec<(f64, usize, AlarmKind)> {
        picked(changes, false)
    }

    fn engine(sites: usize) -> AlarmEngine {
        AlarmEngine::new(sites, Thresholds::default())
    }

    /// Media that last arrived at `stop_ms` (or is flowing if still before it).
    fn media_stopped_at(now: f64, stop_ms: f64) -> SiteSnapshot {
        let mut s = healthy();
        if now > stop_ms {
            s.ms_since_last_media = Some(now - stop_ms);
            s.video_in_fps = 0.0;
            s.audio_in_pps = 0.0;
            s.loss_percent = 100.0;
            s.receives_hq_audio = Some(false);
        }
        s
    }

    #[test]
    fn healthy_site_raises_nothing() {
        let mut e = engine(3);
        assert!(run(&mut e, 0, 60, |_| vec![healthy(); 3]).is_empty());
        assert!(e.active().is_empty());
    }

    #[test]
    fn site_dropped_is_raised_within_five_seconds() {
        let mut e = engine(1);
        let changes = run(&mut e, 0, 20, |now| vec![media_stopped_at(now, 9980.0)]);
        assert_eq!(raised(&changes), vec![(13_000.0, 0, AlarmKind::SiteDropped)]);
        let active = e.active();
        assert_eq!(active.len(), 1);
        assert_eq!(active[0].reason, Reason::NoMedia { seconds: 9.0 });
        assert_eq!(active[0].reason.to_string(), "no media for 9.0 s");
    }

    #[test]
    fn silent_newcomer_is_dropped_after_the_window() {
        let mut e = engine(1);
        let mut s = healthy();
        s.ms_since_last_media = None;
        let changes = run(&mut e, 0, 5, |_| vec![s.clone()]);
        assert_eq!(raised(&changes), vec![(3000.0, 0, AlarmKind::SiteDropped)]);
    }

    #[test]
    fn site_dropped_clears_after_media_returns_for_the_clear_window() {
        let mut e = engine(1);
        run(&mut e, 0, 20, |now| vec![media_stopped_at(now, 9980.0)]);
        let changes = run(&mut e, 20, 40, |_| vec![healthy()]);
        assert_eq!(cleared(&changes), vec![(25_000.0, 0, AlarmKind::SiteDropped)]);
        assert!(raised(&changes).is_empty());
        assert!(matches!(changes[0].1, AlarmChange::Cleared { duration_ms, .. } if duration_ms == 12_000.0));
    }

    #[test]
    fn loss_alarm_needs_the_condition_to_hold() {
        let mut e = engine(1);
        let lossy = |from: f64| {
            move |now: f64| {
                let mut s = healthy();
                if now >= from {
                    s.loss_percent = 12.3;
                }
                vec![s]
            }
        };
        let blip = run(&mut e, 0, 2, lossy(1000.0));
        assert!(blip.is_empty());
        let changes = run(&mut e, 2, 10, lossy(5000.0));
        assert_eq!(raised(&changes), vec![(7000.0, 0, AlarmKind::HighLoss)]);
        assert_eq!(
            changes[0].1,
            AlarmChange::Raised { site: 0, kind: AlarmKind::HighLoss, since_ms: 5000.0, reason: Reason::HighLoss { percent: 12.3, limit: 5.0 } }
        );
    }

    #[test]
    fn flapping_loss_does_not_raise_and_clear_repeatedly() {
        let flap = |now: f64| {
            let mut s = healthy();
            if (now as u64 / 1000).is_multiple_of(2) {
                s.loss_percent = 20.0;
            }
            vec![s]
        };
        let mut e = engine(1);
        assert!(run(&mut e, 0, 60, flap).is_empty());
        // Once raised, flapping keeps it up rather than clearing it.
        let mut e = engine(1);
        let mut lossy = healthy();
        lossy.loss_percent = 20.0;
        let up = run(&mut e, 0, 5, |_| vec![lossy.clone()]);
        assert_eq!(raised(&up).len(), 1);
        assert!(run(&mut e, 5, 60, flap).is_empty());
        assert_eq!(e.active().len(), 1);
    }

    #[test]
    fn rtt_alarm_raises_and_clears() {
        let mut e = engine(1);
        let changes = run(&mut e, 0, 30, |now| {
            let mut s = healthy();
            if (5000.0..15_000.0).contains(&now) {
                s.rtt_ms = Some(412.0);
            }
            vec![s]
        });
        assert_eq!(raised(&changes), vec![(7000.0, 0, AlarmKind::HighRtt)]);
        assert_eq!(cleared(&changes), vec![(20_000.0, 0, AlarmKind::HighRtt)]);
        assert!(matches!(&changes[0].1, AlarmChange::Raised { reason, .. } if reason.to_string() == "rtt 412 ms > 300 ms"));
    }

    #[test]
    fn floor_holder_silent_after_ten_seconds() {
        let silent = |level: Option<f64>, unmuted: bool| {
            let mut s = healthy();
            s.holds_floor = true;
            s.audio_level = level;
            s.audio_expected = unmuted;
            s
        };
        let mut e = engine(1);
        let changes = run(&mut e, 0, 15, |_| vec![silent(Some(0.005), true)]);
        assert_eq!(raised(&changes), vec![(10_000.0, 0, AlarmKind::FloorHolderSilent)]);
        for quiet_but_fine in [silent(None, true), silent(Some(0.0), false), silent(Some(0.1), true)] {
            let mut e = engine(1);
            assert!(run(&mut e, 0, 30, |_| vec![quiet_but_fine.clone()]).is_empty());
        }
    }

    #[test]
    fn frozen_video_only_when_camera_on() {
        let mut frozen = healthy();
        frozen.video_in_fps = 0.0;
        frozen.video_expected = false;
        let mut e = engine(1);
        assert!(run(&mut e, 0, 10, |_| vec![frozen.clone()]).is_empty());
        frozen.video_expected = true;
        let changes = run(&mut e, 10, 20, |_| vec![frozen.clone()]);
        assert_eq!(raised(&changes), vec![(12_000.0, 0, AlarmKind::FrozenVideo)]);
    }

    #[test]
    fn one_way_audio_from_either_side() {
        let mut site_deaf = healthy();
        site_deaf.receives_hq_audio = Some(false);
        let mut hq_deaf = healthy();
        hq_deaf.hq_receives_site_audio = Some(false);
        let mut muted = hq_deaf.clone();
        muted.audio_expected = false;
        let mut unknown = healthy();
        unknown.receives_hq_audio = None;
        unknown.hq_receives_site_audio = None;
        let mut e = engine(4);
        let changes = run(&mut e, 0, 12, |_| vec![site_deaf.clone(), hq_deaf.clone(), muted.clone(), unknown.clone()]);
        // After the grace (8 s from the first report), then the raise window (2 s).
        assert_eq!(raised(&changes), vec![(10_000.0, 0, AlarmKind::OneWayAudio), (10_000.0, 1, AlarmKind::OneWayAudio)]);
        let details: Vec<String> = e.active().into_iter().map(|a| a.reason.to_string()).collect();
        assert_eq!(details, vec!["site does not hear HQ", "HQ does not hear site"]);
    }

    #[test]
    fn dropped_site_suppresses_other_alarms() {
        let mut e = engine(1);
        let changes = run(&mut e, 0, 60, |now| if now < 40_000.0 { vec![media_stopped_at(now, 9980.0)] } else { vec![healthy()] });
        assert_eq!(raised(&changes), vec![(13_000.0, 0, AlarmKind::SiteDropped)]);
        assert_eq!(cleared(&changes), vec![(45_000.0, 0, AlarmKind::SiteDropped)]);
        assert!(e.active().is_empty());
    }

    #[test]
    fn leaving_clears_a_sites_alarms() {
        let mut bad = healthy();
        bad.loss_percent = 30.0;
        bad.rtt_ms = Some(900.0);
        let mut e = engine(1);
        assert_eq!(raised(&run(&mut e, 0, 5, |_| vec![bad.clone()])).len(), 2);
        let gone = SiteSnapshot { present: false, ..bad.clone() };
        let changes = run(&mut e, 5, 20, |_| vec![gone.clone()]);
        assert_eq!(cleared(&changes), vec![(5000.0, 0, AlarmKind::HighLoss), (5000.0, 0, AlarmKind::HighRtt)]);
        assert_eq!(changes.len(), 2);
        assert!(e.active().is_empty());
    }

    #[test]
    fn other_sites_stay_green() {
        let mut e = engine(4);
        let changes = run(&mut e, 0, 30, |now| {
            let mut snaps = vec![healthy(); 4];
            snaps[2] = media_stopped_at(now, 5000.0);
            snaps[2].rtt_ms = Some(800.0);
            snaps
        });
        assert!(!changes.is_empty());
        assert!(changes.iter().all(|(_, c)| matches!(c, AlarmChange::Raised { site: 2, .. })));
        assert!(e.active().iter().all(|a| a.site == 2));
    }

    /// The pages report every 3 s; a site just joined or unmuted is reported as "nothing
    /// arrives" for a few seconds. `hq_hears(now)` is HQ's report of the site.
    fn unmuted_at(now: f64, unmute_ms: f64, hq_hears_from_ms: f64) -> SiteSnapshot {
        let mut s = healthy();
        s.audio_expected = now >= unmute_ms;
        s.hq_receives_site_audio = s.audio_expected.then_some(now >= hq_hears_from_ms);
        s
    }

    #[test]
    fn unmuting_raises_no_one_way_audio_while_the_reports_catch_up() {
        // HQ's page shows the audio 6.5 s after the unmute (measured: up to 6.1 s).
        let mut e = engine(1);
        let changes = run(&mut e, 0, 40, |now| vec![unmuted_at(now, 10_000.0, 16_500.0)]);
        assert!(changes.is_empty(), "{changes:?}");
    }

    #[test]
    fn hq_unmuting_gives_every_ward_the_grace() {
        let mut e = engine(5);
        let changes = run(&mut e, 0, 40, |now| {
            let mut ward = healthy();
            // HQ muted until 10 s: the wards' reports of it do not count; then they show
            // HQ's audio from 15 s.
            ward.receives_hq_audio = (now >= 10_000.0).then_some(now >= 15_000.0);
            vec![ward; 5]
        });
        assert!(changes.is_empty(), "{changes:?}");
    }

    #[test]
    fn joining_raises_no_one_way_audio_before_the_first_reports_show_audio() {
        let mut e = engine(1);
        let changes = run(&mut e, 0, 40, |now| {
            // Media from 1 s after the join; the site's first report (3 s) says nothing
            // from HQ yet, the second (6 s) hears it.
            let mut s = healthy();
            s.ms_since_last_media = (now >= 1000.0).then_some(20.0);
            s.receives_hq_audio = (now >= 3000.0).then_some(now >= 6000.0);
            s.hq_receives_site_audio = Some(now >= 7000.0);
            vec![s]
        });
        assert!(changes.is_empty(), "{changes:?}");
    }

    #[test]
    fn a_real_one_way_fault_after_an_unmute_is_raised_just_after_the_grace() {
        let t = Thresholds { raise_after_ms: 1500.0, ..Thresholds::default() };
        let mut e = AlarmEngine::new(1, t);
        // Unmuted at 10 s; HQ never hears the site. Evaluated twice a second, as the
        // monitor does.
        let mut changes = Vec::new();
        for i in 0..60 {
            let now = f64::from(i) * 500.0;
            let snap = unmuted_at(now, 10_000.0, f64::INFINITY);
            changes.extend(e.evaluate(now, &[snap]).into_iter().map(|c| (now, c)));
        }
        let raise_at = 10_000.0 + t.audio_grace_ms + t.raise_after_ms;
        assert_eq!(raised(&changes), vec![(raise_at, 0, AlarmKind::OneWayAudio)]);
        assert_eq!(e.active()[0].reason, Reason::HqDoesNotHearSite);
    }

    #[test]
    fn a_one_way_fault_in_mid_meeting_is_raised_as_fast_as_without_a_grace() {
        let mut e = engine(1);
        let changes = run(&mut e, 0, 40, |now| {
            let mut s = healthy();
            s.receives_hq_audio = Some(now < 30_000.0);
            vec![s]
        });
        assert_eq!(raised(&changes), vec![(32_000.0, 0, AlarmKind::OneWayAudio)]);
        assert_eq!(e.active()[0].reason, Reason::SiteDoesNotHearHq);
    }

    #[test]
    fn media_back_after_a_stall_gives_the_reports_their_grace_again() {
        let mut e = engine(1);
        let changes = run(&mut e, 0, 60, |now| {
            // A one-second stall at 20 s (too short to be a drop); HQ's page then needs
            // two reports to show the site's audio again.
            let mut s = healthy();
            let stalled = (20_000.0..21_500.0).contains(&now);
            s.ms_since_last_media = Some(if stalled { now - 19_900.0 } else { 20.0 });
            s.hq_receives_site_audio = Some(!(20_000.0..27_000.0).contains(&now));
            vec![s]
        });
        assert!(changes.is_empty(), "{changes:?}");
    }

    #[test]
    fn a_lost_connection_with_its_seat_held_is_site_dropped() {
        let mut e = engine(2);
        let changes = run(&mut e, 0, 20, |now| {
            let mut lost = media_stopped_at(now, 9980.0);
            lost.held = now > 9980.0;
            vec![healthy(), lost]
        });
        assert_eq!(raised(&changes), vec![(13_000.0, 1, AlarmKind::SiteDropped)]);
        assert_eq!(e.active()[0].reason, Reason::ConnectionLost { seconds: 9.0 });
    }

    #[test]
    fn reasons_are_a_code_and_numbers() {
        let json = |r: Reason| serde_json::to_value(r).unwrap();
        assert_eq!(json(Reason::HighRtt { ms: 530.0, limit: 300.0 }), serde_json::json!({"code": "high_rtt", "ms": 530.0, "limit": 300.0}));
        assert_eq!(
            json(Reason::FrozenVideo { cause: Some(VideoCause::NoPictures) }),
            serde_json::json!({"code": "frozen_video", "cause": {"code": "no_pictures"}})
        );
        assert_eq!(json(Reason::ConnectionLost { seconds: 4.2 }), serde_json::json!({"code": "connection_lost", "seconds": 4.2}));
        assert_eq!(json(Reason::SiteDoesNotHearHq), serde_json::json!({"code": "site_does_not_hear_hq"}));
    }

    #[test]
    fn codes_are_stable() {
        let codes: Vec<&str> = AlarmKind::ALL.iter().map(AlarmKind::code).collect();
        assert_eq!(codes, ["site_dropped", "one_way_audio", "floor_holder_silent", "frozen_video", "high_loss", "high_rtt"]);
    }

    #[test]
    fn refusals_raise_at_once_and_clear_after_a_quiet_half_minute() {
        let mut w = RefusalWatch::default();
        assert_eq!(w.observe(0.0, 0), None, "nothing refused");
        assert_eq!(w.observe(500.0, 3), Some(RefusalChange::Raised));
        // Still growing: no new change, however many.
        for i in 2..60 {
            assert_eq!(w.observe(500.0 * i as f64, 3 + i * 1000), None);
        }
        let last_growth = 500.0 * 59.0;
        assert_eq!(w.observe(last_growth + REFUSALS_CLEAR_MS - 500.0, 3 + 59 * 1000), None, "quiet, but not long enough");
        assert_eq!(
            w.observe(last_growth + REFUSALS_CLEAR_MS, 3 + 59 * 1000),
            Some(RefusalChange::Cleared { duration_ms: last_growth + REFUSALS_CLEAR_MS - 500.0 })
        );
        assert_eq!(w.raised_since(), None);
        assert_eq!(w.observe(last_growth + REFUSALS_CLEAR_MS + 500.0, 3 + 59 * 1000 + 1), Some(RefusalChange::Raised), "raised again");
    }
}
