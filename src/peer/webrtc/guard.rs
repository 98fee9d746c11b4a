//! An interceptor that holds webrtc-rs's NACK responder to the retransmission budget the lean
//! engine keeps (`budget::RetransmitBudget`, `budget::RESEND_GAP`).
//!
//! webrtc-rs answers every sequence number a NACK names with the buffered packet, every time
//! it is named: a 1.2 kB compound of 75 NACKs with full bitmasks asks for 1 275 packets, and
//! the same compound again asks for them again. This sits wire-ward of the responder, where
//! its retransmissions pass on their way out (tagged [`Attribute::Retransmission`]); one that
//! is over the budget, or that sent the same packet again within the gap, is dropped here and
//! counted on the site's board. First transmissions and RTCP pass untouched.

use super::passthrough::{PassThrough, Watch};
use crate::health::board::StatsBoard;
use crate::peer::budget::{Budget, RetransmitBudget, RESEND_GAP};
use rtc::interceptor::{Attribute, Packet, TaggedPacket};
use rtc::shared::marshal::MarshalSize;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Instant;
use tracing::warn;

/// Where it sits: between the pacer (3 000) and the NACK responder (4 000), so on the write
/// walk (application to wire) it sees what the responder queued.
pub(crate) const SLOT: usize = 3_500;

/// Packets sent again that are remembered for the gap; beyond this the oldest are forgotten
/// (at the budget's 240-packet burst, far more than the gap can hold).
const REMEMBERED: usize = 1024;

/// The interceptor: first transmissions and RTCP pass, retransmissions within the budget.
pub(crate) type NackGuard = PassThrough<RetransmitGuard>;

/// Which retransmissions may go out: within the site's budget, each packet at most once a gap.
pub(crate) struct RetransmitGuard {
    budget: RetransmitBudget,
    /// (SSRC, sequence number) → when it was last sent again.
    resent: HashMap<(u32, u16), Instant>,
    order: VecDeque<(u32, u16)>,
    /// Whose budget it is: refusals are counted on the board (the site's `over_budget`).
    site_id: String,
    site: usize,
    board: Option<Arc<StatsBoard>>,
}

impl NackGuard {
    pub(crate) fn guard(site_id: String, site: usize, board: Option<Arc<StatsBoard>>) -> Self {
        PassThrough::new(RetransmitGuard { site_id, budget: RetransmitBudget::default(), resent: HashMap::new(), order: VecDeque::new(), site, board })
    }
}

impl RetransmitGuard {
    /// May this retransmission of `ssrc`/`seq`, `size` bytes, go out at `now`?
    fn allow(&mut self, ssrc: u32, seq: u16, size: usize, now: Instant) -> bool {
        let recent = self.resent.get(&(ssrc, seq)).is_some_and(|at| now.saturating_duration_since(*at) < RESEND_GAP);
        let ok = if recent {
            self.budget.refused += 1;
            false
        } else {
            self.budget.allow(size, now)
        };
        if ok {
            if self.resent.insert((ssrc, seq), now).is_none() {
                self.order.push_back((ssrc, seq));
            }
            while self.order.len() > REMEMBERED {
                if let Some(old) = self.order.pop_front() {
                    self.resent.remove(&old);
                }
            }
            return true;
        }
        if let Some(board) = &self.board {
            board.refuse(self.site, Budget::Nacks, 1);
        }
        if !self.budget.logged {
            self.budget.logged = true;
            // Said from webrtc-rs's driver task, outside the peer's span: the site is named here.
            warn!(site = %self.site_id, budget = Budget::Nacks.code(), "over budget: this site's NACKs ask for more retransmissions than a receiver needs; the rest are not sent (counted; logged once per connection)");
        }
        false
    }
}

impl Watch for RetransmitGuard {
    fn admit_write(&mut self, msg: &TaggedPacket) -> bool {
        match &msg.message.packet {
            Packet::Rtp(p) if msg.message.has(&Attribute::Retransmission) => self.allow(p.header.ssrc, p.header.sequence_number, p.marshal_size(), msg.now),
            _ => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtc::interceptor::AttributedPacket;
    use rtc::sansio::Protocol;
    use std::time::Duration;

    fn packet(seq: u16, now: Instant, retransmission: bool) -> TaggedPacket {
        let rtp = rtc::rtp::Packet {
            header: rtc::rtp::header::Header { version: 2, ssrc: 7, sequence_number: seq, payload_type: 96, ..Default::default() },
            payload: vec![0u8; 988].into(),
        };
        let message = AttributedPacket::new(Packet::Rtp(rtp));
        let message = if retransmission { message.with(Attribute::Retransmission) } else { message };
        TaggedPacket { now, transport: Default::default(), message }
    }

    /// Writes `packets` through the guard; how many came out.
    fn through(g: &mut NackGuard, packets: impl IntoIterator<Item = TaggedPacket>) -> usize {
        for p in packets {
            g.handle_write(p).unwrap();
        }
        std::iter::from_fn(|| g.poll_write()).count()
    }

    #[test]
    fn a_flood_of_retransmissions_gets_the_budget_and_no_more() {
        let t0 = Instant::now();
        let mut g = NackGuard::guard("hang-gai".into(), 0, None);
        // What one compound of 75 NACKs with full bitmasks makes webrtc-rs queue: 1 275 packets.
        assert_eq!(through(&mut g, (0..1275).map(|s| packet(s, t0, true))), 240, "the burst");
        // The same compound every 100 ms for 10 s: about the rate (120/s, 150 kB/s), not the flood.
        let mut sent = 0;
        for tick in 1..=100u64 {
            let now = t0 + Duration::from_millis(100 * tick);
            sent += through(&mut g, (0..1275u16).map(|s| packet(s.wrapping_add((1275 * tick) as u16), now, true)));
        }
        assert!((1150..=1250).contains(&sent), "{sent} sent again in 10 s");
        assert_eq!(g.watch.budget.refused, 1275 * 101 - 240 - sent as u64);
    }

    #[test]
    fn a_packet_is_sent_again_at_most_once_per_gap() {
        let t0 = Instant::now();
        let mut g = NackGuard::guard("hang-gai".into(), 0, None);
        assert_eq!(through(&mut g, [packet(5, t0, true)]), 1);
        assert_eq!(through(&mut g, [packet(5, t0 + Duration::from_millis(50), true)]), 0, "asked again within the gap");
        assert_eq!(through(&mut g, [packet(5, t0 + RESEND_GAP + Duration::from_millis(10), true)]), 1, "after it");
    }

    #[test]
    fn first_transmissions_pass_untouched() {
        let t0 = Instant::now();
        let mut g = NackGuard::guard("hang-gai".into(), 0, None);
        assert_eq!(through(&mut g, (0..5000).map(|s| packet(s, t0, false))), 5000);
        assert_eq!(g.watch.budget.refused, 0);
    }
}
