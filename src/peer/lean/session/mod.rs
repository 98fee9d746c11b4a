//! One site's lean media session as a state machine without I/O, in the manner of
//! `transport/`: time comes in with every input, datagrams and events go out through
//! [`Session::poll_output`], and the next moment it wants to be woken at is
//! [`Session::poll_timeout`]. The tokio task around it ([`super::driver`]) owns the sockets, the
//! channels and the clock; the session owns everything else of the site's connection: its
//! transport, the SDP negotiation, the streams it receives and the SSRCs they learnt, the
//! reception and sender reports, transport-cc feedback and the downlink estimate, NACKs both
//! ways, and the budgets on what the site may make the bridge do.
//!
//! Inputs:
//! - [`Session::handle_command`]: an offer, answer or candidate from the signalling session;
//! - [`Session::handle_datagram`]: what arrived for the site on the shared ports;
//! - [`Session::handle_packet`]: a packet the router gives one of the site's output slots;
//! - [`Session::handle_keyframe_request`]: the router asks the site for a keyframe of a layer;
//! - [`Session::handle_timeout`]: the moment [`Session::poll_timeout`] named has come.
//!
//! What it writes to directly is in-process state only: the router (packets from the site, its
//! keyframe requests) and the health board.

mod negotiate;
mod receive;
mod send;
#[cfg(test)]
mod tests;

use super::candidates::RemoteCandidates;
use super::congestion::{self, TransportFeedback};
use super::estimate::{self, DownlinkEstimate};
use super::history::History;
use super::numbering::Numbering;
use super::reception::Reception;
use super::repair::{self, Repair};
use super::sdp::{Media, Negotiation};
use super::sending::Sent;
use super::transport::{IceCredentials, Identity, Transport, TransportState};
use crate::health::board::{Path, StatsBoard};
use crate::media::delay::DelayCounts;
use crate::media::router::Router;
use crate::media::{Kind, Mid, Pt, Ssrc};
use crate::peer::budget;
use crate::peer::ceilings::Ceilings;
use crate::peer::inbound::{AudioFormats, Inbound};
use crate::peer::offer_answer::OfferAnswer;
use crate::peer::outputs::Outputs;
use crate::peer::{Fault, PeerEvent, Refusals};
use crate::signal::protocol::MediaState;
use bytes::BytesMut;
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::AtomicU8;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::mpsc;
use tracing::{info, warn};

/// The bandwidth ceiling each browser is told for everything it sends (REMB): a camera's
/// three simulcast layers (at most 2.2 Mbit/s in the web client) and a shared screen.
const REMB_BPS: f32 = 4_000_000.0;
/// How often reception is reported; more often in the first seconds, when Chromium takes a
/// REMB as its starting estimate.
const REPORT_INTERVAL: Duration = Duration::from_secs(1);
const EARLY_REPORT_INTERVAL: Duration = Duration::from_millis(250);
const EARLY_REPORTS_FOR: Duration = Duration::from_secs(3);
/// How often the connection (round trip, path) goes to the health board.
const CONNECTION_INTERVAL: Duration = Duration::from_secs(2);
/// Packets sent again for one NACK at most (a burst of loss asks for many at once).
const MAX_RETRANSMIT_PER_NACK: usize = 64;
/// What repairs may take of the downlink estimate, and how long of it they may save up: the
/// layers are fitted into 70–85 % of it, so repairs beyond the rest only overflow the queue
/// whose losses they answer.
const REPAIR_SHARE: f64 = 0.2;
const REPAIR_SAVED: f64 = 0.25;
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
const RTCP_SSRC: Ssrc = Ssrc(1);

/// What the session reaches of the bridge: in-process state and settings, no sockets.
#[derive(Clone)]
pub(crate) struct Surroundings {
    pub(crate) router: Router,
    pub(crate) board: Arc<StatsBoard>,
    /// Each site's line ceilings, live.
    pub(crate) lines: Arc<Ceilings>,
    /// Site ids by index, for log lines.
    pub(crate) site_ids: Arc<[String]>,
    /// Output slots: (audio, video).
    pub(crate) slots: (usize, usize),
    pub(crate) video_codecs: Vec<crate::media::Codec>,
    pub(crate) audio_red: bool,
    /// The bridge's DTLS certificate.
    pub(crate) identity: Arc<Identity>,
    /// The shared UDP port's address, and the bridge's candidates on the shared ports (full
    /// `candidate:` values), as every answer and offer lists them.
    pub(crate) udp_addr: SocketAddr,
    pub(crate) candidates: Vec<String>,
}

