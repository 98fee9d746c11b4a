//! The estimate against a simulated office line, in simulated time: the bridge sends what the
//! estimate allows (as the conference would, choosing layers below it), through a bottleneck
//! with a 200 ms queue, to the browser's side of transport-cc (rtc-interceptor's receiver, the
//! same code the bridge answers its own browsers with); the feedback comes back every 100 ms.

use super::*;
use crate::peer::lean::congestion::TransportFeedback;
use rtc::rtp::header::Header;
use rtc::shared::marshal::Unmarshal;
use std::collections::VecDeque;

const EXT: u8 = 5;
const PACKET: usize = 1200;
const ONE_WAY: Duration = Duration::from_millis(20);
/// A probe's padding packet on the line.
const PADDING: usize = 313;

/// One office line towards a site.
struct Line {
    /// Bit/s the line carries.
    capacity: f64,
    /// Share of packets lost at random, in per mille, by a fixed pattern.
    loss_per_mille: u32,
    /// Whether everything is dropped (a cut).
    cut: bool,
    /// When the bottleneck is free again.
    free_at: Instant,
    /// Packets on their way: (arrival at the browser, header).
    in_flight: VecDeque<(Instant, Header)>,
    sent: u64,
}

impl Line {
    fn new(capacity: f64, t0: Instant) -> Self {
        Line { capacity, loss_per_mille: 0, cut: false, free_at: t0, in_flight: VecDeque::new(), sent: 0 }
    }

    fn send(&mut self, now: Instant, header: Header, size: usize) {
        self.sent += 1;
        // A deterministic pseudo-random pattern: packet n is lost when its hash falls low.
        let h = (self.sent.wrapping_mul(2_654_435_761) >> 7) % 1000;
        if self.cut || (h as u32) < self.loss_per_mille {
            return;
        }
        let start = self.free_at.max(now);
        if start.saturating_duration_since(now) > Duration::from_millis(200) {
            return; // the queue is full: dropped
        }
        self.free_at = start + Duration::from_secs_f64(size as f64 * 8.0 / self.capacity);
        self.in_flight.push_back((self.free_at + ONE_WAY, header));
    }
}

/// The bridge, the line and the browser, stepped 1 ms at a time.
struct Sim {
    now: Instant,
    estimate: DownlinkEstimate,
    line: Line,
    browser: TransportFeedback,
    /// What the bridge would send if the line took everything (the layers the conference wants).
    wanted: f64,
    /// Bits owed to the line at the current sending rate.
    credit: f64,
    seq: u16,
    /// The conference chooses among these rates (bit/s, cameras' layers), the highest within
    /// 70 % of the estimate; without them it sends 90 % of the estimate.
    layers: Option<&'static [f64]>,
    /// The bridge probes the line while the layers it sends are below what is wanted (on its
    /// report tick, every 250 ms).
    probing: bool,
    ms: u64,
}

impl Sim {
    fn new(capacity: f64, wanted: f64) -> Self {
        let now = Instant::now();
        let mut browser = TransportFeedback::default();
        browser.set_extension(Some(EXT));
        Sim {
            now,
            estimate: DownlinkEstimate::default(),
            line: Line::new(capacity, now),
            browser,
            wanted,
            credit: 0.0,
            seq: 0,
            layers: None,
            probing: false,
            ms: 0,
        }
    }

    /// A conference that sends in `layers`, and probes the line when `probing`.
    fn layered(capacity: f64, layers: &'static [f64], probing: bool) -> Self {
        let wanted = *layers.last().unwrap();
        Sim { layers: Some(layers), probing, ..Sim::new(capacity, wanted) }
    }

    /// The conference sends at most 90 % of the estimate (it picks layers that fit).
    fn sending_rate(&self) -> f64 {
        match self.layers {
            Some(layers) => layers.iter().copied().rfind(|&l| l <= self.estimate.bps() * 0.7).unwrap_or(layers[0]),
            None => self.wanted.min(self.estimate.bps() * 0.9),
        }
    }

