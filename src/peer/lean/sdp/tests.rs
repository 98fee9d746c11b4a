use super::*;
use crate::media::Codec;

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
    assert_eq!(
        (audio.media.as_str(), audio.mid.as_str(), audio.direction.as_str(), audio.choose(&[Codec::Opus]).map(|c| c.pt)),
        ("audio", "0", "sendonly", Some(111))
    );
    assert_eq!(audio.extmap(AUDIO_LEVEL_URI), Some(1));
    assert_eq!(audio.ssrcs, vec![Ssrc(2631279610)]);
    assert_eq!(audio.track_id.as_deref(), Some("870df94b-f9f8-4865-baf5-abb9a0032759"));
    assert_eq!((video.mid.as_str(), video.choose(&Codec::VIDEO).map(|c| c.pt)), ("1", Some(96)), "VP8 comes first in Chromium's order");
    assert_eq!(
        video.choose(&[Codec::H264]).map(|c| (c.pt, c.fmtp.as_str())),
        Some((109, "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f")),
        "constrained baseline, mode 1"
    );
    assert_eq!(video.rids, vec!["l", "h"]);
    assert!(video.ssrcs.is_empty(), "simulcast layers are announced by rid, not by SSRC");
    assert_eq!((video.extmap(MID_URI), video.extmap(RID_URI)), (Some(4), Some(10)));
}

#[test]
fn the_answer_receives_opus_and_simulcast_vp8_as_ice_lite_dtls_server() {
    let mut n = Negotiation::default();
    n.apply_offer(&RemoteDescription::parse(CHROMIUM_OFFER).unwrap()).unwrap();
    let sdp = n.answer(&local());
    assert!(sdp.contains("a=ice-lite\r\n") && sdp.contains("a=group:BUNDLE 0 1\r\n"), "{sdp}");
    let audio = section(&sdp, "0");
    assert!(audio.starts_with("m=audio 9 UDP/TLS/RTP/SAVPF 63 111\r\n"), "Opus, with redundancy first (what Chromium sends): {audio}");
    for line in [
        "a=rtpmap:63 red/48000/2\r\na=fmtp:63 111/111\r\n",
        "a=rtpmap:111 opus/48000/2",
        "a=recvonly",
        "a=setup:passive",
        "a=ice-ufrag:brdg",
        "a=fingerprint:sha-256 AB:CD",
        "a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level",
        "a=candidate:1 1 udp",
    ] {
        assert!(audio.contains(line), "{line} in {audio}");
    }
    let video = section(&sdp, "1");
    assert!(video.starts_with("m=video 9 UDP/TLS/RTP/SAVPF 96\r\n"), "only VP8, no RTX: {video}");
    for line in [
        "a=rid:l recv",
        "a=rid:h recv",
        "a=simulcast:recv l;h",
        "a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid",
        "a=extmap:10 urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id",
        "a=rtcp-fb:96 nack\r\n",
        "a=rtcp-fb:96 nack pli",
    ] {
        assert!(video.contains(line), "{line} in {video}");
    }
    // The transport-wide sequence number is read (the bridge reports arrivals); the rest of
    // what the browser offered is not accepted.
    for sec in [audio, video] {
        assert!(sec.contains("a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01\r\n"), "{sec}");
    }
    assert!(audio.contains("a=rtcp-fb:111 transport-cc\r\n") && video.contains("a=rtcp-fb:96 transport-cc\r\n"), "{sdp}");
    assert!(!video.contains("abs-send-time") && !video.contains("a=candidate"), "unread extensions are not accepted; candidates once");
    let inbound: Vec<_> = n.inbound().map(|(mid, i)| (mid.as_str(), i.payload_type)).collect();
    assert_eq!(inbound, vec![("0", Pt(111)), ("1", Pt(96))]);
}

