//! `diemcau-load`: a load generator and forwarding benchmark. N simulated sites join the real
//! bridge over the real signalling and real WebRTC (webrtc-rs, DTLS-SRTP), each sending
//! Opus-sized audio (50 packets/s) and VP8-sized video at a chosen bitrate; every packet
//! carries its source, a sequence number and its send time, so receivers measure loss and
//! one-way latency through the bridge (sender, bridge and receiver share this host's clock).
//! Bounded run time; prints one JSON summary.
//!
//!   cargo bench --bench load -- --sites 130 --mode stage --seconds 30
//!   cargo bench --bench load -- --sites 6 --mode grid
//!
//! Options: `--sites N` (HQ + N-1 wards, default 6), `--mode stage|grid` (stage: the chair
//! mutes the wards and gives the floor to one; every page receives HQ and the floor holder —
//! 2 video and 2 audio slots; grid: every page receives every other site), `--seconds S`
//! (measured window, default 20), `--video-kbps K` (every site's camera, default 400),
//! `--stage-kbps K` (HQ's and the floor holder's camera in stage mode, default 2500),
//! `--join-batch B` (sites joining at once, default 10), `--measured M` (only the first M
//! sites decrypt and measure what they receive; the others are light receivers that count
//! the media datagrams reaching their socket and drop them unread, see `drain.rs`; default:
//! all), `--storm K` (2 s into the measured window, K sign-ins with site keys arrive at once,
//! as when every site of a meeting reconnects; default 0), `--engine lean|webrtc` (the bridge's
//! media engine, default lean), `--pace F` (0, the default: each video frame leaves the
//! sender as one burst; F > 0: its packets are spaced at F × the camera's bitrate, as
//! Chromium's pacer spaces them with F = 2.5; the send time in each packet is when it left). The bridge is started by this tool
//! on the same host (release binary, loopback); nothing is subtracted.

#[path = "../common/mod.rs"]
mod common;
mod meeting;

use common::drain::{DrainRuntime, Drained};
use common::rtp;
use common::sim::{candidate_init, client_pc_on, local_track, opus, vp8};
use common::ws::Client;
use common::{proc_usage, TestBridge};
use diemcau::media::delay::DelaySnapshot;
use futures::{SinkExt, StreamExt};
use meeting::{key, site_id};
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use rtc::rtp_transceiver::{RTCRtpTransceiverDirection, RTCRtpTransceiverInit};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::{PeerConnectionEventHandler, RTCPeerConnectionIceEvent, RTCPeerConnectionState, RTCSessionDescription};

/// Where our header starts in each payload: after a VP8 payload descriptor and key-frame byte
/// (the bridge forwards a newly selected camera from a key frame on), or an Opus TOC byte.
const HEADER_AT: usize = 2;
const VIDEO_PACKET_BYTES: usize = 1000;
const AUDIO_PACKET_BYTES: usize = 80;
/// Latency histograms (every packet, audio, video frame starts): 10 µs buckets up to 200 ms.
const ALL: usize = 0;
const AUDIO: usize = 1;
const FRAME_START: usize = 2;
const BUCKET_US: u64 = 10;
const BUCKETS: usize = 20_000;

fn epoch() -> Instant {
    static E: OnceLock<Instant> = OnceLock::new();
    *E.get_or_init(Instant::now)
}

fn now_us() -> u64 {
    epoch().elapsed().as_micros() as u64
}

struct Args {
    sites: usize,
    stage: bool,
    seconds: u64,
    video_kbps: u64,
    stage_kbps: u64,
    join_batch: usize,
    measured: usize,
    storm: usize,
    /// `[media] engine` of the bridge (`webrtc`, `lean`).
    engine: String,
    /// 0: a frame's packets leave at once; F > 0: spaced at F × the camera's rate, as
    /// Chromium's pacer sends them (its factor is 2.5).
    pace: f64,
}

