//! The `webrtc` engine: a webrtc-rs PeerConnection per site, on the bridge's shared ports.
//!
//! A peer is a task that owns its PeerConnection and everything negotiated on it
//! ([`PeerTask`]); it takes [`PeerCommand`]s from its signalling session and answers with
//! [`PeerEvent`]s. Packets flow without passing through the peer task: a reader task per
//! received track hands them to [`Inbound`] and so to the router, and a sink task per peer
//! ([`sink`]) writes what the router queued for it. webrtc-rs's interceptors send NACKs and
//! answer them (held to the site's budget by [`guard`]), send reports and transport-cc
//! feedback; [`tap`] reports receivers' keyframe requests to the peer task.

mod connection;
mod guard;
mod passthrough;
mod sink;
mod tap;

use super::budget;
use super::inbound::Inbound;
use super::mux;
use super::offer_answer::{AfterRefusedAnswer, OfferAnswer};
use super::Fault;
use super::{pace_keyframe_requests, slot_id, PeerCommand, PeerContext, PeerError, PeerEvent, PeerHandle, Refusals};
use crate::media::codec::{Codec, PayloadTypes};
use crate::media::{Kind, Ssrc};
use crate::signal::protocol::{IceCandidate, MediaState};
use rtc::media_stream::MediaStreamTrack;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtp_transceiver::rtp_sender::RTCRtpCodec;
use rtc::rtp_transceiver::rtp_sender::{RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind};
use rtc::rtp_transceiver::{RTCRtpTransceiverDirection, RTCRtpTransceiverInit};
use sink::SinkControl;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn, Instrument};
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::{
    PeerConnection, PeerConnectionEventHandler, RTCIceCandidateInit, RTCPeerConnectionIceEvent, RTCPeerConnectionState, RTCSessionDescription,
};
use webrtc::rtp_transceiver::RtpSender;

/// Candidates kept when they arrive before the offer they belong to.
const MAX_EARLY_CANDIDATES: usize = 32;

/// Starts the `webrtc` engine's peer for `site`.
pub(super) async fn spawn(site: usize, ctx: PeerContext) -> Result<(PeerHandle, mpsc::Receiver<PeerEvent>), PeerError> {
    let (pc_tx, pc_rx) = mpsc::unbounded_channel();
    let (kf_tx, kf_rx) = mpsc::unbounded_channel();
    let site_id = ctx.site_ids[site].clone();
    let nacks = guard::NackGuard::guard(site_id.clone(), site, Some(ctx.board.clone()));
    let (pc, link) = connection::build(&ctx.network, Arc::new(Handler { tx: pc_tx }), kf_tx, nacks).await?;
    let (commands, cmd_rx) = mpsc::channel(64);
    let (events_tx, events_rx) = mpsc::channel(256);
    let cancel = CancellationToken::new();
    let generation = ctx.router.next_generation();
    let sink_rx = ctx.router.register_sink(site, generation);
    let (sink_ctl, sink_ctl_rx) = mpsc::unbounded_channel();
    let span = tracing::info_span!("peer", site = %site_id);
    tokio::spawn(sink::run(site, ctx.board.clone(), ctx.router.clone(), sink_rx, sink_ctl_rx, cancel.clone()).instrument(span.clone()));
    let task = PeerTask {
        site,
        generation,
        refusals: Refusals::new(site, ctx.board.clone()),
        offers: OfferAnswer::default(),
        candidates: HashSet::new(),
        tracks: 0,
        ctx,
        pc,
        link,
        events: events_tx,
        sink_ctl,
        outputs: HashMap::new(),
        pending: false,
        answered_first_offer: false,
        has_remote_description: false,
        early_candidates: Vec::new(),
        connected: false,
        audio_level_id: Arc::default(),
        content_track: None,
        camera_track: None,
        remote_ufrag: None,
        cancel: cancel.clone(),
    };
    tokio::spawn(task.run(cmd_rx, pc_rx, kf_rx).instrument(span));
    Ok((PeerHandle { commands, cancel }, events_rx))
}

/// Events from the PeerConnection's driver, moved into the peer task.
enum PcEvent {
    Track(Arc<dyn TrackRemote>),
    Candidate(RTCIceCandidateInit),
    State(RTCPeerConnectionState),
}

struct Handler {
    tx: mpsc::UnboundedSender<PcEvent>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Handler {
    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        let _ = self.tx.send(PcEvent::Track(track));
    }