    /// One packet of `size` bytes through the line, numbered.
    fn send(&mut self, size: usize) {
        let transport_seq = self.estimate.stamp();
        self.seq = self.seq.wrapping_add(1);
        let mut header = Header { version: 2, ssrc: 9, sequence_number: self.seq, ..Default::default() };
        header.set_extension(EXT, bytes::Bytes::copy_from_slice(&transport_seq.to_be_bytes())).unwrap();
        self.estimate.on_sent(self.now, Ssrc(9), self.seq, transport_seq, size);
        self.line.send(self.now, header, size);
    }

    fn run(&mut self, span: Duration) {
        let end = self.now + span;
        while self.now < end {
            self.now += Duration::from_millis(1);
            self.credit += self.sending_rate() / 1000.0;
            while self.credit >= (PACKET * 8) as f64 {
                self.credit -= (PACKET * 8) as f64;
                self.send(PACKET);
            }
            self.ms += 1;
            if self.probing && self.ms.is_multiple_of(250) {
                let wanted = (self.sending_rate() < self.wanted).then_some(self.wanted / 0.7);
                self.estimate.start_probe(self.now, wanted);
            }
            if self.estimate.probing(self.now) {
                let mut owed = self.estimate.padding_due(self.now);
                while owed > 0 {
                    self.send(PADDING);
                    owed = owed.saturating_sub(PADDING);
                }
            }
            while self.line.in_flight.front().is_some_and(|(at, _)| *at <= self.now) {
                let (at, header) = self.line.in_flight.pop_front().unwrap();
                self.browser.on_packet(at, &header);
            }
            let bytes = self.browser.due(self.now);
            if !bytes.is_empty() {
                let mut buf = bytes.as_slice();
                while let Ok(fb) = TransportLayerCc::unmarshal(&mut buf) {
                    self.estimate.on_feedback(self.now, &fb, ONE_WAY * 2);
                    if buf.is_empty() {
                        break;
                    }
                }
            }
        }
    }

    /// The estimate (kbit/s) at the end of each of `n` spans of `span`.
    fn trace(&mut self, n: usize, span: Duration) -> Vec<u64> {
        (0..n)
            .map(|_| {
                self.run(span);
                (self.estimate.bps() / 1000.0) as u64
            })
            .collect()
    }
}

#[test]
fn a_line_capped_at_one_megabit_is_found_within_seconds_and_held_below_it() {
    let mut sim = Sim::new(1_000_000.0, 2_500_000.0);
    let trace = sim.trace(20, Duration::from_millis(500));
    println!("estimate every 500 ms (kbit/s): {trace:?}");
    let settled = &trace[6..];
    assert!(trace[..6].iter().any(|&k| k < 1000), "under 1 Mbit/s within 3 s: {trace:?}");
    assert!(settled.iter().all(|&k| (500..=1400).contains(&k)), "near the line's 1 Mbit/s from then on: {trace:?}");
    assert!(sim.estimate.reported > 1000, "the browser's feedback was matched to what was sent");
}

#[test]
fn when_the_cap_is_lifted_the_estimate_climbs_back_to_what_the_layers_want() {
    // Held below what its tiles want, the site's line is probed (as the bridge does): the
    // climb stops at the capacity it remembers until a probe shows more.
    let mut sim = Sim { probing: true, ..Sim::new(1_000_000.0, 2_500_000.0) };
    sim.run(Duration::from_secs(20));
    let capped = sim.estimate.bps();
    sim.line.capacity = 50_000_000.0;
    let trace = sim.trace(30, Duration::from_millis(1000));
    println!("capped at {capped:.0}; then every second (kbit/s): {trace:?}");
    let back = trace.iter().position(|&k| k >= 2_700).map(|s| s + 1);
    assert!(back.is_some_and(|s| s <= 16), "above the 2.5 Mbit/s the layers want within 16 s: {trace:?}");
}

#[test]
fn random_loss_of_five_percent_does_not_cut_the_estimate() {
    let mut sim = Sim::new(50_000_000.0, 2_500_000.0);
    sim.line.loss_per_mille = 50;
    let trace = sim.trace(20, Duration::from_millis(500));
    println!("estimate every 500 ms with 5 % loss (kbit/s): {trace:?}");
    assert!(trace[4..].iter().all(|&k| k >= 2_400), "5 % is a line's nature, not congestion: {trace:?}");
    let loss = sim.estimate.view().loss.unwrap();
    assert!((0.02..0.10).contains(&loss), "the loss seen is about 5 %: {loss}");
}

