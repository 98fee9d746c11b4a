//! Receive statistics for one inbound RTP stream: sequence accounting (loss,
//! reordering, duplicates, 16-bit wrap-around, sender restarts), NACK recovery
//! counts, RFC 3550 interarrival jitter, and small sliding-window meters for
//! bitrate, packet rate and frame rate. It is pure arithmetic in str0m's
//! sans-IO style: every observation and every "now" comes in as an argument and
//! every result goes out as a return value. It must never read a clock, touch
//! the network or the file system, spawn threads, block, or draw random
//! numbers; that is what keeps it deterministic and testable on synthetic
//! timelines.

use std::collections::VecDeque;

/// A forward step larger than this is more likely a sender restart than
/// thousands of lost packets (RFC 3550 A.1 `MAX_DROPOUT`).
const MAX_DROPOUT: u16 = 3000;
/// Wider than RFC 3550's 100 because NACK retransmissions legitimately arrive
/// an RTT or two behind the head of a high-rate video stream.
const MAX_MISORDER: u16 = 1000;
/// Receive-history size in packets; it must exceed `MAX_MISORDER` so every
/// acceptable late packet can still be told apart from a duplicate.
const HISTORY: usize = 1024;
const HISTORY_WORDS: usize = HISTORY / 64;
/// Caps meter memory even if a caller feeds a flood of samples.
const MAX_SAMPLES: usize = 8192;

/// Counters for the period between two calls to [`StreamStats::interval`].
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct IntervalReport {
    pub(crate) expected: u64,
    pub(crate) received: u64,
    pub(crate) lost: u64,
    /// 0.0..=100.0; 0.0 when nothing was expected.
    pub(crate) loss_percent: f64,
    /// Payload bytes of every packet that arrived, duplicates and
    /// retransmissions included, because they all used the link.
    pub(crate) bytes: u64,
}

/// Statistics for one received RTP stream (one SSRC).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct StreamStats {
    clock_rate: u32,
    /// Extended highest sequence number (wrap count in the upper bits).
    max_ext: Option<i64>,
    /// Extended number of the earliest packet of the current segment. Signed
    /// so that a late packet preceding the very first one seen (which may
    /// have been seq 0) still has a place on the number line.
    base_ext: i64,
    seen: [u64; HISTORY_WORDS],
    /// A packet that jumped too far; it only becomes a restart once its
    /// successor confirms it, so one stray packet cannot re-base the stream.
    pending_restart: Option<u16>,
    expected: u64,
    received: u64,
    duplicates: u64,
    retransmissions: u64,
    recovered: u64,
    bytes: u64,
    jitter: f64,
    /// (arrival in RTP units, RTP timestamp) of the last jitter sample.
    jitter_ref: Option<(f64, u32)>,
    last_arrival_ms: Option<f64>,
    interval_mark: (u64, u64, u64),
}

impl StreamStats {
    /// `clock_rate` is the RTP clock in Hz (90 000 for video, 48 000 for Opus).
    ///
    /// # Panics
    /// If `clock_rate` is 0, which would make jitter meaningless.
    pub(crate) fn new(clock_rate: u32) -> Self {
        assert!(clock_rate > 0, "RTP clock rate must be positive");
        StreamStats {
            clock_rate,
            max_ext: None,
            base_ext: 0,
            seen: [0; HISTORY_WORDS],
            pending_restart: None,
            expected: 0,
            received: 0,
            duplicates: 0,
            retransmissions: 0,
            recovered: 0,
            bytes: 0,
            jitter: 0.0,
            jitter_ref: None,
            last_arrival_ms: None,
            interval_mark: (0, 0, 0),
        }
    }

