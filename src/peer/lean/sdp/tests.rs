use super::*;

/// What the web client (headless Chromium 156) offers first: microphone, and a camera in two
/// simulcast layers (`l`, `h`), both send-only.
const CHROMIUM_OFFER: &str = include_str!("testdata/chromium_offer.sdp");

fn local() -> LocalTransport {
    LocalTransport {
        ufrag: "brdg".into(),
        pwd: "bridge-password-0123456789".into(),
        fingerprint: "sha-256 AB:CD".into(),
        candidates: vec!["candidate:1 1 udp 2130706431 192.0.2.1 10000 typ host".into()],
    }
}

fn section<'a>(sdp: &'a str, mid: &str) -> &'a str {
    let start = sdp.find(&format!("a=mid:{mid}\r\n")).expect("section");
    let from = sdp[..start].rfind("m=").unwrap();
    let end = sdp[start..].find("\r\nm=").map(|e| start + e + 2).unwrap_or(sdp.len());
    &sdp[from..end]
}

#[test]
fn chromiums_offer_is_read_codec_extensions_layers_and_all() {
    let d = RemoteDescription::parse(CHROMIUM_OFFER).unwrap();
    assert_eq!(d.ufrag, "9K+g");
    assert_eq!(d.fingerprints.len(), 1);
    let [audio, video] = &d.sections[..] else { panic!("two sections") };
    assert_eq!((audio.media.as_str(), audio.mid.as_str(), audio.direction.as_str(), audio.payload_type), ("audio", "0", "sendonly", Some(111)));
    assert_eq!(audio.extmap(AUDIO_LEVEL_URI), Some(1));
    assert_eq!(audio.ssrcs, vec![2631279610]);
    assert_eq!(audio.track_id.as_deref(), Some("870df94b-f9f8-4865-baf5-abb9a0032759"));
    assert_eq!((video.mid.as_str(), video.payload_type), ("1", Some(96)));
    assert_eq!(video.rids, vec!["l", "h"]);
    assert!(video.ssrcs.is_empty(), "simulcast layers are announced by rid, not by SSRC");
    assert_eq!((video.extmap(MID_URI), video.extmap(RID_URI)), (Some(4), Some(10)));
}

#[test]
fn the_answer_receives_opus_and_simulcast_vp8_as_ice_lite_dtls_server() {
    let mut n = Negotiation::new();
    n.apply_offer(&RemoteDescription::parse(CHROMIUM_OFFER).unwrap()).unwrap();
    let sdp = n.answer(&local());
    assert!(sdp.contains("a=ice-lite\r\n") && sdp.contains("a=group:BUNDLE 0 1\r\n"), "{sdp}");
    let audio = section(&sdp, "0");
    assert!(audio.starts_with("m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"), "only Opus: {audio}");
    for line in ["a=recvonly", "a=setup:passive", "a=ice-ufrag:brdg", "a=fingerprint:sha-256 AB:CD", "a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level", "a=candidate:1 1 udp"] {
        assert!(audio.contains(line), "{line} in {audio}");
    }
    let video = section(&sdp, "1");
    assert!(video.starts_with("m=video 9 UDP/TLS/RTP/SAVPF 96\r\n"), "only VP8, no RTX: {video}");
    for line in ["a=rid:l recv", "a=rid:h recv", "a=simulcast:recv l;h", "a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid", "a=extmap:10 urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id", "a=rtcp-fb:96 nack\r\n", "a=rtcp-fb:96 nack pli"] {
        assert!(video.contains(line), "{line} in {video}");
    }
    // The transport-wide sequence number is read (the bridge reports arrivals); the rest of
    // what the browser offered is not accepted.
    for sec in [audio, video] {
        assert!(sec.contains("a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01\r\n"), "{sec}");
    }
    assert!(audio.contains("a=rtcp-fb:111 transport-cc\r\n") && video.contains("a=rtcp-fb:96 transport-cc\r\n"), "{sdp}");
    assert!(!video.contains("abs-send-time") && !video.contains("a=candidate"), "unread extensions are not accepted; candidates once");
    let inbound: Vec<_> = n.inbound().map(|(mid, i)| (mid.to_owned(), i.payload_type)).collect();
    assert_eq!(inbound, vec![("0".to_owned(), 111), ("1".to_owned(), 96)]);
}

