//! The bridge's own disk: a data folder it cannot write to is refused at start with an error
//! that names the folder and says why; a disk that fills up during a meeting raises the
//! technicians' `storage_failed` alarm, and the meeting goes on — media flows, a site signs
//! in and joins — until space is freed, when the alarm clears by itself.
//!
//! Each bridge gets a small file system of its own, mounted in a private mount namespace
//! (`unshare -m`, as root; `unshare -r -m` otherwise), so nothing outside the test is touched.

mod common;

use common::sim::Sim;
use common::{wait_until, TestBridge};
use serde_json::{json, Value};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// `unshare` as this user may: a plain mount namespace as root, with a user namespace otherwise.
fn unshare() -> &'static [&'static str] {
    if unsafe { libc::geteuid() } == 0 {
        &["unshare", "-m"]
    } else {
        &["unshare", "-r", "-m"]
    }
}

/// A config file beside (not inside) the data folder, which will be mounted over.
fn config_and_data() -> (PathBuf, PathBuf) {
    let (config, dir) = TestBridge::config_with("");
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    (config, data)
}

/// Runs `diemcau serve` on `data` after `mount` (a shell snippet, `$0` is the data folder);
/// the bridge should refuse to start: returns its exit status and what it printed.
fn start_refused(mount: &str) -> (bool, String, PathBuf) {
    let (config, data) = config_and_data();
    let script = format!("{mount} && exec \"$@\"");
    let out = Command::new("timeout")
        .args(["20"])
        .args(unshare())
        .args(["sh", "-c", &script])
        .arg(&data)
        .arg(env!("CARGO_BIN_EXE_diemcau"))
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(&config)
        .arg("--data")
        .arg(&data)
        .env("RUST_BACKTRACE", "0")
        .stdin(Stdio::null())
        .output()
        .expect("run diemcau under unshare");
    (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned(), data)
}

#[test]
fn a_read_only_data_folder_is_refused_at_start_naming_the_folder_and_the_cause() {
    let (ok, stderr, data) = start_refused("mount -t tmpfs -o size=1m tmpfs \"$0\" && mount -o remount,ro \"$0\"");
    assert!(!ok, "the bridge must not start on a read-only data folder: {stderr}");
    let expected = format!("cannot write to the data folder {}: it is read-only", data.display());
    assert!(stderr.contains(&expected), "expected {expected:?} in:\n{stderr}");
}

#[test]
fn a_full_disk_is_refused_at_start_naming_the_folder_and_the_cause() {
    let (ok, stderr, data) = start_refused("mount -t tmpfs -o size=64k tmpfs \"$0\" && (dd if=/dev/zero of=\"$0/fill\" bs=4k 2>/dev/null; true)");
    assert!(!ok, "the bridge must not start on a full disk: {stderr}");
    let expected = format!("cannot write to the data folder {}: the disk is full", data.display());
    assert!(stderr.contains(&expected), "expected {expected:?} in:\n{stderr}");
}

async fn tech_alarm(bridge: &TestBridge, alarm: &str) -> Option<Value> {
    let (_, v) = bridge.tech("GET", "/api/tech", "").await;
    v["alarms"].as_array().and_then(|a| a.iter().find(|x| x["alarm"] == alarm).cloned())
}

async fn media_flowing(rx: &Sim, from: &str) {
    let (a0, v0) = (rx.received(from, "audio"), rx.received(from, "video"));
    let what = format!("{from}'s media to keep reaching {}", rx.site);
    wait_until(Duration::from_secs(20), &what, || async { (rx.received(from, "audio") > a0 + 25 && rx.received(from, "video") > v0 + 10).then_some(()) }).await;
}

