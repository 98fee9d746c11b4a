//! How much one site's downlink can take: a send-side estimate in the spirit of Google
//! Congestion Control (draft-ietf-rmcat-gcc-02). Every packet the bridge sends the site carries
//! a transport-wide sequence number ([`DownlinkEstimate::stamp`]); the browser's transport-cc
//! feedback says when each arrived, or that it did not. Two estimates come of that, and the
//! lower one is the site's:
//!
//! - **delay-based**: the trend of the delay between groups of packets (a queue growing on the
//!   line shows there before any packet is lost) drives an additive-increase,
//!   multiplicative-decrease controller ([`RateControl`]): it climbs 8 % a second while the line
//!   is quiet (to 1.5 times what the line delivered, when the line can be probed), more gently
//!   once near the capacity it last backed off from, and backs off to 85 % of what the line
//!   delivered as soon as the queue grows;
//! - **loss-based**: more than 10 % lost lowers it in proportion, less than 2 % lets it climb,
//!   in between it holds (a few per cent of random loss is a line's nature, not congestion).
//!
//! The filtering of the delay trend, the overuse detector and the loss controller are
//! rtc-interceptor's; what to do with their verdicts is decided here, because an SFU's sending
//! rate is not its own to set: the conference can only choose layers, below the estimate, so
//! the line never shows by itself that it could take more. The estimate climbs on a quiet line
//! only to half again what the line delivered (as libwebrtc's does); beyond that, while the
//! conference says the tiles want more, the bridge probes the line ([`probe`]) and a probe the
//! line carried raises the estimate at once (see docs/architecture.md, "Downlink estimate").
//! Pure: every instant is passed in.

use crate::media::Ssrc;
use record::SentRecord;
use rtc::interceptor::{convert_twcc, LossController, OveruseDetector, PacketReport, RateCalculator, RateControlState, SlopeEstimator, Usage};
use rtc::rtcp::transport_feedbacks::transport_layer_cc::TransportLayerCc;
use std::collections::VecDeque;
use std::time::{Duration, Instant};
use tracing::debug;

mod line_rate;
pub(crate) mod probe;
mod random_loss;
mod record;

/// Where every site's estimate starts: what an office LAN takes easily, so a meeting opens on
/// full layers and a weaker line is found within its first seconds.
pub(crate) const INITIAL_BPS: f64 = 3_000_000.0;
/// Never below this: every site's audio and a little more.
pub(crate) const MIN_BPS: f64 = 80_000.0;
/// Never above this without a configured limit.
pub(crate) const MAX_BPS: f64 = 20_000_000.0;
/// How long a sent packet waits for the browser's word on it.
const HORIZON: Duration = Duration::from_secs(2);
/// How often what the browser will no longer report on is forgotten.
const PRUNE_EVERY: Duration = Duration::from_secs(1);
/// The multiplicative climb per second, far from the line's known capacity.
const INCREASE_PER_S: f64 = 1.08;
/// Loss below this is a line's nature: a probe's finding is taken.
const LOW_LOSS: f64 = 0.02;
/// The loss-based half stays at this share of what the line delivered, or above.
const LOSS_FLOOR_OF_DELIVERED: f64 = 0.5;
/// Only a probe sent at this multiple of the capacity the line was last found full at, or
/// more, may raise the estimate past what backing off from it gave (twice that, as probes go).
const PROBE_PAST_CAPACITY: f64 = 2.0 * DECREASE_FACTOR;
/// A probe meant to go past the capacity is sent this much above the threshold, as a cluster's
/// measured rate falls a little short of the rate it was sent for.
const PROBE_MARGIN: f64 = 1.05;
/// On overuse the target drops to this share of what the line delivered.
const DECREASE_FACTOR: f64 = 0.85;
/// At most one change per this (a decrease is never held back).
const CHANGE_INTERVAL: Duration = Duration::from_millis(200);
/// An overuse while the line delivered less than this share of the target, and about what the
/// bridge sent, says little about the target (the bridge was sending far less: a meeting
/// starting, a site paused, a busy receiver): the target is lowered by [`DECREASE_FACTOR`]
/// itself, not to what was delivered.
const FULL_SHARE: f64 = 0.5;
/// The line delivered less than this share of what the bridge sent over the same second: it
/// cannot carry what it is given, whatever the target, and what it delivered is its capacity.
const DEFICIT_SHARE: f64 = 0.75;
/// What the controller learnt of the line's capacity when it last backed off holds this long
/// without another back-off; after that the line may have changed (a cap lifted) and the
/// estimate climbs multiplicatively again, as far as the line has shown it carries, and
/// probes may raise it past that capacity. The bridge sends less than its target (it chooses
/// layers below it), so the line rarely delivers enough to prove more capacity by itself.
/// Probes find a lifted cap within seconds; a memory of 5 s let the estimate climb 8 %/s
/// between decreases on a capped line, to 1.4 times it every 8 s (`cap1m`, 2026-12-06).
const CAPACITY_MEMORY: Duration = Duration::from_secs(20);
/// A probe that found the line no faster than this multiple of the remembered capacity
/// confirms it: a shaper's burst allowance makes a failed probe read a little fast (on a
/// 1 Mbit/s line, up to 1.16 Mbit/s), and a cap lifted by more than this shows in the probe.
const CONFIRMED_WITHIN: f64 = 1.25;
/// A queue this long on the line is overuse whatever its trend: a drop-tail queue that stays
/// full shows a flat delay (and a few per cent of loss the loss-based half holds on), so the
/// trend alone would let the line stay congested.
const QUEUE_OVERUSE: Duration = Duration::from_millis(60);
/// The line's empty-queue delay is the least seen over this (in one-second buckets).
const BASE_DELAY_WINDOW: usize = 10;
/// A quiet line lets the estimate climb to this multiple of what it delivered (plus
/// [`CLIMB_MARGIN_BPS`]), not beyond: the bridge sends below its estimate, so more is a guess
/// until a probe tests it.
const CLIMB_OVER_DELIVERED: f64 = 1.5;
const CLIMB_MARGIN_BPS: f64 = 10_000.0;

