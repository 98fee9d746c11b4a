//! Firefox ESR beside Chromium on both engines: the browsers offices run. A Firefox
//! ward (its camera offered `bundle-only`, in two simulcast layers), a Chromium ward and HQ
//! on Chromium each decode every other page's video and hear its audio; when the chair gives
//! the Firefox ward the floor from its page, every viewer switches to the ward's full layer and
//! goes on decoding (the bridge continues the VP8 picture numbering across the switch).
//! Chromium sends redundant audio; Firefox, which does not take it, hears it as plain Opus. Then
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
    a_firefox_ward_across_a_floor_switch_with(TestBridge::start_default_on("lean"), Redundancy::Measured).await;
}

/// The same meeting on webrtc-rs PeerConnections, the fallback engine (docs/architecture.md):
/// it negotiates no redundant audio, so every site's audio reaches the bridge as plain Opus.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_the_fallback_engine_a_firefox_ward_is_seen_and_heard_across_a_floor_switch() {
    let _one = ONE_AT_A_TIME.lock().await;
    a_firefox_ward_across_a_floor_switch_with(TestBridge::start_default_on("webrtc"), Redundancy::None).await;
}

/// What the bridge should measure of each site's audio redundancy.
#[derive(PartialEq)]
enum Redundancy {
    /// The Chromium pages send redundant audio (the lean engine offers it), Firefox does not.
    Measured,
    /// No site sends it (the webrtc engine does not offer it).
    None,
}

async fn a_firefox_ward_across_a_floor_switch_with(bridge: TestBridge, redundancy: Redundancy) {
    let scratch = scratch_dir("ff");
    let hq = Browser::launch_builtin("hq", &bridge.join_url("hq"), &scratch).await;
    let firefox = Browser::launch_firefox("hang-gai", &bridge.join_url("hang-gai"), &scratch).await;
    let chromium = Browser::launch_builtin("cua-nam", &bridge.join_url("cua-nam"), &scratch).await;
    let mut pages = [hq, firefox, chromium];
    println!("firefox: {}", pages[1].eval("navigator.userAgent").await.unwrap_or_default());
    everyone_receives_everyone(&mut pages).await;
    let [hq, firefox, chromium] = &mut pages;
    // Audio: the Chromium pages send redundant Opus (RFC 2198), Firefox plain Opus, as the
    // technicians see it. Firefox, which does not take redundancy, has heard them all along
    // (above): it is sent the Opus each packet carries.
    let deadline = Deadline::after(Duration::from_secs(30), "the bridge to measure each site's audio redundancy");
    loop {
        let (_, tech) = bridge.tech("GET", "/api/tech", "").await;
        // Measured while the site's audio flows (Opus: 50 packets a second); else -1.
        let red = |id: &str| {
            let audio = &common::site(&tech, id)["audio_in"];
            let flowing = audio["packets_per_second"].as_f64().unwrap_or(0.0) > 40.0;
            if flowing {
                audio["redundant_percent"].as_f64().unwrap_or(-1.0)
            } else {
                -1.0
            }
        };
        let shares = [red("hq"), red("cua-nam"), red("hang-gai")];
        let chromium_red = if redundancy == Redundancy::Measured { shares[0] > 90.0 && shares[1] > 90.0 } else { shares[0] == 0.0 && shares[1] == 0.0 };
        if chromium_red && shares[2] == 0.0 {
            println!("redundant audio: hq {:.0} %, cua-nam {:.0} %, hang-gai (Firefox) {:.0} %", shares[0], shares[1], shares[2]);
            break;
        }
        deadline.tick_showing(&shares).await;
    }
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

/// A meeting configured for H.264 only, and a Firefox ward without it: its camera cannot be
/// forwarded. Never a silently dead camera: the page is told why, the bridge's log says so,
/// and the technicians' frozen-video alarm names the refused codecs; its audio still goes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_firefox_camera_the_meeting_cannot_forward_is_named_not_silently_dead() {
    let _one = ONE_AT_A_TIME.lock().await;
    let data = common::scratch_dir("bridge");
    let default = std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/default.toml")).unwrap();
    let config = data.join("config.toml");
    // The lean engine's: the webrtc engine forwards VP8 only (docs/architecture.md).
    std::fs::write(&config, default.replacen("\n[media]\n", "\n[media]\nengine = \"lean\"\nvideo_codecs = [\"h264\"]\n", 1)).unwrap();
    let bridge = TestBridge::start_with(config, data);
    let scratch = scratch_dir("ffh264");
    let mut hq = Browser::launch_builtin("hq", &bridge.join_url("hq"), &scratch).await;
    let mut ward = Browser::launch_firefox("hang-gai", &bridge.join_url("hang-gai"), &scratch).await;
    // The Firefox page says its camera is not forwarded.
    let deadline = Deadline::after(Duration::from_secs(30), "the Firefox page to say its camera cannot be forwarded");
    loop {
        let notice = ward.eval("document.getElementById('notice').textContent").await.unwrap_or_default();
        if notice.as_str().is_some_and(|n| n.contains("chuẩn nén")) {
            break;
        }
        deadline.tick_showing(&notice).await;
    }
    // HQ still hears it.
    let deadline = Deadline::after(Duration::from_secs(30), "HQ to hear the Firefox ward");
    loop {
        let r = hq.received().await;
        if r.get("hang-gai").is_some_and(|x| x.audio_energy > 0.0) {
            break;
        }
        deadline.tick_showing(&r).await;
    }
    // The technicians see why its picture is missing.
    let deadline = Deadline::after(Duration::from_secs(30), "a frozen-video alarm naming the refused codecs");
    loop {
        let (_, tech) = bridge.tech("GET", "/api/tech", "").await;
        let alarm = tech["alarms"].as_array().and_then(|a| a.iter().find(|x| x["site"] == "hang-gai" && x["alarm"] == "frozen_video")).cloned();
        if let Some(a) = alarm.as_ref().filter(|a| a["reason"]["cause"]["code"] == "refused") {
            let detail = a["reason"]["cause"]["detail"].as_str().unwrap_or_default().to_lowercase();
            assert!(detail.contains("vp8") && detail.contains("h.264"), "the cause names what was offered and what is forwarded: {a}");
            break;
        }
        deadline.tick_showing(&alarm).await;
    }
    assert!(bridge.log_text().contains("cannot receive its video"), "the log says so");
    drop((hq, ward));
    let _ = std::fs::remove_dir_all(&scratch);
}
