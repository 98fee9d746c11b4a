//! Benchmark (issue #20): one ward on an ordinary office line. HQ and the measured ward join in
//! real headless Chromium (fake cameras of distinct colours, fake microphones of distinct
//! tones), the four other wards as simulated sites replaying recorded VP8 simulcast and Opus
//! (below); the measured ward, Cụm Hàng Gai, holds the floor and runs in a namespace of its own behind
//! a shaped line (`tests/common/line.rs`); everyone else is on the bridge's unshaped loopback.
//! Each scenario impairs that ward's line one way, samples the browsers' own `getStats()`
//! every 500 ms and prints one row, the issue's goal beside each figure, and a `JSON` line.
//!
//!   cargo bench --bench network                                   # every scenario, 60 s each
//!   cargo bench --bench network -- --scenario cap1m --seconds 20  # one (repeatable flag)
//!   cargo bench --bench network -- --list
//!   cargo bench --bench network -- --no-red ...                   # without redundant audio
//!   cargo bench --bench network -- --all-chromium ...             # six Chromiums, no replay
//!
//! Needs root (network namespaces, tc, nftables) and Chromium (tests/lab/install-chromium.sh).
//!
//! The four other wards are simulated sites (webrtc-rs) replaying VP8 simulcast and Opus
//! encoded once with ffmpeg (`tests/common/replay.rs`: the same layers and rates as a page's
//! camera, keyframes on request, redundant audio as Chromium sends it), so that only HQ and
//! the measured ward encode in Chromium: six encoding browsers saturate a 2-core machine, and
//! then the bench measures the machine, not the line (docs/performance.md). `--all-chromium`
//! runs all six sites in Chromium, as the bench did before 2026-12-05.
//!
//! Scenarios: `cap1m` (downlink capped to 1 Mbit/s for `--seconds`, then lifted), `loss5`
//! (5 % random loss), `delay200loss2` (200 ms added delay + 2 % loss), `cut5` (all UDP dropped
//! for 5 s, then restored); `up-cap500k`, `up-loss5`, `up-delay200loss2`, `up-cut5` the same on
//! the ward's uplink (its own sending capped to 500 kbit/s, ...), measured on what HQ receives
//! of it. Downlink scenarios measure every remote site the ward receives (HQ on its stage, the
//! four other wards as thumbnails); uplink ones measure the ward as HQ's page receives it (on
//! HQ's stage, since the ward holds the floor).
//!
//! Definitions (the figures' meaning; change them here and in docs/performance.md together):
//! - **wire rate**: a page's transport `bytesReceived` (downlink) or `bytesSent` (uplink) plus
//!   28 bytes of IPv4 + UDP header per packet, per second: what the line's cap counts.
//! - **adapted**: the first moment after the cap from which, for 3 s, (a) the wire rate in each
//!   1 s slice is ≤ 95 % of the cap, (b) the line's queue drops no packet, and (c) every
//!   measured video decodes at least one frame in each 1 s slice. A sender that ignores the cap
//!   fills the queue and loses packets, so (a) and (b) fail; one that stops a video fails (c).
//!   "adapt" is the time from applying the cap to that moment; "fits" (JSON `fits_s`) the same
//!   with (a) and (b) only.
//! - **freezes**: Chromium's `totalFreezesDuration` gained during the impairment, per minute of
//!   impairment, for the worst measured video.
//! - **concealed**: `Δ concealedSamples / Δ totalSamplesReceived` over the measured audio during
//!   the impairment.
//! - **decoding**: every measured video decoded at least one frame in each 2 s slice of the
//!   impairment ("no (n)" counts the slices where one did not).
//! - **recovery** (cut): from the restore until the stage site's audio packets move again
//!   ("audio back"), and until every measured video decodes frames again ("video back"); a page
//!   that reconnects (counters starting again from zero) counts as moving.
//! - **full layers**: from lifting the cap until the stage video's `frameWidth` is back to what
//!   it was just before the cap.
//!
//! Cameras are 640x360 of the site's colour under per-frame noise (`busy_camera`), so every
//! layer runs at its bitrate ceiling (a plain colour compresses to ~50 kbit/s and no cap binds).
//!
//! Limits: the web page asks for 640x360 cameras, so each camera sends two simulcast layers
//! (`l` 320x180 ≤ 200 kbit/s, `h` 640x360 ≤ 800 kbit/s; three layers start at 960x540, see
//! `web/bridge.js`). This kernel has no netem: delay comes from a userspace relay in the bridge's
//! namespace (through which the ward's UDP always passes, with no delay outside the delay
//! scenarios). ICE-TCP is off in this bench so that a cut of UDP is a cut of the media. The
//! replayed cameras send constant-rate layers of one 10 s loop; a real camera's rate follows
//! its scene.

