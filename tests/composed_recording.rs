//! One watchable file of the meeting, made after it from the per-site files: HQ (red camera)
//! and a ward (green camera) in real headless Chromium, recorded for about 12 s with the floor
//! given to the ward halfway. The archive shows the composition reach 100 %; Debian's
//! `ffprobe` finds one H.264 video and one AAC audio stream lasting the recorded time (within
//! 5 %); frames taken a second and a half either side of the floor change show the floor
//! holder's colour on the stage (HQ's before, the ward's after) and the other in a thumbnail;
//! the archive page links the file.
//! A bridge whose ffmpeg cannot be run raises the `composition_failed` alarm and keeps every
//! per-site file as it was.

mod common;

use common::browser::{fake_media, until, Browser};
use common::sim::Sim;
use common::ws::{https_request, https_request_bytes};
use common::{scratch_dir, wait_until, Deadline, TestBridge};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const HQ_RGB: (u8, u8, u8) = (220, 30, 30);
const WARD_RGB: (u8, u8, u8) = (30, 200, 30);
const RECORD_FOR: Duration = Duration::from_secs(12);
const FLOOR_AT: Duration = Duration::from_secs(6);

/// `ffprobe`'s streams (codec type, codec name) and the file's duration in seconds.
fn probe(path: &Path) -> (Vec<(String, String)>, f64) {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-show_entries", "stream=codec_type,codec_name:format=duration", "-of", "json"])
        .arg(path)
        .output()
        .expect("ffprobe (Debian's ffmpeg; tests/run.sh installs it)");
    assert!(out.status.success(), "ffprobe rejected {}: {}", path.display(), String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let streams = v["streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["codec_type"].as_str().unwrap_or("").to_string(), s["codec_name"].as_str().unwrap_or("").to_string()))
        .collect();
    let duration = v["format"]["duration"].as_str().and_then(|d| d.parse().ok()).unwrap_or(0.0);
    (streams, duration)
}

/// The average colour of region `(x, y, w, h)` of the frame at `at_s` seconds.
fn colour_at(path: &Path, at_s: f64, (x, y, w, h): (u32, u32, u32, u32)) -> (u8, u8, u8) {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-ss", &format!("{at_s:.2}"), "-i"])
        .arg(path)
        .args(["-frames:v", "1", "-vf", &format!("crop={w}:{h}:{x}:{y},scale=1:1:flags=area"), "-pix_fmt", "rgb24", "-f", "rawvideo", "-"])
        .output()
        .expect("ffmpeg");
    assert!(out.status.success() && out.stdout.len() == 3, "no frame at {at_s} s: {}", String::from_utf8_lossy(&out.stderr));
    (out.stdout[0], out.stdout[1], out.stdout[2])
}

/// Red or green, as the fake cameras send them (encoding shifts the exact values).
fn is(rgb: (u8, u8, u8), want: (u8, u8, u8)) -> bool {
    let d = |a: u8, b: u8| (a as i32 - b as i32).abs();
    d(rgb.0, want.0) < 60 && d(rgb.1, want.1) < 60 && d(rgb.2, want.2) < 60
}

fn recording_dir(root: &Path) -> PathBuf {
    std::fs::read_dir(root).unwrap().filter_map(Result::ok).map(|e| e.path()).find(|p| p.is_dir()).expect("a recording folder")
}

/// The archive's entry for the one recording, once its composition is `done` or `failed`;
/// every percentage seen on the way.
async fn composed(bridge: &TestBridge, timeout: Duration) -> (Value, Vec<u64>) {
    let deadline = Deadline::after(timeout, "the composition to finish");
    let mut seen = Vec::new();
    loop {
        let list = bridge.get_json("/api/recordings").await;
        let rec = list["recordings"][0].clone();
        if let Some(p) = rec["composition"]["percent"].as_u64() {
            if seen.last() != Some(&p) {
                seen.push(p);
            }
        }
        if matches!(rec["composition"]["state"].as_str(), Some("done" | "failed")) {
            return (rec, seen);
        }
        deadline.tick_showing(&rec["composition"]).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_composed_recording_shows_the_floor_holder_on_the_stage() {
    let bridge = TestBridge::start_default();
    let scratch = scratch_dir("compose");
    let mut browsers = Vec::new();
    for (id, rgb, tone) in [("hq", HQ_RGB, 440), ("hang-gai", WARD_RGB, 660)] {
        let media = fake_media(&scratch, id, rgb, tone);
        browsers.push(Browser::launch(id, &bridge.join_url(id), &media, &scratch).await);
    }
    browsers[0].wait_receiving("hang-gai", Duration::from_secs(90), "").await;
    browsers[1].wait_receiving("hq", Duration::from_secs(90), "").await;

    assert_eq!(browsers[0].eval("document.getElementById('record').click() ?? true").await, Some(json!(true)));
    let started = Instant::now();
    let deadline = Deadline::after(Duration::from_secs(10), "HQ's page to show the recording indicator");
    while browsers[0].eval("document.getElementById('rec').dataset.state").await != Some(json!("recording")) {
        deadline.tick().await;
    }
    // The scenario's timing (not a wait for a condition): the floor changes halfway.
    tokio::time::sleep(FLOOR_AT.saturating_sub(started.elapsed())).await;
    let clicked = browsers[0].eval("document.querySelector('#sites tr[data-site=\"hang-gai\"] button.give').click() ?? true").await;
    assert_eq!(clicked, Some(json!(true)));
    let floor_at = started.elapsed().as_secs_f64();
    tokio::time::sleep(RECORD_FOR.saturating_sub(started.elapsed())).await;
    assert_eq!(browsers[0].eval("document.getElementById('record').click() ?? true").await, Some(json!(true)));
    let recorded = started.elapsed().as_secs_f64();
    // The browsers go: the composition has the machine's cores to itself.
    drop(browsers);

    let (rec, percents) = composed(&bridge, Duration::from_secs(300)).await;
    println!("composition: {} (percentages seen: {percents:?})", rec["composition"]);
    let c = &rec["composition"];
    assert_eq!(c["state"], "done", "{rec}");
    assert_eq!(c["percent"], 100, "{rec}");
    assert!(percents.windows(2).all(|w| w[0] <= w[1]), "progress only grows: {percents:?}");
    let id = rec["id"].as_str().unwrap();
    let file = c["file"].as_str().unwrap();
    assert_eq!(file, format!("{id}.mp4"));

    // The archive serves it to those who may see recordings, and to no one else.
    let path = format!("/api/recordings/{id}/{file}");
    let auth = format!("Bearer {}", bridge.tech_token().await);
    let (status, body) = https_request_bytes(&bridge.cert_pem(), bridge.port, "GET", &path, &[("Authorization", &auth)], "").await;
    assert_eq!(status, 200);
    let ward = format!("Bearer {}", bridge.site_token("hang-gai").await);
    assert_eq!(https_request(&bridge.cert_pem(), bridge.port, "GET", &path, &[("Authorization", &ward)], "").await.0, 403);

    let dir = recording_dir(&bridge.data.join("recordings"));
    let mp4 = dir.join(file);
    assert_eq!(std::fs::read(&mp4).unwrap(), body, "the download is the file");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&mp4).unwrap().permissions().mode() & 0o777, 0o600);
    let (streams, duration) = probe(&mp4);
    println!("composed file: {streams:?}, {duration:.2} s of {recorded:.2} s recorded; floor given at {floor_at:.2} s");
    assert_eq!(streams, [("video".to_string(), "h264".to_string()), ("audio".to_string(), "aac".to_string())]);
    assert!((duration - recorded).abs() <= recorded * 0.05, "{duration:.2} s composed, {recorded:.2} s recorded");

    // The stage (960x540 at the top left; its middle, clear of the name) and the first
    // thumbnail (320x180 at the top right).
    let stage = (240, 100, 480, 300);
    let thumb = (1000, 20, 240, 120);
    for (at, on_stage, in_thumb) in [(floor_at - 1.5, HQ_RGB, WARD_RGB), (floor_at + 1.5, WARD_RGB, HQ_RGB)] {
        let (s, t) = (colour_at(&mp4, at, stage), colour_at(&mp4, at, thumb));
        println!("at {at:.2} s: stage {s:?}, thumbnail {t:?}");
        assert!(is(s, on_stage), "at {at:.2} s the stage is {s:?}, not the floor holder's {on_stage:?}");
        assert!(is(t, in_thumb), "at {at:.2} s the thumbnail is {t:?}, not {in_thumb:?}");
    }

    // The per-site files are all there, as the index lists them.
    let index: Value = serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
    for t in index["tracks"].as_array().unwrap() {
        let len = std::fs::metadata(dir.join(t["file"].as_str().unwrap())).unwrap().len();
        assert_eq!(len, t["bytes"].as_u64().unwrap(), "{t}");
    }

    // The archive page, signed in, shows the composition done with the link to the file.
    let mut archive = Browser::launch_builtin("archive", &format!("https://localhost:{}/records", bridge.port), &scratch).await;
    until(&mut archive, "!document.getElementById('login').hidden", json!(true), Duration::from_secs(20), "the sign-in form").await;
    let (user, password) = bridge.technician.clone();
    let sign_in = format!(
        "(() => {{ document.getElementById('user').value = {user:?}; document.getElementById('password').value = {password:?}; document.querySelector('#login button[type=submit]').click(); return true; }})()"
    );
    assert_eq!(archive.eval(&sign_in).await, Some(json!(true)));
    let row = format!(
        "(() => {{ const r = document.querySelector('#recordings tr[data-recording=\"{id}\"]'); return r ? [r.dataset.compose, r.dataset.percent, r.querySelector('a[href$=\".mp4\"]')?.getAttribute('href') ?? null] : null; }})()"
    );
    until(&mut archive, &row, json!(["done", "100", path]), Duration::from_secs(20), "the composed file on the archive page").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_composition_that_cannot_run_raises_an_alarm_and_keeps_the_files() {
    let (config, data) = TestBridge::config_with("[recording]\nffmpeg = \"/nonexistent/ffmpeg\"\n");
    let bridge = TestBridge::start_with(config, data);
    let hq = Sim::join(&bridge.cert_pem(), bridge.port, "hq", bridge.key("hq")).await;
    let ward = Sim::join(&bridge.cert_pem(), bridge.port, "hang-gai", bridge.key("hang-gai")).await;
    wait_until(Duration::from_secs(20), "media both ways", || async {
        (hq.received("hang-gai", "video") > 10 && ward.received("hq", "video") > 10).then_some(())
    })
    .await;
    hq.send(json!({"type": "start_recording"}));
    let dir = wait_until(Duration::from_secs(10), "a recording folder", || async {
        std::fs::read_dir(bridge.data.join("recordings")).ok()?.filter_map(Result::ok).map(|e| e.path()).find(|p| p.is_dir())
    })
    .await;
    // The length of the recording is the scenario's.
    tokio::time::sleep(Duration::from_secs(3)).await;
    hq.send(json!({"type": "stop_recording"}));

    let alarm = wait_until(Duration::from_secs(30), "the composition_failed alarm", || async {
        let v = bridge.get_json("/api/tech").await;
        v["alarms"].as_array().and_then(|a| a.iter().find(|x| x["alarm"] == "composition_failed").cloned())
    })
    .await;
    assert_eq!(alarm["site"], "@bridge", "{alarm}");
    assert!(alarm["detail"].as_str().unwrap().contains("/nonexistent/ffmpeg"), "{alarm}");
    let (rec, _) = composed(&bridge, Duration::from_secs(10)).await;
    assert_eq!(rec["composition"]["state"], "failed", "{rec}");
    // The event log has it, for the technicians and the minutes.
    let v = bridge.get_json("/api/tech").await;
    let events = v["events"].as_array().cloned().unwrap_or_default();
    assert!(events.iter().any(|e| e["code"] == "composition_failed"), "{v}");

    // Every per-site file is as the recorder left it; nothing else was left behind.
    let index: Value = serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
    let tracks = index["tracks"].as_array().unwrap();
    assert!(tracks.len() >= 4, "{index}");
    for t in tracks {
        let len = std::fs::metadata(dir.join(t["file"].as_str().unwrap())).unwrap().len();
        assert_eq!(len, t["bytes"].as_u64().unwrap(), "{t}");
    }
    let mut names: Vec<String> = std::fs::read_dir(&dir).unwrap().filter_map(Result::ok).map(|e| e.file_name().to_string_lossy().into_owned()).collect();
    names.retain(|n| n != "index.json" && n != "composed.json" && !tracks.iter().any(|t| t["file"] == n.as_str()));
    assert!(names.is_empty(), "left behind: {names:?}");

    // The archive's "compose again" is accepted (it queues; this ffmpeg fails the same way).
    let (status, reply) = bridge.tech("POST", &format!("/api/recordings/{}/compose", index["id"].as_str().unwrap()), "").await;
    assert_eq!(status, 202, "{reply}");
}