/// What the session asks of the world, in order.
#[derive(Debug)]
pub(crate) enum Output {
    /// A datagram to the site (on its ICE-TCP connection if `to` is one).
    Transmit(SocketAddr, BytesMut),
    /// For the signalling session; `droppable` ones (estimates, loss) may be dropped when it
    /// is behind, since newer ones follow.
    Event { event: PeerEvent, droppable: bool },
    /// The bridge's ICE credentials in this description must route checks to the site (given
    /// before the description's event).
    Listen(String),
    /// A connectivity check from this address failed its credentials (the ports count them).
    CheckFailed(SocketAddr),
    /// The router's keyframe requests for the site's layer with this SSRC: each to come back
    /// as [`Session::handle_keyframe_request`], at most one per
    /// [`crate::peer::KEYFRAME_MIN_INTERVAL`].
    KeyframeRequests(Ssrc, mpsc::Receiver<()>),
}

/// One m-section the browser sends on.
struct Stream {
    mid: Mid,
    /// Decided at the stream's first packet (content or camera is known by then).
    inbound: Option<Inbound>,
    /// SSRCs the SDP announced for it.
    ssrcs: Vec<Ssrc>,
    payload_type: Pt,
    codec: crate::media::Codec,
    /// Redundant audio's payload type (RFC 2198), when negotiated beside Opus.
    red: Option<Pt>,
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
    fn carries(&self, pt: Pt) -> bool {
        self.payload_type == pt || self.red == Some(pt)
    }
}

/// When each of the session's periodic duties is next due.
struct Due {
    /// Reports, the estimate to the conference, probes, the forwarding delay.
    reports: Instant,
    /// Transport-cc feedback on what the browser sends.
    feedback: Instant,
    /// NACKs for what the browser's uplink lost.
    nacks: Instant,
    /// The next packets of the probe being sent; none between probes.
    padding: Option<Instant>,
    /// The connection (round trip, path) to the health board.
    connection: Instant,
}

pub(crate) struct Session {
    site: usize,
    generation: u64,
    ctx: Surroundings,
    out: VecDeque<Output>,
    negotiation: Negotiation,
    /// The bridge's current ICE credentials towards this site.
    ice: IceCredentials,
    transport: Option<Transport>,
    /// The offer/answer rules kept with the site (shared with the other engine).
    offers: OfferAnswer,
    answered_first_offer: bool,
    /// Last state told to the signalling session.
    state: Option<MediaState>,
    /// Over UDP or ICE-TCP, as the ports last saw the site's media (the driver tells).
    path: Option<Path>,
    outputs: Outputs<()>,
    /// Output SSRC → (kind, slot), for keyframe requests from the browser.
    output_ssrcs: HashMap<Ssrc, (Kind, usize)>,
    streams: Vec<Stream>,
    /// Inbound SSRC → index in `streams`.
    by_ssrc: HashMap<Ssrc, usize>,
    content_track: Option<String>,
    camera_mid: Option<Mid>,
    audio_level_id: Arc<AtomicU8>,
    /// Where each forwarded packet is serialised before encryption.
    scratch: Vec<u8>,
    /// Datagrams the transport refused (logged, counted).
    refused: u64,
    /// Per SSRC the browser sends, for the receiver reports.
    receptions: HashMap<Ssrc, Reception>,
    /// The session's first moment, on the monotonic clock and the wall clock: NTP times in
    /// reports are read from `now` through them, so time comes only from the inputs.
    epoch: Instant,
    wall_epoch: SystemTime,
    connected_at: Option<Instant>,
    next_report: Instant,
    due: Due,
    /// What each video slot sent lately, by its SSRC, for NACKs.
    histories: HashMap<Ssrc, History>,
    retransmitted: u64,
    /// What repairs may take of the downlink estimate (bytes), and how many it held back.
    repair_share: budget::Bucket,
    repairs_held: u64,
    /// What this site's NACKs may make the bridge send again.
    retransmit_budget: budget::RetransmitBudget,
    /// How many SSRCs this site's packets may make the bridge follow.
    ssrc_budget: budget::SsrcBudget,
    /// What the budgets refused: counted on the board, logged once per budget and connection.
    refusals: Refusals,
    /// What each output slot sent, by its SSRC, for the sender reports.
    sent: HashMap<Ssrc, Sent>,
    /// Round-trip time from the browser's reports on the bridge's sender reports (smoothed).
    rtt: Option<Duration>,
    /// Arrival times of the browser's numbered packets, for its congestion control.
    feedback: TransportFeedback,
    /// How much the site's downlink takes, from the browser's word on the bridge's numbered
    /// packets.
    estimate: DownlinkEstimate,
    /// Which output streams the bridge numbers for the estimate, and with which id.
    numbering: Numbering,
    /// The estimate last told to the conference, and when.
    estimate_sent: Option<(f64, bool, Instant)>,
    /// What the browser's uplink lost of each video stream it sends, to ask for again.
    repairs: HashMap<Ssrc, Repair>,
    /// The candidates the browser trickled, which name the type of the address it uses.
    remote_candidates: RemoteCandidates,
    /// How long each forwarded packet was in the bridge, until added to the router's total.
    delays: DelayCounts,
    /// When the browser's reported video loss may next go to the signalling session.
    next_loss_event: Instant,
}

