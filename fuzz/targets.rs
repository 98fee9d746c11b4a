//! The fuzz targets: one function per parser that takes bytes from a site, each fed any bytes
//! at all. Shared by the libFuzzer binaries (`fuzz/fuzz_targets/`, nightly, instrumented) and
//! the stable replay test (`tests/fuzz_replay.rs`, every `cargo test`), so both run the same
//! code. A target fails by panicking (a bug in the parser or in what the bridge does with its
//! result) or by not returning (a hang).
//!
//! Where the bridge's entry point is a method of a task that owns sockets (the lean peer's
//! `on_rtp`/`on_rtcp`), the target makes the same calls on the same pure pieces in the same
//! order, from the same bytes; see the comment on each target.

#![allow(dead_code)]

use bytes::Bytes;
use diemcau::health::board::StatsBoard;
use diemcau::media::codec::PayloadTypes;
use diemcau::media::rewrite::{Rewriter, Written};
use diemcau::media::router::Router;
use diemcau::media::{h264, speaker, vp8, Codec, Kind, RtpPacket, Selection, Ssrc};
use diemcau::peer::budget::RetransmitBudget;
use diemcau::peer::inbound::Inbound;
use diemcau::peer::lean::candidates::RemoteCandidates;
use diemcau::peer::lean::congestion::TransportFeedback;
use diemcau::peer::lean::history::{self, History};
use diemcau::peer::lean::reception::Reception;
use diemcau::peer::lean::repair::Repair;
use diemcau::peer::lean::sdp::{self as lean_sdp, LocalTransport, Negotiation, RemoteDescription};
use diemcau::peer::lean::sending::{self, Sent};
use diemcau::peer::lean::transport::{self, ice_lite::IceLite, IceCredentials};
use diemcau::peer::mux::sdp::{advertise_sdp, Advertised};
use diemcau::peer::mux::stun::{self, Class};
use diemcau::peer::mux::tcp::{read_first_frame, read_frame, signed_with};
use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtcp::payload_feedbacks::receiver_estimated_maximum_bitrate::ReceiverEstimatedMaximumBitrate;
use rtc::rtcp::receiver_report::ReceiverReport;
use rtc::rtcp::sender_report::SenderReport;
use rtc::rtcp::transport_feedbacks::transport_layer_cc::TransportLayerCc;
use rtc::rtcp::transport_feedbacks::transport_layer_nack::TransportLayerNack;
use rtc::shared::marshal::{Marshal, Unmarshal};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::AtomicU8;
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant, SystemTime};

/// A fuzz target: one input's bytes.
pub type Target = fn(&[u8]);

/// Every target by name, as the fuzz binaries and the seed directories name them.
pub const TARGETS: &[(&str, Target)] =
    &[("sdp", sdp), ("stun", stun), ("ice_tcp", ice_tcp), ("rtp", rtp), ("rtcp", rtcp), ("vp8", vp8), ("h264", h264), ("signal_json", signal_json)];

/// The bridge's ICE credentials in the STUN targets; the synthetic seeds are signed with them.
pub const LOCAL_UFRAG: &str = "fuzz";
pub const REMOTE_UFRAG: &str = "peer";
pub const PWD: &str = "fuzzfuzzfuzzfuzzfuzzfuzz";

/// Header extension ids in the RTP target: Chromium's numbering in its offers to the bridge.
pub const AUDIO_LEVEL_ID: u8 = 1;
pub const TRANSPORT_CC_ID: u8 = 3;
pub const MID_ID: u8 = 4;
pub const RID_ID: u8 = 10;

/// Splits a multi-packet input into packets: each is a 16-bit big-endian length and that many
/// bytes; a last record that runs past the end is the rest of the input.
pub fn records(mut data: &[u8]) -> impl Iterator<Item = &[u8]> {
    std::iter::from_fn(move || {
        if data.len() < 2 {
            return None;
        }
        let len = u16::from_be_bytes([data[0], data[1]]) as usize;
        let end = (2 + len).min(data.len());
        let record = &data[2..end];
        data = &data[end..];
        Some(record)
    })
}

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([192, 0, 2, 7], port))
}