#[test]
fn heavy_loss_lowers_the_estimate_and_the_ceiling_is_kept() {
    let mut sim = Sim::new(50_000_000.0, 2_500_000.0);
    sim.line.loss_per_mille = 300;
    sim.run(Duration::from_secs(5));
    assert!(sim.estimate.bps() < 1_500_000.0, "30 % loss: {}", sim.estimate.bps());
    let mut limited = Sim::new(50_000_000.0, 5_000_000.0);
    limited.estimate.set_max(600_000.0);
    limited.run(Duration::from_secs(5));
    assert!(limited.estimate.bps() <= 600_000.0, "a configured ceiling holds: {}", limited.estimate.bps());
}

#[test]
fn the_controller_backs_off_to_below_what_was_delivered_and_then_climbs_gently_near_it() {
    let t0 = Instant::now();
    let mut rc = RateControl::new(2_000_000.0);
    let rtt = Duration::from_millis(50);
    let ms = |n| t0 + Duration::from_millis(n);
    rc.update(ms(0), Usage::Over, Some(1_000_000.0), 1_000_000.0, rtt);
    assert_eq!(rc.target(), 850_000.0, "85 % of the delivered rate");
    rc.update(ms(100), Usage::Over, Some(850_000.0), 850_000.0, rtt);
    assert_eq!(rc.target(), 850_000.0, "one decrease per interval: the line has not answered the last yet");
    rc.update(ms(150), Usage::Normal, Some(850_000.0), 850_000.0, rtt);
    assert_eq!(rc.target(), 850_000.0, "held after the decrease");
    rc.update(ms(1300), Usage::Normal, Some(850_000.0), 850_000.0, rtt);
    let step = rc.target() - 850_000.0;
    assert!(step > 0.0 && step < 100_000.0, "additive near the capacity it fell from: +{step}");
    rc.update(ms(2300), Usage::Normal, Some(3_000_000.0), 3_000_000.0, rtt);
    let before = rc.target();
    rc.update(ms(3300), Usage::Normal, Some(3_000_000.0), 3_000_000.0, rtt);
    assert!(rc.target() >= before * 1.07, "the line delivered far more: multiplicative again ({before} → {})", rc.target());
}

#[test]
fn a_bridge_that_sends_little_is_neither_held_to_what_it_sends_nor_raised_blind() {
    let t0 = Instant::now();
    let rtt = Duration::from_millis(50);
    let mut rc = RateControl::new(3_000_000.0);
    for i in 1..6 {
        rc.update(t0 + Duration::from_millis(300 * i), Usage::Normal, Some(100_000.0), 100_000.0, rtt);
    }
    assert_eq!(rc.target(), 3_000_000.0, "audio alone says nothing of what the line takes, more or less");
    let mut unprobed = RateControl::new(3_000_000.0);
    unprobed.bounded = false;
    for i in 1..6 {
        unprobed.update(t0 + Duration::from_millis(300 * i), Usage::Normal, Some(100_000.0), 100_000.0, rtt);
    }
    assert!(unprobed.target() > 3_000_000.0, "a line that cannot be probed climbs by itself: {}", unprobed.target());
    let before = rc.target();
    rc.update(t0 + Duration::from_secs(3), Usage::Over, Some(100_000.0), 100_000.0, rtt);
    assert_eq!(rc.target(), before * 0.85, "a jitter spike while sending little lowers it gently, not to 85 kbit/s");
}

#[test]
fn a_browser_that_never_reports_does_not_grow_the_record_of_what_was_sent() {
    // Accepted the numbering, never sends feedback (a broken or hostile page): 10 s at 1 000
    // packets a second leave at most the last two seconds' worth.
    let mut estimate = DownlinkEstimate::default();
    let t0 = Instant::now();
    for i in 0..10_000u32 {
        let seq = estimate.stamp();
        estimate.on_sent(t0 + Duration::from_millis(u64::from(i)), Ssrc(9), i as u16, seq, PACKET);
    }
    assert!(estimate.unreported() <= 3_100, "{} packets still recorded", estimate.unreported());
}