fn args() -> Args {
    let mut a = Args {
        sites: 6,
        stage: false,
        seconds: 20,
        video_kbps: 400,
        stage_kbps: 2500,
        join_batch: 10,
        measured: usize::MAX,
        storm: 0,
        engine: "lean".into(),
        pace: 0.0,
    };
    let argv: Vec<String> = std::env::args().collect();
    let mut i = 1;
    while i < argv.len() {
        let value = || argv.get(i + 1).cloned().unwrap_or_default();
        match argv[i].as_str() {
            "--sites" => a.sites = value().parse().expect("--sites N"),
            "--mode" => a.stage = value() == "stage",
            "--seconds" => a.seconds = value().parse().expect("--seconds S"),
            "--video-kbps" => a.video_kbps = value().parse().expect("--video-kbps K"),
            "--stage-kbps" => a.stage_kbps = value().parse().expect("--stage-kbps K"),
            "--join-batch" => a.join_batch = value().parse().expect("--join-batch B"),
            "--measured" => a.measured = value().parse().expect("--measured M"),
            "--storm" => a.storm = value().parse().expect("--storm K"),
            "--engine" => a.engine = value(),
            "--pace" => a.pace = value().parse().expect("--pace F"),
            _ => {
                i += 1;
                continue; // cargo bench passes --bench
            }
        }
        i += 2;
    }
    assert!((2..=500).contains(&a.sites), "--sites between 2 and 500");
    a.measured = a.measured.clamp(1, a.sites);
    a
}

fn config(a: &Args) -> String {
    let (video, audio) = if a.stage { (2, 2) } else { (a.sites - 1, a.sites - 1) };
    // The generated meeting has no [media] section of its own.
    format!("{}[media]\nengine = \"{}\"\n", meeting::config(a.sites, video, audio), a.engine)
}

/// What every receiver records, shared.
#[derive(Default)]
struct Measured {
    /// Counting only inside the measured window.
    on: AtomicBool,
    packets: AtomicU64,
    /// Latency histograms: every packet, audio packets, first packets of video frames. A
    /// video frame leaves the sender as a burst; its later packets also wait for the bridge to
    /// fan out the ones before them, so audio and frame starts show the per-packet delay.
    histograms: OnceLock<[Vec<AtomicU32>; 3]>,
    /// Per (receiver, source, kind): (first seq, highest seq, received) within the window.
    streams: Mutex<StreamCounts>,
}

/// Per (receiver, source, kind): (first seq, highest seq, received).
type StreamCounts = std::collections::HashMap<(usize, u16, u8), (u32, u32, u64)>;

impl Measured {
    fn histogram(&self, which: usize) -> &[AtomicU32] {
        &self.histograms.get_or_init(|| std::array::from_fn(|_| (0..BUCKETS).map(|_| AtomicU32::new(0)).collect()))[which]
    }

    fn record(&self, receiver: usize, payload: &[u8]) {
        if !self.on.load(Ordering::Relaxed) || payload.len() < HEADER_AT + 15 {
            return;
        }
        let h = &payload[HEADER_AT..];
        let source = u16::from_be_bytes([h[0], h[1]]);
        let kind = h[2];
        let seq = u32::from_be_bytes([h[3], h[4], h[5], h[6]]);
        let sent = u64::from_be_bytes(h[7..15].try_into().unwrap());
        let latency = now_us().saturating_sub(sent);
        let bucket = ((latency / BUCKET_US) as usize).min(BUCKETS - 1);
        self.histogram(ALL)[bucket].fetch_add(1, Ordering::Relaxed);
        if kind == 0 {
            self.histogram(AUDIO)[bucket].fetch_add(1, Ordering::Relaxed);
        } else if payload[0] & 0x10 != 0 {
            self.histogram(FRAME_START)[bucket].fetch_add(1, Ordering::Relaxed);
        }
        self.packets.fetch_add(1, Ordering::Relaxed);
        let mut s = self.streams.lock().unwrap();
        let e = s.entry((receiver, source, kind)).or_insert((seq, seq, 0));
        e.1 = e.1.max(seq);
        e.0 = e.0.min(seq);
        e.2 += 1;
    }

    fn percentile_us(&self, which: usize, p: f64) -> f64 {
        let h: Vec<u64> = self.histogram(which).iter().map(|b| b.load(Ordering::Relaxed) as u64).collect();
        let total: u64 = h.iter().sum();
        let mut seen = 0;
        for (i, n) in h.iter().enumerate() {
            seen += n;
            if total > 0 && seen as f64 >= p * total as f64 {
                return (i as u64 * BUCKET_US + BUCKET_US / 2) as f64;
            }
        }
        f64::NAN
    }

