//! What one site may make the bridge do for it, per second: token buckets, time passed in.
//! Each budget refills at its rate up to its burst; work over budget is dropped (and counted
//! by the caller), never queued, so a hostile or broken page cannot make the bridge spend on
//! it what other sites need.

use std::time::{Duration, Instant};

/// A token bucket: `rate` per second, at most `burst` saved up.
#[derive(Debug, Clone)]
pub struct Bucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    at: Option<Instant>,
}

impl Bucket {
    pub fn new(rate: f64, burst: f64) -> Self {
        Bucket { rate, burst, tokens: burst, at: None }
    }

    fn refill(&mut self, now: Instant) {
        if let Some(at) = self.at {
            self.tokens = (self.tokens + now.saturating_duration_since(at).as_secs_f64() * self.rate).min(self.burst);
        }
        self.at = Some(now);
    }

    /// The tokens there are now.
    pub fn available(&mut self, now: Instant) -> f64 {
        self.refill(now);
        self.tokens
    }

    /// Takes `n` tokens if there are that many.
    pub fn take(&mut self, n: f64, now: Instant) -> bool {
        self.refill(now);
        if self.tokens >= n {
            self.tokens -= n;
            true
        } else {
            false
        }
    }
}

/// Retransmissions a receiver's NACKs may ask of the bridge: packets and bytes per second.
/// A receiver losing 20 % of a full downlink (≈ 300 video packets/s) asks for ≈ 60/s; the
/// budget leaves room for twice that and a burst after a short cut.
pub const RETRANSMIT_PACKETS_PER_S: f64 = 120.0;
pub const RETRANSMIT_PACKETS_BURST: f64 = 240.0;
pub const RETRANSMIT_BYTES_PER_S: f64 = 150_000.0;
pub const RETRANSMIT_BYTES_BURST: f64 = 300_000.0;
/// A packet is sent again at most once per this (or per round trip, if longer): NACKs that
/// repeat within it ask for what is already on its way.
pub const RESEND_GAP: Duration = Duration::from_millis(100);

#[derive(Debug, Clone)]
pub struct RetransmitBudget {
    packets: Bucket,
    bytes: Bucket,
    /// Asked for but not sent: over budget, or sent again too recently.
    pub refused: u64,
    /// Whether the log has said so (once per connection).
    pub logged: bool,
}

impl Default for RetransmitBudget {
    fn default() -> Self {
        RetransmitBudget {
            packets: Bucket::new(RETRANSMIT_PACKETS_PER_S, RETRANSMIT_PACKETS_BURST),
            bytes: Bucket::new(RETRANSMIT_BYTES_PER_S, RETRANSMIT_BYTES_BURST),
            refused: 0,
            logged: false,
        }
    }
}

impl RetransmitBudget {
    /// May one more packet of `size` bytes be sent again now?
    pub fn allow(&mut self, size: usize, now: Instant) -> bool {
        // Both buckets must have room; the bytes are only taken when the packet goes.
        let ok = self.packets.take(1.0, now) && self.bytes.take(size as f64, now);
        if !ok {
            self.refused += 1;
        }
        ok
    }
}

/// Distinct SSRCs the bridge follows from one site's connection: audio, a camera's three
/// simulcast layers and a shared screen's, each with its retransmission SSRC, is 14. Each new
/// one costs map entries, a layer in the router (its route table rebuilt under the control
/// lock) and a keyframe task; packets with more are dropped.
pub const MAX_SSRCS: usize = 32;
/// Offers a site may make per minute (bursts of [`RENEGOTIATION_BURST`]): a page renegotiates
/// when it shares its screen, switches camera or restarts ICE, a few times a minute at most.
/// Each offer is parsed, answered and its ICE credentials registered.
pub const RENEGOTIATIONS_PER_MINUTE: f64 = 30.0;
pub const RENEGOTIATION_BURST: f64 = 10.0;
/// m-sections a site's offer may add beyond the bridge's own output slots (a page sends
/// audio, a camera and a shared screen, and may keep a few stopped transceivers).
pub const MAX_SITE_SECTIONS: usize = 16;

