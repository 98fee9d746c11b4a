//! The lean engine's side of SDP: the m-sections negotiated with one browser, in order, and
//! the answers and offers written from them.
//!
//! A site's session has two kinds of m-section. The browser's own (camera, microphone,
//! content) come from its offers: the bridge answers them `recvonly` with the one codec it
//! forwards (Opus or VP8, at the browser's payload type), the header extensions it reads
//! (audio level, mid, rid) and the simulcast layers the browser announced. The bridge's
//! output slots come from its own offer: `sendonly`, one SSRC each, the slot's id (`a0`,
//! `v3`, `c0`) as stream id and as mid. Anything else (a data channel, a codec the bridge
//! does not forward) is refused with port 0. The bridge is ICE-lite and always the DTLS
//! server: `passive` in its answers and in its own offers too, which always come after the
//! browser's first offer has settled the roles. The `a=setup` of an answer to the bridge's
//! offer is therefore not read: webrtc-rs answers `passive` there while it goes on as the
//! DTLS client it already is.

use crate::media::Kind;
use std::fmt::Write;

pub const AUDIO_LEVEL_URI: &str = "urn:ietf:params:rtp-hdrext:ssrc-audio-level";
pub const MID_URI: &str = "urn:ietf:params:rtp-hdrext:sdes:mid";
pub const RID_URI: &str = "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id";
pub use super::congestion::TRANSPORT_CC_URI;
/// The payload types the bridge offers for its outputs (the browser's answer may keep them).
pub const OPUS_PT: u8 = 111;
pub const VP8_PT: u8 = 96;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdpError {
    #[error("the description has no {0}")]
    Missing(&'static str),
    #[error("m-section {index} has mid {found:?} where {expected:?} was negotiated")]
    Reordered { index: usize, expected: String, found: String },
    #[error("the description has fewer m-sections than were negotiated")]
    Shrunk,
}

/// What one remote m-section says.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RemoteSection {
    pub media: String,
    pub mid: String,
    pub port: u16,
    pub direction: String,
    pub protocol: String,
    pub formats: String,
    /// The payload type of Opus (audio) or VP8 (video), if offered.
    pub payload_type: Option<u8>,
    /// `(id, uri)` of every `a=extmap`.
    pub extmaps: Vec<(u8, String)>,
    pub rids: Vec<String>,
    /// Primary SSRCs (`a=ssrc`, without the retransmission SSRCs of `a=ssrc-group:FID`).
    pub ssrcs: Vec<u32>,
    /// The track id of `a=msid:<stream> <track>`.
    pub track_id: Option<String>,
    pub setup: Option<String>,
}

/// The id an `a=extmap` list gives `uri`.
fn extmap_id(extmaps: &[(u8, String)], uri: &str) -> Option<u8> {
    extmaps.iter().find(|(_, u)| u == uri).map(|(id, _)| *id)
}

impl RemoteSection {
    pub fn extmap(&self, uri: &str) -> Option<u8> {
        extmap_id(&self.extmaps, uri)
    }

    fn browser_sends(&self) -> bool {
        self.port != 0 && matches!(self.direction.as_str(), "sendonly" | "sendrecv")
    }
}

/// A remote description: its ICE credentials, certificate fingerprints and m-sections.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RemoteDescription {
    pub ufrag: String,
    pub pwd: String,
    pub fingerprints: Vec<String>,
    pub sections: Vec<RemoteSection>,
}