    async fn on_ice_candidate(&self, event: RTCPeerConnectionIceEvent) {
        match event.candidate.to_json() {
            Ok(init) => {
                let _ = self.tx.send(PcEvent::Candidate(init));
            }
            Err(e) => warn!("cannot serialise a local ICE candidate: {e}"),
        }
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        let _ = self.tx.send(PcEvent::State(state));
    }
}

/// One forwarded stream towards this peer's browser.
struct Output {
    track: Arc<TrackLocalStaticRTP>,
    sender: Arc<dyn RtpSender>,
    ssrc: u32,
    codec: RTCRtpCodec,
    /// Part of an offer already sent, so the next answer negotiates it.
    offered: bool,
    bound_payload_type: Option<u8>,
}

struct PeerTask {
    site: usize,
    generation: u64,
    /// The site's budgets, as the lean engine keeps them (`budget.rs`): offers a minute,
    /// candidates named, tracks read; NACKs are held by the interceptor in `guard.rs`.
    refusals: Refusals,
    /// The offer/answer rules kept with the site (shared with the other engine).
    offers: OfferAnswer,
    /// The remote candidates taken (transport, address, port), trickled or in offers.
    candidates: HashSet<String>,
    /// Tracks of the site being read.
    tracks: usize,
    ctx: PeerContext,
    pc: Arc<dyn PeerConnection>,
    /// This PeerConnection's entry on the shared media ports.
    link: Arc<mux::PcLink>,
    events: mpsc::Sender<PeerEvent>,
    sink_ctl: mpsc::UnboundedSender<SinkControl>,
    /// The output slots towards the browser, by kind and slot number.
    outputs: HashMap<(Kind, usize), Output>,
    /// Something changed while negotiating: offer again after the answer.
    pending: bool,
    answered_first_offer: bool,
    has_remote_description: bool,
    early_candidates: Vec<IceCandidate>,
    connected: bool,
    /// The negotiated id of the RFC 6464 audio-level extension (0 = not negotiated).
    audio_level_id: Arc<std::sync::atomic::AtomicU8>,
    /// Track id of the browser's shared-content track, once the site has started sharing.
    content_track: Option<String>,
    camera_track: Option<String>,
    /// ICE username fragment of the browser's last offer, to notice ICE restarts.
    remote_ufrag: Option<String>,
    cancel: CancellationToken,
}

impl PeerTask {
    async fn run(
        mut self,
        mut commands: mpsc::Receiver<PeerCommand>,
        mut pc_events: mpsc::UnboundedReceiver<PcEvent>,
        mut keyframe_requests: mpsc::UnboundedReceiver<u32>,
    ) {
        let mut stats_tick = tokio::time::interval(Duration::from_secs(2));
        loop {
            tokio::select! {
                _ = self.cancel.cancelled() => break,
                cmd = commands.recv() => match cmd {
                    Some(cmd) => self.on_command(cmd).await,
                    None => break,
                },
                Some(ev) = pc_events.recv() => self.on_pc_event(ev).await,
                Some(ssrc) = keyframe_requests.recv() => self.on_keyframe_request(ssrc),
                _ = stats_tick.tick() => self.measure_connection().await,
            }
        }
        self.cancel.cancel();
        self.ctx.router.unregister_sink(self.site, self.generation);
        if let Err(e) = self.pc.close().await {
            debug!("closing the peer connection: {e}");
        }
        self.ctx.network.mux.close_pc(&self.link);
        info!("media connection closed");
    }

    async fn emit(&self, event: PeerEvent) {
        let _ = self.events.send(event).await;
    }

    async fn refuse(&self, fault: Fault, message: String, request: &'static str) {
        warn!(%message, "refused {request}");
        self.emit(PeerEvent::Refused { fault, message, request }).await;
    }

    /// Whether the site may name one more remote candidate (one it named before is free).
    fn take_candidate(&mut self, candidate: &str) -> bool {
        let Some(key) = budget::candidate_address(candidate) else { return true };
        if self.candidates.len() < budget::MAX_CANDIDATES || self.candidates.contains(&key) {
            self.candidates.insert(key);
            return true;
        }
        false
    }

