//! Benchmark: a 6-site meeting (HQ + five wards, everyone sees everyone) on the real binary,
//! with simulated sites on webrtc-rs sending Opus-rate audio (50 packets/s) and VP8-like
//! video. Reports the bridge's CPU and memory and the packets it forwards.
//!
//!   cargo bench --bench six_sites                 # 20 s at 100 video packets/s per site
//!   BENCH_SECONDS=60 BENCH_VIDEO_PPS=150 cargo bench --bench six_sites
//!
//! The load generator runs on the same host and is not subtracted.

#[path = "../common/mod.rs"]
mod common;

use common::sim::Sim;
use common::{proc_usage, TestBridge};
use std::time::{Duration, Instant};

const SITES: [&str; 6] = ["hq", "cua-nam", "hang-bai", "hang-gai", "trang-tien", "hang-dao"];

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn threads(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task")).map(|d| d.count()).unwrap_or(0)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let seconds = env_u64("BENCH_SECONDS", 20);
    let video_pps = env_u64("BENCH_VIDEO_PPS", 100) as u32;
    // Measure a normal start: keys were provisioned by an earlier start on the same data dir
    // (first-start key hashing would otherwise inflate the idle memory figure).
    let first = TestBridge::start_default();
    let data = first.data.clone();
    drop(first);
    let bridge = TestBridge::start_with(std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("config/default.toml"), data);
    let pid = bridge.pid();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_idle = proc_usage(pid).1;
    let mut sims = Vec::new();
    for site in SITES {
        sims.push(Sim::join_at_rate(&bridge.cert_pem(), bridge.port, site, bridge.key(site), video_pps).await);
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while !sims.iter().all(|s| SITES.iter().filter(|o| **o != s.site).all(|o| s.received(o, "video") > 0)) {
        assert!(Instant::now() < deadline, "media did not start flowing within 30 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let h0 = bridge.get_json("/api/health").await;
    let (cpu0, _) = proc_usage(pid);
    let t0 = Instant::now();
    let mut rss_max = 0;
    while t0.elapsed() < Duration::from_secs(seconds) {
        tokio::time::sleep(Duration::from_millis(500)).await;
        rss_max = rss_max.max(proc_usage(pid).1);
    }
    let elapsed = t0.elapsed().as_secs_f64();
    let (cpu1, rss_end) = proc_usage(pid);
    let h1 = bridge.get_json("/api/health").await;
    let delta = |k: &str| h1["media"][k].as_u64().unwrap_or(0) - h0["media"][k].as_u64().unwrap_or(0);
    let out_pps = delta("forwarded_packets") as f64 / elapsed;
    let cpu = (cpu1 - cpu0) / elapsed;
    let summary = serde_json::json!({
        "sites": SITES.len(),
        "seconds": elapsed,
        "offered_per_site_pps": {"audio": 50, "video": video_pps},
        "received_pps": delta("received_packets") as f64 / elapsed,
        "forwarded_pps": out_pps,
        "dropped_queue_full": delta("dropped_queue_full"),
        "server_cpu_percent_of_one_core": cpu * 100.0,
        "forwarded_packets_per_cpu_second": if cpu > 0.0 { out_pps / cpu } else { 0.0 },
        "server_rss_mib_idle": rss_idle as f64 / 1024.0,
        "server_rss_mib_max": rss_max as f64 / 1024.0,
        "server_threads": threads(pid),
        "server_rss_mib_end": rss_end as f64 / 1024.0,
        "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
    });
    println!("{}", serde_json::to_string_pretty(&summary).unwrap());
}
