//! The lean media engine (`[media] engine = "lean"`): one task per site owns its
//! [`Transport`] (ICE-lite, DTLS-SRTP), its SDP [`Negotiation`], the streams it receives and
//! the output slots it sends, and moves packets between the shared UDP port and the router
//! itself. Forwarding one packet to a site is: the slot's rewrite, one SRTP encryption and one
//! `sendto`, in the task that owns everything it touches.
//!
//! It speaks the same [`PeerCommand`]s and [`PeerEvent`]s as the PeerConnection engine, so
//! the signalling session, the conference and the web client do not know which one runs.
//! Towards each browser's sender it reports reception (RTCP receiver reports: loss, jitter,
//! LSR/DLSR), the arrival of every packet it numbers ([`congestion`], transport-cc
//! feedback for its delay-based estimate) and a bandwidth ceiling (REMB, [`REMB_BPS`]). ICE over TCP: connections the shared TCP port routes
//! here carry RFC 4571 frames that are handled like datagrams from the connection's address.
//! A browser's NACK for a video slot is answered from that slot's [`history`]: on the slot's
//! retransmission stream (RFC 4588, [`rtx`]) when the browser accepted one, else the packet
//! again with its own SSRC and sequence number. Each output slot sends sender reports
//! ([`sending`]); the browser's reports on them give the round-trip time on the health page.
//! What the browser's uplink lost of its video is asked for again ([`repair`], NACK). The
//! remote candidate type comes from the candidates the browser trickles ([`candidates`]).

pub mod candidates;
pub mod congestion;
pub(crate) mod estimate;
pub mod history;
mod numbering;
pub mod reception;
pub mod repair;
mod rtx;
pub mod sdp;
pub mod sending;
pub mod transport;

use super::budget;
use super::inbound::{AudioFormats, Inbound};
use super::offer_answer::{AfterRefusedAnswer, OfferAnswer};
use super::outputs::Outputs;
use super::Fault;
use super::{PeerCommand, PeerContext, PeerError, PeerEvent, PeerHandle, KEYFRAME_MIN_INTERVAL};
use crate::health::board::Transport as Path;
use crate::media::delay::DelayCounts;
use crate::media::router::SinkPacket;
use crate::media::{Kind, RtpPacket};
use crate::peer::mux::tcp::{serve_framed, FrameWriter};
use crate::peer::mux::{Datagram, PcLink};
use crate::signal::protocol::IceCandidate;
use crate::signal::protocol::MediaState;
use candidates::RemoteCandidates;
use congestion::TransportFeedback;
use estimate::DownlinkEstimate;
use history::History;
use reception::Reception;
use repair::Repair;
use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtcp::payload_feedbacks::receiver_estimated_maximum_bitrate::ReceiverEstimatedMaximumBitrate;
use rtc::rtcp::receiver_report::ReceiverReport;
use rtc::rtcp::sender_report::SenderReport;
use rtc::rtcp::transport_feedbacks::transport_layer_cc::TransportLayerCc;
use rtc::rtcp::transport_feedbacks::transport_layer_nack::TransportLayerNack;
use rtc::shared::marshal::{Marshal, Unmarshal};
use sdp::{LocalTransport, Media, Negotiation, RemoteDescription, Role};
use sending::Sent;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::AtomicU8;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn, Instrument};
use transport::{IceCredentials, Received, RemoteTransport, Transport, TransportState};

/// Datagrams taken from the shared port per wake, and router packets per wake.
const BATCH: usize = 64;
/// The bandwidth ceiling each browser is told for everything it sends (REMB): a camera's
/// three simulcast layers (at most 2.2 Mbit/s in the web client) and a shared screen.
pub(crate) const REMB_BPS: f32 = 4_000_000.0;
/// How often reception is reported; more often in the first seconds, when Chromium takes a
/// REMB as its starting estimate.
const REPORT_INTERVAL: Duration = Duration::from_secs(1);
const EARLY_REPORT_INTERVAL: Duration = Duration::from_millis(250);
const EARLY_REPORTS_FOR: Duration = Duration::from_secs(3);
/// Packets sent again for one NACK at most (a burst of loss asks for many at once).
const MAX_RETRANSMIT_PER_NACK: usize = 64;
/// At most one report of the downlink's video loss to the session per this.
const LOSS_EVENT_INTERVAL: Duration = Duration::from_millis(500);
/// The downlink estimate goes to the conference when it moved by this share, or after
/// [`ESTIMATE_EVENT_EVERY`] anyway.
const ESTIMATE_CHANGE: f64 = 0.08;
const ESTIMATE_EVENT_EVERY: Duration = Duration::from_secs(2);
/// Bytes a packet takes on the line beyond its RTP: the SRTP authentication tag (10) and the
/// UDP (8) and IPv4 (20) headers.
const WIRE_OVERHEAD: usize = 38;
/// The round trip assumed until the browser's reports measure it.
const DEFAULT_RTT: Duration = Duration::from_millis(50);
/// Padding octets per packet of a probe (the most one packet can say it carries), and what
/// such a packet takes on the line: an RTP header with the transport-wide number, the SRTP tag,
/// UDP and IPv4.
const PADDING: u8 = 255;
const PADDING_ON_THE_LINE: usize = PADDING as usize + 20 + WIRE_OVERHEAD;
/// The SSRC the bridge's own RTCP (keyframe requests) goes out with.
const RTCP_SSRC: u32 = 1;

/// Starts the lean peer for `site`.
pub(crate) async fn spawn(site: usize, ctx: PeerContext) -> Result<(PeerHandle, mpsc::Receiver<PeerEvent>), PeerError> {
    let (commands, cmd_rx) = mpsc::channel(64);
    let (events_tx, events_rx) = mpsc::channel(256);
    let cancel = CancellationToken::new();
    let generation = ctx.router.next_generation();
    let packets = ctx.router.register_sink(site, generation);
    let link = ctx.network.mux.new_link();
    let (pli_tx, pli_rx) = mpsc::unbounded_channel();
    let span = tracing::info_span!("peer", site = %ctx.site_ids[site], engine = "lean");
    let peer = LeanPeer {
        site,
        generation,
        link: link.clone(),
        events: events_tx,
        negotiation: Negotiation::new(&ctx.video_codecs).with_audio_red(ctx.audio_red),
        ice: IceCredentials::random(),
        transport: None,
        offers: OfferAnswer::default(),
        answered_first_offer: false,
        state: None,
        outputs: Outputs::new(site),
        output_ssrcs: HashMap::new(),
        streams: Vec::new(),
        by_ssrc: HashMap::new(),
        content_track: None,
        camera_mid: None,
        audio_level_id: Arc::default(),
        pli_tx,
        cancel: cancel.clone(),
        scratch: vec![0u8; 1500],
        refused: 0,
        receptions: HashMap::new(),
        epoch: Instant::now(),
        connected_at: None,
        next_report: Instant::now(),
        tcp: HashMap::new(),
        histories: HashMap::new(),
        retransmitted: 0,
        retransmit_budget: budget::RetransmitBudget::default(),
        ssrc_budget: budget::SsrcBudget::default(),
        refusals: crate::peer::Refusals::new(site, ctx.board.clone()),
        sent: HashMap::new(),
        rtt: None,
        feedback: TransportFeedback::default(),
        estimate: DownlinkEstimate::new(ctx.lines.get(site).down_bps().unwrap_or(estimate::MAX_BPS)),
        numbering: Default::default(),
        estimate_sent: None,
        repairs: HashMap::new(),
        remote_candidates: RemoteCandidates::default(),
        delays: DelayCounts::default(),
        next_loss_event: Instant::now(),
        ctx,
    };
    tokio::spawn(peer.run(cmd_rx, packets, pli_rx, link).instrument(span));
    Ok((PeerHandle { commands, cancel }, events_rx))
}

