//! The sink task: writes the packets the router queued for one receiving site.
//!
//! It owns the output slots' rewriting state, so the packet path to one receiver takes no
//! lock shared with anything else. When a video slot starts carrying another site (or another
//! simulcast layer), the new stream's packets are held back until its next keyframe: what came
//! before would only show as a broken picture. While a slot waits, the keyframe is asked for
//! again every [`KEYFRAME_RETRY`]: a request can be lost or ignored by the publisher (Chromium
//! drops one that comes too soon after the last), and without a retry the slot would stay
//! black until the next natural keyframe, which may never come. Packets for a slot not
//! negotiated yet or while the connection is not up are dropped (counted); `write_rtp` errors
//! are counted, never fatal.

use crate::health::board::StatsBoard;
use crate::media::rewrite::Rewriter;
use crate::media::router::{Router, SinkPacket};
use crate::media::{vp8, Kind, KINDS};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::debug;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_local::TrackLocal;

pub enum SinkControl {
    /// Media may flow only while connected: before DTLS completes there are no SRTP keys.
    Connected(bool),
    Bind { kind: Kind, slot: usize, track: Arc<TrackLocalStaticRTP>, ssrc: u32, payload_type: u8, clock_rate: u32 },
}

struct Binding {
    track: Arc<TrackLocalStaticRTP>,
    rewriter: Rewriter,
    gate: KeyframeGate,
}

/// How long a slot waits for the keyframe it asked for before asking again.
pub const KEYFRAME_RETRY: Duration = Duration::from_millis(1000);

/// What to do with one packet on its way into an output slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Admit {
    Write,
    Hold,
    /// Hold it, and ask the publisher for the keyframe again.
    HoldAndAsk,
}

/// Decides, per output slot, which packets may go out: after the slot starts carrying another
/// source (site and layer), video waits for a keyframe, asked for again every [`KEYFRAME_RETRY`].
#[derive(Debug, Default)]
struct KeyframeGate {
    /// The site and layer this slot carried last.
    source: Option<(usize, u8)>,
    /// While waiting for a keyframe: when it was last asked for.
    asked: Option<Instant>,
}

impl KeyframeGate {
    fn admit(&mut self, source: (usize, u8), kind: Kind, payload: &[u8], now: Instant) -> Admit {
        if self.source != Some(source) {
            self.source = Some(source);
            // The router asked for this keyframe when it moved the slot.
            self.asked = kind.is_video().then_some(now);
        }
        let Some(asked) = self.asked else { return Admit::Write };
        if starts_keyframe(payload) {
            self.asked = None;
            return Admit::Write;
        }
        if now.duration_since(asked) >= KEYFRAME_RETRY {
            self.asked = Some(now);
            return Admit::HoldAndAsk;
        }
        Admit::Hold
    }
}

/// True if `payload` (VP8) begins a key frame.
fn starts_keyframe(payload: &[u8]) -> bool {
    vp8::descriptor(payload).is_some_and(|d| d.starts_frame() && vp8::is_keyframe(&payload[d.len..]))
}

pub async fn run(
    site: usize,
    board: Arc<StatsBoard>,
    router: Router,
    mut packets: mpsc::Receiver<SinkPacket>,
    mut control: mpsc::UnboundedReceiver<SinkControl>,
    cancel: CancellationToken,
) {
    let mut outputs: [Vec<Option<Binding>>; KINDS] = Default::default();
    let (mut written, mut unbound, mut failed, mut held) = (0u64, 0u64, 0u64, 0u64);
    let mut connected = false;
    loop {
        tokio::select! {
            biased;
            _ = cancel.cancelled() => break,
            Some(ctl) = control.recv() => match ctl {
                SinkControl::Connected(c) => connected = c,
                SinkControl::Bind { kind, slot, track, ssrc, payload_type, clock_rate } => {
                    let slots = &mut outputs[kind.index()];
                    if slots.len() <= slot {
                        slots.resize_with(slot + 1, || None);
                    }
                    match &mut slots[slot] {
                        Some(b) if b.rewriter.ssrc() == ssrc => b.rewriter.set_payload_type(payload_type),
                        other => {
                            let rewriter = Rewriter::new(ssrc, payload_type, clock_rate);
                            *other = Some(Binding { track, rewriter, gate: KeyframeGate::default() });
                        }
                    }
                }
            },
            p = packets.recv() => {
                let Some(SinkPacket { source, kind, layer, slot, mut packet }) = p else { break };
                let Some(b) = outputs[kind.index()].get_mut(slot as usize).and_then(Option::as_mut).filter(|_| connected) else {
                    unbound += 1;
                    continue;
                };
                let now = Instant::now();
                match b.gate.admit((source, layer), kind, &packet.payload, now) {
                    Admit::Write => {}
                    Admit::Hold => {
                        held += 1;
                        continue;
                    }
                    Admit::HoldAndAsk => {
                        held += 1;
                        debug!(source, layer, slot, "still no keyframe; asking again");
                        router.request_layer_keyframe(source, kind, layer);
                        continue;
                    }
                }
                b.rewriter.rewrite(&mut packet.header, now);
                let bytes = packet.payload.len() + 12;
                match b.track.write_rtp(packet).await {
                    Ok(()) => {
                        written += 1;
                        board.add_outbound(site, bytes);
                    }
                    Err(_) => failed += 1,
                }
            }
        }
    }
    debug!(written, unbound, failed, held, "sink stopped");
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = &[0x10, 0x00, 0x9d, 0x01, 0x2a];
    const DELTA: &[u8] = &[0x10, 0x01, 0x00];
    const CONTINUATION: &[u8] = &[0x00, 0x00, 0x9d];

    #[test]
    fn video_from_a_new_source_waits_for_a_keyframe_and_asks_again_while_none_comes() {
        let mut gate = KeyframeGate::default();
        let t0 = Instant::now();
        assert_eq!(gate.admit((1, 2), Kind::Video, DELTA, t0), Admit::Hold);
        assert_eq!(gate.admit((1, 2), Kind::Video, CONTINUATION, t0 + Duration::from_millis(500)), Admit::Hold);
        assert_eq!(gate.admit((1, 2), Kind::Video, DELTA, t0 + KEYFRAME_RETRY), Admit::HoldAndAsk, "the first request went unanswered");
        assert_eq!(gate.admit((1, 2), Kind::Video, DELTA, t0 + KEYFRAME_RETRY + Duration::from_millis(10)), Admit::Hold, "asked again only after another wait");
        assert_eq!(gate.admit((1, 2), Kind::Video, DELTA, t0 + 2 * KEYFRAME_RETRY), Admit::HoldAndAsk);
        assert_eq!(gate.admit((1, 2), Kind::Video, KEY, t0 + 2 * KEYFRAME_RETRY), Admit::Write);
        assert_eq!(gate.admit((1, 2), Kind::Video, DELTA, t0 + 5 * KEYFRAME_RETRY), Admit::Write, "after the keyframe everything goes");
    }

    #[test]
    fn a_layer_switch_waits_again_and_audio_never_waits() {
        let mut gate = KeyframeGate::default();
        let t0 = Instant::now();
        assert_eq!(gate.admit((1, 0), Kind::Video, KEY, t0), Admit::Write);
        assert_eq!(gate.admit((1, 2), Kind::Video, DELTA, t0), Admit::Hold, "the high layer starts on its own keyframe");
        let mut audio = KeyframeGate::default();
        assert_eq!(audio.admit((3, 2), Kind::Audio, DELTA, t0), Admit::Write);
        assert_eq!(audio.admit((4, 2), Kind::Audio, DELTA, t0), Admit::Write);
    }
}
