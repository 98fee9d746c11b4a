//! The route table and the per-packet forwarding decision.
//!
//! Sources (a site's published audio, camera layers or content) and sinks (a site's receiving
//! queue) register here, each under a generation number so that a replaced site's late
//! unregister cannot remove its successor. The conference decides which source each of a
//! receiver's output slots carries and which simulcast layer it wants ([`Selection`]); the
//! router turns those decisions into, per source and kind, the list of (receiver, slot,
//! layer, temporal layers) it goes to — the wanted layer if the publisher sends it, else the
//! nearest one; the receiver's output drops the temporal layers it does not take. The packet path
//! (`forward`) loads the current [`RouteTable`] once and offers the packet to each of those
//! receivers' bounded queues with `try_send`: a slow receiver loses its own packets
//! (counted), it never slows the publisher or the other receivers.

use super::temporal::{self, TEMPORAL_LAYERS};
use super::{vp8, Codec, Kind, Layer, RtpPacket, Selection, HIGH, KINDS, LAYERS};
use arc_swap::ArcSwap;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

/// Depth of each receiver's queue, in packets (≈ 0.5 s of a 6-site meeting's video).
pub(crate) const SINK_QUEUE_PACKETS: usize = 1024;

/// A packet on its way to one receiver's output slot.
#[derive(Debug)]
pub struct SinkPacket {
    pub(crate) source: usize,
    pub(crate) kind: Kind,
    /// The simulcast layer it belongs to ([`HIGH`] without simulcast).
    pub(crate) layer: Layer,
    /// The highest temporal layer the receiver's slot takes now ([`temporal::ALL`]: all).
    pub(crate) temporal: u8,
    /// The receiver's output slot of that kind (0 for the recorder).
    pub(crate) slot: u8,
    /// Audio: redundant audio goes out as the plain Opus it carries ([`Selection::audio_plain`]).
    pub(crate) plain: bool,
    pub packet: RtpPacket,
    /// When its datagram was taken off the media port (where the forwarding delay starts).
    pub(crate) received: std::time::Instant,
}

/// One receiver's slot that a source's stream is forwarded to, and what of it.
#[derive(Debug, Clone, Copy)]
struct Target {
    receiver: usize,
    slot: u8,
    layer: Layer,
    /// The highest temporal layer it takes.
    temporal: u8,
    /// Redundant audio as the plain Opus it carries.
    plain: bool,
}

/// The immutable snapshot the packet path reads.
#[derive(Debug, Default)]
pub(crate) struct RouteTable {
    /// Receiving queues by site.
    sinks: Vec<Option<mpsc::Sender<SinkPacket>>>,
    /// By source site and kind: where it is forwarded to.
    targets: Vec<[Vec<Target>; KINDS]>,
    /// By source site and kind: the best layer it publishes, which is what is recorded (kept
    /// while that layer pauses: one file holds one stream's timing).
    recorded_layer: Vec<[Layer; KINDS]>,
    /// Per site and kind (audio, video, content): not forwarded (server-enforced mute).
    blocked: Vec<[bool; KINDS]>,
    /// While recording: the recorder's queue, offered every forwarded packet.
    recorder: Option<std::sync::mpsc::SyncSender<SinkPacket>>,
    /// By site: the generation of its current peer (its sink's), 0 if none; packets from an
    /// older peer of the site (one being replaced) are not forwarded.
    generations: Vec<u64>,
}

