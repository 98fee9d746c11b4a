//! A ward on an office line (issue #20). At 5 % loss, what its page asks for again comes on
//! retransmission streams (RFC 4588). Its downlink capped to 1 Mbit/s, the bridge's
//! estimate of that line falls below the cap, the technicians' API says the ward's layers are
//! limited by it, and the ward's own Chromium page keeps decoding every camera it receives and
//! hearing HQ; when the cap is lifted, it keeps seeing and hearing HQ (how soon its layers
//! are unlimited again is printed, and measured by the network bench); and a technician's
//! ceiling, set live, holds its estimate and layers under it, where every camera keeps moving
//! on fewer of its frames rather than any being paused; lower still, its audio goes without
//! its redundancy, and it keeps hearing HQ.
//!
//! HQ and two wards run in headless Chromium on the bridge's loopback; Cụm Hàng Gai runs in a
//! namespace of its own behind a veth pair whose bridge side is shaped (`tests/common/line.rs`:
//! tc htb with a ~200 ms queue). Cameras are busy (noise), so each layer runs at its ceiling and
//! the cap binds. Needs root (`ip netns`, tc, nftables). Timings are measured by
//! `cargo bench --bench network`; this test asserts behaviour, with generous bounds.

mod common;

use common::browser::{busy_camera, Browser};
use common::line::{self, Dir, Line, BRIDGE_IP};
use common::{scratch_dir, Deadline, TestBridge};
use serde_json::Value;
use std::time::{Duration, Instant};

