//! Signalling messages, exactly as `docs/protocol.md` describes them.
//!
//! Every message is a JSON object with a `type` field. Client input is parsed in two steps so
//! that each way of being wrong gets its own stable error code: not JSON (`bad_json`), no
//! known `type` (`unknown_type`), right type but wrong fields (`invalid_message`).

use serde::{Deserialize, Serialize};
use std::sync::Arc;

// The meeting's own enums go on the wire as they are: their serde names are the protocol's.
pub use crate::domain::{AgendaKind, Layout, SiteRole};

/// Largest client message accepted, in bytes; larger ones get `too_large` and are discarded.
pub(crate) const MAX_MESSAGE_BYTES: usize = 64 * 1024;

/// Messages a client sends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
// Variants without fields are written `V {}`: serde ignores unknown fields on unit variants
// even with `deny_unknown_fields`, and a typo must never pass silently.
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientMessage {
    /// Take the seat of `site`, proving it with a join ticket from `POST /api/session`.
    Join {
        site: String,
        ticket: String,
        /// The `resume` token of this page's previous `joined`, when rejoining after a lost
        /// connection: the seat is resumed (a `reconnect`, not a new join).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        resume: Option<String>,
    },
    /// An SDP offer from the browser (its first negotiation, or an ICE restart).
    Offer { sdp: String },
    /// The browser's answer to a server offer.
    Answer { sdp: String },
    /// A trickled ICE candidate from the browser.
    Candidate { candidate: IceCandidate },
    /// Leave the conference; the server closes the socket.
    Leave {},
    /// Keep-alive; answered with `pong`.
    Ping {},
    /// Mute or unmute this site's own microphone and/or camera (absent = unchanged).
    Mute {
        #[serde(default)]
        audio: Option<bool>,
        #[serde(default)]
        video: Option<bool>,
    },
    /// Ask for the floor, optionally saying about what.
    RequestFloor {
        #[serde(default)]
        topic: Option<String>,
    },
    /// Withdraw this site's pending floor request.
    CancelFloor {},
    /// Give the floor back (the holder).
    ReleaseFloor {},
    /// Chair: grant a pending request.
    GrantFloor { request: u64 },
    /// Chair: deny a pending request.
    DenyFloor { request: u64 },
    /// Chair: give the floor to a site directly (unmute, stage, timer, in one step).
    GiveFloor { site: String },
    /// Chair: take the floor back from a site.
    RevokeFloor { site: String },
    /// Chair: hard-mute (or release) one ward site.
    MuteSite { site: String, muted: bool },
    /// Chair: hard-mute (or release) every site except the chair's.
    MuteAll { muted: bool },
    /// Chair: the layout every site follows.
    SetLayout { layout: Layout },
    /// Chair: replace the programme.
    SetAgenda { items: Vec<AgendaItemSpec> },
    /// Chair: end the current programme item and start the next.
    NextItem {},
    /// Chair: lock (no new joins) or open the conference.
    Lock { locked: bool },
    /// Chair: let a site that is waiting at a locked conference in.
    Admit { site: String },
    /// Start sharing content: `track` is the msid track id of the browser's content track
    /// (its `MediaStreamTrack.id`). The chair or the floor holder only.
    ShareStart { track: String },
    /// Stop sharing content.
    ShareStop {},
    /// The page's own view of its link, every few seconds (from the browser's `getStats()`).
    Stats { report: ClientReport },
    /// Chair: start the recorded conference (its minutes begin now).
    StartConference {},
    /// Chair: end the recorded conference.
    EndConference {},
    /// Show another page of thumbnails (large meetings: see `view.pages`).
    ViewPage { page: usize },
    /// Chair: start recording every site's audio and video.
    StartRecording {},
    /// Chair: stop recording (or acknowledge a recording that failed).
    StopRecording {},
    /// Who attends at this bridge point (names or units, and/or a headcount).
    Attendance {
        #[serde(default)]
        attendees: String,
        #[serde(default)]
        headcount: Option<i64>,
    },
    /// Chair: open a vote ("biểu quyết"); `options` default to "Tán thành / Không tán thành /
    /// Ý kiến khác".
    OpenVote {
        question: String,
        #[serde(default)]
        options: Option<Vec<String>>,
    },
    /// This bridge point's counts for the open vote `vote`, one per option (a correction
    /// replaces them); they may not add up to more than its headcount.
    VoteCounts { vote: u64, counts: Vec<u32> },
    /// Chair: close the open vote; its result stays shown until the next one opens.
    CloseVote {},
    /// Chair: a short written notice to one site (`site`) or every site (absent).
    SendNotice {
        #[serde(default)]
        site: Option<String>,
        text: String,
    },
    /// Someone at this site read notice `notice`.
    AckNotice { notice: u64 },
    /// Ask the technicians for help (`text`: what is wrong, may be empty).
    AskHelp {
        #[serde(default)]
        text: String,
    },
}

/// A page's summary of what it receives, for technicians.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientReport {
    /// Round-trip time of the selected ICE candidate pair, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) rtt_ms: Option<f64>,
    /// How the page is connected: `host`, `srflx`, `prflx` or `relay` (its local candidate).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) candidate: Option<String>,
    /// Per sending site id: what arrives from it.
    #[serde(default)]
    pub(crate) received: std::collections::BTreeMap<String, ReceivedReport>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReceivedReport {
    #[serde(default)]
    pub(crate) audio_pps: f64,
    #[serde(default)]
    pub(crate) video_fps: f64,
    #[serde(default)]
    pub(crate) loss_percent: f64,
    #[serde(default)]
    pub(crate) jitter_ms: f64,
}