/// The line's capacity as last found by backing off: the mean and variance of the delivered
/// rates at the decreases (in kbit/s, as libwebrtc keeps them, so the variance is well scaled).
#[derive(Debug, Clone, Copy)]
struct Capacity {
    mean_kbps: f64,
    var: f64,
}

impl Capacity {
    fn deviation_kbps(&self) -> f64 {
        (self.var * self.mean_kbps).sqrt()
    }
    fn upper_bps(&self) -> f64 {
        (self.mean_kbps + 3.0 * self.deviation_kbps()) * 1000.0
    }
    fn lower_bps(&self) -> f64 {
        (self.mean_kbps - 3.0 * self.deviation_kbps()) * 1000.0
    }
}

/// The delay-based controller: the state machine of the draft (overuse → decrease, quiet →
/// increase, draining → hold) with the capacity memory that makes it climb gently near the
/// rate it last fell from and fast again once the line delivers clearly more.
#[derive(Debug, Clone)]
pub(crate) struct RateControl {
    target: f64,
    state: RateControlState,
    last_change: Option<Instant>,
    last_decrease: Option<Instant>,
    capacity: Option<Capacity>,
    /// The climb stops at [`CLIMB_OVER_DELIVERED`] times what the line delivered (the line
    /// can be probed for more).
    bounded: bool,
}

impl RateControl {
    pub(crate) fn new(initial: f64) -> Self {
        RateControl { target: initial, state: RateControlState::default(), last_change: None, last_decrease: None, capacity: None, bounded: true }
    }

    pub(crate) fn target(&self) -> f64 {
        self.target
    }

