//! One site's session against a browser in process, on simulated time: Chromium's recorded
//! offer and answer (`../sdp/testdata/`), a real DTLS client for the handshake and SRTP both
//! ways, and time that moves only when a test says so. What reaches the "browser" is decrypted
//! and read as the browser would read it.

use super::*;
use crate::config::LineLimits;
use crate::media::router::SinkPacket;
use crate::media::{Codec, RtpPacket};
use crate::peer::budget::{Budget, MAX_SSRCS};
use crate::peer::lean::transport::test_browser::{check, Browser, BRIDGE, BROWSER};
use crate::peer::PeerCommand;
use rtc::dtls::config::HandshakeConfig;
use rtc::dtls::endpoint::EndpointEvent;
use rtc::dtls::extension::extension_use_srtp::SrtpProtectionProfile;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtcp::receiver_report::ReceiverReport;
use rtc::rtcp::transport_feedbacks::transport_layer_nack::{NackPair, TransportLayerNack};
use rtc::shared::marshal::{Marshal, Unmarshal};

const WARD: usize = 1;
const OFFER: &str = include_str!("../sdp/testdata/chromium156_offer.sdp");
/// Chromium's answer to the bridge's offer of slots `a0 a1 v0 v1 c0` (no retransmission
/// stream, no transport-wide numbering on the slots).
const ANSWER: &str = include_str!("../sdp/testdata/chromium156_answer.sdp");
/// The microphone's SSRC in [`OFFER`].
const MIC: u32 = 3264625330;
/// The camera's high layer: not in the SDP, learnt from its mid and RID header extensions
/// (ids 4 and 10 in [`OFFER`]).
const CAMERA: u32 = 0xCA3E_0001;
const MID_EXT: u8 = 4;
const RID_EXT: u8 = 10;
/// Bounds every loop that waits on the session.
const MAX_STEPS: usize = 100_000;

/// A ward's session and the browser at the other end.
struct Site {
    session: Session,
    browser: Browser,
    config: Arc<HandshakeConfig>,
    board: Arc<StatsBoard>,
    now: Instant,
    events: Vec<PeerEvent>,
    /// RTP the browser received (decrypted), with when.
    rtp: Vec<(Instant, RtpPacket)>,
    /// RTCP compounds the browser received (decrypted), with when.
    rtcp: Vec<(Instant, Vec<u8>)>,
    /// Layers whose keyframe requests the session handed the driver.
    keyframe_layers: Vec<Ssrc>,
    checks_failed: Vec<SocketAddr>,
}

/// The same description with the test browser's certificate in place of the recorded one.
fn with_fingerprint(sdp: &str, fingerprint: &str) -> String {
    let lines = sdp.split("\r\n").map(|l| if l.starts_with("a=fingerprint:") { format!("a=fingerprint:{fingerprint}") } else { l.to_owned() });
    lines.collect::<Vec<_>>().join("\r\n")
}

fn attribute<'a>(sdp: &'a str, prefix: &str) -> &'a str {
    sdp.lines().find_map(|l| l.trim_end().strip_prefix(prefix)).unwrap_or_else(|| panic!("no {prefix} in\n{sdp}"))
}

fn rtp(ssrc: u32, pt: u8, seq: u16, payload: &[u8]) -> RtpPacket {
    let mut p = RtpPacket::default();
    p.header.version = 2;
    p.header.payload_type = pt;
    p.header.sequence_number = seq;
    p.header.timestamp = u32::from(seq) * 960;
    p.header.ssrc = ssrc;
    p.payload = bytes::Bytes::copy_from_slice(payload);
    p
}

/// A packet of the camera's high layer, named by its mid and RID as Chromium names them.
fn camera(seq: u16) -> RtpPacket {
    let mut p = rtp(CAMERA, 96, seq, &[0x10, 0x00, 0x9d, 0x01, 0x2a]);
    p.header.set_extension(MID_EXT, bytes::Bytes::from_static(b"1")).unwrap();
    p.header.set_extension(RID_EXT, bytes::Bytes::from_static(b"h")).unwrap();
    p
}

