//! One received stream's packets on their way to the router, whichever engine received them:
//! its simulcast layers (registered as sources, paused when the publisher stops sending one),
//! its meters for the health page, and for audio the level that drives the active speaker.
//! Each packet leaves with the bridge's own payload type for its codec
//! ([`Codec::internal_pt`]) and without the publisher's header extensions. Redundant audio
//! (RFC 2198) leaves as [`Codec::Red`] with its blocks renumbered to the bridge's Opus; a
//! malformed one, or one carrying anything but the stream's Opus, is dropped.
//!
//! A layer is live while it carries media: packets of padding alone (which a browser may go
//! on sending on a layer it has paused, or to probe its uplink) do not keep it live.

use crate::health::board::{InboundMeter, StatsBoard};
use crate::media::router::Router;
use crate::media::Ssrc;
use crate::media::{layer_of_rid, speaker, Codec, Kind, Layer, Pt, HIGH};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tracing::{info, warn};

/// A simulcast layer silent this long while another layer of the same track flows counts as
/// paused: a browser drops its upper layers when its uplink or CPU cannot carry them, and
/// the slots showing that layer move to one that flows (and back when it returns). Nine frame
/// intervals of a 15 frames/s camera: the tiles showing it are frozen until then (it was
/// 1.5 s until 2026-12-06; the layer that checks must itself be flowing, see `on_packet`).
pub(crate) const LAYER_PAUSE: Duration = Duration::from_millis(600);
/// A paused layer counts as flowing again once it has carried pictures this long without a
/// gap of [`LAYER_PAUSE`]: a browser whose uplink sits at the edge turns its upper layer off
/// and on every few seconds, and each move of a tile between layers waits for a keyframe.
const LAYER_RETURN: Duration = Duration::from_secs(2);
/// A layer paused again within this of its return waits twice as long the next time, up to
/// [`LAYER_RETURN_MAX`].
const FLAP_WINDOW: Duration = Duration::from_secs(30);
const LAYER_RETURN_MAX: Duration = Duration::from_secs(6);
/// Layers (SSRCs) one received stream may open: three simulcast layers and one spare, for an
/// SSRC a browser changes. Each costs a source in the router (its route table rebuilt under
/// the control lock) and a keyframe task; a page that sends more SSRCs on one stream is
/// broken or hostile, and their packets are dropped.
pub(crate) const MAX_LAYERS: usize = 4;

/// One layer of a received stream: its meter and liveness.
struct LayerState {
    layer: Layer,
    meter: InboundMeter,
    last_packet: Instant,
    /// False while the publisher has paused this layer (see [`LAYER_PAUSE`]).
    live: bool,
    /// Paused, but carrying pictures again since then (see [`LAYER_RETURN`]).
    returning_since: Option<Instant>,
    /// How long it must flow before it counts as live again.
    return_after: Duration,
    /// When it last came back.
    returned_at: Option<Instant>,
}

/// How one publisher numbers its audio: Opus, and redundant Opus when negotiated. A packet
/// with any other number is dropped: nothing else was negotiated, and forwarded as Opus it
/// would be noise to every receiver and a broken recording.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AudioFormats {
    pub(crate) opus: Pt,
    pub(crate) red: Option<Pt>,
}

impl AudioFormats {
    /// Whether `pt` is this site's redundant audio (RFC 2198).
    pub(crate) fn is_red(&self, pt: Pt) -> bool {
        self.red == Some(pt)
    }
}

/// Moves one received stream's packets to the router, layer by layer, and measures them.
pub struct Inbound {
    site: usize,
    kind: Kind,
    generation: u64,
    router: Router,
    board: Arc<StatsBoard>,
    /// The negotiated id of the RFC 6464 audio-level extension (0 = not negotiated).
    level_id: Arc<AtomicU8>,
    codec: Codec,
    /// Audio: the publisher's payload types (the lean engine; `None`: every packet is taken
    /// as the stream's codec).
    audio: Option<AudioFormats>,
    /// Audio packets dropped: of a payload type not negotiated, or malformed redundancy
    /// (logged at the first).
    dropped_audio: u64,
    /// By SSRC.
    layers: HashMap<Ssrc, LayerState>,
    /// When the layers are next checked for a pause.
    next_layer_check: Instant,
    loudness: f32,
}