/// Fills the file system holding `dir` (as the bridge sees it) with one file; returns it.
fn fill(dir: &Path) -> PathBuf {
    let path = dir.join("filler");
    let mut f = std::fs::File::create(&path).unwrap();
    let block = vec![0u8; 64 * 1024];
    // Bounded: the file system is 4 MiB.
    for _ in 0..1024 {
        if f.write_all(&block).and_then(|_| f.flush()).is_err() {
            break;
        }
    }
    let _ = f.sync_all();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disk_that_fills_during_the_meeting_raises_an_alarm_and_the_meeting_goes_on() {
    let (config, data) = config_and_data();
    let data_arg = data.display().to_string();
    let wrapper: Vec<&str> = unshare().iter().copied().chain(["sh", "-c", "mount -t tmpfs -o size=4m tmpfs \"$0\" && exec \"$@\"", &data_arg]).collect();
    let bridge = TestBridge::start_wrapped(&wrapper, config, data.clone());
    let hq = Sim::join(&bridge.cert_pem(), bridge.port, "hq", bridge.key("hq")).await;
    let ward = Sim::join(&bridge.cert_pem(), bridge.port, "hang-gai", bridge.key("hang-gai")).await;
    media_flowing(&hq, "hang-gai").await;
    hq.send(json!({"type": "start_conference"}));
    wait_until(Duration::from_secs(10), "the conference to start", || async {
        ward.messages.lock().unwrap().iter().rev().find(|m| m["type"] == "state").and_then(|s| s["meeting"]["id"].as_i64())
    })
    .await;

    // The disk fills up; the chair goes on chairing (each change is an event and a state save).
    let filler = fill(&bridge.seen(&data));
    for muted in [true, false, true] {
        hq.send(json!({"type": "mute_site", "site": "hang-gai", "muted": muted}));
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let alarm = wait_until(Duration::from_secs(15), "the storage_failed alarm on /tech", || tech_alarm(&bridge, "storage_failed")).await;
    assert_eq!(alarm["site"], "@bridge", "{alarm}");
    assert_eq!(alarm["reason"]["problem"], "disk_full", "{alarm}");
    let db = data.join("diemcau.sqlite3").display().to_string();
    assert_eq!(alarm["reason"]["path"], db.as_str(), "{alarm}");
    assert!(bridge.log_text().contains(&format!("cannot write {db}: the disk is full")), "the log names the file and the cause");

    // The meeting goes on: media both ways, and a site that signs in now joins and receives.
    hq.send(json!({"type": "mute_site", "site": "hang-gai", "muted": false}));
    media_flowing(&hq, "hang-gai").await;
    media_flowing(&ward, "hq").await;
    let late = Sim::join(&bridge.cert_pem(), bridge.port, "cua-nam", bridge.key("cua-nam")).await;
    media_flowing(&late, "hq").await;
    assert!(late.is_connected(), "a site signing in on a full disk stays in the meeting");

    // Space is freed: the next write succeeds and the alarm clears by itself.
    std::fs::remove_file(&filler).unwrap();
    hq.send(json!({"type": "set_layout", "layout": "grid"}));
    wait_until(Duration::from_secs(15), "the storage_failed alarm to clear", || async { tech_alarm(&bridge, "storage_failed").await.is_none().then_some(()) })
        .await;
    // The raise and the clear are in the event log, the raise at the time it happened.
    let events = wait_until(Duration::from_secs(10), "the alarm's events in the log", || async {
        let (_, v) = bridge.tech("GET", "/api/tech", "").await;
        let events = v["events"].as_array().cloned().unwrap_or_default();
        let kinds: Vec<String> = events.iter().filter_map(|e| e["kind"].as_str().map(str::to_owned)).collect();
        (kinds.iter().any(|k| k == "alarm_raised:storage_failed") && kinds.iter().any(|k| k == "alarm_cleared:storage_failed")).then_some(events)
    })
    .await;
    let at = |kind: &str| events.iter().find(|e| e["kind"] == kind).and_then(|e| e["at_ms"].as_i64()).unwrap();
    assert!(at("alarm_raised:storage_failed") < at("alarm_cleared:storage_failed"));
}