impl Site {
    /// The ward's first offer applied; nothing else yet.
    fn offered() -> Site {
        let now = Instant::now();
        let router = Router::new(6);
        let board = Arc::new(StatsBoard::new(6));
        let ids: Vec<String> = ["hq", "cua-nam", "hang-bai", "hang-gai", "trang-tien", "hang-dao"].map(String::from).to_vec();
        let ctx = Surroundings {
            router: router.clone(),
            board: board.clone(),
            lines: Arc::new(Ceilings::new(vec![LineLimits::default(); 6])),
            site_ids: ids.into(),
            slots: (2, 2),
            video_codecs: vec![Codec::Vp8],
            audio_red: true,
            identity: Arc::new(Identity::generate().unwrap()),
            udp_addr: BRIDGE,
            candidates: vec![format!("candidate:1 1 udp 2130706431 {} {} typ host", BRIDGE.ip(), BRIDGE.port())],
        };
        let session = Session::new(WARD, router.next_generation(), ctx, now, SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000));
        let (browser, config) = Browser::new(vec![SrtpProtectionProfile::Srtp_Aead_Aes_128_Gcm]);
        let mut site = Site {
            session,
            browser,
            config,
            board,
            now,
            events: Vec::new(),
            rtp: Vec::new(),
            rtcp: Vec::new(),
            keyframe_layers: Vec::new(),
            checks_failed: Vec::new(),
        };
        let offer = with_fingerprint(OFFER, &site.browser.fingerprint);
        site.command(PeerCommand::RemoteOffer(offer));
        site
    }

    /// The ward offers as Chromium does, checks, shakes hands and answers the bridge's slots.
    fn connected() -> Site {
        Site::connected_answering(|_, answer| answer.to_owned())
    }

    /// [`Site::connected`], the recorded answer changed by `edit(bridge's offer, answer)`.
    fn connected_answering(edit: impl Fn(&str, &str) -> String) -> Site {
        let mut site = Site::offered();
        let answer = site.answer();
        let (ufrag, pwd) = (attribute(&answer, "a=ice-ufrag:"), attribute(&answer, "a=ice-pwd:"));
        site.datagram(&check(&format!("{ufrag}:{}", attribute(OFFER, "a=ice-ufrag:")), pwd));
        site.browser.dtls.connect(site.now, BRIDGE, site.config.clone(), None).unwrap();
        site.shake_hands();
        assert_eq!(site.states().last(), Some(&MediaState::Connected), "{:?}", site.events);
        let offer = site.events.iter().find_map(|e| if let PeerEvent::LocalOffer(o) = e { Some(o.clone()) } else { None }).expect("the slots are offered");
        let answer = edit(&offer, &with_fingerprint(ANSWER, &site.browser.fingerprint));
        site.command(PeerCommand::RemoteAnswer(answer));
        site
    }

    fn answer(&self) -> String {
        let answer = self.events.iter().find_map(|e| match e {
            PeerEvent::LocalAnswer(a) => Some(a.clone()),
            _ => None,
        });
        answer.expect("the offer is answered")
    }

    fn states(&self) -> Vec<MediaState> {
        self.events.iter().filter_map(|e| if let PeerEvent::State(s) = e { Some(*s) } else { None }).collect()
    }

    fn command(&mut self, cmd: PeerCommand) {
        self.session.handle_command(self.now, cmd);
        self.deliver();
    }

    fn datagram(&mut self, data: &[u8]) {
        self.session.handle_datagram(self.now, BROWSER, data, self.now);
        self.deliver();
    }

    /// The browser sends one RTP packet, encrypted.
    fn send_rtp(&mut self, packet: &RtpPacket) {
        let plain = packet.marshal().unwrap();
        let (out, _) = self.browser.srtp.as_mut().expect("keyed");
        let datagram = out.encrypt_rtp(&plain).unwrap();
        self.datagram(&datagram);
    }

    /// The browser sends one RTCP packet, encrypted.
    fn send_rtcp(&mut self, packet: &impl Marshal) {
        let plain = packet.marshal().unwrap();
        let (out, _) = self.browser.srtp.as_mut().expect("keyed");
        let datagram = out.encrypt_rtcp(&plain).unwrap();
        self.datagram(&datagram);
    }

    /// Passes handshake flights both ways until neither side has more (bounded).
    fn shake_hands(&mut self) {
        for _ in 0..20 {
            let mut moved = false;
            while let Some(m) = self.browser.dtls.poll_transmit() {
                moved = true;
                self.session.handle_datagram(self.now, BROWSER, &m.message, self.now);
                moved |= self.deliver() > 0;
            }
            if !moved {
                return;
            }
        }
        panic!("the handshake did not settle in 20 rounds");
    }

    /// Carries out what the session asked, as its driver would, with the browser at the other
    /// end of every datagram. Returns the datagrams it carried.
    fn deliver(&mut self) -> usize {
        let mut carried = 0;
        while let Some(output) = self.session.poll_output() {
            match output {
                Output::Transmit(to, datagram) => {
                    assert_eq!(to, BROWSER);
                    carried += 1;
                    self.receive(datagram);
                }
                Output::Event { event, .. } => self.events.push(event),
                Output::KeyframeRequests(ssrc, _) => self.keyframe_layers.push(ssrc),
                Output::CheckFailed(from) => self.checks_failed.push(from),
                Output::Listen(_) => {}
            }
        }
        carried
    }

    /// One datagram at the browser: SRTP or SRTCP once keyed, DTLS before, STUN answers ignored.
    fn receive(&mut self, datagram: BytesMut) {
        match datagram.first() {
            Some(0..=3) => {}
            Some(20..=63) => {
                let events = self.browser.dtls.read(self.now, BRIDGE, None, datagram).unwrap();
                if events.iter().any(|e| matches!(e, EndpointEvent::HandshakeComplete)) {
                    self.browser.key();
                }
            }
            Some(128..=191) => {
                let (_, inb) = self.browser.srtp.as_mut().expect("no media before the keys");
                if (192..=223).contains(&datagram[1]) {
                    self.rtcp.push((self.now, inb.decrypt_rtcp(&datagram).unwrap().to_vec()));
                } else {
                    let mut plain = inb.decrypt_rtp(&datagram).unwrap().freeze();
                    self.rtp.push((self.now, RtpPacket::unmarshal(&mut plain).unwrap()));
                }
            }
            other => panic!("the browser cannot read a datagram starting {other:?}"),
        }
    }

    /// Time passes: every timeout the session names within `d` is handled at its moment.
    fn advance(&mut self, d: Duration) {
        let until = self.now + d;
        for _ in 0..MAX_STEPS {
            let due = self.session.poll_timeout();
            if due > until {
                self.now = until;
                return;
            }
            self.now = due.max(self.now);
            self.session.handle_timeout(self.now);
            self.deliver();
            // A moment once handled is never due again: a driver would spin on it.
            assert!(self.session.poll_timeout() > self.now, "still due after its timeout was handled");
        }
        panic!("the session wanted more than {MAX_STEPS} wakes in {d:?}");
    }

    /// The RTCP packets of one kind the browser received, with when.
    fn received<T: Clone + 'static>(&self) -> Vec<(Instant, T)> {
        let mut found = Vec::new();
        for (at, compound) in &self.rtcp {
            for p in rtc::rtcp::packet::unmarshal(&mut &compound[..]).unwrap() {
                if let Some(t) = p.as_any().downcast_ref::<T>() {
                    found.push((*at, t.clone()));
                }
            }
        }
        found
    }

    /// The SSRC the bridge's first video slot goes out with.
    fn v0(&self) -> u32 {
        self.session.output_ssrcs.iter().find(|(_, &slot)| slot == (Kind::Video, 0)).map(|(ssrc, _)| ssrc.0).unwrap()
    }

    /// The router gives the ward's first video slot HQ's camera packet `seq` (a keyframe).
    fn forward_to_v0(&mut self, seq: u16) {
        self.forward_sized_to_v0(seq, 6);
    }

    /// [`Site::forward_to_v0`] with a payload of `len` bytes.
    fn forward_sized_to_v0(&mut self, seq: u16, len: usize) {
        let mut payload = vec![seq as u8; len.max(5)];
        payload[..5].copy_from_slice(&[0x10, 0x00, 0x9d, 0x01, 0x2a]);
        let packet = rtp(0x4051, Codec::Vp8.internal_pt(), seq, &payload);
        let p = SinkPacket {
            source: 0,
            kind: Kind::Video,
            layer: crate::media::HIGH,
            temporal: crate::media::temporal::ALL,
            slot: 0,
            plain: false,
            packet,
            received: self.now,
        };
        self.session.handle_packet(self.now, p);
        self.deliver();
    }
}

