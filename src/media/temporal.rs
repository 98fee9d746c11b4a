//! Temporal thinning of one VP8 output: sending a receiver only a camera's lower temporal
//! layers (half or a quarter of its frames) when its downlink cannot carry even the smallest
//! simulcast layer whole. Pure: one call per packet, in arrival order.
//!
//! Chromium codes each simulcast layer in three temporal layers (`vp8::Temporal`): frames of
//! layer 2 are referred to by no one, frames of layer 1 only by layer 2, so dropping them leaves
//! a stream the decoder takes. Two things must be closed up behind a dropped frame or the
//! receiver would wait for it: sequence numbers (it would ask for the missing packets and count
//! them lost, which the bridge's own estimate would read as a poor line) and VP8 PictureIDs
//! (Chromium's decoder holds back every frame after a missing picture until it comes). This
//! module says, per packet, whether it goes and how far back its numbers move.
//!
//! A receiver is lowered at the next frame; it is raised only at a frame marked as a layer sync
//! (one that refers to layer 0 alone), so it never gets a frame whose reference it was not sent.

use super::vp8::Numbering;
use std::collections::VecDeque;

/// The highest temporal layer Chromium sends (three layers: 0, 1, 2): "every frame".
pub const ALL: u8 = 2;
/// Temporal layers counted per stream.
pub const TEMPORAL_LAYERS: usize = 3;
/// Drops remembered for packets that arrive late (behind a dropped one).
const REMEMBERED: usize = 128;
const PICTURE_ID_SPACE: u16 = 0x8000;

/// What becomes of one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Not for this receiver.
    Drop,
    /// Sent, its sequence number and PictureID moved back by these many.
    Send { seq_back: u16, picture_back: u16 },
}

/// One output's thinning of its current source (reset when the source changes).
#[derive(Debug, Clone)]
pub struct Thinning {
    /// The highest temporal layer sent now.
    sending: u8,
    newest_seq: Option<u16>,
    /// The newest frame's PictureID and whether it is dropped.
    newest_picture: Option<(u16, bool)>,
    seqs: Dropped,
    pictures: Dropped,
}

impl Default for Thinning {
    fn default() -> Self {
        Self { sending: ALL, newest_seq: None, newest_picture: None, seqs: Dropped::default(), pictures: Dropped::default() }
    }
}

/// Numbers dropped in order: how many in all, and the latest ones.
#[derive(Debug, Clone, Default)]
struct Dropped {
    total: u16,
    recent: VecDeque<u16>,
}

impl Dropped {
    fn add(&mut self, n: u16) {
        self.total = self.total.wrapping_add(1);
        if self.recent.len() == REMEMBERED {
            self.recent.pop_front();
        }
        self.recent.push_back(n);
    }

    /// How far back `n` moves: every drop before it (drops after it do not count).
    fn back(&self, n: u16, newer: fn(u16, u16) -> bool) -> u16 {
        let after = self.recent.iter().rev().take_while(|&&d| newer(d, n)).count() as u16;
        self.total.wrapping_sub(after)
    }
}

fn seq_newer(a: u16, b: u16) -> bool {
    let d = a.wrapping_sub(b);
    d != 0 && d < 0x8000
}

fn picture_newer(a: u16, b: u16) -> bool {
    let d = (a.wrapping_sub(b)) % PICTURE_ID_SPACE;
    d != 0 && d < PICTURE_ID_SPACE / 2
}

impl Thinning {
    /// Decides one packet of sequence number `seq` whose VP8 descriptor reads `n`, for a
    /// receiver that should get temporal layers up to `want`. A stream without temporal layers
    /// or 15-bit PictureIDs is sent whole.
    pub fn admit(&mut self, seq: u16, n: &Numbering, want: u8) -> Verdict {
        let send = match (n.temporal, n.picture_id.filter(|_| n.wide)) {
            // A fourth layer (TID 3, which Chromium does not send) goes with the third.
            (Some(t), Some(picture)) => self.frame(picture, t.layer.min(ALL), t.sync, want),
            _ => true,
        };
        let in_order = self.seen(seq);
        if !send {
            // A late dropped packet leaves a hole rather than renumbering what was sent.
            if in_order {
                self.seqs.add(seq);
            }
            return Verdict::Drop;
        }
        let picture_back = n.picture_id.filter(|_| n.wide).map_or(0, |p| self.pictures.back(p, picture_newer));
        Verdict::Send { seq_back: self.seqs.back(seq, seq_newer), picture_back }
    }

