//! Recording real media from headless Chromium: the chair starts recording from its page,
//! every page shows the indicator, and the files written from the forwarded RTP are accepted
//! by a real decoder (Debian's `ffprobe`) with the expected codec and a duration within 10 %
//! of the time recorded. Each site's audio decodes (`ffmpeg`) to its own microphone's tone:
//! Chromium sends redundant Opus (RFC 2198), and the file holds the Opus it carries.

mod common;

use common::browser::{fake_media, Browser};
use common::{scratch_dir, Deadline, TestBridge};
use serde_json::{json, Value};
use std::process::Command;
use std::time::{Duration, Instant};

const SITES: [(&str, (u8, u8, u8), u32); 2] = [("hq", (220, 30, 30), 440), ("hang-gai", (30, 200, 30), 660)];
/// How long the scenario records.
const RECORD_FOR: Duration = Duration::from_secs(8);

/// `ffprobe`'s view of a file: (codec name, duration in seconds).
fn probe(path: &std::path::Path) -> (String, f64) {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-show_entries", "stream=codec_name,duration:format=duration", "-of", "json"])
        .arg(path)
        .output()
        .expect("ffprobe (Debian's ffmpeg; tests/run.sh installs it)");
    assert!(out.status.success(), "ffprobe rejected {}: {}", path.display(), String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let codec = v["streams"][0]["codec_name"].as_str().unwrap_or("").to_string();
    let secs = |x: &Value| x.as_str().and_then(|s| s.parse::<f64>().ok());
    let duration = secs(&v["format"]["duration"]).or_else(|| secs(&v["streams"][0]["duration"])).unwrap_or(0.0);
    (codec, duration)
}

/// The pitch of a recorded Opus file's sound, Hz: `ffmpeg` decodes it (errors fail the test)
/// and the middle of it is read by its zero crossings (the fake microphones play sine tones).
fn pitch(path: &std::path::Path) -> f64 {
    let out = Command::new("ffmpeg").args(["-v", "error", "-i"]).arg(path).args(["-f", "s16le", "-ac", "1", "-ar", "48000", "-"]).output().expect("ffmpeg");
    assert!(out.status.success() && out.stderr.is_empty(), "{} decodes cleanly: {}", path.display(), String::from_utf8_lossy(&out.stderr));
    let samples: Vec<i16> = out.stdout.chunks_exact(2).map(|b| i16::from_le_bytes([b[0], b[1]])).collect();
    // Two seconds from the middle, away from the start's silence.
    let middle = samples.len() / 2;
    let window = &samples[middle.saturating_sub(48_000)..(middle + 48_000).min(samples.len())];
    let crossings = window.windows(2).filter(|w| (w[0] < 0) != (w[1] < 0)).count();
    crossings as f64 / 2.0 / (window.len() as f64 / 48_000.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recorded_files_of_real_media_decode_with_the_recorded_duration() {
    let bridge = TestBridge::start_default();
    let scratch = scratch_dir("rec");
    let mut browsers = Vec::new();
    for (id, rgb, tone) in SITES {
        let media = fake_media(&scratch, id, rgb, tone);
        browsers.push(Browser::launch(id, &bridge.join_url(id), &media, &scratch).await);
    }
    for (i, other) in [SITES[1].0, SITES[0].0].iter().enumerate() {
        browsers[i].wait_receiving(other, Duration::from_secs(90), "").await;
    }

    // The chair clicks "start recording"; both pages show the indicator.
    assert_eq!(browsers[0].eval("document.getElementById('record').click() ?? true").await, Some(json!(true)));
    let started = Instant::now();
    for b in browsers.iter_mut() {
        let deadline = Deadline::after(Duration::from_secs(10), format!("{} to show the recording indicator", b.name));
        while b.eval("document.getElementById('rec').dataset.state").await != Some(json!("recording")) {
            deadline.tick().await;
        }
        assert_eq!(b.eval("document.getElementById('rec').hidden").await, Some(json!(false)));
    }
    tokio::time::sleep(RECORD_FOR.saturating_sub(started.elapsed())).await;
    assert_eq!(browsers[0].eval("document.getElementById('record').click() ?? true").await, Some(json!(true)));
    let recorded = started.elapsed().as_secs_f64();
    let deadline = Deadline::after(Duration::from_secs(10), "the indicator to go");
    while browsers[1].eval("document.getElementById('rec').hidden").await != Some(json!(true)) {
        deadline.tick().await;
    }

    let root = bridge.data.join("recordings");
    let dir = std::fs::read_dir(&root).unwrap().filter_map(Result::ok).map(|e| e.path()).find(|p| p.is_dir()).expect("a recording folder");
    let index: Value = serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
    assert_eq!(index["complete"], true, "{index}");
    let tracks = index["tracks"].as_array().unwrap();
    for (site, _, _) in SITES {
        for (kind, codec) in [("audio", "opus"), ("video", "vp8")] {
            let t = tracks.iter().find(|t| t["site"] == site && t["kind"] == kind).unwrap_or_else(|| panic!("no {site} {kind}: {index}"));
            let (probed, duration) = probe(&dir.join(t["file"].as_str().unwrap()));
            println!("{site} {kind}: {probed}, {duration:.2} s of {recorded:.2} s recorded ({} units, {} lost)", t["units"], t["lost_packets"]);
            assert_eq!(probed, codec, "{site} {kind}");
            assert!((duration - recorded).abs() <= recorded * 0.10, "{site} {kind}: {duration:.2} s in the file, {recorded:.2} s recorded");
            if kind == "audio" {
                let tone = SITES.iter().find(|(id, _, _)| *id == site).unwrap().2 as f64;
                let heard = pitch(&dir.join(t["file"].as_str().unwrap()));
                println!("{site} audio: {heard:.0} Hz (its microphone plays {tone} Hz)");
                assert!((heard - tone).abs() <= tone * 0.05, "{site}'s recorded audio is its own tone: {heard:.0} Hz, not {tone} Hz");
            }
            if kind == "video" {
                assert_eq!((t["width"].as_u64(), t["height"].as_u64()), (Some(320), Some(240)), "the fake camera's size: {t}");
            }
        }
    }
}
