//! Hostile and broken peers against the real bridge (lean engine), end to end (issue #19).
//!
//! Three simulated sites exchange media. Then, for a bounded attack window, an authenticated
//! site (Cửa Nam, a webrtc-rs client driven by hand) floods NACKs, new SSRCs, renegotiations,
//! oversized offers and candidates, and a stranger sprays the shared UDP port and the ICE-TCP
//! port with STUN, DTLS and garbage. The other sites must keep receiving each other's audio at
//! about the rate it is sent, the log must not grow per packet, the budgets must say what they
//! refused (the technicians' API shows the alarms), and the bridge's RSS and CPU are reported.
//!
//! `cargo test --test adversarial -- --nocapture` prints the measured figures.

mod common;

use common::rtp;
use common::sim::{client_pc, local_track, opus, Sim};
use common::ws::Client;
use common::{proc_usage, wait_until, TestBridge};
use futures::{SinkExt, StreamExt};
use rtc::media_stream::MediaStreamTrack;
use rtc::rtcp::transport_feedbacks::transport_layer_nack::{NackPair, TransportLayerNack};
use rtc::rtp_transceiver::rtp_sender::{RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind};
use rtc::rtp_transceiver::{RTCRtpTransceiverDirection, RTCRtpTransceiverInit};
use serde_json::{json, Value};
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_remote::TrackRemote;
use webrtc::peer_connection::{PeerConnectionEventHandler, RTCPeerConnectionState, RTCSessionDescription};

