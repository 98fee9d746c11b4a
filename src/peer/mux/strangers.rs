//! Connectivity checks that fail, per source address: what a stranger spraying the shared UDP
//! port with STUN (unknown ufrags, or a known ufrag without its password) may make the bridge
//! do. Each failure takes a token from its IP's bucket; an IP with none left has its checks
//! dropped before they are routed (no routing, no HMAC), until the bucket refills. Addresses a
//! site's media already comes from are never refused: a stranger who forges a site's source IP
//! cannot cut it off. Sans-IO: time is passed in.

use crate::peer::budget::Bucket;
use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Instant;

/// Failed checks an address may make per second, and in a burst. A browser fails none, except
/// the few in flight across an ICE restart.
pub(crate) const FAILED_CHECKS_PER_S: f64 = 5.0;
pub(crate) const FAILED_CHECKS_BURST: f64 = 20.0;
/// Addresses followed at most; when full, forgiven ones (full buckets) are forgotten first.
pub(crate) const MAX_TRACKED: usize = 4096;

#[derive(Debug, Default)]
pub(crate) struct CheckFailures {
    by_ip: HashMap<IpAddr, Bucket>,
    /// Checks dropped because their address was over budget.
    pub(crate) refused: u64,
    /// Failures not followed because the table was full of addresses still over budget.
    pub(crate) untracked: u64,
}

impl CheckFailures {
    pub(crate) fn is_empty(&self) -> bool {
        self.by_ip.is_empty()
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.by_ip.len()
    }

    /// A check from `ip` failed (wrong or unknown credentials).
    pub(crate) fn failed(&mut self, ip: IpAddr, now: Instant) {
        if !self.by_ip.contains_key(&ip) && self.by_ip.len() >= MAX_TRACKED {
            self.forget_forgiven(now);
            if self.by_ip.len() >= MAX_TRACKED {
                self.untracked += 1;
                return;
            }
        }
        let bucket = self.by_ip.entry(ip).or_insert_with(|| Bucket::new(FAILED_CHECKS_PER_S, FAILED_CHECKS_BURST));
        // Over budget already: the bucket stays empty (refused checks are not failures).
        let _ = bucket.take(1.0, now);
    }

    /// Whether a check from `ip` is dropped now (its address has no failures left); counted.
    pub(crate) fn refuse(&mut self, ip: IpAddr, now: Instant) -> bool {
        let Some(bucket) = self.by_ip.get_mut(&ip) else { return false };
        let refused = bucket.available(now) < 1.0;
        if refused {
            self.refused += 1;
        }
        refused
    }

    /// Forgets addresses whose bucket has refilled (nothing against them any more).
    pub(crate) fn forget_forgiven(&mut self, now: Instant) {
        self.by_ip.retain(|_, b| b.available(now) < FAILED_CHECKS_BURST);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn ip(n: u8) -> IpAddr {
        IpAddr::from([192, 0, 2, n])
    }

    #[test]
    fn an_address_that_keeps_failing_checks_is_refused_until_it_stops() {
        let t0 = Instant::now();
        let mut f = CheckFailures::default();
        // A spray of 1 000 checks in one second, each failing when it gets through.
        let mut passed = 0;
        for i in 0..1000u64 {
            let now = t0 + Duration::from_millis(i);
            if !f.refuse(ip(1), now) {
                passed += 1;
                f.failed(ip(1), now);
            }
        }
        assert!((20..=26).contains(&passed), "{passed} checks got through: the burst and 5/s");
        assert_eq!(f.refused, 1000 - passed);
        // Another address is not hurt by it.
        assert!(!f.refuse(ip(2), t0 + Duration::from_millis(500)));
        // After four quiet seconds the address is forgiven (and forgotten).
        let later = t0 + Duration::from_secs(5);
        assert!(!f.refuse(ip(1), later));
        f.forget_forgiven(later);
        assert!(f.is_empty());
    }

    #[test]
    fn a_spray_from_many_addresses_is_followed_in_bounded_memory() {
        let t0 = Instant::now();
        let mut f = CheckFailures::default();
        for n in 0..(MAX_TRACKED as u32 + 1000) {
            let addr = IpAddr::from(n.to_be_bytes());
            for _ in 0..30 {
                f.failed(addr, t0);
            }
        }
        assert_eq!(f.len(), MAX_TRACKED);
        assert_eq!(f.untracked, 1000 * 30);
    }
}