#[test]
fn the_bridges_offer_keeps_the_browsers_sections_and_adds_send_only_slots() {
    let mut n = Negotiation::new();
    n.apply_offer(&RemoteDescription::parse(CHROMIUM_OFFER).unwrap()).unwrap();
    n.add_output(Kind::Audio, 0, 1111);
    n.add_output(Kind::Video, 0, 2222);
    n.add_output(Kind::Content, 0, 3333);
    let offer = n.offer(&local());
    assert!(offer.contains("a=group:BUNDLE 0 1 a0 v0 c0\r\n"), "{offer}");
    let slot = section(&offer, "v0");
    for line in ["m=video 9 UDP/TLS/RTP/SAVPF 96", "a=sendonly", "a=msid:v0 v0", "a=ssrc:2222 cname:diemcau", "a=setup:passive", "a=rtcp-fb:96 nack\r\n"] {
        assert!(slot.contains(line), "{line} in {slot}");
    }
    assert!(section(&offer, "0").contains("a=recvonly"), "the microphone is still received");
    assert!(section(&offer, "c0").contains("a=msid:c0 c0"));

    // The browser answers: receives each slot (here at other payload types), DTLS client.
    let answer = offer.replace("a=sendonly", "a=recvonly").replace("a=setup:passive", "a=setup:active").replace(" 111\r\n", " 109\r\n").replace("a=rtpmap:111", "a=rtpmap:109");
    let accepted = n.apply_answer(&RemoteDescription::parse(&answer).unwrap()).unwrap();
    let got: Vec<_> = accepted.iter().map(|o| (o.kind, o.slot, o.ssrc, o.payload_type)).collect();
    assert_eq!(got, vec![(Kind::Audio, 0, 1111, 109), (Kind::Video, 0, 2222, 96), (Kind::Content, 0, 3333, 96)]);
}

#[test]
fn an_answer_that_drops_sections_is_refused() {
    let mut n = Negotiation::new();
    n.apply_offer(&RemoteDescription::parse(CHROMIUM_OFFER).unwrap()).unwrap();
    n.add_output(Kind::Audio, 0, 1);
    let offer = n.offer(&local());
    let first_two = offer[..offer.find("a=mid:a0").unwrap()].rsplit_once("m=").unwrap().0.replace("a=setup:passive", "a=setup:active");
    assert_eq!(n.apply_answer(&RemoteDescription::parse(&first_two).unwrap()), Err(SdpError::Shrunk));
}

#[test]
fn a_re_offer_keeps_the_order_adds_content_and_refuses_what_is_not_forwarded() {
    let mut n = Negotiation::new();
    let first = RemoteDescription::parse(CHROMIUM_OFFER).unwrap();
    n.apply_offer(&first).unwrap();
    n.add_output(Kind::Audio, 0, 1);
    // The browser's next offer: its two sections, our slot (now received by it), its shared
    // screen, and a data channel.
    let mut again = first.clone();
    again.sections.push(RemoteSection { media: "audio".into(), mid: "a0".into(), port: 9, direction: "recvonly".into(), payload_type: Some(111), ..Default::default() });
    let mut screen = first.sections[1].clone();
    screen.mid = "2".into();
    screen.rids.clear();
    again.sections.push(screen);
    again.sections.push(RemoteSection { media: "application".into(), mid: "3".into(), port: 9, protocol: "UDP/DTLS/SCTP".into(), formats: "webrtc-datachannel".into(), ..Default::default() });
    n.apply_offer(&again).unwrap();
    let sdp = n.answer(&local());
    assert!(sdp.contains("a=group:BUNDLE 0 1 a0 2\r\n"), "{sdp}");
    assert!(section(&sdp, "a0").contains("a=sendonly"), "an output stays an output");
    assert!(section(&sdp, "2").contains("a=recvonly"));
    assert!(section(&sdp, "3").starts_with("m=application 0 UDP/DTLS/SCTP webrtc-datachannel\r\n"), "{sdp}");

    let mut reordered = again.clone();
    reordered.sections.swap(0, 1);
    assert!(matches!(n.apply_offer(&reordered), Err(SdpError::Reordered { index: 0, .. })));
    let mut shrunk = again;
    shrunk.sections.truncate(1);
    assert_eq!(n.apply_offer(&shrunk), Err(SdpError::Shrunk));
}

#[test]
fn a_description_without_ice_credentials_or_fingerprint_is_refused() {
    assert_eq!(RemoteDescription::parse("v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"), Err(SdpError::Missing("ICE credentials (a=ice-ufrag, a=ice-pwd)")));
    let no_fp = CHROMIUM_OFFER.lines().filter(|l| !l.starts_with("a=fingerprint")).collect::<Vec<_>>().join("\r\n");
    assert_eq!(RemoteDescription::parse(&no_fp), Err(SdpError::Missing("DTLS fingerprint (a=fingerprint)")));
}
