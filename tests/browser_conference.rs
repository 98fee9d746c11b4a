//! End to end in real headless Chromium (Debian's `chromium`, fake camera and microphone per
//! site): HQ and two wards join through their join links and, by the browsers' own
//! `getStats()`, decode each other's video and receive each other's audio with energy.
//! Bad signalling input from a stranger then leaves the meeting undisturbed.

mod common;

use common::browser::{colour_of, fake_media, Browser};
use common::ws::Client;
use common::{scratch_dir, wait_until, Deadline, TestBridge};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::Duration;

struct Site {
    id: &'static str,
    rgb: (u8, u8, u8),
    tone: u32,
}

const SITES: [Site; 3] = [
    Site { id: "hq", rgb: (220, 30, 30), tone: 440 },
    Site { id: "hang-gai", rgb: (30, 200, 30), tone: 660 },
    Site { id: "cua-nam", rgb: (40, 40, 220), tone: 880 },
];

/// Per remote site: (frames decoded, audio energy).
async fn receive_stats(b: &mut Browser) -> HashMap<String, (f64, f64)> {
    b.received().await.into_iter().map(|(site, r)| (site, (r.frames_decoded, r.audio_energy))).collect()
}

/// The median colour of the middle of `site`'s tile, as this browser renders it.
async fn tile_colour(b: &mut Browser, site: &str) -> Option<[f64; 3]> {
    let v = b.eval(&colour_of(&format!("figure[data-site=\"{site}\"] video"))).await?;
    let a = v.as_array()?;
    Some([a[0].as_f64()?, a[1].as_f64()?, a[2].as_f64()?])
}

/// The two engines' runs take turns: three Chromium pages each are what two cores carry.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hq_and_two_wards_see_and_hear_each_other_in_chromium() {
    let _one = ONE_AT_A_TIME.lock().await;
    // The default engine, named: its transport-cc feedback is checked below.
    let bridge = TestBridge::start_default_on("lean");
    hq_and_two_wards_see_and_hear_each_other_in_chromium_with(&bridge).await;
    // Each Chromium numbered the packets it sent (transport-cc, as the bridge's answer asked)
    // and the bridge told it when they arrived, ten times a second, for its delay-based
    // estimate. Counted when the pages have closed.
    for s in &SITES {
        let feedback =
            wait_until(Duration::from_secs(20), &format!("{}'s media connection to close", s.id), || async { bridge.closed_count(s.id, "transport_feedback") })
                .await;
        println!("transport-cc feedback packets sent to {}: {feedback}", s.id);
        assert!(feedback >= 10, "{}: {feedback} feedback packets in a meeting of several seconds", s.id);
    }
}

/// The same meeting on webrtc-rs PeerConnections (`[media] engine = "webrtc"`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_on_the_webrtc_engine() {
    let _one = ONE_AT_A_TIME.lock().await;
    hq_and_two_wards_see_and_hear_each_other_in_chromium_with(&TestBridge::start_default_on("webrtc")).await;
}

