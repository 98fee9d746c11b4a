//! The lean engine's side of SDP: the m-sections negotiated with one browser, in order, and
//! the answers and offers written from them.
//!
//! A site's session has two kinds of m-section. The browser's own (camera, microphone,
//! content) come from its offers: the bridge answers them `recvonly` with the one codec it
//! forwards for that stream (Opus for audio, with redundant Opus (RFC 2198 `red`) listed
//! first when the browser offers it, so that it sends that; for video the first of VP8 and
//! H.264 in the browser's own order of preference that the meeting allows), the header
//! extensions it reads (audio level, mid, rid, transport-wide sequence) and the simulcast
//! layers the browser announced. RTX, FEC and every other codec are left out of the answer,
//! which declines them. A `bundle-only` section (port 0, RFC 8843 §7.3.1: Firefox writes every
//! section after the first so) is a section like any other. The bridge's output slots come
//! from its own offer: `sendonly`, one SSRC each, every forwarded codec of their kind (for
//! audio, Opus and redundant Opus; for video each codec with its retransmission format, RFC
//! 4588 `rtx`, and a second SSRC in an `a=ssrc-group:FID` for the retransmissions), the
//! slot's id (`a0`, `v3`, `c0`) as stream id and as mid. Anything else (a data channel, a
//! camera with no codec the bridge forwards, a section the browser does not send on) is
//! refused with port 0, and the reason is kept ([`Refusal`]) so that a technician can read
//! it. The bridge is ICE-lite and always the DTLS server: `passive` in its answers and in its
//! own offers too, which always come after the browser's first offer has settled the roles.
//! The `a=setup` of an answer to the bridge's offer is therefore not read: webrtc-rs answers
//! `passive` there while it goes on as the DTLS client it already is.

use crate::media::codec::{Codec, PayloadTypes};
use crate::media::{Kind, Mid, Pt, Ssrc};
use std::borrow::Cow;
use std::fmt::Write;

pub(crate) const AUDIO_LEVEL_URI: &str = "urn:ietf:params:rtp-hdrext:ssrc-audio-level";
pub const MID_URI: &str = "urn:ietf:params:rtp-hdrext:sdes:mid";
pub const RID_URI: &str = "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id";
pub use super::congestion::TRANSPORT_CC_URI;
/// The H.264 the bridge offers for its outputs: constrained baseline, level 3.1,
/// packetization mode 1.
pub(crate) const H264_FMTP: &str = "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdpError {
    #[error("the description has no {0}")]
    Missing(&'static str),
    #[error("m-section {index} has mid {found:?} where {expected:?} was negotiated")]
    Reordered { index: usize, expected: Mid, found: Mid },
    #[error("the description has fewer m-sections than were negotiated")]
    Shrunk,
}

/// One `a=rtpmap` (with its `a=fmtp`) of a remote m-section.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RemoteCodec {
    pub(crate) pt: u8,
    /// Lower case, e.g. `vp8`, `h264`, `opus`, `rtx`.
    pub(crate) name: String,
    pub(crate) clock_rate: u32,
    pub(crate) fmtp: String,
}

impl RemoteCodec {
    /// The forwarded codec this is, if any: Opus, VP8, or H.264 in packetization mode 1 of
    /// the baseline family (profile_idc 0x42; constrained baseline or baseline).
    pub fn codec(&self) -> Option<Codec> {
        match (self.name.as_str(), self.clock_rate) {
            ("opus", 48_000) => Some(Codec::Opus),
            ("red", 48_000) => Some(Codec::Red),
            ("vp8", 90_000) => Some(Codec::Vp8),
            ("h264", 90_000) if self.fmtp_value("packetization-mode") == Some("1") && self.h264_profile().is_some_and(|p| p >> 8 == 0x42) => Some(Codec::H264),
            _ => None,
        }
    }

    /// For `rtx`: the payload type it repairs (`apt`).
    fn apt(&self) -> Option<u8> {
        (self.name == "rtx").then(|| self.fmtp_value("apt")?.parse().ok()).flatten()
    }

    fn fmtp_value(&self, key: &str) -> Option<&str> {
        self.fmtp.split(';').filter_map(|kv| kv.trim().split_once('=')).find(|(k, _)| k.eq_ignore_ascii_case(key)).map(|(_, v)| v)
    }

    /// profile_idc and profile_iop (the first two bytes of `profile-level-id`; RFC 6184's
    /// default 42 00 when it is absent).
    fn h264_profile(&self) -> Option<u16> {
        match self.fmtp_value("profile-level-id") {
            None => Some(0x4200),
            Some(v) if v.len() == 6 => u16::from_str_radix(&v[..4], 16).ok(),
            Some(_) => None,
        }
    }

    /// Constrained baseline: baseline with constraint_set1 (profile_iop bit 0x40).
    fn constrained_baseline(&self) -> bool {
        self.h264_profile().is_some_and(|p| p >> 8 == 0x42 && p & 0x40 != 0)
    }
}

/// The media of an m-section (`m=<media> …`). The bridge receives and sends audio and video;
/// anything else (a data channel's `application`, or what a future browser adds) is kept as
/// written, so that the answer refuses it on the same m-line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Media {
    Audio,
    Video,
    Other(String),
}