impl Inbound {
    #[allow(clippy::too_many_arguments)]
    pub fn new(site: usize, kind: Kind, generation: u64, router: Router, board: Arc<StatsBoard>, level_id: Arc<AtomicU8>, codec: Codec, now: Instant) -> Self {
        Inbound {
            site,
            kind,
            generation,
            router,
            board,
            level_id,
            codec,
            audio: None,
            dropped_audio: 0,
            layers: HashMap::new(),
            next_layer_check: now,
            loudness: 0.0,
        }
    }

    /// The publisher's numbering of its audio (renegotiation may change it).
    pub(crate) fn set_audio_formats(&mut self, formats: Option<AudioFormats>) {
        self.audio = formats;
    }

    pub(crate) fn kind(&self) -> Kind {
        self.kind
    }

    pub fn has_layer(&self, ssrc: Ssrc) -> bool {
        self.layers.contains_key(&ssrc)
    }

    /// True when the stream has [`MAX_LAYERS`]: a new SSRC opens nothing.
    pub(crate) fn is_full(&self) -> bool {
        self.layers.len() >= MAX_LAYERS
    }

    /// Registers the layer `ssrc` carries (by its RID) as a source, unless the stream has
    /// [`MAX_LAYERS`] already (then its packets are dropped). For video, returns the
    /// channel on which the router asks this layer for keyframes; the engine turns those into
    /// PLIs to the publisher.
    pub fn open_layer(&mut self, ssrc: Ssrc, rid: Option<&str>, now: Instant) -> Option<mpsc::Receiver<()>> {
        if self.layers.contains_key(&ssrc) || self.is_full() {
            return None;
        }
        let layer = if self.kind == Kind::Video { layer_of_rid(rid) } else { HIGH };
        info!(ssrc = ssrc.0, rid, layer, "receiving {} layer", self.kind.as_str());
        let (kf_tx, kf_rx) = mpsc::channel(1);
        let meter = InboundMeter::new(self.kind, self.codec);
        let state = LayerState { layer, meter, last_packet: now, live: true, returning_since: None, return_after: LAYER_RETURN, returned_at: None };
        self.layers.insert(ssrc, state);
        self.router.register_source(self.site, self.kind, layer, self.generation, kf_tx);
        self.kind.is_video().then_some(kf_rx)
    }

    /// Pauses the layers silent for [`LAYER_PAUSE`] while the one just received flows.
    fn check_layers(&mut self, now: Instant) {
        self.next_layer_check = now + LAYER_PAUSE / 6;
        for l in self.layers.values_mut().filter(|l| l.live && now.duration_since(l.last_packet) >= LAYER_PAUSE) {
            l.live = false;
            let flapping = l.returned_at.is_some_and(|t| now.duration_since(t) < FLAP_WINDOW);
            l.return_after = if flapping { (l.return_after * 2).min(LAYER_RETURN_MAX) } else { LAYER_RETURN };
            l.returning_since = None;
            let return_after_s = l.return_after.as_secs();
            info!(layer = l.layer, return_after_s, "{} layer paused by the publisher", self.kind.as_str());
            self.router.set_layer_live(self.site, self.kind, l.layer, self.generation, false);
        }
    }

