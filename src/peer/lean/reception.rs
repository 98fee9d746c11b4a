//! Reception statistics of one stream the browser sends (RFC 3550 §6.4.1, appendix A.3 and
//! A.8), which the lean engine reports back in RTCP receiver reports: the browser's sender
//! uses the loss in them for its bandwidth estimate and the LSR/DLSR for its round-trip time.
//! Pure: arrival times are passed in.

use crate::media::Ssrc;
use rtc::rtcp::reception_report::ReceptionReport;
use std::time::Instant;

/// The sequence numbers of one stream so far (RFC 3550 A.1): the first, the highest and its
/// wraps. A packet behind the highest (reordered, sent again) leaves them as they are.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct SeqRange {
    first: Option<u16>,
    highest: u16,
    /// Wraps of the highest, times 65 536.
    cycles: u32,
}

impl SeqRange {
    pub(crate) fn on_seq(&mut self, seq: u16) {
        if self.first.is_none() {
            (self.first, self.highest) = (Some(seq), seq);
            return;
        }
        let ahead = seq.wrapping_sub(self.highest);
        if ahead != 0 && ahead < 0x8000 {
            if seq < self.highest {
                self.cycles += 1 << 16;
            }
            self.highest = seq;
        }
    }

    /// The highest with its wraps (RFC 3550's extended highest sequence number).
    pub(crate) fn extended_max(&self) -> u32 {
        self.cycles.wrapping_add(self.highest as u32)
    }

    /// Sequence numbers from the first to the highest, both counted (0 before any).
    pub(crate) fn expected(&self) -> u32 {
        self.first.map_or(0, |first| self.extended_max().wrapping_sub(first as u32).wrapping_add(1))
    }
}

#[derive(Debug, Clone)]
pub struct Reception {
    ssrc: Ssrc,
    clock_rate: f64,
    /// The clock arrival times are measured against (any fixed instant).
    epoch: Instant,
    seqs: SeqRange,
    received: u32,
    expected_prior: u32,
    received_prior: u32,
    /// Interarrival jitter in timestamp units (RFC 3550 A.8), as a float for the smoothing.
    jitter: f64,
    last_transit: Option<f64>,
    /// The middle 32 bits of the last sender report's NTP time, and when it arrived.
    last_sr: Option<(u32, Instant)>,
}

impl Reception {
    pub fn new(ssrc: Ssrc, clock_rate: u32, epoch: Instant) -> Self {
        Reception {
            ssrc,
            clock_rate: clock_rate as f64,
            epoch,
            seqs: SeqRange::default(),
            received: 0,
            expected_prior: 0,
            received_prior: 0,
            jitter: 0.0,
            last_transit: None,
            last_sr: None,
        }
    }

    pub fn on_packet(&mut self, seq: u16, timestamp: u32, arrival: Instant) {
        self.seqs.on_seq(seq);
        self.received += 1;
        let arrival_units = arrival.saturating_duration_since(self.epoch).as_secs_f64() * self.clock_rate;
        let transit = arrival_units - timestamp as f64;
        if let Some(last) = self.last_transit {
            // Timestamps wrap at 2^32: take the difference modulo that.
            let mut d = (transit - last).abs() % 4_294_967_296.0;
            if d > 2_147_483_648.0 {
                d = 4_294_967_296.0 - d;
            }
            self.jitter += (d - self.jitter) / 16.0;
        }
        self.last_transit = Some(transit);
    }

    pub fn on_sender_report(&mut self, ntp_time: u64, arrival: Instant) {
        self.last_sr = Some(((ntp_time >> 16) as u32, arrival));
    }

