//! Benchmark: how fast a meeting recovers from a network cut. Real headless Chromium sites
//! (HQ and Cụm Hàng Gai) and a simulated site in the speak queue; Hàng Gai holds the floor.
//! Ten times: all UDP on the loopback of a private network namespace is cut for 5 s with
//! `tests/lab/impair.sh`, then restored; the time from the restore until HQ's browser
//! receives Hàng Gai's audio again is measured, and the floor and queue are checked.
//!
//!   LAB_EXTRA_PKGS=nftables bash tests/lab/install-chromium.sh    # once, as root
//!   cargo bench --bench udp_cut                                       # BENCH_CUTS=10 BENCH_CUT_SECONDS=5
//!
//! Why all UDP rather than one site's port: webrtc-rs binds a new socket on an ICE restart,
//! so a rule on the old port would stop cutting the moment the page restarts ICE. Cutting
//! everything makes both HQ's and Hàng Gai's links recover — the harder case.

#[path = "../common/mod.rs"]
mod common;

use common::browser::{fake_media, Browser};
use common::sim::Sim;
use common::{scratch_dir, Deadline, TestBridge};
use serde_json::json;
use std::process::Command;
use std::time::{Duration, Instant};

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn impair(args: &[&str]) {
    let status = Command::new("bash").arg(common::browser::lab_dir().join("impair.sh")).args(args).status().expect("impair.sh");
    assert!(status.success(), "impair.sh {args:?} failed");
}

fn main() {
    if std::env::var("DIEMCAU_NETNS").is_err() {
        // Re-run this benchmark inside a fresh network namespace with only loopback.
        assert!(Command::new("nft").arg("--version").output().is_ok(), "needs nftables: LAB_EXTRA_PKGS=nftables bash tests/lab/install-chromium.sh");
        let ns = format!("dcbench{}", std::process::id());
        assert!(Command::new("ip").args(["netns", "add", &ns]).status().unwrap().success(), "ip netns add (root needed)");
        Command::new("ip").args(["-n", &ns, "link", "set", "lo", "up"]).status().unwrap();
        let exe = std::env::current_exe().unwrap();
        let status = Command::new("ip").args(["netns", "exec", &ns]).arg(exe).env("DIEMCAU_NETNS", &ns).status().unwrap();
        Command::new("ip").args(["netns", "del", &ns]).status().unwrap();
        std::process::exit(status.code().unwrap_or(1));
    }
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap().block_on(run());
}

async fn hears_hang_gai(hq: &mut Browser) -> f64 {
    hq.eval("window.diemcau.stats().then(s => s['hang-gai'] ? s['hang-gai'].audioPacketsReceived : 0)").await.and_then(|v| v.as_f64()).unwrap_or(0.0)
}

async fn run() {
    let cuts = env_u64("BENCH_CUTS", 10);
    let cut_s = env_u64("BENCH_CUT_SECONDS", 5);
    let bridge = TestBridge::start_default();
    let scratch = scratch_dir("cut");
    let mut hq = Browser::launch("hq", &bridge.join_url("hq"), &fake_media(&scratch, "hq", (220, 30, 30), 440), &scratch).await;
    let mut ward = Browser::launch("hang-gai", &bridge.join_url("hang-gai"), &fake_media(&scratch, "hang-gai", (30, 200, 30), 660), &scratch).await;
    let asker = Sim::join(&bridge.cert_pem(), bridge.port, "cua-nam", bridge.key("cua-nam")).await;
    asker.send(json!({"type": "request_floor", "topic": "Kiến nghị"}));
    let deadline = Deadline::after(Duration::from_secs(60), "HQ to hear Hàng Gai");
    while hears_hang_gai(&mut hq).await <= 0.0 {
        deadline.tick().await;
    }
    hq.eval("document.querySelector('#sites tr[data-site=\"hang-gai\"] button.give').click()").await;

    let mut samples = Vec::new();
    for i in 0..cuts {
        // Flowing before each cut.
        let before = hears_hang_gai(&mut hq).await;
        let deadline = Deadline::after(Duration::from_secs(30), "audio flowing before the cut");
        while hears_hang_gai(&mut hq).await < before + 25.0 {
            deadline.tick().await;
        }
        impair(&["cut"]);
        tokio::time::sleep(Duration::from_secs(cut_s)).await; // the cut itself, not a wait for a condition
        let at_restore = hears_hang_gai(&mut hq).await;
        impair(&["restore"]);
        let restored = Instant::now();
        // Back = HQ's counter moves on from where it stood at the restore (a new connection
        // after a rejoin starts from zero, which counts as moving on too).
        loop {
            let now = hears_hang_gai(&mut hq).await;
            if now > at_restore || (now > 0.0 && now < at_restore) {
                break;
            }
            assert!(restored.elapsed() < Duration::from_secs(40), "audio not back 40 s after the restore");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let took = restored.elapsed().as_secs_f64();
        let state = hq.eval("window.diemcau.state()").await.unwrap_or_default();
        let floor = state["floor"]["holders"][0]["site"].clone();
        let queue = state["floor"]["queue"][0]["site"].clone();
        let reconnected = ward.eval("window.diemcau.client.attempt").await;
        println!("cut {}: audio back {took:.2} s after restore; floor {floor}, queue {queue}; ward attempt {reconnected:?}", i + 1);
        assert_eq!(floor, json!("hang-gai"), "Hàng Gai kept the floor");
        assert_eq!(queue, json!("cua-nam"), "Cửa Nam kept its queue place");
        samples.push(took);
    }
    samples.sort_by(|a, b| a.total_cmp(b));
    let pct = |p: f64| samples[((samples.len() as f64 - 1.0) * p).round() as usize];
    println!(
        "{}",
        serde_json::to_string_pretty(&json!({
            "cuts": cuts, "cut_seconds": cut_s, "restore_to_audio_s": samples,
            "p50_s": pct(0.5), "p95_s": pct(0.95), "max_s": samples.last(),
        }))
        .unwrap()
    );
    drop(asker);
    let _ = std::fs::remove_dir_all(&scratch);
}
