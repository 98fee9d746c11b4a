//! The signalling contract over the real socket: refusals carry stable codes, bad input
//! changes nothing, a second join of a site takes it over, and leaving is seen by everyone.

mod common;

use common::sim::Sim;
use common::ws::Client;
use common::{wait_until, TestBridge};
use futures::SinkExt;
use serde_json::{json, Value};
use std::time::Duration;

async fn flowing(rx: &Sim, from: &str, at_least: u64) -> bool {
    rx.received(from, "audio") >= at_least && rx.received(from, "video") >= at_least
}

async fn presence(bridge: &TestBridge) -> Vec<(String, bool)> {
    let h = bridge.get_json("/api/health").await;
    h["sites"].as_array().unwrap().iter().map(|s| (s["id"].as_str().unwrap().to_string(), s["present"] == true)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_key_and_unknown_site_are_refused_with_codes() {
    let bridge = TestBridge::start_default();
    let (status, r) = common::ws::site_session(&bridge.cert_pem(), bridge.port, "hang-gai", bridge.key("hq")).await;
    assert_eq!((status, r["code"].as_str()), (401, Some("bad_key")), "{r}");
    let (status, r) = common::ws::site_session(&bridge.cert_pem(), bridge.port, "ba-dinh", "0123456789abcdef0123").await;
    assert_eq!((status, r["code"].as_str()), (404, Some("site_unknown")), "{r}");
    let mut c = Client::connect(&bridge.cert_pem(), bridge.port).await;
    let r = c.join_with_ticket("hang-gai", "dcj_0123456789abcdef").await;
    assert_eq!((r["type"].as_str(), r["code"].as_str(), r["request"].as_str()), (Some("error"), Some("token_invalid"), Some("join")));
    let r = c.join_with_ticket("ba-dinh", "dcj_0123456789abcdef").await;
    assert_eq!(r["code"], "site_unknown");
    // The same socket can still join properly afterwards.
    let r = c.join("hang-gai", bridge.key("hang-gai")).await;
    assert_eq!(r["type"], "joined");
    assert_eq!(r["site"], json!({"id": "hang-gai", "name": "Cụm Hàng Gai", "role": "site"}));
    let state = c.recv_type("state").await;
    assert_eq!(state["sites"].as_array().unwrap().len(), 6);
    assert_eq!(state["sites"][3]["present"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_typed_errors_and_the_other_sites_keep_receiving_media() {
    bad_input_gets_typed_errors_and_the_other_sites_keep_receiving_media_with(TestBridge::start_default()).await;
}

/// Broken SDP reaches webrtc-rs's parser (`engine = "webrtc"`): the same typed errors, nothing lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_on_the_webrtc_engine_too() {
    bad_input_gets_typed_errors_and_the_other_sites_keep_receiving_media_with(TestBridge::start_default_on("webrtc")).await;
}

async fn bad_input_gets_typed_errors_and_the_other_sites_keep_receiving_media_with(bridge: TestBridge) {
    let hq = Sim::join(&bridge.cert_pem(), bridge.port, "hq", bridge.key("hq")).await;
    let ward = Sim::join(&bridge.cert_pem(), bridge.port, "hang-gai", bridge.key("hang-gai")).await;
    wait_until(Duration::from_secs(30), "media to flow both ways", || async {
        (flowing(&hq, "hang-gai", 10).await && flowing(&ward, "hq", 10).await).then_some(())
    })
    .await;
    let before = presence(&bridge).await;

    // A stranger that never joined.
    let mut stranger = Client::connect(&bridge.cert_pem(), bridge.port).await;
    let cases: Vec<(String, &str)> = vec![
        ("{\"type\":\"join\",".into(), "bad_json"),
        ("[\"join\"]".into(), "invalid_message"),
        ("{\"type\":\"join\",\"site\":42,\"ticket\":\"k\"}".into(), "invalid_message"),
        ("{\"type\":\"join\",\"site\":\"hq\",\"ticket\":\"k\",\"role\":\"chair\"}".into(), "invalid_message"),
        ("{\"type\":\"seize_control\",\"site\":\"hang-gai\"}".into(), "unknown_type"),
        ("{\"type\":\"give_floor\",\"site\":\"hang-gai\"}".into(), "not_joined"),
        ("{\"type\":\"offer\",\"sdp\":\"v=0\"}".into(), "not_joined"),
        ("{\"type\":\"answer\",\"sdp\":\"v=0\"}".into(), "not_joined"),
        ("{\"type\":\"candidate\",\"candidate\":{\"candidate\":\"\"}}".into(), "not_joined"),
        (format!("{{\"type\":\"offer\",\"sdp\":\"{}\"}}", "v".repeat(65 * 1024)), "too_large"),
        ("{\"type\":\"join\",\"site\":\"hq\",\"ticket\":\"dcj_forged\"}".into(), "token_invalid"),
    ];
    for (input, code) in &cases {
        stranger.send_text(input.clone()).await;
        let reply = stranger.recv().await.expect("a reply, not a closed socket");
        assert_eq!(reply["type"], "error", "{input:.80} → {reply}");
        assert_eq!(reply["code"], *code, "{input:.80} → {reply}");
        assert!(!reply["message"].as_str().unwrap().is_empty());
    }
    stranger.socket_mut().send(tokio_tungstenite::tungstenite::Message::Binary(vec![1, 2, 3].into())).await.unwrap();
    assert_eq!(stranger.recv().await.unwrap()["code"], "invalid_message");
    stranger.send(json!({"type": "ping"})).await;
    assert_eq!(stranger.recv().await.unwrap()["type"], "pong", "the socket is still usable");

    // A joined site sending things out of order or broken.
    let mut site = Client::connect(&bridge.cert_pem(), bridge.port).await;
    assert_eq!(site.join("cua-nam", bridge.key("cua-nam")).await["type"], "joined");
    let ticket = site.ticket("cua-nam", bridge.key("cua-nam")).await;
    site.send(json!({"type": "join", "site": "cua-nam", "ticket": ticket})).await;
    assert_eq!(site.recv_type("error").await["code"], "already_joined");
    site.send(json!({"type": "answer", "sdp": "v=0"})).await;
    assert_eq!(site.recv_type("error").await["code"], "negotiation_failed");
    site.send(json!({"type": "offer", "sdp": "this is not SDP"})).await;
    assert_eq!(site.recv_type("error").await["code"], "sdp_invalid");

    // Nothing changed for the meeting: same presence (plus cua-nam), media still flowing.
    let after = presence(&bridge).await;
    let expected: Vec<_> = before.iter().map(|(id, p)| (id.clone(), *p || id == "cua-nam")).collect();
    assert_eq!(after, expected);
    let (a, v) = (hq.received("hang-gai", "audio"), ward.received("hq", "video"));
    wait_until(Duration::from_secs(15), "media to keep flowing after the bad input", || async {
        (hq.received("hang-gai", "audio") >= a + 25 && ward.received("hq", "video") >= v + 15).then_some(())
    })
    .await;
}

/// One rule on both engines: every description after the first announces the DTLS certificate
/// of the first, which came over this authenticated session. A re-offer announcing none, or
/// another, is refused with `sdp_invalid`, and the site's media goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_later_offer_without_the_sessions_certificate_is_refused_on_both_engines() {
    for engine in ["lean", "webrtc"] {
        let bridge = TestBridge::start_default_on(engine);
        let hq = Sim::join(&bridge.cert_pem(), bridge.port, "hq", bridge.key("hq")).await;
        let ward = Sim::join(&bridge.cert_pem(), bridge.port, "hang-gai", bridge.key("hang-gai")).await;
        wait_until(Duration::from_secs(30), "media to flow both ways", || async {
            (flowing(&hq, "hang-gai", 10).await && flowing(&ward, "hq", 10).await).then_some(())
        })
        .await;
        let lines = || ward.first_offer.split_inclusive('\n');
        assert!(lines().any(|l| l.starts_with("a=fingerprint:")), "the first offer announces a certificate");
        let without: String = lines().filter(|l| !l.starts_with("a=fingerprint:")).collect();
        let another: String = lines()
            .map(|l| {
                if l.starts_with("a=fingerprint:") {
                    "a=fingerprint:sha-256 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF\r\n"
                } else {
                    l
                }
            })
            .collect();
        let refusals = || {
            ward.messages
                .lock()
                .unwrap()
                .iter()
                .filter(|m| m["type"] == "error" && m["code"] == "sdp_invalid" && m["message"].as_str().unwrap_or("").contains("certificate"))
                .count()
        };
        for (i, sdp) in [without, another].into_iter().enumerate() {
            ward.send(json!({"type": "offer", "sdp": sdp}));
            wait_until(Duration::from_secs(10), &format!("{engine}: re-offer {} refused for its certificate", i + 1), || async {
                (refusals() > i).then_some(())
            })
            .await;
        }
        let (a, v) = (hq.received("hang-gai", "audio"), ward.received("hq", "video"));
        wait_until(Duration::from_secs(15), &format!("{engine}: media to keep flowing"), || async {
            (hq.received("hang-gai", "audio") >= a + 25 && ward.received("hq", "video") >= v + 15).then_some(())
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_join_of_a_site_takes_over_and_the_first_is_told_replaced() {
    let bridge = TestBridge::start_default();
    let hq = Sim::join(&bridge.cert_pem(), bridge.port, "hq", bridge.key("hq")).await;
    let first = Sim::join(&bridge.cert_pem(), bridge.port, "hang-gai", bridge.key("hang-gai")).await;
    wait_until(Duration::from_secs(30), "hq to receive the first hang-gai", || async { flowing(&hq, "hang-gai", 10).await.then_some(()) }).await;

    let second = Sim::join(&bridge.cert_pem(), bridge.port, "hang-gai", bridge.key("hang-gai")).await;
    wait_until(Duration::from_secs(10), "the first session to be told `replaced` and closed", || async {
        (first.has_message(|m| m["type"] == "replaced") && first.has_message(|m| m["type"] == "closed")).then_some(())
    })
    .await;
    // HQ keeps receiving hang-gai (now from the second session), and the second receives HQ.
    let a = hq.received("hang-gai", "audio");
    wait_until(Duration::from_secs(30), "media from the new hang-gai session", || async {
        (hq.received("hang-gai", "audio") >= a + 25 && flowing(&second, "hq", 10).await).then_some(())
    })
    .await;
    assert!(presence(&bridge).await.contains(&("hang-gai".to_string(), true)));
    first.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_site_that_leaves_is_shown_absent_to_the_others() {
    let bridge = TestBridge::start_default();
    let mut hq = Client::connect(&bridge.cert_pem(), bridge.port).await;
    assert_eq!(hq.join("hq", bridge.key("hq")).await["type"], "joined");
    let mut ward = Client::connect(&bridge.cert_pem(), bridge.port).await;
    assert_eq!(ward.join("hang-dao", bridge.key("hang-dao")).await["type"], "joined");
    let present = |v: &Value, id: &str| v["sites"].as_array().unwrap().iter().any(|s| s["id"] == id && s["present"] == true);
    loop {
        let s = hq.recv_type("state").await;
        if present(&s, "hang-dao") {
            break;
        }
    }
    ward.send(json!({"type": "leave"})).await;
    let mut closed = false;
    for _ in 0..20 {
        if ward.recv().await.is_none() {
            closed = true;
            break;
        }
    }
    assert!(closed, "the server closes the socket after leave");
    let s = hq.recv_type("state").await;
    assert!(!present(&s, "hang-dao"));
    assert!(s["sites"].as_array().unwrap().iter().find(|x| x["id"] == "hang-dao").unwrap()["since_ms"].is_i64());
}
