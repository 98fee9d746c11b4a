//! The bridge as a sender towards one browser: per output slot what it sent (for RTCP sender
//! reports, RFC 3550 §6.4.1), and the round-trip time the browser's reception reports give
//! back (LSR/DLSR against the sender report they answer), and the loss they report on the
//! video slots (how much the site's downlink drops). Pure: times are passed in.

use super::reception::SeqRange;
use crate::media::Ssrc;
use rtc::rtcp::reception_report::ReceptionReport;
use rtc::rtcp::sender_report::SenderReport;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Seconds from 1900 (NTP) to 1970 (Unix).
const NTP_UNIX_OFFSET: u64 = 2_208_988_800;

/// 64-bit NTP time (32.32 fixed point) of a wall-clock instant.
pub(crate) fn ntp_time(at: SystemTime) -> u64 {
    let since = at.duration_since(UNIX_EPOCH).unwrap_or_default();
    let seconds = since.as_secs() + NTP_UNIX_OFFSET;
    let fraction = ((since.subsec_nanos() as u64) << 32) / 1_000_000_000;
    (seconds << 32) | fraction
}

/// The middle 32 bits of an NTP time, as LSR carries it (units of 1/65 536 s).
pub(crate) fn ntp_middle(ntp: u64) -> u32 {
    (ntp >> 16) as u32
}

/// What one output slot has sent.
#[derive(Debug, Clone)]
pub struct Sent {
    ssrc: Ssrc,
    clock_rate: f64,
    /// Packets sent (again on a NACK not counted), for the sender report (which carries the
    /// low 32 bits) and the gaps below.
    packets: u64,
    octets: u32,
    /// The RTP timestamp of the last packet and when it went out.
    last: Option<(u32, Instant)>,
    /// The sequence numbers sent, so the bridge knows the gaps it left itself: what its
    /// publisher's uplink lost.
    seqs: SeqRange,
    /// At the browser's last reception report on this slot: its extended highest sequence
    /// number, its cumulative loss, and the bridge's own gaps then.
    last_report: Option<(u32, u32, i64)>,
}

impl Sent {
    pub fn new(ssrc: Ssrc, clock_rate: u32) -> Self {
        Sent { ssrc, clock_rate: clock_rate as f64, packets: 0, octets: 0, last: None, seqs: SeqRange::default(), last_report: None }
    }

    pub fn on_packet(&mut self, seq: u16, timestamp: u32, payload_bytes: usize, at: Instant) {
        self.packets += 1;
        self.octets = self.octets.wrapping_add(payload_bytes as u32);
        self.last = Some((timestamp, at));
        self.seqs.on_seq(seq);
    }

    /// Sequence numbers the bridge skipped so far (never got from the publisher).
    fn gaps(&self) -> i64 {
        (self.seqs.expected() as i64 - self.packets as i64).max(0)
    }

    /// The share (percent) of what the bridge sent on this slot since the browser's previous
    /// report that did not arrive: the browser's loss less the gaps the bridge left itself, so
    /// a publisher's lossy uplink does not count against this receiver's downlink. `None` for
    /// the first report (it sets the baseline) or one that covers no new packets.
    pub fn downlink_loss(&mut self, report: &ReceptionReport) -> Option<f64> {
        let gaps = self.gaps();
        let previous = self.last_report.replace((report.last_sequence_number, report.total_lost, gaps));
        let (seq0, lost0, gaps0) = previous?;
        let expected = report.last_sequence_number.wrapping_sub(seq0) as i32 as i64;
        if expected <= 0 {
            return None;
        }
        let lost = (report.total_lost.wrapping_sub(lost0) as i32 as i64) - (gaps - gaps0);
        Some((lost.max(0) as f64 / expected as f64 * 100.0).min(100.0))
    }

    /// The sender report for this slot at `now` (`wall` the same instant on the wall clock),
    /// or `None` before its first packet: its RTP time is the last packet's timestamp moved on
    /// by the time since, so a receiver can place the stream on the wall clock.
    pub fn report(&self, now: Instant, wall: SystemTime) -> Option<SenderReport> {
        let (timestamp, at) = self.last?;
        let since = now.saturating_duration_since(at).as_secs_f64();
        Some(SenderReport {
            ssrc: self.ssrc.0,
            ntp_time: ntp_time(wall),
            rtp_time: timestamp.wrapping_add((since * self.clock_rate) as u32),
            packet_count: self.packets as u32,
            octet_count: self.octets,
            reports: Vec::new(),
            profile_extensions: Default::default(),
        })
    }
}