#[test]
fn the_bridges_offer_keeps_the_browsers_sections_and_adds_send_only_slots() {
    let mut n = Negotiation::default();
    n.apply_offer(&RemoteDescription::parse(CHROMIUM_OFFER).unwrap()).unwrap();
    n.add_output(Kind::Audio, 0, Ssrc(1111));
    n.add_output(Kind::Video, 0, Ssrc(2222));
    n.add_output(Kind::Content, 0, Ssrc(3333));
    let offer = n.offer(&local());
    assert!(offer.contains("a=group:BUNDLE 0 1 a0 v0 c0\r\n"), "{offer}");
    let slot = section(&offer, "v0");
    for line in ["m=video 9 UDP/TLS/RTP/SAVPF 96", "a=sendonly", "a=msid:v0 v0", "a=ssrc:2222 cname:diemcau", "a=setup:passive", "a=rtcp-fb:96 nack\r\n"] {
        assert!(slot.contains(line), "{line} in {slot}");
    }
    assert!(section(&offer, "0").contains("a=recvonly"), "the microphone is still received");
    assert!(section(&offer, "c0").contains("a=msid:c0 c0"));
    // The browser is asked to report arrivals on the slots too (the downlink estimate), at the
    // id it numbers its own packets with.
    for mid in ["a0", "v0", "c0"] {
        let slot = section(&offer, mid);
        assert!(slot.contains("a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01\r\n"), "{slot}");
        assert!(slot.contains(" transport-cc\r\n"), "{slot}");
    }

    // The browser answers: receives each slot (here at other payload types), DTLS client.
    let audio_slot = section(&offer, "a0");
    for line in ["m=audio 9 UDP/TLS/RTP/SAVPF 111 63\r\n", "a=rtpmap:63 red/48000/2\r\na=fmtp:63 111/111\r\n", "a=rtcp-fb:111 transport-cc"] {
        assert!(audio_slot.contains(line), "Opus and redundant Opus are offered: {line} in {audio_slot}");
    }
    let answer = offer
        .replace("a=sendonly", "a=recvonly")
        .replace("a=setup:passive", "a=setup:active")
        .replace("SAVPF 111 63\r\n", "SAVPF 109 63\r\n")
        .replace("a=rtpmap:111", "a=rtpmap:109")
        .replace("a=fmtp:63 111/111", "a=fmtp:63 109/109");
    let accepted = n.apply_answer(&RemoteDescription::parse(&answer).unwrap()).unwrap();
    let got: Vec<_> = accepted
        .iter()
        .map(|o| (o.kind, o.slot, o.ssrc.0, o.payload_types.codecs().map(|c| (c, o.payload_types.get(c).unwrap())).collect::<Vec<_>>()))
        .collect();
    // H.264 is offered at Chromium's own number for constrained baseline (109 in this offer).
    let video = vec![(Codec::Vp8, 96), (Codec::H264, 109)];
    assert_eq!(
        got,
        vec![(Kind::Audio, 0, 1111, vec![(Codec::Opus, 109), (Codec::Red, 63)]), (Kind::Video, 0, 2222, video.clone()), (Kind::Content, 0, 3333, video)]
    );
    assert!(accepted.iter().all(|o| o.transport_cc == Some(3)), "the answer keeps the extension: {accepted:?}");
}

#[test]
fn an_answer_that_drops_sections_is_refused() {
    let mut n = Negotiation::default();
    n.apply_offer(&RemoteDescription::parse(CHROMIUM_OFFER).unwrap()).unwrap();
    n.add_output(Kind::Audio, 0, Ssrc(1));
    let offer = n.offer(&local());
    let first_two = offer[..offer.find("a=mid:a0").unwrap()].rsplit_once("m=").unwrap().0.replace("a=setup:passive", "a=setup:active");
    assert_eq!(n.apply_answer(&RemoteDescription::parse(&first_two).unwrap()), Err(SdpError::Shrunk));
}