    fn loss_percent(&self) -> f64 {
        let s = self.streams.lock().unwrap();
        let (expected, got) = s.values().fold((0u64, 0u64), |(e, g), (lo, hi, n)| (e + (hi - lo + 1) as u64, g + n));
        if expected == 0 {
            0.0
        } else {
            (1.0 - got as f64 / expected as f64).max(0.0) * 100.0
        }
    }
}

struct Handler {
    index: usize,
    outgoing: mpsc::UnboundedSender<Value>,
    connected: Arc<AtomicBool>,
    measured: Arc<Measured>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Handler {
    async fn on_ice_candidate(&self, ev: RTCPeerConnectionIceEvent) {
        if let Ok(c) = ev.candidate.to_json() {
            let _ = self
                .outgoing
                .send(json!({"type": "candidate", "candidate": {"candidate": c.candidate, "sdpMid": c.sdp_mid, "sdpMLineIndex": c.sdp_mline_index}}));
        }
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        self.connected.store(state == RTCPeerConnectionState::Connected, Ordering::Relaxed);
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        let (measured, index) = (self.measured.clone(), self.index);
        tokio::spawn(async move {
            while let Some(ev) = track.poll().await {
                match ev {
                    TrackRemoteEvent::OnRtpPacket(p) => measured.record(index, &p.payload),
                    TrackRemoteEvent::OnEnded => break,
                    _ => {}
                }
            }
        });
    }
}

/// One packet to send: its header fields and the start of its payload; the rest of the
/// payload is our header (source, kind, sequence number, send time) and padding.
struct MediaPacket {
    pt: u8,
    seq: u32,
    ts: u32,
    marker: bool,
    size: usize,
    first: [u8; 2],
    kind: u8,
}

impl MediaPacket {
    /// The RTP packet from site `index`, stamped with the time now.
    fn build(&self, index: usize, ssrc: u32) -> rtc::rtp::Packet {
        let mut b = vec![0u8; self.size];
        b[..2].copy_from_slice(&self.first);
        b[HEADER_AT..HEADER_AT + 2].copy_from_slice(&(index as u16).to_be_bytes());
        b[HEADER_AT + 2] = self.kind;
        b[HEADER_AT + 3..HEADER_AT + 7].copy_from_slice(&self.seq.to_be_bytes());
        b[HEADER_AT + 7..HEADER_AT + 15].copy_from_slice(&now_us().to_be_bytes());
        rtp::packet(self.pt, ssrc, self.seq as u16, self.ts, self.marker, b)
    }
}

/// One simulated site: joins, publishes, receives; stops with `cancel`.
/// `light`: receive through a [`DrainRuntime`] that counts the media into it, unread.
async fn site(
    bridge: &TestBridge,
    index: usize,
    video_kbps: Arc<AtomicU64>,
    pace: f64,
    measured: Arc<Measured>,
    light: Option<Arc<Drained>>,
    cancel: CancellationToken,
) -> (mpsc::UnboundedSender<Value>, Arc<AtomicBool>) {
    let id = site_id(index);
    let mut client = Client::connect(&bridge.cert_pem(), bridge.port).await;
    let joined = client.join(&id, &key(index)).await;
    assert_eq!(joined["type"], "joined", "{id}: {joined}");
    let (mut ws_tx, mut ws_rx) = client.into_socket().split();
    let (outgoing, mut outgoing_rx) = mpsc::unbounded_channel::<Value>();
    let connected = Arc::new(AtomicBool::new(false));
    let handler = Arc::new(Handler { index, outgoing: outgoing.clone(), connected: connected.clone(), measured });
    let runtime = light.map(|d| Arc::new(DrainRuntime::new(d)) as Arc<dyn webrtc::runtime::Runtime>);
    let pc = client_pc_on(handler, runtime).await;
    let (opus, vp8) = (opus(), vp8());
    let (assrc, vssrc) = (rand::random::<u32>(), rand::random::<u32>());
    let audio = local_track(&id, RtpCodecKind::Audio, opus, assrc);
    let video = local_track(&id, RtpCodecKind::Video, vp8, vssrc);
    for t in [audio.clone(), video.clone()] {
        let init = RTCRtpTransceiverInit { direction: RTCRtpTransceiverDirection::Sendonly, streams: vec![id.clone()], send_encodings: vec![] };
        pc.add_transceiver_from_track(t as Arc<dyn TrackLocal>, Some(init)).await.unwrap();
    }
    let offer = pc.create_offer(None).await.unwrap();
    pc.set_local_description(offer).await.unwrap();
    outgoing.send(json!({"type": "offer", "sdp": pc.local_description().await.unwrap().sdp})).unwrap();
    // Signalling, bounded by `cancel`.
    {
        let (pc, cancel, outgoing) = (pc.clone(), cancel.clone(), outgoing.clone());
        tokio::spawn(async move {
            let mut keepalive = tokio::time::interval(Duration::from_secs(15));
            loop {
                tokio::select! {
                    _ = cancel.cancelled() => break,
                    _ = keepalive.tick() => { let _ = ws_tx.send(Message::Text(json!({"type": "ping"}).to_string().into())).await; }
                    Some(v) = outgoing_rx.recv() => { if ws_tx.send(Message::Text(v.to_string().into())).await.is_err() { break; } }
                    msg = ws_rx.next() => {
                        let Some(Ok(Message::Text(t))) = msg else { if matches!(msg, Some(Ok(_))) { continue; } break };
                        let v: Value = serde_json::from_str(t.as_str()).unwrap_or(Value::Null);
                        match v["type"].as_str() {
                            Some("answer") => { let _ = pc.set_remote_description(RTCSessionDescription::answer(v["sdp"].as_str().unwrap_or("").into()).unwrap()).await; }
                            Some("offer") => {
                                let _ = pc.set_remote_description(RTCSessionDescription::offer(v["sdp"].as_str().unwrap_or("").into()).unwrap()).await;
                                let a = pc.create_answer(None).await.unwrap();
                                pc.set_local_description(a).await.unwrap();
                                let _ = outgoing.send(json!({"type": "answer", "sdp": pc.local_description().await.unwrap().sdp}));
                            }
                            Some("candidate") => {
                                let c = &v["candidate"];
                                let _ = pc.add_ice_candidate(candidate_init(c, c["candidate"].as_str().unwrap_or("").into())).await;
                            }
                            _ => {}
                        }
                    }
                }
            }
            let _ = pc.close().await;
        });
    }
    // Media: a 20 ms tick; audio every tick, video frames at 15/s split into 1000-byte packets,
    // all at once or paced by their own task.
    {
        let (connected, cancel) = (connected.clone(), cancel.clone());
        let paced = (pace > 0.0).then(|| {
            let (frames, mut frames_rx) = mpsc::unbounded_channel::<Vec<MediaPacket>>();
            let (video, video_kbps, cancel) = (video.clone(), video_kbps.clone(), cancel.clone());
            tokio::spawn(async move {
                while let Some(frame) = tokio::select! { _ = cancel.cancelled() => None, f = frames_rx.recv() => f } {
                    let bits_per_s = pace * video_kbps.load(Ordering::Relaxed).max(1) as f64 * 1000.0;
                    let gap = Duration::from_secs_f64(VIDEO_PACKET_BYTES as f64 * 8.0 / bits_per_s);
                    let mut next = tokio::time::Instant::now();
                    for (k, p) in frame.into_iter().enumerate() {
                        if k > 0 {
                            next += gap;
                            tokio::time::sleep_until(next).await;
                        }
                        let _ = video.write_rtp(p.build(index, vssrc)).await;
                    }
                }
            });
            frames
        });
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(20));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            let (mut aseq, mut vseq, mut ats, mut vts, mut n) = (0u32, 0u32, 0u32, 0u32, 0u64);
            let mut video_bytes = 0.0f64;
            loop {
                tokio::select! { _ = cancel.cancelled() => break, _ = tick.tick() => {} }
                if !connected.load(Ordering::Relaxed) {
                    continue;
                }
                n += 1;
                let sound = MediaPacket { pt: 111, seq: aseq, ts: ats, marker: false, size: AUDIO_PACKET_BYTES, first: [0xF8, 0xFF], kind: 0 };
                let _ = audio.write_rtp(sound.build(index, assrc)).await;
                aseq = aseq.wrapping_add(1);
                ats = ats.wrapping_add(960);
                video_bytes += video_kbps.load(Ordering::Relaxed) as f64 * 1000.0 / 8.0 / 50.0;
                // A frame every 4 or 3 ticks (15 frames/s), carrying the bytes accumulated since.
                if n % 10 == 0 || n % 10 == 3 || n % 10 == 7 {
                    let packets = ((video_bytes / VIDEO_PACKET_BYTES as f64).round() as usize).max(1);
                    video_bytes = 0.0;
                    let frame: Vec<MediaPacket> = (0..packets)
                        .map(|k| {
                            let first = if k == 0 { [0x10, 0x10] } else { [0x00, 0x10] };
                            MediaPacket {
                                pt: 96,
                                seq: vseq.wrapping_add(k as u32),
                                ts: vts,
                                marker: k + 1 == packets,
                                size: VIDEO_PACKET_BYTES,
                                first,
                                kind: 1,
                            }
                        })
                        .collect();
                    vseq = vseq.wrapping_add(packets as u32);
                    vts = vts.wrapping_add(6000);
                    match &paced {
                        Some(frames) => {
                            let _ = frames.send(frame);
                        }
                        None => {
                            for p in frame {
                                let _ = video.write_rtp(p.build(index, vssrc)).await;
                            }
                        }
                    }
                }
            }
        });
    }
    (outgoing, connected)
}

