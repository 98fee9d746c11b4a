//! What one site may make the bridge do for it, per second: token buckets, time passed in.
//! One set of rules for both media engines (`lean/` and the webrtc-rs one in `mod.rs`).
//! Each budget refills at its rate up to its burst; work over budget is dropped (and counted
//! by the caller), never queued, so a hostile or broken page cannot make the bridge spend on
//! it what other sites need.

use std::time::{Duration, Instant};

/// A token bucket: `rate` per second, at most `burst` saved up.
#[derive(Debug, Clone)]
pub(crate) struct Bucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    at: Option<Instant>,
}

impl Bucket {
    pub(crate) fn new(rate: f64, burst: f64) -> Self {
        Bucket { rate, burst, tokens: burst, at: None }
    }

    fn refill(&mut self, now: Instant) {
        if let Some(at) = self.at {
            self.tokens = (self.tokens + now.saturating_duration_since(at).as_secs_f64() * self.rate).min(self.burst);
        }
        self.at = Some(now);
    }

    /// A new rate and burst from now on (what was saved up is kept, up to the new burst).
    pub(crate) fn set_rate(&mut self, rate: f64, burst: f64, now: Instant) {
        self.refill(now);
        (self.rate, self.burst) = (rate, burst);
        self.tokens = self.tokens.min(burst);
    }

    /// The tokens there are now.
    pub(crate) fn available(&mut self, now: Instant) -> f64 {
        self.refill(now);
        self.tokens
    }

