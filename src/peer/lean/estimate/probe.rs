//! Probing the line for more than the bridge sends. An SFU sends in layers, below its estimate,
//! so the line never shows what more it could carry: untested, an estimate can only guess
//! upwards and learn from the loss that a raised layer causes. While the conference says a
//! site's tiles want more than its estimate allows, the bridge instead sends a short cluster at
//! twice the estimate (its media topped up with padding on a retransmission stream, which the
//! browser discards) and reads in the browser's transport-cc feedback how fast the line
//! delivered it: the rate of a probe the line carried is a rate it can take. A cluster goes at
//! twice the estimate or what the tiles want, whichever is less, and at least 1.15 times the
//! estimate. In the spirit of libwebrtc's probe controller and probe bitrate estimator. Pure:
//! every instant is passed in.

use rtc::interceptor::PacketReport;
use std::time::{Duration, Instant};

/// How long one cluster is sent for: long enough for a few dozen packets, short enough that
/// a line which cannot take the rate only queues a few tens of milliseconds of it.
pub(crate) const DURATION: Duration = Duration::from_millis(80);
/// The padding a probe owes is sent in steps of this.
pub(crate) const STEP: Duration = Duration::from_millis(5);
/// Between two probes while the tiles are held back and the last probe found the line full.
pub(crate) const EVERY: Duration = Duration::from_secs(4);
/// After a probe the line carried, the next one (at twice the new estimate) follows this soon.
const AGAIN: Duration = Duration::from_millis(400);
/// A probe's queue drains within this after its cluster ends (the most it adds is its own
/// length at twice the line's rate).
const AFTERMATH: Duration = Duration::from_millis(150);
/// A cluster whose feedback has not come within this is given up.
const GIVE_UP: Duration = Duration::from_secs(1);
/// A probe is sent at this multiple of the estimate at most, or at what the tiles want,
const FACTOR: f64 = 2.0;
/// and at this multiple of it at least (a smaller step would tell little).
const WORTH: f64 = 1.15;
/// Fewer packets than this in a cluster say nothing.
const MIN_PACKETS: usize = 5;
/// A cluster with less than this share arrived: the line could not take it.
const MIN_ARRIVED: f64 = 0.8;
/// Arrived at less than this share of its sending rate: the line delivered its own rate,
/// which is taken with a margin ([`LINE_SHARE`]).
const CARRIED: f64 = 0.9;
const LINE_SHARE: f64 = 0.95;
/// Sent more than this many times faster than it arrived: too uneven to say anything.
const MAX_RATIO: f64 = 2.0;
/// The cluster's last third waited this much longer on the line than its first: the line
/// queued it, so it could not carry the rate, however fast the arrivals were stamped (a busy
/// receiving computer stamps a queue's packets in bunches, which reads as a rate the line
/// never had: 1.2–1.4 Mbit/s on a 1 Mbit/s line).
const QUEUE_GROWTH: Duration = Duration::from_millis(5);

/// What one probe found.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Outcome {
    /// The rate the cluster was sent at (media and padding), bit/s.
    pub(crate) sent_bps: f64,
    /// The rate the line delivered it at, if the cluster said anything.
    pub(crate) bps: Option<f64>,
    /// How much longer the cluster's end waited on the line than its start.
    pub(crate) queued: Option<Duration>,
}

impl Outcome {
    /// The rate the line carried, if it carried the probe: what the estimate may rise to. A
    /// probe the line could not carry arrived at about the line's rate, but a shaper's bursts
    /// make that reading too high to trust over a few tens of milliseconds (on a 1 Mbit/s htb
    /// class, 1.2–1.4 Mbit/s was read): it raises nothing.
    pub(crate) fn carried(&self) -> Option<f64> {
        if self.queued.is_none_or(|q| q > QUEUE_GROWTH) {
            return None;
        }
        self.bps.filter(|&b| b >= self.sent_bps * CARRIED * LINE_SHARE).map(|b| b.min(self.sent_bps))
    }
}

/// One cluster: sent over `[start, end)`, then waiting for the browser's word on it.
#[derive(Debug)]
struct Cluster {
    start: Instant,
    end: Instant,
    bps: f64,
    /// Bytes sent within the cluster, media included.
    sent_bytes: usize,
    /// The browser's word on each packet sent within it.
    reports: Vec<PacketReport>,
}

/// When to probe one site's line, what the probe owes in padding, and what it found.
#[derive(Debug, Default)]
pub(crate) struct Prober {
    cluster: Option<Cluster>,
    /// When the latest cluster was sent.
    window: Option<(Instant, Instant)>,
    /// No new probe before this.
    next: Option<Instant>,
    /// Probes sent, and those the line carried, for the closing log line.
    pub(crate) sent: u64,
    pub(crate) carried: u64,
}

