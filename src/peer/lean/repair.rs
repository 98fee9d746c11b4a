//! Asking the browser again for what its uplink lost (RFC 4585 generic NACK), for the video
//! it sends: a packet the bridge never got is missing for every receiver, so it is asked for
//! once, here, instead of by each receiver from a bridge that does not have it. The browser
//! sends it again on the same stream (no RTX is negotiated) and it is forwarded like any
//! other; receivers that asked the bridge for it meanwhile get it from the slot's history.
//!
//! Pure: arrival and tick times are passed in. Per stream the hot path is one comparison
//! while nothing is missing.

use crate::media::Ssrc;
use rtc::rtcp::transport_feedbacks::transport_layer_nack::{nack_pairs_from_sequence_numbers, TransportLayerNack};
use std::time::{Duration, Instant};

/// How often the missing packets are looked at (and a NACK may go out).
pub(crate) const INTERVAL: Duration = Duration::from_millis(20);
/// A packet is missing once a later one has arrived and it has not for this long: shorter
/// reordering is not loss.
const REORDER_WAIT: Duration = Duration::from_millis(5);
/// Asked again no sooner than this after the last ask, nor sooner than one round trip.
const RETRY_AFTER: Duration = Duration::from_millis(50);
/// Times one packet is asked for before it is given up (the keyframe request path repairs
/// what retransmission could not).
const MAX_ASKS: u8 = 4;
/// A packet older than this is not worth asking for: its frame is long overdue everywhere.
const GIVE_UP_AFTER: Duration = Duration::from_millis(1000);
/// A jump larger than this is a restarted or replaced stream, not loss.
const MAX_GAP: u16 = 256;
/// A packet further behind than this is a restarted stream, not a late one.
const MAX_BEHIND: u16 = 3000;
/// Missing packets remembered per stream at most.
const MAX_MISSING: usize = 512;

#[derive(Debug, Clone, Copy)]
struct Missing {
    seq: u16,
    since: Instant,
    asks: u8,
    last_ask: Option<Instant>,
}

/// The missing packets of one stream the browser sends.
#[derive(Debug, Clone)]
pub struct Repair {
    ssrc: Ssrc,
    highest: Option<u16>,
    missing: Vec<Missing>,
    /// Sequence numbers asked for, and how many of those arrived afterwards.
    pub(crate) asked: u64,
    pub(crate) recovered: u64,
}

impl Repair {
    pub fn new(ssrc: Ssrc) -> Self {
        Repair { ssrc, highest: None, missing: Vec::new(), asked: 0, recovered: 0 }
    }

    pub fn on_packet(&mut self, seq: u16, now: Instant) {
        let Some(highest) = self.highest else {
            self.highest = Some(seq);
            return;
        };
        let ahead = seq.wrapping_sub(highest);
        match ahead {
            0 => {}
            1 => self.highest = Some(seq),
            2..=MAX_GAP => {
                self.highest = Some(seq);
                for gap in 1..ahead {
                    self.missing.push(Missing { seq: highest.wrapping_add(gap), since: now, asks: 0, last_ask: None });
                }
                if self.missing.len() > MAX_MISSING {
                    let extra = self.missing.len() - MAX_MISSING;
                    self.missing.drain(..extra);
                }
            }
            _ if ahead < 0x8000 || highest.wrapping_sub(seq) > MAX_BEHIND => {
                // Restarted or replaced: start again from here.
                self.highest = Some(seq);
                self.missing.clear();
            }
            _ => {
                // Late: reordered, or the answer to an ask.
                if let Some(i) = self.missing.iter().position(|m| m.seq == seq) {
                    if self.missing.remove(i).asks > 0 {
                        self.recovered += 1;
                    }
                }
            }
        }
    }