impl Media {
    pub(crate) fn parse(s: &str) -> Media {
        match s {
            "audio" => Media::Audio,
            "video" => Media::Video,
            other => Media::Other(other.to_owned()),
        }
    }

    pub(crate) fn as_str(&self) -> &str {
        match self {
            Media::Audio => "audio",
            Media::Video => "video",
            Media::Other(s) => s,
        }
    }
}

impl Default for Media {
    fn default() -> Self {
        Media::Other(String::new())
    }
}

impl From<Kind> for Media {
    /// What an output slot of this kind is offered as (shared content is video).
    fn from(kind: Kind) -> Media {
        if kind == Kind::Audio {
            Media::Audio
        } else {
            Media::Video
        }
    }
}

impl std::fmt::Display for Media {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What one remote m-section says.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RemoteSection {
    pub(crate) media: Media,
    pub mid: Mid,
    pub(crate) port: u16,
    pub(crate) direction: String,
    pub(crate) protocol: String,
    pub(crate) formats: String,
    /// Every `a=rtpmap`, in the order written.
    pub(crate) codecs: Vec<RemoteCodec>,
    /// `a=bundle-only`: port 0, yet part of the bundle (RFC 8843).
    pub(crate) bundle_only: bool,
    /// `(id, uri)` of every `a=extmap`.
    pub(crate) extmaps: Vec<(u8, String)>,
    /// The simulcast layers the browser sends, in its `a=simulcast` order (paused ones
    /// included, `~` removed), each with an `a=rid ... send` line.
    pub(crate) rids: Vec<String>,
    /// Primary SSRCs (`a=ssrc`, without the retransmission SSRCs of `a=ssrc-group:FID`).
    pub(crate) ssrcs: Vec<Ssrc>,
    /// The track id of `a=msid:<stream> <track>`.
    pub(crate) track_id: Option<String>,
    pub(crate) setup: Option<String>,
    /// `a=candidate` values (a browser that does not trickle puts them here).
    pub candidates: Vec<String>,
}

/// The id an `a=extmap` list gives `uri`.
fn extmap_id(extmaps: &[(u8, String)], uri: &str) -> Option<u8> {
    extmaps.iter().find(|(_, u)| u == uri).map(|(id, _)| *id)
}

impl RemoteSection {
    pub(crate) fn extmap(&self, uri: &str) -> Option<u8> {
        extmap_id(&self.extmaps, uri)
    }

    /// In the transport: a port, or bundled without one.
    fn open(&self) -> bool {
        self.port != 0 || self.bundle_only
    }

    fn browser_sends(&self) -> bool {
        self.open() && matches!(self.direction.as_str(), "sendonly" | "sendrecv")
    }

    /// The codecs in the browser's order of preference (the m-line's format list).
    pub fn preference(&self) -> impl Iterator<Item = &RemoteCodec> {
        self.formats.split_whitespace().filter_map(|f| f.parse::<u8>().ok()).filter_map(|pt| self.codecs.iter().find(|c| c.pt == pt))
    }

    /// The codec the bridge receives on this section: the browser's most preferred one among
    /// `allowed`; for H.264 its constrained-baseline entry if it has one.
    pub fn choose(&self, allowed: &[Codec]) -> Option<&RemoteCodec> {
        let codec = self.preference().find_map(|c| c.codec().filter(|c| allowed.contains(c)))?;
        let mut of_codec = self.preference().filter(|c| c.codec() == Some(codec));
        let first = of_codec.next()?;
        if codec == Codec::H264 && !first.constrained_baseline() {
            return Some(of_codec.find(|c| c.constrained_baseline()).unwrap_or(first));
        }
        Some(first)
    }

    /// The browser's redundant-audio format (RFC 2198) that carries `primary` and nothing
    /// else: `a=rtpmap:<pt> red/48000/2` with `a=fmtp:<pt> <primary>/<primary>`.
    fn red_for(&self, primary: u8) -> Option<u8> {
        let carries_only_primary = |fmtp: &str| !fmtp.is_empty() && fmtp.split('/').all(|pt| pt.trim().parse() == Ok(primary));
        self.preference().find(|c| c.codec() == Some(Codec::Red) && c.pt != primary && carries_only_primary(&c.fmtp)).map(|c| c.pt)
    }

    /// The retransmission (RFC 4588 `rtx`) payload type this section gives each codec of
    /// `codecs` (by their numbers here).
    fn rtx_for(&self, codecs: &PayloadTypes) -> PayloadTypes {
        let mut rtx = PayloadTypes::default();
        for c in self.codecs.iter().filter(|c| c.clock_rate == 90_000) {
            let Some(apt) = c.apt() else { continue };
            if let Some(codec) = codecs.codec_of(apt) {
                if rtx.get(codec).is_none() {
                    rtx.set(codec, c.pt);
                }
            }
        }
        rtx
    }