/// Counters of the forwarding path, readable at any time.
#[derive(Debug, Default)]
pub(crate) struct MediaCounters {
    pub(crate) received_packets: AtomicU64,
    pub(crate) forwarded_packets: AtomicU64,
    pub(crate) dropped_queue_full: AtomicU64,
    pub(crate) blocked_muted: AtomicU64,
    pub(crate) keyframe_requests: AtomicU64,
    /// Packets the recorder's queue had no room for (recording only; live media unaffected).
    pub(crate) recorder_dropped: AtomicU64,
    /// Packets from a site's replaced peer, not forwarded.
    pub(crate) stale_source: AtomicU64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub(crate) struct CounterSnapshot {
    pub(crate) received_packets: u64,
    pub(crate) forwarded_packets: u64,
    pub(crate) dropped_queue_full: u64,
    pub(crate) blocked_muted: u64,
    pub(crate) keyframe_requests: u64,
    pub(crate) recorder_dropped: u64,
    pub(crate) stale_source: u64,
}

struct SourceEntry {
    generation: u64,
    keyframe: mpsc::Sender<()>,
    /// False while the publisher has paused this layer (a browser drops its upper simulcast
    /// layers when its uplink or CPU cannot carry them): slots fall back to a layer that flows.
    live: bool,
}

#[derive(Default)]
struct Control {
    sinks: HashMap<usize, (u64, mpsc::Sender<SinkPacket>)>,
    sources: HashMap<(usize, Kind, Layer), SourceEntry>,
    blocked: Vec<[bool; KINDS]>,
    /// By receiver site.
    selections: Vec<Selection>,
    recorder: Option<std::sync::mpsc::SyncSender<SinkPacket>>,
}

/// Cheap to clone; one per bridge.
#[derive(Clone)]
pub struct Router {
    inner: Arc<Inner>,
}

struct Inner {
    site_count: usize,
    routes: ArcSwap<RouteTable>,
    control: Mutex<Control>,
    counters: MediaCounters,
    delay: super::delay::ForwardingDelay,
    next_generation: AtomicU64,
    /// Per site: smoothed audio loudness (f32 bits), written by the site's audio reader.
    levels: Box<[std::sync::atomic::AtomicU32]>,
    /// Per site: bytes received as a receiver gets them (with the RTP, SRTP, UDP and IP
    /// overhead), written only by that site's readers: what its audio and camera layers cost.
    received: Box<[ReceivedBytes]>,
    /// Per site: the downlink estimate (kbit/s) its tiles want while its estimate holds them
    /// back, 0 while it does not: written by the conference as it fits the site's layers, read
    /// by the site's peer, which probes the line towards it.
    wanted_downlink: Box<[AtomicU32]>,
}

/// One site's bytes received so far, by stream.
#[derive(Default)]
struct ReceivedBytes {
    audio: AtomicU64,
    /// Of the audio, what its redundant blocks carry (RFC 2198): what plain Opus saves.
    audio_redundant: AtomicU64,
    video: [AtomicU64; LAYERS],
    /// Of the video, what came in VP8 frames numbered with a temporal layer, by layer.
    temporal: [[AtomicU64; TEMPORAL_LAYERS]; LAYERS],
}

/// What arrived from one site, by stream: bytes so far ([`Router::received_bytes`]) or bit/s
/// over an interval.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Received {
    pub(crate) audio: u64,
    /// Of `audio`, what its redundant blocks carry.
    pub(crate) audio_redundant: u64,
    pub(crate) video: [u64; LAYERS],
    /// Of `video`, what came in frames of each temporal layer (0 when not numbered so).
    pub(crate) temporal: [[u64; TEMPORAL_LAYERS]; LAYERS],
}

/// What a forwarded packet costs on the line beyond its payload: RTP header, SRTP tag, UDP and
/// IPv4 headers.
const PACKET_OVERHEAD: usize = 12 + 10 + 8 + 20;

impl Router {
    pub fn new(site_count: usize) -> Self {
        let control = Control { blocked: vec![[false; KINDS]; site_count], selections: vec![Selection::default(); site_count], ..Default::default() };
        let router = Router {
            inner: Arc::new(Inner {
                site_count,
                routes: ArcSwap::from_pointee(RouteTable::default()),
                control: Mutex::new(control),
                counters: MediaCounters::default(),
                delay: Default::default(),
                next_generation: AtomicU64::new(1),
                levels: (0..site_count).map(|_| std::sync::atomic::AtomicU32::new(0)).collect(),
                received: (0..site_count).map(|_| ReceivedBytes::default()).collect(),
                wanted_downlink: (0..site_count).map(|_| AtomicU32::new(0)).collect(),
            }),
        };
        router.publish_routes(&router.lock());
        router
    }

    /// A fresh generation number for one peer's registrations.
    pub fn next_generation(&self) -> u64 {
        self.inner.next_generation.fetch_add(1, Ordering::Relaxed)
    }

    /// Registers `site` as a receiver and returns its queue. Replaces an older registration.
    pub fn register_sink(&self, site: usize, generation: u64) -> mpsc::Receiver<SinkPacket> {
        let (tx, rx) = mpsc::channel(SINK_QUEUE_PACKETS);
        let mut c = self.lock();
        c.sinks.insert(site, (generation, tx));
        self.publish_routes(&c);
        rx
    }

    pub(crate) fn unregister_sink(&self, site: usize, generation: u64) {
        let mut c = self.lock();
        if c.sinks.get(&site).is_some_and(|(g, _)| *g == generation) {
            c.sinks.remove(&site);
            self.publish_routes(&c);
        }
    }