    /// Feeds one arrived packet. `is_retransmission` marks NACK repairs (RTX).
    pub(crate) fn on_packet(&mut self, seq: u16, rtp_timestamp: u32, arrival_ms: f64, payload_bytes: usize, is_retransmission: bool) {
        self.last_arrival_ms = Some(arrival_ms);
        self.bytes += payload_bytes as u64;
        if is_retransmission {
            self.retransmissions += 1;
        }
        let Some(max) = self.max_ext else {
            self.start_segment(i64::from(seq));
            self.sample_jitter(rtp_timestamp, arrival_ms, is_retransmission);
            return;
        };
        let delta = seq.wrapping_sub(max as u16);
        if delta == 0 {
            self.duplicates += 1;
            return;
        }
        if delta <= MAX_DROPOUT {
            self.pending_restart = None;
            self.advance(max, max + i64::from(delta));
            self.sample_jitter(rtp_timestamp, arrival_ms, is_retransmission);
            return;
        }
        let behind = delta.wrapping_neg();
        if behind <= MAX_MISORDER {
            self.pending_restart = None;
            self.accept_late(max - i64::from(behind), is_retransmission);
            return;
        }
        if self.pending_restart == Some(seq.wrapping_sub(1)) {
            self.pending_restart = None;
            // Keep the extended number monotonic across the restart so that
            // its low 16 bits still equal the wire sequence number.
            let first = max + i64::from(seq.wrapping_sub(1).wrapping_sub(max as u16));
            self.seen = [0; HISTORY_WORDS];
            self.jitter_ref = None;
            self.start_segment(first);
            self.advance(first, first + 1);
            self.sample_jitter(rtp_timestamp, arrival_ms, is_retransmission);
        } else {
            self.pending_restart = Some(seq);
        }
    }

    fn start_segment(&mut self, ext: i64) {
        self.base_ext = ext;
        self.max_ext = Some(ext);
        self.set_seen(ext, true);
        self.expected += 1;
        self.received += 1;
    }

    fn advance(&mut self, from: i64, to: i64) {
        // Clearing the slots we pass over keeps the invariant that a set bit
        // inside the history window means "received in this segment".
        if (to - from) as usize >= HISTORY {
            self.seen = [0; HISTORY_WORDS];
        } else {
            for ext in from + 1..to {
                self.set_seen(ext, false);
            }
        }
        self.set_seen(to, true);
        self.max_ext = Some(to);
        self.expected += (to - from) as u64;
        self.received += 1;
    }

    fn accept_late(&mut self, ext: i64, is_retransmission: bool) {
        if self.is_seen(ext) {
            self.duplicates += 1;
            return;
        }
        self.set_seen(ext, true);
        self.received += 1;
        if ext < self.base_ext {
            // Reordered ahead of the first packet we saw: the stream simply
            // started earlier than we thought.
            self.expected += (self.base_ext - ext) as u64;
            self.base_ext = ext;
        } else if is_retransmission {
            self.recovered += 1;
        }
    }

    fn sample_jitter(&mut self, rtp_timestamp: u32, arrival_ms: f64, is_retransmission: bool) {
        // A retransmission carries the original timestamp but arrives an RTT
        // later, so it would report network repair time as jitter.
        if is_retransmission {
            return;
        }
        let arrival = arrival_ms * f64::from(self.clock_rate) / 1000.0;
        if let Some((prev_arrival, prev_ts)) = self.jitter_ref {
            let sent = f64::from(rtp_timestamp.wrapping_sub(prev_ts) as i32);
            let d = (arrival - prev_arrival) - sent;
            self.jitter += (d.abs() - self.jitter) / 16.0;
        }
        self.jitter_ref = Some((arrival, rtp_timestamp));
    }

    fn slot(ext: i64) -> (usize, u64) {
        let i = ext.rem_euclid(HISTORY as i64) as usize;
        (i / 64, 1u64 << (i % 64))
    }

    fn is_seen(&self, ext: i64) -> bool {
        let (word, bit) = Self::slot(ext);
        self.seen[word] & bit != 0
    }

    fn set_seen(&mut self, ext: i64, on: bool) {
        let (word, bit) = Self::slot(ext);
        if on {
            self.seen[word] |= bit;
        } else {
            self.seen[word] &= !bit;
        }
    }

    /// Closes the current report period and returns its counters; call once
    /// per period. A late packet may fill a gap from an earlier period, so a
    /// period can receive more than it expected; its loss is then 0.
    pub(crate) fn interval(&mut self) -> IntervalReport {
        let (e0, r0, b0) = self.interval_mark;
        let expected = self.expected - e0;
        let received = self.received - r0;
        let lost = expected.saturating_sub(received);
        let loss_percent = if expected == 0 { 0.0 } else { lost as f64 * 100.0 / expected as f64 };
        self.interval_mark = (self.expected, self.received, self.bytes);
        IntervalReport { expected, received, lost, loss_percent, bytes: self.bytes - b0 }
    }

