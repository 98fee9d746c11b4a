//! Recording, decided by the chair and written by the bridge: every site sees that the
//! meeting is recorded; each site's audio and video land in their own files with an index;
//! a ward cannot start recording; a disk that fills up fails the recording with an alarm
//! while the meeting itself carries on; too little free disk refuses to start.

mod common;

use common::sim::Sim;
use common::ws::{https_request, https_request_bytes};
use common::{wait_until, TestBridge};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::Duration;

fn latest_state(sim: &Sim) -> Value {
    sim.messages.lock().unwrap().iter().rev().find(|m| m["type"] == "state").cloned().unwrap_or(Value::Null)
}

fn error_for(sim: &Sim, request: &str) -> Option<String> {
    sim.messages.lock().unwrap().iter().find(|m| m["type"] == "error" && m["request"] == request).map(|m| m["code"].as_str().unwrap_or("").to_string())
}

async fn recording_state(sim: &Sim, want: Option<&str>) {
    let what = format!("{} to see recording {want:?}", sim.site);
    wait_until(Duration::from_secs(30), &what, || async {
        let s = latest_state(sim);
        (s["recording"]["state"].as_str() == want).then_some(())
    })
    .await;
}

async fn media_flowing(rx: &Sim, from: &str) {
    let (a0, v0) = (rx.received(from, "audio"), rx.received(from, "video"));
    let what = format!("{from}'s media to keep reaching {}", rx.site);
    wait_until(Duration::from_secs(20), &what, || async { (rx.received(from, "audio") > a0 + 25 && rx.received(from, "video") > v0 + 10).then_some(()) }).await;
}

