//! Chairing, decided and enforced by the server: mutes stop media at the bridge, the floor
//! unmutes and re-mutes atomically, and a ward cannot use the chair's commands.

mod common;

use common::sim::Sim;
use common::ws::{state_where, Client};
use common::{site, wait_until, TestBridge};
use serde_json::{json, Value};
use std::time::Duration;

fn latest_state(sim: &Sim) -> Value {
    sim.messages.lock().unwrap().iter().rev().find(|m| m["type"] == "state").cloned().unwrap_or(Value::Null)
}

/// Sends a command and returns the error reply if one arrives within 1.5 s (a refusal is
/// answered at once; an accepted command only changes the state everyone receives).
async fn refused(c: &mut Client, msg: Value) -> Option<Value> {
    c.send(msg).await;
    let deadline = tokio::time::Instant::now() + Duration::from_millis(1500);
    loop {
        match tokio::time::timeout_at(deadline, c.recv()).await {
            Ok(Some(v)) if v["type"] == "error" => return Some(v),
            Ok(Some(_)) => continue,
            Ok(None) | Err(_) => return None,
        }
    }
}

/// Waits until `rx` has received `extra` more video packets from `from`, then returns how
/// many audio packets from `from` arrived meanwhile.
async fn audio_during_video(rx: &Sim, from: &str, extra: u64) -> u64 {
    let (a0, v0) = (rx.received(from, "audio"), rx.received(from, "video"));
    wait_until(Duration::from_secs(20), "video to keep flowing", || async { (rx.received(from, "video") >= v0 + extra).then_some(()) }).await;
    rx.received(from, "audio") - a0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chair_mute_stops_a_sites_audio_at_the_server_and_giving_the_floor_restores_it() {
    chair_mute_stops_a_sites_audio_at_the_server_and_giving_the_floor_restores_it_with(TestBridge::start_default()).await;
}

/// Mute is the router's decision, whichever engine reads the packets.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chair_mute_is_enforced_on_the_webrtc_engine_too() {
    chair_mute_stops_a_sites_audio_at_the_server_and_giving_the_floor_restores_it_with(TestBridge::start_default_on("webrtc")).await;
}