    #[cfg(test)]
    /// Packets the sequence numbers say were sent, summed over restarts.
    pub(crate) fn expected(&self) -> u64 {
        self.expected
    }
    /// Unique packets received.
    pub(crate) fn received(&self) -> u64 {
        self.received
    }
    pub(crate) fn lost(&self) -> u64 {
        self.expected.saturating_sub(self.received)
    }
    #[cfg(test)]
    pub(crate) fn duplicates(&self) -> u64 {
        self.duplicates
    }
    #[cfg(test)]
    /// Every packet flagged as a retransmission, useful or not.
    pub(crate) fn retransmissions(&self) -> u64 {
        self.retransmissions
    }
    /// Retransmissions that filled a gap, i.e. losses repaired by NACK.
    pub(crate) fn recovered(&self) -> u64 {
        self.recovered
    }
    /// Highest sequence number with its wrap count in the upper bits.
    pub(crate) fn extended_highest_seq(&self) -> Option<u64> {
        self.max_ext.map(|e| e as u64)
    }
    #[cfg(test)]
    pub(crate) fn jitter_rtp_units(&self) -> f64 {
        self.jitter
    }
    pub(crate) fn jitter_ms(&self) -> f64 {
        self.jitter * 1000.0 / f64::from(self.clock_rate)
    }
    #[cfg(test)]
    pub(crate) fn last_arrival_ms(&self) -> Option<f64> {
        self.last_arrival_ms
    }
}

/// Bitrate and packet rate over a sliding time window.
///
/// Samples older than the window are pruned on every record, and at most
/// `MAX_SAMPLES` are kept. When the cap forces out samples still inside the
/// window, rates are computed over the span the kept samples cover, so the
/// cap bounds memory without biasing the rate low. During the first window
/// after start the rate ramps up, because it is always divided by the window.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RateMeter {
    window_ms: f64,
    samples: VecDeque<(f64, u64)>,
    evicted_at: Option<f64>,
}

impl RateMeter {
    /// # Panics
    /// If `window_ms` is not a positive finite number.
    pub(crate) fn new(window_ms: f64) -> Self {
        assert!(window_ms.is_finite() && window_ms > 0.0, "window must be positive");
        RateMeter { window_ms, samples: VecDeque::new(), evicted_at: None }
    }

    /// Time must not run backwards; an earlier `now_ms` is taken as the
    /// latest time seen so the samples stay ordered.
    pub(crate) fn record(&mut self, now_ms: f64, bytes: usize) {
        let now = match self.samples.back() {
            Some(&(last, _)) if last > now_ms => last,
            _ => now_ms,
        };
        while matches!(self.samples.front(), Some(&(t, _)) if t <= now - self.window_ms) {
            self.samples.pop_front();
        }
        if self.samples.len() >= MAX_SAMPLES {
            if let Some((t, _)) = self.samples.pop_front() {
                self.evicted_at = Some(t);
            }
        }
        self.samples.push_back((now, bytes as u64));
    }

    /// (span in ms, bytes, packets) of the samples in the window ending now.
    fn totals(&self, now_ms: f64) -> (f64, u64, u64) {
        let start = now_ms - self.window_ms;
        let floor = match self.evicted_at {
            Some(t) if t > start => t,
            _ => start,
        };
        let (mut bytes, mut packets) = (0u64, 0u64);
        for &(t, b) in self.samples.iter().rev() {
            if t <= floor {
                break;
            }
            if t <= now_ms {
                bytes += b;
                packets += 1;
            }
        }
        (now_ms - floor, bytes, packets)
    }

    pub(crate) fn bits_per_second(&self, now_ms: f64) -> f64 {
        let (span, bytes, _) = self.totals(now_ms);
        if span > 0.0 {
            bytes as f64 * 8.0 * 1000.0 / span
        } else {
            0.0
        }
    }

    pub(crate) fn packets_per_second(&self, now_ms: f64) -> f64 {
        let (span, _, packets) = self.totals(now_ms);
        if span > 0.0 {
            packets as f64 * 1000.0 / span
        } else {
            0.0
        }
    }
}

/// Frames per second over a sliding window, counting frame ends (RTP packets
/// with the marker bit set) rather than packets, since a video frame spans
/// many packets.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct FrameRate {
    meter: RateMeter,
}

impl FrameRate {
    /// # Panics
    /// If `window_ms` is not a positive finite number.
    pub(crate) fn new(window_ms: f64) -> Self {
        FrameRate { meter: RateMeter::new(window_ms) }
    }

    pub(crate) fn on_frame_end(&mut self, now_ms: f64) {
        self.meter.record(now_ms, 0);
    }