    async fn on_command(&mut self, cmd: PeerCommand) {
        match cmd {
            PeerCommand::RemoteOffer(sdp) => self.on_remote_offer(sdp).await,
            PeerCommand::RemoteAnswer(sdp) => self.on_remote_answer(sdp).await,
            PeerCommand::ContentTrack(id) => self.content_track = Some(id),
            PeerCommand::RemoteCandidate(c) => {
                if !self.take_candidate(&c.candidate) {
                    return self.refusals.refuse(
                        budget::Budget::Candidates,
                        1,
                        "this site trickles more candidates than a browser gathers; the rest are ignored",
                    );
                }
                if !self.has_remote_description {
                    // Trickled ahead of its offer: keep it for when the offer is applied.
                    if self.early_candidates.len() < MAX_EARLY_CANDIDATES {
                        self.early_candidates.push(c);
                    }
                    return;
                }
                self.add_candidate(c).await;
            }
        }
    }

    /// Gives a candidate (within the budget) to webrtc-rs's ICE agent.
    async fn add_candidate(&self, c: IceCandidate) {
        let init = RTCIceCandidateInit {
            candidate: c.candidate,
            sdp_mid: c.sdp_mid,
            sdp_mline_index: c.sdp_m_line_index,
            username_fragment: c.username_fragment,
            ..Default::default()
        };
        if let Err(e) = self.pc.add_ice_candidate(init).await {
            self.refuse(Fault::BadCandidate, format!("ICE candidate not accepted: {e}"), "candidate").await;
        }
    }

    async fn on_remote_offer(&mut self, sdp: String) {
        if let Err(r) = self.offers.check_offer(&sdp, self.outputs.len(), std::time::Instant::now()) {
            let refused = self.refusals.note(r, "offer");
            return self.emit(refused).await;
        }
        // Candidates written in the offer count like trickled ones; those over the budget are
        // taken out before webrtc-rs's ICE agent pairs them.
        let mut ignored = 0u64;
        let sdp: String = sdp
            .split_inclusive('\n')
            .filter(|line| {
                let Some(c) = line.trim_end().strip_prefix("a=") else { return true };
                let keep = !c.starts_with("candidate:") || self.take_candidate(c);
                ignored += u64::from(!keep);
                keep
            })
            .collect();
        if ignored > 0 {
            self.refusals.refuse(budget::Budget::Candidates, ignored, "this site lists more candidates than a browser gathers; the rest are ignored");
        }
        let sdp_for_pin = sdp.clone();
        let result = async {
            let ufrag = sdp.lines().find_map(|l| l.trim_end().strip_prefix("a=ice-ufrag:").map(str::to_string));
            let restarted = self.remote_ufrag.is_some() && ufrag.is_some() && ufrag != self.remote_ufrag;
            if ufrag.is_some() {
                self.remote_ufrag = ufrag;
            }
            if restarted {
                info!("the site restarted ICE");
                self.emit(PeerEvent::IceRestarted).await;
            }
            if let Some(id) = connection::extmap_id(&sdp, connection::AUDIO_LEVEL_URI) {
                self.audio_level_id.store(id, std::sync::atomic::Ordering::Relaxed);
            }
            let offer = RTCSessionDescription::offer(sdp).map_err(|e| (Fault::BadSdp, e.to_string()))?;
            self.pc.set_remote_description(offer).await.map_err(|e| (Fault::BadSdp, e.to_string()))?;
            let answer = self.pc.create_answer(None).await.map_err(|e| (Fault::OutOfOrder, e.to_string()))?;
            self.pc.set_local_description(answer).await.map_err(|e| (Fault::OutOfOrder, e.to_string()))?;
            self.pc.local_description().await.ok_or((Fault::Internal, "no local description".to_string()))
        }
        .await;
        match result {
            Ok(answer) => {
                if let Err(e) = self.ctx.network.mux.register_local_sdp(&self.link, &answer.sdp) {
                    return self.refuse(Fault::Internal, format!("media ports: {e}"), "offer").await;
                }
                self.emit(PeerEvent::LocalAnswer(self.ctx.network.mux.advertise_sdp(&self.link, &answer.sdp))).await;
                self.offers.offer_applied(&sdp_for_pin);
                self.has_remote_description = true;
                for c in std::mem::take(&mut self.early_candidates) {
                    self.add_candidate(c).await;
                }
                if !std::mem::replace(&mut self.answered_first_offer, true) {
                    self.add_slots().await;
                }
            }
            Err((code, message)) => self.refuse(code, format!("offer not accepted: {message}"), "offer").await,
        }
    }