    /// The report block for this stream; starts the next reporting interval.
    pub fn report(&mut self, now: Instant) -> ReceptionReport {
        let expected = self.seqs.expected();
        let lost = (expected as i64 - self.received as i64).clamp(-0x80_0000, 0x7F_FFFF);
        let expected_interval = expected.wrapping_sub(self.expected_prior);
        let received_interval = self.received.wrapping_sub(self.received_prior);
        self.expected_prior = expected;
        self.received_prior = self.received;
        let lost_interval = expected_interval as i64 - received_interval as i64;
        let fraction_lost = if expected_interval == 0 || lost_interval <= 0 { 0 } else { ((lost_interval << 8) / expected_interval as i64).min(255) as u8 };
        let (last_sender_report, delay) = match self.last_sr {
            Some((lsr, at)) => (lsr, (now.saturating_duration_since(at).as_secs_f64() * 65_536.0) as u32),
            None => (0, 0),
        };
        ReceptionReport {
            ssrc: self.ssrc.0,
            fraction_lost,
            total_lost: (lost as i32 as u32) & 0x00FF_FFFF,
            last_sequence_number: self.seqs.extended_max(),
            jitter: self.jitter as u32,
            last_sender_report,
            delay,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(t0: Instant, ms: u64) -> Instant {
        t0 + Duration::from_millis(ms)
    }

    #[test]
    fn a_clean_stream_reports_no_loss_and_its_highest_sequence_number() {
        let t0 = Instant::now();
        let mut r = Reception::new(Ssrc(7), 90_000, t0);
        for i in 0..100u16 {
            // 30 packets a second, timestamps in step with arrival: no jitter.
            r.on_packet(1000 + i, 3000 * i as u32, at(t0, i as u64 * 100 / 3));
        }
        let report = r.report(at(t0, 3400));
        assert_eq!((report.ssrc, report.fraction_lost, report.total_lost, report.last_sequence_number), (7, 0, 0, 1099));
        assert!(report.jitter < 100, "steady arrival: {} timestamp units", report.jitter);
    }

    #[test]
    fn a_quarter_lost_in_one_interval_reads_as_a_fraction_of_64_of_256() {
        let t0 = Instant::now();
        let mut r = Reception::new(Ssrc(1), 48_000, t0);
        for i in 0..100u16 {
            r.on_packet(i, 960 * i as u32, at(t0, i as u64 * 20));
        }
        assert_eq!(r.report(at(t0, 2000)).fraction_lost, 0);
        for i in 100..200u16 {
            if i % 4 != 0 {
                r.on_packet(i, 960 * i as u32, at(t0, i as u64 * 20));
            }
        }
        let report = r.report(at(t0, 4000));
        assert_eq!(report.fraction_lost, 64);
        assert_eq!(report.total_lost, 25);
        let next = r.report(at(t0, 5000));
        assert_eq!(next.fraction_lost, 0, "a new interval with nothing expected reports nothing lost");
    }

    #[test]
    fn sequence_numbers_wrap_into_the_extended_highest_and_reordering_is_not_loss() {
        let t0 = Instant::now();
        let mut r = Reception::new(Ssrc(1), 48_000, t0);
        for (n, seq) in [65533u16, 65534, 65535, 1, 0, 2].into_iter().enumerate() {
            r.on_packet(seq, 960 * n as u32, at(t0, n as u64 * 20));
        }
        let report = r.report(at(t0, 200));
        assert_eq!(report.last_sequence_number, 65536 + 2);
        assert_eq!((report.total_lost, report.fraction_lost), (0, 0), "0 came late, not lost");
    }

    #[test]
    fn the_last_sender_report_is_echoed_with_the_delay_since_it_arrived() {
        let t0 = Instant::now();
        let mut r = Reception::new(Ssrc(1), 90_000, t0);
        r.on_packet(1, 0, t0);
        assert_eq!(r.report(t0).last_sender_report, 0, "none yet");
        r.on_sender_report(0x1234_5678_9ABC_DEF0, at(t0, 100));
        let report = r.report(at(t0, 600));
        assert_eq!(report.last_sender_report, 0x5678_9ABC);
        assert_eq!(report.delay, 32_768, "half a second in 1/65536 s");
    }

    #[test]
    fn arrival_that_wanders_shows_as_jitter() {
        let t0 = Instant::now();
        let mut r = Reception::new(Ssrc(1), 90_000, t0);
        for i in 0..200u16 {
            let wobble = if i % 2 == 0 { 0 } else { 10 };
            r.on_packet(i, 3000 * i as u32, at(t0, i as u64 * 33 + wobble));
        }
        let jitter_ms = r.report(at(t0, 7000)).jitter as f64 / 90.0;
        assert!((5.0..15.0).contains(&jitter_ms), "±10 ms arrival wobble: {jitter_ms} ms");
    }
}