impl RemoteDescription {
    pub fn parse(sdp: &str) -> Result<Self, SdpError> {
        let mut d = RemoteDescription::default();
        let mut current: Option<RemoteSection> = None;
        let mut fid_repairs: Vec<u32> = Vec::new();
        for line in sdp.lines().map(str::trim_end) {
            if let Some(m) = line.strip_prefix("m=") {
                d.sections.extend(current.take());
                let mut parts = m.splitn(4, ' ');
                let media = parts.next().unwrap_or_default().to_owned();
                let port = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
                let protocol = parts.next().unwrap_or_default().to_owned();
                let formats = parts.next().unwrap_or_default().to_owned();
                current = Some(RemoteSection { media, port, protocol, formats, direction: "sendrecv".into(), ..Default::default() });
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
            let Some(s) = current.as_mut() else { continue };
            match name {
                "mid" => s.mid = value.to_owned(),
                "sendonly" | "recvonly" | "sendrecv" | "inactive" => s.direction = name.to_owned(),
                "setup" => s.setup = Some(value.to_owned()),
                "rtpmap" => {
                    let (pt, codec) = value.split_once(' ').unwrap_or((value, ""));
                    let wanted = if s.media == "audio" { "opus/48000" } else { "vp8/90000" };
                    if s.payload_type.is_none() && codec.to_ascii_lowercase().starts_with(wanted) {
                        s.payload_type = pt.parse().ok();
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
                    let mut p = value.split(' ');
                    if let (Some(rid), Some("send")) = (p.next(), p.next()) {
                        s.rids.push(rid.to_owned());
                    }
                }
                "msid" => s.track_id = value.split(' ').nth(1).map(str::to_owned),
                "ssrc-group" => {
                    let mut p = value.split(' ');
                    if p.next() == Some("FID") {
                        fid_repairs.extend(p.nth(1).and_then(|r| r.parse::<u32>().ok()));
                    }
                }
                "ssrc" => {
                    if let Some(ssrc) = value.split(' ').next().and_then(|v| v.parse().ok()) {
                        if !s.ssrcs.contains(&ssrc) {
                            s.ssrcs.push(ssrc);
                        }
                    }
                }
                _ => {}
            }
        }
        d.sections.extend(current.take());
        for s in &mut d.sections {
            s.ssrcs.retain(|x| !fid_repairs.contains(x));
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

/// One of the browser's streams that the bridge receives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inbound {
    pub payload_type: u8,
    /// The extensions the bridge reads, at the browser's ids.
    pub extmaps: Vec<(u8, String)>,
    pub rids: Vec<String>,
    pub ssrcs: Vec<u32>,
    pub track_id: Option<String>,
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
    pub slot: usize,
    pub ssrc: u32,
    /// As offered until the browser's answer says otherwise.
    pub payload_type: u8,
    /// The browser's answer to an offer of this slot has been applied.
    pub accepted: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    Inbound(Inbound),
    Output(Output),
    /// Refused with port 0; the m-line is kept as the browser wrote it.
    Rejected,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    pub mid: String,
    pub media: String,
    pub protocol: String,
    pub formats: String,
    pub role: Role,
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
#[derive(Debug, Clone, Default)]
pub struct Negotiation {
    pub sections: Vec<Section>,
    session_id: u64,
    version: u64,
}

impl Negotiation {
    pub fn new() -> Self {
        Negotiation { sections: Vec::new(), session_id: rand::random::<u32>() as u64, version: 1 }
    }

    /// Takes a browser offer: sections already negotiated keep their place (and an output
    /// stays an output); new ones the browser sends are received if their codec is Opus or
    /// VP8, and refused otherwise.
    pub fn apply_offer(&mut self, offer: &RemoteDescription) -> Result<(), SdpError> {
        if offer.sections.len() < self.sections.len() {
            return Err(SdpError::Shrunk);
        }
        for (index, remote) in offer.sections.iter().enumerate() {
            if let Some(section) = self.sections.get_mut(index) {
                if section.mid != remote.mid {
                    return Err(SdpError::Reordered { index, expected: section.mid.clone(), found: remote.mid.clone() });
                }
                if let Role::Inbound(inbound) = &mut section.role {
                    if let Some(updated) = inbound_of(remote) {
                        *inbound = updated;
                    }
                }
                continue;
            }
            let role = match inbound_of(remote) {
                Some(inbound) if remote.browser_sends() => Role::Inbound(inbound),
                _ => Role::Rejected,
            };
            self.sections.push(Section { mid: remote.mid.clone(), media: remote.media.clone(), protocol: remote.protocol.clone(), formats: remote.formats.clone(), role });
        }
        Ok(())
    }

    /// Appends output slots to be offered next.
    pub fn add_output(&mut self, kind: Kind, slot: usize, ssrc: u32) {
        let (media, payload_type) = if kind == Kind::Audio { ("audio", OPUS_PT) } else { ("video", VP8_PT) };
        let mid = crate::peer::slot_id(kind, slot);
        let output = Output { kind, slot, ssrc, payload_type, accepted: false };
        self.sections.push(Section {
            mid,
            media: media.into(),
            protocol: "UDP/TLS/RTP/SAVPF".into(),
            formats: payload_type.to_string(),
            role: Role::Output(output),
        });
    }

    /// Takes the browser's answer to the bridge's offer; returns the outputs it accepted
    /// (with the payload type it chose), or an error if it breaks the negotiation.
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
                if remote.port == 0 || remote.direction == "inactive" {
                    continue;
                }
                if let Some(pt) = remote.payload_type {
                    output.payload_type = pt;
                    output.accepted = true;
                    accepted.push(output.clone());
                }
            }
        }
        Ok(accepted)
    }

    /// The answer to the browser's last offer.
    pub fn answer(&mut self, local: &LocalTransport) -> String {
        self.write(local, "passive")
    }

    /// An offer of every section (the outputs added since the last one included).
    pub fn offer(&mut self, local: &LocalTransport) -> String {
        self.write(local, "passive")
    }

    pub fn inbound(&self) -> impl Iterator<Item = (&str, &Inbound)> {
        self.sections.iter().filter_map(|s| match &s.role {
            Role::Inbound(i) => Some((s.mid.as_str(), i)),
            _ => None,
        })
    }

    fn write(&mut self, local: &LocalTransport, setup: &'static str) -> String {
        self.version += 1;
        let bundle: Vec<&str> = self.sections.iter().filter(|s| s.role != Role::Rejected).map(|s| s.mid.as_str()).collect();
        let mut sdp = String::new();
        let _ = write!(sdp, "v=0\r\no=- {} {} IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\na=ice-lite\r\n", self.session_id, self.version);
        if !bundle.is_empty() {
            let _ = write!(sdp, "a=group:BUNDLE {}\r\n", bundle.join(" "));
        }
        sdp.push_str("a=msid-semantic: WMS *\r\n");
        let mut first = true;
        for s in &self.sections {
            if s.role == Role::Rejected {
                let _ = write!(sdp, "m={} 0 {} {}\r\nc=IN IP4 0.0.0.0\r\na=mid:{}\r\na=inactive\r\n", s.media, s.protocol, s.formats, s.mid);
                continue;
            }
            let pt = match &s.role {
                Role::Inbound(i) => i.payload_type,
                Role::Output(o) => o.payload_type,
                Role::Rejected => unreachable!(),
            };
            let _ = write!(sdp, "m={} 9 UDP/TLS/RTP/SAVPF {pt}\r\nc=IN IP4 0.0.0.0\r\n", s.media);
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
                    let _ = write!(sdp, "a=sendonly\r\na=msid:{0} {0}\r\n", s.mid);
                }
                Role::Rejected => {}
            }
            sdp.push_str("a=rtcp-mux\r\na=rtcp-rsize\r\n");
            if s.media == "audio" {
                let _ = write!(sdp, "a=rtpmap:{pt} opus/48000/2\r\na=fmtp:{pt} minptime=10;useinbandfec=1\r\n");
            } else {
                // Lost packets are asked for again both ways: the bridge asks the camera for
                // what its uplink lost; a receiver asks the bridge, and the slot's history answers.
                let _ = write!(sdp, "a=rtpmap:{pt} VP8/90000\r\na=rtcp-fb:{pt} ccm fir\r\na=rtcp-fb:{pt} nack\r\na=rtcp-fb:{pt} nack pli\r\n");
                if matches!(s.role, Role::Inbound(_)) {
                    // The bridge tells the camera a bandwidth ceiling (REMB).
                    let _ = write!(sdp, "a=rtcp-fb:{pt} goog-remb\r\n");
                }
            }
            if let Role::Inbound(i) = &s.role {
                if i.extmap(TRANSPORT_CC_URI).is_some() {
                    // The bridge reports arrivals; the browser's delay-based estimate uses them.
                    let _ = write!(sdp, "a=rtcp-fb:{pt} transport-cc\r\n");
                }
            }
            match &s.role {
                Role::Inbound(i) if !i.rids.is_empty() => {
                    for rid in &i.rids {
                        let _ = write!(sdp, "a=rid:{rid} recv\r\n");
                    }
                    let _ = write!(sdp, "a=simulcast:recv {}\r\n", i.rids.join(";"));
                }
                Role::Output(o) => {
                    let _ = write!(sdp, "a=ssrc:{0} cname:diemcau\r\na=ssrc:{0} msid:{1} {1}\r\n", o.ssrc, s.mid);
                }
                _ => {}
            }
        }
        sdp
    }
}

/// The bridge's view of a browser section it may receive: Opus or VP8 and the extensions
/// it reads; `None` when the section carries neither codec (or is not audio or video).
fn inbound_of(remote: &RemoteSection) -> Option<Inbound> {
    if remote.media != "audio" && remote.media != "video" {
        return None;
    }
    let payload_type = remote.payload_type?;
    let wanted: &[&str] = if remote.media == "audio" { &[AUDIO_LEVEL_URI, MID_URI, TRANSPORT_CC_URI] } else { &[MID_URI, RID_URI, TRANSPORT_CC_URI] };
    let extmaps = remote.extmaps.iter().filter(|(_, uri)| wanted.contains(&uri.as_str())).cloned().collect();
    Some(Inbound { payload_type, extmaps, rids: remote.rids.clone(), ssrcs: remote.ssrcs.clone(), track_id: remote.track_id.clone() })
}

#[cfg(test)]
mod tests;
