//! The codecs the bridge forwards, and how a forwarded packet says which one it carries.
//!
//! Each publisher's browser numbers its payload types its own way. On the way in, a stream's
//! packets are given the bridge's own number for their codec ([`Codec::internal_pt`]); every
//! receiver's output slot turns that back into the number the receiver chose. So the router,
//! the recorder and the keyframe gate know the codec of any packet from its header alone,
//! without a field on the packet path. Nothing here reads SDP.

use super::{h264, vp8};

/// A codec the bridge forwards without decoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Codec {
    Opus,
    Vp8,
    /// Constrained baseline (or baseline) H.264, packetization mode 1 (RFC 6184).
    H264,
    /// Opus with redundancy (RFC 2198, `audio/red`; see [`super::red`]): a way of carrying
    /// Opus, negotiated beside it.
    Red,
}

/// Number of [`Codec`]s, for per-codec arrays.
pub(crate) const CODECS: usize = 4;

impl Codec {
    pub const VIDEO: [Codec; 2] = [Codec::Vp8, Codec::H264];
    pub(crate) const ALL: [Codec; CODECS] = [Codec::Opus, Codec::Vp8, Codec::H264, Codec::Red];

    /// The payload type a forwarded packet of this codec carries inside the bridge; also the
    /// number the bridge offers for it in its own offers.
    pub const fn internal_pt(self) -> u8 {
        match self {
            Codec::Opus => 111,
            Codec::Vp8 => 96,
            Codec::H264 => 102,
            Codec::Red => 63,
        }
    }

    /// The codec a forwarded packet carries, from its (internal) payload type.
    pub(crate) fn of_internal_pt(pt: u8) -> Option<Codec> {
        match pt {
            111 => Some(Codec::Opus),
            96 => Some(Codec::Vp8),
            102 => Some(Codec::H264),
            63 => Some(Codec::Red),
            _ => None,
        }
    }

    pub(crate) const fn index(self) -> usize {
        self as usize
    }

    pub const fn clock_rate(self) -> u32 {
        match self {
            Codec::Opus | Codec::Red => 48_000,
            Codec::Vp8 | Codec::H264 => 90_000,
        }
    }

    pub(crate) fn is_video(self) -> bool {
        matches!(self, Codec::Vp8 | Codec::H264)
    }

    /// The name in configuration, logs and the health page.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Codec::Opus => "opus",
            Codec::Vp8 => "vp8",
            Codec::H264 => "h264",
            Codec::Red => "red",
        }
    }

    /// The codec a configuration or log name means (`vp8`, `h264`, `opus`, `red`; any case).
    pub(crate) fn parse(name: &str) -> Option<Codec> {
        match name.to_ascii_lowercase().as_str() {
            "opus" => Some(Codec::Opus),
            "vp8" => Some(Codec::Vp8),
            "h264" | "h.264" => Some(Codec::H264),
            "red" => Some(Codec::Red),
            _ => None,
        }
    }

    /// True if `payload` (of this codec) begins a key frame: where a receiver's decoder can
    /// start. Audio always can.
    pub fn starts_keyframe(self, payload: &[u8]) -> bool {
        match self {
            Codec::Opus | Codec::Red => true,
            Codec::Vp8 => vp8::descriptor(payload).is_some_and(|d| d.starts_frame() && vp8::is_keyframe(&payload[d.len..])),
            Codec::H264 => h264::starts_keyframe(payload),
        }
    }
}

/// A receiver's payload type for each codec it accepted on one output slot.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PayloadTypes([Option<u8>; CODECS]);

impl PayloadTypes {
    pub fn single(codec: Codec, pt: u8) -> Self {
        let mut p = PayloadTypes::default();
        p.set(codec, pt);
        p
    }

    pub(crate) fn set(&mut self, codec: Codec, pt: u8) {
        self.0[codec.index()] = Some(pt);
    }

    pub(crate) fn clear(&mut self, codec: Codec) {
        self.0[codec.index()] = None;
    }

    pub fn get(&self, codec: Codec) -> Option<u8> {
        self.0[codec.index()]
    }

    /// The codec numbered `pt` here, if any.
    pub(crate) fn codec_of(&self, pt: u8) -> Option<Codec> {
        Codec::ALL.into_iter().find(|c| self.get(*c) == Some(pt))
    }

    /// Takes `other`'s number for each codec this has none for.
    pub(crate) fn fill_missing(&mut self, other: &PayloadTypes) {
        for (mine, theirs) in self.0.iter_mut().zip(other.0) {
            *mine = mine.or(theirs);
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.iter().all(Option::is_none)
    }

    #[cfg(test)]
    /// The codecs accepted, in [`Codec`] order.
    pub(crate) fn codecs(&self) -> impl Iterator<Item = Codec> + '_ {
        Codec::ALL.into_iter().filter(|c| self.get(*c).is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_payload_types_name_their_codec_and_nothing_else() {
        for c in Codec::ALL {
            assert_eq!(Codec::of_internal_pt(c.internal_pt()), Some(c));
            assert_eq!(Codec::parse(c.as_str()), Some(c));
        }
        assert_eq!(Codec::of_internal_pt(97), None);
        assert_eq!(Codec::parse("vp9"), None);
    }

    #[test]
    fn a_slot_knows_the_receivers_number_for_each_codec_it_accepted() {
        let mut p = PayloadTypes::single(Codec::Vp8, 120);
        p.set(Codec::H264, 126);
        assert_eq!((p.get(Codec::Vp8), p.get(Codec::H264), p.get(Codec::Opus)), (Some(120), Some(126), None));
        assert_eq!((p.codec_of(126), p.codec_of(111)), (Some(Codec::H264), None));
        let mut browser = PayloadTypes::single(Codec::Vp8, 96);
        browser.fill_missing(&p);
        assert_eq!((browser.get(Codec::Vp8), browser.get(Codec::H264)), (Some(96), Some(126)), "a number it had is kept");
        assert_eq!(p.codecs().collect::<Vec<_>>(), vec![Codec::Vp8, Codec::H264]);
        assert!(PayloadTypes::default().is_empty());
    }
}