#[test]
fn a_re_offer_keeps_the_order_adds_content_and_refuses_what_is_not_forwarded() {
    let mut n = Negotiation::default();
    let first = RemoteDescription::parse(CHROMIUM_OFFER).unwrap();
    n.apply_offer(&first).unwrap();
    n.add_output(Kind::Audio, 0, Ssrc(1));
    // The browser's next offer: its two sections, our slot (now received by it), its shared
    // screen, and a data channel.
    let mut again = first.clone();
    let opus = RemoteCodec { pt: 111, name: "opus".into(), clock_rate: 48_000, fmtp: String::new() };
    again.sections.push(RemoteSection {
        media: Media::Audio,
        mid: Mid::new("a0"),
        port: 9,
        direction: "recvonly".into(),
        formats: "111".into(),
        codecs: vec![opus],
        ..Default::default()
    });
    let mut screen = first.sections[1].clone();
    screen.mid = Mid::new("2");
    screen.rids.clear();
    again.sections.push(screen);
    again.sections.push(RemoteSection {
        media: Media::Other("application".into()),
        mid: Mid::new("3"),
        port: 9,
        protocol: "UDP/DTLS/SCTP".into(),
        formats: "webrtc-datachannel".into(),
        ..Default::default()
    });
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

/// Offers recorded from the browsers offices run (testdata/README.md says how).
const OFFERS: [(&str, &str); 5] = [
    ("chromium156", include_str!("testdata/chromium156_offer.sdp")),
    ("chromium150", include_str!("testdata/chromium150_offer.sdp")),
    ("firefox153", include_str!("testdata/firefox153_offer.sdp")),
    ("firefox140", include_str!("testdata/firefox140_offer.sdp")),
    ("safari", include_str!("testdata/safari_offer.sdp")),
];

/// What the bridge's answer must accept from one browser's first offer.
struct Expected {
    browser: &'static str,
    opus: u8,
    /// Redundant Opus's payload type, when the browser offers it.
    red: Option<u8>,
    video: Codec,
    video_pt: u8,
    rids: &'static [&'static str],
}

const EXPECTED: [Expected; 5] = [
    Expected { browser: "chromium156", opus: 111, red: Some(63), video: Codec::Vp8, video_pt: 96, rids: &["l", "h"] },
    Expected { browser: "chromium150", opus: 111, red: Some(63), video: Codec::Vp8, video_pt: 96, rids: &["l", "h"] },
    // Firefox offers no redundant audio: it sends plain Opus, and is sent it.
    Expected { browser: "firefox153", opus: 109, red: None, video: Codec::Vp8, video_pt: 120, rids: &["l", "h"] },
    Expected { browser: "firefox140", opus: 109, red: None, video: Codec::Vp8, video_pt: 120, rids: &["l", "h"] },
    // Safari prefers H.264; its first entry is High profile (640c1f), the bridge takes its
    // constrained baseline (98).
    Expected { browser: "safari", opus: 111, red: Some(63), video: Codec::H264, video_pt: 98, rids: &[] },
];

fn answered(offer: &str) -> (Negotiation, String) {
    let mut n = Negotiation::default();
    n.apply_offer(&RemoteDescription::parse(offer).expect("a real offer parses")).expect("and applies");
    let answer = n.answer(&local());
    (n, answer)
}