    /// The payload types an answer to the bridge's offer accepted, per forwarded codec.
    /// Redundant audio counts only with the Opus it carries.
    fn accepted(&self) -> PayloadTypes {
        let mut p = PayloadTypes::default();
        for c in self.preference() {
            if let Some(codec) = c.codec().filter(|codec| p.get(*codec).is_none()) {
                p.set(codec, c.pt);
            }
        }
        if p.get(Codec::Opus).is_none() {
            p.clear(Codec::Red);
        }
        p
    }
}

/// A remote description: its ICE credentials, certificate fingerprints and m-sections.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RemoteDescription {
    pub ufrag: String,
    pub(crate) pwd: String,
    pub fingerprints: Vec<String>,
    pub sections: Vec<RemoteSection>,
}

impl RemoteDescription {
    pub fn parse(sdp: &str) -> Result<Self, SdpError> {
        let mut d = RemoteDescription::default();
        let mut current: Option<Parsing> = None;
        let mut fid_repairs: Vec<u32> = Vec::new();
        for line in sdp.lines().map(str::trim_end) {
            if let Some(m) = line.strip_prefix("m=") {
                d.sections.extend(current.take().map(Parsing::finish));
                let mut parts = m.splitn(4, ' ');
                let media = Media::parse(parts.next().unwrap_or_default());
                let port = parts.next().and_then(|p| p.split('/').next()?.parse().ok()).unwrap_or(0);
                let protocol = parts.next().unwrap_or_default().to_owned();
                let formats = parts.next().unwrap_or_default().to_owned();
                let section = RemoteSection { media, port, protocol, formats, direction: "sendrecv".into(), ..Default::default() };
                current = Some(Parsing { section, ..Default::default() });
                continue;
            }
            let Some(attr) = line.strip_prefix("a=") else { continue };
            let (name, value) = attr.split_once(':').unwrap_or((attr, ""));
            // Session- or media-level alike.
            match name {
                "ice-ufrag" if d.ufrag.is_empty() => d.ufrag = value.to_owned(),
                "ice-pwd" if d.pwd.is_empty() => d.pwd = value.to_owned(),
                "fingerprint" if !d.fingerprints.iter().any(|f| f.eq_ignore_ascii_case(value)) => d.fingerprints.push(value.to_owned()),
                _ => {}
            }
            let Some(p) = current.as_mut() else { continue };
            let s = &mut p.section;
            match name {
                "mid" => s.mid = Mid::new(value),
                "sendonly" | "recvonly" | "sendrecv" | "inactive" => s.direction = name.to_owned(),
                "bundle-only" => s.bundle_only = true,
                "setup" => s.setup = Some(value.to_owned()),
                "candidate" => s.candidates.push(format!("candidate:{value}")),
                "rtpmap" => {
                    let (pt, codec) = value.split_once(' ').unwrap_or((value, ""));
                    let mut parts = codec.split('/');
                    let name = parts.next().unwrap_or_default().to_ascii_lowercase();
                    let clock_rate = parts.next().and_then(|r| r.parse().ok()).unwrap_or(0);
                    if let Ok(pt) = pt.parse() {
                        s.codecs.push(RemoteCodec { pt, name, clock_rate, fmtp: String::new() });
                    }
                }
                "fmtp" => {
                    let (pt, params) = value.split_once(' ').unwrap_or((value, ""));
                    if let Ok(pt) = pt.parse::<u8>() {
                        p.fmtps.push((pt, params.trim().to_owned()));
                    }
                }
                "extmap" => {
                    let (id, uri) = value.split_once(' ').unwrap_or((value, ""));
                    let id = id.split('/').next().and_then(|i| i.parse().ok());
                    if let (Some(id), Some(uri)) = (id, uri.split(' ').next()) {
                        s.extmaps.push((id, uri.to_owned()));
                    }
                }
                "rid" => {
                    let mut parts = value.split(' ');
                    if let (Some(rid), Some("send")) = (parts.next(), parts.next()) {
                        p.rid_lines.push(rid.to_owned());
                    }
                }
                "simulcast" => {
                    // `send l;~h` (RFC 8853), or the older draft's `send rid=l;h`; `,` separates
                    // alternatives of one layer, `~` marks a layer that starts paused.
                    let mut parts = value.split_whitespace();
                    while let (Some(dir), Some(list)) = (parts.next(), parts.next()) {
                        if dir == "send" {
                            let list = list.strip_prefix("rid=").unwrap_or(list);
                            p.simulcast = Some(list.split([';', ',']).map(|r| r.trim_start_matches('~').to_owned()).filter(|r| !r.is_empty()).collect());
                        }
                    }
                }
                "msid" => s.track_id = value.split(' ').nth(1).map(str::to_owned),
                "ssrc-group" => {
                    let mut parts = value.split(' ');
                    if parts.next() == Some("FID") {
                        fid_repairs.extend(parts.nth(1).and_then(|r| r.parse::<u32>().ok()));
                    }
                }
                "ssrc" => {
                    if let Some(ssrc) = value.split(' ').next().and_then(|v| v.parse().ok()).map(Ssrc) {
                        if !s.ssrcs.contains(&ssrc) {
                            s.ssrcs.push(ssrc);
                        }
                    }
                }
                _ => {}
            }
        }
        d.sections.extend(current.take().map(Parsing::finish));
        for s in &mut d.sections {
            s.ssrcs.retain(|x| !fid_repairs.contains(&x.0));
        }
        if d.ufrag.is_empty() || d.pwd.is_empty() {
            return Err(SdpError::Missing("ICE credentials (a=ice-ufrag, a=ice-pwd)"));
        }
        if d.fingerprints.is_empty() {
            return Err(SdpError::Missing("DTLS fingerprint (a=fingerprint)"));
        }
        Ok(d)
    }
}

