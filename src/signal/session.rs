//! One task per WebSocket: parses client messages, checks them against the session's state,
//! and relays between the client, the conference actor and the site's peer.
//!
//! A refused message gets a typed `error` reply and changes nothing; the socket stays open.
//! The task owns its peer: when the socket goes, the peer and the seat go with it.

use super::outbox::{Delivery, Outbox};
use super::protocol::{parse_client, ClientMessage, ConferenceInfo, ErrorCode, Outgoing, ServerMessage, SiteInfo};
use crate::auth::limits::{MessageRate, Verdict};
use crate::conference::{Action, JoinRefused};
use crate::peer::{self, PeerCommand, PeerEvent, PeerHandle};
use crate::server::Bridge;
use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures::{SinkExt, StreamExt};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tracing::{info, warn, Instrument};
use uuid::Uuid;

/// A socket silent for this long is taken as dead (clients `ping` every 15 s), so a site
/// whose network vanished does not hold its seat until TCP gives up minutes later.
pub(crate) const IDLE_TIMEOUT: Duration = Duration::from_secs(45);

/// A socket must have joined this long after it opened, or it is closed. Pages send `join`
/// as soon as the socket opens (they hold the ticket already), so this only ends sockets
/// that never will: without it a stranger's socket kept alive by pings, which count as
/// hearing from it, would hold one of its address's sockets for ever.
pub(crate) const JOIN_TIMEOUT: Duration = Duration::from_secs(20);

struct Joined {
    site: usize,
    peer: PeerHandle,
    events: Option<mpsc::Receiver<PeerEvent>>,
}

