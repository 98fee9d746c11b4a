//! Meeting records: a scripted meeting (joins, a reconnect, three floor grants of known length, a
//! denied request, programme items, attendance) produces minutes whose numbers match the
//! script within a second, in JSON, CSV and HTML; they survive a server restart.

mod common;

use common::ws::Client;
use common::TestBridge;
use serde_json::{json, Value};
use std::time::Duration;

async fn joined(bridge: &TestBridge, id: &str) -> Client {
    let mut c = Client::connect(&bridge.cert_pem(), bridge.port).await;
    assert_eq!(c.join(id, bridge.key(id)).await["type"], "joined");
    c
}

async fn floor_event(c: &mut Client, event: &str) -> Value {
    loop {
        let m = c.recv_type("floor").await;
        if m["event"] == event {
            return m;
        }
    }
}

/// The scenario's own timing: how long a site holds the floor (not a wait for a condition).
async fn hold(seconds: f64) {
    tokio::time::sleep(Duration::from_secs_f64(seconds)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scripted_meeting_produces_minutes_that_match_the_script() {
    let mut bridge = TestBridge::start_default();
    let mut hq = joined(&bridge, "hq").await;
    hq.send(json!({"type": "start_conference"})).await;
    let mut ward = joined(&bridge, "hang-gai").await;
    let asker = joined(&bridge, "cua-nam").await;
    hq.send(json!({"type": "next_item"})).await; // the report
    ward.send(json!({"type": "attendance", "attendees": "Phường Hàng Gai, Phường Hàng Trống", "headcount": 12})).await;

    ward.send(json!({"type": "request_floor", "topic": "Ý kiến"})).await;
    let requested = floor_event(&mut hq, "requested").await;
    hq.send(json!({"type": "grant_floor", "request": requested["request"]})).await;
    floor_event(&mut hq, "granted").await;
    hold(2.0).await;
    hq.send(json!({"type": "revoke_floor", "site": "hang-gai"})).await;
    floor_event(&mut hq, "revoked").await;

    let mut asker = asker;
    asker.send(json!({"type": "request_floor"})).await;
    let second = floor_event(&mut hq, "requested").await;
    hq.send(json!({"type": "deny_floor", "request": second["request"]})).await;
    floor_event(&mut hq, "denied").await;
    drop(asker); // Cửa Nam's connection drops…
    let _asker = joined(&bridge, "cua-nam").await; // …and comes back.

    hq.send(json!({"type": "next_item"})).await; // Hàng Gai's speech: the floor goes to it
    floor_event(&mut hq, "granted").await;
    hold(1.5).await;
    hq.send(json!({"type": "revoke_floor", "site": "hang-gai"})).await;
    floor_event(&mut hq, "revoked").await;
    // A third speech: the chair gives Cửa Nam the floor directly.
    hq.send(json!({"type": "give_floor", "site": "cua-nam"})).await;
    floor_event(&mut hq, "granted").await;
    hold(1.0).await;
    hq.send(json!({"type": "revoke_floor", "site": "cua-nam"})).await;
    floor_event(&mut hq, "revoked").await;
    hq.send(json!({"type": "end_conference"})).await;
    hq.send(json!({"type": "ping"})).await;
    hq.recv_type("pong").await;

    let (status, list) = bridge.tech("GET", "/api/conferences", "").await;
    assert_eq!(status, 200);
    let id = list["conferences"][0]["id"].as_i64().unwrap();
    assert!(list["conferences"][0]["ended_ms"].is_i64());
    let check = |m: &Value| {
        let speakers = m["speakers"].as_array().unwrap();
        assert_eq!(speakers.len(), 4, "{m}");
        // HQ speaks in the report item; then the wards given the floor.
        assert_eq!(speakers[0]["item"], "Báo cáo tình hình thực hiện nhiệm vụ");
        for (s, (site, expected)) in speakers.iter().zip([("hq", 2.2), ("hang-gai", 2.0), ("hang-gai", 1.5), ("cua-nam", 1.0)]) {
            assert_eq!(s["site"], site);
            let secs = s["seconds"].as_f64().unwrap();
            assert!((secs - expected).abs() <= 1.0, "spoke {secs} s, script {expected} s");
        }
        let outcomes: Vec<_> = m["requests"].as_array().unwrap().iter().map(|r| r["outcome"].as_str().unwrap().to_string()).collect();
        assert_eq!(outcomes, ["granted", "denied"]);
        let att = |id: &str| m["attendance"].as_array().unwrap().iter().find(|a| a["site"] == id).unwrap().clone();
        assert_eq!(att("hang-gai")["headcount"], 12);
        assert_eq!(att("cua-nam")["reconnects"], 1);
        assert!(att("hq")["present_seconds"].as_f64().unwrap() >= 3.0);
        let programme = m["programme"].as_array().unwrap();
        assert_eq!(programme.len(), 2);
        assert_eq!(programme[0]["title"], "Báo cáo tình hình thực hiện nhiệm vụ");
        assert_eq!(programme[1]["planned_minutes"], 7);
        // The items the meeting never reached are listed as planned.
        let not_reached: Vec<_> = m["not_reached"].as_array().unwrap().iter().map(|p| p["title"].as_str().unwrap().to_string()).collect();
        assert_eq!(not_reached, ["Phát biểu của Cụm Cửa Nam", "Phát biểu chỉ đạo của đồng chí Bí thư Quận ủy"]);
        assert_eq!(m["requests"][0]["topic"], "Ý kiến");
    };
    let (_, m) = bridge.tech("GET", &format!("/api/conferences/{id}/minutes"), "").await;
    check(&m);

    let auth = format!("Bearer {}", bridge.tech_token().await);
    let (status, csv) = common::ws::https_request(
        &bridge.cert_pem(),
        bridge.port,
        "GET",
        &format!("/api/conferences/{id}/minutes?format=csv"),
        &[("Authorization", &auth)],
        "",
    )
    .await;
    assert_eq!(status, 200);
    assert!(csv.starts_with("section,site,item,start,end,seconds,detail") && csv.contains("speech,hang-gai"), "{csv}");
    // The chair's page signs in with HQ's key; its session cookie opens the printable minutes.
    let cookie = format!("diemcau_token={}", bridge.site_token("hq").await);
    let (status, html) =
        common::ws::https_request(&bridge.cert_pem(), bridge.port, "GET", &format!("/api/conferences/{id}/minutes?format=html"), &[("Cookie", &cookie)], "")
            .await;
    assert_eq!(status, 200, "the chair's session opens the printable minutes");
    assert!(html.contains("BIÊN BẢN HỘI NGHỊ TRỰC TUYẾN") && html.contains("Cụm Hàng Gai") && html.contains("không được chấp nhận"));
    let ward = format!("Bearer {}", bridge.site_token("hang-gai").await);
    let (status, _) =
        common::ws::https_request(&bridge.cert_pem(), bridge.port, "GET", &format!("/api/conferences/{id}/minutes"), &[("Authorization", &ward)], "").await;
    assert_eq!(status, 403, "a ward's session does not open the records");

    // The records survive a restart.
    drop(hq);
    bridge.kill_and_restart();
    let (_, list) = bridge.tech("GET", "/api/conferences", "").await;
    assert_eq!(list["conferences"][0]["id"].as_i64(), Some(id));
    let (_, m) = bridge.tech("GET", &format!("/api/conferences/{id}/minutes"), "").await;
    check(&m);
}
