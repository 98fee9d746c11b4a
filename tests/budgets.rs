//! A site's budgets hold on both media engines: the offers it may make a minute, the
//! m-sections an offer may have, the candidates it may name. What is over budget is refused
//! or ignored, counted, logged once, and raises the site's `over_budget` alarm; the site
//! itself carries on. A NACK flood gets the retransmission budget with the webrtc engine
//! (`tests/adversarial.rs` for the lean one, which also covers its SSRC budget).

mod common;

use common::sim::{client_pc, local_track, opus, Sim};
use common::ws::Client;
use common::{wait_until, TestBridge};
use futures::{SinkExt, StreamExt};
use rtc::rtcp::transport_feedbacks::transport_layer_nack::{NackPair, TransportLayerNack};
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use rtc::rtp_transceiver::{RTCRtpTransceiverDirection, RTCRtpTransceiverInit};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::{PeerConnectionEventHandler, RTCSessionDescription};

const SITE: &str = "cua-nam";

/// A recorded Chromium offer (audio and a camera, send-only).
fn browser_offer() -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/peer/lean/sdp/testdata/chromium156_offer.sdp");
    std::fs::read_to_string(path).unwrap().lines().map(|l| format!("{l}\r\n")).collect()
}

/// The same offer with `extra` more audio sections.
fn offer_with_sections(extra: usize) -> String {
    let offer = browser_offer();
    let audio_at = offer.find("m=audio").unwrap();
    let video_at = offer.find("m=video").unwrap();
    let audio = &offer[audio_at..video_at];
    let mut out = offer.clone();
    for i in 0..extra {
        out.push_str(&audio.replace("a=mid:0\r\n", &format!("a=mid:x{i}\r\n")));
    }
    out
}

/// The next `error` replying to `request`, skipping everything else; panics after 10 s.
async fn refusal(c: &mut Client, request: &str) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let m = tokio::time::timeout_at(deadline, c.recv()).await.unwrap_or_else(|_| panic!("no refusal of {request} within 10 s")).expect("socket open");
        if m["type"] == "error" && m["request"] == request {
            return m;
        }
    }
}