#[path = "../common/mod.rs"]
mod common;

use common::browser::{busy_camera, Browser};
use common::line::{self, Dir, Line, BRIDGE_IP};
use common::replay::Recording;
use common::sim::Sim;
use common::{scratch_dir, Deadline};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The meeting: HQ (the chair) and five wards, each with its own colour and tone.
const SITES: [(&str, (u8, u8, u8), u32); 6] = [
    ("hq", (220, 30, 30), 440),
    ("cua-nam", (30, 30, 220), 523),
    ("hang-bai", (220, 200, 30), 587),
    ("hang-gai", (30, 200, 30), 660),
    ("trang-tien", (200, 30, 200), 740),
    ("hang-dao", (30, 200, 200), 880),
];
/// The ward on the shaped line.
const WARD: &str = "hang-gai";
const TICK: Duration = Duration::from_millis(500);

#[derive(Debug, Clone, Copy)]
enum Kind {
    /// No impairment: the harness's own noise floor (freezes and concealment on this machine).
    None,
    Cap(u32),
    Loss(u32),
    DelayLoss(u64, u32),
    Cut(u64),
}

#[derive(Debug, Clone, Copy)]
struct Scenario {
    name: &'static str,
    dir: Dir,
    kind: Kind,
}

const SCENARIOS: [Scenario; 9] = [
    Scenario { name: "baseline", dir: Dir::Down, kind: Kind::None },
    Scenario { name: "cap1m", dir: Dir::Down, kind: Kind::Cap(1000) },
    Scenario { name: "loss5", dir: Dir::Down, kind: Kind::Loss(5) },
    Scenario { name: "delay200loss2", dir: Dir::Down, kind: Kind::DelayLoss(200, 2) },
    Scenario { name: "cut5", dir: Dir::Down, kind: Kind::Cut(5) },
    Scenario { name: "up-cap500k", dir: Dir::Up, kind: Kind::Cap(500) },
    Scenario { name: "up-loss5", dir: Dir::Up, kind: Kind::Loss(5) },
    Scenario { name: "up-delay200loss2", dir: Dir::Up, kind: Kind::DelayLoss(200, 2) },
    Scenario { name: "up-cut5", dir: Dir::Up, kind: Kind::Cut(5) },
];

/// One poll of the pages and the line.
#[derive(Debug, Clone)]
struct Sample {
    at: Instant,
    /// `STATS_JS` on the page that receives the impaired direction (the ward for downlink,
    /// HQ for uplink), and on the ward's page (its sending, for the uplink's wire rate).
    viewer: Value,
    ward: Value,
    line: common::line::Counters,
}

/// Per inbound stream, by site: video `f` framesDecoded, `fz` totalFreezesDuration, `w`/`h`
/// frame size, `vb` bytes, `rtx` retransmittedPacketsReceived (repairs on an RTX stream); audio `cs` concealedSamples, `ts` totalSamplesReceived, `ap`
/// packets. And the transport's bytes/packets each way, and the outbound video layers.
const STATS_JS: &str = r#"(async () => {
  const c = window.diemcau && window.diemcau.client;
  if (!c || !c.pc) return null;
  const r = await c.pc.getStats();
  const o = { sites: {}, rx: 0, rxp: 0, tx: 0, txp: 0, out: {} };
  r.forEach((s) => {
    if (s.type === 'transport') { o.rx += s.bytesReceived || 0; o.rxp += s.packetsReceived || 0; o.tx += s.bytesSent || 0; o.txp += s.packetsSent || 0; }
    if (s.type === 'outbound-rtp' && s.kind === 'video') o.out[s.rid || '-'] = { b: s.bytesSent || 0, w: s.frameWidth || 0, q: s.qualityLimitationReason || '' };
    if (s.type !== 'inbound-rtp' || !s.mid) return;
    const site = c.siteOf(c.slotByMid.get(s.mid));
    if (!site) return;
    const x = (o.sites[site] ||= {});
    if (s.kind === 'video') Object.assign(x, { f: s.framesDecoded || 0, fz: s.totalFreezesDuration || 0, w: s.frameWidth || 0, h: s.frameHeight || 0, vb: s.bytesReceived || 0, rtx: s.retransmittedPacketsReceived || 0 });
    else Object.assign(x, { cs: s.concealedSamples || 0, ts: s.totalSamplesReceived || 0, ap: s.packetsReceived || 0 });
  });
  return o;
})()"#;