fn self_cpu() -> f64 {
    proc_usage(std::process::id()).0
}

fn main() {
    let a = args();
    epoch();
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap().block_on(run(a));
}

async fn run(a: Args) {
    let data = common::scratch_dir("load");
    let path = data.join("load.toml");
    std::fs::write(&path, config(&a)).unwrap();
    let bridge = TestBridge::start_with(path, data);
    let pid = bridge.pid();
    let measured = Arc::new(Measured::default());
    let drained = Arc::new(Drained::default());
    let cancel = CancellationToken::new();
    let join_start = Instant::now();
    let join_cpu0 = proc_usage(pid).0;
    let mut sites = Vec::new();
    let mut rates = Vec::new();
    for batch in (0..a.sites).collect::<Vec<_>>().chunks(a.join_batch.max(1)) {
        let joins = batch.iter().map(|&i| {
            let rate = Arc::new(AtomicU64::new(if a.stage && i == 0 { a.stage_kbps } else { a.video_kbps }));
            rates.push(rate.clone());
            let light = (i >= a.measured).then(|| drained.clone());
            site(&bridge, i, rate, a.pace, measured.clone(), light, cancel.clone())
        });
        sites.extend(futures::future::join_all(joins.collect::<Vec<_>>()).await);
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    while !sites.iter().all(|(_, c)| c.load(Ordering::Relaxed)) {
        assert!(Instant::now() < deadline, "not every site connected within 120 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let joined_in = join_start.elapsed().as_secs_f64();
    let join_cpu = proc_usage(pid).0 - join_cpu0;
    if a.stage {
        // The chair mutes the wards and gives the floor to the first one, which speaks in HD.
        sites[0].0.send(json!({"type": "mute_all", "muted": true})).unwrap();
        sites[0].0.send(json!({"type": "give_floor", "site": site_id(1)})).unwrap();
        rates[1].store(a.stage_kbps, Ordering::Relaxed);
    }
    tokio::time::sleep(Duration::from_secs(5)).await; // warm-up: keyframes, selections settle
    let h0 = bridge.get_json("/api/health").await;
    let ((cpu0, _), gen0) = (proc_usage(pid), self_cpu());
    measured.on.store(true, Ordering::Relaxed);
    drained.on.store(true, Ordering::Relaxed);
    let t0 = Instant::now();
    let storm = (a.storm > 0).then(|| {
        let (cert, port, n, sites) = (bridge.cert_pem(), bridge.port, a.storm, a.sites);
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(2)).await;
            let start = Instant::now();
            // Each in its own task: a sign-in that gets no answer (the helper panics after 10 s)
            // counts as failed.
            let signins = (0..n).map(|k| {
                let cert = cert.clone();
                tokio::spawn(async move { common::ws::site_session(&cert, port, &site_id(k % sites), &key(k % sites)).await.0 })
            });
            let statuses = futures::future::join_all(signins).await;
            (start.elapsed().as_secs_f64(), statuses.iter().filter(|s| matches!(s, Ok(200))).count())
        })
    });
    let mut rss_max = 0;
    while t0.elapsed() < Duration::from_secs(a.seconds) {
        tokio::time::sleep(Duration::from_millis(500)).await;
        rss_max = rss_max.max(proc_usage(pid).1);
    }
    measured.on.store(false, Ordering::Relaxed);
    drained.on.store(false, Ordering::Relaxed);
    let elapsed = t0.elapsed().as_secs_f64();
    let ((cpu1, rss_end), gen1) = (proc_usage(pid), self_cpu());
    let h1 = bridge.get_json("/api/health").await;
    let delay = |h: &Value| serde_json::from_value::<DelaySnapshot>(h["forwarding_delay"].clone()).ok();
    // How long the bridge itself held each packet it forwarded (lean engine), over the window
    // (each sending task adds its counts once a second, so the window is that much behind).
    let bridge_delay = delay(&h1).zip(delay(&h0)).map(|(b, a)| b.since(&a));
    let bridge_delay_us = |q: f64| bridge_delay.as_ref().and_then(|d| d.quantile(q)).map(|s| (s * 1e6).round());
    let storm = match storm {
        Some(t) => Some(t.await.unwrap()),
        None => None,
    };
    let delta = |k: &str| (h1["media"][k].as_u64().unwrap_or(0) - h0["media"][k].as_u64().unwrap_or(0)) as f64;
    let cpu = (cpu1 - cpu0) / elapsed;
    let out_pps = delta("forwarded_packets") / elapsed;
    let summary = json!({
        "sites": a.sites,
        "mode": if a.stage { "stage" } else { "grid" },
        "engine": a.engine,
        "pace": a.pace,
        "seconds": elapsed,
        "joined_and_connected_s": joined_in,
        // Bridge CPU-seconds from the first join until every site's media connected.
        "bridge_cpu_s_during_joins": join_cpu,
        "video_kbps": a.video_kbps,
        "stage_kbps": if a.stage { Some(a.stage_kbps) } else { None },
        "bridge_in_pps": delta("received_packets") / elapsed,
        "bridge_out_pps": out_pps,
        "bridge_dropped_queue_full": delta("dropped_queue_full"),
        "bridge_cpu_percent_of_one_core": cpu * 100.0,
        "forwarded_packets_per_cpu_second": if cpu > 0.0 { out_pps / cpu } else { 0.0 },
        "bridge_rss_mib_max": rss_max as f64 / 1024.0,
        "bridge_rss_mib_end": rss_end as f64 / 1024.0,
        "measured_sites": a.measured,
        "received_pps_at_measured_sites": measured.packets.load(Ordering::Relaxed) as f64 / elapsed,
        "loss_percent_at_measured_sites": measured.loss_percent(),
        "received_pps_at_light_sites": drained.datagrams.load(Ordering::Relaxed) as f64 / elapsed,
        // Everything the bridge wrote that reached a site's socket (measured or light).
        "delivered_percent": if out_pps > 0.0 { (measured.packets.load(Ordering::Relaxed) + drained.datagrams.load(Ordering::Relaxed)) as f64 / elapsed / out_pps * 100.0 } else { 0.0 },
        "latency_us_p50": measured.percentile_us(ALL, 0.50),
        "latency_us_p99": measured.percentile_us(ALL, 0.99),
        "audio_latency_us_p50": measured.percentile_us(AUDIO, 0.50),
        "audio_latency_us_p99": measured.percentile_us(AUDIO, 0.99),
        "frame_start_latency_us_p50": measured.percentile_us(FRAME_START, 0.50),
        "frame_start_latency_us_p99": measured.percentile_us(FRAME_START, 0.99),
        // Datagram off the media port → sendto returned, inside the bridge (lean engine only).
        "bridge_delay_us_p50": bridge_delay_us(0.50),
        "bridge_delay_us_p99": bridge_delay_us(0.99),
        "bridge_delay_packets": bridge_delay.as_ref().map(|d| d.total()),
        "storm_signins": a.storm,
        "storm_signins_ok": storm.map(|s| s.1),
        "storm_all_signed_in_s": storm.map(|s| s.0),
        "load_generator_cpu_percent": (gen1 - gen0) / elapsed * 100.0,
        "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
    });
    println!("{}", serde_json::to_string_pretty(&summary).unwrap());
    cancel.cancel();
    tokio::time::sleep(Duration::from_millis(300)).await;
}
