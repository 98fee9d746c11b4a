//! The meeting keeps going: a site whose connection drops keeps its seat, floor and queue
//! place for the grace period and gets them back when it returns; after the grace the floor
//! returns to the chair; and the conference state survives the server being killed.

mod common;

use common::ws::Client;
use common::{scratch_dir, site, TestBridge};
use serde_json::{json, Value};
use std::path::PathBuf;

/// The next `state` for which `pred` holds (bounded by the client's 10 s receive timeout).
async fn state_where(c: &mut Client, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    for _ in 0..200 {
        let s = c.recv_type("state").await;
        if pred(&s) {
            return s;
        }
    }
    panic!("no state where {what}");
}

async fn joined(bridge: &TestBridge, id: &str) -> Client {
    let mut c = Client::connect(&bridge.cert_pem(), bridge.port).await;
    let r = c.join(id, bridge.key(id)).await;
    assert_eq!(r["type"], "joined", "{id}: {r}");
    c
}

fn config_with_grace(seconds: u64) -> (PathBuf, PathBuf) {
    let data = scratch_dir("grace");
    let config = data.join("bridge.toml");
    let default = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config/default.toml")).unwrap();
    std::fs::write(&config, default.replace("seat_grace_s = 60", &format!("seat_grace_s = {seconds}"))).unwrap();
    (config, data)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_site_keeps_its_floor_and_queue_place_during_the_grace_and_gets_them_back() {
    let (config, data) = config_with_grace(3);
    let bridge = TestBridge::start_with(config, data);
    let mut hq = joined(&bridge, "hq").await;
    let mut ward = Client::connect(&bridge.cert_pem(), bridge.port).await;
    let first = ward.join("hang-gai", bridge.key("hang-gai")).await;
    assert_eq!(first["resumed"], false);
    let mut asker = joined(&bridge, "cua-nam").await;
    asker.send(json!({"type": "request_floor", "topic": "Kiến nghị"})).await;
    hq.send(json!({"type": "give_floor", "site": "hang-gai"})).await;
    state_where(&mut hq, "hang-gai holds the floor and cua-nam queues", |s| {
        s["floor"]["holders"][0]["site"] == "hang-gai" && s["floor"]["queue"][0]["site"] == "cua-nam"
    })
    .await;

    // Both ward connections die (no `leave`).
    drop(ward);
    drop(asker);
    let s =
        state_where(&mut hq, "both shown reconnecting", |s| site(s, "hang-gai")["reconnecting"] == true && site(s, "cua-nam")["reconnecting"] == true).await;
    assert_eq!(site(&s, "hang-gai")["present"], false);
    assert_eq!(s["floor"]["holders"][0]["site"], "hang-gai", "the floor is held");
    assert_eq!(s["floor"]["queue"][0]["site"], "cua-nam", "the queue place is held");

    // They come back within the grace: everything as it was. Hàng Gai presents its token.
    let mut ward = Client::connect(&bridge.cert_pem(), bridge.port).await;
    let ticket = ward.ticket("hang-gai", bridge.key("hang-gai")).await;
    ward.send(json!({"type": "join", "site": "hang-gai", "ticket": ticket, "resume": first["resume"]})).await;
    let again = ward.recv_type("joined").await;
    assert_eq!(again["resumed"], true, "{again}");
    let _asker = joined(&bridge, "cua-nam").await;
    let s = state_where(&mut hq, "both back", |s| site(s, "hang-gai")["present"] == true && site(s, "cua-nam")["present"] == true).await;
    assert_eq!(s["floor"]["holders"][0]["site"], "hang-gai");
    assert_eq!(s["floor"]["queue"][0]["position"], 1);
    assert_eq!(site(&s, "hang-gai")["reconnecting"], false);

    // Lost again and not back within 3 s: the floor returns to the chair.
    drop(ward);
    let s = state_where(&mut hq, "the grace to run out", |s| site(s, "hang-gai")["reconnecting"] == false && site(s, "hang-gai")["present"] == false).await;
    assert!(s["floor"]["holders"].as_array().unwrap().is_empty(), "{s}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_conference_state_survives_the_server_being_killed() {
    let mut bridge = TestBridge::start_default();
    {
        let mut hq = joined(&bridge, "hq").await;
        let _ward = joined(&bridge, "hang-gai").await;
        let mut asker = joined(&bridge, "trang-tien").await;
        asker.send(json!({"type": "request_floor"})).await;
        hq.send(json!({"type": "mute_site", "site": "cua-nam", "muted": true})).await;
        hq.send(json!({"type": "next_item"})).await; // the report: HQ speaks
        hq.send(json!({"type": "give_floor", "site": "hang-gai"})).await; // a question during it
        hq.send(json!({"type": "set_layout", "layout": "grid"})).await;
        hq.send(json!({"type": "lock", "locked": true})).await;
        state_where(&mut hq, "all changes applied", |s| {
            s["locked"] == true && s["agenda"]["current"]["index"] == 0 && s["floor"]["holders"][0]["site"] == "hang-gai"
        })
        .await;
    }
    // The state is saved off the actor's task a moment after each change: wait until the file
    // has the last one, then crash the server.
    let db = bridge.data.join("diemcau.sqlite3");
    common::wait_until(std::time::Duration::from_secs(10), "the saved state to include the lock", || {
        let db = db.clone();
        async move {
            let conn = rusqlite::Connection::open(&db).ok()?;
            let state: String = conn.query_row("SELECT state FROM conference_state", [], |r| r.get(0)).ok()?;
            let v: Value = serde_json::from_str(&state).ok()?;
            (v["locked"] == true && v["layout"] == "grid").then_some(())
        }
    })
    .await;
    bridge.kill_and_restart();

    // Sites come back (even though the conference is locked: their seats were held).
    let mut hq = joined(&bridge, "hq").await;
    let _ward = joined(&bridge, "hang-gai").await;
    let s = state_where(&mut hq, "the restored state with hang-gai back", |s| site(s, "hang-gai")["present"] == true).await;
    assert_eq!(s["locked"], true);
    assert_eq!(s["layout"], "grid");
    assert_eq!(s["floor"]["holders"][0]["site"], "hang-gai");
    assert_eq!(s["floor"]["queue"][0]["site"], "trang-tien");
    assert_eq!(site(&s, "cua-nam")["hard_muted"], true);
    assert_eq!(s["agenda"]["current"]["index"], 0);
    assert_eq!(site(&s, "trang-tien")["reconnecting"], true, "a site that was present before is expected back");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_tells_the_pages_the_server_is_restarting_and_keeps_the_state() {
    let mut bridge = TestBridge::start_default();
    let mut hq = joined(&bridge, "hq").await;
    let _ward = joined(&bridge, "hang-bai").await;
    hq.send(json!({"type": "give_floor", "site": "hang-bai"})).await;
    state_where(&mut hq, "hang-bai holds the floor", |s| s["floor"]["holders"][0]["site"] == "hang-bai").await;
    bridge.terminate();
    let mut told = false;
    for _ in 0..50 {
        match hq.recv().await {
            Some(m) if m["type"] == "restarting" => {
                told = true;
                assert!(m["message"].as_str().unwrap().contains("khởi động lại"));
            }
            Some(_) => continue,
            None => break,
        }
    }
    assert!(told, "the page was told the server is restarting");
    bridge.kill_and_restart();
    let mut hq = joined(&bridge, "hq").await;
    let s = hq.recv_type("state").await;
    assert_eq!(s["floor"]["holders"][0]["site"], "hang-bai", "the state saved at SIGTERM is restored");
}