fn num(v: &Value, path: &[&str]) -> f64 {
    path.iter().fold(v, |v, k| &v[*k]).as_f64().unwrap_or(0.0)
}

struct Args {
    scenarios: Vec<Scenario>,
    seconds: u64,
    selftest: bool,
    /// `--no-red`: the bridge negotiates no redundant audio (`[media] audio_red = false`).
    no_red: bool,
    /// The wards other than the measured one replay recorded media (unless `--all-chromium`).
    replay: bool,
}

fn args() -> Args {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let mut a = Args { scenarios: Vec::new(), seconds: 60, selftest: false, no_red: false, replay: true };
    let mut i = 0;
    while i < argv.len() {
        match argv[i].as_str() {
            "--scenario" => {
                let name = argv.get(i + 1).expect("--scenario NAME");
                let s = SCENARIOS.iter().find(|s| s.name == name).unwrap_or_else(|| panic!("no scenario {name}; --list shows them"));
                a.scenarios.push(*s);
                i += 1;
            }
            "--seconds" => {
                a.seconds = argv.get(i + 1).and_then(|v| v.parse().ok()).expect("--seconds N");
                i += 1;
            }
            "--selftest" => a.selftest = true,
            "--no-red" => a.no_red = true,
            "--all-chromium" => a.replay = false,
            "--list" => {
                for s in SCENARIOS {
                    println!("{:<18} {:?} {:?}", s.name, s.dir, s.kind);
                }
                std::process::exit(0);
            }
            _ => {} // cargo adds --bench
        }
        i += 1;
    }
    if a.scenarios.is_empty() {
        a.scenarios = SCENARIOS.to_vec();
    }
    a
}

fn main() {
    let args = args(); // --list and bad names answer before any namespace is made
    line::enter_private_netns("net");
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    if args.selftest {
        runtime.block_on(selftest());
    } else {
        runtime.block_on(run(args));
    }
}

/// A UDP port nobody in this (fresh) namespace uses, for the bridge's media.
fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("0.0.0.0:0").unwrap().local_addr().unwrap().port()
}

struct Meeting {
    pages: Vec<Browser>,
    /// The replaying wards, held for the run.
    replays: Vec<Sim>,
    /// The widest the stage video has been seen, per direction (down, up): "full layers".
    full: [f64; 2],
}

impl Meeting {
    fn page(&mut self, site: &str) -> &mut Browser {
        self.pages.iter_mut().find(|b| b.name == site).unwrap()
    }
}

async fn run(args: Args) {
    let udp = free_udp_port();
    let mut line = Line::new(udp).await;
    let bridge = line::start_bridge_with(udp, if args.no_red { "audio_red = false" } else { "" });
    line.expose_tcp(bridge.port).await;
    let scratch = scratch_dir("net");
    let mut meeting = Meeting { pages: Vec::new(), replays: Vec::new(), full: [0.0; 2] };
    for (site, rgb, tone) in SITES {
        if args.replay && site != WARD && site != "hq" {
            let recording = Arc::new(Recording::encode(&scratch, site, rgb, tone));
            println!("{site} replays VP8 layers of {:.0?} kbit/s and Opus", recording.layer_kbps());
            meeting.replays.push(Sim::join_replaying(&bridge.cert_pem(), bridge.port, site, bridge.key(site), recording, &BRIDGE_IP.to_string()).await);
            continue;
        }
        let media = busy_camera(&scratch, site, rgb, tone);
        let page = if site == WARD {
            let url = format!("https://{BRIDGE_IP}:{}/site/{site}#key={}", bridge.port, bridge.key(site));
            Browser::launch_in_netns(&line.ward_ns, site, &url, &media, &scratch).await
        } else {
            Browser::launch(site, &bridge.join_url(site), &media, &scratch).await
        };
        meeting.pages.push(page);
    }
    for (other, ..) in SITES.iter().filter(|s| s.0 != WARD) {
        meeting.page(WARD).wait_receiving(other, Duration::from_secs(90), " over the line").await;
    }
    meeting.page("hq").wait_receiving(WARD, Duration::from_secs(60), " from the line").await;
    // The ward holds the floor: on HQ's stage (its high layer goes out), and HQ on its own.
    meeting.page(WARD).eval("window.diemcau.client.act({type: 'request_floor'})").await;
    let deadline = Deadline::after(Duration::from_secs(20), "the ward to hold the floor");
    loop {
        meeting.page("hq").eval(&format!("window.diemcau.client.act({{type: 'give_floor', site: '{WARD}'}})")).await;
        let holder = meeting.page(WARD).eval("window.diemcau.state().floor.holders.map(h => h.site)").await;
        if holder == Some(json!([WARD])) {
            break;
        }
        deadline.tick_showing(&holder).await;
    }
    for page in &mut meeting.pages {
        let out = page.eval(STATS_JS).await.map(|v| v["out"].clone()).unwrap_or_default();
        println!("{} sends {out}", page.name);
    }
    let red = if args.no_red { "off" } else { "on" };
    let wards = if args.replay { "HQ and 1 ward in Chromium, 4 wards replayed" } else { "HQ + 5 wards in Chromium" };
    println!(
        "network bench: {wards}; {WARD} on a shaped line (veth {BRIDGE_IP} <-> {}); {} s per scenario; redundant audio {red}",
        line::WARD_IP,
        args.seconds
    );
    let mut rows = Vec::new();
    for s in &args.scenarios {
        let row = scenario(&mut meeting, &line, *s, args.seconds).await;
        println!("{}", row.0);
        println!("JSON {}", row.1);
        rows.push(row.0);
        line.clear();
    }
    println!("\nsummary (harness: tests/bench/network.rs; definitions in its header)");
    for r in rows {
        println!("{r}");
    }
    drop(meeting);
    drop(line);
    drop(bridge);
    let _ = std::fs::remove_dir_all(&scratch);
}

