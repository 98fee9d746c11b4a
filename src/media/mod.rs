//! The forwarding path: which site receives whom, and moving RTP between peers.
//!
//! The [`router::Router`] publishes an immutable route table (an `ArcSwap`); every packet a
//! site sends is offered to each receiving site's bounded queue with one lock-free load of
//! that table. Control changes (a site joins, a site is muted) build a new table under a
//! short `std::sync::Mutex` that the packet path never takes. [`rewrite`] makes a forwarded
//! stream look like one continuous stream to its receiver (SSRC, payload type, sequence
//! numbers and timestamps across publisher changes).
//!
//! Nothing here owns a PeerConnection: `peer/` reads packets from webrtc-rs and writes them.

pub mod codec;
pub mod delay;
pub mod h264;
pub mod ids;
pub mod red;
pub mod rewrite;
pub mod router;
pub mod speaker;
pub mod temporal;
pub mod vp8;

pub use codec::Codec;
pub use ids::{Mid, Pt, Ssrc};
pub use rtc::rtp::Packet as RtpPacket;

/// The media a site sends: microphone, camera, and shared content (slides, a screen).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Audio,
    Video,
    /// A second video stream: what the chair or the floor holder shares.
    Content,
}

/// A simulcast layer of a camera: 0 low, 1 medium, 2 high (full resolution). A publisher that
/// sends one encoding sends [`HIGH`]; audio and content are always [`HIGH`].
pub(crate) type Layer = u8;
pub(crate) const LOW: Layer = 0;
pub(crate) const MEDIUM: Layer = 1;
pub(crate) const HIGH: Layer = 2;
pub(crate) const LAYERS: usize = 3;

/// The layer a simulcast RID names (the web client's `l`, `m`, `h`); none or unknown = high.
pub(crate) fn layer_of_rid(rid: Option<&str>) -> Layer {
    match rid {
        Some("l") | Some("q") => LOW,
        Some("m") => MEDIUM,
        _ => HIGH,
    }
}

/// One receiving site's outputs ("slots"): which source site each one carries (`None`:
/// nothing), and for video slots the layer wanted (a large tile high, a thumbnail low).
/// Decided by the conference (`conference::view`), followed by the router.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    pub audio: Vec<Option<usize>>,
    pub video: Vec<Option<usize>>,
    /// Per video slot; missing entries mean [`HIGH`].
    pub video_layers: Vec<Layer>,
    /// Per video slot, the highest temporal layer sent ([`temporal::ALL`]: every frame);
    /// missing entries mean all.
    pub video_temporal: Vec<u8>,
    pub content: Option<usize>,
    /// Redundant audio (RFC 2198) goes to this receiver as the plain Opus it carries: its line
    /// is too tight for everything and loses nothing at random, so the redundancy would only
    /// take room from the pictures (`conference::view::fit`).
    pub audio_plain: bool,
}

impl Selection {
    /// The slots of one kind (content has one).
    pub(crate) fn slots(&self, kind: Kind) -> Vec<Option<usize>> {
        match kind {
            Kind::Audio => self.audio.clone(),
            Kind::Video => self.video.clone(),
            Kind::Content => vec![self.content],
        }
    }

    /// The highest temporal layer one slot takes.
    pub(crate) fn temporal(&self, kind: Kind, slot: usize) -> u8 {
        match kind {
            Kind::Video => self.video_temporal.get(slot).copied().unwrap_or(temporal::ALL),
            _ => temporal::ALL,
        }
    }

    /// The layer wanted in one slot.
    pub(crate) fn layer(&self, kind: Kind, slot: usize) -> Layer {
        match kind {
            Kind::Video => self.video_layers.get(slot).copied().unwrap_or(HIGH),
            _ => HIGH,
        }
    }

    /// The source in one slot.
    pub(crate) fn source(&self, kind: Kind, slot: usize) -> Option<usize> {
        match kind {
            Kind::Audio => self.audio.get(slot).copied().flatten(),
            Kind::Video => self.video.get(slot).copied().flatten(),
            Kind::Content => self.content.filter(|_| slot == 0),
        }
    }
}

/// Number of [`Kind`]s, for per-site arrays on the packet path.
pub(crate) const KINDS: usize = 3;

impl Kind {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Kind::Audio => "audio",
            Kind::Video => "video",
            Kind::Content => "content",
        }
    }

    /// Dense index (audio 0, video 1, content 2) for per-site arrays on the packet path.
    pub(crate) fn index(self) -> usize {
        match self {
            Kind::Audio => 0,
            Kind::Video => 1,
            Kind::Content => 2,
        }
    }

    /// The RTP clock of the kind's codecs: Opus's, else VP8's and H.264's.
    pub(crate) fn clock_rate(self) -> u32 {
        if self == Kind::Audio {
            crate::media::Codec::Opus.clock_rate()
        } else {
            crate::media::Codec::Vp8.clock_rate()
        }
    }

    /// Video-like kinds need keyframes.
    pub fn is_video(self) -> bool {
        matches!(self, Kind::Video | Kind::Content)
    }
}