#[test]
fn every_browsers_first_offer_is_answered_with_its_microphone_and_camera_received() {
    for ((browser, offer), e) in OFFERS.iter().zip(EXPECTED) {
        assert_eq!(*browser, e.browser);
        let Expected { opus, red, video: codec, video_pt, rids, .. } = e;
        let (n, answer) = answered(offer);
        let inbound: Vec<_> = n.inbound().map(|(mid, i)| (mid.to_string(), i.codec, i.payload_type.0, i.red.map(|r| r.0), i.rids.clone())).collect();
        let rids: Vec<String> = rids.iter().map(|r| r.to_string()).collect();
        assert_eq!(inbound, vec![("0".into(), Codec::Opus, opus, red, vec![]), ("1".into(), codec, video_pt, None, rids.clone())], "{browser}");
        let audio = section(&answer, "0");
        let formats = match red {
            Some(red) => format!("{red} {opus}"),
            None => opus.to_string(),
        };
        assert!(audio.starts_with(&format!("m=audio 9 UDP/TLS/RTP/SAVPF {formats}\r\n")), "{browser}: redundant Opus first when offered:\n{audio}");
        assert!(answer.contains("a=group:BUNDLE 0 1\r\n"), "{browser}: both sections bundled:\n{answer}");
        let video = section(&answer, "1");
        assert!(video.starts_with(&format!("m=video 9 UDP/TLS/RTP/SAVPF {video_pt}\r\n")), "{browser}: one codec, no RTX, FEC or RED:\n{video}");
        assert!(video.contains("a=recvonly\r\n") && !video.contains("a=inactive"), "{browser}:\n{video}");
        if !rids.is_empty() {
            assert!(video.contains(&format!("a=simulcast:recv {}\r\n", rids.join(";"))), "{browser}:\n{video}");
        }
        let extmaps: Vec<&str> = video.lines().filter(|l| l.starts_with("a=extmap:")).collect();
        for uri in [MID_URI, RID_URI] {
            assert!(extmaps.iter().any(|l| l.ends_with(uri)), "{browser}: {uri} read ({extmaps:?})");
        }
        assert!(!video.contains("repaired-rtp-stream-id") && !video.contains("rtx/90000"), "{browser}: no RTX is negotiated yet");
        if codec == Codec::H264 {
            assert!(video.contains(&format!("a=fmtp:{video_pt} level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f\r\n")), "{video}");
        }
    }
}

#[test]
fn firefoxs_bundle_only_camera_is_received_with_its_layers_ssrcs() {
    let (n, answer) = answered(OFFERS[2].1);
    let offer = RemoteDescription::parse(OFFERS[2].1).unwrap();
    assert_eq!((offer.sections[1].port, offer.sections[1].bundle_only), (0, true), "Firefox writes its camera bundle-only");
    let (_, camera) = n.inbound().nth(1).unwrap();
    assert_eq!(camera.ssrcs, vec![Ssrc(1965811387), Ssrc(1763001991)], "one SSRC per layer; the RTX ones (FID) left out");
    assert_eq!(camera.extmap(RID_URI), Some(9), "its rid extension is declared `9/sendonly`");
    assert!(section(&answer, "1").contains("a=extmap:9 urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id\r\n"), "{answer}");
    // A browser that does not trickle has its candidates in the offer.
    assert!(offer.sections[0].candidates.iter().any(|c| c.starts_with("candidate:0 1 UDP 2122055935 127.0.0.1 43230 typ host")));
}

#[test]
fn the_bridges_slots_number_codecs_as_the_browser_does_and_never_collide_with_it() {
    // (browser, VP8 and H.264 payload types on the slots)
    let expected = [("chromium156", 96, Some(108)), ("chromium150", 96, Some(109)), ("firefox153", 120, None), ("safari", 106, Some(98))];
    for (browser, vp8, h264) in expected {
        let offer = OFFERS.iter().find(|(b, _)| *b == browser).unwrap().1;
        let (mut n, _) = answered(offer);
        n.add_output(Kind::Video, 0, Ssrc(2222));
        let slot = section(&n.offer(&local()), "v0").to_owned();
        let remote = RemoteDescription::parse(offer).unwrap();
        let browser_codec = |pt: u8| remote.sections.iter().flat_map(|s| &s.codecs).find(|c| c.pt == pt).map(|c| c.name.clone());
        match h264 {
            Some(h) => {
                assert!(slot.starts_with(&format!("m=video 9 UDP/TLS/RTP/SAVPF {vp8} {h}\r\n")), "{browser}: {slot}");
                assert_eq!(browser_codec(h).as_deref(), Some("h264"), "{browser}");
            }
            // Firefox here has no H.264: the bridge still offers it, at a number Firefox
            // gives to nothing, and Firefox's answer leaves it out.
            None => {
                let pts: Vec<u8> = slot.lines().next().unwrap().split(' ').skip(3).map(|p| p.parse().unwrap()).collect();
                assert_eq!(pts[0], vp8, "{browser}: {slot}");
                assert_eq!(browser_codec(pts[1]), None, "{browser}: H.264 at {} collides", pts[1]);
            }
        }
        assert_eq!(browser_codec(vp8).as_deref(), Some("vp8"), "{browser}");
    }
}