async fn sample(meeting: &mut Meeting, line: &Line, dir: Dir) -> Sample {
    let viewer_site = if dir == Dir::Down { WARD } else { "hq" };
    let viewer = meeting.page(viewer_site).eval(STATS_JS).await.unwrap_or(Value::Null);
    let ward = if dir == Dir::Down { viewer.clone() } else { meeting.page(WARD).eval(STATS_JS).await.unwrap_or(Value::Null) };
    Sample { at: Instant::now(), viewer, ward, line: line.counters(dir) }
}

/// The sites whose media the scenario measures (in the viewer's stats), and the stage one.
fn measured(dir: Dir) -> (Vec<&'static str>, &'static str) {
    match dir {
        Dir::Down => (SITES.iter().map(|s| s.0).filter(|s| *s != WARD).collect(), "hq"),
        Dir::Up => (vec![WARD], WARD),
    }
}

/// Wire rate (kbit/s) of the impaired direction between two samples.
fn wire_kbps(a: &Sample, b: &Sample, dir: Dir) -> f64 {
    let (bytes, packets) = if dir == Dir::Down { ("rx", "rxp") } else { ("tx", "txp") };
    let d = |k: &str| num(&b.ward, &[k]) - num(&a.ward, &[k]);
    let secs = (b.at - a.at).as_secs_f64().max(0.001);
    (d(bytes) + 28.0 * d(packets)) * 8.0 / secs / 1000.0
}

fn decodes(a: &Sample, b: &Sample, sites: &[&str]) -> bool {
    sites.iter().all(|s| num(&b.viewer, &["sites", s, "f"]) > num(&a.viewer, &["sites", s, "f"]))
}

fn moved(at_restore: f64, now: f64) -> bool {
    now > at_restore || (now > 0.0 && now < at_restore)
}

/// Polls until the stage video is at least `width` wide and every measured video decodes, or
/// `timeout`; the time it took, or `None`.
async fn wait_full(meeting: &mut Meeting, line: &Line, dir: Dir, width: f64, timeout: Duration) -> Option<f64> {
    let (sites, stage) = measured(dir);
    let start = Instant::now();
    let mut last = sample(meeting, line, dir).await;
    while start.elapsed() < timeout {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let now = sample(meeting, line, dir).await;
        if num(&now.viewer, &["sites", stage, "w"]) >= width && decodes(&last, &now, &sites) {
            return Some(start.elapsed().as_secs_f64());
        }
        last = now;
    }
    None
}

fn secs_or(v: Option<f64>, bound: &str) -> String {
    v.map_or(format!("not within {bound}"), |s| format!("{s:.1} s"))
}