    /// How far back a packet that is no frame's (padding) moves its sequence number.
    pub fn pass(&mut self, seq: u16) -> u16 {
        self.seen(seq);
        self.seqs.back(seq, seq_newer)
    }

    /// Notes `seq` arrived; whether it is the newest yet.
    fn seen(&mut self, seq: u16) -> bool {
        let in_order = self.newest_seq.is_none_or(|newest| seq_newer(seq, newest));
        if in_order {
            self.newest_seq = Some(seq);
        }
        in_order
    }

    /// Whether the frame `picture` (on temporal `layer`) goes to the receiver.
    fn frame(&mut self, picture: u16, layer: u8, sync: bool, want: u8) -> bool {
        match self.newest_picture {
            Some((newest, dropped)) if newest == picture => return !dropped,
            Some((newest, _)) if !picture_newer(picture, newest) => return !self.pictures.recent.contains(&picture),
            _ => {}
        }
        // A new frame: lower at once, raise only where a layer may start.
        self.sending = self.sending.min(want);
        let send = if layer <= self.sending {
            true
        } else if layer <= want && sync {
            self.sending = layer;
            true
        } else {
            false
        };
        self.newest_picture = Some((picture, !send));
        if !send {
            self.pictures.add(picture);
        }
        send
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::vp8::{numbering, Temporal};

    /// A VP8 packet descriptor as Chromium writes it, starting a frame or continuing it.
    fn descriptor(picture: u16, tl0: u8, t: Temporal, start: bool) -> Numbering {
        let [hi, lo] = picture.to_be_bytes();
        let tid = (t.layer << 6) | if t.sync { 0x20 } else { 0 };
        numbering(&[if start { 0x90 } else { 0x80 }, 0xE0, 0x80 | hi, lo, tl0, tid, 0xAA]).unwrap()
    }

    /// Chromium's pattern of three temporal layers: 0, 2, 1, 2, ...; the first frames of
    /// layers 1 and 2 after a base frame every so often marked as syncs.
    fn layer_of(frame: u16) -> Temporal {
        let layer = [0, 2, 1, 2][frame as usize % 4];
        Temporal { layer, sync: layer > 0 && frame % 8 < 4 }
    }

    /// Sends `frames` frames of two packets each, from PictureID `first` and sequence number
    /// `seq`, wanting `want`; returns (input picture, output picture, output seqs) of what went.
    fn run(th: &mut Thinning, first: u16, seq: &mut u16, frames: u16, want: u8) -> Vec<(u16, u16, Vec<u16>)> {
        let mut out = Vec::new();
        for f in 0..frames {
            let picture = (first + f) % PICTURE_ID_SPACE;
            let mut sent = Vec::new();
            let mut picture_out = None;
            for start in [true, false] {
                let n = descriptor(picture, (picture / 4) as u8, layer_of(picture), start);
                if let Verdict::Send { seq_back, picture_back } = th.admit(*seq, &n, want) {
                    sent.push(seq.wrapping_sub(seq_back));
                    picture_out = Some(picture.wrapping_sub(picture_back) % PICTURE_ID_SPACE);
                }
                *seq = seq.wrapping_add(1);
            }
            if let Some(p) = picture_out {
                out.push((picture, p, sent));
            }
        }
        out
    }

    fn continuous(out: &[(u16, u16, Vec<u16>)]) -> bool {
        let seqs: Vec<u16> = out.iter().flat_map(|o| o.2.iter().copied()).collect();
        let pictures: Vec<u16> = out.iter().map(|o| o.1).collect();
        seqs.windows(2).all(|w| w[1] == w[0].wrapping_add(1)) && pictures.windows(2).all(|w| w[1] == (w[0] + 1) % PICTURE_ID_SPACE)
    }

    #[test]
    fn every_frame_goes_unchanged_while_all_layers_are_wanted() {
        let mut th = Thinning::default();
        let mut seq = 65_000;
        let out = run(&mut th, 32_760, &mut seq, 40, ALL);
        assert_eq!(out.len(), 40);
        assert!(out.iter().all(|(i, o, _)| i == o), "PictureIDs unchanged");
        assert!(continuous(&out), "across the wrap of both: {out:?}");
    }

    #[test]
    fn the_base_layer_alone_is_a_quarter_of_the_frames_numbered_without_holes() {
        let mut th = Thinning::default();
        let mut seq = 100;
        let out = run(&mut th, 8, &mut seq, 40, 0);
        assert_eq!(out.len(), 10, "{out:?}");
        assert!(out.iter().all(|(i, _, _)| layer_of(*i).layer == 0));
        assert!(continuous(&out), "{out:?}");
        let out = run(&mut Thinning::default(), 8, &mut 100, 40, 1);
        assert_eq!(out.len(), 20, "layers 0 and 1: half the frames");
        assert!(continuous(&out), "{out:?}");
    }

    #[test]
    fn raising_waits_for_a_sync_frame_and_lowering_takes_the_next_frame() {
        let mut th = Thinning::default();
        let mut seq = 0;
        let low = run(&mut th, 0, &mut seq, 8, 0);
        // Raised to all layers at frame 8: frame 9 (layer 2) is a sync (9 % 8 < 4), so it goes.
        let high = run(&mut th, 8, &mut seq, 8, ALL);
        assert_eq!(high.iter().map(|o| o.0).collect::<Vec<_>>(), (8..16).collect::<Vec<_>>());
        // Raised again from the base at frame 20: frames 21 and 22 (not syncs) wait; 24 is base.
        let mut th2 = Thinning::default();
        let mut seq2 = 0;
        run(&mut th2, 0, &mut seq2, 20, 0);
        let raised = run(&mut th2, 20, &mut seq2, 8, ALL);
        assert_eq!(raised.iter().map(|o| o.0).collect::<Vec<_>>(), vec![20, 24, 25, 26, 27], "{raised:?}");
        // Lowered: the next frame already goes by the new rule.
        let lowered = run(&mut th, 16, &mut seq, 8, 0);
        assert_eq!(lowered.iter().map(|o| o.0).collect::<Vec<_>>(), vec![16, 20]);
        let mut all = low;
        all.extend(high);
        all.extend(lowered);
        assert!(continuous(&all), "one stream without holes across the changes: {all:?}");
    }

    #[test]
    fn a_late_packet_keeps_the_numbers_of_its_place_and_a_late_dropped_one_leaves_a_hole() {
        let mut th = Thinning::default();
        let t = |layer| Temporal { layer, sync: false };
        // Frame 0 (layer 0, seqs 10, 11), frame 1 (layer 2, seq 12, dropped), frame 2 (layer 1, seq 13).
        assert_eq!(th.admit(10, &descriptor(0, 0, t(0), true), 1), Verdict::Send { seq_back: 0, picture_back: 0 });
        assert_eq!(th.admit(12, &descriptor(1, 0, t(2), true), 1), Verdict::Drop);
        assert_eq!(th.admit(13, &descriptor(2, 0, t(1), true), 1), Verdict::Send { seq_back: 1, picture_back: 1 });
        // Seq 11, frame 0's second packet, arrives last: behind the drop, it does not move.
        assert_eq!(th.admit(11, &descriptor(0, 0, t(0), false), 1), Verdict::Send { seq_back: 0, picture_back: 0 });
        // Frame 3 (layer 2): its packets 15 and 14 (out of order) are both dropped; 14 late.
        assert_eq!(th.admit(15, &descriptor(3, 0, t(2), false), 1), Verdict::Drop);
        assert_eq!(th.admit(14, &descriptor(3, 0, t(2), true), 1), Verdict::Drop);
        assert_eq!(th.admit(16, &descriptor(4, 1, t(0), true), 1), Verdict::Send { seq_back: 2, picture_back: 2 });
    }

    #[test]
    fn a_stream_without_temporal_layers_is_sent_whole() {
        let mut th = Thinning::default();
        let plain = numbering(&[0x90, 0xC0, 0x80, 0x05, 0x01, 0xAA]).unwrap();
        for seq in 0..10 {
            assert_eq!(th.admit(seq, &plain, 0), Verdict::Send { seq_back: 0, picture_back: 0 });
        }
    }
}
