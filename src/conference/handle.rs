//! The cheap, clonable API to the conference actor.

use crate::signal::protocol::{ServerMessage, SitePresence};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

pub(super) enum Command {
    Join { site: usize, session: Uuid, outbox: mpsc::Sender<ServerMessage>, reply: oneshot::Sender<Result<Seat, JoinRefused>> },
    Leave { site: usize, session: Uuid },
    Presence { reply: oneshot::Sender<Vec<SitePresence>> },
}

/// A granted seat.
#[derive(Debug, Clone)]
pub struct Seat {
    pub site: usize,
    pub session: Uuid,
    /// True if this join took the seat from an earlier session.
    pub replaced_previous: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JoinRefused {
    #[error("the conference is not running")]
    Stopped,
}

#[derive(Clone)]
pub struct ConferenceHandle {
    pub(super) tx: mpsc::Sender<Command>,
}

impl ConferenceHandle {
    /// Takes `site`'s seat for `session`. An earlier holder is sent `replaced`.
    pub async fn join(&self, site: usize, session: Uuid, outbox: mpsc::Sender<ServerMessage>) -> Result<Seat, JoinRefused> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(Command::Join { site, session, outbox, reply }).await.map_err(|_| JoinRefused::Stopped)?;
        rx.await.map_err(|_| JoinRefused::Stopped)?
    }

    /// Gives up the seat, if `session` still holds it.
    pub async fn leave(&self, site: usize, session: Uuid) {
        let _ = self.tx.send(Command::Leave { site, session }).await;
    }

    /// Every configured site with its presence.
    pub async fn presence(&self) -> Vec<SitePresence> {
        let (reply, rx) = oneshot::channel();
        if self.tx.send(Command::Presence { reply }).await.is_err() {
            return Vec::new();
        }
        rx.await.unwrap_or_default()
    }
}
