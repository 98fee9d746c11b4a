//! Media addressing: the configured public IP (1:1 NAT) is what the bridge advertises in its
//! ICE candidates, and media sockets bind to the listen IP.

mod common;

use common::sim::Sim;
use common::{scratch_dir, wait_until, TestBridge};
use std::time::Duration;

fn candidates(sim: &Sim) -> Vec<String> {
    sim.messages
        .lock()
        .unwrap()
        .iter()
        .filter(|m| m["type"] == "candidate")
        .filter_map(|m| m["candidate"]["candidate"].as_str().map(str::to_string))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configured_public_ip_is_advertised_in_server_candidates() {
    let data = scratch_dir("nat");
    let config = data.join("bridge.toml");
    let default = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config/default.toml")).unwrap();
    std::fs::write(&config, default.replace("public_ip = \"\"", "public_ip = \"203.0.113.7\"")).unwrap();
    let bridge = TestBridge::start_with(config, data);
    let sim = Sim::join(&bridge.cert_pem(), bridge.port, "hang-gai", bridge.key("hang-gai")).await;
    let found = wait_until(Duration::from_secs(15), "a server candidate", || async {
        let c = candidates(&sim);
        (!c.is_empty()).then_some(c)
    })
    .await;
    assert!(found.iter().all(|c| c.contains(" 203.0.113.7 ") && c.contains("typ host")), "{found:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_nat_settings_candidates_carry_the_listen_ip() {
    let bridge = TestBridge::start_default();
    let sim = Sim::join(&bridge.cert_pem(), bridge.port, "hq", bridge.key("hq")).await;
    let found = wait_until(Duration::from_secs(15), "a server candidate", || async {
        let c = candidates(&sim);
        (!c.is_empty()).then_some(c)
    })
    .await;
    assert!(found.iter().all(|c| c.contains(" 127.0.0.1 ")), "{found:?}");
    wait_until(Duration::from_secs(15), "media to connect on loopback", || async { sim.is_connected().then_some(()) }).await;
}
