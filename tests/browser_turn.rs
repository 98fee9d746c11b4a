//! A site forced to relay (`iceTransportPolicy: "relay"`, the page's `?relay=1`) joins through
//! a real coturn (Debian's `turnserver`, started here on loopback) with the time-limited
//! credentials the bridge hands out in `joined`; its media is decoded both ways, its page and
//! the bridge both report the relayed path.

mod common;

use common::browser::{fake_media, Browser};
use common::{scratch_dir, TestBridge};
use serde_json::json;
use std::process::{Command, Stdio};
use std::time::Duration;

const SECRET: &str = "diemcau-test-turn-secret-0123456789";

/// coturn on 127.0.0.1, authenticating with the shared secret, relaying on loopback.
struct Turn {
    child: std::process::Child,
    port: u16,
}

impl Turn {
    fn start(dir: &std::path::Path) -> Turn {
        let port = std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new("turnserver")
            .args(["-n", "--no-cli", "--no-tls", "--no-dtls", "--listening-ip=127.0.0.1", "--relay-ip=127.0.0.1"])
            .arg(format!("--listening-port={port}"))
            .args(["--use-auth-secret", &format!("--static-auth-secret={SECRET}"), "--realm=diemcau.test"])
            .args(["--allow-loopback-peers", "--min-port=49160", "--max-port=49200", "--simple-log", "--verbose"])
            .arg(format!("--db={}", dir.join("turndb").display()))
            .arg(format!("--log-file={}", dir.join("turn.log").display()))
            .arg(format!("--pidfile={}", dir.join("turn.pid").display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("turnserver (Debian's coturn; tests/run.sh installs it)");
        Turn { child, port }
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_site_forced_to_relay_joins_through_turn() {
    let scratch = scratch_dir("turn");
    let turn = Turn::start(&scratch);
    let (config, data) = TestBridge::config_with(&format!("[turn]\nurls = [\"turn:127.0.0.1:{}?transport=udp\"]\nsecret = \"{SECRET}\"\n", turn.port));
    let bridge = TestBridge::start_with(config, data);
    let hq = fake_media(&scratch, "hq", (220, 30, 30), 440);
    let ward = fake_media(&scratch, "hang-gai", (30, 200, 30), 660);
    let mut browsers = vec![
        Browser::launch("hq", &bridge.join_url("hq"), &hq, &scratch).await,
        Browser::launch("hang-gai", &bridge.join_url("hang-gai").replace("#key=", "?relay=1#key="), &ward, &scratch).await,
    ];
    for (i, other) in ["hang-gai", "hq"].iter().enumerate() {
        browsers[i].wait_receiving(other, Duration::from_secs(60), "").await;
    }
    // The ward's page: its selected pair uses a relay candidate of its own.
    let local = browsers[1]
        .eval(
            "window.diemcau.client.pc.getStats().then((r) => { let t = null; r.forEach((s) => { \
             if (s.type === 'transport' && s.selectedCandidatePairId) { const p = r.get(s.selectedCandidatePairId); \
             t = r.get(p.localCandidateId).candidateType; } }); return t; })",
        )
        .await;
    assert_eq!(local, Some(json!("relay")), "the ward's page relays");
    // The bridge's view, as technicians see it.
    bridge.wait_for_path("hang-gai", "relay").await;
    drop(browsers);
    let log = std::fs::read_to_string(scratch.join("turn.log")).unwrap_or_default();
    assert!(log.contains("hang-gai"), "coturn saw the site's time-limited user name");
    drop(turn);
    let _ = std::fs::remove_dir_all(&scratch);
}
