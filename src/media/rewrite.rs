//! Per-receiver rewriting of a forwarded RTP stream. Pure: time is passed in.
//!
//! webrtc-rs drops (silently) any packet whose SSRC, payload type or header-extension ids
//! were not negotiated on the receiving leg, so each output stream gets its own SSRC and the
//! payload type the receiver chose, and the publisher's extensions are stripped. When the
//! publisher behind an output changes (a site rejoins with a new SSRC and new sequence
//! numbers), sequence numbers and timestamps are shifted so the receiver's jitter buffer
//! sees one continuous stream instead of a jump it would treat as loss.

use rtc::rtp::header::Header;
use std::time::Instant;

/// The state of one output stream (one source's audio or video towards one receiver).
#[derive(Debug, Clone)]
pub struct Rewriter {
    ssrc: u32,
    payload_type: u8,
    clock_rate: u32,
    source_ssrc: Option<u32>,
    seq_delta: u16,
    ts_delta: u32,
    /// Highest sequence number written, its timestamp and when it was written.
    last_out: Option<(u16, u32, Instant)>,
}

impl Rewriter {
    pub fn new(ssrc: u32, payload_type: u8, clock_rate: u32) -> Self {
        Self { ssrc, payload_type, clock_rate: clock_rate.max(1), source_ssrc: None, seq_delta: 0, ts_delta: 0, last_out: None }
    }

    pub fn ssrc(&self) -> u32 {
        self.ssrc
    }

    /// The receiver renegotiated: its payload type for this codec may have changed.
    pub fn set_payload_type(&mut self, pt: u8) {
        self.payload_type = pt;
    }

    /// Rewrites a header in place for this output.
    pub fn rewrite(&mut self, h: &mut Header, now: Instant) {
        if self.source_ssrc != Some(h.ssrc) {
            self.switch_source(h, now);
        }
        h.ssrc = self.ssrc;
        h.payload_type = self.payload_type;
        h.sequence_number = h.sequence_number.wrapping_add(self.seq_delta);
        h.timestamp = h.timestamp.wrapping_add(self.ts_delta);
        h.extension = false;
        h.extension_profile = 0;
        h.extensions.clear();
        let newer = match self.last_out {
            None => true,
            Some((seq, _, _)) => {
                let d = h.sequence_number.wrapping_sub(seq);
                d != 0 && d < 0x8000
            }
        };
        if newer {
            self.last_out = Some((h.sequence_number, h.timestamp, now));
        }
    }

    fn switch_source(&mut self, h: &Header, now: Instant) {
        self.source_ssrc = Some(h.ssrc);
        match self.last_out {
            // First source: pass numbers through unchanged.
            None => {
                self.seq_delta = 0;
                self.ts_delta = 0;
            }
            // Continue right after the last packet written, with the wall-clock gap in timestamps.
            Some((seq, ts, at)) => {
                let gap = now.saturating_duration_since(at).as_secs_f64() * self.clock_rate as f64;
                let ticks = (gap as u64).clamp(1, u32::MAX as u64 / 2) as u32;
                self.seq_delta = seq.wrapping_add(1).wrapping_sub(h.sequence_number);
                self.ts_delta = ts.wrapping_add(ticks).wrapping_sub(h.timestamp);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn header(ssrc: u32, seq: u16, ts: u32) -> Header {
        Header { version: 2, ssrc, sequence_number: seq, timestamp: ts, payload_type: 120, extension: true, ..Default::default() }
    }

    #[test]
    fn first_source_keeps_its_numbers_but_gets_the_output_ssrc_and_payload_type() {
        let t0 = Instant::now();
        let mut rw = Rewriter::new(0xAAAA, 96, 90_000);
        let mut h = header(0x1234, 100, 5000);
        rw.rewrite(&mut h, t0);
        assert_eq!((h.ssrc, h.payload_type, h.sequence_number, h.timestamp), (0xAAAA, 96, 100, 5000));
        assert!(!h.extension && h.extensions.is_empty());
    }

    #[test]
    fn a_new_publisher_continues_the_sequence_after_the_old_one() {
        let t0 = Instant::now();
        let mut rw = Rewriter::new(7, 111, 48_000);
        for i in 0..10u16 {
            let mut h = header(1, 65530u16.wrapping_add(i), 1000 + 960 * i as u32);
            rw.rewrite(&mut h, t0);
        }
        // last out: seq 65530+9 = 3 (wrapped), ts 1000 + 8640
        let mut h = header(2, 40_000, 77);
        rw.rewrite(&mut h, t0 + Duration::from_millis(500));
        assert_eq!(h.sequence_number, 4);
        assert_eq!(h.timestamp, 1000 + 8640 + 24_000, "500 ms of 48 kHz clock after the last packet");
        let mut next = header(2, 40_001, 77 + 960);
        rw.rewrite(&mut next, t0 + Duration::from_millis(520));
        assert_eq!(next.sequence_number, 5);
        assert_eq!(next.timestamp, 1000 + 8640 + 24_000 + 960);
        assert_eq!(next.ssrc, 7);
    }

    #[test]
    fn a_late_reordered_packet_does_not_move_the_continuation_point() {
        let t0 = Instant::now();
        let mut rw = Rewriter::new(7, 96, 90_000);
        for seq in [10u16, 12, 11] {
            let mut h = header(1, seq, seq as u32 * 3000);
            rw.rewrite(&mut h, t0);
        }
        let mut h = header(2, 500, 0);
        rw.rewrite(&mut h, t0);
        assert_eq!(h.sequence_number, 13, "continues after 12, the highest written");
    }

    #[test]
    fn payload_type_follows_renegotiation() {
        let mut rw = Rewriter::new(7, 96, 90_000);
        rw.set_payload_type(98);
        let mut h = header(1, 1, 1);
        rw.rewrite(&mut h, Instant::now());
        assert_eq!(h.payload_type, 98);
    }
}