/// The webrtc engine's advertised addresses in the `sdp` target: fixed, so built once.
static ADVERTISED: LazyLock<Advertised> = LazyLock::new(|| Advertised {
    udp_label: Some(addr(50_000)),
    tcp_label: Some(addr(50_001)),
    ips: vec![[203, 0, 113, 7].into(), [198, 51, 100, 1].into()],
    udp_port: 3478,
    tcp_port: Some(443),
});

/// The bridge's side of the lean engine's SDP in the `sdp` target: fixed, so built once.
static LOCAL_TRANSPORT: LazyLock<LocalTransport> = LazyLock::new(|| LocalTransport {
    ufrag: LOCAL_UFRAG.into(),
    pwd: PWD.into(),
    fingerprint: "sha-256 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF".into(),
    candidates: vec!["candidate:1 1 udp 2130706431 203.0.113.7 3478 typ host".into()],
});

/// SDP from a site (an offer or an answer, as text in a signalling message): the lean engine's
/// `on_remote_offer` and `on_remote_answer` on it (parse, negotiate, write the answer, add the
/// output slots, offer them, take the input as the answer to that offer), its candidates as
/// `RemoteCandidates` learns them, and the PeerConnection engine's candidate rewriting of
/// whole SDP (`mux::sdp::advertise_sdp`).
pub fn sdp(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = advertise_sdp(text, &ADVERTISED);
    let Ok(remote) = RemoteDescription::parse(text) else { return };
    let mut candidates = RemoteCandidates::default();
    for c in remote.sections.iter().flat_map(|s| &s.candidates) {
        candidates.add(c);
    }
    let _ = candidates.type_of(addr(9), true);
    for s in &remote.sections {
        let _ = s.choose(&Codec::VIDEO);
        let _ = s.preference().filter_map(|c| c.codec()).count();
    }
    let local = &*LOCAL_TRANSPORT;
    let mut negotiation = Negotiation::new(&Codec::VIDEO);
    if negotiation.apply_offer(&remote).is_ok() {
        let _ = negotiation.refused_sends(&remote).count();
        for (_, inbound) in negotiation.inbound() {
            let _ = (inbound.extmap(lean_sdp::MID_URI), inbound.extmap(lean_sdp::RID_URI), inbound.extmap(lean_sdp::TRANSPORT_CC_URI));
        }
        let answer = negotiation.answer(local);
        let _ = RemoteDescription::parse(&answer);
        negotiation.add_output(Kind::Audio, 0, diemcau::media::Ssrc(0x1111));
        negotiation.add_output(Kind::Video, 0, diemcau::media::Ssrc(0x2222));
        negotiation.add_output(Kind::Content, 0, diemcau::media::Ssrc(0x3333));
        let _ = negotiation.offer(local);
    }
    // The same text as the browser's answer to the bridge's offer, and as a re-offer.
    let _ = negotiation.apply_answer(&remote);
    let _ = negotiation.apply_offer(&remote);
}

/// One datagram on the shared UDP port, or one ICE-TCP frame: the mux's demultiplexing
/// (`mux::stun::classify`, the ufrag of USERNAME), the lean transport's first-byte
/// classification, and ICE-lite's answer to a connectivity check with the ufrag and password
/// above (`IceLite::answer`: parse, USERNAME, FINGERPRINT, MESSAGE-INTEGRITY, the response);
/// also the ICE-TCP router's `signed_with`.
pub fn stun(data: &[u8]) {
    let _ = transport::classify(data);
    if let stun::Kind::Stun { username: Some(u), .. } = stun::classify(data) {
        let _ = stun::local_ufrag(u);
    }
    let mut ice = IceLite::new(IceCredentials { ufrag: LOCAL_UFRAG.into(), pwd: PWD.into() }, REMOTE_UFRAG);
    let from = addr(40_000);
    if let Ok(answer) = ice.answer(Instant::now(), from, data) {
        // What the bridge sends back must be a STUN success the demultiplexer knows as one.
        assert!(matches!(stun::classify(&answer.response), stun::Kind::Stun { class: Class::Success, .. }), "answer is not a STUN success");
        assert!(answer.selected_changed && ice.accept_from(from), "a valid first check selects its address");
    }
    let _ = signed_with(data, PWD);
}