/// A section being read: what is only complete at its end.
#[derive(Default)]
struct Parsing {
    section: RemoteSection,
    fmtps: Vec<(u8, String)>,
    rid_lines: Vec<String>,
    simulcast: Option<Vec<String>>,
}

impl Parsing {
    fn finish(mut self) -> RemoteSection {
        for (pt, fmtp) in self.fmtps {
            if let Some(c) = self.section.codecs.iter_mut().find(|c| c.pt == pt) {
                c.fmtp = fmtp;
            }
        }
        // The layers in `a=simulcast` order, each one that also has its `a=rid` line; without
        // `a=simulcast`, the `a=rid` lines in order.
        self.section.rids = match self.simulcast {
            Some(order) => order.into_iter().filter(|r| self.rid_lines.contains(r)).collect(),
            None => self.rid_lines,
        };
        self.section
    }
}

/// One of the browser's streams that the bridge receives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inbound {
    pub(crate) codec: Codec,
    pub payload_type: Pt,
    /// For audio, the browser's payload type of Opus with redundancy (RFC 2198), when it
    /// offered it and the bridge takes it: the answer lists it first, so the browser sends it.
    pub(crate) red: Option<Pt>,
    /// The browser's `a=fmtp` for it (echoed in the answer).
    pub(crate) fmtp: String,
    /// The extensions the bridge reads, at the browser's ids.
    pub(crate) extmaps: Vec<(u8, String)>,
    pub(crate) rids: Vec<String>,
    pub(crate) ssrcs: Vec<Ssrc>,
    pub(crate) track_id: Option<String>,
}

impl Inbound {
    /// The browser's id for an extension the bridge reads.
    pub fn extmap(&self, uri: &str) -> Option<u8> {
        extmap_id(&self.extmaps, uri)
    }
}

/// One of the bridge's output slots towards the browser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    pub kind: Kind,
    pub(crate) slot: usize,
    pub(crate) ssrc: Ssrc,
    /// Per codec: as offered until the browser's answer says otherwise.
    pub payload_types: PayloadTypes,
    /// Video: the SSRC of the slot's retransmission stream (RFC 4588), when it has one.
    pub(crate) rtx_ssrc: Option<Ssrc>,
    /// Per codec, the payload type its retransmissions go out with (empty: none accepted;
    /// then a lost packet is sent again as it was, on the slot's own SSRC).
    pub rtx: PayloadTypes,
    /// The browser's answer to an offer of this slot has been applied.
    pub(crate) accepted: bool,
    /// The id the browser's answer gave the transport-wide sequence number on this slot: the
    /// bridge numbers what it sends and the browser reports arrivals (the downlink estimate).
    pub(crate) transport_cc: Option<u8>,
}

/// Why a browser's m-section is not received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Neither audio nor video (a data channel, say).
    NotMedia,
    /// The browser does not send on it (recvonly, inactive, or stopped with port 0).
    NotSending,
    /// It sends, but none of its codecs is one the bridge forwards here; the codecs offered.
    NoCodec { offered: Vec<String> },
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::NotMedia => f.write_str("not audio or video"),
            Refusal::NotSending => f.write_str("the browser does not send on it"),
            Refusal::NoCodec { offered } => write!(f, "none of its codecs ({}) is one the bridge forwards", offered.join(", ")),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Role {
    Inbound(Inbound),
    Output(Output),
    /// Refused with port 0; the m-line is kept as the browser wrote it.
    Rejected(Refusal),
}

impl Role {
    pub(crate) fn is_rejected(&self) -> bool {
        matches!(self, Role::Rejected(_))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    pub(crate) mid: Mid,
    pub(crate) media: Media,
    pub(crate) protocol: String,
    pub(crate) formats: String,
    pub(crate) role: Role,
}

/// What the bridge writes about its own end of the transport.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalTransport {
    pub ufrag: String,
    pub pwd: String,
    pub fingerprint: String,
    /// Full `candidate:` values (without `a=`).
    pub candidates: Vec<String>,
}

/// The m-sections negotiated with one browser, in order.
#[derive(Debug, Clone)]
pub struct Negotiation {
    pub(crate) sections: Vec<Section>,
    /// The video codecs the meeting forwards, in the bridge's order for its own offers.
    video_codecs: Vec<Codec>,
    /// The browser's own payload type for each forwarded codec, and every payload type its
    /// offers use: the bridge's offers number codecs as the browser does, and never give one
    /// of its numbers to another codec (in a bundle one number means one codec).
    browser_pts: PayloadTypes,
    /// The browser's own retransmission payload type for each codec.
    browser_rtx: PayloadTypes,
    used_pts: Vec<u8>,
    /// Opus with redundancy is received from browsers that offer it and offered to every
    /// receiver (`[media] audio_red`).
    audio_red: bool,
    session_id: u64,
    version: u64,
}