#[test]
fn a_chromium_offer_is_answered_the_slots_offered_and_the_handshake_connects() {
    let site = Site::connected();
    let order: Vec<&str> = site
        .events
        .iter()
        .map(|e| match e {
            PeerEvent::LocalAnswer(_) => "answer",
            PeerEvent::LocalCandidate(_) => "candidate",
            PeerEvent::LocalOffer(_) => "offer",
            PeerEvent::State(MediaState::Connecting) => "connecting",
            PeerEvent::State(MediaState::Connected) => "connected",
            _ => "other",
        })
        .collect();
    assert_eq!(order, ["answer", "candidate", "offer", "connecting", "connected"]);
    assert!(site.session.outputs.written == 0 && site.rtp.is_empty(), "no media before anything is forwarded");
    assert_eq!(site.session.bound_video_slots(), vec![(Kind::Video, 0), (Kind::Video, 1), (Kind::Content, 0)], "the answer accepted every video slot");
}

#[test]
fn a_check_with_the_wrong_password_is_refused_and_counted_against_its_address() {
    let mut site = Site::offered();
    let ufrag = attribute(&site.answer(), "a=ice-ufrag:").to_owned();
    site.datagram(&check(&format!("{ufrag}:{}", attribute(OFFER, "a=ice-ufrag:")), "not-the-password-at-all"));
    assert_eq!(site.checks_failed, vec![BROWSER]);
    assert_eq!(site.states(), vec![MediaState::Connecting], "nothing was selected");
}