    /// The NACK due at `now` (`rtt` is the site's round trip, when known), from `sender_ssrc`.
    pub fn due(&mut self, now: Instant, rtt: Option<Duration>, sender: Ssrc) -> Option<TransportLayerNack> {
        if self.missing.is_empty() {
            return None;
        }
        let retry = rtt.map_or(RETRY_AFTER, |rtt| rtt.max(RETRY_AFTER));
        self.missing.retain(|m| m.asks < MAX_ASKS && now.saturating_duration_since(m.since) < GIVE_UP_AFTER);
        let mut seqs = Vec::new();
        for m in &mut self.missing {
            let ready = match m.last_ask {
                None => now.saturating_duration_since(m.since) >= REORDER_WAIT,
                Some(last) => now.saturating_duration_since(last) >= retry,
            };
            if ready {
                m.asks += 1;
                m.last_ask = Some(now);
                seqs.push(m.seq);
            }
        }
        if seqs.is_empty() {
            return None;
        }
        self.asked += seqs.len() as u64;
        Some(TransportLayerNack { sender_ssrc: sender.0, media_ssrc: self.ssrc.0, nacks: nack_pairs_from_sequence_numbers(&seqs) })
    }

    pub(crate) fn missing(&self) -> usize {
        self.missing.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn asked(nack: &TransportLayerNack) -> Vec<u16> {
        nack.nacks.iter().flat_map(|p| p.packet_list()).collect()
    }

    fn stream(seqs: impl IntoIterator<Item = u16>, at: Instant) -> Repair {
        let mut r = Repair::new(Ssrc(7));
        for s in seqs {
            r.on_packet(s, at);
        }
        r
    }

    #[test]
    fn nothing_is_asked_while_every_packet_arrives() {
        let t = Instant::now();
        let mut r = stream(65_530..=65_535, t);
        (0..10).for_each(|s| r.on_packet(s, t));
        assert_eq!(r.due(t + Duration::from_millis(100), None, Ssrc(1)).map(|n| asked(&n)), None);
    }

    #[test]
    fn a_gap_is_asked_for_after_the_reordering_wait_and_again_after_a_round_trip() {
        let t = Instant::now();
        let mut r = stream([10, 11, 14], t);
        assert!(r.due(t + Duration::from_millis(1), None, Ssrc(1)).is_none(), "within the reordering wait");
        let nack = r.due(t + Duration::from_millis(6), None, Ssrc(1)).expect("asked");
        assert_eq!((nack.media_ssrc, asked(&nack)), (7, vec![12, 13]));
        assert!(r.due(t + Duration::from_millis(30), Some(Duration::from_millis(80)), Ssrc(1)).is_none(), "not before a round trip");
        let again = r.due(t + Duration::from_millis(90), Some(Duration::from_millis(80)), Ssrc(1)).expect("asked again");
        assert_eq!(asked(&again), vec![12, 13]);
        assert_eq!(r.asked, 4);
    }

    #[test]
    fn what_arrives_late_is_not_asked_for_and_counts_as_recovered_once_asked() {
        let t = Instant::now();
        let mut r = stream([1, 4], t);
        r.on_packet(2, t + Duration::from_millis(2));
        assert_eq!(asked(&r.due(t + Duration::from_millis(10), None, Ssrc(1)).unwrap()), vec![3]);
        r.on_packet(3, t + Duration::from_millis(20));
        assert_eq!((r.missing(), r.recovered), (0, 1));
        assert!(r.due(t + Duration::from_millis(200), None, Ssrc(1)).is_none());
    }

    #[test]
    fn a_packet_is_given_up_after_a_few_asks() {
        let t = Instant::now();
        let mut r = stream([1, 3], t);
        let asks = (1..20).filter(|i| r.due(t + Duration::from_millis(60 * i), None, Ssrc(1)).is_some()).count();
        assert_eq!(asks as u8, MAX_ASKS);
        assert_eq!(r.missing(), 0);
    }

    #[test]
    fn a_jump_is_a_new_stream_not_loss_and_a_wrap_is_not_a_gap() {
        let t = Instant::now();
        let mut r = stream([100, 101, 5000, 5001], t);
        assert!(r.due(t + Duration::from_millis(10), None, Ssrc(1)).is_none());
        let mut w = stream([65_534, 65_535, 1], t);
        assert_eq!(asked(&w.due(t + Duration::from_millis(10), None, Ssrc(1)).unwrap()), vec![0]);
    }

    #[test]
    fn nack_pairs_carry_the_following_sixteen_in_the_bitmask() {
        let t = Instant::now();
        let mut r = stream([0, 20], t);
        let nack = r.due(t + Duration::from_millis(10), None, Ssrc(1)).unwrap();
        assert_eq!(nack.nacks.len(), 2, "1..=17 in the first pair, 18 and 19 in the second");
        assert_eq!(asked(&nack), (1..20).collect::<Vec<u16>>());
    }
}