/// The bytes of one ICE-TCP connection (RFC 4571): the shared TCP port's acceptor reading the
/// first frame and routing by its USERNAME (`read_first_frame`, `signed_with`), then the lean
/// engine's reader taking frame after frame (`read_frame`), each demultiplexed as a datagram.
pub fn ice_tcp(data: &[u8]) {
    let mut stream = data;
    futures::executor::block_on(async {
        let Ok((prefix, ufrag)) = read_first_frame(&mut stream).await else { return };
        assert!(prefix.len() >= 22 && !ufrag.is_empty(), "a routed first frame is a STUN message with a ufrag");
        let _ = signed_with(&prefix[2..], PWD);
        while let Ok(frame) = read_frame(&mut stream).await {
            let _ = (stun::classify(&frame), transport::classify(&frame));
        }
    });
}

/// Decrypted RTP from a site, several packets in a row (see [`records`]) after one byte that
/// picks the stream (audio/Opus, video/VP8, video/H.264). What the lean engine's `on_rtp` does
/// with each (`lean/mod.rs`, which owns the socket): parse; transport-cc arrival
/// (`TransportFeedback`); reception statistics (`Reception`) and, for video, loss repair
/// (`Repair`); the RID and MID extensions; the stream's `Inbound` (layers, meters, audio
/// level, to the router); then what the router hands a receiver, through its `Rewriter`.
/// At the end: the transport-cc feedback, receiver reports and NACKs that would go back.
pub fn rtp(data: &[u8]) {
    let Some((&config, rest)) = data.split_first() else { return };
    let (kind, codec) = match config % 3 {
        0 => (Kind::Audio, Codec::Opus),
        1 => (Kind::Video, Codec::Vp8),
        _ => (Kind::Video, Codec::H264),
    };
    let (viewer, site) = (0, 1);
    let router = Router::new(2);
    let mut sink = router.register_sink(viewer, router.next_generation());
    let selection = Selection { audio: vec![Some(site)], video: vec![Some(site)], ..Default::default() };
    router.set_selections(vec![selection, Selection::default()]);
    let board = Arc::new(StatsBoard::new(2));
    let level = Arc::new(AtomicU8::new(AUDIO_LEVEL_ID));
    let mut inbound = Inbound::new(site, kind, router.next_generation(), router.clone(), board, level, codec, std::time::Instant::now());
    let mut feedback = TransportFeedback::default();
    feedback.set_extension(Some(TRANSPORT_CC_ID));
    let mut rewriter = Rewriter::new(Ssrc(0x0b0b), PayloadTypes::single(codec, 96), codec.clock_rate());
    let mut receptions: HashMap<Ssrc, Reception> = HashMap::new();
    let mut repairs: HashMap<Ssrc, Repair> = HashMap::new();
    let t0 = Instant::now();
    let mut now = t0;
    for record in records(rest) {
        now += Duration::from_millis(20);
        let mut bytes = Bytes::copy_from_slice(record);
        let Ok(packet) = RtpPacket::unmarshal(&mut bytes) else { continue };
        feedback.on_packet(now, &packet.header);
        let (ssrc, seq) = (Ssrc::of(&packet.header), packet.header.sequence_number);
        receptions.entry(ssrc).or_insert_with(|| Reception::new(ssrc, codec.clock_rate(), t0)).on_packet(seq, packet.header.timestamp, now);
        if kind.is_video() {
            repairs.entry(ssrc).or_insert_with(|| Repair::new(ssrc)).on_packet(seq, now);
        }
        let _ = packet.header.get_extension(MID_ID);
        let rid = packet.header.get_extension(RID_ID).map(|r| String::from_utf8_lossy(&r).into_owned());
        if let Some(level) = packet.header.get_extension(AUDIO_LEVEL_ID) {
            let _ = speaker::level_from_extension(&level).map(speaker::loudness);
        }
        let _ = codec.starts_keyframe(&packet.payload);
        if !inbound.has_layer(ssrc) {
            let _keyframe_requests = inbound.open_layer(ssrc, rid.as_deref(), now);
        }
        inbound.on_packet(packet, now);
        while let Ok(mut forwarded) = sink.try_recv() {
            let _ = rewriter.rewrite(&mut forwarded.packet, now);
            let _ = forwarded.packet.marshal();
        }
    }
    now += Duration::from_millis(200);
    let _ = feedback.due(now);
    for r in receptions.values_mut() {
        let _ = r.report(now).marshal();
    }
    for r in repairs.values_mut() {
        if let Some(nack) = r.due(now, Some(Duration::from_millis(50)), Ssrc(1)) {
            let _ = nack.marshal();
        }
    }
}

