//! A camera and microphone recorded once and replayed by a simulated site (`Sim` with
//! `Publish::Replay`): real VP8 in two simulcast layers and real Opus, so that a browser
//! receiving them decodes pictures and plays sound, while the sending site spends no CPU on
//! encoding. Six browsers that each encode a camera saturate a small machine; with the
//! cameras replayed, a bench measures the line instead of the machine (issue #20).
//!
//! The layers are what the web page's simulcast sends from a 640x360 camera (`l` 320x180 at
//! 200 kbit/s, `h` 640x360 at 800 kbit/s, 15 frames/s), each encoded at a constant rate with
//! one keyframe per 10 s loop, as a camera sends few keyframes unasked. A keyframe request
//! (PLI or FIR) is answered as an encoder would: the layer's next frame goes out intra-coded,
//! from a second, all-keyframe recording of the same pictures (a keyframe about five frames'
//! worth). The P-frames after it were encoded against the original, so the picture drifts a
//! little until the loop's next keyframe; a decoder does not notice. The picture is the site's
//! colour under per-frame noise, as `browser::busy_camera` gives a browser, so every layer
//! runs at its rate.
//!
//! Each layer is coded in three temporal layers as Chromium codes its simulcast (libvpx's
//! pattern 0, 2, 1, 2: layer 0 at 40 % of the rate, layer 1 at 20 %, layer 2 at 40 %), and
//! each packet's VP8 descriptor numbers them (TID, layer sync, TL0PICIDX), so a bridge may send
//! a receiver a quarter or half of the frames. Frames 1 and 2 of each four refer only to
//! frame 0, so they are marked as layer syncs; a keyframe sent on request is numbered as a
//! layer-0 frame.

use super::rtp;
use bytes::Bytes;
use rtc::media::io::ivf_reader::IVFReader;
use rtc::media::io::ogg_reader::OggReader;
use rtc::rtp::extension::HeaderExtension;
use rtc::shared::marshal::{Marshal, MarshalSize};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_local::TrackLocal;

/// The simulcast layers: RID, frame size, constant bitrate (kbit/s).
pub const LAYERS: [(&str, &str, u32); 2] = [("l", "320x180", 200), ("h", "640x360", 800)];
/// A keyframe sent on request costs about this many frames at the layer's rate (libvpx gives
/// a keyframe twice its share of the rate asked: an all-keyframe encode at 2.5 times the
/// layer's rate measured 8.5 kB per 320x180 frame and 35 kB per 640x360 one, five times the
/// layers' mean frames of 1.7 and 6.6 kB).
const KEYFRAME_FRAMES: u32 = 5;
/// Keyframe requests closer together than this get one keyframe (an encoder's own limit).
const KEYFRAME_GAP: Duration = Duration::from_millis(300);
const FPS: u64 = 15;
const SECONDS: u32 = 10;
/// RTP payload size a frame is cut to (as browsers do, below any path's MTU).
const MTU: usize = 1100;
/// The temporal layer of each frame in a group of four (libvpx's and Chromium's pattern).
const TEMPORAL_PATTERN: [u8; 4] = [0, 2, 1, 2];
/// Cumulative share of a layer's rate up to each temporal layer, percent.
const TEMPORAL_RATE: [u32; 3] = [40, 60, 100];
pub const MID_URI: &str = "urn:ietf:params:rtp-hdrext:sdes:mid";
pub const RID_URI: &str = "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id";

/// One site's recorded media, held in memory and replayed in a loop.
pub struct Recording {
    /// Per layer (in `LAYERS` order), its frames; the first of each is a keyframe.
    layers: Vec<Vec<Bytes>>,
    /// Per layer, the same pictures each coded as a keyframe, sent when one is asked for.
    keyframes: Vec<Vec<Bytes>>,
    /// Opus packets of 20 ms.
    audio: Vec<Bytes>,
}

