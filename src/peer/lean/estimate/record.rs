//! What was sent to one site, by transport-wide sequence number, until the browser reports on
//! it. The numbers are the bridge's own and go up by one per packet, so the record is a queue
//! in send order indexed by the number's distance from its front: one push per packet sent, one
//! lookup per packet reported, no hashing on the forwarding path.

use crate::media::Ssrc;
use rtc::interceptor::{Acknowledgement, PacketReport};
use rtc::rtcp::transport_feedbacks::cc_feedback_report::Ecn;
use std::collections::VecDeque;
use std::time::Instant;

#[derive(Debug, Default)]
pub(crate) struct SentRecord {
    /// From the oldest packet not yet reported or forgotten; `None` for a number that was given
    /// out but whose packet was not sent.
    packets: VecDeque<Option<PacketReport>>,
    /// The unwrapped number of the front of `packets`; `None` until the first packet is sent
    /// (the browser numbers nothing before it).
    front: Option<u64>,
    /// The highest number the browser reported as arrived.
    highest_arrived: Option<u64>,
}

impl SentRecord {
    /// Packets recorded and not yet reported or forgotten.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.packets.iter().filter(|p| p.is_some()).count()
    }

    /// The unwrapped number of a 16-bit one, taken as the nearest to the newest recorded.
    fn unwrap(&self, front: u64, seq: u16) -> u64 {
        let next = front + self.packets.len() as u64;
        let next16 = next as u16;
        let behind = next16.wrapping_sub(seq);
        if behind <= u16::MAX / 2 {
            next.saturating_sub(u64::from(behind))
        } else {
            next + u64::from(seq.wrapping_sub(next16))
        }
    }

    /// A packet went out at `departure` numbered `seq`.
    pub(crate) fn sent(&mut self, ssrc: Ssrc, rtp_seq: u16, seq: u16, size: usize, departure: Instant) {
        let front = *self.front.get_or_insert(u64::from(seq));
        let id = self.unwrap(front, seq);
        if id < front {
            return; // older than what is kept: never numbered twice by the bridge
        }
        let index = (id - front) as usize;
        while self.packets.len() <= index {
            self.packets.push_back(None);
        }
        self.packets[index] = Some(PacketReport {
            ssrc: ssrc.0,
            id,
            rtp_sequence_number: rtp_seq,
            is_twcc: true,
            twcc_sequence_number: seq,
            size,
            arrived: false,
            departure,
            arrival: None,
            ecn: Ecn::NotEct,
        });
    }

    /// The browser's word on one packet.
    pub(crate) fn acknowledge(&mut self, ack: &Acknowledgement) {
        let Some(front) = self.front else { return };
        let id = self.unwrap(front, ack.sequence_number);
        let Some(Some(p)) = id.checked_sub(front).and_then(|i| self.packets.get_mut(i as usize)) else { return };
        p.arrived = ack.arrived;
        p.arrival = ack.arrival;
        if ack.arrived {
            self.highest_arrived = Some(self.highest_arrived.map_or(id, |h| h.max(id)));
        }
    }

    /// Everything up to the highest packet reported as arrived, in send order (those before it
    /// not reported as arrived count as lost), taken out of the record.
    pub(crate) fn take_reports(&mut self) -> Vec<PacketReport> {
        let (Some(highest), Some(front)) = (self.highest_arrived, self.front.as_mut()) else { return Vec::new() };
        let mut reports = Vec::new();
        while *front <= highest {
            let Some(p) = self.packets.pop_front() else { break };
            *front += 1;
            reports.extend(p);
        }
        reports
    }

    /// Forgets the oldest packets sent before `cutoff` that the browser has not reported as
    /// arrived: it will not report on them now.
    pub(crate) fn forget_before(&mut self, cutoff: Instant) {
        let Some(front) = self.front.as_mut() else { return };
        while let Some(oldest) = self.packets.front() {
            match oldest {
                Some(p) if p.arrived || p.departure >= cutoff => break,
                _ => {
                    self.packets.pop_front();
                    *front += 1;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn arrived(seq: u16, at_ms: u64) -> Acknowledgement {
        Acknowledgement { sequence_number: seq, arrived: true, arrival: Some(Duration::from_millis(at_ms)), ecn: Ecn::NotEct }
    }

    #[test]
    fn reports_come_in_send_order_across_the_wrap_with_the_missing_ones_lost() {
        let t0 = Instant::now();
        let mut r = SentRecord::default();
        let first = u16::MAX - 2;
        for k in 0..6u16 {
            r.sent(Ssrc(7), k, first.wrapping_add(k), 1000, t0 + Duration::from_millis(u64::from(k)));
        }
        // The browser reports the 1st, 2nd, 4th and 6th (numbers 65533, 65534, 0, 2).
        for (k, seq) in [(0u64, first), (1, first.wrapping_add(1)), (3, first.wrapping_add(3)), (5, first.wrapping_add(5))] {
            r.acknowledge(&arrived(seq, 20 + k));
        }
        let reports = r.take_reports();
        let seen: Vec<(u16, bool)> = reports.iter().map(|p| (p.twcc_sequence_number, p.arrived)).collect();
        assert_eq!(seen, vec![(65533, true), (65534, true), (65535, false), (0, true), (1, false), (2, true)]);
        assert!(reports.windows(2).all(|w| w[0].id < w[1].id), "in send order");
        assert_eq!(r.len(), 0);
        assert!(r.take_reports().is_empty(), "each packet is reported once");
    }

    #[test]
    fn a_number_given_out_but_not_sent_leaves_a_gap_that_reports_nothing() {
        let t0 = Instant::now();
        let mut r = SentRecord::default();
        r.sent(Ssrc(7), 1, 10, 1000, t0);
        r.sent(Ssrc(7), 2, 12, 1000, t0); // 11 was stamped, and the send failed
        r.acknowledge(&arrived(12, 5));
        let seen: Vec<u16> = r.take_reports().iter().map(|p| p.twcc_sequence_number).collect();
        assert_eq!(seen, vec![10, 12]);
    }

    #[test]
    fn what_is_never_reported_is_forgotten_after_the_horizon_and_late_words_on_it_are_ignored() {
        let t0 = Instant::now();
        let mut r = SentRecord::default();
        for k in 0..1000u16 {
            r.sent(Ssrc(7), k, k, 1000, t0 + Duration::from_millis(u64::from(k)));
        }
        r.forget_before(t0 + Duration::from_millis(600));
        assert_eq!(r.len(), 400);
        r.acknowledge(&arrived(100, 5)); // forgotten already
        assert!(r.take_reports().is_empty());
        r.acknowledge(&arrived(700, 5));
        assert_eq!(r.take_reports().len(), 101, "600..=700");
    }
}