/// Decrypted RTCP from a site (a compound packet). What the lean engine's `on_rtcp` does with
/// it (`lean/mod.rs`, which owns the socket): `rtcp::packet::unmarshal`, then sender reports
/// to `Reception`, reception blocks to the round trip and the downlink loss (`sending`), NACKs
/// to the history and the retransmission budget (`history::requested`, `History::resend`,
/// `RetransmitBudget`), PLI and FIR to keyframe requests; REMB and transport-cc feedback are
/// read too (the PeerConnection engine's interceptors take them). Every SSRC the packet names
/// is treated as one of the bridge's, so every branch is reached.
pub fn rtcp(data: &[u8]) {
    let Ok(packets) = rtc::rtcp::packet::unmarshal(&mut &data[..]) else { return };
    let t0 = Instant::now();
    let wall = SystemTime::UNIX_EPOCH + Duration::from_secs(1_780_000_000);
    let mut blocks = Vec::new();
    let mut keyframe_requests = Vec::new();
    let mut budget = RetransmitBudget::default();
    for p in &packets {
        let _ = p.marshal();
        let any = p.as_any();
        if let Some(sr) = any.downcast_ref::<SenderReport>() {
            Reception::new(Ssrc(sr.ssrc), 90_000, t0).on_sender_report(sr.ntp_time, t0);
            blocks.extend(sr.reports.iter().cloned());
        } else if let Some(rr) = any.downcast_ref::<ReceiverReport>() {
            blocks.extend(rr.reports.iter().cloned());
        } else if let Some(nack) = any.downcast_ref::<TransportLayerNack>() {
            let mut sent = History::default();
            let seqs: Vec<u16> = nack.nacks.iter().flat_map(|p| history::requested(p.packet_id, p.lost_packets)).take(64).collect();
            for &seq in &seqs {
                let mut packet = RtpPacket::default();
                packet.header.ssrc = nack.media_ssrc;
                packet.header.sequence_number = seq;
                sent.push(&packet);
            }
            for seq in seqs {
                if let Some(packet) = sent.resend(seq, t0, Duration::from_millis(10)) {
                    if !budget.allow(packet.payload.len() + 12, t0) {
                        break;
                    }
                }
            }
        } else if let Some(pli) = any.downcast_ref::<PictureLossIndication>() {
            keyframe_requests.push(pli.media_ssrc);
        } else if let Some(fir) = any.downcast_ref::<FullIntraRequest>() {
            keyframe_requests.extend(fir.fir.iter().map(|e| e.ssrc));
        } else if let Some(remb) = any.downcast_ref::<ReceiverEstimatedMaximumBitrate>() {
            let _ = (remb.bitrate, remb.ssrcs.len());
        } else if let Some(cc) = any.downcast_ref::<TransportLayerCc>() {
            let _ = (cc.packet_chunks.len(), cc.recv_deltas.len());
        }
    }
    for block in &blocks {
        let _ = sending::round_trip(block, wall);
        let mut sent = Sent::new(Ssrc(block.ssrc), 90_000);
        sent.on_packet(1, 0, 1000, t0);
        sent.on_packet(2, 3000, 1000, t0 + Duration::from_millis(33));
        let _ = sent.downlink_loss(block);
        let _ = sent.report(t0 + Duration::from_millis(40), wall);
    }
}