impl Recording {
    /// Encodes 10 s of the site's camera (its colour, noisy) and microphone (a tone of
    /// `tone` Hz) with ffmpeg into `dir`, and reads them back. Panics when ffmpeg fails.
    pub fn encode(dir: &Path, site: &str, rgb: (u8, u8, u8), tone: u32) -> Recording {
        let colour = format!("0x{:02X}{:02X}{:02X}", rgb.0, rgb.1, rgb.2);
        let camera = format!("color=c={colour}:s=640x360:r={FPS},noise=alls=40:allf=t");
        let encode = |name: String, size: &str, kbps: u32, gop: u64| {
            let (file, rate, gop) = (dir.join(name), format!("{kbps}k"), gop.to_string());
            let rates: Vec<String> = TEMPORAL_RATE.iter().map(|p| (kbps * p / 100).to_string()).collect();
            let temporal = format!(
                "ts_number_layers=3:ts_target_bitrate={}:ts_rate_decimator=4,2,1:ts_periodicity=4:ts_layer_id=0,2,1,2:ts_layering_mode=3",
                rates.join(",")
            );
            #[rustfmt::skip]
            ffmpeg(&[
                "-f", "lavfi", "-i", &camera, "-t", &SECONDS.to_string(), "-vf", &format!("scale={size}"),
                "-c:v", "libvpx", "-deadline", "realtime", "-cpu-used", "8", "-b:v", &rate, "-minrate", &rate, "-maxrate", &rate,
                "-bufsize", &rate, "-qmin", "4", "-qmax", "63", "-g", &gop, "-keyint_min", &gop,
                "-lag-in-frames", "0", "-auto-alt-ref", "0", "-error-resilient", "1", "-ts-parameters", &temporal, path(&file),
            ]);
            read_ivf(&file)
        };
        let all = FPS * SECONDS as u64;
        let layers = LAYERS.iter().map(|(rid, size, kbps)| encode(format!("{site}-{rid}.ivf"), size, *kbps, all)).collect();
        let keyframes = LAYERS.iter().map(|(rid, size, kbps)| encode(format!("{site}-{rid}-key.ivf"), size, kbps * KEYFRAME_FRAMES / 2, 1)).collect();
        let file = dir.join(format!("{site}.ogg"));
        #[rustfmt::skip]
        ffmpeg(&[
            "-f", "lavfi", "-i", &format!("sine=frequency={tone}:sample_rate=48000"), "-t", &SECONDS.to_string(),
            "-c:a", "libopus", "-b:a", "32k", "-application", "voip", "-frame_duration", "20", "-fec", "1", "-packet_loss", "10",
            "-page_duration", "20000", path(&file),
        ]);
        Recording { layers, keyframes, audio: read_ogg(&file) }
    }

    /// The rate of each layer as recorded (kbit/s of payload), for a bench to print.
    pub fn layer_kbps(&self) -> Vec<f64> {
        let secs = |frames: usize| frames as f64 / FPS as f64;
        self.layers.iter().map(|l| l.iter().map(|f| f.len()).sum::<usize>() as f64 * 8.0 / secs(l.len()) / 1000.0).collect()
    }
}

fn path(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 scratch path")
}

fn ffmpeg(args: &[&str]) {
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y"])
        .args(args)
        .output()
        .expect("run ffmpeg (tests/lab/install-chromium.sh installs it)");
    assert!(out.status.success(), "ffmpeg {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
}

fn read_ivf(file: &Path) -> Vec<Bytes> {
    let (mut reader, _) = IVFReader::new(std::fs::File::open(file).unwrap()).expect("an IVF header");
    let frames: Vec<Bytes> = std::iter::from_fn(|| reader.parse_next_frame().ok().map(|(f, _)| f.freeze())).collect();
    assert!(frames.len() as u64 >= FPS * SECONDS as u64 - 1, "{}: {} frames", file.display(), frames.len());
    frames
}

fn read_ogg(file: &Path) -> Vec<Bytes> {
    let (mut reader, _) = OggReader::new(std::fs::File::open(file).unwrap(), true).expect("an Ogg Opus header");
    let packets: Vec<Bytes> = std::iter::from_fn(|| reader.parse_next_page().ok().map(|(p, _)| p.freeze())).filter(|p| !p.starts_with(b"OpusTags")).collect();
    assert!(packets.len() >= 50 * SECONDS as usize - 2, "{}: {} packets", file.display(), packets.len());
    packets
}

/// An SDES header extension's value (a MID or a RID), for `write_rtp_with_extensions`.
struct Sdes(Bytes);

impl MarshalSize for Sdes {
    fn marshal_size(&self) -> usize {
        self.0.len()
    }
}

impl Marshal for Sdes {
    fn marshal_to(&self, buf: &mut [u8]) -> rtc::shared::error::Result<usize> {
        buf[..self.0.len()].copy_from_slice(&self.0);
        Ok(self.0.len())
    }
}

fn sdes(uri: &'static str, value: &str) -> HeaderExtension {
    HeaderExtension::Custom { uri: uri.into(), extension: Box::new(Sdes(Bytes::copy_from_slice(value.as_bytes()))) }
}

/// When a replaying site sends: while `open()` (connected, not stopped), audio while `audio()`;
/// `red()`: the bridge's answer took redundant audio (asked once the site is connected).
pub trait Gate: Send + Sync + 'static {
    fn open(&self) -> bool;
    fn audio(&self) -> bool;
    fn stopped(&self) -> bool;
    fn red(&self) -> bool;
}

/// The payload type the replay offers redundant audio (RFC 2198) on, over Opus at 111.
pub const RED_PT: u8 = 63;