#[test]
fn receiver_reports_come_four_times_a_second_at_first_then_once_a_second() {
    let mut site = Site::connected();
    let start = site.now;
    // Six seconds of the microphone at 50 packets a second; ten packets never arrive.
    for seq in 0..300u16 {
        if !(100..110).contains(&seq) {
            site.send_rtp(&rtp(MIC, 111, seq, &[0xF8, 0xFF, 0xFE]));
        }
        site.advance(Duration::from_millis(20));
    }
    let reports: Vec<(Duration, u32, u32)> = site
        .received::<ReceiverReport>()
        .into_iter()
        .filter_map(|(at, rr)| rr.reports.iter().find(|b| b.ssrc == MIC).map(|b| (at - start, b.total_lost, b.last_sequence_number)))
        .collect();
    let gaps: Vec<Duration> = reports.windows(2).map(|w| w[1].0 - w[0].0).collect();
    let early = gaps.iter().take_while(|g| **g == Duration::from_millis(250)).count();
    assert!((9..=12).contains(&early), "every 250 ms for the first three seconds: {gaps:?}");
    assert!(gaps[early..].iter().all(|g| *g == Duration::from_secs(1)), "then every second: {gaps:?}");
    let (_, lost, highest) = *reports.last().unwrap();
    assert_eq!(lost, 10, "the ten that never came are reported lost");
    assert_eq!(highest, 299, "up to the last one");
}