#[test]
fn a_line_that_delivers_far_less_than_it_was_sent_is_taken_at_its_word_at_once() {
    let t0 = Instant::now();
    let mut rc = RateControl::new(3_000_000.0);
    rc.update(t0, Usage::Over, Some(500_000.0), 2_000_000.0, Duration::from_millis(50));
    assert_eq!(rc.target(), 425_000.0, "85 % of what the line delivered, though far below the target");
}

#[test]
fn a_busy_receiver_that_takes_everything_late_lowers_the_estimate_once_per_interval() {
    // Every feedback for a second says overuse, while all the bridge sends arrives: the
    // receiving computer stamps its arrivals late, the line is not full.
    let t0 = Instant::now();
    let mut rc = RateControl::new(3_000_000.0);
    for i in 0..10 {
        rc.update(t0 + Duration::from_millis(100 * i), Usage::Over, Some(100_000.0), 100_000.0, Duration::from_millis(50));
    }
    let floor = 3_000_000.0 * DECREASE_FACTOR.powi(5);
    assert!((rc.target() - floor).abs() < 1.0, "five decreases of 15 % in a second, not ten: {}", rc.target());
}

#[test]
fn what_was_learnt_of_the_capacity_is_forgotten_when_the_line_stays_quiet() {
    let t0 = Instant::now();
    let rtt = Duration::from_millis(50);
    let mut rc = RateControl::new(2_000_000.0);
    rc.update(t0, Usage::Over, Some(1_000_000.0), 1_000_000.0, rtt);
    // Quiet for long, the bridge sending 80 % of the target (with the climb bounded at 1.5
    // times what was delivered, that leaves the 8 % step room).
    let mut at = Duration::from_secs(1);
    while at <= CAPACITY_MEMORY + Duration::from_secs(2) {
        let sent = rc.target() * 0.8;
        rc.update(t0 + at, Usage::Normal, Some(sent), sent, rtt);
        at += Duration::from_secs(1);
    }
    let before = rc.target();
    let sent = before * 0.8;
    rc.update(t0 + at, Usage::Normal, Some(sent), sent, rtt);
    assert!(rc.target() >= before * 1.07, "multiplicative again ({before} → {})", rc.target());
}

#[test]
fn a_remembered_capacity_bounds_the_climb_and_a_probe_the_line_could_not_carry_renews_it() {
    let t0 = Instant::now();
    let rtt = Duration::from_millis(50);
    // Backed off a 1 Mbit/s line, then quiet, the bridge sending 80 % of the target (as the
    // conference fits layers below it): the climb stops at what the capacity's spread allows.
    let climb = |rc: &mut RateControl, from: u64, to: u64| {
        for s in from..to {
            let sent = rc.target() * 0.8;
            rc.update(t0 + Duration::from_secs(s), Usage::Normal, Some(sent), sent, rtt);
        }
    };
    let mut renewed = RateControl::new(2_000_000.0);
    renewed.update(t0, Usage::Over, Some(1_000_000.0), 1_000_000.0, rtt);
    let mut forgotten = renewed.clone();
    climb(&mut renewed, 1, 15);
    assert!(renewed.target() > 1_000_000.0 && renewed.target() < 1_100_000.0, "climbed to the capacity, no further: {}", renewed.target());
    // A probe at 1.8 Mbit/s found the line at 1.1: still the same line.
    renewed.confirm_capacity(t0 + Duration::from_secs(15), 1_100_000.0);
    climb(&mut renewed, 15, 30);
    assert!(renewed.target() < 1_100_000.0, "30 s after the back-off, still at the capacity: {}", renewed.target());
    climb(&mut forgotten, 1, 30);
    assert!(forgotten.target() > 1_200_000.0, "unconfirmed, the memory lapses and the climb goes on: {}", forgotten.target());
    // A probe that found far more is no confirmation: the cap may have been lifted.
    let mut lifted = RateControl::new(2_000_000.0);
    lifted.update(t0, Usage::Over, Some(1_000_000.0), 1_000_000.0, rtt);
    lifted.confirm_capacity(t0 + Duration::from_secs(15), 1_800_000.0);
    climb(&mut lifted, 1, 30);
    assert!(lifted.target() > 1_200_000.0, "{}", lifted.target());
}

