//! The sink task: writes the packets the router queued for one receiving site.
//!
//! It owns the output streams' rewriting state, so the packet path to one receiver takes no
//! lock shared with anything else. Packets for a source whose output is not negotiated yet
//! or while the connection is not up are dropped (counted); `write_rtp` errors are counted,
//! never fatal.

use crate::health::board::StatsBoard;
use crate::media::rewrite::Rewriter;
use crate::media::router::SinkPacket;
use crate::media::{Kind, KINDS};
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
    Bind { source: usize, kind: Kind, track: Arc<TrackLocalStaticRTP>, ssrc: u32, payload_type: u8, clock_rate: u32 },
}

struct Binding {
    track: Arc<TrackLocalStaticRTP>,
    rewriter: Rewriter,
}

pub async fn run(
    site: usize,
    board: Arc<StatsBoard>,
    mut packets: mpsc::Receiver<SinkPacket>,
    mut control: mpsc::UnboundedReceiver<SinkControl>,
    cancel: CancellationToken,
) {
    let mut outputs: Vec<Option<Binding>> = Vec::new();
    let (mut written, mut unbound, mut failed) = (0u64, 0u64, 0u64);
    let mut connected = false;
    loop {
        tokio::select! {
            biased;
            _ = cancel.cancelled() => break,
            Some(ctl) = control.recv() => match ctl {
                SinkControl::Connected(c) => connected = c,
                SinkControl::Bind { source, kind, track, ssrc, payload_type, clock_rate } => {
                    let slot = source * KINDS + kind.index();
                    if outputs.len() <= slot {
                        outputs.resize_with(slot + 1, || None);
                    }
                    match &mut outputs[slot] {
                        Some(b) if b.rewriter.ssrc() == ssrc => b.rewriter.set_payload_type(payload_type),
                        other => *other = Some(Binding { track, rewriter: Rewriter::new(ssrc, payload_type, clock_rate) }),
                    }
                }
            },
            p = packets.recv() => {
                let Some(SinkPacket { source, kind, mut packet }) = p else { break };
                match outputs.get_mut(source * KINDS + kind.index()).and_then(Option::as_mut) {
                    Some(b) if connected => {
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
                    _ => unbound += 1,
                }
            }
        }
    }
    debug!(written, unbound, failed, "sink stopped");
}
