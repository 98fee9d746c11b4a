//! The control path at a city's scale: N pages joined over the real signalling (TLS
//! WebSockets, no media), the chair mutes and unmutes one ward K times, one change at a time.
//! Reports the bridge's CPU per change and how long until every page has the new state.
//!
//!   cargo bench --bench control -- --sites 130 --changes 50
//!
//! Every change sends the whole conference state to every page; the clients (this process,
//! same host) parse each copy. Nothing is subtracted.

#[path = "../common/mod.rs"]
mod common;
mod meeting;

use common::ws::Client;
use common::{proc_usage, TestBridge};
use futures::{SinkExt, StreamExt};
use meeting::{key, site_id};
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

/// One change must reach every page within this, or the run fails.
const CHANGE_TIMEOUT: Duration = Duration::from_secs(20);

fn arg(name: &str, default: usize) -> usize {
    let argv: Vec<String> = std::env::args().collect();
    argv.iter().position(|a| a == name).and_then(|i| argv.get(i + 1)).map(|v| v.parse().expect(name)).unwrap_or(default)
}

/// Whether the state says `site` is muted by the chair.
fn hard_muted(state: &Value, site: &str) -> Option<bool> {
    state["sites"].as_array()?.iter().find(|s| s["id"] == site)?["hard_muted"].as_bool()
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    let (sites, changes) = (arg("--sites", 130).clamp(3, 500), arg("--changes", 50).clamp(1, 1000));
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap().block_on(run(sites, changes));
}

async fn run(sites: usize, changes: usize) {
    let data = common::scratch_dir("control");
    let path = data.join("control.toml");
    std::fs::write(&path, meeting::config(sites, 2, 2)).unwrap();
    let bridge = TestBridge::start_with(path, data);
    let target = site_id(1);

    // Every page reports (its index, what it last saw for the target, the size of that state).
    let (seen_tx, mut seen) = mpsc::unbounded_channel::<(usize, bool, usize)>();
    let mut chair = None;
    for batch in (0..sites).collect::<Vec<_>>().chunks(10) {
        let joins = batch.iter().map(|&i| {
            let cert = bridge.cert_pem();
            async move {
                let mut c = Client::connect(&cert, bridge.port).await;
                let joined = c.join(&site_id(i), &key(i)).await;
                assert_eq!(joined["type"], "joined", "{}: {joined}", site_id(i));
                (i, c)
            }
        });
        for (i, c) in futures::future::join_all(joins).await {
            let (tx, mut rx) = c.into_socket().split();
            if i == 0 {
                chair = Some(tx);
            }
            let (seen_tx, target) = (seen_tx.clone(), target.clone());
            tokio::spawn(async move {
                while let Some(Ok(msg)) = rx.next().await {
                    let Message::Text(t) = msg else { continue };
                    let Ok(v) = serde_json::from_str::<Value>(t.as_str()) else { continue };
                    if v["type"] == "state" {
                        if let Some(m) = hard_muted(&v, &target) {
                            let _ = seen_tx.send((i, m, t.len()));
                        }
                    }
                }
            });
        }
    }
    let mut chair = chair.expect("HQ joined");
    tokio::time::sleep(Duration::from_secs(1)).await; // the join storm's states drain
    while seen.try_recv().is_ok() {}

    let pid = bridge.pid();
    let cpu0 = proc_usage(pid).0;
    let (mut last_page_ms, mut median_page_ms, mut state_bytes) = (Vec::new(), Vec::new(), 0);
    for k in 0..changes {
        let muted = k % 2 == 0;
        let t0 = Instant::now();
        let cmd = json!({"type": "mute_site", "site": target, "muted": muted}).to_string();
        chair.send(Message::Text(cmd.into())).await.expect("chair socket");
        let mut arrived = vec![None::<f64>; sites];
        while arrived.iter().any(Option::is_none) {
            let left = CHANGE_TIMEOUT.checked_sub(t0.elapsed()).unwrap_or_default();
            let (i, m, bytes) = tokio::time::timeout(left, seen.recv())
                .await
                .unwrap_or_else(|_| panic!("change {k}: {} of {sites} pages had it after {CHANGE_TIMEOUT:?}", arrived.iter().flatten().count()))
                .expect("pages gone");
            if m == muted && arrived[i].is_none() {
                arrived[i] = Some(t0.elapsed().as_secs_f64() * 1000.0);
                state_bytes = bytes;
            }
        }
        let mut times: Vec<f64> = arrived.into_iter().flatten().collect();
        times.sort_by(f64::total_cmp);
        last_page_ms.push(*times.last().unwrap());
        median_page_ms.push(percentile(&times, 0.5));
    }
    let cpu = proc_usage(pid).0 - cpu0;
    last_page_ms.sort_by(f64::total_cmp);
    median_page_ms.sort_by(f64::total_cmp);
    let summary = json!({
        "sites": sites,
        "changes": changes,
        "state_bytes": state_bytes,
        "bridge_cpu_ms_per_change": cpu * 1000.0 / changes as f64,
        "every_page_ms_p50": percentile(&last_page_ms, 0.5),
        "every_page_ms_p95": percentile(&last_page_ms, 0.95),
        "half_the_pages_ms_p50": percentile(&median_page_ms, 0.5),
        "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
    });
    println!("{}", serde_json::to_string_pretty(&summary).unwrap());
}