impl Prober {
    /// Starts a probe if one is due: the tiles want `wanted` bit/s of estimate (none: they have
    /// what they want), the estimate is `estimate`, and no probe may exceed `max`. True if a
    /// cluster starts now.
    pub(crate) fn start(&mut self, now: Instant, estimate: f64, wanted: Option<f64>, max: f64) -> bool {
        if let Some(c) = &self.cluster {
            if now.saturating_duration_since(c.end) < GIVE_UP {
                return false;
            }
            // The browser never reported on it (a cut line): try again later.
            self.cluster = None;
            self.next = Some(now + EVERY);
        }
        let Some(wanted) = wanted else { return false };
        if self.next.is_some_and(|t| now < t) || wanted <= estimate {
            return false;
        }
        let bps = (estimate * FACTOR).min(wanted.max(estimate * WORTH)).min(max);
        if bps < estimate * WORTH {
            return false;
        }
        self.cluster = Some(Cluster { start: now, end: now + DURATION, bps, sent_bytes: 0, reports: Vec::new() });
        self.window = Some((now, now + DURATION));
        self.sent += 1;
        true
    }

    /// A cluster is being sent: its padding is due every [`STEP`].
    pub(crate) fn sending(&self, now: Instant) -> bool {
        self.cluster.as_ref().is_some_and(|c| now < c.end)
    }

    /// The estimate took nothing from the last probe: the next waits [`EVERY`].
    pub(crate) fn wait(&mut self, now: Instant) {
        self.next = Some(now + EVERY);
    }

    /// A packet that went out at `departure` may have waited in a queue the latest probe made
    /// itself: sent within its cluster, or while that queue drained.
    pub(crate) fn queued_by_probe(&self, departure: Instant) -> bool {
        self.window.is_some_and(|(start, end)| departure >= start && departure < end + AFTERMATH)
    }

    /// A packet of `bytes` (as the line counts them) went out at `departure`.
    pub(crate) fn on_sent(&mut self, departure: Instant, bytes: usize) {
        if let Some(c) = self.cluster.as_mut().filter(|c| departure >= c.start && departure < c.end) {
            c.sent_bytes += bytes;
        }
    }

    /// The padding (bytes on the line) to send now to keep the cluster at its rate until the
    /// next step.
    pub(crate) fn padding_due(&self, now: Instant) -> usize {
        let Some(c) = self.cluster.as_ref().filter(|c| now < c.end) else { return 0 };
        let until = (now + STEP).min(c.end).saturating_duration_since(c.start);
        let owed = (c.bps / 8.0 * until.as_secs_f64()) as usize;
        owed.saturating_sub(c.sent_bytes)
    }

    /// The browser's word on packets, in send order: once it has reported past the cluster's
    /// end, what the cluster found.
    pub(crate) fn on_reports(&mut self, now: Instant, reports: &[PacketReport]) -> Option<Outcome> {
        let c = self.cluster.as_mut()?;
        c.reports.extend(reports.iter().filter(|r| r.departure >= c.start && r.departure < c.end).cloned());
        if !reports.iter().any(|r| r.departure >= c.end) {
            return None;
        }
        let c = self.cluster.take()?;
        let outcome = Outcome { sent_bps: c.bps, bps: delivered(&c.reports), queued: queue_growth(&c.reports) };
        self.next = Some(now + if outcome.carried().is_some() { AGAIN } else { EVERY });
        if outcome.carried().is_some() {
            self.carried += 1;
        }
        Some(outcome)
    }
}

/// How much longer the last third of a cluster's arrived packets took from the bridge to the
/// browser than its first third (each one-way delay on the two clocks, so only the difference
/// means anything).
fn queue_growth(reports: &[PacketReport]) -> Option<Duration> {
    let first = reports.first()?.departure;
    let delays: Vec<f64> = reports
        .iter()
        .filter(|r| r.arrived)
        .filter_map(|r| Some(r.arrival?.as_secs_f64() - r.departure.saturating_duration_since(first).as_secs_f64()))
        .collect();
    let third = delays.len() / 3;
    if third == 0 {
        return None;
    }
    let mean = |d: &[f64]| d.iter().sum::<f64>() / d.len() as f64;
    let growth = mean(&delays[delays.len() - third..]) - mean(&delays[..third]);
    Some(Duration::from_secs_f64(growth.max(0.0)))
}