impl Default for Negotiation {
    fn default() -> Self {
        Negotiation::new(&Codec::VIDEO)
    }
}

impl Negotiation {
    pub fn new(video_codecs: &[Codec]) -> Self {
        let video_codecs = video_codecs.iter().copied().filter(|c| c.is_video()).collect();
        Negotiation {
            sections: Vec::new(),
            video_codecs,
            browser_pts: PayloadTypes::default(),
            browser_rtx: PayloadTypes::default(),
            used_pts: Vec::new(),
            audio_red: true,
            session_id: rand::random::<u32>() as u64,
            version: 1,
        }
    }

    /// Whether Opus with redundancy is negotiated (by default it is).
    pub fn with_audio_red(mut self, on: bool) -> Self {
        self.audio_red = on;
        self
    }

    /// Takes a browser offer: sections already negotiated keep their place (and an output
    /// stays an output, an inbound stream its codec while the browser still offers it); new
    /// ones the browser sends are received if they carry a codec the bridge forwards, and
    /// refused otherwise.
    pub fn apply_offer(&mut self, offer: &RemoteDescription) -> Result<(), SdpError> {
        if offer.sections.len() < self.sections.len() {
            return Err(SdpError::Shrunk);
        }
        self.learn_payload_types(offer);
        for (index, remote) in offer.sections.iter().enumerate() {
            if let Some(section) = self.sections.get_mut(index) {
                if section.mid != remote.mid {
                    return Err(SdpError::Reordered { index, expected: section.mid.clone(), found: remote.mid.clone() });
                }
                if let Role::Inbound(inbound) = &mut section.role {
                    let keep = [inbound.codec];
                    let red = self.audio_red;
                    if let Ok(updated) = inbound_of(remote, &keep, red).or_else(|_| inbound_of(remote, &self.video_codecs, red)) {
                        *inbound = updated;
                    }
                }
                continue;
            }
            let role = match inbound_of(remote, &self.video_codecs, self.audio_red) {
                Ok(_) if !remote.browser_sends() => Role::Rejected(Refusal::NotSending),
                Ok(inbound) => Role::Inbound(inbound),
                Err(refusal) => Role::Rejected(refusal),
            };
            self.sections.push(Section {
                mid: remote.mid.clone(),
                media: remote.media.clone(),
                protocol: remote.protocol.clone(),
                formats: remote.formats.clone(),
                role,
            });
        }
        Ok(())
    }

    /// The browser's sections that it sends on and that are refused, with why.
    pub fn refused_sends<'a>(&'a self, offer: &'a RemoteDescription) -> impl Iterator<Item = (&'a Section, &'a Refusal)> + 'a {
        self.sections.iter().zip(&offer.sections).filter_map(|(section, remote)| match &section.role {
            Role::Rejected(r @ Refusal::NoCodec { .. }) if remote.browser_sends() => Some((section, r)),
            _ => None,
        })
    }

    /// Notes the browser's numbering of the codecs its sections carry (its own sections only:
    /// the slots' sections repeat the bridge's numbers).
    fn learn_payload_types(&mut self, offer: &RemoteDescription) {
        let own = offer.sections.iter().filter(|r| !self.sections.iter().any(|s| s.mid == r.mid && matches!(s.role, Role::Output(_))));
        for remote in own {
            for c in &remote.codecs {
                if !self.used_pts.contains(&c.pt) {
                    self.used_pts.push(c.pt);
                }
            }
            for codec in [Codec::Opus, Codec::Vp8, Codec::H264] {
                if self.browser_pts.get(codec).is_none() {
                    if let Some(c) = remote.choose(&[codec]) {
                        self.browser_pts.set(codec, c.pt);
                    }
                }
            }
            // Redundant audio only as a carrier of the browser's Opus (its fmtp says so).
            if let (None, Some(opus)) = (self.browser_pts.get(Codec::Red), self.browser_pts.get(Codec::Opus)) {
                if let Some(red) = remote.red_for(opus) {
                    self.browser_pts.set(Codec::Red, red);
                }
            }
            self.browser_rtx.fill_missing(&remote.rtx_for(&self.browser_pts));
        }
    }

    fn outputs(&self) -> impl Iterator<Item = &Output> {
        self.sections.iter().filter_map(|s| match &s.role {
            Role::Output(o) => Some(o),
            _ => None,
        })
    }

    /// True if nothing has `pt` yet: not the browser (any number in its offers), not this
    /// slot (`taken`), not any output slot offered before (codecs and retransmissions).
    fn is_free(&self, pt: u8, taken: &[u8]) -> bool {
        let browsers = self.browser_pts.codec_of(pt).is_some() || self.browser_rtx.codec_of(pt).is_some();
        let assigned = self.outputs().any(|o| o.payload_types.codec_of(pt).is_some() || o.rtx.codec_of(pt).is_some());
        !self.used_pts.contains(&pt) && !taken.contains(&pt) && !browsers && !assigned
    }