const NORMAL: [&str; 3] = ["hq", "hang-gai", "hang-bai"];
const HOSTILE: &str = "cua-nam";
/// Audio packets per second each simulated site sends (tests/common/sim.rs).
const AUDIO_PPS: f64 = 50.0;
const ATTACK: Duration = Duration::from_secs(12);
/// SSRCs the hostile site announces on its one audio track and sends packets with.
const HOSTILE_SSRCS: usize = 64;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_site_and_a_stranger_do_not_disturb_the_other_sites() {
    let started = Instant::now();
    let bridge = TestBridge::start_default_on("lean");
    let mut sims = Vec::new();
    for site in NORMAL {
        sims.push(Sim::join(&bridge.cert_pem(), bridge.port, site, bridge.key(site)).await);
    }
    let audio_matrix =
        |sims: &[Sim]| -> Vec<u64> { sims.iter().flat_map(|rx| NORMAL.iter().filter(move |s| **s != rx.site).map(move |s| rx.received(s, "audio"))).collect() };
    wait_until(Duration::from_secs(20), "every normal site to receive the others' audio", || async {
        audio_matrix(&sims).iter().all(|n| *n >= 50).then_some(())
    })
    .await;
    let hostile = Hostile::join(&bridge).await;
    wait_until(Duration::from_secs(20), "the hostile site's media to connect", || async { hostile.connected().then_some(()) }).await;
    // The hostile site's slots get their answer before the attack starts.
    tokio::time::sleep(Duration::from_secs(1)).await;

    let (media_udp, media_tcp) = common::media_ports_from_log(&bridge.log_text());
    let hq_ufrag = bridge_ufrag(&sims[0]);
    let pid = bridge.pid();
    let log_before = bridge.log_text().lines().count();
    let (cpu_before, rss_before) = proc_usage(pid);
    let before = audio_matrix(&sims);
    let t0 = Instant::now();

    // The attack: bounded by ATTACK, every loop below by the same cancel.
    let stop = CancellationToken::new();
    let sprayed = Arc::new(AtomicU64::new(0));
    let udp_spray = tokio::spawn(spray_udp(media_udp, hq_ufrag, sprayed.clone(), stop.clone()));
    let tcp_spray = tokio::spawn(spray_tcp(media_tcp, stop.clone()));
    let watch = async {
        let mut peak_rss = rss_before;
        while t0.elapsed() < ATTACK {
            tokio::time::sleep(Duration::from_millis(500)).await;
            peak_rss = peak_rss.max(proc_usage(pid).1);
        }
        let during = audio_matrix(&sims);
        let window = t0.elapsed().as_secs_f64();
        let (cpu_after, rss_after) = proc_usage(pid);
        stop.cancel();
        (peak_rss, during, window, cpu_after, rss_after)
    };
    let (sent, (peak_rss, during, window, cpu_after, rss_after)) = tokio::join!(hostile.attack(stop.clone()), watch);
    let sprayed = sprayed.load(Ordering::Relaxed);
    let tcp_conns = tcp_spray.await.unwrap_or(0);
    let _ = udp_spray.await;
    let log_after = bridge.log_text();
    let log_lines = log_after.lines().count() - log_before;

    // What the other sites received during the attack, per (receiver, source), against what
    // the simulated senders send.
    let ratios: Vec<f64> = before.iter().zip(&during).map(|(b, d)| (d - b) as f64 / (AUDIO_PPS * window)).collect();
    let worst = ratios.iter().copied().fold(f64::INFINITY, f64::min);
    let cpu = (cpu_after - cpu_before) / window * 100.0;
    println!(
        "attack of {window:.1} s: the hostile site sent {} NACKs, {} packets on {HOSTILE_SSRCS} SSRCs, {} offers, {} candidates; \
         the stranger sent {sprayed} datagrams and opened {tcp_conns} TCP connections",
        sent.nacks, sent.packets, sent.offers, sent.candidates
    );
    println!(
        "audio received by the other sites, per source, as % of what was sent: {} (worst {:.1} %)",
        ratios.iter().map(|r| format!("{:.1}", r * 100.0)).collect::<Vec<_>>().join(" "),
        worst * 100.0
    );
    println!(
        "bridge during the attack: CPU {cpu:.0} % of a core, RSS {} → {} MiB (peak {} MiB), {log_lines} log lines",
        rss_before / 1024,
        rss_after / 1024,
        peak_rss / 1024
    );

    // The other sites kept their media: a loaded 2-core machine delays packets, it does not
    // lose a quarter of them; the attack without budgets is what would.
    assert!(worst >= 0.75, "a site received only {:.1} % of another's audio during the attack ({ratios:?})", worst * 100.0);
    // The log says what happened once per budget and alarm, never per packet: the attack sent
    // tens of thousands of packets and hundreds of messages.
    assert!(log_lines <= 150, "{log_lines} log lines during the attack:\n{}", last_lines(&log_after, 60));
    assert!(sent.nacks > 1000 && sent.packets > 1000 && sprayed > 10_000, "the attack itself was too weak to prove anything");

    // The budgets counted what they refused, and the technicians' API shows the alarms.
    let alarms = wait_until(Duration::from_secs(10), "the over_budget and stranger_traffic alarms on /api/health", || async {
        let h = bridge.get_json("/api/health").await;
        let alarms = h["alarms"].as_array()?.clone();
        let has = |site: &str, code: &str| alarms.iter().any(|a| a["site"] == site && a["alarm"] == code);
        (has(HOSTILE, "over_budget") && has("@bridge", "stranger_traffic")).then_some(alarms)
    })
    .await;
    println!("alarms: {}", Value::from(alarms.clone()));
    for a in &alarms {
        if a["site"] != "@bridge" {
            assert!(a["site"] == HOSTILE, "an alarm on a site that did nothing wrong: {a}");
        }
    }
    for budget in ["ssrcs", "renegotiations", "sections", "candidates", "nacks"] {
        assert!(log_after.contains(&format!("budget=\"{budget}\"")) || log_after.contains(&format!("budget={budget}")), "no over-budget line for {budget}");
    }
    assert!(log_after.contains("refusing connectivity checks from 127.0.0.1"), "the stranger's checks were not refused");
    hostile.stop();
    let closed =
        wait_until(Duration::from_secs(10), "the hostile site's media connection to close", || async { bridge.closed_count(HOSTILE, "ssrc_refused") }).await;
    let nack_refused = bridge.closed_count(HOSTILE, "nack_refused").unwrap_or(0);
    let offers_refused = bridge.closed_count(HOSTILE, "offers_refused").unwrap_or(0);
    println!("refused of the hostile site: {closed} packets on new SSRCs, {nack_refused} retransmissions, {offers_refused} offers");
    assert!(closed > 0 && nack_refused > 0 && offers_refused > 0);
    println!("total test time {:.1} s", started.elapsed().as_secs_f64());
}