enum Flow {
    Continue,
    Close(&'static str),
}

/// Serves one socket from `ip` (already counted against the per-address limit; released here).
pub(crate) async fn run(socket: WebSocket, bridge: Arc<Bridge>, ip: IpAddr) {
    let session = Uuid::new_v4();
    let span = tracing::info_span!("session", %session, %ip);
    let rate = MessageRate::new(&bridge.settings.limits, crate::store::now_ms());
    Session { bridge: bridge.clone(), session, ip, joined: None, rate }.run(socket).instrument(span).await;
    bridge.auth.close_socket(ip);
}

struct Session {
    bridge: Arc<Bridge>,
    session: Uuid,
    ip: IpAddr,
    joined: Option<Joined>,
    rate: MessageRate,
}

impl Session {
    async fn run(mut self, socket: WebSocket) {
        let (mut tx, mut rx) = socket.split();
        let (outbox_tx, mut outbox) = Outbox::new();
        let mut last_heard = Instant::now();
        let mut idle_check = tokio::time::interval(Duration::from_secs(5));
        let join_deadline = tokio::time::sleep(JOIN_TIMEOUT);
        tokio::pin!(join_deadline);
        let close_reason = loop {
            let out = tokio::select! {
                () = &mut join_deadline, if self.joined.is_none() => {
                    info!("no join within {} s; closing the socket", JOIN_TIMEOUT.as_secs());
                    let bye = ServerMessage::error(ErrorCode::NotJoined, format!("no join within {} s; closing", JOIN_TIMEOUT.as_secs()), None);
                    send_all(&mut tx, vec![bye]).await;
                    break Some("join_timeout");
                }
                _ = idle_check.tick() => {
                    if last_heard.elapsed() > IDLE_TIMEOUT {
                        warn!("nothing heard for {} s; closing the socket", IDLE_TIMEOUT.as_secs());
                        break Some("idle");
                    }
                    continue;
                }
                incoming = rx.next() => {
                    last_heard = Instant::now();
                    // Every frame but Close spends the socket's rate: WebSocket pings and pongs
                    // cost the bridge a read and a reply like a message does.
                    let counted = matches!(incoming, Some(Ok(Message::Text(_) | Message::Binary(_) | Message::Ping(_) | Message::Pong(_))));
                    let verdict = if counted { self.rate.on_message(crate::store::now_ms()) } else { Verdict::Accept };
                    match (verdict, incoming) {
                    (Verdict::Close, _) => {
                        warn!("over the message rate for {} s in a row; closing the socket", self.bridge.settings.limits.flood_strikes);
                        let bye = ServerMessage::error(ErrorCode::RateLimited, "too many messages for too long; closing", None);
                        send_all(&mut tx, vec![bye]).await;
                        break Some("flooding");
                    }
                    (Verdict::Drop { reply: true }, _) => {
                        warn!("over the message rate; dropping messages");
                        let limit = self.bridge.settings.limits.messages_per_second;
                        vec![ServerMessage::error(ErrorCode::RateLimited, format!("more than {limit} messages per second; messages are being dropped"), None)]
                    }
                    (Verdict::Drop { reply: false }, _) => continue,
                    (Verdict::Accept, incoming) => match incoming {
                    Some(Ok(Message::Text(text))) => match self.on_text(text.as_str(), &outbox_tx).await {
                        (replies, Flow::Continue) => replies,
                        (replies, Flow::Close(reason)) => {
                            send_all(&mut tx, replies).await;
                            break Some(reason);
                        }
                    },
                    Some(Ok(Message::Binary(_))) => vec![ServerMessage::error(
                        ErrorCode::InvalidMessage, "binary frames are not part of the protocol; send JSON text", None)],
                    Some(Ok(Message::Close(_))) | None => break None,
                    Some(Err(e)) => {
                        warn!("socket error: {e}");
                        break None;
                    }
                    Some(Ok(_)) => continue,
                    },
                    }
                },
                Some(out) = outbox.recv() => match out {
                    Delivery::Send(Outgoing::Text(text)) => {
                        if tx.send(Message::Text(text.as_ref().into())).await.is_err() {
                            break None;
                        }
                        continue;
                    }
                    Delivery::Send(Outgoing::Message(msg)) => vec![msg],
                    Delivery::Close(msg) => {
                        let (reason, why) = match msg {
                            ServerMessage::Replaced { .. } => ("replaced", "seat taken by a newer session"),
                            ServerMessage::Dropped { .. } => ("dropped", "dropped by a technician"),
                            ServerMessage::Revoked { .. } => ("revoked", "the site's key was re-issued"),
                            _ => ("closed", "closed by the conference"),
                        };
                        send_all(&mut tx, vec![msg]).await;
                        info!("{why}; closing");
                        break Some(reason);
                    }
                },
                Some(ev) = next_peer_event(&mut self.joined) => self.on_peer_event(ev),
            };
            if !send_all(&mut tx, out).await {
                break None;
            }
        };
        if let Some(reason) = close_reason {
            // 1008: policy violation (a flood, no join in time); 1000 otherwise.
            let code = if matches!(reason, "flooding" | "join_timeout") { 1008 } else { 1000 };
            let _ = tx.send(Message::Close(Some(CloseFrame { code, reason: reason.into() }))).await;
            // The closing handshake: read (and drop) what the client still sends until its Close,
            // for at most a second. Dropping a socket with unread input makes the kernel reset
            // the connection, and the client may then never see our Close and its reason.
            let _ = tokio::time::timeout(Duration::from_secs(1), async {
                while let Some(Ok(m)) = rx.next().await {
                    if matches!(m, Message::Close(_)) {
                        break;
                    }
                }
            })
            .await;
        }
        if let Some(j) = self.joined.take() {
            // Only an explicit `leave` gives the seat up; a lost connection is held for a while.
            // A revoked key's seat was already released by the conference.
            let lost = !matches!(close_reason, Some("left") | Some("revoked"));
            self.bridge.conference.leave(j.site, self.session, lost).await;
            self.bridge.auth.leave_site(&self.bridge.settings.sites[j.site].id);
        }
    }

