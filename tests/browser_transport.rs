//! The bridge's own transport (`peer::lean::transport`: ICE-lite, DTLS-SRTP, no PeerConnection) and
//! its SDP (`peer::lean::sdp`) against real headless Chromium. The page offers its camera and
//! microphone send-only, as the web client does; the bridge answers, then offers two output
//! slots, which the page accepts. The browser checks the bridge's one UDP socket, shakes
//! hands and sends; the bridge decrypts, sends the media back into its slots (their SSRCs
//! and payload types) and asks for keyframes with its own SRTCP. Chromium must decode the
//! video and hear the audio that came back, and count the bridge's keyframe requests.

mod common;

use bytes::BytesMut;
use common::browser::Browser;
use common::{scratch_dir, Deadline};
use diemcau::media::vp8;
use diemcau::media::{Codec, Kind};
use diemcau::peer::lean::sdp::{LocalTransport, Negotiation, RemoteDescription};
use diemcau::peer::lean::transport::{IceCredentials, Identity, Received, RemoteTransport, Transport, TransportState};
use serde_json::Value;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;

const AUDIO_SSRC: u32 = 0xA0D1_0001;
const VIDEO_SSRC: u32 = 0xB1DE_0002;

/// What the bridge side saw and did.
#[derive(Default)]
struct Counts {
    connected: AtomicBool,
    handshake_ms: AtomicU64,
    audio_in: AtomicU64,
    video_in: AtomicU64,
    keyframes_in: AtomicU64,
    rtcp_in: AtomicU64,
    echoed: AtomicU64,
    plis_out: AtomicU64,
    refused: AtomicU64,
}

/// Length of the RTP header (fixed part, CSRCs, extension).
fn header_len(p: &[u8]) -> usize {
    let mut n = 12 + 4 * (p[0] & 0x0F) as usize;
    if p[0] & 0x10 != 0 && p.len() >= n + 4 {
        n += 4 + 4 * u16::from_be_bytes([p[n + 2], p[n + 3]]) as usize;
    }
    n.min(p.len())
}

/// A PLI (RFC 4585 §6.3.1) from the bridge for `media_ssrc`.
fn pli(media_ssrc: u32) -> Vec<u8> {
    let mut p = vec![0x81, 206, 0, 2];
    p.extend_from_slice(&VIDEO_SSRC.to_be_bytes());
    p.extend_from_slice(&media_ssrc.to_be_bytes());
    p
}

/// The bridge side: one UDP socket, one transport, echoing media back under its own SSRCs.
/// Payload types: (the browser's audio, the audio slot's, the video slot's), once negotiated.
type Pts = Arc<std::sync::Mutex<(u8, u8, u8)>>;