async fn hq_and_two_wards_see_and_hear_each_other_in_chromium_with(bridge: &TestBridge) {
    let scratch = scratch_dir("br");
    let mut browsers = Vec::new();
    for s in &SITES {
        let media = fake_media(&scratch, s.id, s.rgb, s.tone);
        browsers.push(Browser::launch(s.id, &bridge.join_url(s.id), &media, &scratch).await);
    }

    // Every browser decodes video from, and hears, both other browsers.
    for i in 0..browsers.len() {
        let me = SITES[i].id;
        let deadline = Deadline::after(Duration::from_secs(90), format!("{me} to decode and hear both other sites"));
        let stats = loop {
            let stats = receive_stats(&mut browsers[i]).await;
            if SITES.iter().filter(|s| s.id != me).all(|s| stats.get(s.id).is_some_and(|(f, e)| *f > 0.0 && *e > 0.0)) {
                break stats;
            }
            if deadline.expired() {
                println!("{me}'s page: {}", browsers[i].describe().await);
            }
            deadline.tick_showing(&stats).await;
        };
        println!("{me} receives (frames decoded, audio energy): {stats:?}");
    }

    // Each tile shows the right site: its colour is that site's camera colour.
    for i in 0..browsers.len() {
        let me = SITES[i].id;
        for s in SITES.iter().filter(|s| s.id != me) {
            let deadline = Deadline::after(Duration::from_secs(20), format!("{me} to render {}'s tile", s.id));
            let colour = loop {
                if let Some(c) = tile_colour(&mut browsers[i], s.id).await {
                    break c;
                }
                deadline.tick().await;
            };
            let want = [s.rgb.0 as f64, s.rgb.1 as f64, s.rgb.2 as f64];
            let off = colour.iter().zip(want).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
            assert!(off <= 40.0, "{me} shows {:?} in {}'s tile, expected about {want:?}", colour, s.id);
        }
        let stage = browsers[i].eval("document.querySelector('#stage figure')?.dataset.site").await;
        // HQ's own picture is a thumbnail on the chair's page; the stage waits for a speaker.
        let want = if me == "hq" { Value::Null } else { json!("hq") };
        assert_eq!(stage, Some(want), "the stage of {me}");
    }

    // Join → first decoded frame, per browser and remote site (ms from the socket opening).
    for (i, b) in browsers.iter_mut().enumerate() {
        let times = b.eval("window.diemcau.firstFrameMs").await.unwrap_or(Value::Null);
        println!("join → first frame, {}: {times}", SITES[i].id);
    }

    // For people reviewing a run: DIEMCAU_SCREENSHOTS=<dir> keeps a PNG of each page.
    if let Ok(dir) = std::env::var("DIEMCAU_SCREENSHOTS") {
        std::fs::create_dir_all(&dir).unwrap();
        for (i, b) in browsers.iter_mut().enumerate() {
            b.screenshot(&std::path::Path::new(&dir).join(format!("{}.png", SITES[i].id))).await;
        }
    }

    // A stranger's bad input gets typed errors and changes nothing for the meeting.
    let mut stranger = Client::connect(&bridge.cert_pem(), bridge.port).await;
    let before: Vec<_> = {
        let mut v = Vec::new();
        for b in browsers.iter_mut() {
            v.push(receive_stats(b).await);
        }
        v
    };
    for (input, code) in [
        ("{\"type\":", "bad_json"),
        ("{\"type\":\"seize_the_floor\"}", "unknown_type"),
        ("{\"type\":\"offer\",\"sdp\":\"v=0\"}", "not_joined"),
        ("{\"type\":\"join\",\"site\":\"hq\",\"key\":\"guessed-key-123456\"}", "invalid_message"),
        ("{\"type\":\"join\",\"site\":\"hq\",\"ticket\":\"dcj_guessed\"}", "token_invalid"),
    ] {
        stranger.send_text(input).await;
        let reply = stranger.recv().await.expect("reply");
        assert_eq!(reply["code"], code, "{input} → {reply}");
    }
    stranger.send_text(format!("{{\"type\":\"offer\",\"sdp\":\"{}\"}}", "x".repeat(70_000))).await;
    assert_eq!(stranger.recv().await.unwrap()["code"], "too_large");

    for (i, b) in browsers.iter_mut().enumerate() {
        let me = SITES[i].id;
        let was = &before[i];
        let deadline = Deadline::after(Duration::from_secs(20), format!("{me} to keep decoding and hearing after the bad input"));
        loop {
            let now = receive_stats(b).await;
            let flowing = SITES.iter().filter(|s| s.id != me).all(|s| {
                let (f0, e0) = was.get(s.id).copied().unwrap_or_default();
                now.get(s.id).is_some_and(|(f, e)| *f >= f0 + 10.0 && *e > e0)
            });
            if flowing {
                break;
            }
            deadline.tick().await;
        }
    }
    let health = bridge.get_json("/api/health").await;
    let present: Vec<_> = health["sites"].as_array().unwrap().iter().filter(|s| s["present"] == true).map(|s| s["id"].clone()).collect();
    assert_eq!(present, vec![json!("hq"), json!("cua-nam"), json!("hang-gai")], "{health}");
    drop(browsers);
    let _ = std::fs::remove_dir_all(&scratch);
}