#[test]
fn ssrcs_are_learnt_from_the_sdp_and_the_mid_and_a_flood_stops_at_the_budget() {
    let mut site = Site::connected();
    site.send_rtp(&rtp(MIC, 111, 1, &[0xF8]));
    site.send_rtp(&camera(1));
    assert_eq!(site.session.by_ssrc.len(), 2, "the microphone by its SDP SSRC, the camera by its mid");
    assert_eq!(site.keyframe_layers, vec![Ssrc(CAMERA)], "the camera's layer takes the router's keyframe requests");
    // An SSRC neither the SDP nor a mid names, in a payload type two streams could carry.
    site.send_rtp(&rtp(0x5EED, 111, 1, &[0xF8]));
    assert_eq!(site.session.by_ssrc.len(), 2, "a packet that names no stream is not followed");
    // A hostile page names the camera's mid on ever new SSRCs.
    for ssrc in 0..100u32 {
        let mut p = camera(1);
        p.header.ssrc = 0xBAD0_0000 + ssrc;
        site.send_rtp(&p);
    }
    assert_eq!(site.session.by_ssrc.len(), MAX_SSRCS, "followed up to the budget, no further");
    let refused = site.board.refused(WARD).iter().find(|(b, _)| *b == Budget::Ssrcs).map(|(_, n)| *n).unwrap();
    assert!(refused >= (100 + 2 - MAX_SSRCS) as u64, "each refusal is counted on the board: {refused}");
    site.send_rtp(&rtp(MIC, 111, 2, &[0xF8]));
    assert_eq!(site.session.receptions.get_mut(&Ssrc(MIC)).unwrap().report(site.now).last_sequence_number, 2, "the microphone carries on");
}

#[test]
fn a_nack_is_answered_from_the_slots_history_once_per_round_trip() {
    let mut site = Site::connected();
    for seq in 1000..1050u16 {
        site.forward_to_v0(seq);
    }
    let v0 = site.v0();
    let sent: Vec<u16> = site.rtp.iter().filter(|(_, p)| p.header.ssrc == v0).map(|(_, p)| p.header.sequence_number).collect();
    assert_eq!(sent.len(), 50, "every packet went out on the slot");
    let wanted = sent[10];
    let nack = TransportLayerNack { sender_ssrc: 7, media_ssrc: v0, nacks: vec![NackPair { packet_id: wanted, lost_packets: 0 }] };
    let again = |site: &Site| site.rtp.iter().filter(|(_, p)| p.header.ssrc == v0 && p.header.sequence_number == wanted).count() - 1;
    site.send_rtcp(&nack);
    assert_eq!(again(&site), 1, "sent again at once, from the history (no retransmission stream negotiated)");
    site.send_rtcp(&nack);
    assert_eq!(again(&site), 1, "not twice within a round trip");
    site.advance(budget::RESEND_GAP);
    site.send_rtcp(&nack);
    assert_eq!(again(&site), 2, "again after a round trip");
    assert_eq!(site.session.retransmitted, 2);
}

#[test]
fn a_flood_of_nacks_is_answered_only_within_the_budget() {
    let mut site = Site::connected();
    for seq in 0..500u16 {
        site.forward_to_v0(seq);
    }
    let v0 = site.v0();
    let first = site.rtp.iter().find(|(_, p)| p.header.ssrc == v0).unwrap().1.header.sequence_number;
    // Every packet asked for, again and again, each time after the resend gap.
    for round in 0..4u16 {
        for block in 0..30u16 {
            let id = first.wrapping_add(block * 16);
            let nack = TransportLayerNack { sender_ssrc: 7, media_ssrc: v0, nacks: vec![NackPair { packet_id: id, lost_packets: 0xFFFF }] };
            site.send_rtcp(&nack);
        }
        site.advance(budget::RESEND_GAP + Duration::from_millis(u64::from(round)));
    }
    let retransmitted = site.session.retransmitted;
    assert!(retransmitted <= budget::RETRANSMIT_PACKETS_BURST as u64 + 60, "within the burst and what the rate refilled: {retransmitted}");
    assert!(retransmitted >= 200, "yet up to the budget the site is answered: {retransmitted}");
    let refused = site.board.refused(WARD).iter().find(|(b, _)| *b == Budget::Nacks).map(|(_, n)| *n).unwrap();
    assert!(refused > 0 && refused == site.session.retransmit_budget.refused, "what was refused is counted on the board: {refused}");
}

