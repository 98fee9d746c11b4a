//! The lean media engine (`[media] engine = "lean"`): per site, a [`session::Session`] that
//! owns the site's [`transport::Transport`] (ICE-lite, DTLS-SRTP), its SDP negotiation, the
//! streams it receives and the output slots it sends, without I/O of its own (time comes in
//! with every input; datagrams and events go out as outputs); and a tokio task around it
//! ([`driver`]) that owns the site's link on the shared ports, its ICE-TCP connections, the
//! channels and the clock. Forwarding one packet to a site is: the slot's rewrite, one SRTP
//! encryption and one `sendto`, in the task that owns everything it touches.
//!
//! It speaks the same [`PeerCommand`]s and [`PeerEvent`]s as the PeerConnection engine, so
//! the signalling session, the conference and the web client do not know which one runs.
//! Towards each browser's sender it reports reception (RTCP receiver reports: loss, jitter,
//! LSR/DLSR), the arrival of every packet it numbers ([`congestion`], transport-cc
//! feedback for its delay-based estimate) and a bandwidth ceiling (REMB). ICE over TCP: connections the shared TCP port routes
//! here carry RFC 4571 frames that are handled like datagrams from the connection's address.
//! A browser's NACK for a video slot is answered from that slot's [`history`]: on the slot's
//! retransmission stream (RFC 4588, [`rtx`]) when the browser accepted one, else the packet
//! again with its own SSRC and sequence number. Each output slot sends sender reports
//! ([`sending`]); the browser's reports on them give the round-trip time on the health page.
//! What the browser's uplink lost of its video is asked for again ([`repair`], NACK). The
//! remote candidate type comes from the candidates the browser trickles ([`candidates`]).

pub mod candidates;
pub mod congestion;
mod driver;
pub(crate) mod estimate;
pub mod history;
mod numbering;
pub mod reception;
pub mod repair;
mod rtx;
pub mod sdp;
pub mod sending;
mod session;
pub mod transport;

use super::{PeerContext, PeerError, PeerHandle};
use crate::peer::PeerEvent;
use session::{Session, Surroundings};
use std::collections::HashMap;
use std::time::Instant;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// Starts the lean peer for `site`: its [`Session`] inside a [`driver::Driver`] task.
pub(crate) async fn spawn(site: usize, ctx: PeerContext) -> Result<(PeerHandle, mpsc::Receiver<PeerEvent>), PeerError> {
    let (commands, cmd_rx) = mpsc::channel(64);
    let (events_tx, events_rx) = mpsc::channel(256);
    let cancel = CancellationToken::new();
    let generation = ctx.router.next_generation();
    let packets = ctx.router.register_sink(site, generation);
    let mux = ctx.network.mux.clone();
    let link = mux.new_link();
    let span = tracing::info_span!("peer", site = %ctx.site_ids[site], engine = "lean");
    let surroundings = Surroundings {
        router: ctx.router.clone(),
        board: ctx.board.clone(),
        lines: ctx.lines.clone(),
        site_ids: ctx.site_ids.clone(),
        slots: ctx.slots,
        video_codecs: ctx.video_codecs.clone(),
        audio_red: ctx.audio_red,
        identity: ctx.network.identity.clone(),
        udp_addr: mux.udp_addr,
        candidates: local_candidates(&mux),
    };
    let driver = driver::Driver {
        session: Session::new(site, generation, surroundings, Instant::now(), std::time::SystemTime::now()),
        mux,
        link,
        board: ctx.board.clone(),
        events: events_tx,
        cancel: cancel.clone(),
        plis: mpsc::unbounded_channel(),
        tcp: HashMap::new(),
        unlistened: false,
    };
    tokio::spawn(driver.run(cmd_rx, packets).instrument(span));
    Ok((PeerHandle { commands, cancel }, events_rx))
}

/// The bridge's candidates on the shared ports: a host candidate per advertised address, UDP
/// and (when it listens) passive ICE-TCP.
fn local_candidates(mux: &crate::peer::mux::Mux) -> Vec<String> {
    let port = mux.udp_addr.port();
    let ips = &mux.config.advertise_ips;
    let mut candidates: Vec<String> =
        ips.iter().enumerate().map(|(i, ip)| format!("candidate:{} 1 udp {} {ip} {port} typ host", i + 1, 2130706431 - i as u32)).collect();
    if let Some(tcp) = mux.tcp_addr {
        let port = tcp.port();
        let tcp_candidates = ips
            .iter()
            .enumerate()
            .map(|(i, ip)| format!("candidate:{} 1 tcp {} {ip} {port} typ host tcptype passive", ips.len() + i + 1, 1518280447 - i as u32));
        candidates.extend(tcp_candidates);
    }
    candidates
}
