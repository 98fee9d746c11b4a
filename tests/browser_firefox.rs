//! Firefox ESR beside Chromium on the default engine: the browsers offices run. A Firefox
//! ward (its camera offered `bundle-only`, in two simulcast layers), a Chromium ward and HQ
//! on Chromium each decode every other page's video and hear its audio; when the chair gives
//! the Firefox ward the floor from its page, every viewer switches to the ward's full layer and
//! goes on decoding (the bridge continues the VP8 picture numbering across the switch). Then
//! the roles turn: Firefox as HQ, seen and heard by a Chromium ward, and seeing it.

mod common;

use common::browser::Browser;
use common::{scratch_dir, Deadline, TestBridge};
use serde_json::{json, Value};
use std::time::Duration;

/// The width at which `receiver` decodes `site`'s camera, and its frames decoded so far.
async fn decoding(receiver: &mut Browser, site: &str) -> (f64, f64) {
    let v = receiver.eval(&format!("window.diemcau.stats().then(s => s['{site}'] ? [s['{site}'].frameWidth, s['{site}'].framesDecoded] : [0, 0])")).await;
    let n = |i: usize| v.as_ref().and_then(|v| v[i].as_f64()).unwrap_or(0.0);
    (n(0), n(1))
}

/// The simulcast layers `sender` sends (their RIDs, from its own statistics).
async fn layers_sent(sender: &mut Browser) -> Value {
    sender
        .eval("window.diemcau.client.pc.getStats().then(r => { const x = []; r.forEach(s => { if (s.type === 'outbound-rtp' && s.kind === 'video' && s.bytesSent > 0) x.push(s.rid || ''); }); return x.sort(); })")
        .await
        .unwrap_or(Value::Null)
}

async fn wait_layers(sender: &mut Browser) {
    let deadline = Deadline::after(Duration::from_secs(45), format!("{} to send two simulcast layers", sender.name));
    loop {
        let rids = layers_sent(sender).await;
        if rids == json!(["h", "l"]) {
            return;
        }
        deadline.tick_showing(&rids).await;
    }
}

/// Waits until every page decodes and hears every other page.
async fn everyone_receives_everyone(pages: &mut [Browser]) {
    let names: Vec<String> = pages.iter().map(|b| b.name.clone()).collect();
    for page in pages.iter_mut() {
        let me = page.name.clone();
        for other in names.iter().filter(|n| **n != me) {
            page.wait_receiving(other, Duration::from_secs(90), "").await;
        }
    }
}

/// One Firefox page and two Chromium pages take most of the two cores.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_firefox_ward_is_seen_and_heard_by_chromium_pages_and_sees_them_across_a_floor_switch() {
    let _one = ONE_AT_A_TIME.lock().await;
    let bridge = TestBridge::start_default();
    let scratch = scratch_dir("ff");
    let hq = Browser::launch_builtin("hq", &bridge.join_url("hq"), &scratch).await;
    let firefox = Browser::launch_firefox("hang-gai", &bridge.join_url("hang-gai"), &scratch).await;
    let chromium = Browser::launch_builtin("cua-nam", &bridge.join_url("cua-nam"), &scratch).await;
    let mut pages = [hq, firefox, chromium];
    println!("firefox: {}", pages[1].eval("navigator.userAgent").await.unwrap_or_default());
    everyone_receives_everyone(&mut pages).await;
    let [hq, firefox, chromium] = &mut pages;
    // Both wards send simulcast: Firefox's layers reach the bridge by RID like Chromium's.
    wait_layers(firefox).await;
    wait_layers(chromium).await;
    let full = firefox.eval("window.diemcau.client.opts.localStream.getVideoTracks()[0].getSettings().width").await.and_then(|v| v.as_f64()).unwrap_or(0.0);
    assert!(full >= 640.0, "Firefox's fake camera is large enough for two layers: {full}");

    // The chair gives the Firefox ward the floor from its own page.
    let clicked = hq.eval("document.querySelector('#sites tr[data-site=\"hang-gai\"] button.give').click() ?? true").await;
    assert_eq!(clicked, Some(json!(true)));
    for viewer in [&mut *hq, &mut *chromium] {
        let deadline = Deadline::after(Duration::from_secs(30), format!("{} to decode the Firefox floor holder at full size", viewer.name));
        let switched = std::time::Instant::now();
        loop {
            let (width, _) = decoding(viewer, "hang-gai").await;
            if width == full {
                break;
            }
            deadline.tick_showing(&width).await;
        }
        // And it keeps decoding: the receiver took the new layer's keyframe as the next picture.
        let (_, before) = decoding(viewer, "hang-gai").await;
        tokio::time::sleep(Duration::from_secs(2)).await;
        let (_, after) = decoding(viewer, "hang-gai").await;
        println!("{}: full layer after {:?}, then {} frames in 2 s", viewer.name, switched.elapsed(), after - before);
        assert!(after > before + 10.0, "{}: the switched Firefox stream keeps decoding ({before} → {after})", viewer.name);
    }
    // The Firefox page decodes the floor holder's own view of HQ and the other ward, and
    // still hears them.
    for other in ["hq", "cua-nam"] {
        let before = firefox.received().await.get(other).copied().unwrap_or_default();
        let deadline = Deadline::after(Duration::from_secs(15), format!("Firefox to go on decoding and hearing {other}"));
        loop {
            let now = firefox.received().await.get(other).copied().unwrap_or_default();
            if now.frames_decoded > before.frames_decoded + 5.0 && now.audio_energy > before.audio_energy {
                break;
            }
            deadline.tick_showing(&now).await;
        }
    }
    // The bridge never had to refuse any of Firefox's media.
    let log = bridge.log_text();
    assert!(!log.contains("cannot receive"), "nothing of Firefox's was refused:\n{log}");
    drop(pages);
    let _ = std::fs::remove_dir_all(&scratch);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn firefox_as_hq_sees_and_hears_a_chromium_ward_and_is_seen_and_heard() {
    let _one = ONE_AT_A_TIME.lock().await;
    let bridge = TestBridge::start_default();
    let scratch = scratch_dir("ffhq");
    let hq = Browser::launch_firefox("hq", &bridge.join_url("hq"), &scratch).await;
    let ward = Browser::launch_builtin("trang-tien", &bridge.join_url("trang-tien"), &scratch).await;
    let mut pages = [hq, ward];
    everyone_receives_everyone(&mut pages).await;
    let [hq, _] = &mut pages;
    wait_layers(hq).await;
    // Firefox's chair page shows the chair's controls.
    assert_eq!(hq.eval("document.getElementById('chair').hidden").await, Some(json!(false)));
    drop(pages);
    let _ = std::fs::remove_dir_all(&scratch);
}