#[test]
fn a_meeting_of_vp8_only_answers_safari_with_vp8() {
    let mut n = Negotiation::new(&[Codec::Vp8]);
    n.apply_offer(&RemoteDescription::parse(OFFERS[4].1).unwrap()).unwrap();
    let (_, camera) = n.inbound().nth(1).unwrap();
    assert_eq!((camera.codec, camera.payload_type), (Codec::Vp8, Pt(106)));
}

#[test]
fn each_browser_renegotiates_with_its_shared_screen_received_and_the_slots_kept() {
    let answers = [
        include_str!("testdata/chromium156_answer.sdp"),
        include_str!("testdata/chromium150_answer.sdp"),
        include_str!("testdata/firefox153_answer.sdp"),
        include_str!("testdata/firefox140_answer.sdp"),
    ];
    let second = [
        include_str!("testdata/chromium156_offer2.sdp"),
        include_str!("testdata/chromium150_offer2.sdp"),
        include_str!("testdata/firefox153_offer2.sdp"),
        include_str!("testdata/firefox140_offer2.sdp"),
    ];
    for (((browser, offer), answer), offer2) in OFFERS.iter().zip(answers).zip(second) {
        let (mut n, _) = answered(offer);
        // The slots the recorded answer answers (testdata/README.md).
        for (kind, slot, ssrc) in [(Kind::Audio, 0, 1111), (Kind::Audio, 1, 1112), (Kind::Video, 0, 2221), (Kind::Video, 1, 2222), (Kind::Content, 0, 3331)] {
            n.add_output(kind, slot, Ssrc(ssrc));
        }
        let _ = n.offer(&local());
        let accepted = n.apply_answer(&RemoteDescription::parse(answer).unwrap()).unwrap_or_else(|e| panic!("{browser}: {e}"));
        assert_eq!(accepted.len(), 5, "{browser}: every slot accepted");
        for o in &accepted {
            let want = if o.kind == Kind::Audio { Codec::Opus } else { Codec::Vp8 };
            assert!(o.payload_types.get(want).is_some(), "{browser}: {o:?}");
        }
        n.apply_offer(&RemoteDescription::parse(offer2).unwrap()).unwrap_or_else(|e| panic!("{browser}: {e}"));
        let inbound: Vec<&str> = n.inbound().map(|(mid, _)| mid.as_str()).collect();
        assert_eq!(inbound, vec!["0", "1", "2"], "{browser}: the screen (mid 2) is received beside microphone and camera");
        let sdp = n.answer(&local());
        assert!(sdp.contains("a=group:BUNDLE 0 1 a0 a1 v0 v1 c0 2\r\n"), "{browser}: {sdp}");
        assert!(section(&sdp, "v0").contains("a=sendonly"), "{browser}: an output stays an output");
    }
}

#[test]
fn a_camera_with_no_codec_the_bridge_forwards_is_refused_with_its_reason() {
    // Chromium's offer with only VP9 and AV1 left for the camera.
    let vp9_only =
        OFFERS[0].1.replace("m=video 9 UDP/TLS/RTP/SAVPF 96 97 ", "m=video 9 UDP/TLS/RTP/SAVPF ").replace("a=rtpmap:96 VP8/90000", "a=rtpmap:96 VP8-NOT/90000");
    let offer = RemoteDescription::parse(&vp9_only).unwrap();
    let mut n = Negotiation::new(&[Codec::Vp8]);
    n.apply_offer(&offer).unwrap();
    let refused: Vec<String> = n.refused_sends(&offer).map(|(s, why)| format!("{} {}: {why}", s.media, s.mid)).collect();
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert!(refused[0].starts_with("video 1: none of its codecs (h264, av1, vp9"), "{}", refused[0]);
    assert!(section(&n.answer(&local()), "1").starts_with("m=video 0 "), "refused with port 0");
    assert_eq!(n.inbound().count(), 1, "the microphone is still received");
}

