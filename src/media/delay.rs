//! How long the bridge holds each packet it forwards: from the moment its datagram is taken
//! off the shared media port to the return of the `sendto` that sends it on to one receiver
//! (decryption, routing, the receiver's queue, rewrite, encryption and the send itself). The
//! load generator's one-way latency also holds both ends' WebRTC stacks and the kernel's
//! loopback; this is the bridge's own share.
//!
//! Each sending task counts into its own [`DelayCounts`] (no shared write per packet) and
//! adds them to the bridge's [`ForwardingDelay`] now and then; `/metrics` shows that as a
//! Prometheus histogram.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Bucket upper bounds: 10 µs × 1.25^i, from 10 µs to ≈ 0.5 s, so a quantile read from the
/// buckets is within a quarter of its value.
pub(crate) const BUCKETS: usize = 49;

fn bounds_ns() -> &'static [u64; BUCKETS] {
    static BOUNDS: std::sync::OnceLock<[u64; BUCKETS]> = std::sync::OnceLock::new();
    BOUNDS.get_or_init(|| std::array::from_fn(|i| (10_000.0 * 1.25f64.powi(i as i32)).round() as u64))
}

/// The upper bound of bucket `i`, in seconds (the last bucket, `BUCKETS`, has none).
pub(crate) fn bound_seconds(i: usize) -> f64 {
    bounds_ns()[i] as f64 / 1e9
}

/// One task's counts since it last added them to the bridge's.
#[derive(Debug, Clone)]
pub(crate) struct DelayCounts {
    counts: [u64; BUCKETS + 1],
    sum_ns: u64,
    any: bool,
}

impl Default for DelayCounts {
    fn default() -> Self {
        DelayCounts { counts: [0; BUCKETS + 1], sum_ns: 0, any: false }
    }
}

impl DelayCounts {
    pub(crate) fn record(&mut self, delay: Duration) {
        let ns = delay.as_nanos().min(u64::MAX as u128) as u64;
        self.counts[bounds_ns().partition_point(|&b| b < ns)] += 1;
        self.sum_ns = self.sum_ns.saturating_add(ns);
        self.any = true;
    }

    /// Adds these to `total` and starts again from zero.
    pub(crate) fn flush_into(&mut self, total: &ForwardingDelay) {
        if !std::mem::take(&mut self.any) {
            return;
        }
        for (sum, n) in total.counts.iter().zip(self.counts.iter_mut()) {
            if *n > 0 {
                sum.fetch_add(std::mem::take(n), Ordering::Relaxed);
            }
        }
        total.sum_ns.fetch_add(std::mem::take(&mut self.sum_ns), Ordering::Relaxed);
    }
}

/// The bridge's forwarding delays since it started.
#[derive(Debug)]
pub(crate) struct ForwardingDelay {
    counts: [AtomicU64; BUCKETS + 1],
    sum_ns: AtomicU64,
}

impl Default for ForwardingDelay {
    fn default() -> Self {
        ForwardingDelay { counts: std::array::from_fn(|_| AtomicU64::new(0)), sum_ns: AtomicU64::new(0) }
    }
}

/// A copy of the counts: per bucket (not cumulative; bucket `i` ends at [`bound_seconds`]`(i)`,
/// the last has no end), and the sum of all delays.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DelaySnapshot {
    pub(crate) counts: Vec<u64>,
    pub sum_seconds: f64,
}

impl ForwardingDelay {
    pub(crate) fn snapshot(&self) -> DelaySnapshot {
        DelaySnapshot { counts: self.counts.iter().map(|c| c.load(Ordering::Relaxed)).collect(), sum_seconds: self.sum_ns.load(Ordering::Relaxed) as f64 / 1e9 }
    }
}

impl DelaySnapshot {
    /// What was counted after `earlier`, a snapshot of the same histogram.
    pub fn since(&self, earlier: &DelaySnapshot) -> DelaySnapshot {
        let counts = self.counts.iter().zip(earlier.counts.iter().chain(std::iter::repeat(&0))).map(|(a, b)| a.saturating_sub(*b)).collect();
        DelaySnapshot { counts, sum_seconds: (self.sum_seconds - earlier.sum_seconds).max(0.0) }
    }

    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// The `q` quantile (0..1), read from the buckets: geometric within the bucket it falls
    /// in. `None` without packets.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let total = self.total();
        if total == 0 {
            return None;
        }
        let rank = q.clamp(0.0, 1.0) * total as f64;
        let mut below = 0u64;
        for (i, &n) in self.counts.iter().enumerate() {
            if n > 0 && (below + n) as f64 >= rank {
                let hi = if i < BUCKETS { bound_seconds(i) } else { bound_seconds(BUCKETS - 1) };
                let lo = if i == 0 { hi / 1.25 } else { bound_seconds(i - 1) };
                let within = ((rank - below as f64) / n as f64).clamp(0.0, 1.0);
                return Some(lo * (hi / lo).powf(within));
            }
            below += n;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_delay_falls_in_the_bucket_whose_bound_is_the_first_not_below_it() {
        let mut c = DelayCounts::default();
        c.record(Duration::from_micros(5));
        c.record(Duration::from_micros(10));
        c.record(Duration::from_micros(11));
        c.record(Duration::from_secs(3));
        let total = ForwardingDelay::default();
        c.flush_into(&total);
        let s = total.snapshot();
        assert_eq!((s.counts[0], s.counts[1], s.counts[BUCKETS]), (2, 1, 1));
        assert_eq!(s.total(), 4);
        assert!((s.sum_seconds - 3.000026).abs() < 1e-9);
    }

    #[test]
    fn quantiles_come_back_within_a_bucket_of_what_was_recorded() {
        let mut c = DelayCounts::default();
        // 900 packets at 200 µs, 100 at 3 ms: p50 ≈ 200 µs, p99 ≈ 3 ms.
        (0..900).for_each(|_| c.record(Duration::from_micros(200)));
        (0..100).for_each(|_| c.record(Duration::from_micros(3000)));
        let total = ForwardingDelay::default();
        c.flush_into(&total);
        let s = total.snapshot();
        let (p50, p99) = (s.quantile(0.5).unwrap(), s.quantile(0.99).unwrap());
        assert!((160e-6..=250e-6).contains(&p50), "p50 {p50}");
        assert!((2.4e-3..=3.75e-3).contains(&p99), "p99 {p99}");
        assert_eq!(DelaySnapshot { counts: vec![0; BUCKETS + 1], sum_seconds: 0.0 }.quantile(0.5), None);
    }

    #[test]
    fn flushing_moves_the_counts_once() {
        let mut c = DelayCounts::default();
        c.record(Duration::from_micros(100));
        let total = ForwardingDelay::default();
        c.flush_into(&total);
        c.flush_into(&total);
        assert_eq!(total.snapshot().total(), 1);
    }
}