    /// Folds in the detector's verdict, the rate the line delivered (`None` when too little
    /// arrived to say) and the rate the bridge sent over the last second, with `rtt` the round
    /// trip (for the additive step).
    pub(crate) fn update(&mut self, now: Instant, usage: Usage, delivered: Option<f64>, sent: f64, rtt: Duration) -> f64 {
        self.state = self.state.next(usage);
        let recent = self.last_change.is_some_and(|t| now.saturating_duration_since(t) < CHANGE_INTERVAL);
        if recent && self.state != RateControlState::Decrease {
            return self.target;
        }
        if let (Some(d), Some(c)) = (delivered, self.capacity) {
            // The line delivers clearly more than it did when the controller last backed off:
            // what it learnt then no longer holds.
            if d > c.upper_bps() {
                self.capacity = None;
            }
        }
        if self.last_decrease.is_some_and(|t| now.saturating_duration_since(t) > CAPACITY_MEMORY) {
            self.capacity = None;
        }
        match self.state {
            RateControlState::Hold => {}
            RateControlState::Decrease => {
                let Some(d) = delivered else { return self.target };
                // Once per interval: the line's answer to the last decrease is not in yet.
                if recent {
                    return self.target;
                }
                if d >= self.target * FULL_SHARE || d < sent * DEFICIT_SHARE {
                    self.learn_capacity(d);
                    self.target = (d * DECREASE_FACTOR).min(self.target);
                } else {
                    self.target *= DECREASE_FACTOR;
                }
                self.last_change = Some(now);
                self.last_decrease = Some(now);
                // Once backed off, hold until the detector sees the queue drain or settle.
                self.state = RateControlState::Hold;
            }
            RateControlState::Increase => {
                let elapsed = self.last_change.map_or(CHANGE_INTERVAL, |t| now.saturating_duration_since(t)).min(Duration::from_secs(1));
                let near = self.capacity.is_some_and(|c| self.target >= c.lower_bps());
                let raised = if near {
                    // About one packet more per response time: approach the known capacity
                    // rather than overshoot it.
                    let response = rtt + Duration::from_millis(100);
                    self.target + 1200.0 * 8.0 * elapsed.as_secs_f64() / response.as_secs_f64()
                } else {
                    self.target * INCREASE_PER_S.powf(elapsed.as_secs_f64())
                };
                // Never far above what the line has shown it carries, nor past the capacity it
                // was last found full at (never lowered by this), when probes can show it more:
                // the bridge sends below its target, so a climb past the capacity is a guess
                // the conference would fill, and overflow the line with (on `cap1m` the climb
                // went on, one packet per response time, to 1.3 times the line every 13 s).
                let proven = delivered.filter(|_| self.bounded).map_or(f64::INFINITY, |d| d * CLIMB_OVER_DELIVERED + CLIMB_MARGIN_BPS);
                let known = self.capacity.filter(|_| self.bounded).map_or(f64::INFINITY, |c| c.upper_bps());
                self.target = raised.min(proven.min(known).max(self.target));
                self.last_change = Some(now);
            }
        }
        self.target
    }

    /// A probe sent well past the remembered capacity found the line no faster than that
    /// capacity: the line is still what it was, and the memory starts again.
    pub(crate) fn confirm_capacity(&mut self, now: Instant, found_bps: f64) {
        if self.capacity.is_some_and(|c| found_bps <= c.mean_kbps * 1000.0 * CONFIRMED_WITHIN) {
            self.last_decrease = Some(now);
        }
    }

    /// The line's capacity as the controller last found it by backing off, while it
    /// remembers it (bit/s).
    pub(crate) fn capacity(&self) -> Option<f64> {
        self.capacity.map(|c| c.mean_kbps * 1000.0)
    }

    /// A probe found the line takes `bps`: the target rises to it, and what was learnt of the
    /// capacity from below it no longer holds. True if it rose.
    pub(crate) fn probed(&mut self, now: Instant, bps: f64) -> bool {
        if bps <= self.target {
            return false;
        }
        self.target = bps;
        self.capacity = self.capacity.filter(|c| bps <= c.upper_bps());
        self.last_change = Some(now);
        true
    }

    fn learn_capacity(&mut self, delivered_bps: f64) {
        let kbps = delivered_bps / 1000.0;
        self.capacity = Some(match self.capacity {
            // Far below what was known: the line changed; start again from here.
            Some(c) if delivered_bps >= c.lower_bps() => {
                let mean = 0.95 * c.mean_kbps + 0.05 * kbps;
                let norm = mean.max(1.0);
                let var = (0.95 * c.var + 0.05 * (mean - kbps).powi(2) / norm).clamp(0.4, 2.5);
                Capacity { mean_kbps: mean, var }
            }
            _ => Capacity { mean_kbps: kbps, var: 0.4 },
        });
    }
}