impl Session {
    /// The session of `site`, whose packets the router knows as `generation`'s; `now` and
    /// `wall` are the same moment on the monotonic clock and the wall clock.
    pub(crate) fn new(site: usize, generation: u64, ctx: Surroundings, now: Instant, wall: SystemTime) -> Self {
        Session {
            site,
            generation,
            out: VecDeque::new(),
            negotiation: Negotiation::new(&ctx.video_codecs).with_audio_red(ctx.audio_red),
            ice: IceCredentials::random(),
            transport: None,
            offers: OfferAnswer::default(),
            answered_first_offer: false,
            state: None,
            path: None,
            outputs: Outputs::new(site),
            output_ssrcs: HashMap::new(),
            streams: Vec::new(),
            by_ssrc: HashMap::new(),
            content_track: None,
            camera_mid: None,
            audio_level_id: Arc::default(),
            scratch: vec![0u8; 1500],
            refused: 0,
            receptions: HashMap::new(),
            epoch: now,
            wall_epoch: wall,
            connected_at: None,
            next_report: now,
            due: Due { reports: now, feedback: now, nacks: now, padding: None, connection: now },
            histories: HashMap::new(),
            retransmitted: 0,
            repair_share: budget::Bucket::new(f64::MAX, f64::MAX),
            repairs_held: 0,
            retransmit_budget: budget::RetransmitBudget::default(),
            ssrc_budget: budget::SsrcBudget::default(),
            refusals: Refusals::new(site, ctx.board.clone()),
            sent: HashMap::new(),
            rtt: None,
            feedback: TransportFeedback::default(),
            estimate: DownlinkEstimate::new(ctx.lines.get(site).down_bps().unwrap_or(estimate::MAX_BPS)),
            numbering: Default::default(),
            estimate_sent: None,
            repairs: HashMap::new(),
            remote_candidates: RemoteCandidates::default(),
            delays: DelayCounts::default(),
            next_loss_event: now,
            ctx,
        }
    }

    /// What the session asks of the world next, in order.
    pub(crate) fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// The ports last saw the site's media over this path.
    pub(crate) fn set_path(&mut self, path: Option<Path>) {
        self.path = path;
    }

    /// When the session next wants [`Session::handle_timeout`]: the transport's next timer (a
    /// handshake retransmission, consent), or the next of its own periodic duties.
    pub(crate) fn poll_timeout(&self) -> Instant {
        let mut next = self.due.reports.min(self.due.connection);
        if self.feedback.negotiated() {
            next = next.min(self.due.feedback);
        }
        if self.repairs.values().any(|r| r.missing() > 0) {
            next = next.min(self.due.nacks);
        }
        if let Some(padding) = self.due.padding {
            next = next.min(padding);
        }
        match self.transport.as_ref().and_then(Transport::poll_timeout) {
            Some(t) => next.min(t),
            None => next,
        }
    }