/// One RED packet's payload: the previous Opus packet (sent 960 samples earlier) as the
/// redundant block, then this one as the primary, as Chromium sends them.
fn red_payload(previous: Option<&Bytes>, primary: &Bytes) -> Bytes {
    let redundant: Vec<(u8, u16, &[u8])> = previous.filter(|p| p.len() < 1024).map(|p| (111, 960, &p[..])).into_iter().collect();
    diemcau::media::red::encode(&redundant, 111, primary).into()
}

/// Sends `recording` in a loop on `video` (one SSRC per layer in `ssrcs`, each packet naming
/// its RID and the section's `mid`) and `audio`, paced at the recording's own rate, while the
/// gate is open; returns when it is stopped.
pub async fn publish(
    recording: Arc<Recording>,
    audio: (Arc<TrackLocalStaticRTP>, u32),
    video: (Arc<TrackLocalStaticRTP>, [u32; 2], String),
    gate: Arc<dyn Gate>,
) {
    let sound = {
        let (recording, gate) = (recording.clone(), gate.clone());
        tokio::spawn(async move {
            let (track, ssrc) = audio;
            let mut tick = tokio::time::interval(Duration::from_millis(20));
            let (mut seq, mut ts) = (0u16, 0u32);
            let (mut red, mut previous) = (None, None);
            for packet in recording.audio.iter().cycle() {
                tick.tick().await;
                if gate.stopped() {
                    break;
                }
                if gate.open() && gate.audio() {
                    let p = if *red.get_or_insert_with(|| gate.red()) {
                        rtp::packet(RED_PT, ssrc, seq, ts, seq == 0, red_payload(previous, packet))
                    } else {
                        rtp::packet(111, ssrc, seq, ts, seq == 0, packet.clone())
                    };
                    let _ = track.write_rtp(p).await;
                    previous = Some(packet);
                } else {
                    previous = None;
                }
                (seq, ts) = (seq.wrapping_add(1), ts.wrapping_add(960));
            }
        })
    };
    let (track, ssrcs, mid) = video;
    let asked = Arc::new(KeyframeAsked::default());
    let requests = tokio::spawn(listen_for_keyframe_requests(track.clone(), ssrcs, asked.clone()));
    let mut last_keyframe = [None::<std::time::Instant>; 2];
    let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / FPS));
    let mut numbering = [Numbering::default(); 2];
    let (mut seq, mut ts) = ([0u16; 2], 0u32);
    let frames = recording.layers.iter().map(Vec::len).min().unwrap_or(0);
    for frame in (0..frames).cycle() {
        tick.tick().await;
        if gate.stopped() {
            break;
        }
        if gate.open() {
            for (layer, ((rid, ..), ssrc)) in LAYERS.iter().zip(ssrcs).enumerate() {
                let key = asked.take(layer) && last_keyframe[layer].is_none_or(|t| t.elapsed() >= KEYFRAME_GAP);
                if key {
                    last_keyframe[layer] = Some(std::time::Instant::now());
                }
                let coded = if key { &recording.keyframes[layer][frame] } else { &recording.layers[layer][frame] };
                let payloads = numbering[layer].packetize(coded, if key { 0 } else { frame });
                let last = payloads.len().saturating_sub(1);
                for (i, payload) in payloads.into_iter().enumerate() {
                    let packet = rtp::packet(96, ssrc, seq[layer], ts, i == last, payload);
                    let _ = track.write_rtp_with_extensions(packet, &[sdes(MID_URI, &mid), sdes(RID_URI, rid)]).await;
                    seq[layer] = seq[layer].wrapping_add(1);
                }
            }
        }
        ts = ts.wrapping_add((90_000 / FPS) as u32);
    }
    requests.abort();
    let _ = sound.await;
}

/// One layer's VP8 picture numbering (RFC 7741 §4.2): 15-bit PictureID, TL0PICIDX and the
/// temporal layer of each frame.
#[derive(Debug, Clone, Copy, Default)]
struct Numbering {
    picture_id: u16,
    tl0: u8,
}

impl Numbering {
    /// Cuts one coded frame (the `index`th of the recording: its place in the temporal
    /// pattern; a keyframe counts as index 0) into payloads, each with its descriptor.
    fn packetize(&mut self, frame: &Bytes, index: usize) -> Vec<Bytes> {
        let tid = TEMPORAL_PATTERN[index % 4];
        // Frames 1 and 2 of a group refer only to frame 0: a receiver may start their layers there.
        let sync = matches!(index % 4, 1 | 2);
        if tid == 0 {
            self.tl0 = self.tl0.wrapping_add(1);
        }
        let [hi, lo] = self.picture_id.to_be_bytes();
        let chunk = MTU - 6;
        let payloads = frame
            .chunks(chunk)
            .enumerate()
            .map(|(i, data)| {
                let mut p = Vec::with_capacity(6 + data.len());
                p.extend_from_slice(&[if i == 0 { 0x90 } else { 0x80 }, 0xE0, 0x80 | hi, lo, self.tl0, (tid << 6) | if sync { 0x20 } else { 0 }]);
                p.extend_from_slice(data);
                Bytes::from(p)
            })
            .collect();
        self.picture_id = (self.picture_id + 1) & 0x7fff;
        payloads
    }
}