async fn scenario(meeting: &mut Meeting, line: &Line, s: Scenario, seconds: u64) -> (String, Value) {
    let (sites, stage) = measured(s.dir);
    // Settled before: the stage at its usual size and every video decoding (bounded).
    let (pre, ..) = settle(meeting, line, s.dir).await;
    let pre_sample = sample(meeting, line, s.dir).await;
    let width = num(&pre_sample.viewer, &["sites", stage, "w"]);
    // What the stage site's camera sends (a camera short of CPU sends smaller layers).
    let sender_layers = meeting.page(stage).eval(STATS_JS).await.map(|v| v["out"].clone()).unwrap_or_default();
    // The wire rate over the 2 s before the impairment (does a cap bind at all?).
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = sample(meeting, line, s.dir).await;
    let kbps_before = wire_kbps(&pre_sample, &before, s.dir);
    let duration = match s.kind {
        Kind::Cap(kbit) => {
            line.cap(s.dir, kbit);
            Duration::from_secs(seconds)
        }
        Kind::Loss(pct) => {
            line.loss(s.dir, pct);
            Duration::from_secs(seconds)
        }
        Kind::DelayLoss(ms, pct) => {
            line.delay(s.dir, ms);
            line.loss(s.dir, pct);
            Duration::from_secs(seconds)
        }
        Kind::Cut(secs) => {
            line.cut(s.dir);
            Duration::from_secs(secs)
        }
        Kind::None => Duration::from_secs(seconds),
    };
    let t0 = Instant::now();
    let mut samples = vec![before.clone()];
    while t0.elapsed() < duration {
        tokio::time::sleep(TICK.saturating_sub(samples.last().unwrap().at.elapsed())).await;
        samples.push(sample(meeting, line, s.dir).await);
    }
    let counters = line.counters(s.dir);
    let end = samples.last().unwrap().clone();
    let minutes = (end.at - before.at).as_secs_f64() / 60.0;
    // Freezes (worst video), concealment, decoding.
    let (worst, freeze) = sites
        .iter()
        .map(|x| (*x, num(&end.viewer, &["sites", x, "fz"]) - num(&before.viewer, &["sites", x, "fz"])))
        .fold(("", 0.0f64), |w, x| if x.1 > w.1 { x } else { w });
    let freeze_per_min = freeze / minutes.max(1e-9);
    let delta = |k: &str| sites.iter().map(|x| num(&end.viewer, &["sites", x, k]) - num(&before.viewer, &["sites", x, k])).sum::<f64>();
    let concealed = if delta("ts") > 0.0 { 100.0 * delta("cs") / delta("ts") } else { f64::NAN };
    let stalls = samples.windows(5).step_by(4).filter(|w| !decodes(&w[0], &w[4], &sites)).count();
    // Per site: its stalled slices, and the frames it decoded per second during the impairment.
    let by_site: serde_json::Map<String, Value> = sites
        .iter()
        .map(|x| {
            let stalled = samples.windows(5).step_by(4).filter(|w| !decodes(&w[0], &w[4], &[x])).count();
            let fps = (num(&end.viewer, &["sites", x, "f"]) - num(&before.viewer, &["sites", x, "f"])) / (minutes * 60.0).max(1e-9);
            // Its freezes, and how much of them fell in the impairment's first 10 s (the
            // transition) rather than after (the steady state).
            let fz = |v: &Sample| num(&v.viewer, &["sites", x, "fz"]);
            let tenth = samples.iter().find(|v| v.at.duration_since(before.at) >= Duration::from_secs(10)).unwrap_or(&end);
            let round = |s: f64| (s * 100.0).round() / 100.0;
            (
                x.to_string(),
                json!({"stalled_2s_slices": stalled, "fps": (fps * 10.0).round() / 10.0, "freeze_s": round(fz(&end) - fz(&before)), "freeze_first_10s": round(fz(tenth) - fz(&before))}),
            )
        })
        .collect();
    let kbps = wire_kbps(&before, &end, s.dir);
    let mut out = json!({
        "scenario": s.name, "direction": if s.dir == Dir::Down { "down" } else { "up" }, "impairment": format!("{:?}", s.kind),
        "seconds": (end.at - before.at).as_secs_f64(), "settled_before": pre,
        "stage_site": stage, "stage_width_before": width, "wire_kbps_before": kbps_before, "stage_sender_layers_before": sender_layers, "wire_kbps": kbps,
        "worst_freeze_site": worst, "freeze_s_per_min": freeze_per_min, "audio_concealed_percent": concealed,
        "video_stalled_2s_slices": stalls, "video_by_site": by_site, "video_retransmissions_received": delta("rtx"),
        "line": {"queue_sent_packets": counters.shaped_packets, "queue_sent_bytes": counters.shaped_bytes, "queue_drops": counters.queue_drops,
                 "loss_drops": counters.lost, "cut_drops": counters.cut},
    });
    out["replayed_wards"] = json!(meeting.replays.len());
    let decoding = if stalls == 0 { "yes".to_string() } else { format!("no ({stalls} stalled 2 s slices)") };
    let conceal_goal = match s.kind {
        Kind::Cap(_) => 1.0,
        _ => 3.0,
    };
    let common = format!(
        "freezes {freeze_per_min:.1} s/min worst {worst} (goal <= 2) | concealed {concealed:.2} % (goal <= {conceal_goal}) | decoding {decoding} | wire {kbps_before:.0} -> {kbps:.0} kbit/s"
    );
    let row = match s.kind {
        Kind::Cap(kbit) => {
            let adapt = samples.windows(7).find(|w| {
                (0..3).all(|k| wire_kbps(&w[2 * k], &w[2 * k + 2], s.dir) <= 0.95 * kbit as f64 && decodes(&w[2 * k], &w[2 * k + 2], &sites))
                    && w[6].line.queue_drops == w[0].line.queue_drops
            });
            let adapt = adapt.map(|w| (w[0].at - t0).as_secs_f64().max(0.0));
            // The same without (c): when the sending fits the line, whether or not every
            // video decodes meanwhile (tells a slow adaptation from one that stalls a tile).
            let fits = samples
                .windows(7)
                .find(|w| (0..3).all(|k| wire_kbps(&w[2 * k], &w[2 * k + 2], s.dir) <= 0.95 * kbit as f64) && w[6].line.queue_drops == w[0].line.queue_drops)
                .map(|w| (w[0].at - t0).as_secs_f64().max(0.0));
            out["fits_s"] = json!(fits);
            line.uncap(s.dir);
            let full = wait_full(meeting, line, s.dir, width, Duration::from_secs(30)).await;
            out["adapt_s"] = json!(adapt);
            out["full_layers_s"] = json!(full);
            out["cap_kbps"] = json!(kbit);
            // Bound: the sending was above the cap before, or the cap's queue had to drop.
            let bound = kbps_before > 0.95 * kbit as f64 || counters.queue_drops > 0;
            let adapt_text = match adapt {
                _ if !bound => format!("n/a (the cap did not bind: {kbps_before:.0} kbit/s before, no queue drops)"),
                Some(a) => format!("{a:.1} s"),
                None => format!("never in {seconds} s (rate fits the line after {})", secs_or(fits, &format!("{seconds} s"))),
            };
            out["cap_bound"] = json!(bound);
            format!("{:<17} adapt {} (goal <= 2 s) | {common} | full layers {} after lift (goal <= 10 s)", s.name, adapt_text, secs_or(full, "30 s"))
        }
        Kind::Cut(_) => {
            let at_restore = sample(meeting, line, s.dir).await;
            line.restore();
            let restored = Instant::now();
            let (mut audio, mut video) = (None, None);
            let mut waiting: Vec<&str> = sites.clone();
            while restored.elapsed() < Duration::from_secs(30) && (audio.is_none() || !waiting.is_empty()) {
                let now = sample(meeting, line, s.dir).await;
                let t = restored.elapsed().as_secs_f64();
                if audio.is_none() && moved(num(&at_restore.viewer, &["sites", stage, "ap"]), num(&now.viewer, &["sites", stage, "ap"])) {
                    audio = Some(t);
                }
                waiting.retain(|x| !moved(num(&at_restore.viewer, &["sites", x, "f"]), num(&now.viewer, &["sites", x, "f"])));
                if waiting.is_empty() && video.is_none() {
                    video = Some(t);
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            out["audio_back_s"] = json!(audio);
            out["video_back_s"] = json!(video);
            out["cut_udp_packets_dropped"] = json!(at_restore.line.cut);
            format!(
                "{:<17} audio back {} (goal <= 2 s) | video back {} (goal <= 3 s) | cut dropped {} packets",
                s.name,
                secs_or(audio, "30 s"),
                secs_or(video, "30 s"),
                at_restore.line.cut
            )
        }
        _ => format!("{:<17} {common} | loss dropped {} packets", s.name, counters.lost),
    };
    // A scenario that starts from a meeting not back to normal measures the previous one too.
    let row = if pre { row } else { format!("{row} | NOT SETTLED before (stage {width:.0} px wide): read with care") };
    (row, out)
}

/// Waits (at most 45 s) until the stage video keeps one width for 3 s, as wide as it has ever
/// been seen in this run (an earlier scenario may leave the bridge sending small layers for a
/// while), and every measured video decodes; whether it did, and the width.
async fn settle(meeting: &mut Meeting, line: &Line, dir: Dir) -> (bool, f64) {
    let (sites, stage) = measured(dir);
    let start = Instant::now();
    let mut history: Vec<Sample> = Vec::new();
    while start.elapsed() < Duration::from_secs(45) {
        let now = sample(meeting, line, dir).await;
        let full = &mut meeting.full[dir as usize];
        *full = full.max(num(&now.viewer, &["sites", stage, "w"]));
        history.push(now);
        if history.len() >= 7 {
            let w = &history[history.len() - 7..];
            let width = num(&w[0].viewer, &["sites", stage, "w"]);
            if width >= meeting.full[dir as usize] && w.iter().all(|x| num(&x.viewer, &["sites", stage, "w"]) == width) && decodes(&w[0], &w[6], &sites) {
                return (true, width);
            }
        }
        tokio::time::sleep(TICK).await;
    }
    (false, history.last().map_or(0.0, |x| num(&x.viewer, &["sites", stage, "w"])))
}

/// `--selftest`: the line alone, no browser. Synthetic UDP between a socket on the ward's side
/// and one on the bridge's media port checks that each impairment does what it says: a cap
/// holds a 3 Mbit/s flood to the cap, loss drops about its share, the relay adds its delay, a
/// cut passes nothing and a restore passes again. Prints one line per check and a JSON line.
async fn selftest() {
    let port = free_udp_port();
    let line = Line::new(port).await;
    let server = std::net::UdpSocket::bind(("0.0.0.0", port)).unwrap();
    let ward = line.ward_udp();
    ward.connect((BRIDGE_IP, port)).unwrap();
    for s in [&server, &ward] {
        s.set_read_timeout(Some(Duration::from_millis(600))).unwrap();
    }
    // The server learns the ward's address (as the relay presents it) from a first packet.
    ward.send(b"hello").unwrap();
    let mut buf = [0u8; 2048];
    let (_, peer) = server.recv_from(&mut buf).expect("the ward's first packet reaches the bridge's port");
    let mut results = serde_json::Map::new();
    let mut check = |name: &str, ok: bool, value: Value, what: String| {
        println!("{} {name:<12} {what}", if ok { "ok  " } else { "FAIL" });
        results.insert(name.into(), json!({"ok": ok, "value": value}));
    };
    let (server, ward) = (std::sync::Arc::new(server), std::sync::Arc::new(ward));

    // Cap: a 3 Mbit/s flood of 1200-byte packets (on the wire) for 4 s; the rate that arrives.
    for (dir, kbit) in [(Dir::Down, 1000u32), (Dir::Up, 500)] {
        line.cap(dir, kbit);
        let before = line.counters(dir);
        let (got, _, secs) = flood(&server, &ward, peer, dir, 3000, 4, 1172).await;
        let kbps = got as f64 * 1200.0 * 8.0 / secs / 1000.0;
        let c = line.counters(dir);
        check(
            &format!("cap-{}", if dir == Dir::Down { "down" } else { "up" }),
            kbps <= kbit as f64 * 1.05 && kbps >= kbit as f64 * 0.8 && c.queue_drops > before.queue_drops,
            json!({"cap_kbps": kbit, "offered_kbps": 3000, "received_kbps": kbps, "queue_drops": c.queue_drops, "queue_sent_packets": c.shaped_packets}),
            format!("cap {kbit} kbit/s, 3000 offered: {kbps:.0} kbit/s arrived; queue sent {} packets, dropped {}", c.shaped_packets, c.queue_drops),
        );
        line.uncap(dir);
    }
    // Loss: about 1900 small packets each way at 5 %.
    for dir in [Dir::Down, Dir::Up] {
        line.loss(dir, 5);
        let (got, sent, _) = flood(&server, &ward, peer, dir, 1000, 3, 172).await;
        let lost = 100.0 * (1.0 - got as f64 / sent as f64);
        let c = line.counters(dir);
        check(
            &format!("loss-{}", if dir == Dir::Down { "down" } else { "up" }),
            (3.0..=7.5).contains(&lost) && c.lost > 0,
            json!({"set_percent": 5, "measured_percent": lost, "rule_drops": c.lost}),
            format!("loss 5 %: {lost:.1} % of {sent} packets lost; the rule counted {} drops", c.lost),
        );
        line.loss(dir, 0);
    }
    // Delay: round trips of small packets, without and with 200 ms on each direction in turn.
    let base = rtt(&server, &ward, peer).await;
    for dir in [Dir::Down, Dir::Up] {
        line.delay(dir, 200);
        let with = rtt(&server, &ward, peer).await;
        line.delay(dir, 0);
        check(
            &format!("delay-{}", if dir == Dir::Down { "down" } else { "up" }),
            (with - base - 200.0).abs() < 30.0,
            json!({"set_ms": 200, "rtt_ms_without": base, "rtt_ms_with": with}),
            format!("delay 200 ms: median round trip {base:.1} -> {with:.1} ms"),
        );
    }
    // Cut and restore.
    for dir in [Dir::Down, Dir::Up] {
        line.cut(dir);
        let (during, _, _) = flood(&server, &ward, peer, dir, 200, 2, 172).await;
        let cut = line.counters(dir).cut;
        line.restore();
        let (after, _, _) = flood(&server, &ward, peer, dir, 200, 2, 172).await;
        check(
            &format!("cut-{}", if dir == Dir::Down { "down" } else { "up" }),
            during == 0 && after > 0 && cut > 0,
            json!({"received_during_cut": during, "received_after_restore": after, "rule_drops": cut}),
            format!("cut: {during} packets arrived during the cut (rule dropped {cut}), {after} after the restore"),
        );
    }
    line.clear();
    println!("JSON {}", Value::Object(results));
}

/// Sends `kbit` kbit/s of `payload`-byte UDP packets for `secs` one way (down: the bridge's
/// socket to `peer`, up: the ward's) and counts what arrives: (packets, seconds from the
/// first to the last arrival, at least half the sending time) and what was sent.
async fn flood(
    server: &std::sync::Arc<std::net::UdpSocket>,
    ward: &std::sync::Arc<std::net::UdpSocket>,
    peer: std::net::SocketAddr,
    dir: Dir,
    kbit: u64,
    secs: u64,
    payload: usize,
) -> (u64, u64, f64) {
    let (server, ward) = (server.clone(), ward.clone());
    tokio::task::spawn_blocking(move || {
        let (tx, rx): (std::sync::Arc<std::net::UdpSocket>, _) = if dir == Dir::Down { (server, ward) } else { (ward, server) };
        let receiver = std::thread::spawn(move || {
            let mut buf = [0u8; 2048];
            let (mut n, mut first, mut last) = (0u64, None, Instant::now());
            while let Ok(len) = rx.recv(&mut buf) {
                if len == payload {
                    n += 1;
                    first.get_or_insert_with(Instant::now);
                    last = Instant::now();
                }
            }
            (n, first.map_or(0.0, |f| (last - f).as_secs_f64()))
        });
        let per_10ms = (kbit * 1000 / 8 / 100) as f64 / (payload + 28) as f64;
        let start = Instant::now();
        let mut sent = 0.0;
        let data = vec![7u8; payload];
        while start.elapsed() < Duration::from_secs(secs) {
            let due = per_10ms * (start.elapsed().as_millis() as f64 / 10.0 + 1.0);
            while sent < due {
                let _ = if dir == Dir::Down { tx.send_to(&data, peer) } else { tx.send(&data) };
                sent += 1.0;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let (n, span) = receiver.join().unwrap();
        (n, sent as u64, span.max(secs as f64 * 0.5))
    })
    .await
    .unwrap()
}

/// Median round trip (ms) of 15 small packets, ward → bridge → ward.
async fn rtt(server: &std::sync::Arc<std::net::UdpSocket>, ward: &std::sync::Arc<std::net::UdpSocket>, peer: std::net::SocketAddr) -> f64 {
    let (server, ward) = (server.clone(), ward.clone());
    tokio::task::spawn_blocking(move || {
        let mut rtts = Vec::new();
        let mut buf = [0u8; 2048];
        for _ in 0..15 {
            let t = Instant::now();
            ward.send(b"ping").unwrap();
            if server.recv_from(&mut buf).is_ok() {
                let _ = server.send_to(b"pong", peer);
                if ward.recv(&mut buf).is_ok() {
                    rtts.push(t.elapsed().as_secs_f64() * 1000.0);
                }
            }
        }
        rtts.sort_by(f64::total_cmp);
        rtts.get(rtts.len() / 2).copied().unwrap_or(f64::NAN)
    })
    .await
    .unwrap()
}
