//! Benchmark: join → first decoded frame in headless Chromium, over repeated joins. HQ's page
//! publishes its fake camera; a ward's page is reloaded `BENCH_JOINS` times (default 20) and
//! each time reports, for HQ's video, the time from its signalling socket opening to the first
//! decoded frame (`requestVideoFrameCallback`), and from the start of the page load.
//!
//!   cargo bench --bench join_chromium            # BENCH_JOINS=20

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

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let joins: usize = std::env::var("BENCH_JOINS").ok().and_then(|v| v.parse().ok()).unwrap_or(20);
    let bridge = TestBridge::start_default();
    let scratch = scratch_dir("join");
    let _hq = Browser::launch("hq", &bridge.join_url("hq"), &fake_media(&scratch, "hq", (220, 30, 30), 440), &scratch).await;
    let mut ward = Browser::launch("hang-gai", &bridge.join_url("hang-gai"), &fake_media(&scratch, "hang-gai", (30, 200, 30), 660), &scratch).await;
    let (mut from_socket, mut from_load) = (Vec::new(), Vec::new());
    for j in 0..=joins {
        if j > 0 {
            ward.command("Page.reload", json!({"ignoreCache": true})).await;
        }
        let deadline = Deadline::after(Duration::from_secs(60), format!("join {j}: HQ's first frame"));
        let (socket_ms, load_ms) = loop {
            // The first-frame callback's time since the page started loading, and since its socket opened.
            let v = ward
                .eval("window.diemcau && window.diemcau.firstFrameMs.hq !== undefined ? [window.diemcau.firstFrameMs.hq, window.diemcau.client.connectedAt + window.diemcau.firstFrameMs.hq] : null")
                .await;
            if let Some(pair) = v.as_ref().and_then(|v| v.as_array()) {
                break (pair[0].as_f64().unwrap_or(f64::NAN), pair[1].as_f64().unwrap_or(f64::NAN));
            }
            deadline.tick().await;
        };
        // The first load includes Chromium's own start-up; it is not a join like the others.
        if j > 0 {
            from_socket.push(socket_ms);
            from_load.push(load_ms);
        }
    }
    from_socket.sort_by(f64::total_cmp);
    from_load.sort_by(f64::total_cmp);
    let summary = json!({
        "joins": from_socket.len(),
        "socket_open_to_first_frame_ms": {"p50": percentile(&from_socket, 0.5), "p95": percentile(&from_socket, 0.95), "max": from_socket.last(), "all": from_socket},
        "page_load_to_first_frame_ms": {"p50": percentile(&from_load, 0.5), "p95": percentile(&from_load, 0.95), "max": from_load.last()},
    });
    println!("{}", serde_json::to_string_pretty(&summary).unwrap());
    let _ = std::fs::remove_dir_all(&scratch);
}