/// One m-section the browser sends on.
struct Stream {
    mid: String,
    /// Decided at the stream's first packet (content or camera is known by then).
    inbound: Option<Inbound>,
    /// SSRCs the SDP announced for it.
    ssrcs: Vec<u32>,
    payload_type: u8,
    codec: crate::media::Codec,
    /// Redundant audio's payload type (RFC 2198), when negotiated beside Opus.
    red: Option<u8>,
    /// Simulcast layers negotiated (by RID); a new SSRC waits for a packet naming its RID.
    simulcast: bool,
    media: Media,
    mid_ext: Option<u8>,
    rid_ext: Option<u8>,
    track_id: Option<String>,
}

impl Stream {
    /// Audio: Opus's payload type and redundant audio's, as the stream's [`Inbound`] checks them.
    fn audio(&self) -> Option<AudioFormats> {
        (self.codec == crate::media::Codec::Opus).then_some(AudioFormats { opus: self.payload_type, red: self.red })
    }

    /// Whether a packet of payload type `pt` may be this stream's.
    fn carries(&self, pt: u8) -> bool {
        self.payload_type == pt || self.red == Some(pt)
    }
}

struct LeanPeer {
    site: usize,
    generation: u64,
    ctx: PeerContext,
    link: Arc<PcLink>,
    events: mpsc::Sender<PeerEvent>,
    negotiation: Negotiation,
    /// The bridge's current ICE credentials towards this site.
    ice: IceCredentials,
    transport: Option<Transport>,
    /// The offer/answer rules kept with the site (shared with the other engine).
    offers: OfferAnswer,
    answered_first_offer: bool,
    /// Last state told to the session.
    state: Option<MediaState>,
    outputs: Outputs<()>,
    /// Output SSRC → (kind, slot), for keyframe requests from the browser.
    output_ssrcs: HashMap<u32, (Kind, usize)>,
    streams: Vec<Stream>,
    /// Inbound SSRC → index in `streams`.
    by_ssrc: HashMap<u32, usize>,
    content_track: Option<String>,
    camera_mid: Option<String>,
    audio_level_id: Arc<AtomicU8>,
    /// Keyframe requests for the publisher, by media SSRC (from each layer's request task).
    pli_tx: mpsc::UnboundedSender<u32>,
    cancel: CancellationToken,
    /// Where each forwarded packet is serialised before encryption.
    scratch: Vec<u8>,
    /// Datagrams the transport refused (logged, counted).
    refused: u64,
    /// Per SSRC the browser sends, for the receiver reports.
    receptions: HashMap<u32, Reception>,
    epoch: Instant,
    connected_at: Option<Instant>,
    next_report: Instant,
    /// ICE-TCP connections by remote address.
    tcp: HashMap<SocketAddr, FrameWriter>,
    /// What each video slot sent lately, by its SSRC, for NACKs.
    histories: HashMap<u32, History>,
    retransmitted: u64,
    /// What this site's NACKs may make the bridge send again.
    retransmit_budget: budget::RetransmitBudget,
    /// How many SSRCs this site's packets may make the bridge follow.
    ssrc_budget: budget::SsrcBudget,
    /// What the budgets refused: counted on the board, logged once per budget and connection.
    refusals: crate::peer::Refusals,
    /// What each output slot sent, by its SSRC, for the sender reports.
    sent: HashMap<u32, Sent>,
    /// Round-trip time from the browser's reports on the bridge's sender reports (smoothed).
    rtt: Option<Duration>,
    /// Arrival times of the browser's numbered packets, for its congestion control.
    feedback: TransportFeedback,
    /// How much the site's downlink takes, from the browser's word on the bridge's numbered
    /// packets.
    estimate: DownlinkEstimate,
    /// Which output streams the bridge numbers for the estimate, and with which id.
    numbering: numbering::Numbering,
    /// The estimate last told to the conference, and when.
    estimate_sent: Option<(f64, Instant)>,
    /// What the browser's uplink lost of each video stream it sends, to ask for again.
    repairs: HashMap<u32, Repair>,
    /// The candidates the browser trickled, which name the type of the address it uses.
    remote_candidates: RemoteCandidates,
    /// How long each forwarded packet was in the bridge, until added to the router's total.
    delays: DelayCounts,
    /// When the browser's reported video loss may next go to the session.
    next_loss_event: Instant,
}