    /// The payload type the bridge offers `codec` at: the browser's own number for it, else
    /// the one earlier slots were offered, else the bridge's own number if it is free, else a
    /// free dynamic one that is no other codec's number inside the bridge. In a bundle one
    /// number means one thing.
    fn offered_pt(&self, codec: Codec, taken: &[u8]) -> u8 {
        if let Some(pt) = self.browser_pts.get(codec).or_else(|| self.outputs().find_map(|o| o.payload_types.get(codec))) {
            return pt;
        }
        let ours = |pt: &u8| self.is_free(*pt, taken) && Codec::of_internal_pt(*pt).is_none_or(|c| c == codec);
        std::iter::once(codec.internal_pt()).chain(96..=127).chain(35..=63).find(ours).unwrap_or(codec.internal_pt())
    }

    /// The payload type the bridge offers retransmissions of `codec` at: the browser's own
    /// number for them, else the one earlier slots were offered, else a free dynamic number
    /// that is no codec's number inside the bridge.
    fn offered_rtx_pt(&self, codec: Codec, taken: &[u8]) -> Option<u8> {
        if let Some(pt) = self.browser_rtx.get(codec).or_else(|| self.outputs().find_map(|o| o.rtx.get(codec))) {
            return Some(pt);
        }
        (96..=127).chain(35..=63).find(|pt| self.is_free(*pt, taken) && Codec::of_internal_pt(*pt).is_none())
    }

    /// Appends output slots to be offered next.
    pub fn add_output(&mut self, kind: Kind, slot: usize, ssrc: Ssrc) {
        self.add_output_repaired(kind, slot, ssrc, None);
    }

    /// [`Negotiation::add_output`] with, for video, a retransmission stream (RFC 4588) on
    /// `rtx_ssrc`: each video codec is offered with its `rtx` format.
    pub fn add_output_repaired(&mut self, kind: Kind, slot: usize, ssrc: Ssrc, rtx_ssrc: Option<Ssrc>) {
        let codecs = self.codecs_of(kind);
        let mut payload_types = PayloadTypes::default();
        let mut taken = Vec::new();
        for c in &codecs {
            let pt = self.offered_pt(*c, &taken);
            taken.push(pt);
            payload_types.set(*c, pt);
        }
        let mut rtx = PayloadTypes::default();
        let rtx_ssrc = rtx_ssrc.filter(|_| kind.is_video());
        if rtx_ssrc.is_some() {
            for c in &codecs {
                if let Some(pt) = self.offered_rtx_pt(*c, &taken) {
                    taken.push(pt);
                    rtx.set(*c, pt);
                }
            }
        }
        let mid = Mid::new(crate::peer::slot_id(kind, slot));
        let formats = codecs.iter().filter_map(|c| payload_types.get(*c)).map(|pt| pt.to_string()).collect::<Vec<_>>().join(" ");
        let output = Output { kind, slot, ssrc, payload_types, rtx_ssrc, rtx, accepted: false, transport_cc: None };
        self.sections.push(Section { mid, media: Media::from(kind), protocol: "UDP/TLS/RTP/SAVPF".into(), formats, role: Role::Output(output) });
    }

    /// Takes the browser's answer to the bridge's offer; returns the outputs it accepted
    /// (with the payload types it chose per codec), or an error if it breaks the negotiation.
    pub fn apply_answer(&mut self, answer: &RemoteDescription) -> Result<Vec<Output>, SdpError> {
        if answer.sections.len() != self.sections.len() {
            return Err(SdpError::Shrunk);
        }
        let mut accepted = Vec::new();
        for (index, (section, remote)) in self.sections.iter_mut().zip(&answer.sections).enumerate() {
            if section.mid != remote.mid {
                return Err(SdpError::Reordered { index, expected: section.mid.clone(), found: remote.mid.clone() });
            }
            if let Role::Output(output) = &mut section.role {
                if !remote.open() || remote.direction == "inactive" {
                    continue;
                }
                let pts = remote.accepted();
                if !pts.is_empty() {
                    output.rtx = if output.rtx_ssrc.is_some() { remote.rtx_for(&pts) } else { PayloadTypes::default() };
                    output.payload_types = pts;
                    output.transport_cc = remote.extmap(TRANSPORT_CC_URI);
                    output.accepted = true;
                    accepted.push(output.clone());
                }
            }
        }
        Ok(accepted)
    }

    /// The id the browser numbers its own packets with (transport-wide sequence): the bridge
    /// offers the same id on its slots, so one number means one extension in the bundle. `None`
    /// when the browser does not use the extension: it would not report arrivals either.
    pub(crate) fn transport_cc_id(&self) -> Option<u8> {
        self.inbound().find_map(|(_, i)| i.extmap(TRANSPORT_CC_URI))
    }

    /// The answer to the browser's last offer.
    pub fn answer(&mut self, local: &LocalTransport) -> String {
        self.write(local, "passive")
    }

    /// An offer of every section (the outputs added since the last one included).
    pub fn offer(&mut self, local: &LocalTransport) -> String {
        self.write(local, "passive")
    }

    /// What an output slot of `kind` offers, in the bridge's order of preference.
    fn codecs_of(&self, kind: Kind) -> Vec<Codec> {
        match kind {
            Kind::Audio if self.audio_red => vec![Codec::Opus, Codec::Red],
            Kind::Audio => vec![Codec::Opus],
            Kind::Video | Kind::Content => self.video_codecs.clone(),
        }
    }