async fn chair_mute_stops_a_sites_audio_at_the_server_and_giving_the_floor_restores_it_with(bridge: TestBridge) {
    let hq = Sim::join(&bridge.cert_pem(), bridge.port, "hq", bridge.key("hq")).await;
    let ward = Sim::join(&bridge.cert_pem(), bridge.port, "hang-gai", bridge.key("hang-gai")).await;
    let listener = Sim::join(&bridge.cert_pem(), bridge.port, "cua-nam", bridge.key("cua-nam")).await;
    wait_until(Duration::from_secs(30), "hang-gai's media at cua-nam", || async {
        (listener.received("hang-gai", "audio") > 20 && listener.received("hang-gai", "video") > 10).then_some(())
    })
    .await;

    hq.send(json!({"type": "mute_site", "site": "hang-gai", "muted": true}));
    wait_until(Duration::from_secs(5), "state to show hang-gai hard-muted", || async {
        (site(&latest_state(&hq), "hang-gai")["hard_muted"] == true).then_some(())
    })
    .await;
    audio_during_video(&listener, "hang-gai", 10).await; // packets already in flight drain here
    assert_eq!(audio_during_video(&listener, "hang-gai", 40).await, 0, "a hard-muted site's audio is not forwarded");
    assert_eq!(audio_during_video(&hq, "hang-gai", 40).await, 0, "not to the chair either");
    assert!(listener.received("hq", "audio") > 0, "other sites' audio still flows");

    // The ward cannot lift the chair's mute itself.
    ward.send(json!({"type": "mute", "audio": false}));
    wait_until(Duration::from_secs(5), "hard_muted refusal", || async {
        ward.has_message(|m| m["type"] == "error" && m["code"] == "hard_muted").then_some(())
    })
    .await;

    // Giving the floor unmutes it in one step.
    hq.send(json!({"type": "give_floor", "site": "hang-gai"}));
    let a = listener.received("hang-gai", "audio");
    wait_until(Duration::from_secs(10), "hang-gai's audio to flow again", || async { (listener.received("hang-gai", "audio") >= a + 25).then_some(()) }).await;
    let s = latest_state(&hq);
    assert_eq!(s["floor"]["holders"][0]["site"], "hang-gai");
    assert_eq!(site(&s, "hang-gai")["hard_muted"], false);

    // Taking it back restores the chair's mute.
    hq.send(json!({"type": "revoke_floor", "site": "hang-gai"}));
    wait_until(Duration::from_secs(5), "hang-gai hard-muted again", || async {
        let s = latest_state(&hq);
        (site(&s, "hang-gai")["hard_muted"] == true && s["floor"]["holders"].as_array().unwrap().is_empty()).then_some(())
    })
    .await;
    audio_during_video(&listener, "hang-gai", 10).await;
    assert_eq!(audio_during_video(&listener, "hang-gai", 40).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_site_muting_itself_stops_its_audio_and_camera_at_the_server() {
    let bridge = TestBridge::start_default();
    let ward = Sim::join(&bridge.cert_pem(), bridge.port, "hang-bai", bridge.key("hang-bai")).await;
    let listener = Sim::join(&bridge.cert_pem(), bridge.port, "hq", bridge.key("hq")).await;
    wait_until(Duration::from_secs(30), "hang-bai's media at hq", || async {
        (listener.received("hang-bai", "audio") > 20 && listener.received("hang-bai", "video") > 10).then_some(())
    })
    .await;
    ward.send(json!({"type": "mute", "audio": true}));
    wait_until(Duration::from_secs(5), "state to show hang-bai muted", || async {
        (site(&latest_state(&ward), "hang-bai")["audio_muted"] == true).then_some(())
    })
    .await;
    audio_during_video(&listener, "hang-bai", 10).await;
    assert_eq!(audio_during_video(&listener, "hang-bai", 40).await, 0);

    ward.send(json!({"type": "mute", "audio": false, "video": true}));
    let (a, _) = (listener.received("hang-bai", "audio"), ());
    wait_until(Duration::from_secs(10), "audio back", || async { (listener.received("hang-bai", "audio") >= a + 25).then_some(()) }).await;
    let v = listener.received("hang-bai", "video");
    let a = listener.received("hang-bai", "audio");
    wait_until(Duration::from_secs(10), "50 more audio packets", || async { (listener.received("hang-bai", "audio") >= a + 50).then_some(()) }).await;
    assert!(listener.received("hang-bai", "video") <= v + 3, "camera off: no video forwarded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ward_cannot_use_the_chairs_commands_and_nothing_changes() {
    let bridge = TestBridge::start_default();
    let mut hq = Client::connect(&bridge.cert_pem(), bridge.port).await;
    assert_eq!(hq.join("hq", bridge.key("hq")).await["type"], "joined");
    let mut ward = Client::connect(&bridge.cert_pem(), bridge.port).await;
    assert_eq!(ward.join("hang-gai", bridge.key("hang-gai")).await["type"], "joined");
    let before = bridge.get_json("/api/health").await["sites"].clone();
    for msg in [
        json!({"type": "give_floor", "site": "hang-gai"}),
        json!({"type": "grant_floor", "request": 1}),
        json!({"type": "deny_floor", "request": 1}),
        json!({"type": "revoke_floor", "site": "hang-gai"}),
        json!({"type": "mute_site", "site": "hq", "muted": true}),
        json!({"type": "mute_all", "muted": true}),
        json!({"type": "set_layout", "layout": "grid"}),
        json!({"type": "set_agenda", "items": []}),
        json!({"type": "next_item"}),
        json!({"type": "lock", "locked": true}),
    ] {
        let r = refused(&mut ward, msg.clone()).await.unwrap_or_else(|| panic!("{msg} was not refused"));
        assert_eq!(r["code"], "not_chair", "{msg} → {r}");
        assert_eq!(r["request"], msg["type"]);
    }
    assert_eq!(bridge.get_json("/api/health").await["sites"], before, "nothing changed");
    // A ward may still ask for the floor.
    assert!(refused(&mut ward, json!({"type": "request_floor", "topic": "Ý kiến về báo cáo"})).await.is_none());
    loop {
        let s = hq.recv_type("state").await;
        if let Some(q) = s["floor"]["queue"].as_array().and_then(|q| q.first()) {
            assert_eq!((q["site"].as_str(), q["position"].as_u64(), q["topic"].as_str()), (Some("hang-gai"), Some(1), Some("Ý kiến về báo cáo")));
            break;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_floor_request_is_granted_from_the_queue_and_released_by_its_holder() {
    let bridge = TestBridge::start_default();
    let mut hq = Client::connect(&bridge.cert_pem(), bridge.port).await;
    assert_eq!(hq.join("hq", bridge.key("hq")).await["type"], "joined");
    let mut ward = Client::connect(&bridge.cert_pem(), bridge.port).await;
    assert_eq!(ward.join("trang-tien", bridge.key("trang-tien")).await["type"], "joined");
    ward.send(json!({"type": "request_floor"})).await;
    let requested = hq.recv_type("floor").await;
    assert_eq!((requested["event"].as_str(), requested["site"].as_str()), (Some("requested"), Some("trang-tien")));
    assert_eq!(refused(&mut ward, json!({"type": "request_floor"})).await.unwrap()["code"], "already_queued");
    hq.send(json!({"type": "grant_floor", "request": requested["request"]})).await;
    let granted = hq.recv_type("floor").await;
    assert_eq!(granted["event"], "granted");
    assert_eq!(refused(&mut hq, json!({"type": "grant_floor", "request": requested["request"]})).await.unwrap()["code"], "not_pending");
    ward.send(json!({"type": "release_floor"})).await;
    assert_eq!(hq.recv_type("floor").await["event"], "released");
    assert_eq!(refused(&mut ward, json!({"type": "release_floor"})).await.unwrap()["code"], "not_holder");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_conference_refuses_new_sites_but_not_the_chair() {
    let bridge = TestBridge::start_default();
    let mut hq = Client::connect(&bridge.cert_pem(), bridge.port).await;
    assert_eq!(hq.join("hq", bridge.key("hq")).await["type"], "joined");
    assert!(refused(&mut hq, json!({"type": "lock", "locked": true})).await.is_none());
    let mut late = Client::connect(&bridge.cert_pem(), bridge.port).await;
    let r = late.join("hang-dao", bridge.key("hang-dao")).await;
    assert_eq!(r["code"], "conference_locked", "{r}");
    assert!(refused(&mut hq, json!({"type": "lock", "locked": false})).await.is_none());
    assert_eq!(late.join("hang-dao", bridge.key("hang-dao")).await["type"], "joined");
}

/// The default config with a short seat hold, for tests of what happens after it.
fn bridge_with_seat_hold(seconds: u32) -> TestBridge {
    let data = common::scratch_dir("bridge");
    let default = std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/default.toml")).unwrap();
    let config = data.join("config.toml");
    std::fs::write(&config, default.replacen("seat_grace_s = 60", &format!("seat_grace_s = {seconds}"), 1)).unwrap();
    TestBridge::start_with(config, data)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_meeting_takes_its_own_wards_back_and_the_chair_admits_a_newcomer() {
    let bridge = bridge_with_seat_hold(1);
    let cert = bridge.cert_pem();
    let mut hq = Client::connect(&cert, bridge.port).await;
    assert_eq!(hq.join("hq", bridge.key("hq")).await["type"], "joined");
    let mut ward = Client::connect(&cert, bridge.port).await;
    assert_eq!(ward.join("hang-gai", bridge.key("hang-gai")).await["type"], "joined");
    hq.send(json!({"type": "lock", "locked": true})).await;
    state_where(&mut hq, "locked", |s| s["locked"] == true).await;

    // The ward's PC goes off (no `leave`) for longer than the seat hold.
    drop(ward);
    state_where(&mut hq, "hang-gai's seat released", |s| site(s, "hang-gai")["present"] == false && site(s, "hang-gai")["reconnecting"] == false).await;
    // It comes back in directly: it belongs to this meeting.
    let mut ward = Client::connect(&cert, bridge.port).await;
    assert_eq!(ward.join("hang-gai", bridge.key("hang-gai")).await["type"], "joined", "a ward of the meeting gets back in");

    // A site that was not in the meeting waits; the chair sees it and lets it in.
    let mut late = Client::connect(&cert, bridge.port).await;
    let refused = late.join("hang-dao", bridge.key("hang-dao")).await;
    assert_eq!(refused["code"], "conference_locked");
    state_where(&mut hq, "hang-dao waiting", |s| site(s, "hang-dao")["waiting"] == true).await;
    // A ward may not admit anyone.
    assert_eq!(refused_reply(&mut ward, json!({"type": "admit", "site": "hang-dao"})).await.map(|e| e["code"].clone()), Some(json!("not_chair")));
    hq.send(json!({"type": "admit", "site": "hang-dao"})).await;
    state_where(&mut hq, "hang-dao no longer waiting", |s| site(s, "hang-dao").get("waiting").is_none()).await;
    let mut late = Client::connect(&cert, bridge.port).await;
    assert_eq!(late.join("hang-dao", bridge.key("hang-dao")).await["type"], "joined", "admitted by the chair");
}

async fn refused_reply(c: &mut Client, msg: Value) -> Option<Value> {
    refused(c, msg).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn granting_a_request_while_another_ward_speaks_hands_the_floor_over_and_says_so() {
    let bridge = TestBridge::start_default();
    let cert = bridge.cert_pem();
    let mut hq = Client::connect(&cert, bridge.port).await;
    hq.join("hq", bridge.key("hq")).await;
    let mut a = Client::connect(&cert, bridge.port).await;
    a.join("hang-gai", bridge.key("hang-gai")).await;
    let mut b = Client::connect(&cert, bridge.port).await;
    b.join("cua-nam", bridge.key("cua-nam")).await;
    hq.send(json!({"type": "give_floor", "site": "hang-gai"})).await;
    state_where(&mut hq, "hang-gai speaking", |s| s["floor"]["holders"][0]["site"] == "hang-gai").await;
    b.send(json!({"type": "request_floor", "topic": "Ý kiến về ngân sách"})).await;
    let s = state_where(&mut hq, "cua-nam queued", |s| s["floor"]["queue"][0]["site"] == "cua-nam").await;
    let request = s["floor"]["queue"][0]["request"].clone();
    hq.send(json!({"type": "grant_floor", "request": request})).await;
    state_where(&mut hq, "cua-nam speaking", |s| s["floor"]["holders"][0]["site"] == "cua-nam").await;
    // The ward that was speaking is told its floor ended.
    loop {
        let m = a.recv().await.expect("hang-gai's socket open");
        if m["type"] == "floor" && m["event"] == "revoked" && m["site"] == "hang-gai" {
            break;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_absent_wards_speech_does_not_stop_the_programme() {
    let bridge = TestBridge::start_default();
    let cert = bridge.cert_pem();
    let mut hq = Client::connect(&cert, bridge.port).await;
    hq.join("hq", bridge.key("hq")).await;
    let mut gai = Client::connect(&cert, bridge.port).await;
    gai.join("hang-gai", bridge.key("hang-gai")).await;
    // The seed programme: report, Hàng Gai's speech, Cửa Nam's speech (absent), directive.
    for expected in [0, 1, 2, 3] {
        hq.send(json!({"type": "next_item"})).await;
        let s = state_where(&mut hq, "the next item", |s| s["agenda"]["current"]["index"] == expected).await;
        let absent = s["agenda"]["current"]["speaker_absent"] == true;
        assert_eq!(absent, expected == 2, "item {expected}: only Cửa Nam's speech has its speaker absent");
        let holder = s["floor"]["holders"][0]["site"].clone();
        assert_eq!(holder, if expected == 1 { json!("hang-gai") } else { Value::Null }, "item {expected}");
    }
}