fn last_lines(log: &str, n: usize) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// The bridge's ICE ufrag towards a site, from its answer.
fn bridge_ufrag(sim: &Sim) -> String {
    let answer = sim.messages.lock().unwrap().iter().find(|m| m["type"] == "answer").map(|m| m["sdp"].as_str().unwrap().to_owned()).unwrap();
    answer.lines().find_map(|l| l.trim_end().strip_prefix("a=ice-ufrag:")).unwrap().to_owned()
}

/// The stranger on the shared UDP port: checks for HQ's ufrag with a wrong password, checks
/// for nobody, a DTLS ClientHello-like record, RTP-like and plain garbage, ≈ 4 000 a second.
async fn spray_udp(port: u16, hq_ufrag: String, sent: Arc<AtomicU64>, stop: CancellationToken) {
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let to = ("127.0.0.1", port);
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    while !stop.is_cancelled() {
        tick.tick().await;
        for i in 0..8u8 {
            let junk = match i % 4 {
                0 => common::binding_request(&format!("{hq_ufrag}:intruder")),
                1 => common::binding_request(&format!("nobody{}:who", rand::random::<u16>())),
                2 => [vec![22, 254, 253, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 100, 1], vec![0xAB; 100]].concat(),
                _ => (0..200).map(|_| rand::random::<u8>()).collect(),
            };
            for _ in 0..5 {
                if socket.send_to(&junk, to).await.is_ok() {
                    sent.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }
}

/// The stranger on the ICE-TCP port: connections that send garbage, an oversized frame, a
/// check for nobody, or nothing at all; a few at a time. Returns how many it opened.
async fn spray_tcp(port: u16, stop: CancellationToken) -> u64 {
    use tokio::io::AsyncWriteExt;
    let mut opened = 0;
    while !stop.is_cancelled() {
        let mut batch = Vec::new();
        for i in 0..6u64 {
            let Ok(Ok(mut s)) = tokio::time::timeout(Duration::from_secs(1), tokio::net::TcpStream::connect(("127.0.0.1", port))).await else { continue };
            opened += 1;
            let frame: Vec<u8> = match i % 3 {
                0 => (0..300).map(|_| rand::random::<u8>()).collect(),
                1 => [vec![0xFF, 0xFF], vec![0x17; 4000]].concat(),
                _ => {
                    let check = common::binding_request("nobody:who");
                    [(check.len() as u16).to_be_bytes().to_vec(), check].concat()
                }
            };
            let _ = tokio::time::timeout(Duration::from_millis(200), s.write_all(&frame)).await;
            batch.push(s);
        }
        tokio::select! {
            _ = stop.cancelled() => {}
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
        }
    }
    opened
}

/// What the hostile site sent during the attack.
#[derive(Debug, Default)]
struct Sent {
    nacks: u64,
    packets: u64,
    offers: u64,
    candidates: u64,
}

/// An authenticated site that misbehaves: a webrtc-rs client whose audio track announces
/// [`HOSTILE_SSRCS`] SSRCs, driven by hand over the real signalling.
struct Hostile {
    pc: Arc<dyn webrtc::peer_connection::PeerConnection>,
    outgoing: mpsc::UnboundedSender<Value>,
    connected: Arc<Mutex<bool>>,
    /// The bridge's video tracks to it, with the last sequence number seen, for NACKs.
    tracks: Tracks,
    audio: Arc<TrackLocalStaticRTP>,
    ssrcs: Vec<u32>,
    cancel: CancellationToken,
}

type Tracks = Arc<Mutex<Vec<(Arc<dyn TrackRemote>, Arc<AtomicU64>)>>>;

struct HostileHandler {
    connected: Arc<Mutex<bool>>,
    tracks: Tracks,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for HostileHandler {
    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        *self.connected.lock().unwrap() = state == RTCPeerConnectionState::Connected;
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        let kind = track.kind().await.to_string().to_lowercase();
        let last = Arc::new(AtomicU64::new(0));
        if kind == "video" {
            self.tracks.lock().unwrap().push((track.clone(), last.clone()));
        }
        // Drained, so the client's receive side keeps up; the last sequence number is kept.
        tokio::spawn(async move {
            while let Some(ev) = track.poll().await {
                if let webrtc::media_stream::track_remote::TrackRemoteEvent::OnRtpPacket(p) = ev {
                    last.store(p.header.sequence_number as u64, Ordering::Relaxed);
                }
            }
        });
    }
}

impl Hostile {
    async fn join(bridge: &TestBridge) -> Hostile {
        let mut client = Client::connect(&bridge.cert_pem(), bridge.port).await;
        let joined = client.join(HOSTILE, bridge.key(HOSTILE)).await;
        assert_eq!(joined["type"], "joined", "{joined}");
        let (connected, tracks) = (Arc::new(Mutex::new(false)), Arc::new(Mutex::new(Vec::new())));
        let pc = client_pc(Arc::new(HostileHandler { connected: connected.clone(), tracks: tracks.clone() })).await;
        let ssrcs: Vec<u32> = (0..HOSTILE_SSRCS as u32).map(|i| 0x1000_0000 + i).collect();
        let encodings = ssrcs
            .iter()
            .enumerate()
            .map(|(i, &ssrc)| RTCRtpEncodingParameters {
                rtp_coding_parameters: RTCRtpCodingParameters { rid: format!("r{i}"), ssrc: Some(ssrc), ..Default::default() },
                codec: opus(),
                ..Default::default()
            })
            .collect();
        let audio =
            Arc::new(TrackLocalStaticRTP::new(MediaStreamTrack::new(HOSTILE.into(), "h-audio".into(), "h-audio".into(), RtpCodecKind::Audio, encodings)));
        let video = local_track(HOSTILE, RtpCodecKind::Video, common::sim::vp8(), 0x2000_0000);
        for t in [audio.clone() as Arc<dyn TrackLocal>, video as Arc<dyn TrackLocal>] {
            let init = RTCRtpTransceiverInit { direction: RTCRtpTransceiverDirection::Sendonly, streams: vec![HOSTILE.to_string()], send_encodings: vec![] };
            pc.add_transceiver_from_track(t, Some(init)).await.unwrap();
        }
        let offer = pc.create_offer(None).await.unwrap();
        pc.set_local_description(offer).await.unwrap();
        let sdp = pc.local_description().await.unwrap().sdp;
        let (outgoing, mut outgoing_rx) = mpsc::unbounded_channel::<Value>();
        outgoing.send(json!({"type": "offer", "sdp": sdp})).unwrap();
        let cancel = CancellationToken::new();
        let (mut ws_tx, mut ws_rx) = client.into_socket().split();
        let (pc2, cancel2, outgoing2) = (pc.clone(), cancel.clone(), outgoing.clone());
        // Signalling: only the first answer and the bridge's offers are applied; the answers
        // to the flood of offers are ignored (as a hostile page would).
        tokio::spawn(async move {
            let mut answered = false;
            loop {
                tokio::select! {
                    _ = cancel2.cancelled() => break,
                    Some(v) = outgoing_rx.recv() => {
                        if ws_tx.send(Message::Text(v.to_string().into())).await.is_err() { break; }
                    }
                    msg = ws_rx.next() => {
                        let Some(Ok(Message::Text(t))) = msg else {
                            if matches!(msg, Some(Ok(Message::Ping(_)) | Ok(Message::Pong(_)))) { continue; }
                            break;
                        };
                        let v: Value = serde_json::from_str(t.as_str()).unwrap();
                        match v["type"].as_str() {
                            Some("answer") if !answered => {
                                answered = true;
                                let d = RTCSessionDescription::answer(v["sdp"].as_str().unwrap().to_owned()).unwrap();
                                pc2.set_remote_description(d).await.unwrap();
                            }
                            Some("offer") => {
                                let d = RTCSessionDescription::offer(v["sdp"].as_str().unwrap().to_owned()).unwrap();
                                if pc2.set_remote_description(d).await.is_ok() {
                                    let a = pc2.create_answer(None).await.unwrap();
                                    pc2.set_local_description(a).await.unwrap();
                                    let sdp = pc2.local_description().await.unwrap().sdp;
                                    let _ = outgoing2.send(json!({"type": "answer", "sdp": sdp}));
                                }
                            }
                            _ => {}
                        }
                    }
                }
            }
            let _ = pc2.close().await;
        });
        Hostile { pc, outgoing, connected, tracks, audio, ssrcs, cancel }
    }

    fn connected(&self) -> bool {
        *self.connected.lock().unwrap()
    }

    fn stop(&self) {
        self.cancel.cancel();
    }

    /// Floods until `stop`: media on a new SSRC each packet (200 a second), NACKs for every
    /// packet of each of the bridge's video slots (100 a second each), a renegotiation every
    /// 100 ms (one in five with 40 extra m-sections) and two candidates.
    async fn attack(&self, stop: CancellationToken) -> Sent {
        // A re-offer of the same session (the bridge's slots included), and one with 40 more
        // m-sections than any page sends.
        let reoffer = self.pc.create_offer(None).await.unwrap().sdp;
        let extra = reoffer.split("\r\nm=").last().map(|m| format!("m={m}")).unwrap();
        let oversized = (0..40).fold(reoffer.clone(), |sdp, i| {
            let section = extra.lines().map(|l| if l.starts_with("a=mid:") { format!("a=mid:x{i}") } else { l.to_owned() }).collect::<Vec<_>>().join("\r\n");
            format!("{}\r\n{section}", sdp.trim_end())
        }) + "\r\n";
        let (audio, ssrcs) = (self.audio.clone(), self.ssrcs.clone());
        let media = tokio::spawn({
            let stop = stop.clone();
            async move {
                let mut tick = tokio::time::interval(Duration::from_millis(5));
                let mut sent = 0u64;
                while !stop.is_cancelled() {
                    tick.tick().await;
                    let p = rtp::packet(111, ssrcs[sent as usize % ssrcs.len()], sent as u16, sent as u32 * 960, false, vec![0xF8; 60]);
                    if audio.write_rtp(p).await.is_ok() {
                        sent += 1;
                    }
                }
                sent
            }
        });
        let tracks = self.tracks.clone();
        let nacks = tokio::spawn({
            let stop = stop.clone();
            async move {
                let mut tick = tokio::time::interval(Duration::from_millis(10));
                let mut sent = 0u64;
                while !stop.is_cancelled() {
                    tick.tick().await;
                    let tracks: Vec<_> = tracks.lock().unwrap().clone();
                    for (t, last) in tracks {
                        let Some(&ssrc) = t.ssrcs().await.first() else { continue };
                        // Every packet of the last 64 it received (the most one NACK is
                        // answered for), 17 at a time, every 10 ms.
                        let base = (last.load(Ordering::Relaxed) as u16).wrapping_sub(63);
                        let pairs = (0..4u16).map(|i| NackPair { packet_id: base.wrapping_add(i * 17), lost_packets: 0xFFFF }).collect();
                        let nack = TransportLayerNack { sender_ssrc: 7, media_ssrc: ssrc, nacks: pairs };
                        if t.write_rtcp(vec![Box::new(nack)]).await.is_ok() {
                            sent += 1;
                        }
                    }
                }
                sent
            }
        });
        let mut sent = Sent::default();
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        while !stop.is_cancelled() {
            tokio::select! { _ = stop.cancelled() => break, _ = tick.tick() => {} }
            let sdp = if sent.offers % 5 == 4 { &oversized } else { &reoffer };
            let _ = self.outgoing.send(json!({"type": "offer", "sdp": sdp}));
            sent.offers += 1;
            for _ in 0..2 {
                let port = 1024 + sent.candidates as u16;
                let candidate = format!("candidate:9 1 udp 2122260223 10.9.{}.{} {port} typ host", port / 250, port % 250);
                let _ = self.outgoing.send(json!({"type": "candidate", "candidate": {"candidate": candidate, "sdpMid": "0", "sdpMLineIndex": 0}}));
                sent.candidates += 1;
            }
        }
        sent.packets = media.await.unwrap_or(0);
        sent.nacks = nacks.await.unwrap_or(0);
        let _ = std::io::stdout().flush();
        sent
    }
}

impl Drop for Hostile {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}