async fn budgets_hold(bridge: TestBridge) {
    let (cert, port) = (bridge.cert_pem(), bridge.port);
    let mut site = Client::connect(&cert, port).await;
    assert_eq!(site.join(SITE, bridge.key(SITE)).await["type"], "joined");

    // An offer with 20 m-sections more than a page sends (and within the 64 KiB of a message).
    site.send(json!({"type": "offer", "sdp": offer_with_sections(20)})).await;
    let r = refusal(&mut site, "offer").await;
    assert_eq!(r["code"], "sdp_invalid", "{r}");
    assert!(r["message"].as_str().unwrap().contains("m-sections"), "refused for its size: {r}");

    // The page's real offer is answered.
    site.send(json!({"type": "offer", "sdp": browser_offer()})).await;
    site.recv_type("answer").await;

    // 70 candidates at different addresses: 64 are taken (with those of the offer), the rest
    // ignored.
    for i in 0..70u32 {
        let candidate = format!("candidate:{i} 1 udp 2122194687 127.0.{}.{} 9 typ host", 1 + i / 200, 1 + i % 200);
        site.send(json!({"type": "candidate", "candidate": {"candidate": candidate, "sdpMid": "0", "sdpMLineIndex": 0}})).await;
    }

    // Offers as fast as a script sends them: the burst of 10 (less the two above), then
    // `rate_limited`.
    let mut codes = Vec::new();
    for _ in 0..12 {
        site.send(json!({"type": "offer", "sdp": browser_offer()})).await;
        codes.push(refusal(&mut site, "offer").await["code"].as_str().unwrap().to_string());
    }
    let limited = codes.iter().filter(|c| *c == "rate_limited").count();
    assert!(codes[0] != "rate_limited" && limited >= 2, "offers over the burst are refused rate_limited: {codes:?}");

    let alarm = wait_until(Duration::from_secs(10), "the site's over_budget alarm on /api/health", || async {
        let h = bridge.get_json("/api/health").await;
        h["alarms"].as_array()?.iter().find(|a| a["site"] == SITE && a["alarm"] == "over_budget").cloned()
    })
    .await;
    println!("{alarm}");
    let log = bridge.log_text();
    for budget in ["sections", "candidates", "renegotiations"] {
        let lines = log.lines().filter(|l| l.contains(&format!("budget=\"{budget}\"")) || l.contains(&format!("budget={budget}"))).count();
        assert_eq!(lines, 1, "one log line for the {budget} budget, not one per refusal");
    }

    // The site is still in the meeting and answered.
    site.send(json!({"type": "ping"})).await;
    site.recv_type("pong").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sites_offers_sections_and_candidates_are_budgeted_with_the_lean_engine() {
    budgets_hold(TestBridge::start_default_on("lean")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sites_offers_sections_and_candidates_are_budgeted_with_the_webrtc_engine() {
    budgets_hold(TestBridge::start_default_on("webrtc")).await;
}

type Tracks = Arc<Mutex<Vec<(Arc<dyn TrackRemote>, Arc<AtomicU64>)>>>;

/// Keeps the bridge's video tracks to a client and the last sequence number of each.
struct Receiver {
    tracks: Tracks,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Receiver {
    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        let last = Arc::new(AtomicU64::new(0));
        if track.kind().await == RtpCodecKind::Video {
            self.tracks.lock().unwrap().push((track.clone(), last.clone()));
        }
        tokio::spawn(async move {
            while let Some(ev) = track.poll().await {
                if let TrackRemoteEvent::OnRtpPacket(p) = ev {
                    last.store(p.header.sequence_number as u64, Ordering::Relaxed);
                }
            }
        });
    }
}

/// With the webrtc engine, a receiver asking again for every packet it was sent, 100 times a
/// second, gets the retransmission budget and no more: webrtc-rs's NACK responder alone
/// would resend each one every time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nack_flood_gets_the_retransmission_budget_with_the_webrtc_engine() {
    let bridge = TestBridge::start_default_on("webrtc");
    let _hq = Sim::join(&bridge.cert_pem(), bridge.port, "hq", bridge.key("hq")).await;
    let mut client = Client::connect(&bridge.cert_pem(), bridge.port).await;
    assert_eq!(client.join(SITE, bridge.key(SITE)).await["type"], "joined");
    let tracks: Tracks = Arc::default();
    let pc = client_pc(Arc::new(Receiver { tracks: tracks.clone() })).await;
    let audio = local_track(SITE, RtpCodecKind::Audio, opus(), 0x3000_0000);
    let init = RTCRtpTransceiverInit { direction: RTCRtpTransceiverDirection::Sendonly, streams: vec![SITE.to_string()], send_encodings: vec![] };
    pc.add_transceiver_from_track(audio as Arc<dyn TrackLocal>, Some(init)).await.unwrap();
    let offer = pc.create_offer(None).await.unwrap();
    pc.set_local_description(offer).await.unwrap();
    client.send(json!({"type": "offer", "sdp": pc.local_description().await.unwrap().sdp})).await;
    // The bridge's answer, then its offer of the slots, answered; candidates and the rest skipped.
    let (mut answered, mut slots) = (false, false);
    while !(answered && slots) {
        let m = client.recv().await.expect("socket open");
        match m["type"].as_str() {
            Some("answer") if !answered => {
                pc.set_remote_description(RTCSessionDescription::answer(m["sdp"].as_str().unwrap().to_owned()).unwrap()).await.unwrap();
                answered = true;
            }
            Some("offer") => {
                pc.set_remote_description(RTCSessionDescription::offer(m["sdp"].as_str().unwrap().to_owned()).unwrap()).await.unwrap();
                let a = pc.create_answer(None).await.unwrap();
                pc.set_local_description(a).await.unwrap();
                client.send(json!({"type": "answer", "sdp": pc.local_description().await.unwrap().sdp})).await;
                slots = true;
            }
            _ => {}
        }
    }
    let (mut tx, mut rx) = client.into_socket().split();
    tokio::spawn(async move { while let Some(Ok(_)) = rx.next().await {} });
    let ping = tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(10)).await;
            if tx.send(Message::Text(json!({"type": "ping"}).to_string().into())).await.is_err() {
                break;
            }
        }
    });
    wait_until(Duration::from_secs(20), "HQ's video to reach the site", || async {
        tracks.lock().unwrap().iter().any(|(_, last)| last.load(Ordering::Relaxed) > 100).then_some(())
    })
    .await;

    // Every packet of the last 64, 17 at a time, every 10 ms, on each video slot.
    let mut sent = 0u64;
    let started = std::time::Instant::now();
    while started.elapsed() < Duration::from_secs(4) {
        tokio::time::sleep(Duration::from_millis(10)).await;
        let now: Vec<_> = tracks.lock().unwrap().clone();
        for (t, last) in now {
            let Some(&ssrc) = t.ssrcs().await.first() else { continue };
            let base = (last.load(Ordering::Relaxed) as u16).wrapping_sub(63);
            let nacks = (0..4u16).map(|i| NackPair { packet_id: base.wrapping_add(i * 17), lost_packets: 0xFFFF }).collect();
            if t.write_rtcp(vec![Box::new(TransportLayerNack { sender_ssrc: 7, media_ssrc: ssrc, nacks })]).await.is_ok() {
                sent += 1;
            }
        }
    }
    println!("{sent} NACKs sent, each asking for 68 packets");
    assert!(sent > 100, "the flood was too weak to prove anything");
    wait_until(Duration::from_secs(10), "the site's over_budget alarm on /api/health", || async {
        let h = bridge.get_json("/api/health").await;
        h["alarms"].as_array()?.iter().any(|a| a["site"] == SITE && a["alarm"] == "over_budget").then_some(())
    })
    .await;
    let log = bridge.log_text();
    let lines = log.lines().filter(|l| l.contains("budget=\"nacks\"") || l.contains("budget=nacks")).count();
    assert_eq!(lines, 1, "one log line for the NACK budget");
    ping.abort();
    let _ = pc.close().await;
}
