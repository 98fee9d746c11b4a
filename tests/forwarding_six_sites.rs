//! Six simulated sites (HQ + five wards) on webrtc-rs, over the real signalling and the real
//! binary: every site receives every other site's audio and video, and nothing of its own.

mod common;

use common::sim::Sim;
use common::TestBridge;
use std::time::Duration;

const SITES: [&str; 6] = ["hq", "cua-nam", "hang-bai", "hang-gai", "trang-tien", "hang-dao"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_site_receives_every_other_sites_audio_and_video() {
    every_site_receives_every_other_sites_audio_and_video_with(TestBridge::start_default()).await;
}

/// The same six webrtc-rs sites through webrtc-rs PeerConnections on the bridge (`engine = "webrtc"`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_on_the_webrtc_engine() {
    every_site_receives_every_other_sites_audio_and_video_with(TestBridge::start_default_on("webrtc")).await;
}

async fn every_site_receives_every_other_sites_audio_and_video_with(bridge: TestBridge) {
    let mut sims = Vec::new();
    for site in SITES {
        sims.push(Sim::join(&bridge.cert_pem(), bridge.port, site, bridge.key(site)).await);
    }
    let matrix = || {
        sims.iter()
            .map(|rx| {
                let row: Vec<String> = SITES.iter().map(|s| format!("{}/{}", rx.received(s, "audio"), rx.received(s, "video"))).collect();
                format!("{:>10} <- {}", rx.site, row.join(" "))
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    let all_received = || sims.iter().all(|rx| SITES.iter().filter(|s| **s != rx.site).all(|s| rx.received(s, "audio") >= 25 && rx.received(s, "video") >= 25));
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !all_received() && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(all_received(), "audio/video packets received (rows: receiver, columns: {SITES:?}):\n{}", matrix());
    println!("packets received (audio/video):\n{}", matrix());
    for rx in &sims {
        assert_eq!(rx.received(&rx.site, "audio") + rx.received(&rx.site, "video"), 0, "{} got its own media back", rx.site);
    }
    let health = bridge.get_json("/api/health").await;
    let present: Vec<_> = health["sites"].as_array().unwrap().iter().filter(|s| s["present"] == true).collect();
    assert_eq!(present.len(), 6, "{health}");
    assert!(health["media"]["forwarded_packets"].as_u64().unwrap() > 0);
}
