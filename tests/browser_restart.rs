//! A server crash mid-meeting in real headless Chromium: the bridge is killed (SIGKILL) and
//! started again on the same data directory and port; the pages (one of them a kiosk room)
//! reconnect by themselves and see and hear each other again, and the floor is where the
//! chair left it. Opening the same site in a second browser takes the seat; the first page
//! says why and stops reconnecting. A page that could not start at all (a request that failed
//! on a poor line) loads itself again and joins.

mod common;

use common::browser::{fake_media, Browser};
use common::{scratch_dir, Deadline, TestBridge};
use serde_json::json;
use std::time::{Duration, Instant};

/// One browser test at a time: two Chromiums at once on two cores starve each other.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_come_back_by_themselves_after_the_server_is_killed_and_restarted() {
    let _one = ONE_AT_A_TIME.lock().await;
    let mut bridge = TestBridge::start_default();
    let scratch = scratch_dir("rs");
    let sites = [("hq", (220, 30, 30), 440), ("hang-gai", (30, 200, 30), 660)];
    let mut browsers = Vec::new();
    for (id, rgb, tone) in sites {
        let media = fake_media(&scratch, id, rgb, tone);
        // Hàng Gai is a kiosk room: nobody will touch it.
        let url = if id == "hang-gai" { bridge.join_url(id).replace("#key=", "?kiosk=1#key=") } else { bridge.join_url(id) };
        browsers.push(Browser::launch(id, &url, &media, &scratch).await);
    }
    let deadline = Deadline::after(Duration::from_secs(20), "the kiosk page to start");
    while browsers[1].eval("document.body.dataset.kiosk").await != Some(json!("1")) {
        browsers[1].tick_explaining(&deadline, &"not a kiosk yet").await;
    }
    let flowing = |me: usize| {
        let other = sites[1 - me].0;
        format!("window.diemcau.stats().then(s => !!s['{other}'] && s['{other}'].framesDecoded > 0 && s['{other}'].totalAudioEnergy > 0)")
    };
    for i in 0..2 {
        let deadline = Deadline::after(Duration::from_secs(60), format!("{} to receive the other", sites[i].0));
        while browsers[i].eval(&flowing(i)).await != Some(json!(true)) {
            browsers[i].tick_explaining(&deadline, &"not flowing").await;
        }
    }
    browsers[0].eval("document.querySelector('#sites tr[data-site=\"hang-gai\"] button.give').click()").await;
    let deadline = Deadline::after(Duration::from_secs(10), "the floor to reach the saved state");
    let db = bridge.data.join("diemcau.sqlite3");
    loop {
        let saved =
            rusqlite::Connection::open(&db).and_then(|c| c.query_row("SELECT state FROM conference_state", [], |r| r.get::<_, String>(0))).unwrap_or_default();
        if saved.contains("\"Granted\"") {
            break;
        }
        deadline.tick().await;
    }
    let before: Vec<f64> = {
        let mut v = Vec::new();
        for b in browsers.iter_mut() {
            v.push(b.eval("window.diemcau.client.connectedAt").await.and_then(|x| x.as_f64()).unwrap_or(0.0));
        }
        v
    };

    bridge.kill_and_restart();
    let restarted = Instant::now();
    for i in 0..2 {
        let deadline = Deadline::after(Duration::from_secs(60), format!("{} to reconnect and receive again", sites[i].0));
        loop {
            let again = browsers[i].eval("window.diemcau.client.connectedAt").await.and_then(|x| x.as_f64()).unwrap_or(0.0) > before[i];
            if again && browsers[i].eval(&flowing(i)).await == Some(json!(true)) {
                break;
            }
            browsers[i].tick_explaining(&deadline, &format!("reconnected: {again}")).await;
        }
        println!("{}: media back {:.1} s after the restart", sites[i].0, restarted.elapsed().as_secs_f64());
        let deadline = Deadline::after(Duration::from_secs(10), format!("{} to show the restored floor", sites[i].0));
        while browsers[i].eval("document.body.dataset.floor").await != Some(json!("hang-gai")) {
            browsers[i].tick_explaining(&deadline, &"another floor").await;
        }
    }

    // The same site opened in a second browser: the newer one takes the seat, the older one
    // says why and stops reconnecting.
    let media = fake_media(&scratch, "hang-gai-2", (30, 200, 30), 660);
    let mut second = Browser::launch("hang-gai-2", &bridge.join_url("hang-gai"), &media, &scratch).await;
    let deadline = Deadline::after(Duration::from_secs(30), "the first Hàng Gai page to be replaced");
    while browsers[1].eval("document.getElementById('status').dataset.phase").await != Some(json!("replaced")) {
        browsers[1].tick_explaining(&deadline, &"not replaced").await;
    }
    let text = browsers[1].eval("document.getElementById('status').textContent").await;
    assert!(text.as_ref().and_then(|t| t.as_str()).is_some_and(|t| t.contains("nơi khác")), "{text:?}");
    assert_eq!(browsers[1].eval("window.diemcau.client.stopped").await, Some(json!(true)), "it does not reconnect");
    let deadline = Deadline::after(Duration::from_secs(30), "the second page to receive HQ");
    while second.eval("window.diemcau.stats().then(s => !!s.hq && s.hq.framesDecoded > 0)").await != Some(json!(true)) {
        second.tick_explaining(&deadline, &"no HQ frames").await;
    }
    drop(second);
    drop(browsers);
    let _ = std::fs::remove_dir_all(&scratch);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_that_could_not_start_loads_itself_again_and_joins() {
    let _one = ONE_AT_A_TIME.lock().await;
    let bridge = TestBridge::start_default();
    let scratch = scratch_dir("boot");
    let mut ward = Browser::launch("hang-gai", &bridge.join_url("hang-gai"), &fake_media(&scratch, "hang-gai", (30, 200, 30), 660), &scratch).await;
    // The line drops every script file and the page's strings after the document: its
    // modules cannot start, and the page stays blank.
    ward.command("Network.enable", json!({})).await;
    ward.command("Network.setBlockedURLs", json!({"urls": ["*.js", "*/i18n/*"]})).await.expect("Chromium blocks the scripts");
    ward.reload().await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(ward.eval("document.getElementById('lang').textContent").await, Some(json!("")), "blank while the strings cannot load");
    let reloads = ward.eval("sessionStorage.getItem('diemcau.reloads')").await;
    assert_eq!(reloads, Some(serde_json::Value::Null), "not reloaded yet: the page gets 20 s");
    // The line is back. Nobody touches the page: it loads itself again and joins.
    ward.command("Network.setBlockedURLs", json!({"urls": []})).await;
    let deadline = Deadline::after(Duration::from_secs(60), "the page to load itself again and join");
    loop {
        let (_, tech) = bridge.tech("GET", "/api/tech", "").await;
        let present = common::site_row(&tech, "hang-gai").is_some_and(|s| s["present"] == true);
        if present {
            break;
        }
        deadline.tick_showing(&ward.describe().await).await;
    }
    assert_eq!(ward.eval("sessionStorage.getItem('diemcau.reloads')").await, Some(serde_json::Value::Null), "started: the count is cleared");
    drop(ward);
    let _ = std::fs::remove_dir_all(&scratch);
}