    async fn on_remote_answer(&mut self, sdp: String) {
        if let Err(r) = self.offers.take_answer() {
            let refused = self.refusals.note(r, "answer");
            return self.emit(refused).await;
        }
        let result = match self.offers.check_answer(&sdp) {
            Err(r) => Err(r.message),
            Ok(()) => match RTCSessionDescription::answer(sdp) {
                Ok(answer) => self.pc.set_remote_description(answer).await.map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            },
        };
        match result {
            Ok(()) => {
                debug!("answer applied");
                self.offers.answer_applied();
                self.bind_outputs().await;
                if std::mem::take(&mut self.pending) {
                    // Outputs were added while that offer was out: they need an offer of their own.
                    self.offer().await;
                }
            }
            Err(e) if self.offers.answer_refused() == AfterRefusedAnswer::GiveUp => {
                self.refuse(Fault::BadSdp, format!("answer not accepted: {e}; not offering again, join again"), "answer").await;
            }
            Err(e) => {
                self.refuse(Fault::BadSdp, format!("answer not accepted: {e}; offering again"), "answer").await;
                self.offer().await;
            }
        }
    }

    async fn on_pc_event(&mut self, ev: PcEvent) {
        match ev {
            PcEvent::Track(track) => self.on_remote_track(track).await,
            PcEvent::Candidate(init) => {
                // Each candidate the PC gathered on its label becomes the shared port's, once
                // per advertised address (or none: ICE-TCP active candidates are useless).
                for candidate in self.ctx.network.mux.advertise_candidate(&self.link, &init.candidate) {
                    let candidate = IceCandidate {
                        candidate,
                        sdp_mid: init.sdp_mid.clone(),
                        sdp_m_line_index: init.sdp_mline_index,
                        username_fragment: init.username_fragment.clone(),
                    };
                    self.emit(PeerEvent::LocalCandidate(candidate)).await;
                }
            }
            PcEvent::State(state) => {
                let mapped = match state {
                    RTCPeerConnectionState::Connected => MediaState::Connected,
                    RTCPeerConnectionState::Disconnected => MediaState::Disconnected,
                    RTCPeerConnectionState::Failed => MediaState::Failed,
                    RTCPeerConnectionState::Closed => MediaState::Closed,
                    _ => MediaState::Connecting,
                };
                info!("media connection {state}");
                let was_connected = self.connected;
                self.connected = mapped == MediaState::Connected;
                let _ = self.sink_ctl.send(SinkControl::Connected(self.connected));
                if self.connected && !was_connected {
                    // SRTP keys exist only now: ask every publisher this peer receives for a
                    // keyframe, or its decoder waits for the next natural one (maybe never).
                    for (&(kind, slot), out) in &self.outputs {
                        if kind.is_video() && out.bound_payload_type.is_some() {
                            self.ctx.router.request_slot_keyframe(self.site, kind, slot);
                        }
                    }
                }
                self.emit(PeerEvent::State(mapped)).await;
            }
        }
    }

    /// The ICE round-trip time and how the site is connected (host, srflx, prflx, relay;
    /// over UDP or ICE-TCP), from webrtc-rs's candidate-pair statistics and the media ports.
    async fn measure_connection(&self) {
        if !self.connected {
            return;
        }
        let transport = self.link.path();
        let report = self.pc.get_stats(std::time::Instant::now(), webrtc::peer_connection::StatsSelector::None).await;
        let pair = report
            .candidate_pairs()
            .filter(|p| p.nominated || p.current_round_trip_time > 0.0)
            .max_by(|a, b| (a.nominated, a.bytes_received).cmp(&(b.nominated, b.bytes_received)));
        let (rtt, candidate) = match pair {
            Some(pair) => {
                // Candidate entries may be keyed with a prefix the pair does not carry.
                let key = format!("RTCRemoteIceCandidate_{}", pair.remote_candidate_id);
                let candidate = match report.get(&pair.remote_candidate_id).or_else(|| report.get(&key)) {
                    Some(webrtc::peer_connection::RTCStatsReportEntry::RemoteCandidate(c)) => c.candidate_type.to_string(),
                    _ => String::new(),
                };
                ((pair.current_round_trip_time > 0.0).then_some(pair.current_round_trip_time * 1000.0), candidate)
            }
            None => (None, String::new()),
        };
        self.ctx.board.set_connection(self.site, rtt, &candidate, transport);
    }