    /// An output slot's codecs with their payload types, in the bridge's order of preference.
    fn output_codecs(&self, o: &Output) -> Vec<(Codec, u8)> {
        self.codecs_of(o.kind).into_iter().filter_map(|c| Some((c, o.payload_types.get(c)?))).collect()
    }

    pub fn inbound(&self) -> impl Iterator<Item = (&Mid, &Inbound)> {
        self.sections.iter().filter_map(|s| match &s.role {
            Role::Inbound(i) => Some((&s.mid, i)),
            _ => None,
        })
    }

    fn write(&mut self, local: &LocalTransport, setup: &'static str) -> String {
        self.version += 1;
        let bundle: Vec<&str> = self.sections.iter().filter(|s| !s.role.is_rejected()).map(|s| s.mid.as_str()).collect();
        let mut sdp = String::new();
        let _ = write!(sdp, "v=0\r\no=- {} {} IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\na=ice-lite\r\n", self.session_id, self.version);
        if !bundle.is_empty() {
            let _ = write!(sdp, "a=group:BUNDLE {}\r\n", bundle.join(" "));
        }
        sdp.push_str("a=msid-semantic: WMS *\r\n");
        let mut first = true;
        let output_transport_cc = self.transport_cc_id();
        for s in &self.sections {
            // (codec, payload type, fmtp) of every format the section carries.
            let formats: Vec<(Codec, u8, Cow<str>)> = match &s.role {
                Role::Rejected(_) => {
                    let _ = write!(sdp, "m={} 0 {} {}\r\nc=IN IP4 0.0.0.0\r\na=mid:{}\r\na=inactive\r\n", s.media, s.protocol, s.formats, s.mid);
                    continue;
                }
                // Redundant audio first: the browser sends the first format of the answer.
                Role::Inbound(i) => i
                    .red
                    .map(|red| (Codec::Red, red.0, red_fmtp(i.payload_type.0)))
                    .into_iter()
                    .chain([(i.codec, i.payload_type.0, Cow::from(i.fmtp.as_str()))])
                    .collect(),
                Role::Output(o) => self
                    .output_codecs(o)
                    .into_iter()
                    .map(|(c, pt)| match (c, o.payload_types.get(Codec::Opus)) {
                        (Codec::Red, Some(opus)) => (c, pt, red_fmtp(opus)),
                        _ => (c, pt, Cow::from(default_fmtp(c))),
                    })
                    .collect(),
            };
            // (rtx payload type, the payload type it repairs) of an output's retransmissions.
            let repairs: Vec<(u8, u8)> = match &s.role {
                Role::Output(o) if o.rtx_ssrc.is_some() => formats.iter().filter_map(|(c, pt, _)| Some((o.rtx.get(*c)?, *pt))).collect(),
                _ => Vec::new(),
            };
            let pts: Vec<String> = formats.iter().map(|(_, pt, _)| *pt).chain(repairs.iter().map(|(rtx, _)| *rtx)).map(|pt| pt.to_string()).collect();
            let _ = write!(sdp, "m={} 9 UDP/TLS/RTP/SAVPF {}\r\nc=IN IP4 0.0.0.0\r\n", s.media, pts.join(" "));
            if std::mem::take(&mut first) {
                for c in &local.candidates {
                    let _ = write!(sdp, "a={c}\r\n");
                }
                sdp.push_str("a=end-of-candidates\r\n");
            }
            let _ = write!(
                sdp,
                "a=ice-ufrag:{}\r\na=ice-pwd:{}\r\na=fingerprint:{}\r\na=setup:{setup}\r\na=mid:{}\r\n",
                local.ufrag, local.pwd, local.fingerprint, s.mid
            );
            match &s.role {
                Role::Inbound(i) => {
                    for (id, uri) in &i.extmaps {
                        let _ = write!(sdp, "a=extmap:{id} {uri}\r\n");
                    }
                    sdp.push_str("a=recvonly\r\n");
                }
                Role::Output(_) => {
                    if let Some(id) = output_transport_cc {
                        let _ = write!(sdp, "a=extmap:{id} {TRANSPORT_CC_URI}\r\n");
                    }
                    let _ = write!(sdp, "a=sendonly\r\na=msid:{0} {0}\r\n", s.mid);
                }
                Role::Rejected(_) => {}
            }
            sdp.push_str("a=rtcp-mux\r\na=rtcp-rsize\r\n");
            let inbound = matches!(s.role, Role::Inbound(_));
            let transport_cc = match &s.role {
                Role::Inbound(i) => i.extmap(TRANSPORT_CC_URI).is_some(),
                Role::Output(_) => output_transport_cc.is_some(),
                Role::Rejected(_) => false,
            };
            for (codec, pt, fmtp) in &formats {
                write_codec(&mut sdp, *codec, *pt, fmtp, inbound, transport_cc);
            }
            for (rtx, apt) in &repairs {
                let _ = write!(sdp, "a=rtpmap:{rtx} rtx/90000\r\na=fmtp:{rtx} apt={apt}\r\n");
            }
            match &s.role {
                Role::Inbound(i) if !i.rids.is_empty() => {
                    for rid in &i.rids {
                        let _ = write!(sdp, "a=rid:{rid} recv\r\n");
                    }
                    let _ = write!(sdp, "a=simulcast:recv {}\r\n", i.rids.join(";"));
                }
                Role::Output(o) => {
                    let rtx_ssrc = o.rtx_ssrc.filter(|_| !repairs.is_empty());
                    if let Some(rtx) = rtx_ssrc {
                        let _ = write!(sdp, "a=ssrc-group:FID {} {rtx}\r\n", o.ssrc);
                    }
                    for ssrc in std::iter::once(o.ssrc).chain(rtx_ssrc) {
                        let _ = write!(sdp, "a=ssrc:{ssrc} cname:diemcau\r\na=ssrc:{ssrc} msid:{0} {0}\r\n", s.mid);
                    }
                }
                _ => {}
            }
        }
        sdp
    }
}