#[test]
fn simulcast_order_paused_layers_and_the_older_rid_syntax_are_read() {
    let offer = |simulcast: &str| {
        let sdp = OFFERS[0].1.replace("a=simulcast:send l;h", simulcast).replace("a=rid:h send\r\n", "a=rid:h send\r\na=rid:m send pt=96;max-width=640\r\n");
        RemoteDescription::parse(&sdp).unwrap().sections[1].rids.clone()
    };
    assert_eq!(offer("a=simulcast:send h;m;l"), vec!["h", "m", "l"], "the simulcast line's order");
    assert_eq!(offer("a=simulcast:send l;~m;h"), vec!["l", "m", "h"], "a layer that starts paused is still received");
    assert_eq!(offer("a=simulcast:send rid=l;h"), vec!["l", "h"], "the draft's rid= prefix");
    assert_eq!(offer("a=simulcast:send l;x;h"), vec!["l", "h"], "a layer with no a=rid line is not");
}

#[test]
fn redundant_audio_can_be_turned_off() {
    let mut n = Negotiation::default().with_audio_red(false);
    n.apply_offer(&RemoteDescription::parse(CHROMIUM_OFFER).unwrap()).unwrap();
    let answer = n.answer(&local());
    assert!(section(&answer, "0").starts_with("m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"), "only Opus: {answer}");
    assert!(!answer.contains("red/48000"), "{answer}");
    n.add_output(Kind::Audio, 0, Ssrc(1111));
    let offer = n.offer(&local());
    assert!(section(&offer, "a0").starts_with("m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n") && !offer.contains("red/48000"), "{offer}");
}

#[test]
fn redundancy_that_carries_anything_but_the_chosen_opus_is_not_taken() {
    // RED listing another codec's blocks (here telephone events at 110) is declined.
    let offer = CHROMIUM_OFFER.replace("a=fmtp:63 111/111", "a=fmtp:63 111/110");
    let (n, answer) = answered(&offer);
    assert_eq!(n.inbound().next().map(|(_, i)| i.red), Some(None));
    assert!(section(&answer, "0").starts_with("m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"), "{answer}");
}

#[test]
fn firefox_is_offered_redundant_audio_at_a_number_it_does_not_use() {
    let offer = include_str!("testdata/firefox153_offer.sdp");
    let mut n = Negotiation::default();
    n.apply_offer(&RemoteDescription::parse(offer).unwrap()).unwrap();
    n.add_output(Kind::Audio, 0, Ssrc(1111));
    let slot = section(&n.offer(&local()), "a0").to_owned();
    assert!(slot.starts_with("m=audio 9 UDP/TLS/RTP/SAVPF 109 63\r\n"), "Firefox's own Opus number, RED at the bridge's: {slot}");
    assert!(slot.contains("a=fmtp:63 109/109\r\n"), "{slot}");
}