/// How long packets wait in the line's queue: each arrival's one-way delay (on the browser's
/// clock against the bridge's, so only differences mean anything) above the least seen lately.
#[derive(Debug, Default)]
struct QueueDelay {
    epoch: Option<Instant>,
    /// The least offset (ms) per second, the newest last.
    minima: VecDeque<(u64, f64)>,
    /// The last batch's mean queueing delay.
    last: Option<Duration>,
}

impl QueueDelay {
    /// The mean queueing delay of one batch of reports (the arrived ones).
    fn on_reports(&mut self, reports: &[PacketReport]) -> Option<Duration> {
        let epoch = *self.epoch.get_or_insert_with(|| reports[0].departure);
        let mut offsets = Vec::with_capacity(reports.len());
        for r in reports {
            let Some(arrival) = r.arrival.filter(|_| r.arrived) else { continue };
            let sent = r.departure.saturating_duration_since(epoch);
            let offset = arrival.as_secs_f64() * 1000.0 - sent.as_secs_f64() * 1000.0;
            let second = sent.as_secs();
            match self.minima.back_mut() {
                Some((s, m)) if *s == second => *m = m.min(offset),
                _ => {
                    self.minima.push_back((second, offset));
                    while self.minima.front().is_some_and(|(s, _)| *s + (BASE_DELAY_WINDOW as u64) <= second) {
                        self.minima.pop_front();
                    }
                }
            }
            offsets.push(offset);
        }
        let base = self.minima.iter().map(|(_, m)| *m).reduce(f64::min)?;
        if offsets.is_empty() {
            return self.last;
        }
        let mean = offsets.iter().map(|o| o - base).sum::<f64>() / offsets.len() as f64;
        self.last = Some(Duration::from_secs_f64(mean.max(0.0) / 1000.0));
        self.last
    }
}

/// What the bridge sent the site over the last second, in tenths of a second: one addition
/// per packet on the forwarding path.
#[derive(Debug, Default)]
struct SendRate {
    epoch: Option<Instant>,
    /// The tenth of a second (since `epoch`) the newest bucket holds.
    tenth: u64,
    bytes: [u64; 10],
}

impl SendRate {
    fn add(&mut self, now: Instant, bytes: usize) {
        let slot = self.advance(now);
        self.bytes[slot] += bytes as u64;
    }

    /// Bit/s over the last second (the current tenth included).
    fn bps(&mut self, now: Instant) -> f64 {
        self.advance(now);
        self.bytes.iter().sum::<u64>() as f64 * 8.0
    }

    /// Moves to the tenth `now` falls in, emptying the buckets passed over; its bucket's index.
    fn advance(&mut self, now: Instant) -> usize {
        let epoch = *self.epoch.get_or_insert(now);
        let tenth = (now.saturating_duration_since(epoch).as_millis() / 100) as u64;
        if tenth > self.tenth {
            for t in (self.tenth + 1)..=tenth.min(self.tenth + 10) {
                self.bytes[(t % 10) as usize] = 0;
            }
            self.tenth = tenth;
        }
        (self.tenth % 10) as usize
    }
}

/// What the estimate stands on, for the health page and the log.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct EstimateView {
    /// The site's estimate: the lower of the two below, within the limits.
    pub(crate) bps: f64,
    pub(crate) delay_bps: f64,
    pub(crate) loss_bps: f64,
    /// What the line delivered lately (bit/s), if enough arrived to say.
    pub(crate) delivered_bps: Option<f64>,
    /// The smoothed share of packets lost (0–1).
    pub(crate) loss: Option<f64>,
    /// The delay trend says the line's queue grows, or the queue is long.
    pub(crate) overusing: bool,
    /// How long packets wait in the line's queue lately.
    pub(crate) queue: Option<Duration>,
    /// The line loses packets at random, not only to its own queue.
    pub(crate) lossy: bool,
}