    async fn on_text(&mut self, text: &str, outbox: &Outbox) -> (Vec<ServerMessage>, Flow) {
        let msg = match parse_client(text) {
            Ok(m) => m,
            Err(refusal) => {
                warn!(code = ?refusal.code, "refused a client message: {}", super::protocol::for_log(&refusal.message));
                return (vec![refusal.into()], Flow::Continue);
            }
        };
        let kind = msg.kind();
        match msg {
            ClientMessage::Ping {} => (vec![ServerMessage::Pong], Flow::Continue),
            ClientMessage::Join { site, ticket, resume } => (self.join(&site, &ticket, resume, outbox).await, Flow::Continue),
            ClientMessage::Leave {} => (vec![], Flow::Close("left")),
            ClientMessage::Offer { sdp } => (self.to_peer(kind, PeerCommand::RemoteOffer(sdp)).await, Flow::Continue),
            ClientMessage::Answer { sdp } => (self.to_peer(kind, PeerCommand::RemoteAnswer(sdp)).await, Flow::Continue),
            ClientMessage::Candidate { candidate } => (self.to_peer(kind, PeerCommand::RemoteCandidate(candidate)).await, Flow::Continue),
            ClientMessage::ShareStart { track } => {
                // Decided by the conference first; only then does the peer treat the track as
                // content (before the browser's offer for it is processed).
                let replies = self.act(kind, Action::ShareStart).await;
                if replies.is_empty() {
                    if let Some(j) = &self.joined {
                        j.peer.send(PeerCommand::ContentTrack(track)).await;
                    }
                }
                (replies, Flow::Continue)
            }
            ClientMessage::Attendance { attendees, headcount }
                if attendees.chars().count() > 2000 || headcount.is_some_and(|h| !(0..=100_000).contains(&h)) =>
            {
                (
                    vec![ServerMessage::error(ErrorCode::InvalidMessage, "attendees over 2000 characters or a headcount out of range", Some(kind))],
                    Flow::Continue,
                )
            }
            ClientMessage::Stats { report } => match &self.joined {
                Some(j) => {
                    // The worst video loss the page sees tells the conference whether its
                    // downlink can take large simulcast layers.
                    let loss = report.received.values().filter(|r| r.video_fps > 0.0).map(|r| r.loss_percent).fold(0.0, f64::max);
                    self.bridge.conference.link_quality(j.site, loss);
                    self.bridge.health.client_report(j.site, report);
                    (vec![], Flow::Continue)
                }
                None => (vec![ServerMessage::error(ErrorCode::NotJoined, "join before sending stats", Some(kind))], Flow::Continue),
            },
            other => match Action::try_from(other) {
                Ok(action) => (self.act(kind, action).await, Flow::Continue),
                Err(own) => unreachable!("{} is handled above", own.kind()),
            },
        }
    }

    /// What the peer reports becomes a message to the page; ICE restarts go to the event log
    /// (technicians see them on /tech).
    fn on_peer_event(&self, ev: PeerEvent) -> Vec<ServerMessage> {
        vec![match ev {
            PeerEvent::LocalAnswer(sdp) => ServerMessage::Answer { sdp },
            PeerEvent::LocalOffer(sdp) => ServerMessage::Offer { sdp },
            PeerEvent::LocalCandidate(candidate) => ServerMessage::Candidate { candidate },
            PeerEvent::State(state) => ServerMessage::Media { state },
            PeerEvent::Refused { fault, message, request } => ServerMessage::error(fault.into(), message, Some(request)),
            PeerEvent::DownlinkLoss(loss) => {
                if let Some(j) = &self.joined {
                    self.bridge.conference.link_quality(j.site, loss);
                }
                return vec![];
            }
            PeerEvent::DownlinkEstimate { bps, loss_bps, lossy } => {
                if let Some(j) = &self.joined {
                    self.bridge.conference.link_estimate(j.site, bps, loss_bps, lossy);
                }
                return vec![];
            }
            PeerEvent::IceRestarted => {
                if let Some(j) = &self.joined {
                    let site = &self.bridge.settings.sites[j.site].id;
                    self.bridge.store.record(crate::store::journal::Entry::now(Some(site), "ice_restart", ""));
                }
                return vec![];
            }
        }]
    }

    /// A conference action on behalf of this session's site; refusals become `error` replies.
    async fn act(&self, kind: &str, action: Action) -> Vec<ServerMessage> {
        let Some(j) = &self.joined else {
            return vec![ServerMessage::error(ErrorCode::NotJoined, format!("join before sending {kind}"), Some(kind))];
        };
        match self.bridge.conference.act(j.site, self.session, action).await {
            Ok(()) => vec![],
            Err(r) => {
                let code = ErrorCode::from(&r);
                warn!(?code, "refused {kind}: {}", super::protocol::for_log(&r.message));
                vec![ServerMessage::error(code, r.message, Some(kind))]
            }
        }
    }