    /// Whatever was due by `now`: the transport's timers, then the session's own duties. A
    /// duty that was late is next due one interval after `now`, not at once again.
    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        if let Some(t) = self.transport.as_mut() {
            if t.poll_timeout().is_some_and(|due| due <= now) {
                if let Err(e) = t.handle_timeout(now) {
                    warn!("media transport: {e}");
                }
            }
        }
        if self.due.reports <= now {
            self.due.reports = now + EARLY_REPORT_INTERVAL;
            self.send_reports(now);
            // A technician may have changed the site's downlink ceiling since.
            self.estimate.set_max(self.ctx.lines.get(self.site).down_bps().unwrap_or(estimate::MAX_BPS));
            self.report_estimate(now);
            self.start_probe(now);
            self.delays.flush_into(self.ctx.router.forwarding_delay());
        }
        if self.feedback.negotiated() && self.due.feedback <= now {
            self.due.feedback = now + congestion::FEEDBACK_INTERVAL;
            self.send_feedback(now);
        }
        if self.due.nacks <= now && self.repairs.values().any(|r| r.missing() > 0) {
            self.due.nacks = now + repair::INTERVAL;
            self.send_nacks(now);
        }
        // Each step of a probe either sends and names the next, or finds the probe over: a
        // moment once due is never due again.
        if self.due.padding.is_some_and(|due| due <= now) {
            self.due.padding = None;
            if self.estimate.probing(now) {
                self.due.padding = Some(now + estimate::probe::STEP);
                self.send_padding(now);
            }
        }
        if self.due.connection <= now {
            self.due.connection = now + CONNECTION_INTERVAL;
            if self.state == Some(MediaState::Connected) {
                self.report_connection();
            }
        }
        self.after(now);
    }

    /// What every input ends with: what the transport queued goes out, and a change of the
    /// transport's state is told.
    fn after(&mut self, now: Instant) {
        self.flush();
        self.update_state(now);
    }

    fn emit(&mut self, event: PeerEvent) {
        self.out.push_back(Output::Event { event, droppable: false });
    }

    fn refuse(&mut self, fault: Fault, message: String, request: &'static str) {
        warn!(%message, "refused {request}");
        self.emit(PeerEvent::Refused { fault, message, request });
    }

    /// The NTP wall time at `now`.
    fn wall(&self, now: Instant) -> SystemTime {
        self.wall_epoch + now.saturating_duration_since(self.epoch)
    }

    /// Moves what the transport queued (check answers, handshake flights) to the outputs.
    fn flush(&mut self) {
        let Some(t) = self.transport.as_mut() else { return };
        while let Some((to, datagram)) = t.poll_transmit() {
            self.out.push_back(Output::Transmit(to, datagram));
        }
    }

    /// Tells the signalling session when the transport's state changes, and opens or closes
    /// the slots.
    fn update_state(&mut self, now: Instant) {
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
            self.connected_at.get_or_insert(now);
            self.report_connection();
            // SRTP keys exist only now: every slot that shows video needs a keyframe.
            for (kind, slot) in self.bound_video_slots() {
                self.ctx.router.request_slot_keyframe(self.site, kind, slot);
            }
        }
        self.emit(PeerEvent::State(state));
    }

    /// The round trip, the remote candidate type and the path, for the health page.
    fn report_connection(&self) {
        let rtt = self.rtt.map(|r| r.as_secs_f64() * 1000.0);
        let remote = self.transport.as_ref().and_then(Transport::remote);
        let candidate = remote.map_or("", |addr| self.remote_candidates.type_of(addr, self.path == Some(Path::Tcp)));
        self.ctx.board.set_connection(self.site, rtt, candidate, self.path);
    }

    /// The site has left: its streams close, the router forgets it, and the log gets one line
    /// of what the connection did.
    pub(crate) fn close(&mut self) {
        self.ctx.router.unregister_sink(self.site, self.generation);
        self.ctx.board.set_downlink(self.site, None, None);
        self.delays.flush_into(self.ctx.router.forwarding_delay());
        for s in &mut self.streams {
            if let Some(inbound) = s.inbound.as_mut() {
                inbound.close();
            }
        }
        let o = &self.outputs;
        let (nacked, recovered) = self.repairs.values().fold((0, 0), |(a, r), x| (a + x.asked, r + x.recovered));
        info!(
            written = o.written,
            unbound = o.unbound,
            held = o.held,
            failed = o.failed,
            unsupported = o.unsupported,
            thinned = o.thinned,
            retransmitted = self.retransmitted,
            repairs_held = self.repairs_held,
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
}
