//! The sink task: writes the packets the router queued for one receiving site.
//!
//! It owns the output slots' rewriting state, so the packet path to one receiver takes no
//! lock shared with anything else. When a video slot starts carrying another site (or another
//! simulcast layer), the new stream's packets are held back until its next keyframe: what came
//! before would only show as a broken picture. Packets for a slot not negotiated yet or while the connection is not up
//! are dropped (counted); `write_rtp` errors are counted, never fatal.

use crate::health::board::StatsBoard;
use crate::media::rewrite::Rewriter;
use crate::media::router::SinkPacket;
use crate::media::{vp8, Kind, KINDS};
use std::sync::Arc;
use std::time::Instant;
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
    /// The site and layer this slot carried last.
    source: Option<(usize, u8)>,
    /// Video from a newly selected site waits for its keyframe.
    awaiting_keyframe: bool,
}

/// True if `payload` (VP8) begins a key frame.
fn starts_keyframe(payload: &[u8]) -> bool {
    vp8::descriptor(payload).is_some_and(|d| d.starts_frame() && vp8::is_keyframe(&payload[d.len..]))
}

pub async fn run(
    site: usize,
    board: Arc<StatsBoard>,
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
                            *other = Some(Binding { track, rewriter, source: None, awaiting_keyframe: false });
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
                if b.source != Some((source, layer)) {
                    b.source = Some((source, layer));
                    b.awaiting_keyframe = kind.is_video();
                }
                if b.awaiting_keyframe {
                    if !starts_keyframe(&packet.payload) {
                        held += 1;
                        continue;
                    }
                    b.awaiting_keyframe = false;
                }
                b.rewriter.rewrite(&mut packet.header, Instant::now());
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