/// A receiver's rewriter that has forwarded one VP8 packet of another source (SSRC 0), and when.
static VP8_SWITCHED: LazyLock<(Rewriter, Instant)> = LazyLock::new(|| {
    let mut rewriter = Rewriter::new(Ssrc(7), PayloadTypes::single(Codec::Vp8, 96), 90_000);
    let now = Instant::now();
    let mut first = RtpPacket::default();
    first.header.payload_type = Codec::Vp8.internal_pt();
    first.payload = Bytes::from_static(&[0x90, 0xc0, 0x80, 0x05, 0x09]);
    assert!(rewriter.rewrite(&mut first, now).sent());
    (rewriter, now)
});

/// A VP8 RTP payload: the descriptor, key frame and size (statistics, recorder), the picture
/// numbering and its rewriting (`Rewriter` towards each receiver).
pub fn vp8(data: &[u8]) {
    if let Some(d) = vp8::descriptor(data) {
        assert!(d.len < data.len(), "the descriptor leaves VP8 data");
        let _ = (d.starts_frame(), vp8::is_keyframe(&data[d.len..]));
    }
    let _ = (vp8::keyframe_size(data), vp8::frame_size(data), Codec::Vp8.starts_keyframe(data));
    if let Some(n) = vp8::numbering(data) {
        let mut copy = data.to_vec();
        n.write(&mut copy, 0x1234, 0x56);
        let again = vp8::numbering(&copy).expect("rewritten numbers still parse");
        let wanted = if n.wide { 0x1234 } else { 0x34 };
        assert_eq!(again.picture_id, n.picture_id.map(|_| wanted), "PictureID written");
        assert_eq!(again.tl0, n.tl0.map(|_| 0x56), "TL0PICIDX written");
    }
    // Through a receiver's rewriter, after a source switch (renumbering on): a copy of the one
    // made once, so every input meets the same state.
    let (switched, now) = &*VP8_SWITCHED;
    let (mut rewriter, now) = (switched.clone(), *now);
    let mut packet = RtpPacket::default();
    packet.header.payload_type = Codec::Vp8.internal_pt();
    packet.header.ssrc = 99;
    packet.payload = Bytes::copy_from_slice(data);
    let mut thinned = (rewriter.clone(), packet.clone());
    assert!(rewriter.rewrite(&mut packet, now + Duration::from_millis(40)).sent(), "every frame goes where every frame is wanted");
    assert_eq!(packet.payload.len(), data.len(), "rewriting keeps the payload's length");
    // Towards a receiver sent the base temporal layer alone: sent whole or not at all.
    thinned.0.set_temporal(0);
    match thinned.0.rewrite(&mut thinned.1, now + Duration::from_millis(40)) {
        Written::Sent => assert_eq!(thinned.1.payload.len(), data.len()),
        Written::Thinned => assert!(vp8::numbering(data).and_then(|n| n.temporal).is_some_and(|t| t.layer > 0), "only an upper temporal layer is thinned"),
        Written::Refused => panic!("a VP8 packet refused"),
    }
}

/// An H.264 RTP payload: where a key frame starts, and the recorder's Annex B assembly.
pub fn h264(data: &[u8]) {
    let _ = (h264::starts_keyframe(data), Codec::H264.starts_keyframe(data));
    let mut out = Vec::new();
    let appended = h264::append_annex_b(data, &mut out);
    assert!(appended || out.is_empty(), "nothing appended when the payload is refused");
    assert!(out.len() <= 4 + 2 * data.len() + 4, "Annex B output bounded by the input");
}

/// A signalling message from a site's WebSocket (`signal::protocol::parse_client`); text
/// frames only, so the bytes must be UTF-8 first.
pub fn signal_json(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(message) = diemcau::signal::protocol::parse_client(text) {
        let _ = serde_json::to_string(&message);
    }
}