impl LeanPeer {
    async fn run(
        mut self,
        mut commands: mpsc::Receiver<PeerCommand>,
        mut packets: mpsc::Receiver<SinkPacket>,
        mut plis: mpsc::UnboundedReceiver<u32>,
        link: Arc<PcLink>,
    ) {
        let mut datagrams: Vec<Datagram> = Vec::with_capacity(BATCH);
        let mut stats_tick = tokio::time::interval(Duration::from_secs(2));
        let mut report_tick = tokio::time::interval(EARLY_REPORT_INTERVAL);
        let mut feedback_tick = tokio::time::interval(congestion::FEEDBACK_INTERVAL);
        feedback_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut repair_tick = tokio::time::interval(repair::INTERVAL);
        repair_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut probe_tick = tokio::time::interval(estimate::probe::STEP);
        probe_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut tcp_connections = self.ctx.network.mux.tcp_addr.map(|_| link.accept_tcp());
        // The transport's next timer (a handshake retransmission, consent), re-armed only when
        // it changes: not once per forwarded packet.
        let idle = || tokio::time::Instant::now() + Duration::from_secs(3600);
        let timer = tokio::time::sleep_until(idle());
        tokio::pin!(timer);
        loop {
            match self.transport.as_ref().and_then(Transport::poll_timeout).map(tokio::time::Instant::from_std) {
                Some(due) if timer.deadline() != due => timer.as_mut().reset(due),
                None if timer.deadline() < tokio::time::Instant::now() + Duration::from_secs(60) => timer.as_mut().reset(idle()),
                _ => {}
            }
            tokio::select! {
                _ = self.cancel.cancelled() => break,
                cmd = commands.recv() => match cmd {
                    Some(cmd) => self.on_command(cmd).await,
                    None => break,
                },
                _ = std::future::poll_fn(|cx| link.poll_datagrams(cx, &mut datagrams, BATCH)) => {
                    let now = Instant::now();
                    for d in datagrams.drain(..) {
                        self.on_datagram(now, &d);
                    }
                }
                p = packets.recv() => {
                    let Some(p) = p else { break };
                    self.forward(p);
                    for _ in 1..BATCH {
                        match packets.try_recv() {
                            Ok(p) => self.forward(p),
                            Err(_) => break,
                        }
                    }
                }
                Some(ssrc) = plis.recv() => self.send_pli(ssrc),
                Some(routed) = async { match tcp_connections.as_mut() { Some(rx) => rx.recv().await, None => std::future::pending().await } } => {
                    let (peer, writer) = serve_framed(self.ctx.network.mux.clone(), link.clone(), routed, self.cancel.child_token());
                    info!("ICE-TCP connection from {peer}");
                    self.tcp.retain(|_, w| !w.is_closed());
                    self.tcp.insert(peer, writer);
                }
                _ = &mut timer => {
                    timer.as_mut().reset(idle());
                    if let Some(t) = self.transport.as_mut() {
                        if let Err(e) = t.handle_timeout(Instant::now()) {
                            warn!("media transport: {e}");
                        }
                    }
                }
                _ = report_tick.tick() => {
                    self.send_reports();
                    // A technician may have changed the site's downlink ceiling since.
                    self.estimate.set_max(self.ctx.lines.get(self.site).down_bps().unwrap_or(estimate::MAX_BPS));
                    self.report_estimate();
                    self.start_probe();
                    self.delays.flush_into(self.ctx.router.forwarding_delay());
                }
                _ = feedback_tick.tick(), if self.feedback.negotiated() => self.send_feedback(),
                _ = repair_tick.tick(), if self.repairs.values().any(|r| r.missing() > 0) => self.send_nacks(),
                _ = probe_tick.tick(), if self.estimate.probing(Instant::now()) => self.send_padding(),
                _ = stats_tick.tick() => {
                    self.ctx.board.note_strangers_refused(self.ctx.network.mux.strangers_refused());
                    if self.state == Some(MediaState::Connected) {
                        self.report_connection();
                    }
                }
            }
            self.flush();
            self.update_state().await;
        }
        self.cancel.cancel();
        self.ctx.router.unregister_sink(self.site, self.generation);
        self.ctx.board.set_downlink(self.site, None, None);
        self.delays.flush_into(self.ctx.router.forwarding_delay());
        for s in &mut self.streams {
            if let Some(inbound) = s.inbound.as_mut() {
                inbound.close();
            }
        }
        self.ctx.network.mux.close_pc(&self.link);
        let o = &self.outputs;
        let (nacked, recovered) = self.repairs.values().fold((0, 0), |(a, r), x| (a + x.asked, r + x.recovered));
        info!(
            written = o.written,
            unbound = o.unbound,
            held = o.held,
            failed = o.failed,
            unsupported = o.unsupported,
            retransmitted = self.retransmitted,
            nack_refused = self.retransmit_budget.refused,
            ssrc_refused = self.ssrc_budget.refused,
            offers_refused = self.offers.offers_refused(),
            refused = self.refused,
            transport_feedback = self.feedback.sent,
            downlink_feedback = self.estimate.feedbacks,
            downlink_estimate_kbps = (self.estimate.bps() / 1000.0) as u64,
            lowered_by_trend = self.estimate.decreases.trend,
            lowered_by_queue = self.estimate.decreases.queue,
            probes = self.estimate.prober.sent,
            probes_carried = self.estimate.prober.carried,
            raised_by_probes = self.estimate.raised_by_probes,
            nacked,
            recovered,
            "media connection closed"
        );
    }

