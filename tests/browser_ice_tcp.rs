//! A ward office whose firewall drops all UDP still joins: inside a private network namespace
//! where nftables drops every UDP packet (`tests/lab/impair.sh cut`), headless Chromium
//! reaches the bridge's one ICE-TCP port, decodes HQ's video and hears it; the page's selected
//! pair is TCP and the bridge reports the site's path as `tcp`. Needs root (`ip netns`).

mod common;

use common::browser::{fake_media, lab_dir, Browser};
use common::line;
use common::{scratch_dir, TestBridge};
use std::process::Command;
use std::time::Duration;

const TEST: &str = "a_site_whose_udp_is_blocked_joins_over_ice_tcp";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_site_whose_udp_is_blocked_joins_over_ice_tcp() {
    joins_over_ice_tcp(TEST, None).await;
}

/// The same through webrtc-rs's ICE-TCP (`[media] engine = "webrtc"`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_on_the_webrtc_engine() {
    joins_over_ice_tcp("the_same_on_the_webrtc_engine", Some("webrtc")).await;
}

/// Runs `test` again inside a fresh network namespace (on `engine`, else the suite's), where
/// the body below blocks UDP.
async fn joins_over_ice_tcp(test: &str, engine: Option<&str>) {
    // Run this very test again inside a fresh namespace that has only loopback.
    let envs: Vec<(&str, &str)> = engine.map(|e| ("DIEMCAU_TEST_ENGINE", e)).into_iter().collect();
    if !line::test_in_private_netns(test, &format!("tcp{}", engine.unwrap_or("s")), &envs) {
        return;
    }
    let cut = Command::new("bash").arg(lab_dir().join("impair.sh")).arg("cut").status().expect("impair.sh");
    assert!(cut.success(), "impair.sh cut (needs nftables)");

    let bridge = TestBridge::start_default();
    let scratch = scratch_dir("tcp");
    let mut browsers = vec![
        Browser::launch("hq", &bridge.join_url("hq"), &fake_media(&scratch, "hq", (220, 30, 30), 440), &scratch).await,
        Browser::launch("hang-gai", &bridge.join_url("hang-gai"), &fake_media(&scratch, "hang-gai", (30, 200, 30), 660), &scratch).await,
    ];
    for (i, other) in ["hang-gai", "hq"].iter().enumerate() {
        browsers[i].wait_receiving(other, Duration::from_secs(60), " with UDP dropped").await;
    }
    let pair = browsers[1]
        .eval(
            "window.diemcau.client.pc.getStats().then((r) => { let p = null; r.forEach((s) => { \
             if (s.type === 'transport' && s.selectedCandidatePairId) { const c = r.get(s.selectedCandidatePairId); \
             const l = r.get(c.localCandidateId), m = r.get(c.remoteCandidateId); \
             p = [l.protocol, l.tcpType, m.protocol, m.tcpType, m.port]; } }); return p; })",
        )
        .await;
    println!("hang-gai's selected pair: {pair:?}");
    let pair = pair.unwrap_or_default();
    assert_eq!((pair[0].as_str(), pair[1].as_str(), pair[2].as_str(), pair[3].as_str()), (Some("tcp"), Some("active"), Some("tcp"), Some("passive")), "{pair}");
    bridge.wait_for_path("hang-gai", "tcp").await;
    drop(browsers);
    let _ = Command::new("bash").arg(lab_dir().join("impair.sh")).arg("clear").status();
    let _ = std::fs::remove_dir_all(&scratch);
}