    /// Registers a published stream (one layer of it). `keyframe` receives a unit for each
    /// keyframe request. Receivers whose slots now get this layer start it with a keyframe.
    pub(crate) fn register_source(&self, site: usize, kind: Kind, layer: Layer, generation: u64, keyframe: mpsc::Sender<()>) {
        self.change_routes(|c| {
            c.sources.insert((site, kind, layer), SourceEntry { generation, keyframe, live: true });
        });
        if kind.is_video() {
            self.request_layer_keyframe(site, kind, layer);
        }
    }

    pub(crate) fn unregister_source(&self, site: usize, kind: Kind, layer: Layer, generation: u64) {
        self.change_routes(|c| {
            if c.sources.get(&(site, kind, layer)).is_some_and(|e| e.generation == generation) {
                c.sources.remove(&(site, kind, layer));
            }
        });
    }

    /// A layer stopped arriving (`live` false) or came back: slots that wanted it get the
    /// nearest live layer meanwhile, each starting on a keyframe.
    pub(crate) fn set_layer_live(&self, site: usize, kind: Kind, layer: Layer, generation: u64, live: bool) {
        self.change_routes(|c| {
            if let Some(e) = c.sources.get_mut(&(site, kind, layer)).filter(|e| e.generation == generation) {
                e.live = live;
            }
        });
    }

    /// Applies a change to the published sources or the selections; every video or content
    /// slot that now carries another source or layer gets a keyframe requested from it.
    fn change_routes(&self, change: impl FnOnce(&mut Control)) {
        let mut c = self.lock();
        let before = slot_layers(&c);
        change(&mut c);
        let after = slot_layers(&c);
        self.publish_routes(&c);
        let mut starting: Vec<(usize, Kind, Layer)> = Vec::new();
        for (slot, now) in &after {
            let (source, kind, layer) = *now;
            if before.get(slot) != Some(now) && !starting.contains(&(source, kind, layer)) {
                starting.push((source, kind, layer));
            }
        }
        drop(c);
        for (site, kind, layer) in starting {
            self.request_layer_keyframe(site, kind, layer);
        }
    }

    /// Which source each receiver's slots carry. A video or content slot that now carries
    /// another site gets a keyframe requested from it, so the receiver decodes at once.
    pub fn set_selections(&self, selections: Vec<Selection>) {
        self.change_routes(|c| c.selections = selections);
    }

    /// A receiver asks for a keyframe on one of its slots: the publisher of the layer that
    /// slot carries now is asked.
    pub(crate) fn request_slot_keyframe(&self, receiver: usize, kind: Kind, slot: usize) {
        let c = self.lock();
        let Some(sel) = c.selections.get(receiver) else { return };
        let Some(source) = sel.source(kind, slot) else { return };
        let layer = effective_layer(&c, source, kind, sel.layer(kind, slot));
        self.send_keyframe(&c, source, kind, layer);
    }

    /// The forwarding policy, per site `[audio, video, content]` blocked: while blocked, none
    /// of that site's packets of that kind is forwarded (server-enforced mute, sharing rights).
    /// A video stream that becomes unblocked gets a keyframe request, so receivers decode at
    /// once.
    pub(crate) fn set_policy(&self, blocked: Vec<[bool; KINDS]>) {
        let mut c = self.lock();
        let mut unblocked = Vec::new();
        for (site, b) in blocked.iter().enumerate() {
            for kind in [Kind::Video, Kind::Content] {
                if c.blocked.get(site).is_some_and(|old| old[kind.index()]) && !b[kind.index()] {
                    unblocked.push((site, kind));
                }
            }
        }
        c.blocked = blocked;
        self.publish_routes(&c);
        drop(c);
        for (site, kind) in unblocked {
            self.request_keyframe(site, kind);
        }
    }

    /// Starts (`Some`) or stops offering every forwarded packet to a recorder's queue.
    /// Dropping the old queue's sender is how the recorder learns that recording stopped.
    pub(crate) fn set_recorder(&self, recorder: Option<std::sync::mpsc::SyncSender<SinkPacket>>) {
        let mut c = self.lock();
        c.recorder = recorder;
        self.publish_routes(&c);
    }