/// The estimate towards one site, with the record of what was sent that the feedback is
/// matched against.
pub(crate) struct DownlinkEstimate {
    record: SentRecord,
    slope: SlopeEstimator,
    detector: OveruseDetector,
    delivered: RateCalculator,
    sent: SendRate,
    delay: RateControl,
    loss: LossController,
    queue: QueueDelay,
    usage: Usage,
    random_loss: random_loss::RandomLoss,
    line_rate: line_rate::LineRate,
    /// The least the loss-based half says: a share of what the line delivered lately.
    loss_floor: f64,
    /// Tests of the line above what the bridge sends.
    pub(crate) prober: probe::Prober,
    next_seq: u16,
    max_bps: f64,
    last_delivered: Option<f64>,
    last_prune: Option<Instant>,
    /// Feedback packets taken, and packets reported on, for the closing log line.
    pub(crate) feedbacks: u64,
    pub(crate) reported: u64,
    /// Why the delay-based estimate came down, for the closing log line: the delay trend, or a
    /// long queue whatever the trend.
    pub(crate) decreases: Decreases,
    /// Probes the estimate rose by (of those the line carried), for the closing log line.
    pub(crate) raised_by_probes: u64,
}

/// How often the delay-based estimate came down, by the rule that brought it down.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub(crate) struct Decreases {
    pub(crate) trend: u64,
    pub(crate) queue: u64,
}

impl Default for DownlinkEstimate {
    fn default() -> Self {
        DownlinkEstimate::new(MAX_BPS)
    }
}

impl DownlinkEstimate {
    /// An estimate that never exceeds `max_bps` (a site's configured ceiling).
    pub(crate) fn new(max_bps: f64) -> Self {
        let max_bps = max_bps.max(MIN_BPS);
        let initial = INITIAL_BPS.min(max_bps);
        DownlinkEstimate {
            record: SentRecord::default(),
            slope: SlopeEstimator::new(),
            detector: OveruseDetector::new(),
            delivered: RateCalculator::new(Duration::from_millis(1000)),
            sent: SendRate::default(),
            delay: RateControl::new(initial),
            // The ceiling is applied in `bps`, so that lifting it lifts both halves.
            loss: LossController::new(initial, MIN_BPS, MAX_BPS),
            queue: QueueDelay::default(),
            usage: Usage::Normal,
            random_loss: random_loss::RandomLoss::default(),
            line_rate: line_rate::LineRate::default(),
            loss_floor: MIN_BPS,
            prober: probe::Prober::default(),
            next_seq: 0,
            max_bps,
            last_delivered: None,
            last_prune: None,
            feedbacks: 0,
            reported: 0,
            decreases: Decreases::default(),
            raised_by_probes: 0,
        }
    }

    /// The transport-wide sequence number for the next packet to the site.
    pub(crate) fn stamp(&mut self) -> u16 {
        let seq = self.next_seq;
        self.next_seq = self.next_seq.wrapping_add(1);
        seq
    }

    /// Records a packet that went out at `now` with the number [`Self::stamp`] gave it. What
    /// was sent more than [`HORIZON`] ago and never reported on is forgotten here, so the record
    /// stays bounded whether or not the browser ever sends feedback.
    pub(crate) fn on_sent(&mut self, now: Instant, ssrc: Ssrc, rtp_seq: u16, transport_seq: u16, bytes: usize) {
        self.record.sent(ssrc, rtp_seq, transport_seq, bytes, now);
        self.sent.add(now, bytes);
        self.prober.on_sent(now, bytes);
        if self.last_prune.is_none_or(|t| now.saturating_duration_since(t) >= PRUNE_EVERY) {
            self.last_prune = Some(now);
            self.record.forget_before(now.checked_sub(HORIZON).unwrap_or(now));
        }
    }

    #[cfg(test)]
    /// Packets sent and not yet reported on or forgotten.
    pub(crate) fn unreported(&self) -> usize {
        self.record.len()
    }

    /// The browser's word on what arrived, received at `now`.
    pub(crate) fn on_feedback(&mut self, now: Instant, feedback: &TransportLayerCc, rtt: Duration) {
        self.feedbacks += 1;
        for ack in convert_twcc(feedback) {
            self.record.acknowledge(&ack);
        }
        let reports = self.record.take_reports();
        self.on_reports(now, &reports, rtt);
    }