/// A ward's cameras as the conference forwards them: audio alone, then a low layer each, a
/// stage at medium, everything at full (bit/s).
const LAYERS: &[f64] = &[400_000.0, 1_000_000.0, 1_700_000.0, 3_000_000.0];

#[test]
fn under_a_cap_the_estimate_no_longer_climbs_blind_into_a_raised_layer() {
    for probing in [false, true] {
        let mut sim = Sim::layered(1_000_000.0, LAYERS, probing);
        sim.run(Duration::from_secs(10));
        let decreases = sim.estimate.decreases.trend + sim.estimate.decreases.queue;
        let trace = sim.trace(60, Duration::from_millis(500));
        let backed_off = sim.estimate.decreases.trend + sim.estimate.decreases.queue - decreases;
        println!("probing {probing}: estimate every 500 ms (kbit/s) {trace:?}, backed off {backed_off} times in 30 s");
        assert!(trace.iter().all(|&k| k <= 1_500), "never far above the line's 1 Mbit/s: {trace:?}");
        assert!(backed_off <= 2, "a raised layer did not overflow the line every few seconds: {backed_off} back-offs in 30 s");
    }
}

#[test]
fn when_the_cap_is_lifted_a_probe_finds_the_room_within_seconds() {
    let mut sim = Sim::layered(1_000_000.0, LAYERS, true);
    sim.run(Duration::from_secs(20));
    let capped = sim.estimate.bps();
    sim.line.capacity = 50_000_000.0;
    let trace = sim.trace(20, Duration::from_millis(500));
    let e = &sim.estimate;
    println!(
        "capped at {capped:.0}; then every 500 ms (kbit/s): {trace:?}, probes {} (carried {}, raised {})",
        e.prober.sent, e.prober.carried, e.raised_by_probes
    );
    let full = trace.iter().position(|&k| k as f64 * 700.0 >= *LAYERS.last().unwrap());
    assert!(full.is_some_and(|i| i < 12), "room for every layer within 6 s: {trace:?}");
    assert!(e.raised_by_probes >= 1 && e.raised_by_probes <= e.prober.carried, "the probes the line carried raised it");

    let mut blind = Sim::layered(1_000_000.0, LAYERS, false);
    blind.run(Duration::from_secs(20));
    blind.line.capacity = 50_000_000.0;
    let trace = blind.trace(20, Duration::from_millis(500));
    assert!(trace.iter().all(|&k| k as f64 * 700.0 < *LAYERS.last().unwrap()), "without a probe, the line never shows its room: {trace:?}");
}

#[test]
fn an_overflowing_queue_takes_the_loss_based_half_no_lower_than_half_what_the_line_delivered() {
    // Two seconds of a line that delivers 1 Mbit/s and drops a third of what it is sent.
    let t0 = Instant::now();
    let mut estimate = DownlinkEstimate::default();
    let rtt = Duration::from_millis(40);
    let mut id = 0;
    for batch in 1..=20u64 {
        let now = t0 + Duration::from_millis(100 * batch);
        let reports: Vec<PacketReport> = (0..15)
            .map(|k| {
                id += 1;
                let departure = now - Duration::from_millis(100) + Duration::from_millis(k * 6);
                let arrived = k % 3 != 0;
                let arrival = arrived.then(|| departure.duration_since(t0) + Duration::from_millis(20 + k));
                PacketReport {
                    ssrc: 9,
                    id,
                    rtp_sequence_number: id as u16,
                    is_twcc: true,
                    twcc_sequence_number: id as u16,
                    size: PACKET,
                    arrived,
                    departure,
                    arrival,
                    ecn: Default::default(),
                }
            })
            .collect();
        estimate.on_reports(now, &reports, rtt);
    }
    let view = estimate.view();
    let delivered = view.delivered_bps.unwrap();
    assert!(estimate.loss.target() < delivered * 0.5, "a third lost for 2 s takes the loss controller itself far down: {}", estimate.loss.target());
    assert!(view.loss_bps >= delivered * 0.5, "held at half of the {delivered:.0} bit/s delivered: {}", view.loss_bps);
}