    async fn to_peer(&self, kind: &str, cmd: PeerCommand) -> Vec<ServerMessage> {
        match &self.joined {
            None => vec![ServerMessage::error(ErrorCode::NotJoined, format!("join before sending {kind}"), Some(kind))],
            Some(j) => {
                if j.peer.send(cmd).await {
                    vec![]
                } else {
                    vec![ServerMessage::error(ErrorCode::Internal, "the media connection has stopped; join again", Some(kind))]
                }
            }
        }
    }

    async fn join(&mut self, site_id: &str, ticket: &str, resume: Option<String>, outbox: &Outbox) -> Vec<ServerMessage> {
        let refuse = |code, msg: String| vec![ServerMessage::error(code, msg, Some("join"))];
        if self.joined.is_some() {
            return refuse(ErrorCode::AlreadyJoined, "this session has already joined; open a new connection to join another site".into());
        }
        let bridge = &self.bridge;
        let Some(site) = bridge.settings.site_index(site_id) else {
            return refuse(ErrorCode::SiteUnknown, format!("no site with id {:?}", site_id.chars().take(64).collect::<String>()));
        };
        if let Err(e) = bridge.auth.redeem(ticket, site_id, self.ip) {
            warn!(site = site_id, code = e.code(), "join refused: {e}");
            return refuse(e.into(), format!("{e}; get a ticket from POST /api/session with the site's key"));
        }
        if let Err(e) = bridge.auth.enter_site(site_id) {
            warn!(site = site_id, "join refused: {e}");
            return refuse(e.into(), format!("{e} (at most {} at a time for one site)", bridge.settings.limits.sockets_per_site));
        }
        let seat = match bridge.conference.join(site, self.session, resume, outbox.clone()).await {
            Ok(seat) => seat,
            Err(e) => {
                bridge.auth.leave_site(site_id);
                let code = if e == JoinRefused::Locked { ErrorCode::ConferenceLocked } else { ErrorCode::Internal };
                return refuse(code, e.to_string());
            }
        };
        let (peer, events) = match peer::spawn(site, bridge.peers.clone()).await {
            Ok(p) => p,
            Err(e) => {
                bridge.conference.leave(site, self.session, false).await;
                bridge.auth.leave_site(site_id);
                return refuse(ErrorCode::Internal, e.to_string());
            }
        };
        let s = &bridge.settings.sites[site];
        info!(site = %s.id, replaced = seat.replaced_previous, "joined as {}", s.name);
        self.joined = Some(Joined { site, peer, events: Some(events) });
        vec![ServerMessage::Joined {
            session: self.session.to_string(),
            site: SiteInfo { id: s.id.clone(), name: s.name.clone(), role: s.role },
            conference: ConferenceInfo { title: bridge.settings.title.clone() },
            ice_servers: ice_servers(&bridge.settings, &s.id),
            resume: seat.resume,
            resumed: seat.resumed,
        }]
    }
}

/// The TURN servers a page may relay through, with credentials for this site that expire
/// after `turn.ttl_s` (none when no TURN server is configured).
fn ice_servers(settings: &crate::config::Settings, site: &str) -> Vec<super::protocol::IceServer> {
    if settings.turn_urls.is_empty() {
        return Vec::new();
    }
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let (username, credential) = crate::auth::turn::credentials(&settings.turn_secret, site, now, settings.turn_ttl_s);
    vec![super::protocol::IceServer { urls: settings.turn_urls.clone(), username: Some(username), credential: Some(credential) }]
}

/// The next event of the joined peer; never resolves before a join or after the peer stops.
async fn next_peer_event(joined: &mut Option<Joined>) -> Option<PeerEvent> {
    let Some(events) = joined.as_mut().and_then(|j| j.events.as_mut()) else {
        return std::future::pending().await;
    };
    match events.recv().await {
        Some(ev) => Some(ev),
        None => {
            if let Some(j) = joined.as_mut() {
                j.events = None;
            }
            std::future::pending().await
        }
    }
}

/// Sends each message as a JSON text frame; false once the socket is gone.
async fn send_all<S>(tx: &mut S, msgs: Vec<ServerMessage>) -> bool
where
    S: futures::Sink<Message> + Unpin,
{
    for m in msgs {
        let text = match serde_json::to_string(&m) {
            Ok(t) => t,
            Err(e) => {
                warn!("cannot serialise a server message: {e}");
                continue;
            }
        };
        if tx.send(Message::Text(text.into())).await.is_err() {
            return false;
        }
    }
    true
}
