//! H.264 beside VP8 on the lean engine (the webrtc engine forwards VP8 only): a ward whose page prefers H.264 (`?codec=h264`,
//! as a room PC with a hardware decoder would) sends H.264, HQ sends VP8, and each Chromium
//! page decodes the other in the codec it was sent, through the same output slots. With
//! `[media] video_codecs = ["vp8"]` the same page is answered with VP8.

mod common;

use common::browser::Browser;
use common::{scratch_dir, Deadline, TestBridge};
use std::time::Duration;

/// The codec (`video/H264`, `video/VP8`) in which `receiver` decodes `site`, once it has
/// decoded some frames of it.
async fn decoded_codec(receiver: &mut Browser, site: &str) -> String {
    let deadline = Deadline::after(Duration::from_secs(60), format!("{} to decode {site}", receiver.name));
    loop {
        let v = receiver.eval(&format!("window.diemcau.stats().then(s => s['{site}'] && s['{site}'].framesDecoded > 5 ? s['{site}'].codec : '')")).await;
        if let Some(codec) = v.as_ref().and_then(|v| v.as_str()).filter(|c| !c.is_empty()) {
            return codec.to_string();
        }
        receiver.tick_explaining(&deadline, &v).await;
    }
}

static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ward_that_prefers_h264_sends_it_and_every_page_decodes_both_codecs() {
    let _one = ONE_AT_A_TIME.lock().await;
    // The lean engine's: the webrtc engine forwards VP8 only (docs/architecture.md).
    let bridge = TestBridge::start_default_on("lean");
    let scratch = scratch_dir("h264");
    let mut hq = Browser::launch_builtin("hq", &bridge.join_url("hq"), &scratch).await;
    let ward_url = bridge.join_url("hang-bai").replacen("#key=", "?codec=h264#key=", 1);
    let mut ward = Browser::launch_builtin("hang-bai", &ward_url, &scratch).await;
    assert_eq!(decoded_codec(&mut hq, "hang-bai").await, "video/H264", "HQ decodes the ward's H.264");
    assert_eq!(decoded_codec(&mut ward, "hq").await, "video/VP8", "the ward decodes HQ's VP8");
    hq.wait_receiving("hang-bai", Duration::from_secs(30), "").await;
    ward.wait_receiving("hq", Duration::from_secs(30), "").await;
    let log = bridge.log_text();
    assert!(log.contains("codec=\"h264\"") || log.contains("codec=h264"), "the bridge took the ward's camera as H.264:\n{log}");
    drop((hq, ward));
    let _ = std::fs::remove_dir_all(&scratch);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_meeting_of_vp8_only_answers_the_same_page_with_vp8() {
    let _one = ONE_AT_A_TIME.lock().await;
    let data = common::scratch_dir("bridge");
    let default = std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/default.toml")).unwrap();
    let config = data.join("config.toml");
    std::fs::write(&config, default.replacen("\n[media]\n", "\n[media]\nvideo_codecs = [\"vp8\"]\n", 1)).unwrap();
    let bridge = TestBridge::start_with(config, data);
    let scratch = scratch_dir("vp8only");
    let mut hq = Browser::launch_builtin("hq", &bridge.join_url("hq"), &scratch).await;
    let ward_url = bridge.join_url("hang-bai").replacen("#key=", "?codec=h264#key=", 1);
    let _ward = Browser::launch_builtin("hang-bai", &ward_url, &scratch).await;
    assert_eq!(decoded_codec(&mut hq, "hang-bai").await, "video/VP8");
    drop(hq);
    let _ = std::fs::remove_dir_all(&scratch);
}