    /// Asks every publisher of video or content for a keyframe.
    pub(crate) fn request_all_keyframes(&self) {
        let c = self.lock();
        for ((_, kind, _), e) in c.sources.iter() {
            if kind.is_video() && e.keyframe.try_send(()).is_ok() {
                self.inner.counters.keyframe_requests.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Asks the publisher of `site`'s video or content for a keyframe on every layer it
    /// sends (the publisher rate-limits).
    pub(crate) fn request_keyframe(&self, site: usize, kind: Kind) {
        let c = self.lock();
        for layer in 0..LAYERS as Layer {
            self.send_keyframe(&c, site, kind, layer);
        }
    }

    /// The same for one layer.
    pub(crate) fn request_layer_keyframe(&self, site: usize, kind: Kind, layer: Layer) {
        let c = self.lock();
        self.send_keyframe(&c, site, kind, layer);
    }

    fn send_keyframe(&self, c: &Control, site: usize, kind: Kind, layer: Layer) {
        if let Some(e) = c.sources.get(&(site, kind, layer)) {
            if e.keyframe.try_send(()).is_ok() {
                self.inner.counters.keyframe_requests.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// The packet path: offer one packet from `source` (one `layer` of it) to the receivers
    /// whose slots carry that layer.
    pub(crate) fn forward(&self, source: usize, generation: u64, kind: Kind, layer: Layer, packet: RtpPacket, received: std::time::Instant) {
        let counters = &self.inner.counters;
        counters.received_packets.fetch_add(1, Ordering::Relaxed);
        let table = self.inner.routes.load();
        if table.generations.get(source).is_some_and(|g| *g > generation) {
            counters.stale_source.fetch_add(1, Ordering::Relaxed);
            return;
        }
        if table.blocked.get(source).is_some_and(|b| b[kind.index()]) {
            counters.blocked_muted.fetch_add(1, Ordering::Relaxed);
            return;
        }
        if let Some(received) = self.inner.received.get(source) {
            let size = (packet.payload.len() + PACKET_OVERHEAD) as u64;
            let bytes = match kind {
                Kind::Audio => Some(&received.audio),
                Kind::Video => received.video.get(layer as usize),
                Kind::Content => None,
            };
            if let Some(b) = bytes {
                b.fetch_add(size, Ordering::Relaxed);
            }
            if kind == Kind::Audio && Codec::of_internal_pt(packet.header.payload_type) == Some(Codec::Red) {
                if let Ok(primary) = super::red::primary(&packet.payload) {
                    received.audio_redundant.fetch_add((packet.payload.len() - primary.len()) as u64, Ordering::Relaxed);
                }
            }
            if kind == Kind::Video && Codec::of_internal_pt(packet.header.payload_type) == Some(Codec::Vp8) {
                let t = vp8::numbering(&packet.payload).and_then(|n| n.temporal).map(|t| t.layer as usize);
                if let Some(b) = t.and_then(|t| received.temporal.get(layer as usize)?.get(t)) {
                    b.fetch_add(size, Ordering::Relaxed);
                }
            }
        }
        if let Some(rec) = &table.recorder {
            let best = table.recorded_layer.get(source).map_or(HIGH, |l| l[kind.index()]);
            if layer == best {
                let p = SinkPacket { source, kind, layer, temporal: temporal::ALL, slot: 0, plain: false, packet: packet.clone(), received };
                if let Err(std::sync::mpsc::TrySendError::Full(_)) = rec.try_send(p) {
                    counters.recorder_dropped.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        let Some(targets) = table.targets.get(source) else { return };
        let mut forwarded = 0;
        let mut dropped = 0;
        for t in &targets[kind.index()] {
            if t.layer != layer {
                continue;
            }
            let Some(Some(tx)) = table.sinks.get(t.receiver) else { continue };
            match tx.try_send(SinkPacket { source, kind, layer, temporal: t.temporal, slot: t.slot, plain: t.plain, packet: packet.clone(), received }) {
                Ok(()) => forwarded += 1,
                Err(mpsc::error::TrySendError::Full(_)) => dropped += 1,
                Err(mpsc::error::TrySendError::Closed(_)) => {}
            }
        }
        counters.forwarded_packets.fetch_add(forwarded, Ordering::Relaxed);
        if dropped > 0 {
            counters.dropped_queue_full.fetch_add(dropped, Ordering::Relaxed);
        }
    }

    /// Records `site`'s current loudness (0.0..=1.0), from its audio-level header extension.
    pub(crate) fn set_level(&self, site: usize, level: f32) {
        if let Some(l) = self.inner.levels.get(site) {
            l.store(level.to_bits(), Ordering::Relaxed);
        }
    }

    /// Every site's last recorded loudness.
    pub(crate) fn levels(&self) -> Vec<f32> {
        self.inner.levels.iter().map(|l| f32::from_bits(l.load(Ordering::Relaxed))).collect()
    }

    /// Where the sending tasks add the delays of what they forwarded.
    pub(crate) fn forwarding_delay(&self) -> &super::delay::ForwardingDelay {
        &self.inner.delay
    }

    /// The conference found `site`'s tiles want an estimate of `bps` (bit/s), more than it has;
    /// `None`: they have what they want.
    pub(crate) fn set_wanted_downlink(&self, site: usize, bps: Option<f64>) {
        if let Some(w) = self.inner.wanted_downlink.get(site) {
            w.store(bps.map_or(0, |b| (b / 1000.0).clamp(1.0, u32::MAX as f64) as u32), Ordering::Relaxed);
        }
    }

    /// What `site`'s tiles want of its downlink estimate, bit/s, while it holds them back.
    pub(crate) fn wanted_downlink(&self, site: usize) -> Option<f64> {
        let kbps = self.inner.wanted_downlink.get(site)?.load(Ordering::Relaxed);
        (kbps > 0).then(|| f64::from(kbps) * 1000.0)
    }

    /// Bytes received so far per site, by stream (see [`Inner::received`]).
    pub(crate) fn received_bytes(&self) -> Vec<Received> {
        let load = |b: &AtomicU64| b.load(Ordering::Relaxed);
        self.inner
            .received
            .iter()
            .map(|r| Received {
                audio: load(&r.audio),
                audio_redundant: load(&r.audio_redundant),
                video: std::array::from_fn(|l| load(&r.video[l])),
                temporal: std::array::from_fn(|l| std::array::from_fn(|t| load(&r.temporal[l][t]))),
            })
            .collect()
    }

    pub(crate) fn counters(&self) -> CounterSnapshot {
        let c = &self.inner.counters;
        CounterSnapshot {
            received_packets: c.received_packets.load(Ordering::Relaxed),
            forwarded_packets: c.forwarded_packets.load(Ordering::Relaxed),
            dropped_queue_full: c.dropped_queue_full.load(Ordering::Relaxed),
            blocked_muted: c.blocked_muted.load(Ordering::Relaxed),
            keyframe_requests: c.keyframe_requests.load(Ordering::Relaxed),
            recorder_dropped: c.recorder_dropped.load(Ordering::Relaxed),
            stale_source: c.stale_source.load(Ordering::Relaxed),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Control> {
        self.inner.control.lock().expect("router control mutex poisoned")
    }

    fn publish_routes(&self, c: &Control) {
        let n = self.inner.site_count;
        let mut sinks = vec![None; n];
        let mut generations = vec![0; n];
        for (site, (generation, tx)) in &c.sinks {
            if let Some(slot) = sinks.get_mut(*site) {
                *slot = Some(tx.clone());
                generations[*site] = *generation;
            }
        }
        let mut targets: Vec<[Vec<Target>; KINDS]> = (0..n).map(|_| Default::default()).collect();
        for (receiver, sel) in c.selections.iter().enumerate() {
            for kind in [Kind::Audio, Kind::Video, Kind::Content] {
                for (slot, source) in sel.slots(kind).iter().enumerate() {
                    if let Some(source) = source.filter(|s| *s < n && *s != receiver) {
                        let layer = effective_layer(c, source, kind, sel.layer(kind, slot));
                        let temporal = sel.temporal(kind, slot);
                        let plain = kind == Kind::Audio && sel.audio_plain;
                        targets[source][kind.index()].push(Target { receiver, slot: slot as u8, layer, temporal, plain });
                    }
                }
            }
        }
        let recorded_layer = (0..n)
            .map(|s| {
                [Kind::Audio, Kind::Video, Kind::Content].map(|k| (0..LAYERS as Layer).rev().find(|l| c.sources.contains_key(&(s, k, *l))).unwrap_or(HIGH))
            })
            .collect();
        self.inner.routes.store(Arc::new(RouteTable { sinks, targets, recorded_layer, blocked: c.blocked.clone(), recorder: c.recorder.clone(), generations }));
    }
}

/// Per (receiver, kind, slot) of video and content: the source and layer it carries now.
fn slot_layers(c: &Control) -> HashMap<(usize, Kind, usize), (usize, Kind, Layer)> {
    let mut out = HashMap::new();
    for (receiver, sel) in c.selections.iter().enumerate() {
        for kind in [Kind::Video, Kind::Content] {
            for (slot, source) in sel.slots(kind).iter().enumerate() {
                if let Some(s) = *source {
                    out.insert((receiver, kind, slot), (s, kind, effective_layer(c, s, kind, sel.layer(kind, slot))));
                }
            }
        }
    }
    out
}

/// The layer a slot wanting `wanted` of `source` gets: that one if published and flowing, else
/// the nearest below, else the nearest above (a publisher without simulcast sends [`HIGH`]
/// only). A paused layer counts only when no layer of that source flows.
fn effective_layer(c: &Control, source: usize, kind: Kind, wanted: Layer) -> Layer {
    let live = |l: Layer| c.sources.get(&(source, kind, l)).is_some_and(|e| e.live);
    let published = |l: Layer| c.sources.contains_key(&(source, kind, l));
    nearest(wanted, live).or_else(|| nearest(wanted, published)).unwrap_or(wanted)
}

/// `wanted` if `has` it, else the nearest layer below, else the nearest above.
fn nearest(wanted: Layer, has: impl Fn(Layer) -> bool) -> Option<Layer> {
    (0..=wanted).rev().find(|l| has(*l)).or_else(|| (wanted + 1..LAYERS as Layer).find(|l| has(*l)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn packet(seq: u16) -> RtpPacket {
        let mut p = RtpPacket::default();
        p.header.sequence_number = seq;
        p
    }

    /// Every site receives every other in its own slot, in site order.
    fn everyone(n: usize) -> Vec<Selection> {
        (0..n)
            .map(|r| {
                let others: Vec<Option<usize>> = (0..n).filter(|s| *s != r).map(Some).collect();
                Selection { audio: others.clone(), video: others, ..Default::default() }
            })
            .collect()
    }

    #[test]
    fn a_packet_reaches_the_receivers_that_selected_it_in_their_slot() {
        let router = Router::new(3);
        let mut rx0 = router.register_sink(0, 1);
        let mut rx1 = router.register_sink(1, 2);
        let mut rx2 = router.register_sink(2, 3);
        router.set_selections(everyone(3));
        router.forward(0, 1, Kind::Video, HIGH, packet(9), Instant::now());
        assert!(rx0.try_recv().is_err(), "no echo to the sender");
        let p1 = rx1.try_recv().unwrap();
        assert_eq!((p1.source, p1.slot, p1.packet.header.sequence_number), (0, 0, 9));
        let p2 = rx2.try_recv().unwrap();
        assert_eq!((p2.source, p2.kind, p2.slot), (0, Kind::Video, 0));
        router.forward(2, 3, Kind::Audio, HIGH, packet(1), Instant::now());
        assert_eq!(rx1.try_recv().unwrap().slot, 1, "site 2 is the second slot of site 1");
        assert_eq!(router.counters().forwarded_packets, 4, "two receivers each time");
        // Site 2 joins again (a new peer, a newer generation): its old peer's packets stop.
        let _rx2_new = router.register_sink(2, 4);
        router.forward(2, 3, Kind::Audio, HIGH, packet(2), Instant::now());
        assert!(rx1.try_recv().is_err(), "nothing from the replaced peer");
        assert_eq!(router.counters().stale_source, 1);
        router.forward(2, 4, Kind::Audio, HIGH, packet(3), Instant::now());
        assert_eq!(rx1.try_recv().unwrap().packet.header.sequence_number, 3, "the new peer's packets flow");
    }

    #[test]
    fn a_site_that_is_not_selected_is_not_forwarded() {
        let router = Router::new(3);
        let mut rx1 = router.register_sink(1, 1);
        router.set_selections(vec![Selection::default(), Selection { audio: vec![Some(2)], video: vec![None], ..Default::default() }, Selection::default()]);
        router.forward(0, 0, Kind::Audio, HIGH, packet(1), Instant::now());
        router.forward(0, 0, Kind::Video, HIGH, packet(2), Instant::now());
        router.forward(2, 0, Kind::Video, HIGH, packet(3), Instant::now());
        assert!(rx1.try_recv().is_err(), "site 1 selected only site 2's audio");
        router.forward(2, 0, Kind::Audio, HIGH, packet(4), Instant::now());
        assert_eq!(rx1.try_recv().unwrap().source, 2);
    }

    #[test]
    fn blocked_audio_is_not_forwarded_but_video_is() {
        let router = Router::new(2);
        let mut rx1 = router.register_sink(1, 1);
        router.set_selections(everyone(2));
        router.set_policy(vec![[true, false, false], [false, false, false]]);
        router.forward(0, 0, Kind::Audio, HIGH, packet(1), Instant::now());
        router.forward(0, 0, Kind::Video, HIGH, packet(2), Instant::now());
        assert_eq!(rx1.try_recv().unwrap().kind, Kind::Video);
        assert!(rx1.try_recv().is_err());
        assert_eq!(router.counters().blocked_muted, 1);
        router.set_policy(vec![[false; KINDS]; 2]);
        router.forward(0, 0, Kind::Audio, HIGH, packet(3), Instant::now());
        assert_eq!(rx1.try_recv().unwrap().kind, Kind::Audio);
    }

    #[test]
    fn unblocking_video_or_moving_it_into_a_slot_asks_the_publisher_for_a_keyframe() {
        let router = Router::new(2);
        let (kf, mut kf_rx) = mpsc::channel(1);
        router.register_source(0, Kind::Video, HIGH, 1, kf);
        assert!(kf_rx.try_recv().is_ok(), "a new publisher is asked for a keyframe");
        let mut rx1 = router.register_sink(1, 1);
        router.set_selections(everyone(2));
        assert!(kf_rx.try_recv().is_ok(), "site 0's camera now fills a slot of site 1");
        router.set_selections(everyone(2));
        assert!(kf_rx.try_recv().is_err(), "nothing moved, nothing asked");
        router.set_policy(vec![[false, true, false], [false; KINDS]]);
        router.forward(0, 0, Kind::Video, HIGH, packet(1), Instant::now());
        assert!(rx1.try_recv().is_err(), "camera off: no video forwarded");
        router.set_policy(vec![[false; KINDS]; 2]);
        assert!(kf_rx.try_recv().is_ok(), "camera back on: keyframe requested");
        router.request_slot_keyframe(1, Kind::Video, 0);
        assert!(kf_rx.try_recv().is_ok(), "a receiver's request for its slot reaches the publisher");
        router.request_slot_keyframe(1, Kind::Video, 1);
        assert!(kf_rx.try_recv().is_err(), "an empty slot has no publisher");
    }

    #[test]
    fn the_recorder_gets_what_is_forwarded_and_stops_when_removed() {
        let router = Router::new(2);
        let _rx1 = router.register_sink(1, 1);
        let (tx, rec) = std::sync::mpsc::sync_channel(2);
        router.set_recorder(Some(tx));
        router.set_policy(vec![[true, false, false], [false; KINDS]]);
        router.forward(0, 0, Kind::Audio, HIGH, packet(1), Instant::now()); // muted: neither forwarded nor recorded
        router.forward(0, 0, Kind::Video, HIGH, packet(2), Instant::now());
        router.forward(1, 1, Kind::Audio, HIGH, packet(3), Instant::now());
        router.forward(1, 1, Kind::Audio, HIGH, packet(4), Instant::now()); // queue of 2 is full: counted, live unaffected
        let got: Vec<_> = rec.try_iter().map(|p| (p.source, p.kind, p.packet.header.sequence_number)).collect();
        assert_eq!(got, vec![(0, Kind::Video, 2), (1, Kind::Audio, 3)]);
        assert_eq!(router.counters().recorder_dropped, 1);
        router.set_recorder(None);
        assert!(matches!(rec.recv_timeout(std::time::Duration::from_millis(10)), Err(std::sync::mpsc::RecvTimeoutError::Disconnected)));
    }

    #[test]
    fn a_full_receiver_loses_its_own_packets_only() {
        let router = Router::new(3);
        let _slow = router.register_sink(1, 1);
        let mut fast = router.register_sink(2, 2);
        router.set_selections(everyone(3));
        for i in 0..(SINK_QUEUE_PACKETS + 10) as u16 {
            router.forward(0, 0, Kind::Video, HIGH, packet(i), Instant::now());
            assert!(fast.try_recv().is_ok());
        }
        assert_eq!(router.counters().dropped_queue_full, 10);
    }

    #[test]
    fn a_replaced_registration_survives_its_predecessors_unregister() {
        let router = Router::new(2);
        let _old = router.register_sink(1, 1);
        let mut new = router.register_sink(1, 2);
        router.unregister_sink(1, 1);
        router.set_selections(everyone(2));
        router.forward(0, 0, Kind::Audio, HIGH, packet(1), Instant::now());
        assert!(new.try_recv().is_ok());

        let (kf_old, _) = mpsc::channel(1);
        let (kf_new, mut kf_new_rx) = mpsc::channel(1);
        router.register_source(0, Kind::Video, HIGH, 1, kf_old);
        router.register_source(0, Kind::Video, HIGH, 2, kf_new);
        let _ = kf_new_rx.try_recv();
        router.unregister_source(0, Kind::Video, HIGH, 1);
        router.request_keyframe(0, Kind::Video);
        assert!(kf_new_rx.try_recv().is_ok(), "the newer registration stays");
        router.unregister_source(0, Kind::Video, HIGH, 2);
        router.request_keyframe(0, Kind::Video);
        assert!(kf_new_rx.try_recv().is_err());
    }

    #[test]
    fn each_slot_gets_the_layer_it_wants_or_the_nearest_published() {
        use crate::media::{LOW, MEDIUM};
        let router = Router::new(3);
        let mut big = router.register_sink(1, 1);
        let mut small = router.register_sink(2, 2);
        let (kf, mut kf_rx) = mpsc::channel(8);
        router.register_source(0, Kind::Video, LOW, 1, kf.clone());
        router.register_source(0, Kind::Video, HIGH, 1, kf);
        while kf_rx.try_recv().is_ok() {}
        let want = |layer| Selection { video: vec![Some(0)], video_layers: vec![layer], ..Default::default() };
        router.set_selections(vec![Selection::default(), want(HIGH), want(MEDIUM)]);
        router.forward(0, 0, Kind::Video, HIGH, packet(1), Instant::now());
        router.forward(0, 0, Kind::Video, LOW, packet(2), Instant::now());
        assert_eq!(big.try_recv().unwrap().layer, HIGH);
        assert!(big.try_recv().is_err(), "the large tile gets the high layer only");
        assert_eq!(small.try_recv().unwrap().layer, LOW, "no medium layer published: the nearest below");
        assert!(small.try_recv().is_err());
        // The thumbnail becomes large: the high layer now, asked for a keyframe.
        router.set_selections(vec![Selection::default(), want(HIGH), want(HIGH)]);
        assert!(kf_rx.try_recv().is_ok());
        router.forward(0, 0, Kind::Video, HIGH, packet(3), Instant::now());
        assert_eq!(small.try_recv().unwrap().layer, HIGH);
        // Only the best layer is recorded.
        let (tx, rec) = std::sync::mpsc::sync_channel(8);
        router.set_recorder(Some(tx));
        router.forward(0, 0, Kind::Video, LOW, packet(4), Instant::now());
        router.forward(0, 0, Kind::Video, HIGH, packet(5), Instant::now());
        assert_eq!(rec.try_iter().map(|p| p.layer).collect::<Vec<_>>(), vec![HIGH]);
    }

    #[test]
    fn a_paused_layer_sends_its_slots_to_a_flowing_one_until_it_comes_back() {
        use crate::media::LOW;
        let router = Router::new(2);
        let mut rx = router.register_sink(1, 1);
        let (kf_low, mut low_rx) = mpsc::channel(8);
        let (kf_high, mut high_rx) = mpsc::channel(8);
        router.register_source(0, Kind::Video, LOW, 1, kf_low);
        router.register_source(0, Kind::Video, HIGH, 1, kf_high);
        router.set_selections(vec![Selection::default(), Selection { video: vec![Some(0)], video_layers: vec![HIGH], ..Default::default() }]);
        while low_rx.try_recv().is_ok() || high_rx.try_recv().is_ok() {}
        // The publisher stops sending its high layer: the large tile gets the low one, from a keyframe.
        router.set_layer_live(0, Kind::Video, HIGH, 1, false);
        assert!(low_rx.try_recv().is_ok(), "the low layer is asked for a keyframe");
        router.forward(0, 0, Kind::Video, LOW, packet(1), Instant::now());
        assert_eq!(rx.try_recv().unwrap().layer, LOW);
        // A stale generation changes nothing.
        router.set_layer_live(0, Kind::Video, HIGH, 7, true);
        router.forward(0, 0, Kind::Video, HIGH, packet(2), Instant::now());
        assert!(rx.try_recv().is_err());
        // The high layer flows again: back to it, from a keyframe.
        router.set_layer_live(0, Kind::Video, HIGH, 1, true);
        assert!(high_rx.try_recv().is_ok());
        router.forward(0, 0, Kind::Video, HIGH, packet(3), Instant::now());
        router.forward(0, 0, Kind::Video, LOW, packet(4), Instant::now());
        assert_eq!(rx.try_recv().unwrap().layer, HIGH);
        assert!(rx.try_recv().is_err());
    }
}
