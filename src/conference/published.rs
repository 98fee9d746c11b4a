//! What the conference tells the pages, in its own terms: sites by index, and the floor,
//! programme, votes and notices as the conference keeps them. It never writes the wire's
//! messages itself: `signal::render` turns each of these into one, serialised once for every
//! page that gets it.

use super::notice::{HelpRequest, Notice};
use super::vote::Vote;
use crate::domain::{AgendaItem, Layout};
use crate::floor::{FloorEvent, Holder, QueueEntry};

/// The whole conference as every page shows it.
#[derive(Debug, Clone)]
pub(crate) struct Snapshot {
    /// When it was taken (Unix ms): pages correct their clocks by it.
    pub(crate) now_ms: i64,
    /// Per site, in the configuration's order.
    pub(crate) seats: Vec<SeatSnapshot>,
    pub(crate) holders: Vec<Holder>,
    pub(crate) queue: Vec<QueueEntry>,
    pub(crate) layout: Layout,
    pub(crate) locked: bool,
    /// The site whose content every page shows.
    pub(crate) sharing: Option<usize>,
    /// The conference being held: its id and start (Unix ms).
    pub(crate) meeting: Option<(i64, i64)>,
    pub(crate) recording: Option<Recording>,
    pub(crate) agenda: Vec<AgendaItem>,
    pub(crate) current: Option<CurrentItem>,
    /// The open vote, or the last one closed.
    pub(crate) vote: Option<Vote>,
    /// The latest notices.
    pub(crate) notices: Vec<Notice>,
}

/// One site's seat: presence, mutes, and what it asked of the secretariat.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct SeatSnapshot {
    pub(crate) present: bool,
    /// Unix ms of the current join, or of the last leave.
    pub(crate) since_ms: Option<i64>,
    pub(crate) audio_muted: bool,
    pub(crate) video_muted: bool,
    /// Muted by the chair: the site cannot unmute itself.
    pub(crate) hard_muted: bool,
    /// Gone, its seat held for a reconnection until `held_until_ms`.
    pub(crate) reconnecting: bool,
    pub(crate) held_until_ms: Option<i64>,
    /// Knocking at a locked conference.
    pub(crate) waiting: bool,
    pub(crate) help: Option<HelpRequest>,
}

/// A recording running, or one that failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Recording {
    pub(crate) failed: bool,
    pub(crate) started_ms: i64,
    pub(crate) error: Option<String>,
}

/// The programme item running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CurrentItem {
    pub(crate) index: usize,
    pub(crate) started_ms: i64,
    pub(crate) planned_ms: i64,
    /// A speech whose site is not connected.
    pub(crate) speaker_absent: bool,
}

/// Something every present page is told.
#[derive(Debug, Clone)]
pub(crate) enum Published {
    State(Box<Snapshot>),
    /// Who is speaking, and how loud each heard site is (0–1).
    Speaking {
        active: Option<usize>,
        levels: Vec<(usize, f32)>,
    },
    /// A floor request's step (requested, granted, …).
    Floor(FloorEvent),
    /// The bridge is about to restart.
    Restarting,
}

/// What one page's output slots carry: sites by index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PageView {
    pub(crate) video: Vec<Option<usize>>,
    pub(crate) audio: Vec<Option<usize>>,
    pub(crate) content: Option<usize>,
    pub(crate) page: usize,
    pub(crate) pages: usize,
    /// Cameras held back for the site's downlink.
    pub(crate) paused: Vec<usize>,
}

/// Why a page's session ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Farewell {
    /// The site's credentials were revoked; why.
    Revoked(String),
    /// The site joined again from another session.
    Replaced,
    /// A technician reset the session; the page rejoins at once.
    Dropped,
}

/// What a technician has the bridge tell one site's page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Order {
    /// Restart ICE: the page renegotiates on a fresh path.
    RestartIce,
    /// End the session ([`Farewell::Dropped`]); the seat is held for the page's return.
    Drop,
}
