//! The identifiers RTP and SDP give a stream, each its own type so that one cannot stand for
//! another: an SSRC is not a slot or a sequence number, a payload type is not an extension id,
//! and a mid is not a track id or a RID.

use std::fmt;

/// A stream's synchronisation source (RFC 3550 §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ssrc(pub u32);

impl Ssrc {
    /// The SSRC a packet names.
    pub fn of(header: &rtc::rtp::header::Header) -> Ssrc {
        Ssrc(header.ssrc)
    }
}

impl fmt::Display for Ssrc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// An RTP payload type: how one browser numbers one format on its connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Pt(pub u8);

impl Pt {
    /// The payload type a packet names.
    pub fn of(header: &rtc::rtp::header::Header) -> Pt {
        Pt(header.payload_type)
    }
}

impl fmt::Display for Pt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// An m-section's media id (`a=mid`, RFC 8843): the browser's `0`, `1`, … or the bridge's
/// slot ids (`a0`, `v1`, `c0`). Packets may name it in the mid header extension.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Mid(String);

impl Mid {
    pub fn new(mid: impl Into<String>) -> Mid {
        Mid(mid.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Mid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl PartialEq<str> for Mid {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for Mid {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}