async fn serve(socket: UdpSocket, mut t: Transport, pts: Pts, counts: Arc<Counts>, cancel: CancellationToken) {
    let started = Instant::now();
    let mut buf = vec![0u8; 2048];
    let mut browser_video_ssrc = None;
    let mut next_pli = Instant::now();
    loop {
        let wait = t.poll_timeout().map(|d| d.saturating_duration_since(Instant::now())).unwrap_or(Duration::from_millis(100));
        let received = tokio::select! {
            _ = cancel.cancelled() => return,
            r = tokio::time::timeout(wait.min(Duration::from_millis(100)), socket.recv_from(&mut buf)) => r,
        };
        let now = Instant::now();
        match received {
            Ok(Ok((n, from))) => match t.receive(now, from, &buf[..n]) {
                Ok(Received::Rtp(mut p)) => {
                    let payload_at = header_len(&p);
                    let (audio_pt, audio_out_pt, video_out_pt) = *pts.lock().unwrap();
                    let (ssrc, out_pt) = if p[1] & 0x7F == audio_pt {
                        counts.audio_in.fetch_add(1, Ordering::Relaxed);
                        (AUDIO_SSRC, audio_out_pt)
                    } else {
                        counts.video_in.fetch_add(1, Ordering::Relaxed);
                        browser_video_ssrc = Some(u32::from_be_bytes([p[8], p[9], p[10], p[11]]));
                        let payload = &p[payload_at..];
                        if vp8::descriptor(payload).is_some_and(|d| d.starts_frame() && vp8::is_keyframe(&payload[d.len..])) {
                            counts.keyframes_in.fetch_add(1, Ordering::Relaxed);
                        }
                        (VIDEO_SSRC, video_out_pt)
                    };
                    if out_pt == 0 {
                        continue; // the slots are not negotiated yet
                    }
                    p[1] = (p[1] & 0x80) | out_pt;
                    p[8..12].copy_from_slice(&ssrc.to_be_bytes());
                    send(&socket, t.protect_rtp(&p)).await;
                    counts.echoed.fetch_add(1, Ordering::Relaxed);
                }
                Ok(Received::Rtcp(_)) => {
                    counts.rtcp_in.fetch_add(1, Ordering::Relaxed);
                }
                Ok(Received::Nothing) => {}
                Err(e) => {
                    counts.refused.fetch_add(1, Ordering::Relaxed);
                    eprintln!("bridge transport refused a datagram from {from}: {e}");
                }
            },
            Ok(Err(e)) => panic!("recv_from: {e}"),
            Err(_) => {
                if let Err(e) = t.handle_timeout(now) {
                    eprintln!("transport timeout: {e}");
                }
            }
        }
        while let Some((to, datagram)) = t.poll_transmit() {
            socket.send_to(&datagram, to).await.expect("send_to");
        }
        if *t.state() == TransportState::Connected && !counts.connected.swap(true, Ordering::Relaxed) {
            counts.handshake_ms.store(started.elapsed().as_millis() as u64, Ordering::Relaxed);
        }
        if let Some(ssrc) = browser_video_ssrc.filter(|_| now >= next_pli) {
            send(&socket, t.protect_rtcp(&pli(ssrc))).await;
            counts.plis_out.fetch_add(1, Ordering::Relaxed);
            next_pli = now + Duration::from_millis(500);
        }
    }
}

async fn send(socket: &UdpSocket, protected: Result<(SocketAddr, BytesMut), diemcau::peer::lean::transport::TransportError>) {
    let (to, datagram) = protected.expect("protect after the handshake");
    socket.send_to(&datagram, to).await.expect("send_to");
}

/// A blank page on 127.0.0.1 (a secure context, so getUserMedia works).
async fn blank_page() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    let app = axum::Router::new().route("/", axum::routing::get(|| async { axum::response::Html("<!doctype html><title>transport</title>") }));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

const START: &str = r#"(async () => {
  const pc = new RTCPeerConnection();
  window.pc = pc;
  const stream = await navigator.mediaDevices.getUserMedia({audio: true, video: {width: 320, height: 240}});
  for (const track of stream.getTracks()) pc.addTransceiver(track, {direction: 'sendonly', streams: [stream]});
  pc.ontrack = (e) => {
    const el = document.createElement(e.track.kind);
    el.autoplay = true;
    el.srcObject = new MediaStream([e.track]);
    document.body.appendChild(el);
    el.play().catch(() => {});
  };
  const offer = await pc.createOffer();
  await pc.setLocalDescription(offer);
  return offer.sdp;
})()"#;