fn recording_dirs(root: &Path) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> =
        std::fs::read_dir(root).map(|d| d.filter_map(Result::ok).map(|e| e.path()).filter(|p| p.is_dir()).collect()).unwrap_or_default();
    dirs.sort();
    dirs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chair_records_each_sites_audio_and_video_into_indexed_files() {
    let bridge = TestBridge::start_default();
    let hq = Sim::join(&bridge.cert_pem(), bridge.port, "hq", bridge.key("hq")).await;
    let ward = Sim::join(&bridge.cert_pem(), bridge.port, "hang-gai", bridge.key("hang-gai")).await;
    media_flowing(&hq, "hang-gai").await;
    media_flowing(&ward, "hq").await;

    ward.send(json!({"type": "start_recording"}));
    wait_until(Duration::from_secs(5), "the ward's start_recording to be refused", || async { error_for(&ward, "start_recording") }).await;
    assert_eq!(error_for(&ward, "start_recording").as_deref(), Some("not_chair"));
    assert!(latest_state(&ward)["recording"].is_null(), "nothing started");

    hq.send(json!({"type": "start_recording"}));
    recording_state(&ward, Some("recording")).await;
    recording_state(&hq, Some("recording")).await;
    hq.send(json!({"type": "start_recording"}));
    wait_until(Duration::from_secs(5), "a second start to be refused", || async { error_for(&hq, "start_recording") }).await;
    assert_eq!(error_for(&hq, "start_recording").as_deref(), Some("recording_active"));
    // The length of the recording is the scenario's (not a wait for a condition).
    tokio::time::sleep(Duration::from_secs(3)).await;
    hq.send(json!({"type": "stop_recording"}));
    recording_state(&ward, None).await;

    let dirs = recording_dirs(&bridge.data.join("recordings"));
    assert_eq!(dirs.len(), 1, "one recording folder");
    let index: Value = serde_json::from_slice(&std::fs::read(dirs[0].join("index.json")).unwrap()).unwrap();
    assert_eq!(index["complete"], true, "{index}");
    let tracks = index["tracks"].as_array().unwrap();
    for (site, kind, codec, magic) in
        [("hq", "audio", "opus", b"OggS"), ("hq", "video", "vp8", b"DKIF"), ("hang-gai", "audio", "opus", b"OggS"), ("hang-gai", "video", "vp8", b"DKIF")]
    {
        let t = tracks.iter().find(|t| t["site"] == site && t["kind"] == kind).unwrap_or_else(|| panic!("no {site} {kind} in {index}"));
        assert_eq!(t["codec"], codec);
        let span = t["end_ms"].as_i64().unwrap() - t["start_ms"].as_i64().unwrap();
        assert!((2000..=4500).contains(&span), "{site} {kind}: {span} ms recorded in about 3 s");
        assert!(t["units"].as_u64().unwrap() > 20, "{site} {kind}: {t}");
        let bytes = std::fs::read(dirs[0].join(t["file"].as_str().unwrap())).unwrap();
        assert_eq!(&bytes[..4], magic);
        assert_eq!(bytes.len() as u64, t["bytes"].as_u64().unwrap());
    }

    // The chair lists and downloads recordings; a ward cannot.
    let id = index["id"].as_str().unwrap();
    let file = tracks[0]["file"].as_str().unwrap();
    let (chair, ward) = (bridge.site_token("hq").await, bridge.site_token("hang-gai").await);
    let get = |path: String, token: String| {
        let cert = bridge.cert_pem();
        let port = bridge.port;
        async move { https_request(&cert, port, "GET", &path, &[("Authorization", &format!("Bearer {token}"))], "").await }
    };
    let (status, list) = get("/api/recordings".into(), chair.clone()).await;
    assert_eq!(status, 200);
    assert!(list.contains(id), "{list}");
    let auth = format!("Bearer {chair}");
    let (status, downloaded) =
        https_request_bytes(&bridge.cert_pem(), bridge.port, "GET", &format!("/api/recordings/{id}/{file}"), &[("Authorization", &auth)], "").await;
    assert_eq!(status, 200);
    assert_eq!(downloaded, std::fs::read(dirs[0].join(file)).unwrap(), "the download is the file");
    let (status, _) = get(format!("/api/recordings/{id}/..%2Fdiemcau.sqlite3"), chair.clone()).await;
    assert_eq!(status, 404, "only listed files are served");
    let (status, _) = get("/api/recordings".into(), ward).await;
    assert_eq!(status, 403, "a ward's session does not list recordings");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_fails_the_recording_with_an_alarm_and_the_meeting_goes_on() {
    // Recordings go to a 256 KiB file system of the bridge's own (a private mount namespace).
    let (config, data) = TestBridge::config_with("[recording]\ndir = \"REC\"\nmin_free_mb = 0\n");
    let rec = data.join("rec");
    std::fs::create_dir_all(&rec).unwrap();
    let text = std::fs::read_to_string(&config).unwrap().replace("\"REC\"", &format!("{:?}", rec.display().to_string()));
    std::fs::write(&config, text).unwrap();
    let mount = "mount -t tmpfs -o size=256k tmpfs \"$0\" && exec \"$@\"";
    let rec_arg = rec.display().to_string();
    let unshare: &[&str] = if unsafe { libc::geteuid() } == 0 { &["unshare", "-m"] } else { &["unshare", "-r", "-m"] };
    let wrapper: Vec<&str> = unshare.iter().copied().chain(["sh", "-c", mount, &rec_arg]).collect();
    let bridge = TestBridge::start_wrapped(&wrapper, config, data);

    let hq = Sim::join(&bridge.cert_pem(), bridge.port, "hq", bridge.key("hq")).await;
    let ward = Sim::join_at_rate(&bridge.cert_pem(), bridge.port, "hang-gai", bridge.key("hang-gai"), 100).await;
    let listener = Sim::join(&bridge.cert_pem(), bridge.port, "cua-nam", bridge.key("cua-nam")).await;
    media_flowing(&listener, "hang-gai").await;

    hq.send(json!({"type": "start_recording"}));
    recording_state(&listener, Some("recording")).await;
    // About 150 kB/s of media fills 256 KiB within seconds.
    recording_state(&listener, Some("failed")).await;
    let state = latest_state(&hq);
    assert!(state["recording"]["error"].as_str().is_some_and(|e| !e.is_empty()), "{state}");
    let alarm = wait_until(Duration::from_secs(10), "the recording_failed alarm", || async {
        let (_, v) = bridge.tech("GET", "/api/tech", "").await;
        v["alarms"].as_array().and_then(|a| a.iter().find(|x| x["alarm"] == "recording_failed").cloned())
    })
    .await;
    assert_eq!(alarm["site"], "@bridge", "{alarm}");

    // Every site still receives every other site.
    media_flowing(&listener, "hang-gai").await;
    media_flowing(&listener, "hq").await;
    media_flowing(&hq, "hang-gai").await;
    media_flowing(&ward, "cua-nam").await;

    // The chair acknowledges: the indicator and the alarm go.
    hq.send(json!({"type": "stop_recording"}));
    recording_state(&listener, None).await;
    wait_until(Duration::from_secs(10), "the alarm to clear", || async {
        let (_, v) = bridge.tech("GET", "/api/tech", "").await;
        v["alarms"].as_array().is_some_and(|a| !a.iter().any(|x| x["alarm"] == "recording_failed")).then_some(())
    })
    .await;
    assert!(bridge.log_text().contains("recording failed"), "the log says what happened");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recording_does_not_start_without_enough_free_disk() {
    // 100 TB must stay free: no disk here has that.
    let (config, data) = TestBridge::config_with("[recording]\nmin_free_mb = 100000000\n");
    let bridge = TestBridge::start_with(config, data);
    let hq = Sim::join(&bridge.cert_pem(), bridge.port, "hq", bridge.key("hq")).await;
    hq.send(json!({"type": "start_recording"}));
    wait_until(Duration::from_secs(5), "start_recording to be refused", || async { error_for(&hq, "start_recording") }).await;
    assert_eq!(error_for(&hq, "start_recording").as_deref(), Some("recording_no_space"));
    assert!(latest_state(&hq)["recording"].is_null());
}

/// The frames of an IVF file: (count, last timestamp in 1/90 000 s); `None` unless the file
/// is whole (every frame complete up to the end).
fn ivf_frames(bytes: &[u8]) -> Option<(u64, u64)> {
    if bytes.len() < 32 || &bytes[..4] != b"DKIF" {
        return None;
    }
    let (mut at, mut frames, mut last) = (32usize, 0u64, 0u64);
    while at < bytes.len() {
        let size = u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?) as usize;
        last = u64::from_le_bytes(bytes.get(at + 4..at + 12)?.try_into().ok()?);
        bytes.get(at + 12..at + 12 + size)?;
        at += 12 + size;
        frames += 1;
    }
    Some((frames, last))
}

fn index_of(dir: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_loses_at_most_the_last_second_and_the_meeting_and_its_recording_carry_on() {
    let mut bridge = TestBridge::start_default();
    let hq = Sim::join(&bridge.cert_pem(), bridge.port, "hq", bridge.key("hq")).await;
    let ward = Sim::join(&bridge.cert_pem(), bridge.port, "hang-gai", bridge.key("hang-gai")).await;
    media_flowing(&hq, "hang-gai").await;
    hq.send(json!({"type": "start_conference"}));
    let conference = wait_until(Duration::from_secs(10), "the conference to start", || async { latest_state(&ward)["meeting"]["id"].as_i64() }).await;
    hq.send(json!({"type": "start_recording"}));
    recording_state(&ward, Some("recording")).await;
    // The length of the recording before the crash is the scenario's.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let killed_ms = diemcau::store::now_ms();
    bridge.kill_and_restart();

    // The interrupted recording: closed at start, and its files hold all but the last second.
    let root = bridge.data.join("recordings");
    let first = recording_dirs(&root).remove(0);
    let index = wait_until(Duration::from_secs(10), "the interrupted recording to be closed", || async {
        let index = index_of(&first);
        index["stopped_ms"].is_i64().then_some(index)
    })
    .await;
    assert_eq!(index["complete"], false, "{index}");
    assert!(index["error"].as_str().unwrap().starts_with("interrupted"), "{index}");
    let tracks = index["tracks"].as_array().unwrap();
    for (site, kind) in [("hq", "video"), ("hang-gai", "video"), ("hq", "audio"), ("hang-gai", "audio")] {
        let t = tracks.iter().find(|t| t["site"] == site && t["kind"] == kind).unwrap_or_else(|| panic!("no {site} {kind} in {index}"));
        let bytes = std::fs::read(first.join(t["file"].as_str().unwrap())).unwrap();
        assert_eq!(bytes.len() as u64, t["bytes"].as_u64().unwrap(), "{site} {kind}: the index counts the file's bytes");
        let units = t["units"].as_u64().unwrap();
        if kind == "video" {
            let (frames, last_pts) = ivf_frames(&bytes).unwrap_or_else(|| panic!("{site} video is not a whole IVF file"));
            assert!(frames >= units && units > 20, "{site} video: {frames} frames in the file, {units} in the index");
            let kept_ms = t["start_ms"].as_i64().unwrap() + (last_pts / 90) as i64;
            let lost_ms = killed_ms - kept_ms;
            println!("{site} video: {frames} frames kept; the file ends {lost_ms} ms before the kill");
            assert!(lost_ms < 2_000, "{site} video: {lost_ms} ms lost (a checkpoint each second, and the media path's own delay)");
        } else {
            let pages = bytes.windows(4).filter(|w| w == b"OggS").count() as u64;
            assert!(pages >= units + 2 - 1 && units > 50, "{site} audio: {pages} Ogg pages, {units} packets in the index");
        }
    }

    // The sites come back: the conference carries on, and so does the recording (a new
    // segment), and a ward's attendance is taken.
    let hq = Sim::join(&bridge.cert_pem(), bridge.port, "hq", bridge.key("hq")).await;
    let ward = Sim::join(&bridge.cert_pem(), bridge.port, "hang-gai", bridge.key("hang-gai")).await;
    media_flowing(&ward, "hq").await;
    let state = latest_state(&ward);
    assert_eq!(state["meeting"]["id"].as_i64(), Some(conference), "{state}");
    recording_state(&ward, Some("recording")).await;
    ward.send(json!({"type": "attendance", "attendees": "Phường Hàng Gai", "headcount": 12}));
    let db = bridge.data.join("diemcau.sqlite3");
    wait_until(Duration::from_secs(10), "the attendance to be stored for the conference", || {
        let db = db.clone();
        async move {
            let conn = rusqlite::Connection::open(&db).ok()?;
            conn.query_row("SELECT headcount FROM attendance WHERE conference_id = ?1 AND site_id = 'hang-gai'", [conference], |r| r.get::<_, i64>(0)).ok()
        }
    })
    .await;
    assert!(error_for(&ward, "attendance").is_none(), "attendance refused: {:?}", error_for(&ward, "attendance"));
    tokio::time::sleep(Duration::from_secs(2)).await;
    hq.send(json!({"type": "end_conference"}));
    recording_state(&ward, None).await;

    let dirs = recording_dirs(&root);
    assert_eq!(dirs.len(), 2, "the interrupted recording and its continuation");
    let second = index_of(&dirs[1]);
    assert_eq!((second["complete"].as_bool(), second["conference_id"].as_i64()), (Some(true), Some(conference)), "{second}");
    assert!(second["tracks"].as_array().unwrap().iter().any(|t| t["site"] == "hang-gai" && t["kind"] == "video" && t["units"].as_u64() > Some(10)), "{second}");
    let conn = rusqlite::Connection::open(&db).unwrap();
    let restarted: i64 =
        conn.query_row("SELECT COUNT(*) FROM events WHERE conference_id = ?1 AND kind = 'bridge_restarted'", [conference], |r| r.get(0)).unwrap();
    assert_eq!(restarted, 1, "the restart is in the conference's event log");
}