    /// Takes `n` tokens if there are that many.
    pub(crate) fn take(&mut self, n: f64, now: Instant) -> bool {
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
pub(crate) const RETRANSMIT_PACKETS_PER_S: f64 = 120.0;
pub(crate) const RETRANSMIT_PACKETS_BURST: f64 = 240.0;
pub(crate) const RETRANSMIT_BYTES_PER_S: f64 = 150_000.0;
pub(crate) const RETRANSMIT_BYTES_BURST: f64 = 300_000.0;
/// NACK messages a receiver may send a second, whatever they ask for. Chromium asks for a
/// stream's missing packets when it sees a gap and again every 20 ms while they are due; on a
/// line capped to 1 Mbit/s under five cameras, its NACKs came at 70–100 a second, most of
/// them held for the line's share. Faster is a flood, counted and refused as such even where
/// the share would hold every repair it asks for (a hostile peer's 300 a second, say).
pub(crate) const NACKS_PER_S: f64 = 200.0;
pub(crate) const NACKS_BURST: f64 = 200.0;
/// A packet is sent again at most once per this (or per round trip, if longer): NACKs that
/// repeat within it ask for what is already on its way.
pub(crate) const RESEND_GAP: Duration = Duration::from_millis(100);

#[derive(Debug, Clone)]
pub struct RetransmitBudget {
    packets: Bucket,
    bytes: Bucket,
    nacks: Bucket,
    /// Asked for but not sent: over budget, or sent again too recently.
    pub(crate) refused: u64,
    /// Whether the log has said so (once per connection).
    pub(crate) logged: bool,
}

impl Default for RetransmitBudget {
    fn default() -> Self {
        RetransmitBudget {
            packets: Bucket::new(RETRANSMIT_PACKETS_PER_S, RETRANSMIT_PACKETS_BURST),
            bytes: Bucket::new(RETRANSMIT_BYTES_PER_S, RETRANSMIT_BYTES_BURST),
            nacks: Bucket::new(NACKS_PER_S, NACKS_BURST),
            refused: 0,
            logged: false,
        }
    }
}

impl RetransmitBudget {
    /// May the site's NACK that asks for `asked` packets be answered at all? If not, they
    /// are all counted as refused.
    pub(crate) fn hear(&mut self, asked: usize, now: Instant) -> bool {
        let ok = self.nacks.take(1.0, now);
        if !ok {
            self.refused += asked as u64;
        }
        ok
    }

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
pub(crate) const MAX_SSRCS: usize = 32;
/// Offers a site may make per minute (bursts of [`RENEGOTIATION_BURST`]): a page renegotiates
/// when it shares its screen, switches camera or restarts ICE, a few times a minute at most.
/// Each offer is parsed, answered and its ICE credentials registered.
pub(crate) const RENEGOTIATIONS_PER_MINUTE: f64 = 30.0;
pub(crate) const RENEGOTIATION_BURST: f64 = 10.0;
/// m-sections a site's offer may add beyond the bridge's own output slots (a page sends
/// audio, a camera and a shared screen, and may keep a few stopped transceivers).
pub(crate) const MAX_SITE_SECTIONS: usize = 16;

pub(crate) use crate::health::board::Budget;

/// The new SSRCs a site's packets bring: each admitted while the site has fewer than
/// [`MAX_SSRCS`], then refused. Known SSRCs are not asked about.
#[derive(Debug, Default, Clone)]
pub(crate) struct SsrcBudget {
    pub(crate) refused: u64,
}

impl SsrcBudget {
    /// May a packet with a new SSRC open one more (`known` are followed already)?
    pub(crate) fn admit(&mut self, known: usize) -> bool {
        let ok = known < MAX_SSRCS;
        if !ok {
            self.refused += 1;
        }
        ok
    }
}

/// Offers a site may make: a token bucket per minute, time passed in.
#[derive(Debug, Clone)]
pub(crate) struct RenegotiationBudget {
    offers: Bucket,
    pub(crate) refused: u64,
}

impl Default for RenegotiationBudget {
    fn default() -> Self {
        RenegotiationBudget { offers: Bucket::new(RENEGOTIATIONS_PER_MINUTE / 60.0, RENEGOTIATION_BURST), refused: 0 }
    }
}

impl RenegotiationBudget {
    pub(crate) fn allow(&mut self, now: Instant) -> bool {
        let ok = self.offers.take(1.0, now);
        if !ok {
            self.refused += 1;
        }
        ok
    }
}

/// Remote candidates a site may name (trickled or in its offers), counted by address: a
/// browser gathers a handful per ICE restart. With the webrtc engine each one is a remote
/// candidate its full ICE agent pairs and sends checks to, so the cap also bounds where a
/// site can make the bridge send STUN.
pub(crate) const MAX_CANDIDATES: usize = 64;

/// Tracks the webrtc engine reads from one site's connection: a page sends audio, a camera
/// and a shared screen. Each may have [`crate::peer::inbound::MAX_LAYERS`] layers, so this
/// keeps the SSRCs followed within [`MAX_SSRCS`], as the lean engine does per SSRC.
pub(crate) const MAX_TRACKS: usize = MAX_SSRCS / crate::peer::inbound::MAX_LAYERS;

/// The m-sections of an SDP (`m=` lines).
pub(crate) fn sections(sdp: &str) -> usize {
    sdp.lines().filter(|l| l.starts_with("m=")).count()
}

/// What the candidate budget counts a candidate line as (`candidate:<foundation> <component>
/// <udp|tcp> <priority> <address> <port> typ …`, with or without `a=`): its transport, address
/// and port, so the same candidate named twice counts once. None for what is not one.
pub(crate) fn candidate_address(candidate: &str) -> Option<String> {
    let line = candidate.trim().trim_start_matches("a=").strip_prefix("candidate:")?;
    let fields: Vec<&str> = line.split_ascii_whitespace().collect();
    let (transport, address, port) = (fields.get(2)?, fields.get(4)?, fields.get(5)?);
    Some(format!("{} {address} {port}", transport.to_ascii_lowercase()))
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
    fn nacks_faster_than_a_browser_sends_them_are_not_heard() {
        let t0 = Instant::now();
        let mut r = RetransmitBudget::default();
        // A browser on a full line: 100 NACKs a second for 10 s, each for 3 packets.
        let heard = (0..1000u64).filter(|i| r.hear(3, t0 + Duration::from_millis(10 * i))).count();
        assert_eq!((heard, r.refused), (1000, 0));
        // A flood: one every millisecond for a second, each for 68.
        let t1 = t0 + Duration::from_secs(20);
        let heard = (0..1000u64).filter(|i| r.hear(68, t1 + Duration::from_millis(*i))).count();
        assert!((395..=405).contains(&heard), "{heard} heard: the burst and a second's rate");
        assert_eq!(r.refused, (1000 - heard as u64) * 68, "every packet of an unheard NACK counts as refused");
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

    #[test]
    fn sections_and_candidates_are_counted_as_the_budgets_count_them() {
        let sdp = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:1\r\n";
        assert_eq!(sections(sdp), 2);
        let a = candidate_address("candidate:1 1 UDP 2122260223 192.168.1.20 54321 typ host generation 0");
        assert_eq!(a.as_deref(), Some("udp 192.168.1.20 54321"));
        assert_eq!(candidate_address("a=candidate:9 1 udp 1 192.168.1.20 54321 typ host"), a, "the same address, another foundation");
        assert_ne!(candidate_address("candidate:1 1 tcp 1 192.168.1.20 54321 typ host tcptype active"), a);
        assert_eq!(candidate_address(""), None);
        assert_eq!(candidate_address("candidate:1 1 udp"), None);
        assert_eq!(MAX_TRACKS * crate::peer::inbound::MAX_LAYERS, MAX_SSRCS);
    }
}