/// The rate a cluster says the line takes: the lower of its sending rate and its arrival rate
/// (each without the packet that opens or closes its interval), or the line's own rate, with a
/// margin, when it arrived clearly slower than it was sent.
fn delivered(reports: &[PacketReport]) -> Option<f64> {
    let mut arrived: Vec<(Duration, usize)> = reports.iter().filter(|r| r.arrived).filter_map(|r| Some((r.arrival?, r.size))).collect();
    if reports.len() < MIN_PACKETS || (arrived.len() as f64) < reports.len() as f64 * MIN_ARRIVED {
        return None;
    }
    let (first, last) = (reports.first()?, reports.last()?);
    let send_span = last.departure.saturating_duration_since(first.departure).as_secs_f64();
    let send_bytes = reports.iter().map(|r| r.size).sum::<usize>() - last.size;
    arrived.sort_by_key(|(at, _)| *at);
    let recv_span = (arrived.last()?.0.saturating_sub(arrived.first()?.0)).as_secs_f64();
    let recv_bytes = arrived.iter().map(|(_, size)| size).sum::<usize>() - arrived.first()?.1;
    if send_span < 0.001 || recv_span < 0.001 {
        return None;
    }
    let (send, recv) = (send_bytes as f64 * 8.0 / send_span, recv_bytes as f64 * 8.0 / recv_span);
    tracing::debug!(
        packets = reports.len(),
        arrived = arrived.len(),
        send_bytes,
        send_ms = send_span * 1000.0,
        recv_bytes,
        recv_ms = recv_span * 1000.0,
        "probe cluster"
    );
    if send / recv > MAX_RATIO {
        return None;
    }
    Some(if recv < send * CARRIED { recv * LINE_SHARE } else { send.min(recv) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::peer::lean::estimate::report;

    /// A cluster of `n` packets of 1 000 bytes sent evenly over 80 ms (`n` × 100 kbit/s)
    /// through a line of `line_bps` with an empty queue, then one packet after it.
    fn through(t0: Instant, n: usize, line_bps: f64) -> Vec<PacketReport> {
        let gap = DURATION.as_secs_f64() / n as f64;
        let mut free_ms: f64 = 0.0;
        (0..=n)
            .map(|i| {
                let sent_ms = i as f64 * gap * 1000.0;
                free_ms = free_ms.max(sent_ms) + 8_000.0 / line_bps * 1000.0;
                report(t0 + Duration::from_secs_f64(sent_ms / 1000.0), Some(20.0 + free_ms), 1000)
            })
            .collect()
    }

    #[test]
    fn a_probe_starts_only_while_the_tiles_want_clearly_more_than_the_estimate() {
        let t0 = Instant::now();
        let mut p = Prober::default();
        assert!(!p.start(t0, 1_000_000.0, None, 20e6), "the tiles have what they want");
        assert!(!p.start(t0, 1_000_000.0, Some(1_000_000.0), 20e6), "they want no more than the estimate");
        assert!(!p.start(t0, 1_000_000.0, Some(3_000_000.0), 1_100_000.0), "a ceiling leaves nothing to probe");
        let mut little = Prober::default();
        assert!(little.start(t0, 1_000_000.0, Some(1_050_000.0), 20e6));
        assert_eq!(little.padding_due(t0), 718, "a little more wanted: probed at 1.15 Mbit/s, a step that tells something");
        assert!(p.start(t0, 1_000_000.0, Some(3_000_000.0), 20e6));
        assert!(!p.start(t0 + STEP, 1_000_000.0, Some(3_000_000.0), 20e6), "one cluster at a time");
        // At twice the estimate, 2 Mbit/s: 1 250 bytes in the first 5 ms step, media counted.
        assert_eq!(p.padding_due(t0), 1_250, "the first step's share");
        p.on_sent(t0, 1_000);
        assert_eq!(p.padding_due(t0), 250, "media sent within the cluster counts");
        assert_eq!(p.padding_due(t0 + DURATION), 0, "over");
        assert!(p.sending(t0 + STEP) && !p.sending(t0 + DURATION));
        assert!(p.queued_by_probe(t0 + DURATION) && !p.queued_by_probe(t0 + DURATION + AFTERMATH), "its queue drains after it");
    }

    #[test]
    fn a_cluster_the_line_carried_raises_to_its_rate_and_the_next_follows_soon() {
        let t0 = Instant::now();
        let mut p = Prober::default();
        assert!(p.start(t0, 1_000_000.0, Some(5_000_000.0), 20e6));
        let reports = through(t0, 20, 50e6); // 20 000 bytes in 80 ms: 2 Mbit/s
        assert_eq!(p.on_reports(t0 + DURATION, &reports[..8]), None, "not yet reported past its end");
        let outcome = p.on_reports(t0 + DURATION, &reports[8..]).expect("reported past its end");
        let bps = outcome.bps.unwrap();
        assert!((1_900_000.0..=2_100_000.0).contains(&bps), "{bps}");
        assert_eq!(outcome.carried(), Some(bps.min(2_000_000.0)), "carried, at most at the rate it was sent at");
        assert!(p.start(t0 + DURATION + AGAIN, 2_000_000.0, Some(5_000_000.0), 20e6), "again soon, higher");
        assert_eq!((p.sent, p.carried), (2, 1));
        let t1 = t0 + DURATION + AGAIN;
        let outcome = p.on_reports(t1 + DURATION, &through(t1, 40, 50e6)).unwrap();
        assert!(outcome.carried().is_some());
        p.wait(t1 + DURATION);
        assert!(!p.start(t1 + DURATION + AGAIN, 4_000_000.0, Some(5_000_000.0), 20e6), "the estimate took nothing from it: not again soon");
        assert_eq!(p.carried, 2, "the line carried it all the same");
    }

    #[test]
    fn a_cluster_the_line_could_not_carry_says_the_lines_rate_and_the_next_waits() {
        let t0 = Instant::now();
        let mut p = Prober::default();
        assert!(p.start(t0, 1_000_000.0, Some(5_000_000.0), 20e6));
        let outcome = p.on_reports(t0 + DURATION, &through(t0, 20, 1_200_000.0)).unwrap();
        let bps = outcome.bps.unwrap();
        assert!((1_050_000.0..=1_200_000.0).contains(&bps), "about the line's 1.2 Mbit/s, with a margin: {bps}");
        assert_eq!(outcome.carried(), None, "not carried: it raises nothing");
        assert!(!p.start(t0 + Duration::from_secs(1), 1_000_000.0, Some(5_000_000.0), 20e6), "the line is full: not again at once");
        assert!(p.start(t0 + DURATION + EVERY, 1_000_000.0, Some(5_000_000.0), 20e6));
    }

    #[test]
    fn a_cluster_the_line_queued_was_not_carried_however_fast_its_arrivals_were_stamped() {
        // 1.2 Mbit/s into a 1 Mbit/s line: each packet waits longer than the one before. The
        // browser, busy, stamps its arrivals every 20 ms in bunches, which shortens the span
        // between the first and the last and reads as 1.1 Mbit/s.
        let t0 = Instant::now();
        let n = 12; // 12 000 bytes in 80 ms: 1.2 Mbit/s
        let gap_ms = DURATION.as_secs_f64() * 1000.0 / n as f64;
        let mut free_ms: f64 = 0.0;
        let reports: Vec<PacketReport> = (0..=n)
            .map(|i| {
                let sent_ms = i as f64 * gap_ms;
                free_ms = free_ms.max(sent_ms) + 8.0;
                let stamped = (free_ms / 20.0).ceil() * 20.0;
                report(t0 + Duration::from_secs_f64(sent_ms / 1000.0), Some(20.0 + stamped), 1000)
            })
            .collect();
        let mut p = Prober::default();
        assert!(p.start(t0, 600_000.0, Some(1_200_000.0), 20e6));
        let outcome = p.on_reports(t0 + DURATION, &reports).unwrap();
        assert!(outcome.bps.is_some_and(|b| b >= 1_200_000.0 * CARRIED * LINE_SHARE), "the stamps read as room: {outcome:?}");
        assert_eq!(outcome.carried(), None, "the queue grew: not carried ({outcome:?})");
    }

    #[test]
    fn a_cluster_mostly_lost_or_never_reported_on_says_nothing() {
        let t0 = Instant::now();
        let mut p = Prober::default();
        assert!(p.start(t0, 1_000_000.0, Some(5_000_000.0), 20e6));
        let mut reports = through(t0, 20, 50e6);
        for r in reports.iter_mut().step_by(3) {
            (r.arrived, r.arrival) = (false, None);
        }
        assert_eq!(p.on_reports(t0 + DURATION, &reports).unwrap().bps, None, "a third lost");
        let later = t0 + EVERY * 2;
        assert!(p.start(later, 1_000_000.0, Some(5_000_000.0), 20e6));
        assert!(!p.start(later + DURATION, 1_000_000.0, Some(5_000_000.0), 20e6), "waiting for its feedback");
        assert!(!p.start(later + DURATION + GIVE_UP, 1_000_000.0, Some(5_000_000.0), 20e6), "given up, and the next waits");
        assert!(p.start(later + DURATION + GIVE_UP + EVERY, 1_000_000.0, Some(5_000_000.0), 20e6));
    }
}
