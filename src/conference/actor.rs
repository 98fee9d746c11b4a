//! The conference actor: the single owner of seats and presence.

use super::handle::{Command, ConferenceHandle, Seat};
use crate::config::Settings;
use crate::signal::protocol::{ServerMessage, SitePresence};
use crate::store::{now_ms, Store};
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};
use uuid::Uuid;

struct Holder {
    session: Uuid,
    outbox: mpsc::Sender<ServerMessage>,
}

#[derive(Default)]
struct SeatState {
    holder: Option<Holder>,
    /// Unix ms of the current join, or of the last leave.
    since_ms: Option<i64>,
}

struct Actor {
    settings: Arc<Settings>,
    store: Store,
    seats: Vec<SeatState>,
}

/// Starts the actor; it stops when `cancel` fires or every handle is dropped.
pub fn spawn(settings: Arc<Settings>, store: Store, cancel: CancellationToken) -> ConferenceHandle {
    let (tx, mut rx) = mpsc::channel(256);
    let seats = settings.sites.iter().map(|_| SeatState::default()).collect();
    let mut actor = Actor { settings, store, seats };
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = cancel.cancelled() => break,
                cmd = rx.recv() => match cmd {
                    Some(cmd) => actor.handle(cmd),
                    None => break,
                },
            }
        }
    });
    ConferenceHandle { tx }
}

impl Actor {
    fn handle(&mut self, cmd: Command) {
        match cmd {
            Command::Join { site, session, outbox, reply } => {
                let seat = &mut self.seats[site];
                let previous = seat.holder.replace(Holder { session, outbox });
                let name = &self.settings.sites[site].name;
                let replaced_previous = if let Some(old) = previous {
                    info!(site = %self.settings.sites[site].id, %session, "{name} joined again from a new session; the old session is replaced");
                    let _ = old.outbox.try_send(ServerMessage::Replaced {
                        message: "Điểm cầu này vừa được kết nối từ một phiên khác. / This site joined from another session.".into(),
                    });
                    true
                } else {
                    info!(site = %self.settings.sites[site].id, %session, "{name} joined");
                    seat.since_ms = Some(now_ms());
                    false
                };
                let _ = reply.send(Ok(Seat { site, session, replaced_previous }));
                self.log(site, if replaced_previous { "rejoin" } else { "join" }, &session.to_string());
                self.broadcast_state();
            }
            Command::Leave { site, session } => {
                let seat = &mut self.seats[site];
                if seat.holder.as_ref().is_some_and(|h| h.session == session) {
                    seat.holder = None;
                    seat.since_ms = Some(now_ms());
                    info!(site = %self.settings.sites[site].id, %session, "{} left", self.settings.sites[site].name);
                    self.log(site, "leave", &session.to_string());
                    self.broadcast_state();
                }
            }
            Command::Presence { reply } => {
                let _ = reply.send(self.presence());
            }
        }
    }

    fn presence(&self) -> Vec<SitePresence> {
        self.settings
            .sites
            .iter()
            .zip(&self.seats)
            .map(|(s, seat)| SitePresence {
                id: s.id.clone(),
                name: s.name.clone(),
                role: s.role,
                present: seat.holder.is_some(),
                since_ms: seat.since_ms,
            })
            .collect()
    }

    /// Pushes the presence list to every session. A full outbox loses this copy only: the
    /// next change sends the whole state again.
    fn broadcast_state(&self) {
        let msg = ServerMessage::State { sites: self.presence() };
        for (i, seat) in self.seats.iter().enumerate() {
            if let Some(h) = &seat.holder {
                if h.outbox.try_send(msg.clone()).is_err() {
                    warn!(site = %self.settings.sites[i].id, "signalling outbox full; state update skipped");
                }
            }
        }
    }

    /// Event log writes go to a blocking thread: the actor never waits on the disk.
    fn log(&self, site: usize, kind: &'static str, detail: &str) {
        let store = self.store.clone();
        let site_id = self.settings.sites[site].id.clone();
        let detail = detail.to_string();
        tokio::task::spawn_blocking(move || {
            if let Err(e) = store.log_event(Some(&site_id), kind, &detail) {
                warn!("event log write failed: {e}");
            }
        });
    }
}
