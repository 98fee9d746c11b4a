//! Bridge health as technicians see it: the link numbers come from the media itself, a site
//! whose media stops shows no stale numbers and is flagged within five seconds while the
//! others stay green, a site whose connection drops is held and flagged the same, a page
//! that does not hear HQ is flagged once the one-way-audio grace is over, and the
//! technicians' API, readiness check and `/metrics` are served.

mod common;

use common::sim::Sim;
use common::{site, wait_until, TestBridge};
use serde_json::Value;
use std::time::{Duration, Instant};

fn alarms_of(view: &Value, id: &str) -> Vec<String> {
    site(view, id)["alarms"].as_array().unwrap().iter().map(|a| a["alarm"].as_str().unwrap().to_string()).collect()
}

/// The timing tests of this file measure alarm latency and loss: they run one at a time, so
/// they do not load each other's bridges (the lossy relay is a Python process per candidate).
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_site_whose_media_stops_is_shown_stalled_then_flagged_dropped_and_the_others_stay_green() {
    let _one = ONE_AT_A_TIME.lock().await;
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

    // Hàng Gai's media stops; its signalling socket stays open. Its last numbers become history
    // (the API says "stalled" and gives no rates), then the alarm is raised. How soon is printed
    // (goal: 3 s and 5 s, figures in docs/performance.md): a timing bound here would fail on a
    // loaded machine, so the test bounds only the wait.
    sims[1].set_sending(false);
    let stopped = Instant::now();
    let stale = wait_until(Duration::from_secs(8), "hang-gai's numbers shown as stalled", || async {
        let (_, v) = bridge.tech("GET", "/api/tech", "").await;
        let s = site(&v, "hang-gai");
        (s["media"] == "stalled" && s["video_in"]["bitrate_bps"] == 0.0 && s["audio_in"]["packets_per_second"] == 0.0).then(|| stopped.elapsed())
    })
    .await;
    println!("hang-gai shown stalled, without rates, {:.1} s after its media stopped", stale.as_secs_f64());
    let view = wait_until(Duration::from_secs(8), "site_dropped on hang-gai", || async {
        let (_, v) = bridge.tech("GET", "/api/tech", "").await;
        alarms_of(&v, "hang-gai").contains(&"site_dropped".to_string()).then_some(v)
    })
    .await;
    let raised_after = stopped.elapsed();
    println!("site_dropped raised {:.1} s after the media stopped", raised_after.as_secs_f64());
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
async fn a_site_whose_connection_drops_is_held_and_flagged_dropped() {
    let _one = ONE_AT_A_TIME.lock().await;
    let bridge = TestBridge::start_default();
    let _hq = Sim::join(&bridge.cert_pem(), bridge.port, "hq", bridge.key("hq")).await;
    let ward = Sim::join(&bridge.cert_pem(), bridge.port, "hang-dao", bridge.key("hang-dao")).await;
    wait_until(Duration::from_secs(20), "hang-dao measured", || async {
        let (_, v) = bridge.tech("GET", "/api/tech", "").await;
        (site(&v, "hang-dao")["media"] == "flowing").then_some(())
    })
    .await;
    // Its process dies: socket and media gone at once. The seat is held for it to come back.
    ward.stop();
    let dropped = Instant::now();
    let view = wait_until(Duration::from_secs(8), "site_dropped on the held hang-dao", || async {
        let (_, v) = bridge.tech("GET", "/api/tech", "").await;
        alarms_of(&v, "hang-dao").contains(&"site_dropped".to_string()).then_some(v)
    })
    .await;
    let raised_after = dropped.elapsed();
    println!("site_dropped raised {:.1} s after the connection dropped (goal: 5 s)", raised_after.as_secs_f64());
    let s = site(&view, "hang-dao");
    assert_eq!((s["connection"].as_str(), s["status"].as_str(), s["present"].as_bool()), (Some("held"), Some("alarm"), Some(false)), "{s}");
    let left = s["held_left_ms"].as_i64().unwrap();
    assert!((50_000..=60_000).contains(&left), "{left} ms of the 60 s grace left");
    assert_eq!(s["alarms"][0]["reason"]["code"], "connection_lost", "{s}");
    assert_eq!(s["media"], "none", "a held site has no current media: {s}");
    assert_eq!(view["status"], "degraded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ward_that_does_not_hear_hq_is_flagged_one_way_once_the_grace_is_over() {
    let _one = ONE_AT_A_TIME.lock().await;
    let bridge = TestBridge::start_default();
    let hq = Sim::join(&bridge.cert_pem(), bridge.port, "hq", bridge.key("hq")).await;
    let ward = Sim::join(&bridge.cert_pem(), bridge.port, "hang-bai", bridge.key("hang-bai")).await;
    wait_until(Duration::from_secs(20), "media both ways", || async {
        (hq.received("hang-bai", "audio") > 50 && ward.received("hq", "audio") > 50).then_some(())
    })
    .await;
    // The ward's page reports, every second, that nothing arrives from HQ.
    let first_report = Instant::now();
    let deaf = serde_json::json!({"type": "stats", "report": {"received": {}}});
    let raised = wait_until(Duration::from_secs(20), "one_way_audio on hang-bai", || async {
        ward.send(deaf.clone());
        let (_, v) = bridge.tech("GET", "/api/tech", "").await;
        let at = first_report.elapsed();
        let alarm = site(&v, "hang-bai")["alarms"].as_array().unwrap().iter().find(|a| a["alarm"] == "one_way_audio").cloned();
        if alarm.is_none() {
            tokio::time::sleep(Duration::from_millis(800)).await;
        }
        alarm.map(|a| (at, a))
    })
    .await;
    let (after, alarm) = raised;
    println!("one_way_audio raised {:.1} s after the first report of a deaf page", after.as_secs_f64());
    // The grace (8 s) holds it back; then it is raised as without one (1.5 s), within the 20 s
    // the wait allows (a machine under load can only make it later, never earlier).
    assert!(after >= Duration::from_secs(7), "raised during the grace, after {after:?}");
    assert_eq!(alarm["reason"]["code"], "site_does_not_hear_hq", "{alarm}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_technicians_api_needs_a_technicians_session() {
    let bridge = TestBridge::start_default();
    let chair = format!("Bearer {}", bridge.site_token("hq").await);
    let cases = [("", 401, "token_missing"), ("Bearer dct_0000000000", 401, "token_invalid"), (chair.as_str(), 403, "forbidden")];
    for (auth, expected, code) in cases {
        let headers: Vec<(&str, &str)> = if auth.is_empty() { vec![] } else { vec![("Authorization", auth)] };
        let (status, body) = common::ws::https_request(&bridge.cert_pem(), bridge.port, "GET", "/api/tech", &headers, "").await;
        assert_eq!(status, expected, "{auth}: {body}");
        assert!(body.contains(code), "{auth}: {body}");
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
    let _one = ONE_AT_A_TIME.lock().await;
    let bridge = TestBridge::start_default();
    let hq = Sim::join(&bridge.cert_pem(), bridge.port, "hq", bridge.key("hq")).await;
    let ward = Sim::join(&bridge.cert_pem(), bridge.port, "trang-tien", bridge.key("trang-tien")).await;
    wait_until(Duration::from_secs(20), "media both ways", || async { (hq.received("trang-tien", "audio") > 50).then_some(()) }).await;
    let metrics = wait_until(Duration::from_secs(10), "per-site inbound metrics", || async {
        let (_, text) = common::ws::https_request(&bridge.cert_pem(), bridge.port, "GET", "/metrics", &[], "").await;
        text.lines().any(|l| l.starts_with("diemcau_media_in_packets_per_second{site=\"trang-tien\",kind=\"audio\"}") && !l.ends_with(" 0")).then_some(text)
    })
    .await;
    for name in
        ["diemcau_site_present{site=\"trang-tien\"} 1", "# TYPE diemcau_media_forwarded_packets_total counter", "diemcau_media_out_packets_total{site=\"hq\"}"]
    {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_percent_loss_on_one_site_is_measured_and_alarmed_while_the_others_stay_green() {
    let _one = ONE_AT_A_TIME.lock().await;
    let bridge = TestBridge::start_default();
    let hq = Sim::join(&bridge.cert_pem(), bridge.port, "hq", bridge.key("hq")).await;
    let _clean = Sim::join(&bridge.cert_pem(), bridge.port, "cua-nam", bridge.key("cua-nam")).await;
    // One ward's media goes through tests/lab/udp-relay.py dropping 10 % each way; if its
    // media does not come up, another ward joins through a fresh relay (see
    // `join_through_loss`), so the alarm timing is measured on a site with no history.
    let (lossy, _sim) = Sim::join_through_loss(&bridge, &["hang-bai", "hang-dao", "trang-tien"], 10.0, |id, _| hq.received(id, "audio") > 0).await;
    let lossy = lossy.as_str();
    let flowing = Instant::now();
    // The bound is generous: how soon the alarm comes is a figure (2.5–3.4 s on a quiet
    // machine, docs/performance.md "Alarm latency"), printed here; CI once took 7.3 s under load.
    let view = wait_until(Duration::from_secs(15), "high_loss on the lossy ward", || async {
        let (_, v) = bridge.tech("GET", "/api/tech", "").await;
        alarms_of(&v, lossy).contains(&"high_loss".to_string()).then_some(v)
    })
    .await;
    println!("high_loss raised on {lossy} {:.1} s after media started flowing", flowing.elapsed().as_secs_f64());
    // Reported loss, averaged over ten one-second samples, is the injected 10 % ± 3 points.
    let alarm = view["alarms"].as_array().unwrap().iter().find(|a| a["site"] == lossy && a["alarm"] == "high_loss").expect("the high_loss alarm in the list");
    let alarm_at = alarm["since_ms"].as_i64().unwrap();
    let v = wait_until(Duration::from_secs(20), "ten more one-second samples", || async {
        let (_, v) = bridge.tech("GET", "/api/tech", "").await;
        let n = site(&v, lossy)["history"].as_array().unwrap().iter().filter(|s| s["t_ms"].as_i64().unwrap() > alarm_at).count();
        (n >= 10).then_some(v)
    })
    .await;
    let history = site(&v, lossy)["history"].as_array().unwrap().clone();
    let recent: Vec<f64> = history.iter().rev().take(10).map(|s| s["loss_percent"].as_f64().unwrap()).collect();
    let mean = recent.iter().sum::<f64>() / recent.len() as f64;
    println!("{lossy} loss over the last 10 s: {mean:.1} % (samples {recent:?})");
    assert!((7.0..=13.0).contains(&mean), "measured {mean:.1} % for 10 % injected");
    for id in ["hq", "cua-nam"] {
        assert!(alarms_of(&v, id).is_empty(), "{id} stays green: {:?}", alarms_of(&v, id));
        let loss = site(&v, id)["history"].as_array().unwrap().iter().rev().take(10).map(|s| s["loss_percent"].as_f64().unwrap()).fold(0.0, f64::max);
        assert!(loss < 2.0, "{id} loss {loss}");
    }
}