#[test]
fn what_the_uplink_lost_of_the_camera_is_asked_for_again_until_it_comes() {
    let mut site = Site::connected();
    for seq in [1, 2, 3, 5, 6] {
        site.send_rtp(&camera(seq));
        site.advance(Duration::from_millis(10));
    }
    site.advance(Duration::from_millis(100));
    let nacks = site.received::<TransportLayerNack>();
    let asked: Vec<u16> = nacks.iter().filter(|(_, n)| n.media_ssrc == CAMERA).flat_map(|(_, n)| n.nacks.iter().map(|p| p.packet_id)).collect();
    assert!(!asked.is_empty() && asked.iter().all(|&s| s == 4), "packet 4, and only it, is asked for: {asked:?}");
    site.send_rtp(&camera(4));
    let before = site.received::<TransportLayerNack>().len();
    site.advance(Duration::from_secs(1));
    assert_eq!(site.received::<TransportLayerNack>().len(), before, "once it came, nothing more is asked");
    let repair = &site.session.repairs[&Ssrc(CAMERA)];
    assert_eq!((repair.recovered, repair.missing()), (1, 0));
}

#[test]
fn the_routers_keyframe_request_reaches_the_camera_as_a_pli() {
    let mut site = Site::connected();
    site.send_rtp(&camera(1));
    site.session.handle_keyframe_request(site.now, Ssrc(CAMERA));
    site.deliver();
    let plis = site.received::<PictureLossIndication>();
    assert_eq!(plis.iter().map(|(_, p)| (p.sender_ssrc, p.media_ssrc)).collect::<Vec<_>>(), vec![(RTCP_SSRC.0, CAMERA)]);
}

#[test]
fn before_the_keys_nothing_is_forwarded_and_the_wake_ups_stay_few() {
    let mut site = Site::offered();
    site.forward_to_v0(1);
    assert!(site.rtp.is_empty(), "no slot is bound and no key exists yet");
    assert_eq!(site.session.outputs.unbound, 1, "counted as unbound");
    let start = site.now;
    let mut wakes = 0;
    while site.now < start + Duration::from_secs(10) && wakes < MAX_STEPS {
        let due = site.session.poll_timeout();
        site.now = due.max(site.now);
        site.session.handle_timeout(site.now);
        site.deliver();
        wakes += 1;
    }
    // Its duties: reports every 250 ms, transport feedback, the health board every 2 s, and a
    // few handshake timers. A duty whose moment was not moved on would wake it without end.
    let duties = 40 + (10_000 / congestion::FEEDBACK_INTERVAL.as_millis()) as usize + 5 + 10;
    assert!(wakes <= duties, "an idle session wakes for its periodic duties, not in a loop: {wakes} wakes in 10 s");
}