impl ClientMessage {
    pub const TYPES: &'static [&'static str] = &[
        "join",
        "offer",
        "answer",
        "candidate",
        "leave",
        "ping",
        "mute",
        "request_floor",
        "cancel_floor",
        "release_floor",
        "grant_floor",
        "deny_floor",
        "give_floor",
        "revoke_floor",
        "mute_site",
        "mute_all",
        "set_layout",
        "set_agenda",
        "next_item",
        "lock",
        "admit",
        "share_start",
        "share_stop",
        "stats",
        "start_conference",
        "end_conference",
        "attendance",
        "start_recording",
        "stop_recording",
        "view_page",
        "open_vote",
        "vote_counts",
        "close_vote",
        "send_notice",
        "ack_notice",
        "ask_help",
    ];

    /// The `type` tag, for error replies and logs.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            ClientMessage::Join { .. } => "join",
            ClientMessage::Offer { .. } => "offer",
            ClientMessage::Answer { .. } => "answer",
            ClientMessage::Candidate { .. } => "candidate",
            ClientMessage::Leave {} => "leave",
            ClientMessage::Ping {} => "ping",
            ClientMessage::Mute { .. } => "mute",
            ClientMessage::RequestFloor { .. } => "request_floor",
            ClientMessage::CancelFloor {} => "cancel_floor",
            ClientMessage::ReleaseFloor {} => "release_floor",
            ClientMessage::GrantFloor { .. } => "grant_floor",
            ClientMessage::DenyFloor { .. } => "deny_floor",
            ClientMessage::GiveFloor { .. } => "give_floor",
            ClientMessage::RevokeFloor { .. } => "revoke_floor",
            ClientMessage::MuteSite { .. } => "mute_site",
            ClientMessage::MuteAll { .. } => "mute_all",
            ClientMessage::SetLayout { .. } => "set_layout",
            ClientMessage::SetAgenda { .. } => "set_agenda",
            ClientMessage::NextItem {} => "next_item",
            ClientMessage::Lock { .. } => "lock",
            ClientMessage::Admit { .. } => "admit",
            ClientMessage::ShareStart { .. } => "share_start",
            ClientMessage::ShareStop {} => "share_stop",
            ClientMessage::Stats { .. } => "stats",
            ClientMessage::StartConference {} => "start_conference",
            ClientMessage::EndConference {} => "end_conference",
            ClientMessage::Attendance { .. } => "attendance",
            ClientMessage::StartRecording {} => "start_recording",
            ClientMessage::StopRecording {} => "stop_recording",
            ClientMessage::ViewPage { .. } => "view_page",
            ClientMessage::OpenVote { .. } => "open_vote",
            ClientMessage::VoteCounts { .. } => "vote_counts",
            ClientMessage::CloseVote {} => "close_vote",
            ClientMessage::SendNotice { .. } => "send_notice",
            ClientMessage::AckNotice { .. } => "ack_notice",
            ClientMessage::AskHelp { .. } => "ask_help",
        }
    }
}

/// A programme item as sent and shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgendaItemSpec {
    pub title: String,
    pub kind: AgendaKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site: Option<String>,
    pub planned_minutes: u32,
}

impl From<AgendaItemSpec> for crate::domain::AgendaItem<String> {
    fn from(i: AgendaItemSpec) -> Self {
        crate::domain::AgendaItem { title: i.title, kind: i.kind, site: i.site, planned_minutes: i.planned_minutes }
    }
}

/// An ICE candidate in the browser's `RTCIceCandidateInit` shape: the four fields of
/// `RTCIceCandidate.toJSON()` and nothing else, so a typo or an extra field is refused like
/// anywhere else in a message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IceCandidate {
    pub(crate) candidate: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) sdp_mid: Option<String>,
    #[serde(default, rename = "sdpMLineIndex", skip_serializing_if = "Option::is_none")]
    pub(crate) sdp_m_line_index: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) username_fragment: Option<String>,
}

