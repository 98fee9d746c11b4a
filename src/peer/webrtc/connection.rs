//! Building one server-side PeerConnection: codecs, interceptors, and its place on the
//! bridge's shared media ports (see [`super::mux`]).
//!
//! Only Opus and VP8 are offered, without RTX: every site then publishes the same codecs, so
//! any publisher's packets can be forwarded to any receiver as they are. Cameras may send
//! simulcast (up to three layers, told apart by their RIDs). Retransmissions are
//! answered from the NACK interceptor's buffer on each outgoing leg, within the receiving
//! site's retransmission budget (`guard.rs`).

use super::tap::KeyframeTap;
use crate::peer::mux::PcLink;
use crate::peer::MediaNetwork;
use rtc::interceptor::Slot;
use rtc::peer_connection::configuration::media_engine::{MIME_TYPE_OPUS, MIME_TYPE_VP8};
use rtc::rtp_transceiver::rtp_sender::{RTCPFeedback, RTCRtpCodec, RTCRtpCodecParameters, RTCRtpHeaderExtensionCapability, RtpCodecKind};
use rtc::rtp_transceiver::RTCRtpTransceiverDirection;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::mpsc;
use webrtc::peer_connection::{
    register_default_interceptors, MediaEngine, PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler, RTCConfigurationBuilder, Registry,
    SettingEngineBuilder,
};

pub(crate) const AUDIO_LEVEL_URI: &str = "urn:ietf:params:rtp-hdrext:ssrc-audio-level";

/// The id the remote SDP gives `uri` (`a=extmap:<id>[/<direction>] <uri>`), if any.
pub(crate) fn extmap_id(sdp: &str, uri: &str) -> Option<u8> {
    sdp.lines().find_map(|line| {
        let rest = line.trim_end().strip_prefix("a=extmap:")?;
        let (id, ext_uri) = rest.split_once(' ')?;
        let ext_uri = ext_uri.split(' ').next()?;
        (ext_uri == uri).then(|| id.split('/').next()?.parse().ok()).flatten()
    })
}

pub(crate) fn opus() -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: MIME_TYPE_OPUS.to_owned(),
        clock_rate: 48_000,
        channels: 2,
        sdp_fmtp_line: "minptime=10;useinbandfec=1".to_owned(),
        rtcp_feedback: vec![],
    }
}

pub(crate) fn vp8() -> RTCRtpCodec {
    let fb = |typ: &str, parameter: &str| RTCPFeedback { typ: typ.to_owned(), parameter: parameter.to_owned() };
    RTCRtpCodec {
        mime_type: MIME_TYPE_VP8.to_owned(),
        clock_rate: 90_000,
        channels: 0,
        sdp_fmtp_line: String::new(),
        rtcp_feedback: vec![fb("ccm", "fir"), fb("nack", ""), fb("nack", "pli")],
    }
}

/// A PeerConnection on the shared ports; `link` is its entry in the mux.
pub(crate) async fn build(
    net: &MediaNetwork,
    handler: Arc<dyn PeerConnectionEventHandler>,
    keyframe_requests: mpsc::UnboundedSender<u32>,
    nacks: super::guard::NackGuard,
) -> webrtc::error::Result<(Arc<dyn PeerConnection>, Arc<PcLink>)> {
    let mut media_engine = MediaEngine::default();
    media_engine.register_codec(RTCRtpCodecParameters { rtp_codec: opus(), payload_type: 111 }, RtpCodecKind::Audio)?;
    media_engine.register_codec(RTCRtpCodecParameters { rtp_codec: vp8(), payload_type: 96 }, RtpCodecKind::Video)?;
    // Audio levels (RFC 6464) from publishers feed the active-speaker detection.
    media_engine.register_header_extension(
        RTCRtpHeaderExtensionCapability { uri: AUDIO_LEVEL_URI.to_owned() },
        RtpCodecKind::Audio,
        Some(RTCRtpTransceiverDirection::Recvonly),
    )?;
    // Simulcast from the browsers: each layer's packets carry the m-line (mid) and the layer's
    // RID (RFC 8852), which is how webrtc-rs tells the layers of one camera apart.
    for uri in
        ["urn:ietf:params:rtp-hdrext:sdes:mid", "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id", "urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id"]
    {
        media_engine.register_header_extension(
            RTCRtpHeaderExtensionCapability { uri: uri.to_owned() },
            RtpCodecKind::Video,
            Some(RTCRtpTransceiverDirection::Recvonly),
        )?;
    }
    let registry = register_default_interceptors(Registry::new(), &mut media_engine)?;
    // Last in the chain, so it sees inbound RTCP after every other interceptor.
    let registry = registry.with(Slot::from(14_000), KeyframeTap::tap(keyframe_requests));
    // Between the pacer and the NACK responder: its retransmissions pass the site's budget.
    let registry = registry.with(Slot::from(super::guard::SLOT), nacks);

    // 1:1 NAT is handled by the mux rewriting what we advertise: the setting engine's NAT
    // option is never read by webrtc-rs 0.21.
    // mDNS off: otherwise every PC opens a multicast socket of its own.
    let settings = SettingEngineBuilder::new().with_multicast_dns_mode(rtc::ice::mdns::MulticastDnsMode::Disabled);
    // The driver binds these throw-away "label" sockets; the mux runtime closes them at once
    // and serves the PC from the shared ports instead.
    let (link, runtime) = net.mux.new_pc();
    let label = SocketAddr::new(net.mux.label_ip(), 0).to_string();
    let tcp = if net.mux.tcp_addr.is_some() { vec![label.clone()] } else { Vec::new() };
    let pc = PeerConnectionBuilder::new()
        .with_configuration(RTCConfigurationBuilder::new().build())
        .with_media_engine(media_engine)
        .with_setting_engine(settings.build())
        .with_interceptor_registry(registry)
        .with_handler(handler)
        .with_runtime(runtime)
        .with_udp_addrs(vec![label])
        .with_tcp_addrs(tcp)
        .build()
        .await?;
    Ok((Arc::new(pc), link))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extmap_ids_are_read_from_sdp() {
        let sdp = "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\na=extmap:3/sendonly http://x\r\n";
        assert_eq!(extmap_id(sdp, AUDIO_LEVEL_URI), Some(1));
        assert_eq!(extmap_id(sdp, "http://x"), Some(3));
        assert_eq!(extmap_id(sdp, "urn:none"), None);
    }
}