/// Which layers a keyframe was asked for since their last frame went out.
#[derive(Default)]
struct KeyframeAsked([std::sync::atomic::AtomicBool; 2]);

impl KeyframeAsked {
    fn ask(&self, layer: usize) {
        self.0[layer].store(true, std::sync::atomic::Ordering::Relaxed);
    }
    fn take(&self, layer: usize) -> bool {
        self.0[layer].swap(false, std::sync::atomic::Ordering::Relaxed)
    }
}

/// The SSRCs a PLI or FIR asks a keyframe of (none for any other RTCP packet).
fn keyframe_asked_of(packet: &dyn rtc::rtcp::Packet) -> Vec<u32> {
    use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
    use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
    let any = packet.as_any();
    if let Some(pli) = any.downcast_ref::<PictureLossIndication>() {
        vec![pli.media_ssrc]
    } else if let Some(fir) = any.downcast_ref::<FullIntraRequest>() {
        fir.fir.iter().map(|e| e.ssrc).collect()
    } else {
        Vec::new()
    }
}

/// Notes each PLI or FIR for one of `ssrcs` (the layers, in order) that reaches the track
/// (the [`KeyframeRequests`] interceptor lets them through to it).
async fn listen_for_keyframe_requests(track: Arc<TrackLocalStaticRTP>, ssrcs: [u32; 2], asked: Arc<KeyframeAsked>) {
    use webrtc::media_stream::track_local::TrackLocalEvent;
    while let Some(TrackLocalEvent::OnRtcpPacket(packets)) = track.poll().await {
        for packet in &packets {
            let media = keyframe_asked_of(packet.as_ref());
            for (layer, ssrc) in ssrcs.iter().enumerate() {
                if media.contains(ssrc) {
                    asked.ask(layer);
                }
            }
        }
    }
}

/// An interceptor that lets keyframe requests (PLI, FIR) through to the sending track: inbound
/// RTCP otherwise ends in the interceptor chain, which cannot answer them. Registered last, so
/// every other interceptor has seen the packet; it changes nothing else.
pub struct KeyframeRequests {
    reads: std::collections::VecDeque<rtc::interceptor::TaggedPacket>,
    writes: std::collections::VecDeque<rtc::interceptor::TaggedPacket>,
}

impl KeyframeRequests {
    pub fn new() -> Self {
        KeyframeRequests { reads: Default::default(), writes: Default::default() }
    }
}

impl rtc::sansio::Protocol<rtc::interceptor::TaggedPacket, rtc::interceptor::TaggedPacket, ()> for KeyframeRequests {
    type Rout = rtc::interceptor::TaggedPacket;
    type Wout = rtc::interceptor::TaggedPacket;
    type Eout = ();
    type Error = rtc::shared::error::Error;
    type Time = std::time::Instant;

    fn handle_read(&mut self, mut msg: rtc::interceptor::TaggedPacket) -> Result<(), Self::Error> {
        if let rtc::interceptor::Packet::Rtcp(packets) = &msg.message.packet {
            if packets.iter().any(|p| !keyframe_asked_of(p.as_ref()).is_empty()) {
                msg.message.add(rtc::interceptor::Attribute::DeliverToApplication);
            }
        }
        self.reads.push_back(msg);
        Ok(())
    }

    fn poll_read(&mut self) -> Option<Self::Rout> {
        self.reads.pop_front()
    }

    fn handle_write(&mut self, msg: rtc::interceptor::TaggedPacket) -> Result<(), Self::Error> {
        self.writes.push_back(msg);
        Ok(())
    }

    fn poll_write(&mut self) -> Option<Self::Wout> {
        self.writes.pop_front()
    }
}

impl rtc::interceptor::Interceptor for KeyframeRequests {
    fn bind_local_stream(&mut self, _: &rtc::interceptor::StreamInfo) {}
    fn unbind_local_stream(&mut self, _: &rtc::interceptor::StreamInfo) {}
    fn bind_remote_stream(&mut self, _: &rtc::interceptor::StreamInfo) {}
    fn unbind_remote_stream(&mut self, _: &rtc::interceptor::StreamInfo) {}
}