#[test]
fn video_slots_offer_retransmissions_on_a_second_ssrc_at_the_browsers_rtx_numbers() {
    let mut n = Negotiation::default();
    n.apply_offer(&RemoteDescription::parse(CHROMIUM_OFFER).unwrap()).unwrap();
    n.add_output_repaired(Kind::Audio, 0, Ssrc(1111), Some(Ssrc(1112)));
    n.add_output_repaired(Kind::Video, 0, Ssrc(2222), Some(Ssrc(2223)));
    n.add_output_repaired(Kind::Video, 1, Ssrc(3333), Some(Ssrc(3334)));
    let offer = n.offer(&local());
    let v0 = section(&offer, "v0");
    // Chromium repairs VP8 (96) with 97 and constrained-baseline H.264 (109) with 114.
    for line in [
        "m=video 9 UDP/TLS/RTP/SAVPF 96 109 97 114\r\n",
        "a=rtpmap:97 rtx/90000\r\na=fmtp:97 apt=96\r\n",
        "a=rtpmap:114 rtx/90000\r\na=fmtp:114 apt=109\r\n",
        "a=ssrc-group:FID 2222 2223\r\n",
        "a=ssrc:2223 cname:diemcau\r\na=ssrc:2223 msid:v0 v0\r\n",
    ] {
        assert!(v0.contains(line), "{line} in {v0}");
    }
    assert!(section(&offer, "v1").contains("a=ssrc-group:FID 3333 3334\r\n"));
    let a0 = section(&offer, "a0");
    assert!(!a0.contains("rtx") && !a0.contains("FID") && !a0.contains("1112"), "audio has no retransmission stream: {a0}");

    // Chromium answers with the offer's numbers: the slots' retransmission formats are taken.
    let answer = offer.replace("a=sendonly", "a=recvonly").replace("a=setup:passive", "a=setup:active");
    let accepted = n.apply_answer(&RemoteDescription::parse(&answer).unwrap()).unwrap();
    let v0 = accepted.iter().find(|o| o.kind == Kind::Video && o.slot == 0).unwrap();
    assert_eq!((v0.rtx.get(Codec::Vp8), v0.rtx.get(Codec::H264), v0.rtx_ssrc), (Some(97), Some(114), Some(Ssrc(2223))));

    // An answer without them leaves the slot without retransmission formats, and the next
    // offer does not offer them again.
    let plain: String = answer.split("\r\n").filter(|l| !l.contains("rtx/90000") && !l.contains(" apt=")).map(|l| format!("{l}\r\n")).collect();
    let accepted = n.apply_answer(&RemoteDescription::parse(&plain).unwrap()).unwrap();
    assert!(accepted.iter().all(|o| o.rtx.is_empty()), "{accepted:?}");
    let again = n.offer(&local());
    assert!(!again.contains("rtx/90000") && !again.contains("FID"), "{again}");
}

#[test]
fn retransmission_numbers_the_browser_never_gave_are_free_and_the_same_in_every_slot() {
    // A browser that offers no rtx of its own: the bridge picks numbers nothing else has.
    let offer: String = CHROMIUM_OFFER.split("\r\n").filter(|l| !l.contains("rtx/90000") && !l.contains(" apt=")).map(|l| format!("{l}\r\n")).collect();
    let remote = RemoteDescription::parse(&offer).unwrap();
    let mut n = Negotiation::default();
    n.apply_offer(&remote).unwrap();
    n.add_output_repaired(Kind::Audio, 0, Ssrc(1), None);
    for slot in 0..3 {
        n.add_output_repaired(Kind::Video, slot, Ssrc(10 + slot as u32), Some(Ssrc(20 + slot as u32)));
    }
    let outputs: Vec<&Output> = n
        .sections
        .iter()
        .filter_map(|s| match &s.role {
            Role::Output(o) => Some(o),
            _ => None,
        })
        .collect();
    let video: Vec<&&Output> = outputs.iter().filter(|o| o.kind == Kind::Video).collect();
    let (vp8, h264) = (video[0].rtx.get(Codec::Vp8).unwrap(), video[0].rtx.get(Codec::H264).unwrap());
    assert!(video.iter().all(|o| o.rtx.get(Codec::Vp8) == Some(vp8) && o.rtx.get(Codec::H264) == Some(h264)), "one number, one meaning in the bundle");
    let browsers: Vec<u8> = remote.sections.iter().flat_map(|s| s.codecs.iter().map(|c| c.pt)).collect();
    let bridges: Vec<u8> = outputs.iter().flat_map(|o| Codec::ALL.into_iter().filter_map(|c| o.payload_types.get(c))).collect();
    for pt in [vp8, h264] {
        assert!(!browsers.contains(&pt) && !bridges.contains(&pt), "{pt} is free");
    }
    assert_ne!(vp8, h264);
}

#[test]
fn firefox_repairs_vp8_with_its_own_number() {
    let mut n = Negotiation::default();
    n.apply_offer(&RemoteDescription::parse(include_str!("testdata/firefox153_offer.sdp")).unwrap()).unwrap();
    n.add_output_repaired(Kind::Video, 0, Ssrc(2222), Some(Ssrc(2223)));
    let v0 = section(&n.offer(&local()), "v0").to_owned();
    assert!(v0.contains("a=rtpmap:124 rtx/90000\r\na=fmtp:124 apt=120\r\n"), "{v0}");
}