    /// Measures one packet of an open layer and forwards it; `received` is when it arrived
    /// (the clock of everything here).
    pub fn on_packet(&mut self, packet: crate::media::RtpPacket, received: std::time::Instant) {
        let now = received;
        let (site, kind) = (self.site, self.kind);
        self.board.touch(site, kind, now);
        // The statistics follow the best layer arriving (the one a large tile shows).
        let best = self.layers.values().filter(|l| now.duration_since(l.last_packet).as_secs() < 2).map(|l| l.layer).max();
        let Some(state) = self.layers.get_mut(&Ssrc::of(&packet.header)) else { return };
        let layer = state.layer;
        // Padding alone is measured and forwarded (receivers would count a gap in the numbers
        // as loss), but says nothing of whether the layer carries a picture.
        if !packet.payload.is_empty() {
            let gap = now.duration_since(state.last_packet);
            let steady = gap < LAYER_PAUSE / 3;
            state.last_packet = now;
            if !state.live {
                let since = state.returning_since.filter(|_| gap < LAYER_PAUSE).unwrap_or(now);
                state.returning_since = Some(since);
                if now.duration_since(since) >= state.return_after {
                    (state.live, state.returning_since, state.returned_at) = (true, None, Some(now));
                    info!(layer, "{} layer flows again", kind.as_str());
                    self.router.set_layer_live(site, kind, layer, self.generation, true);
                }
            }
            if steady && self.layers.len() > 1 && now >= self.next_layer_check {
                self.check_layers(now);
            }
        }
        let Some(state) = self.layers.get_mut(&Ssrc::of(&packet.header)) else { return };
        if self.audio.is_some_and(|f| f.is_red(Pt::of(&packet.header))) && !packet.payload.is_empty() {
            state.meter.note_redundant();
        }
        if let Some(snapshot) = state.meter.on_packet(&packet, now) {
            if best.is_none_or(|b| layer >= b) {
                self.board.publish_inbound(site, kind, snapshot);
            }
        }
        if kind == Kind::Audio {
            let id = self.level_id.load(Ordering::Relaxed);
            let level = (id != 0).then(|| packet.header.get_extension(id)).flatten();
            if let Some(level) = level.as_deref().and_then(speaker::level_from_extension) {
                // ~200 ms smoothing at 50 packets/s.
                self.loudness += (speaker::loudness(level) - self.loudness) * 0.1;
                self.router.set_level(site, self.loudness);
            }
        }
        self.forward(packet, layer, received);
    }

    /// To the router: in the bridge's numbering, without the publisher's extensions (their ids
    /// mean nothing on the receivers' legs), stripped once before the packet is copied per
    /// receiver.
    fn forward(&mut self, mut packet: crate::media::RtpPacket, layer: Layer, received: Instant) {
        let pt = Pt::of(&packet.header);
        packet.header.payload_type = match self.audio {
            Some(f) if f.is_red(pt) => match crate::media::red::renumber(&mut packet.payload, f.opus.0, Codec::Opus.internal_pt()) {
                Ok(()) => Codec::Red.internal_pt(),
                Err(e) => return self.drop_audio(&e.to_string()),
            },
            Some(f) if pt != f.opus => return self.drop_audio(&format!("payload type {pt} was not negotiated")),
            _ => self.codec.internal_pt(),
        };
        packet.header.extension = false;
        packet.header.extensions.clear();
        self.router.forward(self.site, self.generation, self.kind, layer, packet, received);
    }

    fn drop_audio(&mut self, why: &str) {
        self.dropped_audio += 1;
        if self.dropped_audio == 1 {
            warn!(site = self.site, why, "an audio packet cannot be forwarded; such packets are dropped");
        }
    }

