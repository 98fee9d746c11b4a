//! Simulcast in real headless Chromium: cameras of 640x360 and more send two layers; the
//! bridge gives each receiver the layer that fits its tile — HQ on the stage at full size, a
//! ward's thumbnail at half size — and switches a ward to its full layer when it is given the
//! floor (on a keyframe, the picture never breaking). When the ward's browser stops sending its
//! full layer (as Chromium does when its uplink cannot carry it), the viewer goes on decoding
//! the half-size layer, and returns to full size when the layer comes back.

mod common;

use common::browser::Browser;
use common::{scratch_dir, Deadline, TestBridge};
use serde_json::json;
use std::time::Duration;

/// The width at which `receiver` currently decodes `site`'s camera.
async fn width_of(receiver: &mut Browser, site: &str) -> f64 {
    receiver.eval(&format!("window.diemcau.stats().then(s => s['{site}'] ? s['{site}'].frameWidth : 0)")).await.and_then(|v| v.as_f64()).unwrap_or(0.0)
}

async fn wait_width(receiver: &mut Browser, site: &str, width: f64, what: &str) {
    let deadline = Deadline::after(Duration::from_secs(45), what.to_string());
    while width_of(receiver, site).await != width {
        deadline.tick().await;
    }
}

/// The two engines' runs take turns: three Chromium pages each are what two cores carry.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_receiver_gets_the_layer_that_fits_the_tile() {
    let _one = ONE_AT_A_TIME.lock().await;
    each_receiver_gets_the_layer_that_fits_the_tile_with(TestBridge::start_default()).await;
}

/// The same layers, pauses and switches on webrtc-rs PeerConnections (`engine = "webrtc"`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_on_the_webrtc_engine() {
    let _one = ONE_AT_A_TIME.lock().await;
    each_receiver_gets_the_layer_that_fits_the_tile_with(TestBridge::start_default_on("webrtc")).await;
}

async fn each_receiver_gets_the_layer_that_fits_the_tile_with(bridge: TestBridge) {
    let scratch = scratch_dir("sim");
    // Chromium's built-in fake camera: 640x480 here, so two layers (320x240 and 640x480).
    let mut hq = Browser::launch_builtin("hq", &bridge.join_url("hq"), &scratch).await;
    let mut ward = Browser::launch_builtin("hang-gai", &bridge.join_url("hang-gai"), &scratch).await;
    let mut viewer = Browser::launch_builtin("cua-nam", &bridge.join_url("cua-nam"), &scratch).await;
    let deadline = Deadline::after(Duration::from_secs(30), "the ward's page to open its camera");
    let size = loop {
        let v =
            ward.eval("(() => { const s = window.diemcau.client.opts.localStream.getVideoTracks()[0].getSettings(); return [s.width, s.height]; })()").await;
        if let Some(v) = v {
            break v;
        }
        deadline.tick().await;
    };
    println!("camera {size:?}");
    let full = size[0].as_f64().unwrap_or(0.0);
    assert!(full >= 640.0, "the built-in fake camera is large enough for two layers: {size:?}");
    // Both layers leave the ward's browser.
    let deadline = Deadline::after(Duration::from_secs(45), "the ward to send two layers");
    loop {
        let rids = ward
            .eval("window.diemcau.client.pc.getStats().then(r => { const x = []; r.forEach(s => { if (s.type === 'outbound-rtp' && s.kind === 'video' && s.bytesSent > 0) x.push(s.rid); }); return x.sort(); })")
            .await;
        if rids == Some(json!(["h", "l"])) {
            break;
        }
        deadline.tick().await;
    }
    wait_width(&mut viewer, "hq", full, "HQ on the viewer's stage at full size").await;
    wait_width(&mut viewer, "hang-gai", full / 2.0, "the ward's thumbnail at half size").await;
    // The chair gives the ward the floor: it moves to the stage and its full layer.
    hq.eval("document.querySelector('#sites tr[data-site=\"hang-gai\"] button.give').click()").await;
    wait_width(&mut viewer, "hang-gai", full, "the floor holder at full size").await;
    let frames = viewer.eval("window.diemcau.stats().then(s => s['hang-gai'].framesDecoded)").await.and_then(|v| v.as_f64()).unwrap_or(0.0);
    tokio::time::sleep(Duration::from_secs(1)).await; // frames keep coming after the switch
    let later = viewer.eval("window.diemcau.stats().then(s => s['hang-gai'].framesDecoded)").await.and_then(|v| v.as_f64()).unwrap_or(0.0);
    assert!(later > frames + 5.0, "the switched stream keeps decoding ({frames} → {later})");

    // The ward's browser stops its full layer: the viewer falls back to the half-size one.
    let set_high = |active: bool| {
        format!(
            "(async () => {{ const s = window.diemcau.client.pc.getSenders().find(s => s.track && s.track.kind === 'video' && s.getParameters().encodings.length > 1); \
             const p = s.getParameters(); p.encodings.find(e => e.rid === 'h').active = {active}; await s.setParameters(p); return true; }})()"
        )
    };
    assert_eq!(ward.eval(&set_high(false)).await, Some(json!(true)));
    wait_width(&mut viewer, "hang-gai", full / 2.0, "the floor holder at half size while its full layer is paused").await;
    let frames = viewer.eval("window.diemcau.stats().then(s => s['hang-gai'].framesDecoded)").await.and_then(|v| v.as_f64()).unwrap_or(0.0);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let later = viewer.eval("window.diemcau.stats().then(s => s['hang-gai'].framesDecoded)").await.and_then(|v| v.as_f64()).unwrap_or(0.0);
    assert!(later > frames + 5.0, "the fallback layer keeps decoding ({frames} → {later})");
    // The layer comes back: so does the full size.
    assert_eq!(ward.eval(&set_high(true)).await, Some(json!(true)));
    wait_width(&mut viewer, "hang-gai", full, "the floor holder at full size again").await;
    let _ = std::fs::remove_dir_all(&scratch);
}
