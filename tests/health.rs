//! Bridge health as technicians see it: the link numbers come from the media itself, a site
//! whose media stops is flagged within five seconds while the others stay green, and the
//! technicians' API, readiness check and `/metrics` are served.

mod common;

use common::sim::Sim;
use common::{wait_until, TestBridge};
use serde_json::Value;
use std::time::{Duration, Instant};

fn site<'a>(view: &'a Value, id: &str) -> &'a Value {
    view["sites"].as_array().unwrap().iter().find(|s| s["id"] == id).unwrap()
}

fn alarms_of(view: &Value, id: &str) -> Vec<String> {
    site(view, id)["alarms"].as_array().unwrap().iter().map(|a| a["alarm"].as_str().unwrap().to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_site_whose_media_stops_is_flagged_dropped_within_five_seconds_and_the_others_stay_green() {
    let bridge = TestBridge::start_default();
    let mut sims = Vec::new();
    for id in ["hq", "hang-gai", "cua-nam"] {
        sims.push(Sim::join(&bridge.cert_pem(), bridge.port, id, bridge.key(id)).await);
    }
    // Healthy first: media measured from every site.
    let view = wait_until(Duration::from_secs(20), "every site measured and healthy", || async {
        let (_, v) = bridge.tech("GET", "/api/tech", "").await;
        ["hq", "hang-gai", "cua-nam"]
            .iter()
            .all(|id| {
                let s = site(&v, id);
                s["status"] == "ok" && s["audio_in"]["packets_per_second"].as_f64().unwrap_or(0.0) > 30.0 && s["bitrate_out_bps"].as_f64().unwrap_or(0.0) > 0.0
            })
            .then_some(v)
    })
    .await;
    assert!(site(&view, "hang-gai")["video_in"]["frames_per_second"].as_f64().unwrap() > 10.0, "{view}");
    assert_eq!(site(&view, "hang-bai")["status"], "absent");

    // Hàng Gai's media stops; its signalling socket stays open.
    sims[1].set_sending(false);
    let stopped = Instant::now();
    let view = wait_until(Duration::from_secs(8), "site_dropped on hang-gai", || async {
        let (_, v) = bridge.tech("GET", "/api/tech", "").await;
        alarms_of(&v, "hang-gai").contains(&"site_dropped".to_string()).then_some(v)
    })
    .await;
    let raised_after = stopped.elapsed();
    println!("site_dropped raised {:.1} s after the media stopped", raised_after.as_secs_f64());
    assert!(raised_after < Duration::from_secs(5), "raised after {raised_after:?}");
    assert!(alarms_of(&view, "hq").is_empty() && alarms_of(&view, "cua-nam").is_empty(), "others stay green: {view}");
    assert_eq!(site(&view, "hang-gai")["status"], "alarm");
    let health = bridge.get_json("/api/health").await;
    assert_eq!(health["status"], "degraded");
    assert_eq!(health["alarms"][0]["site"], "hang-gai");

    // Media back: the alarm clears after the hysteresis window.
    sims[1].set_sending(true);
    wait_until(Duration::from_secs(15), "site_dropped to clear", || async {
        let (_, v) = bridge.tech("GET", "/api/tech", "").await;
        alarms_of(&v, "hang-gai").is_empty().then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_technicians_api_needs_the_technicians_key() {
    let bridge = TestBridge::start_default();
    for auth in ["", "Bearer wrong-key-0000000000", &format!("Bearer {}", bridge.key("hq"))] {
        let headers: Vec<(&str, &str)> = if auth.is_empty() { vec![] } else { vec![("Authorization", auth)] };
        let (status, body) = common::ws::https_request(&bridge.cert_pem(), bridge.port, "GET", "/api/tech", &headers, "").await;
        assert_eq!(status, 401, "{auth}: {body}");
        assert!(body.contains("not_technician"));
    }
    let (status, _) = bridge.tech("GET", "/api/tech", "").await;
    assert_eq!(status, 200);
    let (status, body) = bridge.tech("POST", "/api/tech/action", r#"{"site":"hang-gai","action":"keyframe"}"#).await;
    assert_eq!((status, body["code"].as_str()), (409, Some("site_absent")));
    let (status, body) = bridge.tech("POST", "/api/tech/action", r#"{"site":"hang-gai","action":"reboot"}"#).await;
    assert_eq!((status, body["code"].as_str()), (400, Some("unknown_action")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_and_actions_for_a_connected_site() {
    let bridge = TestBridge::start_default();
    let hq = Sim::join(&bridge.cert_pem(), bridge.port, "hq", bridge.key("hq")).await;
    let ward = Sim::join(&bridge.cert_pem(), bridge.port, "trang-tien", bridge.key("trang-tien")).await;
    wait_until(Duration::from_secs(20), "media both ways", || async { (hq.received("trang-tien", "audio") > 50).then_some(()) }).await;
    let metrics = wait_until(Duration::from_secs(10), "per-site inbound metrics", || async {
        let (_, text) = common::ws::https_request(&bridge.cert_pem(), bridge.port, "GET", "/metrics", &[], "").await;
        text.lines()
            .any(|l| l.starts_with("diemcau_media_in_packets_per_second{site=\"trang-tien\",kind=\"audio\"}") && !l.ends_with(" 0"))
            .then_some(text)
    })
    .await;
    for name in ["diemcau_site_present{site=\"trang-tien\"} 1", "# TYPE diemcau_media_forwarded_packets_total counter", "diemcau_media_out_packets_total{site=\"hq\"}"] {
        assert!(metrics.contains(name), "missing {name}:\n{metrics}");
    }
    let (status, _) = bridge.tech("POST", "/api/tech/action", r#"{"site":"trang-tien","action":"keyframe"}"#).await;
    assert_eq!(status, 200);
    // Dropping a stuck session frees the seat; the site is told why.
    let (status, _) = bridge.tech("POST", "/api/tech/action", r#"{"site":"trang-tien","action":"drop"}"#).await;
    assert_eq!(status, 200);
    wait_until(Duration::from_secs(5), "the dropped message", || async { ward.has_message(|m| m["type"] == "dropped").then_some(()) }).await;
    let health = bridge.get_json("/api/health").await;
    assert!(health["sites"].as_array().unwrap().iter().any(|s| s["id"] == "trang-tien" && s["present"] == false));
}