#[test]
fn repairs_take_no_more_than_their_share_of_the_downlink_estimate() {
    // The answer keeps the bridge's transport-wide numbering on v0: the browser reports on the
    // downlink, so the bridge has an estimate of it to share.
    let mut site = Site::connected_answering(|offer, answer| {
        let v0 = &offer[offer.find("a=mid:v0").unwrap()..];
        let id = v0.lines().find_map(|l| l.strip_suffix(&format!(" {}", crate::peer::lean::sdp::TRANSPORT_CC_URI))).unwrap();
        answer.replacen("a=mid:v0\r\n", &format!("a=mid:v0\r\n{id} {}\r\n", crate::peer::lean::sdp::TRANSPORT_CC_URI), 1)
    });
    assert!(site.session.numbering.is_on(), "the numbering was accepted");
    for seq in 0..300u16 {
        site.forward_sized_to_v0(seq, 1000);
    }
    let v0 = site.v0();
    let first = site.rtp.iter().find(|(_, p)| p.header.ssrc == v0).unwrap().1.header.sequence_number;
    let sent_before = site.rtp.len();
    let start = site.now;
    // The browser asks for everything again, four times over 400 ms.
    for _ in 0..4 {
        for block in 0..18u16 {
            let nack = TransportLayerNack {
                sender_ssrc: 7,
                media_ssrc: v0,
                nacks: vec![NackPair { packet_id: first.wrapping_add(block * 17), lost_packets: 0xFFFF }],
            };
            site.send_rtcp(&nack);
        }
        site.advance(budget::RESEND_GAP);
    }
    let repaired: usize = site.rtp[sent_before..].iter().filter(|(_, p)| p.header.ssrc == v0).map(|(_, p)| p.payload.len()).sum();
    let rate = site.session.estimate.bps() * REPAIR_SHARE / 8.0;
    let allowed = rate * (REPAIR_SAVED + (site.now - start).as_secs_f64()) + 1100.0;
    assert!(repaired > 0 && (repaired as f64) <= allowed, "{repaired} bytes sent again; the share allows {allowed:.0}");
    assert!(site.session.repairs_held > 0, "what did not fit was held");
    let refused = site.board.refused(WARD).iter().find(|(b, _)| *b == Budget::Nacks).map(|(_, n)| *n).unwrap();
    assert_eq!(refused, 0, "held for the line, not refused as a hostile site's flood (no over-budget alarm)");
}

#[test]
fn a_flood_of_nacks_is_refused_as_such_where_the_line_s_share_would_hold_it_too() {
    let mut site = Site::connected_answering(|offer, answer| {
        let v0 = &offer[offer.find("a=mid:v0").unwrap()..];
        let id = v0.lines().find_map(|l| l.strip_suffix(&format!(" {}", crate::peer::lean::sdp::TRANSPORT_CC_URI))).unwrap();
        answer.replacen("a=mid:v0\r\n", &format!("a=mid:v0\r\n{id} {}\r\n", crate::peer::lean::sdp::TRANSPORT_CC_URI), 1)
    });
    for seq in 0..300u16 {
        site.forward_sized_to_v0(seq, 1000);
    }
    let v0 = site.v0();
    let first = site.rtp.iter().find(|(_, p)| p.header.ssrc == v0).unwrap().1.header.sequence_number;
    // A hostile site: a thousand NACKs in one second, each for a different packet.
    for i in 0..1000u16 {
        let nack = TransportLayerNack { sender_ssrc: 7, media_ssrc: v0, nacks: vec![NackPair { packet_id: first.wrapping_add(i % 300), lost_packets: 0 }] };
        site.send_rtcp(&nack);
        site.advance(Duration::from_millis(1));
    }
    let refused = site.board.refused(WARD).iter().find(|(b, _)| *b == Budget::Nacks).map(|(_, n)| *n).unwrap_or(0);
    assert!(refused > 0, "the flood was not counted against the site's NACK budget (so no over-budget alarm)");
}

/// The recorded answer, accepting the bridge's transport-wide numbering and its
/// retransmission stream on v0 (Chromium 156 accepts both; the recording predates the RTX offer).
fn answer_with_numbering_and_rtx_on_v0(offer: &str, answer: &str) -> String {
    let offered = &offer[offer.find("a=mid:v0").unwrap()..];
    let offered = &offered[..offered.find("\r\nm=").unwrap_or(offered.len())];
    let cc = offered.lines().find(|l| l.ends_with(crate::peer::lean::sdp::TRANSPORT_CC_URI)).unwrap();
    let rtx = offered.lines().find_map(|l| l.strip_prefix("a=rtpmap:")?.strip_suffix(" rtx/90000")).expect("the bridge offers RTX on v0");
    let apt = offered.lines().find_map(|l| l.strip_prefix(&format!("a=fmtp:{rtx} apt="))).unwrap();
    let mut sections: Vec<String> = answer.split("m=").map(str::to_owned).collect();
    let v0 = sections.iter_mut().find(|s| s.contains("a=mid:v0\r\n")).unwrap();
    *v0 = v0
        .replacen(&format!("SAVPF {apt}\r\n"), &format!("SAVPF {apt} {rtx}\r\n"), 1)
        .replacen("a=mid:v0\r\n", &format!("a=mid:v0\r\n{cc}\r\n"), 1)
        .replacen(&format!("a=rtpmap:{apt} VP8/90000\r\n"), &format!("a=rtpmap:{apt} VP8/90000\r\na=rtpmap:{rtx} rtx/90000\r\na=fmtp:{rtx} apt={apt}\r\n"), 1);
    sections.join("m=")
}