    fn on_keyframe_request(&self, ssrc: u32) {
        if let Some((&(kind, slot), _)) = self.outputs.iter().find(|((k, _), o)| k.is_video() && o.ssrc == ssrc) {
            self.ctx.router.request_slot_keyframe(self.site, kind, slot);
        }
    }

    /// A track the browser publishes: register it and start moving its packets. A camera sent
    /// with simulcast arrives as one track with an SSRC per layer (its RID names the layer);
    /// each layer is a source of its own.
    async fn on_remote_track(&mut self, track: Arc<dyn TrackRemote>) {
        let track_id = track.track_id().await.to_string();
        let is_content = self.content_track.as_deref() == Some(track_id.as_str());
        let kind = match track.kind().await {
            RtpCodecKind::Audio => Kind::Audio,
            RtpCodecKind::Video if is_content => Kind::Content,
            RtpCodecKind::Video => Kind::Video,
            other => return warn!("ignoring a {other} track"),
        };
        if kind == Kind::Video {
            // The first video track is the camera; a second one that the conference did not
            // accept as content must not replace it.
            match &self.camera_track {
                Some(camera) if camera != &track_id => return warn!("ignoring an extra video track that is not accepted content"),
                _ => self.camera_track = Some(track_id),
            }
        }
        if self.tracks >= budget::MAX_TRACKS {
            return self.refusals.refuse(budget::Budget::Ssrcs, 1, "this site sends more tracks than a page does; they are not read");
        }
        self.tracks += 1;
        // webrtc-rs can announce a track before it has resolved the track's codec (seen after
        // a restart, when media arrives at once). Only Opus and VP8 are negotiated, so the kind
        // decides the codec.
        let codec = if kind == Kind::Audio { Codec::Opus } else { Codec::Vp8 };
        info!("receiving {}", kind.as_str());
        let inbound = Inbound::new(
            self.site,
            kind,
            self.generation,
            self.ctx.router.clone(),
            self.ctx.board.clone(),
            self.audio_level_id.clone(),
            codec,
            std::time::Instant::now(),
        );
        let reader = Reader { inbound, cancel: self.cancel.clone() };
        tokio::spawn(reader.run(track).in_current_span());
    }

    /// Adds the fixed output slots (after the browser's first offer is answered) and offers
    /// them: `a0…`, `v0…` and `c0` are their stream ids, which `view` messages map to sites.
    async fn add_slots(&mut self) {
        let (audio, video) = self.ctx.slots;
        let wanted = (0..audio).map(|i| (Kind::Audio, i)).chain((0..video).map(|i| (Kind::Video, i))).chain([(Kind::Content, 0)]);
        for (kind, slot) in wanted {
            match self.add_output(kind, slot).await {
                Ok(output) => {
                    self.outputs.insert((kind, slot), output);
                }
                Err(e) => warn!("cannot add the {} output {slot}: {e}", kind.as_str()),
            }
        }
        info!(outputs = self.outputs.len(), "offering the output slots");
        if self.offers.awaiting_answer() {
            self.pending = true;
        } else {
            self.offer().await;
        }
    }

    async fn add_output(&self, kind: Kind, slot: usize) -> webrtc::error::Result<Output> {
        let ssrc = rand::random::<u32>();
        let (rtc_kind, codec) = match kind {
            Kind::Audio => (RtpCodecKind::Audio, connection::opus()),
            Kind::Video | Kind::Content => (RtpCodecKind::Video, connection::vp8()),
        };
        let id = slot_id(kind, slot);
        let track = Arc::new(TrackLocalStaticRTP::new(MediaStreamTrack::new(
            id.clone(),
            id.clone(),
            id.clone(),
            rtc_kind,
            vec![RTCRtpEncodingParameters {
                rtp_coding_parameters: RTCRtpCodingParameters { ssrc: Some(ssrc), ..Default::default() },
                codec: codec.clone(),
                ..Default::default()
            }],
        )));
        let transceiver = self
            .pc
            .add_transceiver_from_track(
                track.clone() as Arc<dyn TrackLocal>,
                Some(RTCRtpTransceiverInit { direction: RTCRtpTransceiverDirection::Sendonly, streams: vec![id], send_encodings: vec![] }),
            )
            .await?;
        let sender = transceiver.sender().await?.ok_or_else(|| webrtc::error::Error::Other("transceiver has no sender".into()))?;
        Ok(Output { track, sender, ssrc, codec, offered: false, bound_payload_type: None })
    }