/// The round-trip time a reception report gives, received at wall-clock `now`: now − LSR −
/// DLSR (RFC 3550 §6.4.1), or `None` if it answers no sender report.
pub fn round_trip(report: &ReceptionReport, now: SystemTime) -> Option<Duration> {
    if report.last_sender_report == 0 {
        return None;
    }
    let units = ntp_middle(ntp_time(now)).wrapping_sub(report.last_sender_report).wrapping_sub(report.delay);
    // A negative result (clock steps, a report answering a future SR) wraps to a huge value.
    (units < 65_536 * 60).then(|| Duration::from_secs_f64(units as f64 / 65_536.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn downlink_loss_is_what_the_receiver_lost_less_the_gaps_the_bridge_left_itself() {
        let t0 = Instant::now();
        let mut s = Sent::new(Ssrc(7), 90_000);
        let report = |highest: u32, total_lost: u32| ReceptionReport { ssrc: 7, total_lost, last_sequence_number: highest, ..Default::default() };
        (0..100u16).for_each(|q| s.on_packet(q, 0, 1000, t0));
        assert_eq!(s.downlink_loss(&report(99, 0)), None, "the first report is the baseline");
        // 100 more, of which the publisher's uplink lost 10 (the bridge never had them).
        (100..200u16).filter(|q| q % 10 != 0).for_each(|q| s.on_packet(q, 0, 1000, t0));
        assert_eq!(s.downlink_loss(&report(199, 10)), Some(0.0), "the receiver misses only what the bridge never sent");
        // 100 more, all sent; the receiver misses 20 of them on its own downlink.
        (200..300u16).for_each(|q| s.on_packet(q, 0, 1000, t0));
        assert_eq!(s.downlink_loss(&report(299, 30)), Some(20.0));
        assert_eq!(s.downlink_loss(&report(299, 30)), None, "nothing new since");
    }

    #[test]
    fn sequence_numbers_that_wrap_are_not_gaps() {
        let t0 = Instant::now();
        let mut s = Sent::new(Ssrc(7), 90_000);
        (65_000..=65_535u16).chain(0..500).for_each(|q| s.on_packet(q, 0, 1000, t0));
        assert_eq!(s.gaps(), 0);
    }

    #[test]
    fn ntp_time_counts_from_1900_in_32_32_fixed_point() {
        let at = UNIX_EPOCH + Duration::from_millis(1_500);
        let ntp = ntp_time(at);
        assert_eq!(ntp >> 32, NTP_UNIX_OFFSET + 1);
        assert_eq!(ntp & 0xFFFF_FFFF, 1 << 31, "half a second");
        assert_eq!(ntp_middle(ntp), (((NTP_UNIX_OFFSET + 1) as u32) << 16) | 0x8000);
    }

    #[test]
    fn a_sender_report_moves_the_last_timestamp_on_by_the_time_since_and_counts_what_was_sent() {
        let t0 = Instant::now();
        let mut s = Sent::new(Ssrc(42), 90_000);
        assert!(s.report(t0, SystemTime::now()).is_none(), "nothing sent yet");
        s.on_packet(1, 1_000, 1_000, t0);
        s.on_packet(2, 1_000, 800, t0);
        let sr = s.report(t0 + Duration::from_millis(100), SystemTime::now()).unwrap();
        assert_eq!((sr.ssrc, sr.packet_count, sr.octet_count), (42, 2, 1_800));
        assert_eq!(sr.rtp_time, 1_000 + 9_000, "100 ms at 90 kHz");
    }

    #[test]
    fn the_round_trip_is_now_less_the_echoed_report_and_the_receivers_delay() {
        let sent_at = UNIX_EPOCH + Duration::from_secs(1_000_000);
        let lsr = ntp_middle(ntp_time(sent_at));
        // The receiver held it 200 ms; it comes back 250 ms after it was sent: 50 ms on the wire.
        let report = ReceptionReport { last_sender_report: lsr, delay: 65_536 / 5, ..Default::default() };
        let rtt = round_trip(&report, sent_at + Duration::from_millis(250)).unwrap();
        assert!((rtt.as_secs_f64() - 0.050).abs() < 0.001, "{rtt:?}");
        assert_eq!(round_trip(&ReceptionReport::default(), sent_at), None, "no sender report answered");
        let future = ReceptionReport { last_sender_report: lsr, delay: 65_536, ..Default::default() };
        assert_eq!(round_trip(&future, sent_at), None, "a negative round trip is not one");
    }
}