#[test]
fn a_site_whose_tiles_want_more_than_its_estimate_is_probed_with_padding_on_the_retransmission_stream() {
    let mut site = Site::connected_answering(answer_with_numbering_and_rtx_on_v0);
    assert!(site.session.numbering.is_on(), "numbering accepted on v0");
    // The driver tells the session which path the browser's datagrams came by.
    site.session.set_path(Some(Path::Udp));
    let v0 = site.v0();
    // The browser reports every packet's arrival, as Chromium's transport-cc feedback does.
    let offer = site.events.iter().find_map(|e| if let PeerEvent::LocalOffer(o) = e { Some(o.clone()) } else { None }).unwrap();
    let id = offer.lines().find_map(|l| l.strip_prefix("a=extmap:")?.strip_suffix(&format!(" {}", crate::peer::lean::sdp::TRANSPORT_CC_URI))?.parse().ok());
    let mut reports = crate::peer::lean::congestion::TransportFeedback::default();
    reports.set_extension(id);
    let mut seen = 0;
    let mut padding_between = |site: &mut Site, seconds: u16, first_seq: u16| {
        for k in 0..seconds * 30 {
            site.forward_sized_to_v0(first_seq + k, 1000);
            site.advance(Duration::from_millis(33));
            for (at, p) in &site.rtp[seen..] {
                reports.on_packet(*at, &p.header);
            }
            seen = site.rtp.len();
            let bytes = reports.due(site.now);
            let mut buf = bytes.as_slice();
            while let Ok(fb) = rtc::rtcp::transport_feedbacks::transport_layer_cc::TransportLayerCc::unmarshal(&mut buf) {
                site.send_rtcp(&fb);
            }
        }
        // Padding alone, numbered for the browser's reports: what the estimate learns from.
        let padded = |(_, p): &&(Instant, RtpPacket)| {
            p.header.ssrc != v0 && p.header.padding && p.payload.is_empty() && id.is_some_and(|id| p.header.get_extension(id).is_some())
        };
        site.rtp.iter().filter(padded).count()
    };
    // Two seconds of HQ's camera, 250 kbit/s: nobody wants more, so nothing probes.
    assert_eq!(padding_between(&mut site, 2, 0), 0, "padding while the tiles want nothing more");
    assert!(site.session.estimate.feedbacks > 0, "the browser's reports reached the estimate");
    assert!(site.session.paddable().is_some(), "v0 has a retransmission stream to pad on");
    // The conference says the ward's tiles want 5 Mbit/s. Over ICE-TCP the padding would
    // queue behind the media in the connection's own buffer: nothing probes.
    site.session.ctx.router.set_wanted_downlink(WARD, Some(5_000_000.0));
    site.session.set_path(Some(Path::Tcp));
    assert_eq!(padding_between(&mut site, 2, 60), 0, "padding over TCP");
    // Over UDP the line is probed for it, with padding alone on the retransmission stream.
    site.session.set_path(Some(Path::Udp));
    let padded = padding_between(&mut site, 2, 120);
    assert!(padded > 0, "no padding on the retransmission stream");
    assert!(site.session.estimate.prober.sent > 0, "the probes were counted");
}