    pub(crate) fn frames_per_second(&self, now_ms: f64) -> f64 {
        self.meter.packets_per_second(now_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `seqs` as 48 kHz audio paced 20 ms apart, with timestamps derived
    /// from the sequence number so pacing is perfect and jitter stays zero.
    fn feed(s: &mut StreamStats, seqs: impl IntoIterator<Item = u16>) {
        for seq in seqs {
            let n = f64::from(seq);
            s.on_packet(seq, u32::from(seq) * 960, n * 20.0, 100, false);
        }
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn in_order_stream_has_no_loss() {
        let mut s = StreamStats::new(48_000);
        feed(&mut s, 0..500);
        assert_eq!((s.expected(), s.received(), s.lost()), (500, 500, 0));
        assert_eq!(s.extended_highest_seq(), Some(499));
    }

    #[test]
    fn a_gap_counts_as_loss() {
        let mut s = StreamStats::new(48_000);
        feed(&mut s, (0..20).filter(|&q| q != 7 && q != 8));
        assert_eq!((s.expected(), s.received(), s.lost()), (20, 18, 2));
    }

    #[test]
    fn reordered_packet_is_not_loss() {
        let mut s = StreamStats::new(48_000);
        feed(&mut s, [0, 1, 3, 4, 2, 5]);
        assert_eq!((s.expected(), s.received(), s.lost()), (6, 6, 0));
        // Reordered ahead of the first packet seen, across the wrap.
        let mut s = StreamStats::new(48_000);
        feed(&mut s, [1, 0, 65535, 2]);
        assert_eq!((s.expected(), s.received(), s.lost()), (4, 4, 0));
    }

    #[test]
    fn duplicates_are_counted_once() {
        let mut s = StreamStats::new(48_000);
        feed(&mut s, [0, 1, 1, 2, 0, 3, 3]);
        assert_eq!((s.expected(), s.received(), s.lost(), s.duplicates()), (4, 4, 0, 3));
    }

    #[test]
    fn sequence_wrap_around_keeps_counting() {
        let mut s = StreamStats::new(48_000);
        feed(&mut s, (65530..=65535).chain(0..10));
        assert_eq!((s.expected(), s.received(), s.lost()), (16, 16, 0));
        assert_eq!(s.extended_highest_seq(), Some(65536 + 9));
    }

    #[test]
    fn loss_across_wrap_around_is_counted() {
        let mut s = StreamStats::new(48_000);
        feed(&mut s, (65530..=65534).chain(1..5));
        assert_eq!((s.expected(), s.received(), s.lost()), (11, 9, 2));
    }

    #[test]
    fn retransmission_recovers_a_lost_packet() {
        let mut s = StreamStats::new(90_000);
        feed(&mut s, (0..10).filter(|&q| q != 4));
        assert_eq!(s.lost(), 1);
        s.on_packet(4, 4 * 960, 400.0, 100, true);
        assert_eq!((s.lost(), s.recovered(), s.retransmissions()), (0, 1, 1));
        // A retransmission of something we already have repairs nothing.
        s.on_packet(5, 5 * 960, 410.0, 100, true);
        assert_eq!((s.received(), s.recovered(), s.retransmissions()), (10, 1, 2));
    }

    #[test]
    fn interval_reports_only_the_last_period() {
        let mut s = StreamStats::new(48_000);
        feed(&mut s, (0..100).filter(|&q| q != 10 && q != 50));
        let r = s.interval();
        assert_eq!((r.expected, r.received, r.lost, r.bytes), (100, 98, 2, 9800));
        assert!(close(r.loss_percent, 2.0));
        feed(&mut s, 100..200);
        let r = s.interval();
        assert_eq!((r.expected, r.received, r.lost, r.bytes), (100, 100, 0, 10_000));
        assert_eq!(r.loss_percent, 0.0);
        let r = s.interval();
        assert_eq!((r.expected, r.received, r.loss_percent), (0, 0, 0.0));
    }

    #[test]
    fn ten_percent_injected_loss_reports_ten_percent() {
        let mut s = StreamStats::new(90_000);
        feed(&mut s, (0..1000).filter(|q| q % 10 != 5));
        let r = s.interval();
        assert!((r.loss_percent - 10.0).abs() < 0.01, "{}", r.loss_percent);
    }

    #[test]
    fn jitter_matches_rfc3550_for_a_known_sequence() {
        // 8 kHz, 20 ms packets (160 units). Arrivals 0, 20, 25, 60 ms are 0,
        // 160, 200, 480 units. D = 0, -120, +120, so
        // J = 0, then 0 + (120 - 0)/16 = 7.5, then 7.5 + (120 - 7.5)/16 = 14.53125.
        let mut s = StreamStats::new(8000);
        for (i, arrival) in [0.0, 20.0, 25.0, 60.0].into_iter().enumerate() {
            s.on_packet(i as u16, i as u32 * 160, arrival, 160, false);
        }
        assert!(close(s.jitter_rtp_units(), 14.53125));
        assert!(close(s.jitter_ms(), 14.53125 / 8.0));
    }

    #[test]
    fn jitter_is_zero_for_perfectly_paced_packets() {
        let mut s = StreamStats::new(90_000);
        // Starts near the timestamp wrap to show the wrapping difference.
        let ts0 = u32::MAX - 6000;
        for i in 0..300u32 {
            s.on_packet(i as u16, ts0.wrapping_add(i * 3000), f64::from(i) * 100.0 / 3.0, 1200, false);
        }
        assert!(s.jitter_rtp_units() < 1e-6);
    }

    #[test]
    fn retransmissions_and_late_packets_do_not_move_jitter() {
        let mut s = StreamStats::new(48_000);
        feed(&mut s, [0, 1, 3]);
        s.on_packet(2, 2 * 960, 900.0, 100, true);
        s.on_packet(2, 2 * 960, 950.0, 100, false);
        assert_eq!(s.jitter_rtp_units(), 0.0);
    }

    #[test]
    fn jitter_ms_converts_from_clock_units() {
        // The second packet is sent 100 ms after the first and arrives 110 ms
        // after it: D = 10 ms, J = 10/16 ms whatever the clock.
        let mut video = StreamStats::new(90_000);
        video.on_packet(0, 0, 0.0, 1200, false);
        video.on_packet(1, 9000, 110.0, 1200, false);
        assert!(close(video.jitter_rtp_units(), 900.0 / 16.0));
        assert!(close(video.jitter_ms(), 0.625));
        let mut audio = StreamStats::new(48_000);
        audio.on_packet(0, 0, 0.0, 100, false);
        audio.on_packet(1, 4800, 110.0, 100, false);
        assert!(close(audio.jitter_rtp_units(), 480.0 / 16.0));
        assert!(close(audio.jitter_ms(), 0.625));
    }

    #[test]
    fn large_jump_restarts_without_counting_loss() {
        let mut s = StreamStats::new(48_000);
        feed(&mut s, (0..100).chain(20_000..20_100));
        assert_eq!((s.expected(), s.received(), s.lost()), (200, 200, 0));
        assert_eq!(s.extended_highest_seq().map(|e| e & 0xffff), Some(20_099));
    }

    #[test]
    fn a_single_stray_jump_is_ignored() {
        let mut s = StreamStats::new(48_000);
        feed(&mut s, (0..50).chain([40_000]).chain(50..100));
        assert_eq!((s.expected(), s.received(), s.lost()), (100, 100, 0));
    }

    #[test]
    fn last_arrival_is_reported() {
        let mut s = StreamStats::new(48_000);
        assert_eq!(s.last_arrival_ms(), None);
        feed(&mut s, 0..3);
        assert_eq!(s.last_arrival_ms(), Some(40.0));
    }

    #[test]
    fn rate_meter_measures_bitrate_over_its_window() {
        let mut m = RateMeter::new(1000.0);
        for i in 1..=100 {
            m.record(f64::from(i) * 10.0, 1250);
        }
        assert!(close(m.bits_per_second(1000.0), 1_000_000.0));
        assert!(close(m.packets_per_second(1000.0), 100.0));
        assert!(close(m.bits_per_second(1500.0), 500_000.0));
        assert_eq!(m.bits_per_second(2100.0), 0.0);
    }

    #[test]
    fn rate_meter_memory_is_bounded_without_underestimating() {
        let mut m = RateMeter::new(1000.0);
        for i in 1..=20_000 {
            m.record(f64::from(i) * 0.05, 10);
        }
        assert!(m.samples.len() <= MAX_SAMPLES);
        assert!((m.packets_per_second(1000.0) - 20_000.0).abs() < 1.0);
    }

    #[test]
    fn frame_rate_counts_frames_per_second() {
        let mut f = FrameRate::new(1000.0);
        for i in 0..=50 {
            f.on_frame_end(f64::from(i) * 40.0);
        }
        assert!(close(f.frames_per_second(2000.0), 25.0));
        assert_eq!(f.frames_per_second(3500.0), 0.0);
    }
}