/// The `a=fmtp` of redundant audio whose blocks are all the Opus at `opus` (one redundant
/// block and the primary: RFC 2198 §5).
fn red_fmtp(opus: u8) -> Cow<'static, str> {
    Cow::from(format!("{opus}/{opus}"))
}

/// The `a=fmtp` the bridge writes for a codec of its own offer.
fn default_fmtp(codec: Codec) -> &'static str {
    match codec {
        Codec::Opus => "minptime=10;useinbandfec=1",
        Codec::Vp8 | Codec::Red => "",
        Codec::H264 => H264_FMTP,
    }
}

/// One codec's `a=rtpmap`, `a=fmtp` and `a=rtcp-fb` lines.
fn write_codec(sdp: &mut String, codec: Codec, pt: u8, fmtp: &str, inbound: bool, transport_cc: bool) {
    let fmtp = if fmtp.is_empty() { default_fmtp(codec) } else { fmtp };
    let _ = match codec {
        Codec::Opus => write!(sdp, "a=rtpmap:{pt} opus/48000/2\r\n"),
        Codec::Vp8 => write!(sdp, "a=rtpmap:{pt} VP8/90000\r\n"),
        Codec::H264 => write!(sdp, "a=rtpmap:{pt} H264/90000\r\n"),
        Codec::Red => write!(sdp, "a=rtpmap:{pt} red/48000/2\r\n"),
    };
    if !fmtp.is_empty() {
        let _ = write!(sdp, "a=fmtp:{pt} {fmtp}\r\n");
    }
    if codec.is_video() {
        // Lost packets are asked for again both ways: the bridge asks the camera for what
        // its uplink lost; a receiver asks the bridge, and the slot's history answers.
        let _ = write!(sdp, "a=rtcp-fb:{pt} ccm fir\r\na=rtcp-fb:{pt} nack\r\na=rtcp-fb:{pt} nack pli\r\n");
        if inbound {
            // The bridge tells the camera a bandwidth ceiling (REMB).
            let _ = write!(sdp, "a=rtcp-fb:{pt} goog-remb\r\n");
        }
    }
    if transport_cc && codec != Codec::Red {
        // Arrivals are reported both ways: the bridge tells the browser what of its packets
        // arrived (its estimate of its uplink), the browser tells the bridge (the downlink's).
        let _ = write!(sdp, "a=rtcp-fb:{pt} transport-cc\r\n");
    }
}

/// The bridge's view of a browser section it may receive: the codec it would take (Opus for
/// audio; for video the browser's most preferred of `video_codecs`) and the extensions it
/// reads; or why it cannot be received.
fn inbound_of(remote: &RemoteSection, video_codecs: &[Codec], audio_red: bool) -> Result<Inbound, Refusal> {
    let (allowed, wanted): (&[Codec], &[&str]) = match remote.media {
        Media::Audio => (&[Codec::Opus], &[AUDIO_LEVEL_URI, MID_URI, TRANSPORT_CC_URI]),
        Media::Video => (video_codecs, &[MID_URI, RID_URI, TRANSPORT_CC_URI]),
        Media::Other(_) => return Err(Refusal::NotMedia),
    };
    let Some(chosen) = remote.choose(allowed) else {
        let mut offered: Vec<String> = Vec::new();
        for c in remote.preference().filter(|c| !matches!(c.name.as_str(), "rtx" | "red" | "ulpfec" | "flexfec-03" | "cn" | "telephone-event")) {
            if !offered.contains(&c.name) {
                offered.push(c.name.clone());
            }
        }
        return Err(Refusal::NoCodec { offered });
    };
    let codec = chosen.codec().expect("chosen among forwarded codecs");
    let extmaps = remote.extmaps.iter().filter(|(_, uri)| wanted.contains(&uri.as_str())).cloned().collect();
    let fmtp = if codec == Codec::H264 { chosen.fmtp.clone() } else { String::new() };
    let red = if codec == Codec::Opus && audio_red { remote.red_for(chosen.pt).map(Pt) } else { None };
    Ok(Inbound {
        codec,
        payload_type: Pt(chosen.pt),
        red,
        fmtp,
        extmaps,
        rids: remote.rids.clone(),
        ssrcs: remote.ssrcs.clone(),
        track_id: remote.track_id.clone(),
    })
}

#[cfg(test)]
mod tests;