pub use crate::health::board::Budget;

/// The new SSRCs a site's packets bring: each admitted while the site has fewer than
/// [`MAX_SSRCS`], then refused. Known SSRCs are not asked about.
#[derive(Debug, Default, Clone)]
pub struct SsrcBudget {
    pub refused: u64,
}

impl SsrcBudget {
    /// May a packet with a new SSRC open one more (`known` are followed already)?
    pub fn admit(&mut self, known: usize) -> bool {
        let ok = known < MAX_SSRCS;
        if !ok {
            self.refused += 1;
        }
        ok
    }
}

/// Offers a site may make: a token bucket per minute, time passed in.
#[derive(Debug, Clone)]
pub struct RenegotiationBudget {
    offers: Bucket,
    pub refused: u64,
}

impl Default for RenegotiationBudget {
    fn default() -> Self {
        RenegotiationBudget { offers: Bucket::new(RENEGOTIATIONS_PER_MINUTE / 60.0, RENEGOTIATION_BURST), refused: 0 }
    }
}

impl RenegotiationBudget {
    pub fn allow(&mut self, now: Instant) -> bool {
        let ok = self.offers.take(1.0, now);
        if !ok {
            self.refused += 1;
        }
        ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_gives_its_burst_then_its_rate() {
        let t0 = Instant::now();
        let mut b = Bucket::new(10.0, 5.0);
        assert_eq!((0..8).filter(|_| b.take(1.0, t0)).count(), 5, "the burst");
        assert!(!b.take(1.0, t0 + Duration::from_millis(50)), "half a token after 50 ms");
        assert!(b.take(1.0, t0 + Duration::from_millis(100)));
        assert_eq!((0..100).filter(|_| b.take(1.0, t0 + Duration::from_secs(60))).count(), 5, "never more than the burst saved");
    }

    #[test]
    fn a_flood_of_nacks_gets_the_budget_and_no_more() {
        let t0 = Instant::now();
        let mut r = RetransmitBudget::default();
        // 1 275 packets asked for at once (a 1.2 kB compound of 75 NACKs with full bitmasks).
        let sent = (0..1275).filter(|_| r.allow(1000, t0)).count();
        assert_eq!(sent, 240, "the packet burst");
        assert_eq!(r.refused, 1035);
        // The same flood every 100 ms for 10 s: about the rate, not the flood.
        let mut total = 0;
        for tick in 1..=100u64 {
            total += (0..1275).filter(|_| r.allow(1000, t0 + Duration::from_millis(100 * tick))).count();
        }
        assert!((1150..=1250).contains(&total), "{total} sent in 10 s at 120/s (150 kB/s)");
    }

    #[test]
    fn a_site_gets_its_ssrcs_and_no_more() {
        let mut b = SsrcBudget::default();
        let admitted = (0..1000).filter(|&known| b.admit(known.min(MAX_SSRCS))).count();
        assert_eq!(admitted, MAX_SSRCS);
        assert_eq!(b.refused, 1000 - MAX_SSRCS as u64);
    }

    #[test]
    fn offers_get_their_burst_then_thirty_a_minute() {
        let t0 = Instant::now();
        let mut r = RenegotiationBudget::default();
        assert_eq!((0..100).filter(|_| r.allow(t0)).count(), RENEGOTIATION_BURST as usize, "the burst");
        // An offer every 100 ms for a minute: about the rate, not 600.
        let allowed = (1..=600u64).filter(|i| r.allow(t0 + Duration::from_millis(100 * i))).count();
        assert!((29..=31).contains(&allowed), "{allowed} offers in a minute");
        assert_eq!(r.refused, 90 + 600 - allowed as u64);
    }
}