const STATS: &str = r#"(async () => {
  const out = {state: window.pc.connectionState, framesDecoded: 0, audioEnergy: 0, audioPackets: 0, pliCount: 0};
  (await window.pc.getStats()).forEach((s) => {
    if (s.type === 'inbound-rtp' && s.kind === 'video') out.framesDecoded = s.framesDecoded || 0;
    if (s.type === 'inbound-rtp' && s.kind === 'audio') { out.audioEnergy = s.totalAudioEnergy || 0; out.audioPackets = s.packetsReceived || 0; }
    if (s.type === 'outbound-rtp' && s.kind === 'video') out.pliCount = s.pliCount || 0;
  });
  return out;
})()"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_exchanges_media_with_the_bridges_own_transport() {
    let scratch = scratch_dir("transport");
    let mut browser = Browser::launch_builtin("transport", &blank_page().await, &scratch).await;
    let loaded = Deadline::after(Duration::from_secs(20), "the blank page to load");
    while browser.eval("location.protocol + document.readyState").await != Some(Value::from("http:complete")) {
        loaded.tick().await;
    }
    let offer = browser.eval(START).await.expect("the page made an offer");
    let offer = RemoteDescription::parse(offer.as_str().unwrap()).expect("Chromium's offer parses");

    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    let identity = Identity::generate().unwrap();
    let ice = IceCredentials::random();
    let local = LocalTransport {
        ufrag: ice.ufrag.clone(),
        pwd: ice.pwd.clone(),
        fingerprint: identity.fingerprint().to_owned(),
        candidates: vec![format!("candidate:1 1 udp 2130706431 {} {} typ host", addr.ip(), addr.port())],
    };
    let remote = RemoteTransport { ufrag: offer.ufrag.clone(), fingerprints: offer.fingerprints.clone() };
    let transport = Transport::new(&identity, ice, remote, addr);
    // Plain Opus: the echo below sends the page's own packets back as Opus (redundant audio
    // has its own tests: browser_firefox, browser_recording).
    let mut negotiation = Negotiation::new(&[Codec::Vp8]).with_audio_red(false);
    negotiation.apply_offer(&offer).unwrap();
    let audio_pt = negotiation.inbound().find(|(mid, _)| **mid == offer.sections[0].mid).expect("the microphone is received").1.payload_type.0;
    let pts: Pts = Arc::new(std::sync::Mutex::new((audio_pt, 0, 0)));
    let counts = Arc::new(Counts::default());
    let cancel = CancellationToken::new();
    let bridge = tokio::spawn(serve(socket, transport, pts.clone(), counts.clone(), cancel.clone()));

    let set = format!("window.pc.setRemoteDescription({{type: 'answer', sdp: {}}}).then(() => true)", Value::String(negotiation.answer(&local)));
    assert_eq!(browser.eval(&set).await, Some(Value::Bool(true)), "Chromium accepted the ICE-lite answer");

    negotiation.add_output(Kind::Audio, 0, diemcau::media::Ssrc(AUDIO_SSRC));
    negotiation.add_output(Kind::Video, 0, diemcau::media::Ssrc(VIDEO_SSRC));
    let slots = format!(
        "window.pc.setRemoteDescription({{type: 'offer', sdp: {}}}).then(() => window.pc.createAnswer()).then((a) => window.pc.setLocalDescription(a)).then(() => window.pc.localDescription.sdp)",
        Value::String(negotiation.offer(&local))
    );
    let answer = browser.eval(&slots).await.expect("Chromium accepted the bridge's offer of two slots");
    let accepted = negotiation.apply_answer(&RemoteDescription::parse(answer.as_str().unwrap()).unwrap()).expect("the answer fits the offer");
    let pt_of = |kind, codec| accepted.iter().find(|o| o.kind == kind).and_then(|o| o.payload_types.get(codec)).expect("slot accepted");
    *pts.lock().unwrap() = (audio_pt, pt_of(Kind::Audio, Codec::Opus), pt_of(Kind::Video, Codec::Vp8));

    let deadline = Deadline::after(Duration::from_secs(30), "Chromium to decode, hear and count what the bridge's transport sent");
    let stats = loop {
        let s = browser.eval(STATS).await.unwrap_or(Value::Null);
        let n = |k: &str| s[k].as_f64().unwrap_or(0.0);
        let bridge_saw = counts.audio_in.load(Ordering::Relaxed) >= 50
            && counts.video_in.load(Ordering::Relaxed) >= 50
            && counts.keyframes_in.load(Ordering::Relaxed) >= 1
            && counts.rtcp_in.load(Ordering::Relaxed) >= 1;
        if bridge_saw && n("framesDecoded") >= 10.0 && n("audioEnergy") > 0.0 && n("pliCount") >= 1.0 {
            break s;
        }
        deadline.tick_showing(&s).await;
    };
    cancel.cancel();
    bridge.await.unwrap();
    assert_eq!(stats["state"], "connected");
    let c = |a: &AtomicU64| a.load(Ordering::Relaxed);
    println!(
        "{}",
        serde_json::json!({
            "keyed_ms_after_answer_sent": c(&counts.handshake_ms),
            "bridge_decrypted_audio": c(&counts.audio_in), "bridge_decrypted_video": c(&counts.video_in),
            "keyframes_in": c(&counts.keyframes_in), "rtcp_in": c(&counts.rtcp_in), "echoed": c(&counts.echoed),
            "plis_out": c(&counts.plis_out), "refused": c(&counts.refused), "chromium": stats,
        })
    );
    assert_eq!(c(&counts.refused), 0, "every datagram Chromium sent was accepted");
}