    /// The stream ended: its sources leave the router, its meters the health page.
    pub(crate) fn close(&mut self) {
        if self.kind == Kind::Audio {
            self.router.set_level(self.site, 0.0);
        }
        self.board.end_inbound(self.site, self.kind);
        for l in self.layers.values() {
            self.router.unregister_source(self.site, self.kind, l.layer, self.generation);
        }
        self.layers.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::{RtpPacket, Selection, LOW};

    const HQ: usize = 0;
    const WARD: usize = 1;

    fn packet(ssrc: u32, seq: u16, payload: &'static [u8]) -> RtpPacket {
        let mut p = RtpPacket::default();
        p.header.ssrc = ssrc;
        p.header.sequence_number = seq;
        p.header.padding = payload.is_empty();
        p.payload = bytes::Bytes::from_static(payload);
        p
    }

    /// The ward's camera as an [`Inbound`], and HQ's queue of what the router forwards of it
    /// to a large tile (one that wants the high layer).
    fn ward_camera_seen_large_by_hq() -> (mpsc::Receiver<crate::media::router::SinkPacket>, Inbound) {
        let router = Router::new(2);
        let viewer = router.register_sink(HQ, router.next_generation());
        router.set_selections(vec![Selection { video: vec![Some(WARD)], video_layers: vec![HIGH], ..Default::default() }, Selection::default()]);
        let board = Arc::new(StatsBoard::new(2));
        let camera = Inbound::new(WARD, Kind::Video, router.next_generation(), router.clone(), board, Arc::default(), Codec::Vp8, Instant::now());
        (viewer, camera)
    }

    #[test]
    fn a_layer_that_carries_only_padding_is_paused_and_the_viewer_gets_one_with_pictures() {
        let (mut viewer, mut camera) = ward_camera_seen_large_by_hq();
        let t0 = Instant::now();
        let (low, high) = (10, 20);
        let _kf = (camera.open_layer(Ssrc(low), Some("l"), t0), camera.open_layer(Ssrc(high), Some("h"), t0));
        // Both layers carry pictures at first: the viewer's large tile gets the high one.
        camera.on_packet(packet(low, 1, &[0x10, 0x00]), t0);
        camera.on_packet(packet(high, 1, &[0x10, 0x00]), t0);
        assert_eq!(viewer.try_recv().map(|p| p.layer).ok(), Some(HIGH));
        // Then the sender pauses its high layer but goes on padding it (as Firefox does).
        for i in 1..=40u16 {
            let at = t0 + Duration::from_millis(50 * i as u64);
            camera.on_packet(packet(high, 1 + i, &[]), at);
            camera.on_packet(packet(low, 1 + i, &[0x10, 0x00]), at);
        }
        let layers: Vec<_> = std::iter::from_fn(|| viewer.try_recv().ok()).filter(|p| !p.packet.payload.is_empty()).map(|p| p.layer).collect();
        assert_eq!(layers.last(), Some(&LOW), "after the pause the viewer gets the low layer's pictures ({layers:?})");
        // Pictures on the high layer again: live again once they have flowed for a while.
        let back = t0 + Duration::from_millis(2100);
        let flows = |camera: &mut Inbound, from: Instant, seq: u16, for_: Duration| {
            let steps = (for_.as_millis() / 50) as u16;
            for i in 0..=steps {
                let at = from + Duration::from_millis(50 * i as u64);
                camera.on_packet(packet(high, seq + i, &[0x10, 0x00]), at);
                camera.on_packet(packet(low, seq + i, &[0x10, 0x00]), at);
            }
        };
        flows(&mut camera, back, 50, LAYER_RETURN - Duration::from_millis(100));
        let layers: Vec<_> = std::iter::from_fn(|| viewer.try_recv().ok()).map(|p| p.layer).collect();
        assert!(layers.iter().all(|l| *l == LOW), "not before it has flowed {LAYER_RETURN:?}");
        flows(&mut camera, back + LAYER_RETURN - Duration::from_millis(50), 100, Duration::from_millis(100));
        assert_eq!(std::iter::from_fn(|| viewer.try_recv().ok()).last().map(|p| p.layer), Some(HIGH));
    }

    #[test]
    fn a_layer_that_keeps_stopping_must_flow_longer_each_time_before_tiles_go_back_to_it() {
        let (mut viewer, mut camera) = ward_camera_seen_large_by_hq();
        let t0 = Instant::now();
        let _kf = (camera.open_layer(Ssrc(10), Some("l"), t0), camera.open_layer(Ssrc(20), Some("h"), t0));
        let mut seq = 0u16;
        // Every 50 ms for `ms`: the low layer's pictures, and the high one's if `high`.
        let mut run = |camera: &mut Inbound, from: Duration, ms: u64, high: bool| {
            for i in 0..ms / 50 {
                let at = t0 + from + Duration::from_millis(50 * i);
                seq += 1;
                if high {
                    camera.on_packet(packet(20, seq, &[0x10, 0x00]), at);
                }
                camera.on_packet(packet(10, seq, &[0x10, 0x00]), at);
            }
            std::iter::from_fn(|| viewer.try_recv().ok()).last().map(|p| p.layer)
        };
        assert_eq!(run(&mut camera, Duration::ZERO, 1000, true), Some(HIGH));
        // The uplink at its edge: the high layer stops for a second, comes back, stops again.
        assert_eq!(run(&mut camera, Duration::from_millis(1000), 1000, false), Some(LOW), "paused after 0.6 s");
        assert_eq!(run(&mut camera, Duration::from_millis(2000), 2500, true), Some(HIGH), "back after 2 s of pictures");
        assert_eq!(run(&mut camera, Duration::from_millis(4500), 1000, false), Some(LOW));
        // Paused again within 30 s of its return: 2 s of pictures are no longer enough; 4 s are.
        assert_eq!(run(&mut camera, Duration::from_millis(5500), 3000, true), Some(LOW), "a flapping layer waits longer");
        assert_eq!(run(&mut camera, Duration::from_millis(8500), 1500, true), Some(HIGH));
    }

    /// The ward's microphone as an [`Inbound`], and HQ's queue of what the router forwards of it.
    fn ward_mic_heard_by_hq() -> (mpsc::Receiver<crate::media::router::SinkPacket>, Inbound) {
        let router = Router::new(2);
        let viewer = router.register_sink(HQ, router.next_generation());
        router.set_selections(vec![Selection { audio: vec![Some(WARD)], ..Default::default() }, Selection::default()]);
        let board = Arc::new(StatsBoard::new(2));
        let mic = Inbound::new(WARD, Kind::Audio, router.next_generation(), router.clone(), board, Arc::default(), Codec::Opus, Instant::now());
        (viewer, mic)
    }

    #[test]
    fn a_stream_opens_a_few_layers_and_drops_the_packets_of_more_ssrcs() {
        let (mut viewer, mut mic) = ward_mic_heard_by_hq();
        let t0 = Instant::now();
        // A hostile page sends each packet with a new SSRC on its one audio stream.
        for ssrc in 1..=100u32 {
            let _ = mic.open_layer(Ssrc(ssrc), None, t0);
            mic.on_packet(packet(ssrc, 1, &[0xF8, 0x00]), t0);
        }
        assert!(mic.is_full());
        assert_eq!(mic.layers.len(), MAX_LAYERS);
        let forwarded: Vec<u32> = std::iter::from_fn(|| viewer.try_recv().ok()).map(|p| p.packet.header.ssrc).collect();
        assert_eq!(forwarded.len(), MAX_LAYERS, "only the open layers' packets are forwarded ({} were)", forwarded.len());
    }

    #[test]
    fn redundant_audio_is_forwarded_in_the_bridges_numbering_and_a_malformed_one_dropped() {
        let (mut viewer, mut mic) = ward_mic_heard_by_hq();
        // This publisher numbers RED 100 and its Opus 109.
        mic.set_audio_formats(Some(AudioFormats { opus: Pt(109), red: Some(Pt(100)) }));
        let t0 = Instant::now();
        let _ = mic.open_layer(Ssrc(5), None, t0);
        let send = |mic: &mut Inbound, seq: u16, pt: u8, payload: Vec<u8>| {
            let mut p = RtpPacket::default();
            (p.header.ssrc, p.header.sequence_number, p.header.payload_type) = (5, seq, pt);
            p.payload = bytes::Bytes::from(payload);
            mic.on_packet(p, t0);
        };
        send(&mut mic, 1, 100, crate::media::red::encode(&[(109, 960, b"old")], 109, b"now"));
        send(&mut mic, 2, 109, b"plain".to_vec());
        send(&mut mic, 3, 100, vec![0x80 | 109, 0, 0]);
        send(&mut mic, 4, 100, crate::media::red::encode(&[(101, 960, b"dtmf")], 109, b"now"));
        send(&mut mic, 5, 0, b"pcmu".to_vec());
        let got: Vec<_> = std::iter::from_fn(|| viewer.try_recv().ok())
            .map(|p| (p.packet.header.sequence_number, p.packet.header.payload_type, p.packet.payload.to_vec()))
            .collect();
        let red = crate::media::red::encode(&[(111, 960, b"old")], 111, b"now");
        assert_eq!(
            got,
            vec![(1, Codec::Red.internal_pt(), red), (2, Codec::Opus.internal_pt(), b"plain".to_vec())],
            "the truncated RED, the RED of something else and the packet of a codec never negotiated are dropped"
        );
    }
}
