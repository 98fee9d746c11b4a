//! The cheap, clonable API to the conference actor.

use super::notice::NoticeError;
use super::published::{Order, SeatSnapshot};
use super::vote::VoteError;
use crate::domain::{AgendaItem, Layout};
use crate::floor::FloorError;
use crate::recording::RecordError;
use crate::signal::outbox::Outbox;
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

pub(super) enum Command {
    Join {
        site: usize,
        session: Uuid,
        resume: Option<String>,
        outbox: Outbox,
        reply: oneshot::Sender<Result<Seat, JoinRefused>>,
    },
    Leave {
        site: usize,
        session: Uuid,
        lost: bool,
    },
    Shutdown {
        reply: oneshot::Sender<()>,
    },
    Act {
        site: usize,
        session: Uuid,
        action: Action,
        reply: oneshot::Sender<Result<(), Refused>>,
    },
    Presence {
        reply: oneshot::Sender<Vec<SeatSnapshot>>,
    },
    /// A technician's order to the session holding `site`'s seat.
    Order {
        site: usize,
        order: Order,
        reply: oneshot::Sender<bool>,
    },
    /// The site's credentials were revoked: its session is told why and its seat released
    /// (not held: the old key cannot come back).
    Evict {
        site: usize,
        message: String,
    },
    /// A page's report of the worst video loss it receives (percent).
    LinkQuality {
        site: usize,
        loss_percent: f64,
    },
    /// The bridge's estimate of how much the site's downlink takes (bit/s), and its
    /// loss-based half; whether the line loses packets at random.
    LinkEstimate {
        site: usize,
        bps: f64,
        loss_bps: f64,
        lossy: bool,
    },
    /// A technician's written notice to one site (or every site); its id.
    TechNotice {
        to: Option<usize>,
        text: String,
        reply: oneshot::Sender<Result<u64, Refused>>,
    },
    /// A technician handled the site's help request; false if there was none.
    HelpDone {
        site: usize,
        reply: oneshot::Sender<bool>,
    },
}

/// What a joined site asks the conference to do. Who may do what is decided by the actor.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Mute {
        audio: Option<bool>,
        video: Option<bool>,
    },
    RequestFloor {
        topic: Option<String>,
    },
    CancelFloor,
    ReleaseFloor,
    GrantFloor {
        request: u64,
    },
    DenyFloor {
        request: u64,
    },
    GiveFloor {
        site: String,
    },
    RevokeFloor {
        site: String,
    },
    MuteSite {
        site: String,
        muted: bool,
    },
    MuteAll {
        muted: bool,
    },
    SetLayout {
        layout: Layout,
    },
    /// Chair: the programme, each item's site by its id (the conference resolves it).
    SetAgenda {
        items: Vec<AgendaItem<String>>,
    },
    NextItem,
    Lock {
        locked: bool,
    },
    /// Chair: let a site waiting at the locked conference in.
    Admit {
        site: String,
    },
    /// Chair: start / end the recorded conference.
    StartConference,
    EndConference,
    /// Show another page of thumbnails.
    ViewPage {
        page: usize,
    },
    /// Chair: start / stop recording.
    StartRecording,
    StopRecording,
    /// Who attends at this bridge point.
    Attendance {
        attendees: String,
        headcount: Option<i64>,
    },
    /// Start sharing content (the chair or the floor holder).
    ShareStart,
    ShareStop,
    /// Chair: open a vote; every site: enter its counts; chair: close it.
    OpenVote {
        question: String,
        options: Option<Vec<String>>,
    },
    VoteCounts {
        vote: u64,
        counts: Vec<u32>,
    },
    CloseVote,
    /// Chair: a written notice to one site or all.
    SendNotice {
        site: Option<String>,
        text: String,
    },
    AckNotice {
        notice: u64,
    },
    /// Ask the technicians for help.
    AskHelp {
        text: String,
    },
}

/// A granted seat.
#[derive(Debug, Clone)]
pub struct Seat {
    /// True if this join took the seat from an earlier session.
    pub(crate) replaced_previous: bool,
    /// True if this join resumed a seat held after a lost connection.
    pub(crate) resumed: bool,
    /// The token to present when resuming next time.
    pub(crate) resume: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JoinRefused {
    #[error("the conference is not running")]
    Stopped,
    #[error("the chair has locked the conference; no new sites may join")]
    Locked,
}

/// An action the conference refused; nothing changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub(crate) reason: Reason,
    pub(crate) message: String,
}

/// Why the conference refused, in its own terms; `signal` names each on the wire
/// (`From<&Reason> for ErrorCode`, one list).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Reason {
    /// The conference is not running (shutting down).
    Stopped,
    /// The conference could not do it (say, create the recording's folder).
    Failed,
    SiteUnknown,
    /// The session no longer holds its site's seat.
    NotJoined,
    NotChair,
    /// The chair muted the site; it cannot unmute itself.
    HardMuted,
    /// The action cannot apply to the site named (the chair's own).
    InvalidTarget,
    /// Only the chair or the floor holder may do this.
    NotHolder,
    /// The chair has not started the conference.
    NoConference,
    /// A programme item names an unknown site.
    InvalidAgenda,
    Floor(FloorError),
    Vote(VoteError),
    Notice(NoticeError),
    Recording(RecordError),
}

impl Refused {
    pub(crate) fn new(reason: Reason, message: impl Into<String>) -> Self {
        Refused { reason, message: message.into() }
    }

    /// A refusal by the floor, a vote, a notice or the recorder, in its own words.
    pub(crate) fn of<E: Into<Reason> + std::fmt::Display>(e: E) -> Self {
        let message = e.to_string();
        Refused { reason: e.into(), message }
    }

