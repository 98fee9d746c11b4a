//! Votes, written notices and requests for help, decided by the server: the chair opens and
//! closes a vote, each bridge point enters its room's counts (bounded by its headcount) and
//! may correct them until the close, the result reaches the event log; a notice reaches the
//! site it is for and stays until that site reads it; a site's call for help shows on /tech
//! until a technician handles it. Everything out of order gets a typed refusal and changes
//! nothing.

mod common;

use common::ws::{state_where, Client};
use common::TestBridge;
use serde_json::{json, Value};
use std::time::Duration;

async fn joined(bridge: &TestBridge, id: &str) -> Client {
    let mut c = Client::connect(&bridge.cert_pem(), bridge.port).await;
    let r = c.join(id, bridge.key(id)).await;
    assert_eq!(r["type"], "joined", "{id}: {r}");
    c
}

/// Sends `msg`; the refusal's code if one comes within 1.5 s (accepted commands only change
/// the state).
async fn refusal(c: &mut Client, msg: Value) -> Option<String> {
    c.send(msg).await;
    let deadline = tokio::time::Instant::now() + Duration::from_millis(1500);
    loop {
        match tokio::time::timeout_at(deadline, c.recv()).await {
            Ok(Some(v)) if v["type"] == "error" => return v["code"].as_str().map(str::to_owned),
            Ok(Some(_)) => continue,
            Ok(None) | Err(_) => return None,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vote_is_opened_counted_per_room_corrected_and_closed_by_the_rules() {
    let bridge = TestBridge::start_default();
    let mut hq = joined(&bridge, "hq").await;
    let mut gai = joined(&bridge, "hang-gai").await;
    let mut nam = joined(&bridge, "cua-nam").await;

    // Out of order: nothing open yet, and a ward cannot open or close.
    assert_eq!(refusal(&mut gai, json!({"type": "vote_counts", "vote": 1, "counts": [1, 0, 0]})).await.as_deref(), Some("vote_not_open"));
    assert_eq!(refusal(&mut hq, json!({"type": "close_vote"})).await.as_deref(), Some("vote_not_open"));
    assert_eq!(refusal(&mut gai, json!({"type": "open_vote", "question": "Q"})).await.as_deref(), Some("not_chair"));
    assert_eq!(refusal(&mut hq, json!({"type": "open_vote", "question": " "})).await.as_deref(), Some("invalid_vote"));

    hq.send(json!({"type": "start_conference"})).await;
    hq.send(json!({"type": "open_vote", "question": "Thông qua nghị quyết quý IV?"})).await;
    let s = state_where(&mut gai, "the vote open", |s| s["vote"]["open"] == true).await;
    let vote = s["vote"]["id"].as_u64().unwrap();
    assert_eq!(s["vote"]["options"], json!(["Tán thành", "Không tán thành", "Ý kiến khác"]));
    assert_eq!(refusal(&mut hq, json!({"type": "open_vote", "question": "Một nữa"})).await.as_deref(), Some("vote_open"));

    // A room's counts need its headcount, may not exceed it, and need one count per option.
    assert_eq!(refusal(&mut gai, json!({"type": "vote_counts", "vote": vote, "counts": [10, 1, 0]})).await.as_deref(), Some("headcount_needed"));
    gai.send(json!({"type": "attendance", "attendees": "Phường Hàng Gai", "headcount": 12})).await;
    nam.send(json!({"type": "attendance", "attendees": "Phường Cửa Nam", "headcount": 9})).await;
    assert_eq!(refusal(&mut gai, json!({"type": "vote_counts", "vote": vote, "counts": [12, 1, 0]})).await.as_deref(), Some("over_headcount"));
    assert_eq!(refusal(&mut gai, json!({"type": "vote_counts", "vote": vote, "counts": [10, 1]})).await.as_deref(), Some("invalid_vote"));
    assert_eq!(refusal(&mut gai, json!({"type": "vote_counts", "vote": vote + 1, "counts": [10, 1, 0]})).await.as_deref(), Some("vote_not_open"));
    gai.send(json!({"type": "vote_counts", "vote": vote, "counts": [10, 1, 0]})).await;
    nam.send(json!({"type": "vote_counts", "vote": vote, "counts": [7, 0, 2]})).await;
    // Hàng Gai recounts: its correction replaces its first counts.
    gai.send(json!({"type": "vote_counts", "vote": vote, "counts": [11, 1, 0]})).await;
    let s = state_where(&mut hq, "both rooms counted, with the correction", |s| s["vote"]["totals"] == json!([18, 1, 2])).await;
    let tallies = s["vote"]["tallies"].as_array().unwrap();
    assert_eq!(tallies.len(), 2, "{s}");
    assert!(tallies.iter().any(|t| t["site"] == "hang-gai" && t["counts"] == json!([11, 1, 0])), "{s}");

    assert_eq!(refusal(&mut gai, json!({"type": "close_vote"})).await.as_deref(), Some("not_chair"));
    hq.send(json!({"type": "close_vote"})).await;
    let s = state_where(&mut gai, "the vote closed", |s| s["vote"]["open"] == false).await;
    assert_eq!(s["vote"]["totals"], json!([18, 1, 2]), "the result stays shown");
    assert_eq!(refusal(&mut nam, json!({"type": "vote_counts", "vote": vote, "counts": [9, 0, 0]})).await.as_deref(), Some("vote_not_open"));

    // The result is in the event log, and so in the minutes.
    let id = s["meeting"]["id"].as_i64().unwrap();
    hq.send(json!({"type": "end_conference"})).await;
    let minutes = common::wait_until(Duration::from_secs(10), "the vote in the minutes", || async {
        let v = bridge.get_json(&format!("/api/conferences/{id}/minutes")).await;
        (v["votes"].as_array().is_some_and(|a| a.len() == 1) && !v["votes"][0]["closed_ms"].is_null()).then_some(v)
    })
    .await;
    assert_eq!(minutes["votes"][0]["question"], "Thông qua nghị quyết quý IV?");
    assert_eq!(minutes["votes"][0]["totals"], json!([18, 1, 2]), "{minutes}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notice_stays_until_its_site_reads_it_and_a_call_for_help_until_a_technician_handles_it() {
    let bridge = TestBridge::start_default();
    let mut hq = joined(&bridge, "hq").await;
    let mut gai = joined(&bridge, "hang-gai").await;
    let mut nam = joined(&bridge, "cua-nam").await;

    assert_eq!(refusal(&mut gai, json!({"type": "send_notice", "text": "x"})).await.as_deref(), Some("not_chair"));
    assert_eq!(refusal(&mut hq, json!({"type": "send_notice", "text": ""})).await.as_deref(), Some("invalid_notice"));
    assert_eq!(refusal(&mut hq, json!({"type": "send_notice", "site": "nowhere", "text": "x"})).await.as_deref(), Some("site_unknown"));
    hq.send(json!({"type": "send_notice", "site": "hang-gai", "text": "Điểm cầu Hàng Gai đề nghị bật micro"})).await;
    let s = state_where(&mut gai, "the notice", |s| s["notices"].as_array().is_some_and(|n| !n.is_empty())).await;
    let n = &s["notices"][0];
    assert_eq!((n["to"].as_str(), n["from"].as_str(), n["text"].as_str()), (Some("hang-gai"), Some("chair"), Some("Điểm cầu Hàng Gai đề nghị bật micro")));
    let notice = n["id"].as_u64().unwrap();
    assert_eq!(refusal(&mut nam, json!({"type": "ack_notice", "notice": notice})).await.as_deref(), Some("unknown_notice"), "not for Cửa Nam");
    gai.send(json!({"type": "ack_notice", "notice": notice})).await;
    state_where(&mut hq, "the notice read", |s| s["notices"][0]["acked"] == json!(["hang-gai"])).await;

    // A technician's notice to every site.
    let (status, reply) = bridge.tech("POST", "/api/tech/notice", r#"{"text": "Kiểm tra âm thanh lúc 7 giờ 45"}"#).await;
    assert_eq!(status, 200, "{reply}");
    let s = state_where(&mut nam, "the technician's notice", |s| s["notices"].as_array().is_some_and(|n| n.len() == 2)).await;
    assert_eq!((s["notices"][1]["from"].as_str(), s["notices"][1]["to"].is_null()), (Some("technician"), true));
    let (status, reply) = bridge.tech("POST", "/api/tech/notice", r#"{"text": "   "}"#).await;
    assert_eq!((status, reply["code"].as_str()), (400, Some("invalid_notice")));

    // Cửa Nam calls a technician: /tech lists it until it is handled.
    nam.send(json!({"type": "ask_help", "text": "Không nghe thấy Trụ sở"})).await;
    let help = common::wait_until(Duration::from_secs(10), "the call for help on /tech", || async {
        let (_, v) = bridge.tech("GET", "/api/tech", "").await;
        v["help"].as_array().and_then(|h| h.first().cloned())
    })
    .await;
    assert_eq!((help["site"].as_str(), help["text"].as_str()), (Some("cua-nam"), Some("Không nghe thấy Trụ sở")));
    state_where(&mut nam, "its own call shown", |s| s["sites"].as_array().unwrap().iter().any(|x| x["id"] == "cua-nam" && x["help"].is_object())).await;
    let (status, _) = bridge.tech("POST", "/api/tech/action", r#"{"site": "cua-nam", "action": "help_done"}"#).await;
    assert_eq!(status, 200);
    state_where(&mut nam, "the call handled", |s| s["sites"].as_array().unwrap().iter().any(|x| x["id"] == "cua-nam" && x["help"].is_null())).await;
    let (status, reply) = bridge.tech("POST", "/api/tech/action", r#"{"site": "cua-nam", "action": "help_done"}"#).await;
    assert_eq!((status, reply["code"].as_str()), (409, Some("no_help_request")));
}