    /// The event's send, not borrowing the peer (whose transport is not `Sync`) across it.
    fn emit(&self, event: PeerEvent) -> impl std::future::Future<Output = ()> + Send + 'static {
        let events = self.events.clone();
        async move {
            let _ = events.send(event).await;
        }
    }

    fn refuse(&self, fault: Fault, message: String, request: &'static str) -> impl std::future::Future<Output = ()> + Send + 'static {
        warn!(%message, "refused {request}");
        self.emit(PeerEvent::Refused { fault, message, request })
    }

    /// `n` more of what the site asked for were refused by `budget`: counted on the health
    /// board (which raises the site's `over_budget` alarm), logged once per budget and
    /// connection, never per packet.
    fn over_budget(&mut self, budget: budget::Budget, n: u64, what: &str) {
        self.refusals.refuse(budget, n, what);
    }

    /// Sends what the transport queued (check answers, handshake flights).
    fn flush(&mut self) {
        let Some(t) = self.transport.as_mut() else { return };
        let mut out = Vec::new();
        while let Some(d) = t.poll_transmit() {
            out.push(d);
        }
        for (to, datagram) in out {
            self.send_to(to, &datagram);
        }
    }

    /// One datagram to the site: framed on its ICE-TCP connection if `to` is one, else from
    /// the shared UDP port. False if it could not be sent.
    fn send_to(&mut self, to: SocketAddr, datagram: &[u8]) -> bool {
        if let Some(writer) = self.tcp.get(&to) {
            if writer.send(datagram) {
                return true;
            }
            self.tcp.remove(&to);
            return false;
        }
        match self.ctx.network.mux.send_udp(&self.link, to, datagram) {
            Ok(_) => true,
            Err(e) => {
                debug!("send to {to}: {e}");
                false
            }
        }
    }

    /// Tells the session when the transport's state changes, and opens or closes the slots.
    async fn update_state(&mut self) {
        let Some(t) = self.transport.as_ref() else { return };
        let state = match t.state() {
            TransportState::New | TransportState::Connecting => MediaState::Connecting,
            TransportState::Connected => MediaState::Connected,
            TransportState::ConsentLost => MediaState::Disconnected,
            TransportState::Failed(_) => MediaState::Failed,
        };
        if self.state == Some(state) {
            return;
        }
        let was_connected = self.state == Some(MediaState::Connected);
        self.state = Some(state);
        let connected = state == MediaState::Connected;
        info!("media connection {state:?}");
        self.outputs.set_connected(connected);
        if connected && !was_connected {
            self.connected_at.get_or_insert_with(Instant::now);
            self.report_connection();
            // SRTP keys exist only now: every slot that shows video needs a keyframe.
            for (kind, slot) in self.bound_video_slots() {
                self.ctx.router.request_slot_keyframe(self.site, kind, slot);
            }
        }
        self.emit(PeerEvent::State(state)).await;
    }

    /// The round trip, the remote candidate type and the path, for the health page.
    fn report_connection(&self) {
        let rtt = self.rtt.map(|r| r.as_secs_f64() * 1000.0);
        let path = self.path();
        let remote = self.transport.as_ref().and_then(Transport::remote);
        let candidate = remote.map_or("", |addr| self.remote_candidates.type_of(addr, path == Some(Path::Tcp)));
        self.ctx.board.set_connection(self.site, rtt, candidate, path);
    }

    /// Over UDP or ICE-TCP, from what the peer last sent media on.
    fn path(&self) -> Option<Path> {
        self.link.transport().map(|t| match t {
            crate::peer::mux::Transport::Udp => Path::Udp,
            crate::peer::mux::Transport::Tcp => Path::Tcp,
        })
    }

    fn bound_video_slots(&self) -> Vec<(Kind, usize)> {
        let outputs = self.negotiation.sections.iter().filter_map(|s| match &s.role {
            Role::Output(o) if o.accepted && o.kind.is_video() => Some((o.kind, o.slot)),
            _ => None,
        });
        outputs.collect()
    }

    fn local_transport(&self) -> LocalTransport {
        let mux = &self.ctx.network.mux;
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
        LocalTransport { ufrag: self.ice.ufrag.clone(), pwd: self.ice.pwd.clone(), fingerprint: self.ctx.network.identity.fingerprint().to_owned(), candidates }
    }

    async fn on_command(&mut self, cmd: PeerCommand) {
        match cmd {
            PeerCommand::RemoteOffer(sdp) => self.on_remote_offer(sdp).await,
            PeerCommand::RemoteAnswer(sdp) => self.on_remote_answer(sdp).await,
            PeerCommand::ContentTrack(id) => self.content_track = Some(id),
            // ICE-lite: the browser's checks come to the bridge; its candidates only say which
            // kind of address those come from.
            PeerCommand::RemoteCandidate(c) => {
                if !self.remote_candidates.add(&c.candidate) {
                    self.over_budget(budget::Budget::Candidates, 1, "this site trickles more candidates than a browser gathers; the rest are ignored");
                }
            }
        }
    }

    async fn on_remote_offer(&mut self, sdp: String) {
        let outputs = self.negotiation.sections.iter().filter(|s| matches!(s.role, Role::Output(_))).count();
        if let Err(r) = self.offers.check_offer(&sdp, outputs, Instant::now()) {
            let refused = self.refusals.note(r, "offer");
            return self.emit(refused).await;
        }
        let offer = match RemoteDescription::parse(&sdp) {
            Ok(d) => d,
            Err(e) => return self.refuse(Fault::BadSdp, format!("offer not accepted: {e}"), "offer").await,
        };
        let mut negotiation = self.negotiation.clone();
        if let Err(e) = negotiation.apply_offer(&offer) {
            return self.refuse(Fault::BadSdp, format!("offer not accepted: {e}"), "offer").await;
        }
        self.negotiation = negotiation;
        // A browser that does not trickle lists its candidates in the offer.
        let ignored = offer.sections.iter().flat_map(|s| &s.candidates).filter(|c| !self.remote_candidates.add(c)).count();
        if ignored > 0 {
            self.over_budget(budget::Budget::Candidates, ignored as u64, "this site lists more candidates than a browser gathers; the rest are ignored");
        }
        let refused: Vec<String> = self.negotiation.refused_sends(&offer).map(|(s, why)| format!("its {} (mid {}): {why}", s.media, s.mid)).collect();
        if !refused.is_empty() {
            // Never a silently dead camera: the page is told, the log says why, and the
            // health page names the cause on the site's frozen-video alarm.
            let message = format!("the bridge cannot receive {}; it forwards Opus, {}", refused.join("; "), codec_names(&self.ctx.video_codecs));
            self.ctx.board.set_media_refused(self.site, Some(message.clone()));
            self.refuse(Fault::UnsupportedCodec, message, "offer").await;
        } else {
            self.ctx.board.set_media_refused(self.site, None);
        }
        let mux = self.ctx.network.mux.clone();
        let mut restarted = false;
        match self.transport.as_mut() {
            None => {
                let remote = RemoteTransport { ufrag: offer.ufrag.clone(), fingerprints: offer.fingerprints.clone() };
                self.transport = Some(Transport::new(&self.ctx.network.identity, self.ice.clone(), remote, mux.udp_addr));
            }
            Some(t) if t.remote_ufrag() != offer.ufrag => {
                info!("the site restarted ICE");
                self.ice = IceCredentials::random();
                t.restart_ice(self.ice.clone(), offer.ufrag.clone());
                restarted = true;
                self.emit(PeerEvent::IceRestarted).await;
            }
            Some(_) => {}
        }
        self.offers.offer_applied(&sdp);
        self.learn_streams();
        let answer = self.negotiation.answer(&self.local_transport());
        if let Err(e) = mux.register_local_sdp(&self.link, &answer) {
            return self.refuse(Fault::Internal, format!("media ports: {e}"), "offer").await;
        }
        self.emit(PeerEvent::LocalAnswer(answer)).await;
        if !self.answered_first_offer || restarted {
            // The candidates are in the answer; trickled too, for pages (and relays in front
            // of the bridge) that read candidates from the signalling.
            let mid = self.negotiation.sections.iter().find(|s| !s.role.is_rejected()).map(|s| s.mid.clone());
            for candidate in self.local_transport().candidates {
                let c = IceCandidate { candidate, sdp_mid: mid.clone(), sdp_m_line_index: Some(0), username_fragment: Some(self.ice.ufrag.clone()) };
                self.emit(PeerEvent::LocalCandidate(c)).await;
            }
        }
        if !std::mem::replace(&mut self.answered_first_offer, true) {
            self.add_slots().await;
        }
    }

    /// Keeps `streams` in step with the negotiated inbound sections.
    fn learn_streams(&mut self) {
        let transport_cc = self.negotiation.inbound().find_map(|(_, section)| section.extmap(sdp::TRANSPORT_CC_URI));
        self.feedback.set_extension(transport_cc);
        for (mid, section) in self.negotiation.inbound() {
            let (mid_ext, rid_ext) = (section.extmap(sdp::MID_URI), section.extmap(sdp::RID_URI));
            if let Some(level) = section.extmap(sdp::AUDIO_LEVEL_URI) {
                self.audio_level_id.store(level, std::sync::atomic::Ordering::Relaxed);
            }
            let media = self.negotiation.sections.iter().find(|s| s.mid == mid).map(|s| s.media.clone()).unwrap_or_default();
            match self.streams.iter_mut().find(|s| s.mid == mid) {
                Some(s) => {
                    s.ssrcs = section.ssrcs.clone();
                    s.payload_type = section.payload_type;
                    s.codec = section.codec;
                    s.red = section.red;
                    let audio = s.audio();
                    if let Some(inbound) = s.inbound.as_mut() {
                        inbound.set_audio_formats(audio);
                    }
                    s.simulcast = !section.rids.is_empty();
                    (s.mid_ext, s.rid_ext) = (mid_ext, rid_ext);
                    s.track_id = section.track_id.clone();
                }
                None => self.streams.push(Stream {
                    mid: mid.to_owned(),
                    inbound: None,
                    ssrcs: section.ssrcs.clone(),
                    payload_type: section.payload_type,
                    codec: section.codec,
                    red: section.red,
                    simulcast: !section.rids.is_empty(),
                    media,
                    mid_ext,
                    rid_ext,
                    track_id: section.track_id.clone(),
                }),
            }
        }
    }

    /// Adds the fixed output slots (after the browser's first offer is answered) and offers
    /// them: `a0…`, `v0…` and `c0` are their stream ids, which `view` messages map to sites.
    async fn add_slots(&mut self) {
        let (audio, video) = self.ctx.slots;
        let wanted = (0..audio).map(|i| (Kind::Audio, i)).chain((0..video).map(|i| (Kind::Video, i))).chain([(Kind::Content, 0)]);
        let mut taken: std::collections::HashSet<u32> = self.output_ssrcs.keys().copied().collect();
        let mut new_ssrc = || loop {
            let s = rand::random::<u32>();
            if s > RTCP_SSRC && taken.insert(s) {
                break s;
            }
        };
        for (kind, slot) in wanted {
            let ssrc = new_ssrc();
            // Video slots have a second SSRC for retransmissions (RFC 4588).
            let rtx_ssrc = kind.is_video().then(&mut new_ssrc);
            self.negotiation.add_output_repaired(kind, slot, ssrc, rtx_ssrc);
            self.output_ssrcs.insert(ssrc, (kind, slot));
            if kind.is_video() {
                self.histories.insert(ssrc, History::default());
            }
            self.sent.insert(ssrc, Sent::new(ssrc, if kind == Kind::Audio { 48_000 } else { 90_000 }));
        }
        info!(outputs = self.output_ssrcs.len(), "offering the output slots");
        self.offer().await;
    }

    async fn offer(&mut self) {
        let offer = self.negotiation.offer(&self.local_transport());
        if let Err(e) = self.ctx.network.mux.register_local_sdp(&self.link, &offer) {
            return warn!("media ports refused the offer's ICE credentials: {e}");
        }
        self.offers.offered();
        self.emit(PeerEvent::LocalOffer(offer)).await;
    }

    async fn on_remote_answer(&mut self, sdp: String) {
        if let Err(r) = self.offers.take_answer() {
            let refused = self.refusals.note(r, "answer");
            return self.emit(refused).await;
        }
        let answer = self.offers.check_answer(&sdp).map_err(|r| r.message).and_then(|()| RemoteDescription::parse(&sdp).map_err(|e| e.to_string()));
        let applied = answer.and_then(|a| self.negotiation.apply_answer(&a).map_err(|e| e.to_string()));
        match applied {
            Ok(accepted) => {
                self.offers.answer_applied();
                debug!(accepted = accepted.len(), "answer applied");
                let connected = self.state == Some(MediaState::Connected);
                for o in accepted {
                    self.numbering.accept(&o);
                    let clock_rate = if o.kind == Kind::Audio { 48_000 } else { 90_000 };
                    if let (Some(history), Some(rtx_ssrc)) = (self.histories.get_mut(&o.ssrc), o.rtx_ssrc) {
                        history.set_rtx(rtx::RtxStream::new(rtx_ssrc, o.payload_types, o.rtx));
                    }
                    self.outputs.bind(o.kind, o.slot, (), o.ssrc, o.payload_types, clock_rate);
                    if o.kind.is_video() && connected {
                        self.ctx.router.request_slot_keyframe(self.site, o.kind, o.slot);
                    }
                }
            }
            Err(e) => {
                if self.offers.answer_refused() == AfterRefusedAnswer::GiveUp {
                    return self.refuse(Fault::BadSdp, format!("answer not accepted: {e}; not offering again, join again"), "answer").await;
                }
                self.refuse(Fault::BadSdp, format!("answer not accepted: {e}; offering again"), "answer").await;
                self.offer().await;
            }
        }
    }

    fn on_datagram(&mut self, now: Instant, d: &Datagram) {
        let Some(t) = self.transport.as_mut() else { return };
        let from = d.from;
        match t.receive(now, from, &d.data) {
            Ok(Received::Rtp(bytes)) => self.on_rtp(bytes.freeze(), d.at),
            Ok(Received::Rtcp(bytes)) => self.on_rtcp(&bytes),
            Ok(Received::Nothing) => {}
            Err(e) => {
                if matches!(e, transport::TransportError::Check(_)) {
                    // Wrong credentials: counted against the address ([`crate::peer::mux::strangers`]).
                    self.ctx.network.mux.check_failed(from);
                }
                self.refused += 1;
                // The first few, then one in a thousand: a flood must not flood the log.
                if self.refused <= 5 || self.refused.is_multiple_of(1000) {
                    if matches!(e, transport::TransportError::Dtls(_)) {
                        // The handshake's own trouble: what a technician needs when a site
                        // stays `connecting`.
                        info!(refused = self.refused, "handshake datagram from {from} refused: {e}");
                    } else {
                        debug!(refused = self.refused, "datagram from {from} refused: {e}");
                    }
                }
            }
        }
    }

    /// One decrypted RTP packet. Parsed from the decrypted buffer itself: the payload is a
    /// slice of it, not a copy, and the router shares it with every receiver.
    fn on_rtp(&mut self, mut bytes: bytes::Bytes, received: Instant) {
        let Ok(packet) = RtpPacket::unmarshal(&mut bytes) else { return };
        // Every numbered packet counts for congestion control, whichever stream it is. Arrival
        // is when the mux took the datagram off the socket.
        self.feedback.on_packet(received, &packet.header);
        let ssrc = packet.header.ssrc;
        let index = match self.by_ssrc.get(&ssrc) {
            Some(&i) => i,
            None => match self.stream_of(&packet) {
                Some(_) if !self.ssrc_budget.admit(self.by_ssrc.len()) => {
                    return self.over_budget(budget::Budget::Ssrcs, 1, "this site sends more SSRCs than a page does; their packets are dropped");
                }
                Some(i) => {
                    self.by_ssrc.insert(ssrc, i);
                    i
                }
                None => return,
            },
        };
        let clock_rate = if self.streams[index].media == Media::Audio { 48_000 } else { 90_000 };
        let epoch = self.epoch;
        let reception = self.receptions.entry(ssrc).or_insert_with(|| Reception::new(ssrc, clock_rate, epoch));
        reception.on_packet(packet.header.sequence_number, packet.header.timestamp, received);
        if self.streams[index].media == Media::Video {
            self.repairs.entry(ssrc).or_insert_with(|| Repair::new(ssrc)).on_packet(packet.header.sequence_number, received);
        }
        let rid = self.streams[index].rid_ext.and_then(|id| packet.header.get_extension(id)).map(|r| String::from_utf8_lossy(&r).into_owned());
        let simulcast = self.streams[index].simulcast && self.streams[index].rid_ext.is_some();
        let (plis, cancel) = (self.pli_tx.clone(), self.cancel.clone());
        let Some(inbound) = self.inbound_for(index) else { return };
        if !inbound.has_layer(ssrc) && inbound.is_full() {
            self.ssrc_budget.refused += 1;
            return self.over_budget(budget::Budget::Ssrcs, 1, "this site sends more SSRCs on one stream than its layers; their packets are dropped");
        }
        let Some(inbound) = self.inbound_for(index) else { return };
        if !inbound.has_layer(ssrc) {
            if simulcast && rid.is_none() {
                // Which layer this is shows in a later packet (browsers name the RID until
                // the bridge's reports reach them); guessing would mislabel it for good.
                return;
            }
            if let Some(requests) = inbound.open_layer(ssrc, rid.as_deref(), received) {
                tokio::spawn(request_keyframes(ssrc, requests, plis, cancel).in_current_span());
            }
        }
        inbound.on_packet(packet, received);
    }

    /// Which stream a packet with a new SSRC belongs to: the SDP's SSRCs, else its mid header
    /// extension, else the one stream with its payload type.
    fn stream_of(&self, packet: &RtpPacket) -> Option<usize> {
        let ssrc = packet.header.ssrc;
        if let Some(i) = self.streams.iter().position(|s| s.ssrcs.contains(&ssrc)) {
            return Some(i);
        }
        let by_mid = self.streams.iter().position(|s| s.mid_ext.and_then(|id| packet.header.get_extension(id)).is_some_and(|m| m.as_ref() == s.mid.as_bytes()));
        if by_mid.is_some() {
            return by_mid;
        }
        let pt = packet.header.payload_type;
        let mut same_pt = self.streams.iter().enumerate().filter(|(_, s)| s.carries(pt) && s.ssrcs.is_empty());
        match (same_pt.next(), same_pt.next()) {
            (Some((i, _)), None) => Some(i),
            _ => None,
        }
    }

    /// The stream's [`Inbound`], created at its first packet: audio, the camera, or content
    /// (the track the conference accepted as shared content); an extra video stream that is
    /// neither is ignored.
    fn inbound_for(&mut self, index: usize) -> Option<&mut Inbound> {
        if self.streams[index].inbound.is_none() {
            let s = &self.streams[index];
            let kind = if s.media == Media::Audio {
                Kind::Audio
            } else if s.track_id.is_some() && s.track_id == self.content_track {
                Kind::Content
            } else if self.camera_mid.as_ref().is_none_or(|m| *m == s.mid) {
                self.camera_mid = Some(s.mid.clone());
                Kind::Video
            } else {
                return None;
            };
            let codec = s.codec;
            info!(codec = codec.as_str(), "receiving {}", kind.as_str());
            let mut inbound =
                Inbound::new(self.site, kind, self.generation, self.ctx.router.clone(), self.ctx.board.clone(), self.audio_level_id.clone(), codec);
            inbound.set_audio_formats(s.audio());
            self.streams[index].inbound = Some(inbound);
        }
        self.streams[index].inbound.as_mut()
    }

    /// Keyframe requests (PLI, FIR) from the browser for one of its output slots.
    fn on_rtcp(&mut self, bytes: &[u8]) {
        let Ok(packets) = rtc::rtcp::packet::unmarshal(&mut &bytes[..]) else { return };
        let mut nacks = Vec::new();
        let mut blocks = Vec::new();
        for p in &packets {
            let any = p.as_any();
            let wants = |ssrc: u32| {
                if let Some(&(kind, slot)) = self.output_ssrcs.get(&ssrc) {
                    self.ctx.router.request_slot_keyframe(self.site, kind, slot);
                }
            };
            if let Some(sr) = any.downcast_ref::<SenderReport>() {
                if let Some(r) = self.receptions.get_mut(&sr.ssrc) {
                    r.on_sender_report(sr.ntp_time, Instant::now());
                }
                blocks.extend(sr.reports.iter().cloned());
            } else if let Some(rr) = any.downcast_ref::<ReceiverReport>() {
                blocks.extend(rr.reports.iter().cloned());
            } else if let Some(cc) = any.downcast_ref::<TransportLayerCc>() {
                self.estimate.on_feedback(Instant::now(), cc, self.rtt.unwrap_or(DEFAULT_RTT));
            } else if let Some(nack) = any.downcast_ref::<TransportLayerNack>() {
                nacks.push(nack.clone());
            } else if let Some(pli) = any.downcast_ref::<PictureLossIndication>() {
                wants(pli.media_ssrc);
            } else if let Some(fir) = any.downcast_ref::<FullIntraRequest>() {
                fir.fir.iter().for_each(|e| wants(e.ssrc));
            }
        }
        for nack in nacks {
            self.retransmit(&nack);
        }
        // The worst downlink loss on a video slot in this packet's reports.
        let worst = blocks.iter().filter_map(|block| self.on_reception_report(block)).reduce(f64::max);
        let now = Instant::now();
        if let Some(loss) = worst.filter(|_| now >= self.next_loss_event) {
            // Dropped if the session is behind: reports repeat every second.
            debug!("the browser reports {loss:.1} % of its video lost on the way to it");
            let _ = self.events.try_send(PeerEvent::DownlinkLoss(loss));
            self.next_loss_event = now + LOSS_EVENT_INTERVAL;
        }
    }

    /// Sends again what a NACK asks for, from the slot's history: each packet at most once
    /// per round trip, within the site's retransmission budget (a flood of NACKs must not
    /// turn the bridge into an amplifier against the site's own downlink or anyone else's).
    fn retransmit(&mut self, nack: &TransportLayerNack) {
        let now = Instant::now();
        let gap = self.rtt.map_or(budget::RESEND_GAP, |r| r.max(budget::RESEND_GAP));
        let Some(history) = self.histories.get_mut(&nack.media_ssrc) else { return };
        let seqs: Vec<u16> = nack.nacks.iter().flat_map(|p| history::requested(p.packet_id, p.lost_packets)).take(MAX_RETRANSMIT_PER_NACK).collect();
        let mut again = Vec::new();
        let refused_before = self.retransmit_budget.refused;
        let budget = &mut self.retransmit_budget;
        for seq in seqs {
            match history.retransmission(seq, now, gap, |bytes| budget.allow(bytes, now)) {
                history::Retransmission::Send(packet) => again.push(packet),
                history::Retransmission::Skipped => {}
                history::Retransmission::OverBudget => break,
            }
        }
        let refused = self.retransmit_budget.refused - refused_before;
        if refused > 0 {
            self.ctx.board.refuse(self.site, budget::Budget::Nacks, refused);
        }
        if self.retransmit_budget.refused > 0 && !self.retransmit_budget.logged {
            self.retransmit_budget.logged = true;
            warn!(
                budget = "nacks",
                budget_per_s = budget::RETRANSMIT_PACKETS_PER_S,
                "over budget: this site asks for more retransmissions than its budget; the rest are not sent (counted as nack_refused)"
            );
        }
        for mut packet in again {
            if self.protect_and_send(&mut packet) {
                self.retransmitted += 1;
            }
        }
        debug!(media_ssrc = nack.media_ssrc, retransmitted = self.retransmitted, refused = self.retransmit_budget.refused, "sent again what a NACK asked for");
    }

    /// One packet from the router into its slot: rewritten, encrypted, sent, remembered.
    fn forward(&mut self, p: SinkPacket) {
        let (received, source, pt) = (p.received, p.source, p.packet.header.payload_type);
        let unsupported = self.outputs.unsupported;
        let Some(((), mut packet)) = self.outputs.prepare(p, &self.ctx.router) else {
            if unsupported == 0 && self.outputs.unsupported > 0 {
                let codec = crate::media::Codec::of_internal_pt(pt).map_or("?", |c| c.as_str());
                let from = self.ctx.site_ids.get(source).map_or("?", String::as_str);
                warn!(codec, from, "this site's browser did not accept {codec}: it cannot show {from}'s video (list only the codecs every room decodes in [media] video_codecs)");
            }
            return;
        };
        if self.protect_and_send(&mut packet) {
            let now = Instant::now();
            self.delays.record(now.saturating_duration_since(received));
            self.outputs.written += 1;
            self.ctx.board.add_outbound(self.site, packet.payload.len() + 12);
            if let Some(h) = self.histories.get_mut(&packet.header.ssrc) {
                h.push(&packet);
            }
            if let Some(sent) = self.sent.get_mut(&packet.header.ssrc) {
                sent.on_packet(packet.header.sequence_number, packet.header.timestamp, packet.payload.len(), now);
            }
        } else {
            self.outputs.failed += 1;
        }
    }

    /// Probes the site's downlink if its tiles want more than its estimate allows (the
    /// conference says so through the router) and a probe is due. Only a site whose packets
    /// the browser reports on, with a retransmission stream to pad on, is probed.
    /// Over ICE-TCP the padding would queue behind the media in the connection's own buffer and
    /// measure nothing of the line; without a stream to pad on there is nothing to probe with.
    /// Either way the estimate climbs by itself again ([`DownlinkEstimate::set_can_probe`]).
    fn start_probe(&mut self) {
        let can = self.numbering.is_on() && self.path() == Some(Path::Udp) && self.paddable().is_some();
        self.estimate.set_can_probe(can);
        if !can {
            return;
        }
        let wanted = self.ctx.router.wanted_downlink(self.site);
        if self.estimate.start_probe(Instant::now(), wanted) {
            self.send_padding();
        }
    }

    /// A video slot whose packets the browser reports on, with a retransmission stream and a
    /// format on it to pad with.
    fn paddable(&self) -> Option<u32> {
        self.histories.iter().find(|(ssrc, h)| h.can_pad() && self.numbering.id_for(**ssrc).is_some()).map(|(ssrc, _)| *ssrc)
    }

    /// What the probe being sent owes in padding now, on a numbered retransmission stream.
    fn send_padding(&mut self) {
        let mut owed = self.estimate.padding_due(Instant::now());
        let Some(ssrc) = self.paddable() else { return };
        while owed > 0 {
            let Some(mut packet) = self.histories.get_mut(&ssrc).and_then(History::padding) else { return };
            if !self.protect_and_send_padded(&mut packet, PADDING) {
                return;
            }
            owed = owed.saturating_sub(PADDING_ON_THE_LINE);
        }
    }

    /// Numbers the packet for the downlink estimate (once the browser reports arrivals),
    /// encrypts and sends it.
    fn protect_and_send(&mut self, packet: &mut RtpPacket) -> bool {
        self.protect_and_send_padded(packet, 0)
    }

    /// [`Self::protect_and_send`], with `padding` octets after the payload (RFC 3550 §5.1: the
    /// last says how many).
    fn protect_and_send_padded(&mut self, packet: &mut RtpPacket, padding: u8) -> bool {
        let Some(t) = self.transport.as_mut() else { return false };
        let numbered = self.numbering.id_for(packet.header.ssrc).and_then(|id| {
            let seq = self.estimate.stamp();
            packet.header.set_extension(id, bytes::Bytes::copy_from_slice(&seq.to_be_bytes())).ok().map(|_| seq)
        });
        let Ok(mut n) = packet.marshal_to(&mut self.scratch) else { return false };
        if padding > 0 {
            let Some(tail) = self.scratch.get_mut(n..n + padding as usize) else { return false };
            tail.fill(0);
            tail[padding as usize - 1] = padding;
            self.scratch[0] |= 0x20;
            n += padding as usize;
        }
        // The departure is taken before the datagram goes, never after: a bridge thread
        // descheduled between the two would stamp one packet late, its delay would look
        // shorter than the line's empty-queue delay, and every packet for the next ten seconds
        // would seem to wait in a queue that is not there. Early, it only looks late once.
        // Only a numbered packet needs one.
        let numbered = numbered.map(|seq| (seq, Instant::now()));
        let sent = match t.protect_rtp(&self.scratch[..n]) {
            Ok((to, datagram)) => self.send_to(to, &datagram),
            Err(_) => false,
        };
        if let Some((seq, departure)) = numbered.filter(|_| sent) {
            // As the line counts it: with the SRTP tag and the UDP and IPv4 headers.
            self.estimate.on_sent(departure, packet.header.ssrc, packet.header.sequence_number, seq, n + WIRE_OVERHEAD);
        }
        sent
    }

    /// The downlink estimate to the health board, and to the conference when it moved (it
    /// fits the layers this site receives into it).
    fn report_estimate(&mut self) {
        if !self.numbering.is_on() || self.estimate.feedbacks == 0 {
            return;
        }
        let now = Instant::now();
        let view = self.estimate.view();
        self.ctx.board.set_downlink(self.site, Some(view.bps), view.queue);
        let due = match self.estimate_sent {
            None => true,
            Some((bps, at)) => (view.bps - bps).abs() >= bps * ESTIMATE_CHANGE || now.duration_since(at) >= ESTIMATE_EVENT_EVERY,
        };
        if due && self.events.try_send(PeerEvent::DownlinkEstimate { bps: view.bps, loss_bps: view.loss_bps }).is_ok() {
            debug!(kbps = (view.bps / 1000.0) as u64, delay_kbps = (view.delay_bps / 1000.0) as u64, loss_kbps = (view.loss_bps / 1000.0) as u64, queue = ?view.queue, "downlink estimate");
            self.estimate_sent = Some((view.bps, now));
        }
    }

    /// A sender report for every output slot that sent, a receiver report for every stream
    /// the browser sends, and the bandwidth ceiling: one compound packet.
    fn send_reports(&mut self) {
        let now = Instant::now();
        let Some(connected_at) = self.connected_at.filter(|_| now >= self.next_report) else { return };
        let early = now.duration_since(connected_at) < EARLY_REPORTS_FOR;
        self.next_report = now + if early { EARLY_REPORT_INTERVAL } else { REPORT_INTERVAL } - Duration::from_millis(5);
        let wall = std::time::SystemTime::now();
        let mut compound = Vec::with_capacity(1024);
        for sr in self.sent.values().filter_map(|s| s.report(now, wall)) {
            if let Ok(b) = sr.marshal() {
                compound.extend_from_slice(&b);
            }
        }
        // At most 31 report blocks per RR: one RR per 31 streams.
        let mut reports: Vec<_> = self.receptions.values_mut().map(|r| r.report(now)).collect();
        while !reports.is_empty() {
            let rest = reports.split_off(reports.len().min(31));
            let rr = ReceiverReport { ssrc: RTCP_SSRC, reports: std::mem::replace(&mut reports, rest), profile_extensions: Default::default() };
            if let Ok(b) = rr.marshal() {
                compound.extend_from_slice(&b);
            }
        }
        if compound.is_empty() {
            return;
        }
        let video: Vec<u32> = self.by_ssrc.iter().filter(|(_, &i)| self.streams[i].media == Media::Video).map(|(&ssrc, _)| ssrc).collect();
        if !video.is_empty() {
            let ceiling = self.ctx.lines.get(self.site).up_bps().map_or(REMB_BPS, |up| REMB_BPS.min(up as f32));
            if let Ok(b) = (ReceiverEstimatedMaximumBitrate { sender_ssrc: RTCP_SSRC, bitrate: ceiling, ssrcs: video }).marshal() {
                compound.extend_from_slice(&b);
            }
        }
        self.send_rtcp(&compound, "reports");
    }

    /// What arrived of the browser's numbered packets since the last feedback.
    fn send_feedback(&mut self) {
        let compound = self.feedback.due(Instant::now());
        if !compound.is_empty() {
            self.send_rtcp(&compound, "transport feedback");
        }
    }

    /// One compound RTCP packet to the site, encrypted; false if it could not go.
    fn send_rtcp(&mut self, compound: &[u8], what: &str) -> bool {
        let Some(t) = self.transport.as_mut() else { return false };
        match t.protect_rtcp(compound) {
            Ok((to, datagram)) => self.send_to(to, &datagram),
            Err(e) => {
                debug!("{what} not sent: {e}");
                false
            }
        }
    }

    /// One NACK per video stream the uplink lost packets of, in one compound.
    fn send_nacks(&mut self) {
        let now = Instant::now();
        let mut compound = Vec::new();
        for r in self.repairs.values_mut() {
            if let Some(Ok(b)) = r.due(now, self.rtt, RTCP_SSRC).map(|n| n.marshal()) {
                compound.extend_from_slice(&b);
            }
        }
        if !compound.is_empty() {
            self.send_rtcp(&compound, "NACK");
        }
    }

    /// The round trip from a reception report about one of the output slots; for a video
    /// slot, the share of what the bridge sent that the report says was lost on the way.
    fn on_reception_report(&mut self, report: &rtc::rtcp::reception_report::ReceptionReport) -> Option<f64> {
        let sent = self.sent.get_mut(&report.ssrc)?;
        if let Some(rtt) = sending::round_trip(report, std::time::SystemTime::now()) {
            self.rtt = Some(match self.rtt {
                Some(old) => old.mul_f64(0.875) + rtt.mul_f64(0.125),
                None => rtt,
            });
        }
        let loss = sent.downlink_loss(report);
        loss.filter(|_| self.histories.contains_key(&report.ssrc))
    }

    fn send_pli(&mut self, media_ssrc: u32) {
        let Ok(pli) = (PictureLossIndication { sender_ssrc: RTCP_SSRC, media_ssrc }).marshal() else { return };
        if self.send_rtcp(&pli, "keyframe request") {
            debug!(media_ssrc, "asked the publisher for a keyframe");
        }
    }
}

/// "VP8 and H.264", for messages.
fn codec_names(codecs: &[crate::media::Codec]) -> String {
    let names: Vec<&str> = codecs.iter().map(|c| if *c == crate::media::Codec::H264 { "H.264" } else { "VP8" }).collect();
    names.join(" and ")
}

/// Passes the router's keyframe requests for one layer to the peer, at most one per
/// [`KEYFRAME_MIN_INTERVAL`]; the channel holds one pending request, so a burst collapses
/// into one more PLI.
async fn request_keyframes(media_ssrc: u32, mut requests: mpsc::Receiver<()>, plis: mpsc::UnboundedSender<u32>, cancel: CancellationToken) {
    loop {
        tokio::select! {
            _ = cancel.cancelled() => break,
            r = requests.recv() => if r.is_none() { break },
        }
        if plis.send(media_ssrc).is_err() {
            break;
        }
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = tokio::time::sleep(KEYFRAME_MIN_INTERVAL) => {}
        }
    }
}