    pub(crate) fn stopped() -> Self {
        Refused::new(Reason::Stopped, "the conference is not running")
    }
}

impl From<FloorError> for Reason {
    fn from(e: FloorError) -> Self {
        Reason::Floor(e)
    }
}

impl From<VoteError> for Reason {
    fn from(e: VoteError) -> Self {
        Reason::Vote(e)
    }
}

impl From<NoticeError> for Reason {
    fn from(e: NoticeError) -> Self {
        Reason::Notice(e)
    }
}

impl From<RecordError> for Reason {
    fn from(e: RecordError) -> Self {
        Reason::Recording(e)
    }
}

/// What the health monitor needs to know of a site from the conference.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SiteView {
    pub(crate) present: bool,
    /// Not muted (own or chair's mute): its audio should flow.
    pub(crate) audio_expected: bool,
    /// Camera on.
    pub(crate) video_expected: bool,
    pub(crate) holds_floor: bool,
    /// Its connection dropped and its seat is held until then (Unix ms), for /tech.
    pub(crate) held_until_ms: Option<i64>,
    /// What this site receives of each camera, and why not more, for /tech.
    pub(crate) receiving: Receiving,
}

/// The cameras one site receives: per site shown, its layer and the highest temporal layer of
/// it sent (`None`: paused, its line cannot take even the least of it), and what limited them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Receiving {
    pub(crate) cameras: Vec<(usize, Option<(crate::media::Layer, u8)>)>,
    /// `estimate` (the downlink estimate), `loss` (the page reported heavy loss) or `None`:
    /// every camera at the layer its tile wants.
    pub(crate) limited_by: Option<&'static str>,
    /// Its audio goes without its redundancy: the line is tight and loses nothing at random.
    pub(crate) audio_plain: bool,
}

#[derive(Clone)]
pub struct ConferenceHandle {
    pub(super) tx: mpsc::Sender<Command>,
    pub(super) view: tokio::sync::watch::Receiver<std::sync::Arc<Vec<SiteView>>>,
}

impl ConferenceHandle {
    /// Takes `site`'s seat for `session`. An earlier holder is sent `replaced`.
    pub async fn join(&self, site: usize, session: Uuid, resume: Option<String>, outbox: Outbox) -> Result<Seat, JoinRefused> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(Command::Join { site, session, resume, outbox, reply }).await.map_err(|_| JoinRefused::Stopped)?;
        rx.await.map_err(|_| JoinRefused::Stopped)?
    }

    /// Gives up the seat, if `session` still holds it. `lost`: the connection dropped (the
    /// seat is held for the grace period) rather than the site leaving.
    pub(crate) async fn leave(&self, site: usize, session: Uuid, lost: bool) {
        let _ = self.tx.send(Command::Leave { site, session, lost }).await;
    }

    /// Tells every page the server is restarting and saves the state; for SIGTERM.
    pub(crate) async fn shutdown(&self) {
        let (reply, rx) = oneshot::channel();
        if self.tx.send(Command::Shutdown { reply }).await.is_ok() {
            let _ = rx.await;
        }
    }

    /// Asks the conference to do something on behalf of `site` (held by `session`).
    pub async fn act(&self, site: usize, session: Uuid, action: Action) -> Result<(), Refused> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(Command::Act { site, session, action, reply }).await.map_err(|_| Refused::stopped())?;
        rx.await.map_err(|_| Refused::stopped())?
    }

    /// A live view of presence, mutes and floor, for the health monitor.
    pub(crate) fn view(&self) -> tokio::sync::watch::Receiver<std::sync::Arc<Vec<SiteView>>> {
        self.view.clone()
    }

    /// Gives a technician's `order` to the site's current session; false if the site is not
    /// present.
    pub(crate) async fn order(&self, site: usize, order: Order) -> bool {
        let (reply, rx) = oneshot::channel();
        if self.tx.send(Command::Order { site, order, reply }).await.is_err() {
            return false;
        }
        rx.await.unwrap_or(false)
    }

    /// What a site's downlink loses of its video, from its page's report or its RTCP
    /// (dropped if the actor is busy: reports repeat).
    pub(crate) fn link_quality(&self, site: usize, loss_percent: f64) {
        let _ = self.tx.try_send(Command::LinkQuality { site, loss_percent });
    }

    /// The site's downlink estimate (dropped if the conference is behind: it comes again).
    pub(crate) fn link_estimate(&self, site: usize, bps: f64, loss_bps: f64, lossy: bool) {
        let _ = self.tx.try_send(Command::LinkEstimate { site, bps, loss_bps, lossy });
    }

    /// Ends the site's session and releases its seat: its key was re-issued.
    pub(crate) async fn evict(&self, site: usize, message: String) {
        let _ = self.tx.send(Command::Evict { site, message }).await;
    }

    /// A technician's written notice to `to` (or every site); its id.
    pub(crate) async fn tech_notice(&self, to: Option<usize>, text: String) -> Result<u64, Refused> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(Command::TechNotice { to, text, reply }).await.map_err(|_| Refused::stopped())?;
        rx.await.map_err(|_| Refused::stopped())?
    }

    /// A technician marks the site's help request handled; false if there was none.
    pub(crate) async fn help_done(&self, site: usize) -> bool {
        let (reply, rx) = oneshot::channel();
        if self.tx.send(Command::HelpDone { site, reply }).await.is_err() {
            return false;
        }
        rx.await.unwrap_or(false)
    }

    /// Every configured site's seat, in the configuration's order.
    pub(crate) async fn presence(&self) -> Vec<SeatSnapshot> {
        let (reply, rx) = oneshot::channel();
        if self.tx.send(Command::Presence { reply }).await.is_err() {
            return Vec::new();
        }
        rx.await.unwrap_or_default()
    }
}
