//! Benchmark: join → first decoded frame, over repeated joins of a ward, both ways: HQ's video
//! at the ward (from the ward's signalling socket opening to its first decoded frame,
//! `requestVideoFrameCallback`, and from the start of its page load) and the ward's video at
//! HQ (from the ward's socket opening to the first frame HQ's page shows of it, wall clock of
//! the one machine). HQ is Chromium; the ward is Chromium, or Firefox ESR with
//! `BENCH_WARD=firefox`. The ward's page is reloaded `BENCH_JOINS` times (default 20).
//!
//!   cargo bench --bench join_chromium                      # Chromium ward
//!   BENCH_WARD=firefox cargo bench --bench join_chromium   # Firefox ESR ward

#[path = "../common/mod.rs"]
mod common;

use common::browser::{fake_media, Browser};
use common::{scratch_dir, Deadline, TestBridge};
use serde_json::json;
use std::time::Duration;

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn summary(mut v: Vec<f64>) -> serde_json::Value {
    v.sort_by(f64::total_cmp);
    json!({"p50": percentile(&v, 0.5), "p95": percentile(&v, 0.95), "max": v.last(), "all": v})
}

/// Keeps, in HQ's page, the wall-clock time of every frame its tile of `site` presents.
fn watch_frames(site: &str) -> String {
    format!(
        r#"(() => {{ const v = document.querySelector('figure[data-site="{site}"] video'); if (!v) return false;
            window.__frames = []; const cb = () => {{ window.__frames.push(Date.now()); if (window.__frames.length > 4000) window.__frames.splice(0, 2000); v.requestVideoFrameCallback(cb); }};
            v.requestVideoFrameCallback(cb); return true; }})()"#
    )
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let joins: usize = std::env::var("BENCH_JOINS").ok().and_then(|v| v.parse().ok()).unwrap_or(20);
    let firefox = std::env::var("BENCH_WARD").is_ok_and(|w| w == "firefox");
    let bridge = TestBridge::start_default();
    let scratch = scratch_dir("join");
    let mut hq = Browser::launch("hq", &bridge.join_url("hq"), &fake_media(&scratch, "hq", (220, 30, 30), 440), &scratch).await;
    let mut ward = if firefox {
        Browser::launch_firefox("hang-gai", &bridge.join_url("hang-gai"), &scratch).await
    } else {
        Browser::launch("hang-gai", &bridge.join_url("hang-gai"), &fake_media(&scratch, "hang-gai", (30, 200, 30), 660), &scratch).await
    };
    let browser = ward.eval("navigator.userAgent").await.unwrap_or_default();
    let (mut from_socket, mut from_load, mut at_hq) = (Vec::new(), Vec::new(), Vec::new());
    for j in 0..=joins {
        if j > 0 {
            ward.reload().await;
        }
        let deadline = Deadline::after(Duration::from_secs(60), format!("join {j}: HQ's first frame at the ward"));
        let (socket_ms, load_ms, socket_wall) = loop {
            // The first-frame callback's time since the page's socket opened, since it started
            // loading, and the socket's opening in wall-clock time.
            let v = ward
                .eval("window.diemcau && window.diemcau.firstFrameMs.hq !== undefined ? [window.diemcau.firstFrameMs.hq, window.diemcau.client.connectedAt + window.diemcau.firstFrameMs.hq, performance.timeOrigin + window.diemcau.client.connectedAt] : null")
                .await;
            if let Some(v) = v.as_ref().and_then(|v| v.as_array()) {
                let n = |i: usize| v[i].as_f64().unwrap_or(f64::NAN);
                break (n(0), n(1), n(2));
            }
            deadline.tick().await;
        };
        if j == 0 {
            // The first load includes the browsers' own start-up; it is not a join like the others.
            let deadline = Deadline::after(Duration::from_secs(60), "HQ's tile of the ward");
            while hq.eval(&watch_frames("hang-gai")).await != Some(json!(true)) {
                deadline.tick().await;
            }
            continue;
        }
        from_socket.push(socket_ms);
        from_load.push(load_ms);
        let deadline = Deadline::after(Duration::from_secs(60), format!("join {j}: the ward's first frame at HQ"));
        let first = loop {
            let v = hq.eval(&format!("(window.__frames || []).find(t => t > {socket_wall}) ?? null")).await;
            if let Some(t) = v.as_ref().and_then(|v| v.as_f64()) {
                break t;
            }
            deadline.tick().await;
        };
        at_hq.push(first - socket_wall);
    }
    let summary = json!({
        "ward_browser": browser,
        "joins": from_socket.len(),
        "hq_at_ward": {"socket_open_to_first_frame_ms": summary(from_socket), "page_load_to_first_frame_ms": summary(from_load)},
        "ward_at_hq": {"ward_socket_open_to_first_frame_ms": summary(at_hq)},
    });
    println!("{}", serde_json::to_string_pretty(&summary).unwrap());
    let _ = std::fs::remove_dir_all(&scratch);
}
