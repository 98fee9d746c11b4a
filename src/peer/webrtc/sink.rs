//! The sink task of the `webrtc` engine: writes the packets the router queued for one
//! receiving site to its PeerConnection's local tracks. It owns the site's [`Outputs`], so the
//! packet path to one receiver takes no lock shared with anything else; `write_rtp` errors are
//! counted, never fatal.

use crate::health::board::StatsBoard;
use crate::media::codec::PayloadTypes;
use crate::media::router::{Router, SinkPacket};
use crate::media::{Kind, Ssrc};
use crate::peer::outputs::Outputs;
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::debug;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_local::TrackLocal;

pub(crate) enum SinkControl {
    /// Media may flow only while connected: before DTLS completes there are no SRTP keys.
    Connected(bool),
    Bind {
        kind: Kind,
        slot: usize,
        track: Arc<TrackLocalStaticRTP>,
        ssrc: u32,
        payload_types: PayloadTypes,
        clock_rate: u32,
    },
}

pub(crate) async fn run(
    site: usize,
    board: Arc<StatsBoard>,
    router: Router,
    mut packets: mpsc::Receiver<SinkPacket>,
    mut control: mpsc::UnboundedReceiver<SinkControl>,
    cancel: CancellationToken,
) {
    let mut outputs: Outputs<Arc<TrackLocalStaticRTP>> = Outputs::new(site);
    loop {
        tokio::select! {
            biased;
            _ = cancel.cancelled() => break,
            Some(ctl) = control.recv() => match ctl {
                SinkControl::Connected(c) => outputs.set_connected(c),
                SinkControl::Bind { kind, slot, track, ssrc, payload_types, clock_rate } => outputs.bind(kind, slot, track, Ssrc(ssrc), payload_types, clock_rate),
            },
            p = packets.recv() => {
                let Some(p) = p else { break };
                let Some((track, packet)) = outputs.prepare(p, &router, std::time::Instant::now()) else { continue };
                let bytes = packet.payload.len() + 12;
                match track.clone().write_rtp(packet).await {
                    Ok(()) => {
                        outputs.written += 1;
                        board.add_outbound(site, bytes);
                    }
                    Err(_) => outputs.failed += 1,
                }
            }
        }
    }
    let Outputs { written, unbound, failed, held, unsupported, thinned, .. } = outputs;
    debug!(written, unbound, failed, held, unsupported, thinned, "sink stopped");
}