/// Messages the server sends.
// The whole state is the large variant; a message is built once, serialised, and dropped
// (a state goes to every page as one shared text), so its size is never copied per page.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    /// The join succeeded: this socket now holds the site's seat.
    Joined {
        session: String,
        site: SiteInfo,
        conference: ConferenceInfo,
        ice_servers: Vec<IceServer>,
        /// Send this back in `join.resume` when reconnecting after a lost connection.
        resume: String,
        /// True when this join resumed a held seat (its floor, queue place and mutes kept).
        resumed: bool,
    },
    /// The whole conference state; sent after `joined` and after every change.
    State {
        sites: Vec<SitePresence>,
        floor: FloorView,
        layout: Layout,
        locked: bool,
        /// The site whose shared content (slides, screen) everyone shows large.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sharing: Option<String>,
        /// The recorded conference running now, once the chair started it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        meeting: Option<MeetingView>,
        /// Recording, while it runs or after it failed (every page shows an indicator).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        recording: Option<RecordingView>,
        agenda: AgendaView,
        /// The open vote, or the last one closed (until the next opens).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        vote: Option<VoteView>,
        /// The latest written notices (each page shows those for it until acknowledged).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        notices: Vec<NoticeView>,
        /// The server's clock (Unix ms) when this was sent, so pages can run timers.
        server_now_ms: i64,
    },
    /// Something happened to a floor request (sent to every site).
    Floor {
        event: FloorEventKind,
        request: u64,
        site: String,
    },
    /// Which site each of this page's output slots carries (stream ids `v<i>`, `a<i>`,
    /// `c0`); sent after `joined` and whenever it changes.
    View {
        video: Vec<Option<String>>,
        audio: Vec<Option<String>>,
        content: Option<String>,
        /// The page of thumbnails shown (0-based) and how many there are.
        page: usize,
        pages: usize,
        /// Sites whose camera this page's line cannot take now (the bridge's downlink
        /// estimate): their tiles say so; their audio still comes.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        paused: Vec<String>,
    },
    /// Who is speaking, from the audio levels (twice a second, and at once on a change).
    Speaking {
        active: Option<String>,
        levels: Vec<SiteLevel>,
    },
    /// A server offer (renegotiation: a new site's media to receive).
    Offer {
        sdp: String,
    },
    /// The server's answer to the browser's offer.
    Answer {
        sdp: String,
    },
    /// A trickled ICE candidate of the server.
    Candidate {
        candidate: IceCandidate,
    },
    /// The server side of this site's media connection changed state.
    Media {
        state: MediaState,
    },
    /// A newer join took this site's seat; the server closes this socket next.
    Replaced {
        message: String,
    },
    /// A technician dropped this session; the server closes the socket next and the page
    /// should join again.
    Dropped {
        message: String,
    },
    /// The site's key was re-issued: this session ends and must not rejoin with the old key.
    Revoked {
        message: String,
    },
    /// A technician asks the page to restart ICE (a new offer with `iceRestart`).
    RestartIce {},
    /// The server is shutting down (for a restart); the page reconnects by itself.
    Restarting {
        message: String,
    },
    /// Something the client sent was refused; nothing changed because of it.
    Error {
        code: ErrorCode,
        message: String,
        /// The `type` of the refused message, when it could be read.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        request: Option<String>,
    },
    Pong,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiteInfo {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) role: SiteRole,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConferenceInfo {
    pub(crate) title: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IceServer {
    pub(crate) urls: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) credential: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SitePresence {
    pub id: String,
    pub(crate) name: String,
    pub role: SiteRole,
    pub present: bool,
    /// Unix milliseconds of the current join (present) or last leave (absent); absent if never.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) since_ms: Option<i64>,
    /// The site muted its own microphone / camera.
    #[serde(default)]
    pub(crate) audio_muted: bool,
    #[serde(default)]
    pub(crate) video_muted: bool,
    /// The chair muted this site; it cannot unmute itself.
    #[serde(default)]
    pub(crate) hard_muted: bool,
    /// The site lost its connection and its seat is held for it (it is reconnecting).
    #[serde(default)]
    pub(crate) reconnecting: bool,
    /// While reconnecting: until when (Unix ms) its seat, floor and queue place are held.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) held_until_ms: Option<i64>,
    /// The conference is locked and this site, which is not admitted, asked to join: the
    /// chair may let it in (`admit`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(crate) waiting: bool,
    /// The site asked the technicians for help and no technician has marked it handled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) help: Option<HelpView>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct HelpView {
    pub(crate) since_ms: i64,
    pub(crate) text: String,
}

/// A vote as every page shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VoteView {
    pub(crate) id: u64,
    pub(crate) question: String,
    pub(crate) options: Vec<String>,
    pub(crate) open: bool,
    pub(crate) opened_ms: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) closed_ms: Option<i64>,
    /// The sites that entered counts, in the configured order.
    pub(crate) tallies: Vec<TallyView>,
    /// Per option, every site's counts added up.
    pub(crate) totals: Vec<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct TallyView {
    pub(crate) site: String,
    pub(crate) counts: Vec<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoticeView {
    pub(crate) id: u64,
    pub(crate) from: crate::conference::notice::Sender,
    /// The site it is for; absent: every site.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) to: Option<String>,
    pub(crate) text: String,
    pub(crate) sent_ms: i64,
    /// Sites that acknowledged it.
    pub(crate) acked: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MeetingView {
    pub(crate) id: i64,
    pub(crate) started_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordingView {
    /// `recording` or `failed`.
    pub(crate) state: String,
    pub(crate) started_ms: i64,
    /// Why the recording stopped, when it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) error: Option<String>,
}

/// A site's recent loudness, 0.0 (silent) to 1.0.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SiteLevel {
    pub(crate) site: String,
    pub(crate) level: f32,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct FloorView {
    pub holders: Vec<FloorHolderView>,
    pub queue: Vec<QueueEntryView>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FloorHolderView {
    pub site: String,
    pub(crate) request: u64,
    pub(crate) since_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueEntryView {
    pub position: usize,
    pub(crate) request: u64,
    pub site: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) topic: Option<String>,
    pub(crate) since_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct AgendaView {
    pub(crate) items: Vec<AgendaItemSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) current: Option<CurrentItemView>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct CurrentItemView {
    pub(crate) index: usize,
    pub(crate) started_ms: i64,
    pub(crate) planned_ms: i64,
    /// A speech whose site is not connected: nobody holds the floor for it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(crate) speaker_absent: bool,
}

/// A floor request's step, as the floor keeps it (its serde names are the protocol's).
pub use crate::floor::RequestStep as FloorEventKind;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MediaState {
    Connecting,
    Connected,
    Disconnected,
    Failed,
    Closed,
}

/// Stable error codes; `docs/protocol.md` lists each with its meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    BadJson,
    UnknownType,
    InvalidMessage,
    TooLarge,
    NotJoined,
    AlreadyJoined,
    SiteUnknown,
    BadKey,
    SdpInvalid,
    CodecUnsupported,
    BadCandidate,
    NegotiationFailed,
    Internal,
    NotChair,
    ConferenceLocked,
    HardMuted,
    InvalidTarget,
    ChairNeedsNoRequest,
    AlreadyQueued,
    AlreadyHolds,
    TopicTooLong,
    NoPendingRequest,
    UnknownRequest,
    NotPending,
    SiteAbsent,
    NotHolder,
    InvalidAgenda,
    AgendaFinished,
    NoConference,
    RecordingActive,
    RecordingNoSpace,
    RecordingFailed,
    VoteNotOpen,
    VoteOpen,
    InvalidVote,
    OverHeadcount,
    HeadcountNeeded,
    InvalidNotice,
    UnknownNotice,
    TokenInvalid,
    TokenExpired,
    TicketReplayed,
    Forbidden,
    TooManyJoins,
    TooManySockets,
    RateLimited,
    Busy,
}

impl From<crate::auth::AuthError> for ErrorCode {
    fn from(e: crate::auth::AuthError) -> Self {
        use crate::auth::AuthError as A;
        match e {
            A::SiteUnknown => ErrorCode::SiteUnknown,
            A::BadKey | A::BadCredentials => ErrorCode::BadKey,
            A::NoToken | A::TokenInvalid => ErrorCode::TokenInvalid,
            A::TokenExpired => ErrorCode::TokenExpired,
            A::TicketReplayed => ErrorCode::TicketReplayed,
            A::Forbidden => ErrorCode::Forbidden,
            A::TooManyJoins => ErrorCode::TooManyJoins,
            A::TooManySockets => ErrorCode::TooManySockets,
            A::Busy => ErrorCode::Busy,
        }
    }
}

// What the conference and its parts refuse, as the wire names it: one list per error type.

impl From<&crate::conference::Refused> for ErrorCode {
    fn from(r: &crate::conference::Refused) -> Self {
        (&r.reason).into()
    }
}

impl From<&crate::conference::Reason> for ErrorCode {
    fn from(r: &crate::conference::Reason) -> Self {
        use crate::conference::Reason as R;
        match r {
            R::Stopped | R::Failed => ErrorCode::Internal,
            R::SiteUnknown => ErrorCode::SiteUnknown,
            R::NotJoined => ErrorCode::NotJoined,
            R::NotChair => ErrorCode::NotChair,
            R::HardMuted => ErrorCode::HardMuted,
            R::InvalidTarget => ErrorCode::InvalidTarget,
            R::NotHolder => ErrorCode::NotHolder,
            R::NoConference => ErrorCode::NoConference,
            R::InvalidAgenda => ErrorCode::InvalidAgenda,
            R::Floor(e) => e.into(),
            R::Vote(e) => e.into(),
            R::Notice(e) => e.into(),
            R::Recording(e) => e.into(),
        }
    }
}

impl From<&crate::floor::FloorError> for ErrorCode {
    fn from(e: &crate::floor::FloorError) -> Self {
        use crate::floor::FloorError as F;
        match e {
            F::NotChair => ErrorCode::NotChair,
            F::ChairNeedsNoRequest => ErrorCode::ChairNeedsNoRequest,
            F::AlreadyQueued => ErrorCode::AlreadyQueued,
            F::AlreadyHolds => ErrorCode::AlreadyHolds,
            F::TopicTooLong => ErrorCode::TopicTooLong,
            F::UnknownSite => ErrorCode::SiteUnknown,
            F::NoPendingRequest => ErrorCode::NoPendingRequest,
            F::UnknownRequest => ErrorCode::UnknownRequest,
            F::NotPending => ErrorCode::NotPending,
            F::SiteAbsent => ErrorCode::SiteAbsent,
            F::NotHolder => ErrorCode::NotHolder,
            F::InvalidAgenda(_) => ErrorCode::InvalidAgenda,
            F::AgendaFinished => ErrorCode::AgendaFinished,
        }
    }
}

impl From<&crate::conference::vote::VoteError> for ErrorCode {
    fn from(e: &crate::conference::vote::VoteError) -> Self {
        use crate::conference::vote::VoteError as V;
        match e {
            V::NotOpen | V::WrongVote => ErrorCode::VoteNotOpen,
            V::AlreadyOpen => ErrorCode::VoteOpen,
            V::BadQuestion | V::BadOptions | V::WrongCount { .. } => ErrorCode::InvalidVote,
            V::OverHeadcount { .. } => ErrorCode::OverHeadcount,
            V::HeadcountNeeded => ErrorCode::HeadcountNeeded,
        }
    }
}

impl From<&crate::conference::notice::NoticeError> for ErrorCode {
    fn from(e: &crate::conference::notice::NoticeError) -> Self {
        use crate::conference::notice::NoticeError as N;
        match e {
            N::BadText => ErrorCode::InvalidNotice,
            N::Unknown | N::NotForSite => ErrorCode::UnknownNotice,
        }
    }
}

impl From<&crate::recording::RecordError> for ErrorCode {
    fn from(e: &crate::recording::RecordError) -> Self {
        use crate::recording::RecordError as R;
        match e {
            R::AlreadyRecording => ErrorCode::RecordingActive,
            R::NoSpace { .. } => ErrorCode::RecordingNoSpace,
            R::Folder { .. } => ErrorCode::RecordingFailed,
        }
    }
}

impl From<crate::peer::Fault> for ErrorCode {
    fn from(f: crate::peer::Fault) -> Self {
        use crate::peer::Fault as F;
        match f {
            F::TooOften => ErrorCode::RateLimited,
            F::OutOfOrder => ErrorCode::NegotiationFailed,
            F::BadSdp => ErrorCode::SdpInvalid,
            F::BadCandidate => ErrorCode::BadCandidate,
            F::UnsupportedCodec => ErrorCode::CodecUnsupported,
            F::Internal => ErrorCode::Internal,
        }
    }
}

/// The conference's part of a client message: what a joined site asks the conference to do.
/// The rest (joining, negotiation, pings, statistics) is the session's own and comes back as
/// it was. `share_start`'s track id is for the site's peer, which the session tells.
impl TryFrom<ClientMessage> for crate::conference::Action {
    type Error = ClientMessage;

    fn try_from(m: ClientMessage) -> Result<Self, ClientMessage> {
        use crate::conference::Action as A;
        Ok(match m {
            ClientMessage::Mute { audio, video } => A::Mute { audio, video },
            ClientMessage::RequestFloor { topic } => A::RequestFloor { topic },
            ClientMessage::CancelFloor {} => A::CancelFloor,
            ClientMessage::ReleaseFloor {} => A::ReleaseFloor,
            ClientMessage::GrantFloor { request } => A::GrantFloor { request },
            ClientMessage::DenyFloor { request } => A::DenyFloor { request },
            ClientMessage::GiveFloor { site } => A::GiveFloor { site },
            ClientMessage::RevokeFloor { site } => A::RevokeFloor { site },
            ClientMessage::MuteSite { site, muted } => A::MuteSite { site, muted },
            ClientMessage::MuteAll { muted } => A::MuteAll { muted },
            ClientMessage::SetLayout { layout } => A::SetLayout { layout },
            ClientMessage::SetAgenda { items } => A::SetAgenda { items: items.into_iter().map(Into::into).collect() },
            ClientMessage::NextItem {} => A::NextItem,
            ClientMessage::Lock { locked } => A::Lock { locked },
            ClientMessage::Admit { site } => A::Admit { site },
            ClientMessage::ShareStart { .. } => A::ShareStart,
            ClientMessage::ShareStop {} => A::ShareStop,
            ClientMessage::StartConference {} => A::StartConference,
            ClientMessage::EndConference {} => A::EndConference,
            ClientMessage::StartRecording {} => A::StartRecording,
            ClientMessage::StopRecording {} => A::StopRecording,
            ClientMessage::ViewPage { page } => A::ViewPage { page },
            ClientMessage::Attendance { attendees, headcount } => A::Attendance { attendees, headcount },
            ClientMessage::OpenVote { question, options } => A::OpenVote { question, options },
            ClientMessage::VoteCounts { vote, counts } => A::VoteCounts { vote, counts },
            ClientMessage::CloseVote {} => A::CloseVote,
            ClientMessage::SendNotice { site, text } => A::SendNotice { site, text },
            ClientMessage::AckNotice { notice } => A::AckNotice { notice },
            ClientMessage::AskHelp { text } => A::AskHelp { text },
            own @ (ClientMessage::Join { .. }
            | ClientMessage::Offer { .. }
            | ClientMessage::Answer { .. }
            | ClientMessage::Candidate { .. }
            | ClientMessage::Leave {}
            | ClientMessage::Ping {}
            | ClientMessage::Stats { .. }) => return Err(own),
        })
    }
}

/// What the conference puts in a session's outbox: a message for that page, or one written
/// once for every page. The state after each change and the speaking levels go to every site
/// alike; at 126 sites serialising them per page (after a deep copy per page) was 126 times
/// the work for the same text.
#[allow(clippy::large_enum_variant)] // a ServerMessage, moved once into the outbox; see there
#[derive(Debug, Clone)]
pub enum Outgoing {
    Message(ServerMessage),
    /// Serialised once by [`Outgoing::shared`].
    Text(Arc<str>),
}

impl Outgoing {
    /// `msg` as JSON text, to hand to many outboxes.
    pub(crate) fn shared(msg: &ServerMessage) -> Outgoing {
        match serde_json::to_string(msg) {
            Ok(text) => Outgoing::Text(text.into()),
            // Serialising our own types does not fail; if it ever did, each page tries.
            Err(_) => Outgoing::Message(msg.clone()),
        }
    }
}

impl From<ServerMessage> for Outgoing {
    fn from(m: ServerMessage) -> Self {
        Outgoing::Message(m)
    }
}

impl ServerMessage {
    pub(crate) fn error(code: ErrorCode, message: impl Into<String>, request: Option<&str>) -> Self {
        ServerMessage::Error { code, message: message.into(), request: request.map(str::to_string) }
    }
}

/// Client-supplied text as it may appear in a log line: at most 160 characters, control
/// characters escaped (a newline in a field cannot forge a log line), and any run of 20 or
/// more key-like characters (letters, digits, `-`, `_`) replaced by `…`, so a key or token
/// sent in the wrong field never reaches the log.
pub(crate) fn for_log(text: &str) -> String {
    let mut out = String::new();
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        if run.chars().count() >= 20 {
            out.push('…');
        } else {
            out.push_str(run);
        }
        run.clear();
    };
    for c in text.chars() {
        if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
            run.push(c);
            continue;
        }
        flush(&mut run, &mut out);
        out.extend(c.escape_debug());
        if out.chars().count() > 160 {
            break;
        }
    }
    flush(&mut run, &mut out);
    if out.chars().count() > 160 {
        out = out.chars().take(160).collect::<String>() + "…";
    }
    out
}

/// A refused client message: the code and what to tell the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub(crate) code: ErrorCode,
    pub message: String,
    pub(crate) request: Option<String>,
}

impl From<Refusal> for ServerMessage {
    fn from(r: Refusal) -> Self {
        ServerMessage::Error { code: r.code, message: r.message, request: r.request }
    }
}

/// Parses one text frame from a client.
pub fn parse_client(text: &str) -> Result<ClientMessage, Refusal> {
    if text.len() > MAX_MESSAGE_BYTES {
        return Err(Refusal {
            code: ErrorCode::TooLarge,
            message: format!("message of {} bytes is over the {} byte limit", text.len(), MAX_MESSAGE_BYTES),
            request: None,
        });
    }
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| Refusal { code: ErrorCode::BadJson, message: format!("not valid JSON: {e}"), request: None })?;
    let kind = match value.get("type") {
        Some(serde_json::Value::String(t)) => t.clone(),
        Some(_) => return Err(Refusal { code: ErrorCode::InvalidMessage, message: "\"type\" must be a string".into(), request: None }),
        None if value.is_object() => return Err(Refusal { code: ErrorCode::InvalidMessage, message: "message has no \"type\" field".into(), request: None }),
        None => return Err(Refusal { code: ErrorCode::InvalidMessage, message: "message must be a JSON object".into(), request: None }),
    };
    if !ClientMessage::TYPES.contains(&kind.as_str()) {
        return Err(Refusal {
            code: ErrorCode::UnknownType,
            message: format!("unknown message type {kind:?}"),
            request: Some(kind.chars().take(64).collect()),
        });
    }
    serde_json::from_value(value).map_err(|e| Refusal { code: ErrorCode::InvalidMessage, message: format!("invalid {kind} message: {e}"), request: Some(kind) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floor_refusals_carry_the_documented_codes() {
        use crate::floor::FloorError::*;
        let all = [
            (NotChair, "not_chair"),
            (ChairNeedsNoRequest, "chair_needs_no_request"),
            (AlreadyQueued, "already_queued"),
            (AlreadyHolds, "already_holds"),
            (TopicTooLong, "topic_too_long"),
            (UnknownSite, "site_unknown"),
            (NoPendingRequest, "no_pending_request"),
            (UnknownRequest, "unknown_request"),
            (NotPending, "not_pending"),
            (SiteAbsent, "site_absent"),
            (NotHolder, "not_holder"),
            (InvalidAgenda("item 1: empty title".into()), "invalid_agenda"),
            (AgendaFinished, "agenda_finished"),
        ];
        let protocol = include_str!("../../docs/protocol.md");
        for (err, code) in all {
            assert_eq!(serde_json::to_value(ErrorCode::from(&err)).unwrap(), code);
            assert!(protocol.contains(&format!("`{code}`")), "docs/protocol.md lists {code}");
        }
    }

    #[test]
    fn the_conference_s_refusals_carry_the_documented_codes() {
        use crate::conference::Reason::*;
        let all = [
            (Stopped, "internal"),
            (Failed, "internal"),
            (SiteUnknown, "site_unknown"),
            (NotJoined, "not_joined"),
            (NotChair, "not_chair"),
            (HardMuted, "hard_muted"),
            (InvalidTarget, "invalid_target"),
            (NotHolder, "not_holder"),
            (NoConference, "no_conference"),
            (InvalidAgenda, "invalid_agenda"),
            // A part's refusal keeps the part's own code.
            (Floor(crate::floor::FloorError::AlreadyQueued), "already_queued"),
            (Vote(crate::conference::vote::VoteError::HeadcountNeeded), "headcount_needed"),
            (Notice(crate::conference::notice::NoticeError::BadText), "invalid_notice"),
            (Recording(crate::recording::RecordError::AlreadyRecording), "recording_active"),
        ];
        let protocol = include_str!("../../docs/protocol.md");
        for (reason, code) in all {
            assert_eq!(serde_json::to_value(ErrorCode::from(&reason)).unwrap(), code, "{reason:?}");
            assert!(protocol.contains(&format!("`{code}`")), "docs/protocol.md lists {code}");
        }
    }

    #[test]
    fn only_the_session_s_own_messages_are_not_conference_actions() {
        use crate::conference::Action;
        let own = [
            r#"{"type":"ping"}"#,
            r#"{"type":"leave"}"#,
            r#"{"type":"offer","sdp":"v=0"}"#,
            r#"{"type":"stats","report":{}}"#,
            r#"{"type":"join","site":"hq","ticket":"t"}"#,
        ];
        for text in own {
            assert!(Action::try_from(parse_client(text).unwrap()).is_err(), "{text}");
        }
        let share = parse_client(r#"{"type":"share_start","track":"abc"}"#).unwrap();
        assert_eq!(Action::try_from(share), Ok(Action::ShareStart));
        let mute = parse_client(r#"{"type":"mute_site","site":"hang-gai","muted":true}"#).unwrap();
        assert_eq!(Action::try_from(mute), Ok(Action::MuteSite { site: "hang-gai".into(), muted: true }));
    }

    fn round_trip_client(m: ClientMessage) {
        let text = serde_json::to_string(&m).unwrap();
        assert_eq!(parse_client(&text).unwrap(), m, "{text}");
    }

    fn round_trip_server(m: ServerMessage) {
        let text = serde_json::to_string(&m).unwrap();
        let back: ServerMessage = serde_json::from_str(&text).unwrap();
        assert_eq!(back, m, "{text}");
    }

    fn candidate() -> IceCandidate {
        IceCandidate {
            candidate: "candidate:1 1 udp 2130706431 127.0.0.1 50000 typ host".into(),
            sdp_mid: Some("0".into()),
            sdp_m_line_index: Some(0),
            username_fragment: Some("abcd".into()),
        }
    }

    #[test]
    fn client_text_in_a_log_line_is_short_one_line_and_keyless() {
        assert_eq!(for_log("invalid type: \"x\nFORGED\""), "invalid type: \\\"x\\nFORGED\\\"");
        let key = "dcj_Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MA";
        assert_eq!(for_log(&format!("unknown field `key`, value {key}")), "unknown field `key`, value …");
        let long = for_log(&"a b ".repeat(10_000));
        assert!(long.chars().count() <= 161 && long.ends_with('…'), "{long}");
    }

    #[test]
    fn every_client_message_round_trips() {
        round_trip_client(ClientMessage::Join { site: "hang-gai".into(), ticket: "dcj_1".into(), resume: None });
        round_trip_client(ClientMessage::Join { site: "hang-gai".into(), ticket: "dcj_1".into(), resume: Some("r".into()) });
        round_trip_client(ClientMessage::Offer { sdp: "v=0".into() });
        round_trip_client(ClientMessage::Answer { sdp: "v=0".into() });
        round_trip_client(ClientMessage::Candidate { candidate: candidate() });
        round_trip_client(ClientMessage::Leave {});
        round_trip_client(ClientMessage::Ping {});
        round_trip_client(ClientMessage::Mute { audio: Some(true), video: None });
        round_trip_client(ClientMessage::RequestFloor { topic: Some("Báo cáo tình hình".into()) });
        round_trip_client(ClientMessage::CancelFloor {});
        round_trip_client(ClientMessage::ReleaseFloor {});
        round_trip_client(ClientMessage::GrantFloor { request: 3 });
        round_trip_client(ClientMessage::DenyFloor { request: 3 });
        round_trip_client(ClientMessage::GiveFloor { site: "hang-gai".into() });
        round_trip_client(ClientMessage::RevokeFloor { site: "hang-gai".into() });
        round_trip_client(ClientMessage::MuteSite { site: "hang-gai".into(), muted: true });
        round_trip_client(ClientMessage::MuteAll { muted: true });
        round_trip_client(ClientMessage::SetLayout { layout: Layout::Grid });
        round_trip_client(ClientMessage::SetAgenda {
            items: vec![AgendaItemSpec { title: "Báo cáo".into(), kind: AgendaKind::Report, site: None, planned_minutes: 15 }],
        });
        round_trip_client(ClientMessage::NextItem {});
        round_trip_client(ClientMessage::Lock { locked: true });
        round_trip_client(ClientMessage::Admit { site: "hang-dao".into() });
        round_trip_client(ClientMessage::ShareStart { track: "3f1c".into() });
        round_trip_client(ClientMessage::ShareStop {});
        round_trip_client(ClientMessage::Stats {
            report: ClientReport {
                rtt_ms: Some(12.5),
                candidate: Some("host".into()),
                received: [("hq".to_string(), ReceivedReport { audio_pps: 50.0, video_fps: 15.0, loss_percent: 0.0, jitter_ms: 3.0 })].into(),
            },
        });
        round_trip_client(ClientMessage::StartConference {});
        round_trip_client(ClientMessage::EndConference {});
        round_trip_client(ClientMessage::OpenVote { question: "Thông qua?".into(), options: None });
        round_trip_client(ClientMessage::VoteCounts { vote: 1, counts: vec![3, 0, 1] });
        round_trip_client(ClientMessage::CloseVote {});
        round_trip_client(ClientMessage::SendNotice { site: Some("hang-gai".into()), text: "Đề nghị bật micro".into() });
        round_trip_client(ClientMessage::AckNotice { notice: 2 });
        round_trip_client(ClientMessage::AskHelp { text: String::new() });
        round_trip_client(ClientMessage::Attendance { attendees: "Phường Hàng Gai, Phường Hàng Trống".into(), headcount: Some(14) });
        round_trip_client(ClientMessage::StartRecording {});
        round_trip_client(ClientMessage::StopRecording {});
        round_trip_client(ClientMessage::ViewPage { page: 2 });
        assert_eq!(ClientMessage::TYPES.len(), 36);
        for t in ClientMessage::TYPES {
            // Every listed type parses far enough to be recognised (not unknown_type).
            let code = parse_client(&format!("{{\"type\":\"{t}\",\"bogus\":1}}")).unwrap_err().code;
            assert_eq!(code, ErrorCode::InvalidMessage, "{t}");
        }
    }

    #[test]
    fn every_server_message_round_trips() {
        round_trip_server(ServerMessage::Joined {
            session: "s".into(),
            site: SiteInfo { id: "hq".into(), name: "Trụ sở Quận ủy – 21 Bà Triệu".into(), role: SiteRole::Chair },
            conference: ConferenceInfo { title: "Hội nghị".into() },
            ice_servers: vec![IceServer { urls: vec!["stun:x".into()], username: None, credential: None }],
            resume: "r".into(),
            resumed: false,
        });
        round_trip_server(ServerMessage::State {
            sites: vec![SitePresence {
                id: "hq".into(),
                name: "Trụ sở".into(),
                role: SiteRole::Chair,
                present: true,
                since_ms: Some(1),
                audio_muted: false,
                video_muted: true,
                hard_muted: false,
                reconnecting: false,
                held_until_ms: None,
                waiting: false,
                help: Some(HelpView { since_ms: 4, text: "Không nghe thấy Trụ sở".into() }),
            }],
            floor: FloorView {
                holders: vec![FloorHolderView { site: "hang-gai".into(), request: 1, since_ms: 5 }],
                queue: vec![QueueEntryView { position: 1, request: 2, site: "cua-nam".into(), topic: None, since_ms: 6 }],
            },
            layout: Layout::Stage,
            locked: false,
            sharing: Some("hq".into()),
            meeting: Some(MeetingView { id: 3, started_ms: 1 }),
            recording: Some(RecordingView { state: "recording".into(), started_ms: 2, error: None }),
            agenda: AgendaView {
                items: vec![AgendaItemSpec { title: "Phát biểu".into(), kind: AgendaKind::Speech, site: Some("hang-gai".into()), planned_minutes: 7 }],
                current: Some(CurrentItemView { index: 0, started_ms: 5, planned_ms: 420_000, speaker_absent: false }),
            },
            vote: Some(VoteView {
                id: 1,
                question: "Thông qua nghị quyết?".into(),
                options: vec!["Tán thành".into(), "Không tán thành".into()],
                open: true,
                opened_ms: 6,
                closed_ms: None,
                tallies: vec![TallyView { site: "hang-gai".into(), counts: vec![10, 1] }],
                totals: vec![10, 1],
            }),
            notices: vec![NoticeView {
                id: 2,
                from: crate::conference::notice::Sender::Chair,
                to: Some("hang-gai".into()),
                text: "Đề nghị bật micro".into(),
                sent_ms: 7,
                acked: vec![],
            }],
            server_now_ms: 9,
        });
        round_trip_server(ServerMessage::Floor { event: FloorEventKind::Granted, request: 1, site: "hang-gai".into() });
        round_trip_server(ServerMessage::View {
            video: vec![Some("hq".into()), None],
            audio: vec![Some("hq".into())],
            content: Some("hq".into()),
            page: 0,
            pages: 3,
            paused: vec!["hang-bai".into()],
        });
        round_trip_server(ServerMessage::Speaking { active: Some("hang-gai".into()), levels: vec![SiteLevel { site: "hang-gai".into(), level: 0.5 }] });
        round_trip_server(ServerMessage::Offer { sdp: "v=0".into() });
        round_trip_server(ServerMessage::Answer { sdp: "v=0".into() });
        round_trip_server(ServerMessage::Candidate { candidate: candidate() });
        round_trip_server(ServerMessage::Media { state: MediaState::Connected });
        round_trip_server(ServerMessage::Replaced { message: "x".into() });
        round_trip_server(ServerMessage::Dropped { message: "x".into() });
        round_trip_server(ServerMessage::Revoked { message: "x".into() });
        round_trip_server(ServerMessage::RestartIce {});
        round_trip_server(ServerMessage::Restarting { message: "x".into() });
        round_trip_server(ServerMessage::error(ErrorCode::BadKey, "wrong key", Some("join")));
        round_trip_server(ServerMessage::Pong);
    }

    #[test]
    fn wire_format_matches_the_protocol_document() {
        let m = ServerMessage::error(ErrorCode::NotJoined, "join first", Some("offer"));
        assert_eq!(serde_json::to_value(&m).unwrap(), serde_json::json!({"type": "error", "code": "not_joined", "message": "join first", "request": "offer"}));
        let c: ClientMessage =
            parse_client(r#"{"type":"candidate","candidate":{"candidate":"candidate:1 1 udp 1 127.0.0.1 9 typ host","sdpMid":"0","sdpMLineIndex":0}}"#)
                .unwrap();
        assert!(matches!(c, ClientMessage::Candidate { candidate: IceCandidate { sdp_m_line_index: Some(0), .. } }));
        // What `RTCIceCandidate.toJSON()` gives in Chromium and Firefox: all four fields,
        // some of them null (Firefox's end-of-candidates is an empty `candidate`).
        for browser in [
            r#"{"type":"candidate","candidate":{"candidate":"candidate:1 1 udp 1 127.0.0.1 9 typ host","sdpMid":"0","sdpMLineIndex":0,"usernameFragment":"Ab1c"}}"#,
            r#"{"type":"candidate","candidate":{"candidate":"","sdpMid":null,"sdpMLineIndex":null,"usernameFragment":null}}"#,
        ] {
            assert!(matches!(parse_client(browser), Ok(ClientMessage::Candidate { .. })), "{browser}");
        }
    }

    #[test]
    fn each_kind_of_bad_input_has_its_own_code() {
        let code = |t: &str| parse_client(t).unwrap_err().code;
        assert_eq!(code("{not json"), ErrorCode::BadJson);
        assert_eq!(code("[1,2]"), ErrorCode::InvalidMessage);
        assert_eq!(code(r#"{"site":"hq"}"#), ErrorCode::InvalidMessage);
        assert_eq!(code(r#"{"type":7}"#), ErrorCode::InvalidMessage);
        assert_eq!(code(r#"{"type":"launch_missiles"}"#), ErrorCode::UnknownType);
        assert_eq!(code(r#"{"type":"join","site":"hq"}"#), ErrorCode::InvalidMessage);
        assert_eq!(code(r#"{"type":"join","site":42,"ticket":"k"}"#), ErrorCode::InvalidMessage);
        assert_eq!(code(r#"{"type":"join","site":"hq","ticket":"k","admin":true}"#), ErrorCode::InvalidMessage);
        assert_eq!(code(r#"{"type":"join","site":"hq","key":"k"}"#), ErrorCode::InvalidMessage, "keys go to /api/session, not the socket");
        assert_eq!(
            code(r#"{"type":"candidate","candidate":{"candidate":"candidate:1 1 udp 1 127.0.0.1 9 typ host","sdpMid":"0","priority":1}}"#),
            ErrorCode::InvalidMessage,
            "the candidate object refuses unknown fields too"
        );
        let big = format!(r#"{{"type":"offer","sdp":"{}"}}"#, "a".repeat(MAX_MESSAGE_BYTES));
        assert_eq!(code(&big), ErrorCode::TooLarge);
    }

    #[test]
    fn a_message_for_every_page_is_written_once_as_the_same_json() {
        let m = ServerMessage::Speaking { active: Some("hang-gai".into()), levels: vec![SiteLevel { site: "hang-gai".into(), level: 0.5 }] };
        let Outgoing::Text(text) = Outgoing::shared(&m) else { panic!("not serialised") };
        assert_eq!(&*text, serde_json::to_string(&m).unwrap());
        assert_eq!(serde_json::from_str::<ServerMessage>(&text).unwrap(), m);
        assert!(matches!(Outgoing::from(m), Outgoing::Message(_)), "a page's own message stays typed");
    }

    #[test]
    fn refusals_name_the_request_when_known() {
        let r = parse_client(r#"{"type":"offer"}"#).unwrap_err();
        assert_eq!(r.request.as_deref(), Some("offer"));
        assert!(r.message.contains("sdp"), "{}", r.message);
    }
}