    async fn offer(&mut self) {
        let result = async {
            let offer = self.pc.create_offer(None).await?;
            self.pc.set_local_description(offer).await?;
            self.pc.local_description().await.ok_or_else(|| webrtc::error::Error::Other("no local description".into()))
        }
        .await;
        match result {
            Ok(offer) => {
                if let Err(e) = self.ctx.network.mux.register_local_sdp(&self.link, &offer.sdp) {
                    return warn!("media ports refused the offer's ICE credentials: {e}");
                }
                self.offers.offered();
                self.outputs.values_mut().for_each(|o| o.offered = true);
                self.emit(PeerEvent::LocalOffer(self.ctx.network.mux.advertise_sdp(&self.link, &offer.sdp))).await;
            }
            Err(e) => warn!("cannot create an offer: {e}"),
        }
    }

    /// After an answer: tell the sink each output's negotiated payload type.
    async fn bind_outputs(&mut self) {
        for (&(kind, slot), out) in self.outputs.iter_mut().filter(|(_, o)| o.offered) {
            let params = match out.sender.get_parameters().await {
                Ok(p) => p,
                Err(e) => {
                    warn!("no parameters for an output: {e}");
                    continue;
                }
            };
            let pt = params.rtp_parameters.codecs.iter().find(|c| c.rtp_codec.mime_type.eq_ignore_ascii_case(&out.codec.mime_type)).map(|c| c.payload_type);
            let Some(pt) = pt else {
                warn!("the browser did not accept {} for output {}", out.codec.mime_type, slot_id(kind, slot));
                continue;
            };
            if out.bound_payload_type == Some(pt) {
                continue;
            }
            out.bound_payload_type = Some(pt);
            let _ = self.sink_ctl.send(SinkControl::Bind {
                kind,
                slot,
                track: out.track.clone(),
                ssrc: out.ssrc,
                payload_types: PayloadTypes::single(if kind == Kind::Audio { Codec::Opus } else { Codec::Vp8 }, pt),
                clock_rate: out.codec.clock_rate,
            });
            if kind.is_video() && self.connected {
                self.ctx.router.request_slot_keyframe(self.site, kind, slot);
            }
        }
    }
}

/// Reads one webrtc-rs track and hands its packets to an [`Inbound`].
struct Reader {
    inbound: Inbound,
    cancel: CancellationToken,
}

impl Reader {
    async fn run(mut self, track: Arc<dyn TrackRemote>) {
        loop {
            let event = tokio::select! {
                _ = self.cancel.cancelled() => break,
                ev = track.poll() => ev,
            };
            match event {
                Some(TrackRemoteEvent::OnOpen(init)) => self.open_layer(&track, init.ssrc, init.rid.as_deref()),
                Some(TrackRemoteEvent::OnRtpPacket(packet)) => {
                    if !self.inbound.has_layer(Ssrc::of(&packet.header)) {
                        let rid = track.rid(packet.header.ssrc).await;
                        self.open_layer(&track, packet.header.ssrc, rid.as_deref());
                    }
                    self.inbound.on_packet(packet, std::time::Instant::now());
                }
                Some(TrackRemoteEvent::OnEnded) | None => break,
                Some(_) => {}
            }
        }
        self.inbound.close();
        debug!("stopped receiving {}", self.inbound.kind().as_str());
    }

    fn open_layer(&mut self, track: &Arc<dyn TrackRemote>, ssrc: u32, rid: Option<&str>) {
        if let Some(requests) = self.inbound.open_layer(Ssrc(ssrc), rid, std::time::Instant::now()) {
            let track = track.clone();
            let ask = move || {
                let track = track.clone();
                async move {
                    match track.write_rtcp(vec![Box::new(PictureLossIndication { sender_ssrc: 0, media_ssrc: ssrc })]).await {
                        Ok(_) => {
                            debug!(media_ssrc = ssrc, "asked the publisher for a keyframe");
                            true
                        }
                        Err(e) => {
                            debug!("keyframe request not sent: {e}");
                            false
                        }
                    }
                }
            };
            tokio::spawn(pace_keyframe_requests(requests, self.cancel.clone(), ask).in_current_span());
        }
    }
}