const TEST: &str = "a_ward_on_a_one_megabit_line_keeps_every_picture_and_its_sound";
const WARD: &str = "hang-gai";
const OTHERS: [&str; 3] = ["hq", "cua-nam", "hang-bai"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ward_on_a_one_megabit_line_keeps_every_picture_and_its_sound() {
    if !line::test_in_private_netns(TEST, "down", &[]) {
        return;
    }
    let udp = std::net::UdpSocket::bind("0.0.0.0:0").unwrap().local_addr().unwrap().port();
    let mut line = Line::new(udp).await;
    // The lean engine's: the webrtc engine has no downlink estimate (docs/architecture.md).
    let bridge = line::start_bridge_with(udp, "engine = \"lean\"");
    line.expose_tcp(bridge.port).await;
    let scratch = scratch_dir("downlink");
    let mut pages = Vec::new();
    for (site, rgb, tone) in [("hq", (220, 30, 30), 440), ("cua-nam", (30, 30, 220), 523), ("hang-bai", (220, 200, 30), 587)] {
        pages.push(Browser::launch(site, &bridge.join_url(site), &busy_camera(&scratch, site, rgb, tone), &scratch).await);
    }
    let url = format!("https://{BRIDGE_IP}:{}/site/{WARD}#key={}", bridge.port, bridge.key(WARD));
    let mut ward = Browser::launch_in_netns(&line.ward_ns, WARD, &url, &busy_camera(&scratch, WARD, (30, 200, 30), 660), &scratch).await;
    // Every page signed in before anything is asked of the line: a page that never joins is
    // named with what it shows, not reported later as a picture the ward did not get.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, tech) = bridge.tech("GET", "/api/tech", "").await;
        let absent: Vec<String> =
            ["hq", "cua-nam", "hang-bai", WARD].iter().filter(|id| site_row(&tech, id)["present"] != true).map(|id| id.to_string()).collect();
        if absent.is_empty() {
            break;
        }
        if Instant::now() > deadline {
            let mut shown = Vec::new();
            for page in pages.iter_mut().chain([&mut ward]).filter(|p| absent.contains(&p.name)) {
                shown.push(page.describe().await);
            }
            panic!("not signed in after 60 s: {absent:?}; their pages show:\n{}", shown.join("\n"));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    for other in OTHERS {
        ward.wait_receiving(other, Duration::from_secs(90), " over its line").await;
    }

    // Unshaped, the ward's line is estimated and its cameras are not limited.
    let before = wait_tech(&bridge, "the ward's downlink to be estimated, unlimited", |w| {
        w["downlink_bps"].as_f64().is_some_and(|b| b > 1_500_000.0) && w["limited_by"].is_null()
    })
    .await;
    println!("before the cap: {}", summary(&before));

    // 5 % loss on the line for a while: what the ward's page asks for again comes back on each
    // video slot's own retransmission stream (RFC 4588), which its browser counts as repairs.
    let repaired = repairs(&mut ward).await;
    line.loss(Dir::Down, 5);
    let deadline = Deadline::after(Duration::from_secs(30), "the ward's page to count retransmissions on their own streams");
    loop {
        let now = repairs(&mut ward).await;
        if now > repaired {
            println!("5 % loss: {} video packets repaired by retransmission streams", now - repaired);
            break;
        }
        ward.tick_explaining(&deadline, &now).await;
    }
    line.loss(Dir::Down, 0);

    line.cap(Dir::Down, 1000);
    let capped = wait_tech(&bridge, "the estimate to find the 1 Mbit/s cap and limit the ward's layers", |w| {
        // Limited by the estimate, or by the loss rule if the page's loss report came first.
        w["downlink_bps"].as_f64().is_some_and(|b| b <= 1_100_000.0) && !w["limited_by"].is_null()
    })
    .await;
    println!("capped: {}", summary(&capped));
    let layers: Vec<&str> = capped["receiving"].as_array().unwrap().iter().filter_map(|c| c["layer"].as_str()).collect();
    assert_eq!(layers.len(), OTHERS.len(), "every camera is accounted for: {capped}");
    assert!(!layers.contains(&"high"), "no large layer on a 1 Mbit/s line: {layers:?}");

    // On the capped line, HQ's picture on the stage keeps moving and its sound keeps coming;
    // every other camera either keeps moving or its tile says the line cannot take it now.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let a0 = audio(&mut ward).await;
    let mut last = ward.received().await;
    let (mut stage_frames, mut seconds) = (0.0, 0);
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        seconds += 1;
        let now = ward.received().await;
        let tiles = ward.eval(TILES_JS).await.unwrap_or_default();
        for other in OTHERS {
            let (was, is) = (last.get(other).map_or(0.0, |r| r.frames_decoded), now.get(other).map_or(0.0, |r| r.frames_decoded));
            // A slot that changed streams starts counting again: any change is frames decoded.
            let moving = is != was && is > 0.0;
            let paused = tiles[other]["paused"] == "true";
            if other == "hq" {
                stage_frames += if is >= was { is - was } else { is };
            }
            assert!(moving || paused || other == "hq", "{other}'s tile neither moves nor says the line cannot take it: {tiles}");
            if paused {
                assert!(tiles[other]["text"].as_str().is_some_and(|t| t.contains("Đường truyền")), "the paused tile says why, in Vietnamese: {tiles}");
            }
        }
        last = now;
    }
    println!("HQ on the stage: {stage_frames} frames decoded in {seconds} s on the capped line");
    assert!(stage_frames >= seconds as f64, "HQ's picture keeps moving on the capped line: {stage_frames} frames in {seconds} s");
    let a1 = audio(&mut ward).await;
    let (samples, concealed) = (a1.0 - a0.0, a1.1 - a0.1);
    println!("HQ's audio: {samples} samples, {concealed} concealed ({:.2} %)", 100.0 * concealed / samples.max(1.0));
    assert!(samples > 0.0 && concealed < samples * 0.2, "HQ's sound keeps coming: {concealed} of {samples} samples concealed");

    // The cap lifted: the ward keeps seeing and hearing HQ. How soon it gets the layers its
    // tiles want again is a figure, not asserted here: with four Chromiums on two cores the
    // pages' own CPU stalls read as queueing to the estimate, and it took from seconds to over
    // a minute (issue #20; `cargo bench --bench network` measures it on a quiet machine).
    line.uncap(Dir::Down);
    let lifted = Instant::now();
    let mut unlimited = None;
    let mut last = Value::Null;
    while lifted.elapsed() < Duration::from_secs(30) {
        let (_, v) = bridge.tech("GET", "/api/tech", "").await;
        last = site_row(&v, WARD);
        if last["limited_by"].is_null() && !last.is_null() {
            unlimited = Some(lifted.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    println!("lifted: {}", summary(&last));
    println!("unlimited again after the lift: {}", unlimited.map_or("not within 30 s".to_string(), |d| format!("{:.1} s", d.as_secs_f64())));
    let (hq0, a0) = (ward.received().await.get("hq").map_or(0.0, |r| r.frames_decoded), audio(&mut ward).await.0);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (hq1, a1) = (ward.received().await.get("hq").map_or(0.0, |r| r.frames_decoded), audio(&mut ward).await.0);
    assert!(hq1 != hq0 && a1 > a0, "after the lift the ward still sees HQ ({hq0} → {hq1} frames) and hears it ({a0} → {a1} samples)");

    // A technician knows the line is weak and sets its ceiling live: within seconds the estimate
    // is held under it and the cameras are fitted within it, with no reconnect. 700 kbit/s does
    // not carry three sites' audio (~90 k each, redundancy included) and three busy low layers
    // (~200 k each) whole: every camera is sent a quarter or half of its frames instead, none
    // paused, and the ward still sees every one of them move and hears HQ.
    let (status, reply) = bridge.tech("POST", "/api/tech/line", &format!(r#"{{"site":"{WARD}","downlink_kbps":700}}"#)).await;
    assert_eq!(status, 200, "{reply}");
    let ceiled = wait_tech(&bridge, "the estimate held under the technician's 700 kbit/s, and fewer frames of some camera", |w| {
        let thinned = w["receiving"].as_array().is_some_and(|r| r.iter().any(|c| c["frames"] != "all"));
        w["line"]["down_kbps"] == 700 && w["downlink_bps"].as_f64().is_some_and(|b| b <= 700_000.0) && !w["limited_by"].is_null() && thinned
    })
    .await;
    println!("a technician's ceiling of 700 kbit/s: {}", summary(&ceiled));
    let layers: Vec<&str> = ceiled["receiving"].as_array().unwrap().iter().filter_map(|c| c["layer"].as_str()).collect();
    assert_eq!(layers.len(), OTHERS.len(), "every camera is accounted for: {ceiled}");
    assert!(!layers.contains(&"high") && !layers.contains(&"paused"), "low layers, none paused, under a 700 kbit/s ceiling: {layers:?}");
    let frames = |r: &std::collections::HashMap<String, common::browser::Received>| OTHERS.map(|s| r.get(s).map_or(0.0, |x| x.frames_decoded));
    let (f0, a0) = (frames(&ward.received().await), audio(&mut ward).await.0);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (f1, a1) = (frames(&ward.received().await), audio(&mut ward).await.0);
    assert!(
        f0.iter().zip(&f1).all(|(a, b)| b > a) && a1 > a0,
        "under the ceiling the ward still sees every camera move ({OTHERS:?}: {f0:?} → {f1:?} frames) and hears HQ ({a0} → {a1} samples)"
    );

    // Lower still, 500 kbit/s: three sites' plain audio (~55 k each) and three quarter-rate low
    // layers (~90 k each) are all the line is given. The line loses nothing at random, so the
    // audio's redundancy gives way to the pictures: the ward's Chromium, which accepted
    // redundant audio, is sent the plain Opus inside it mid-stream, and keeps hearing HQ.
    let (status, reply) = bridge.tech("POST", "/api/tech/line", &format!(r#"{{"site":"{WARD}","downlink_kbps":500}}"#)).await;
    assert_eq!(status, 200, "{reply}");
    let plain = wait_tech(&bridge, "the ward's audio sent without its redundancy under a 500 kbit/s ceiling", |w| {
        w["line"]["down_kbps"] == 500 && w["audio_plain"] == true
    })
    .await;
    println!("a technician's ceiling of 500 kbit/s: {}", summary(&plain));
    let a0 = audio(&mut ward).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let a1 = audio(&mut ward).await;
    let (samples, concealed) = (a1.0 - a0.0, a1.1 - a0.1);
    println!("HQ's audio without redundancy: {samples} samples, {concealed} concealed ({:.2} %)", 100.0 * concealed / samples.max(1.0));
    assert!(samples > 0.0 && concealed < samples * 0.2, "HQ's sound keeps coming as plain Opus: {concealed} of {samples} samples concealed");

    drop(ward);
    drop(pages);
    drop(line);
    let _ = std::fs::remove_dir_all(&scratch);
}

/// Site `id`'s row in a technicians' API reply (`Value::Null` if it has none).
fn site_row(tech: &Value, id: &str) -> Value {
    common::site_row(tech, id).cloned().unwrap_or_default()
}

/// The ward's row of the technicians' API once `ok` holds for it (bounded: 60 s).
async fn wait_tech(bridge: &TestBridge, what: &str, ok: impl Fn(&Value) -> bool) -> Value {
    let deadline = Deadline::after(Duration::from_secs(60), what);
    loop {
        let (_, v) = bridge.tech("GET", "/api/tech", "").await;
        let ward = site_row(&v, WARD);
        if ok(&ward) {
            return ward;
        }
        deadline.tick_showing(&summary(&ward)).await;
    }
}

fn summary(ward: &Value) -> String {
    format!(
        "estimate {} bit/s, queue {} ms, limited by {}, audio without redundancy {}, receiving {}",
        ward["downlink_bps"], ward["queue_ms"], ward["limited_by"], ward["audio_plain"], ward["receiving"]
    )
}

/// Per remote site, its tile on the page: `paused` (the line cannot take its camera) and the
/// placeholder's text.
const TILES_JS: &str = "(() => { const o = {}; document.querySelectorAll('.tile[data-site]').forEach((t) => { \
    o[t.dataset.site] = { paused: t.dataset.paused || 'false', text: (t.querySelector('.placeholder') || {}).textContent || '' }; }); return o; })()";

/// Video packets the page received on retransmission streams (`retransmittedPacketsReceived`,
/// which counts only RFC 4588 repairs), over every remote camera.
async fn repairs(page: &mut Browser) -> f64 {
    let js = "window.diemcau.client.pc.getStats().then((r) => { let n = 0; \
              r.forEach((s) => { if (s.type === 'inbound-rtp' && s.kind === 'video') n += s.retransmittedPacketsReceived || 0; }); return n; })";
    page.eval(js).await.and_then(|v| v.as_f64()).unwrap_or(0.0)
}

/// HQ's audio on the ward's page: (totalSamplesReceived, concealedSamples).
async fn audio(page: &mut Browser) -> (f64, f64) {
    let js = "(async () => { const c = window.diemcau.client; const r = await c.pc.getStats(); let o = [0, 0]; \
              r.forEach((s) => { if (s.type === 'inbound-rtp' && s.kind === 'audio' && s.mid && c.siteOf(c.slotByMid.get(s.mid)) === 'hq') \
              { o = [s.totalSamplesReceived || 0, s.concealedSamples || 0]; } }); return o; })()";
    let v = page.eval(js).await.unwrap_or_default();
    (v[0].as_f64().unwrap_or(0.0), v[1].as_f64().unwrap_or(0.0))
}