    fn on_reports(&mut self, now: Instant, reports: &[PacketReport], rtt: Duration) {
        if reports.is_empty() {
            return;
        }
        self.reported += reports.len() as u64;
        let mut usage = self.detector.usage();
        for r in reports {
            if r.arrived {
                self.delivered.add(now, r.size);
            }
            if let Some(trend) = self.slope.accumulate(r) {
                usage = self.detector.update(trend.at, trend.estimate_ms);
            }
        }
        let by_trend = usage == Usage::Over;
        let queue = self.queue.on_reports(reports);
        self.line_rate.on_reports(reports);
        let full = queue.is_some_and(|q| q > QUEUE_OVERUSE);
        if full {
            usage = Usage::Over;
        }
        self.usage = usage;
        let delivered = self.delivered.rate_bits_per_second(now);
        self.last_delivered = delivered;
        // A line with a long queue delivers its own rate now: what it delivered over the last
        // second may still hold the second before a cap.
        let line = match (delivered, self.line_rate.bps()) {
            (Some(d), Some(l)) if full => Some(d.min(l)),
            _ => delivered,
        };
        let before = self.delay.target;
        let sent = self.sent.bps(now);
        // A probe's own queue is not congestion: a probe the line could not carry queues about
        // its own length, which alone would read as overuse (measured on a 1 Mbit/s line: a
        // decrease within half a second of most failed probes). While what it sent, and what
        // waited behind it, is reported on, the delay-based half holds.
        // Nor is what a probe the line could not carry lost to the line's nature: the loss is
        // counted over the other packets.
        let (mut lost, mut total) = (0, 0);
        for r in reports.iter().filter(|r| !self.prober.queued_by_probe(r.departure)) {
            lost += usize::from(!r.arrived);
            total += 1;
        }
        if total == reports.len() {
            self.delay.update(now, usage, line, sent, rtt);
        }
        if self.delay.target < before {
            let (rule, count) = if by_trend { ("trend", &mut self.decreases.trend) } else { ("queue", &mut self.decreases.queue) };
            *count += 1;
            debug!(rule, from_kbps = (before / 1000.0) as u64, to_kbps = (self.delay.target / 1000.0) as u64, delivered_kbps = delivered.map(|d| (d / 1000.0) as u64), line_kbps = line.map(|d| (d / 1000.0) as u64), queue = ?queue, "downlink estimate lowered");
        }
        self.delay.target = self.delay.target.clamp(MIN_BPS, self.max_bps);
        self.loss.update(now, lost, total);
        self.random_loss.on_reports(now, lost, total, usage != Usage::Over);
        // Loss from a queue the line could not drain says the line carries about what it
        // delivered, not a fraction of it: the loss-based half does not fall below half of
        // that (measured on a 1 Mbit/s line: one overflow took it to 200 kbit/s in 2 s, and
        // the stage's camera, which only the loss-based half may pause, was paused each time).
        self.loss_floor = delivered.map_or(MIN_BPS, |d| d * LOSS_FLOOR_OF_DELIVERED);
        if let Some(outcome) = self.prober.on_reports(now, reports) {
            self.on_probe(now, outcome);
        }
    }

    /// What a probe found: a rate the line carried raises both halves of the estimate to it,
    /// unless the queue is growing now or loss is more than a line's nature.
    fn on_probe(&mut self, now: Instant, outcome: probe::Outcome) {
        let before = self.bps();
        let quiet = self.usage != Usage::Over && self.loss.average_loss().is_none_or(|l| l < LOW_LOSS);
        // A probe not far above the capacity the line was last found full at may have been
        // carried by a shaper's burst allowance (a 4 kB burst passes 400 kbit/s more for 80 ms):
        // it raises the estimate back to where backing off from that capacity put it, not
        // beyond (a line held at its capacity has no room left for a keyframe's burst).
        let known = self.delay.capacity().filter(|&c| outcome.sent_bps < c * PROBE_PAST_CAPACITY).map(|c| c * DECREASE_FACTOR);
        let mut raised = false;
        if let Some(bps) = outcome.carried().filter(|_| quiet).map(|b| b.min(self.max_bps).min(known.unwrap_or(f64::INFINITY))) {
            raised = self.delay.probed(now, bps);
            if self.loss.target() < bps {
                self.loss = LossController::new(bps, MIN_BPS, MAX_BPS);
                raised = true;
            }
        }
        if let (None, Some(found), Some(c)) = (outcome.carried(), outcome.bps, self.delay.capacity()) {
            if outcome.sent_bps >= c * PROBE_PAST_CAPACITY {
                self.delay.confirm_capacity(now, found);
            }
        }
        if raised {
            self.raised_by_probes += 1;
        } else if outcome.carried().is_some() {
            // Carried, but nothing came of it (loss, a queue, a capacity remembered): the next
            // probe waits as after one the line could not carry, not 400 ms.
            self.prober.wait(now);
        }
        debug!(
            sent_kbps = (outcome.sent_bps / 1000.0) as u64,
            found_kbps = outcome.bps.map(|b| (b / 1000.0) as u64),
            queued = ?outcome.queued,
            quiet,
            from_kbps = (before / 1000.0) as u64,
            to_kbps = (self.bps() / 1000.0) as u64,
            "downlink probed"
        );
    }

