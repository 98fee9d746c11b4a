//! The tokio task around one site's [`Session`]: it owns the site's link on the shared ports,
//! its ICE-TCP connections, the channels to the signalling session and the router, and the
//! clock. Each wake hands the session one input with the time, then carries out what the
//! session asks ([`Output`]) and sleeps until the session's next timeout or input.

use super::session::{Output, Session};
use crate::media::router::SinkPacket;
use crate::media::Ssrc;
use crate::peer::mux::tcp::{serve_framed, FrameWriter};
use crate::peer::mux::{Datagram, Mux, PcLink};
use crate::peer::{pace_keyframe_requests, Fault, PeerCommand, PeerEvent};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn, Instrument};

/// Datagrams taken from the shared port per wake, and router packets per wake.
const BATCH: usize = 64;
/// How often the ports' count of refused strangers goes to the health board.
const STRANGERS_EVERY: std::time::Duration = std::time::Duration::from_secs(2);

pub(super) struct Driver {
    pub(super) session: Session,
    pub(super) mux: Arc<Mux>,
    pub(super) link: Arc<PcLink>,
    pub(super) board: Arc<crate::health::board::StatsBoard>,
    pub(super) events: mpsc::Sender<PeerEvent>,
    pub(super) cancel: CancellationToken,
    /// Keyframe requests for the publisher, by media SSRC (from each layer's request task).
    pub(super) plis: (mpsc::UnboundedSender<Ssrc>, mpsc::UnboundedReceiver<Ssrc>),
    /// ICE-TCP connections by remote address.
    pub(super) tcp: HashMap<SocketAddr, FrameWriter>,
    /// The ports refused the last description's credentials: its event is not passed on.
    pub(super) unlistened: bool,
}

impl Driver {
    pub(super) async fn run(mut self, mut commands: mpsc::Receiver<PeerCommand>, mut packets: mpsc::Receiver<SinkPacket>) {
        let link = self.link.clone();
        let mut datagrams: Vec<Datagram> = Vec::with_capacity(BATCH);
        let mut tcp_connections = self.mux.tcp_addr.map(|_| link.accept_tcp());
        let mut strangers = tokio::time::interval(STRANGERS_EVERY);
        let timer = tokio::time::sleep_until(self.session.poll_timeout().into());
        tokio::pin!(timer);
        loop {
            // Re-armed only when it changes: not once per forwarded packet.
            let due = tokio::time::Instant::from_std(self.session.poll_timeout());
            if timer.deadline() != due {
                timer.as_mut().reset(due);
            }
            tokio::select! {
                _ = self.cancel.cancelled() => break,
                cmd = commands.recv() => match cmd {
                    Some(cmd) => self.session.handle_command(Instant::now(), cmd),
                    None => break,
                },
                _ = std::future::poll_fn(|cx| link.poll_datagrams(cx, &mut datagrams, BATCH)) => {
                    self.session.set_path(link.path());
                    let now = Instant::now();
                    for d in datagrams.drain(..) {
                        self.session.handle_datagram(now, d.from, &d.data, d.at);
                    }
                }
                p = packets.recv() => {
                    let Some(p) = p else { break };
                    self.session.handle_packet(Instant::now(), p);
                    self.carry_out().await;
                    for _ in 1..BATCH {
                        match packets.try_recv() {
                            Ok(p) => self.session.handle_packet(Instant::now(), p),
                            Err(_) => break,
                        }
                        self.carry_out().await;
                    }
                }
                Some(ssrc) = self.plis.1.recv() => self.session.handle_keyframe_request(Instant::now(), ssrc),
                Some(routed) = async { match tcp_connections.as_mut() { Some(rx) => rx.recv().await, None => std::future::pending().await } } => {
                    let (peer, writer) = serve_framed(self.mux.clone(), link.clone(), routed, self.cancel.child_token());
                    info!("ICE-TCP connection from {peer}");
                    self.tcp.retain(|_, w| !w.is_closed());
                    self.tcp.insert(peer, writer);
                }
                _ = &mut timer => {
                    self.session.set_path(link.path());
                    self.session.handle_timeout(Instant::now());
                }
                _ = strangers.tick() => self.board.note_strangers_refused(self.mux.strangers_refused()),
            }
            self.carry_out().await;
        }
        self.cancel.cancel();
        self.session.close();
        self.mux.close_pc(&self.link);
    }

    /// Carries out what the session asked, in order.
    async fn carry_out(&mut self) {
        while let Some(output) = self.session.poll_output() {
            match output {
                Output::Transmit(to, datagram) => self.send_to(to, &datagram),
                Output::Event { event, droppable: true } => {
                    let _ = self.events.try_send(event);
                }
                Output::Event { event, droppable: false } => {
                    if std::mem::take(&mut self.unlistened) && matches!(event, PeerEvent::LocalAnswer(_) | PeerEvent::LocalOffer(_)) {
                        continue;
                    }
                    let _ = self.events.send(event).await;
                }
                Output::Listen(description) => {
                    if let Err(e) = self.mux.register_local_sdp(&self.link, &description) {
                        // The description would name credentials no check reaches the site with.
                        let message = format!("media ports: {e}");
                        warn!(%message, "refused a description");
                        self.unlistened = true;
                        let _ = self.events.send(PeerEvent::Refused { fault: Fault::Internal, message, request: "offer" }).await;
                    }
                }
                Output::CheckFailed(from) => self.mux.check_failed(from),
                Output::KeyframeRequests(ssrc, requests) => {
                    let (plis, cancel) = (self.plis.0.clone(), self.cancel.clone());
                    tokio::spawn(pace_keyframe_requests(requests, cancel, move || std::future::ready(plis.send(ssrc).is_ok())).in_current_span());
                }
            }
        }
    }

    /// One datagram to the site: framed on its ICE-TCP connection if `to` is one, else from
    /// the shared UDP port.
    fn send_to(&mut self, to: SocketAddr, datagram: &[u8]) {
        if let Some(writer) = self.tcp.get(&to) {
            if !writer.send(datagram) {
                self.tcp.remove(&to);
            }
            return;
        }
        if let Err(e) = self.mux.send_udp(&self.link, to, datagram) {
            debug!("send to {to}: {e}");
        }
    }
}