    /// Starts a probe if one is due: the site's tiles want an estimate of `wanted` bit/s, or
    /// have what they want (`None`). True if a cluster starts now; its padding is then due every
    /// [`probe::STEP`] ([`Self::padding_due`]).
    pub(crate) fn start_probe(&mut self, now: Instant, wanted: Option<f64>) -> bool {
        let quiet = self.usage != Usage::Over && self.feedbacks > 0;
        let bps = self.bps();
        // While the capacity the line was last found full at is remembered, a probe raises the
        // estimate past it only if sent at [`PROBE_PAST_CAPACITY`] times it or more (see
        // `on_probe`); a faster one would only queue more on a line that is still full.
        let useful = self.delay.capacity().map_or(f64::INFINITY, |c| c * PROBE_PAST_CAPACITY * PROBE_MARGIN);
        quiet && self.prober.start(now, bps, wanted, self.max_bps.min(useful))
    }

    /// Whether the site's line can be probed (a stream to pad on, over UDP). A line that
    /// cannot climbs by itself, multiplicatively, as before probing: else its layers could
    /// never rise again after a fall.
    pub(crate) fn set_can_probe(&mut self, can: bool) {
        self.delay.bounded = can;
    }

    /// A probe cluster is being sent.
    pub(crate) fn probing(&self, now: Instant) -> bool {
        self.prober.sending(now)
    }

    /// The padding (bytes on the line) the probe being sent owes now.
    pub(crate) fn padding_due(&self, now: Instant) -> usize {
        self.prober.padding_due(now)
    }

    /// A new ceiling (a technician's limit for this site, or none: [`MAX_BPS`]). Lowered, it
    /// holds from the next [`Self::bps`]; lifted, the estimate climbs (or is probed) from where
    /// it is.
    pub(crate) fn set_max(&mut self, max_bps: f64) {
        self.max_bps = max_bps.max(MIN_BPS);
    }

    pub(crate) fn bps(&self) -> f64 {
        self.delay.target().min(self.loss_bps()).clamp(MIN_BPS, self.max_bps)
    }

    /// The loss-based half, at its floor or above.
    fn loss_bps(&self) -> f64 {
        self.loss.target().max(self.loss_floor)
    }

    pub(crate) fn view(&self) -> EstimateView {
        EstimateView {
            bps: self.bps(),
            delay_bps: self.delay.target(),
            loss_bps: self.loss_bps(),
            delivered_bps: self.last_delivered,
            loss: self.loss.average_loss(),
            overusing: self.usage == Usage::Over,
            queue: self.queue.last,
            lossy: self.random_loss.lossy(),
        }
    }
}

/// A report on one packet of `size` bytes sent at `departure`, arrived `arrival_ms` into the
/// receiver's clock or lost (`None`): for the estimate's tests and its parts'.
#[cfg(test)]
fn report(departure: Instant, arrival_ms: Option<f64>, size: usize) -> PacketReport {
    PacketReport {
        ssrc: 1,
        id: 0,
        rtp_sequence_number: 0,
        is_twcc: true,
        twcc_sequence_number: 0,
        size,
        arrived: arrival_ms.is_some(),
        departure,
        arrival: arrival_ms.map(|ms| Duration::from_secs_f64(ms / 1000.0)),
        ecn: Default::default(),
    }
}

#[cfg(test)]
mod tests;
