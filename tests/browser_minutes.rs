//! A meeting run through its pages, then its minutes read back against what happened: the
//! chair (Chromium) starts the meeting and runs HQ's report and Hàng Gai's speech from its
//! panel; Hàng Gai's browser (Chromium) is killed while it holds the floor and comes back
//! during the seat hold; the chair opens a vote that both wards count into their own forms;
//! the chair sends Cửa Nam (Firefox ESR) a notice it acknowledges, Cửa Nam calls a technician,
//! asks to speak on a topic, is granted the floor from the queue and gives it back; the chair
//! ends the meeting before Cửa Nam's speech and the directive.
//!
//! The minutes must say exactly that: two items held with their times, two not reached, HQ's
//! report and every speech with its length as the test clocked it (the seat hold not counted
//! as speaking), the request with its topic and outcome, the vote per room and in total, who
//! attended with the reconnect, the lost connection as an incident in Vietnamese, and a page
//! to print with the date and the signature block.

mod common;

use common::browser::{click, fake_media, type_into, until, Browser};
use common::{scratch_dir, TestBridge};
use serde_json::{json, Value};
use std::path::Path;
use std::time::{Duration, Instant};

/// The seat hold of this meeting (the default config says 60 s).
const HOLD_S: u64 = 30;
/// How far a length in the minutes may stray outside what the test's clock allows: the server
/// stamps events on the wall clock in milliseconds, the test on its monotonic clock.
const SLACK_S: f64 = 0.25;
/// How long Hàng Gai's PC stays off: longer than the brief dropouts the minutes leave out.
const AWAY: Duration = Duration::from_millis(diemcau::records::minutes::BRIEF_MS as u64 + 2_000);

fn bridge() -> TestBridge {
    let data = scratch_dir("minutes-bridge");
    let default = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("config/default.toml")).unwrap();
    let config = data.join("config.toml");
    std::fs::write(&config, default.replacen("seat_grace_s = 60", &format!("seat_grace_s = {HOLD_S}"), 1)).unwrap();
    TestBridge::start_with(config, data)
}

/// Who holds the floor, as the chair's page knows it.
const HOLDER: &str = "window.diemcau.state().floor.holders[0]?.site ?? null";

async fn enter_counts(page: &mut Browser, counts: [u32; 3]) {
    for (i, c) in counts.iter().enumerate() {
        type_into(page, &format!("#vote-panel input[name=count-{i}]"), &c.to_string()).await;
    }
    click(page, "#vote-panel button[type=submit]").await;
    until(page, "document.querySelector('#vote-panel .vote-sent')?.dataset.sent", json!("true"), Duration::from_secs(10), "its counts sent").await;
}

/// What the test's clock knows of a stretch the server timed. The server stamped its start
/// after the test sent the click that began it (`asked`) and before a page showed it (`seen`);
/// likewise its end, between `ending` and `ended`. So its length lies between the two bounds,
/// however slowly a loaded machine runs the pages in between.
struct Clocked {
    shortest: f64,
    longest: f64,
}

impl Clocked {
    fn between(asked: Instant, seen: Instant, ending: Instant, ended: Instant) -> Clocked {
        Clocked { shortest: ending.saturating_duration_since(seen).as_secs_f64(), longest: ended.duration_since(asked).as_secs_f64() }
    }
}

impl std::fmt::Display for Clocked {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(f, "{:.1}–{:.1} s", self.shortest, self.longest)
    }
}

fn near(what: &str, got: f64, clocked: &Clocked) {
    assert!(got >= clocked.shortest - SLACK_S && got <= clocked.longest + SLACK_S, "{what}: the minutes say {got:.1} s, the test clocked {clocked}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_meeting_run_through_its_pages_has_minutes_that_match_what_happened() {
    let bridge = bridge();
    let scratch = scratch_dir("minutes");
    let gai_media = fake_media(&scratch, "hang-gai", (30, 200, 30), 660);
    let mut hq = Browser::launch("hq", &bridge.join_url("hq"), &fake_media(&scratch, "hq", (220, 30, 30), 440), &scratch).await;
    hq.set_viewport(1366, 768).await;
    let mut gai = Browser::launch("hang-gai", &bridge.join_url("hang-gai"), &gai_media, &scratch).await;
    let mut nam = Browser::launch_firefox("cua-nam", &bridge.join_url("cua-nam"), &scratch).await;
    for page in [&mut hq, &mut gai, &mut nam] {
        until(page, "(window.diemcau?.state()?.sites ?? []).filter(s => s.present).length", json!(3), Duration::from_secs(60), "all three joined").await;
        page.eval("document.getElementById('devices-close')?.click()").await;
    }

    // --- The chair opens the meeting; each ward says who attends.
    click(&mut hq, "#meeting").await;
    for (page, who, count) in [(&mut gai, "Phường Hàng Gai, Phường Hàng Trống", "12"), (&mut nam, "Phường Cửa Nam", "9")] {
        until(page, "!document.getElementById('attendance').hidden", json!(true), Duration::from_secs(10), "the attendance form").await;
        type_into(page, "#attendees", who).await;
        type_into(page, "#headcount", count).await;
        click(page, "#attendance button[type=submit]").await;
    }

    // --- HQ's report, then Hàng Gai's speech: the programme gives it the floor.
    let report_asked = Instant::now();
    click(&mut hq, "#next-item").await;
    until(&mut hq, "window.diemcau.state().agenda.current?.index", json!(0), Duration::from_secs(5), "the report running").await;
    let report_seen = Instant::now();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let gai_asked = Instant::now();
    click(&mut hq, "#next-item").await;
    until(&mut hq, HOLDER, json!("hang-gai"), Duration::from_secs(5), "Hàng Gai given the floor by the programme").await;
    let gai_seen = Instant::now();
    let report = Clocked::between(report_asked, report_seen, gai_asked, gai_seen);
    tokio::time::sleep(Duration::from_secs(3)).await;

    // --- Hàng Gai's browser dies while it speaks; its seat and the floor are held; the PC
    // comes back within the hold and speaks on.
    // Clocked as the kill is sent: the server sees the socket close at once, while the test
    // then waits for the browser's processes to go, which takes seconds on a loaded machine.
    let crashed = Instant::now();
    gai.crash();
    until(&mut hq, "window.diemcau.state().sites.find(s => s.id === 'hang-gai').reconnecting", json!(true), Duration::from_secs(15), "Hàng Gai's seat held")
        .await;
    let first_speech = Clocked::between(gai_asked, gai_seen, crashed, Instant::now());
    until(
        &mut hq,
        "[...document.querySelectorAll('#chair-alarms li')].some(li => li.dataset.site === 'hang-gai')",
        json!(true),
        Duration::from_secs(15),
        "the lost connection on the chair's page",
    )
    .await;
    // Away long enough to be an incident worth filing (the minutes leave out shorter ones).
    tokio::time::sleep((crashed + AWAY).saturating_duration_since(Instant::now())).await;
    let relaunched = Instant::now();
    let mut gai = Browser::launch("hang-gai", &bridge.join_url("hang-gai"), &gai_media, &scratch).await;
    until(
        &mut hq,
        "window.diemcau.state().sites.find(s => s.id === 'hang-gai').present",
        json!(true),
        Duration::from_secs(HOLD_S),
        "Hàng Gai back within the hold",
    )
    .await;
    let back = Instant::now();
    let held_s = crashed.elapsed().as_secs_f64();
    assert_eq!(hq.eval(HOLDER).await, Some(json!("hang-gai")), "Hàng Gai came back holding the floor");
    gai.eval("document.getElementById('devices-close')?.click()").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let revoked = Instant::now();
    click(&mut hq, "#sites tr[data-site=\"hang-gai\"] button.revoke").await;
    until(&mut hq, HOLDER, Value::Null, Duration::from_secs(5), "the floor back with the chair").await;
    let second_speech = Clocked::between(relaunched, back, revoked, Instant::now());

    // --- A vote, counted in each room's own form.
    type_into(&mut hq, "#chair-vote form input", "Thông qua Nghị quyết quý IV?").await;
    click(&mut hq, "#chair-vote form button[type=submit]").await;
    for page in [&mut gai, &mut nam] {
        until(
            page,
            "document.querySelector('#vote-panel h2')?.textContent ?? ''",
            json!("Biểu quyết: Thông qua Nghị quyết quý IV?"),
            Duration::from_secs(10),
            "the vote on the page",
        )
        .await;
    }
    enter_counts(&mut gai, [11, 1, 0]).await;
    enter_counts(&mut nam, [7, 0, 2]).await;
    let totals = "[...document.querySelectorAll('#chair-vote tr.total th')].map(e => e.textContent)";
    until(&mut hq, totals, json!(["Tổng cộng", "18", "1", "2"]), Duration::from_secs(10), "the live totals").await;
    click(&mut hq, "#chair-vote .vote-close").await;
    until(
        &mut nam,
        "document.querySelector('#vote-panel .vote-result')?.textContent ?? ''",
        json!("Tán thành: 18 · Không tán thành: 1 · Ý kiến khác: 2"),
        Duration::from_secs(10),
        "the result",
    )
    .await;

    // --- A notice to Cửa Nam, read there; Cửa Nam calls a technician, who handles it.
    hq.eval("document.querySelector('#chair-notices select').value = 'cua-nam'").await;
    type_into(&mut hq, "#chair-notices input", "Điểm cầu Cửa Nam đề nghị bật micro").await;
    click(&mut hq, "#chair-notices button[type=submit]").await;
    until(
        &mut nam,
        "document.querySelector('#site-notices p')?.textContent ?? ''",
        json!("Điểm cầu Cửa Nam đề nghị bật micro"),
        Duration::from_secs(10),
        "the notice shown",
    )
    .await;
    click(&mut nam, "#site-notices button").await;
    until(&mut hq, "document.querySelector('#chair-notices li')?.dataset.read", json!("true"), Duration::from_secs(10), "the notice read").await;
    click(&mut nam, "#help").await;
    until(&mut nam, "document.getElementById('help').textContent", json!("Đã báo kỹ thuật viên"), Duration::from_secs(10), "the call shown").await;
    let (status, _) = bridge.tech("POST", "/api/tech/action", r#"{"site": "cua-nam", "action": "help_done"}"#).await;
    assert_eq!(status, 200);

    // --- Cửa Nam asks to speak on a topic (typed into the page's dialog), the chair grants it
    // from the queue, Cửa Nam gives the floor back itself.
    nam.eval("window.prompt = () => 'Kiến nghị về ngân sách phường'").await;
    click(&mut nam, "#ask").await;
    until(
        &mut hq,
        "document.querySelectorAll('#queue li[data-site=\"cua-nam\"] button.grant').length",
        json!(1),
        Duration::from_secs(10),
        "Cửa Nam in the queue",
    )
    .await;
    let granted = Instant::now();
    click(&mut hq, "#queue li[data-site=\"cua-nam\"] button.grant").await;
    until(&mut nam, HOLDER, json!("cua-nam"), Duration::from_secs(5), "Cửa Nam holding the floor").await;
    let nam_spoke = Instant::now();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let released = Instant::now();
    click(&mut nam, "#release").await;
    until(&mut nam, HOLDER, Value::Null, Duration::from_secs(5), "the floor given back").await;
    let nam_speech = Clocked::between(granted, nam_spoke, released, Instant::now());

    // --- The chair ends the meeting before the last two items.
    let id = hq.eval("window.diemcau.state().meeting.id").await.and_then(|v| v.as_i64()).expect("the meeting's id on the chair's page");
    click(&mut hq, "#meeting").await;
    until(&mut hq, "window.diemcau.state().meeting", Value::Null, Duration::from_secs(5), "the meeting ended").await;
    println!("clocked: report {report}, Hàng Gai {first_speech} + {second_speech} (held {held_s:.1} s), Cửa Nam {nam_speech}");

    let m = bridge.get_json(&format!("/api/conferences/{id}/minutes")).await;
    let titles = |v: &Value| v.as_array().unwrap().iter().map(|p| p["title"].as_str().unwrap().to_owned()).collect::<Vec<_>>();
    assert_eq!(titles(&m["programme"]), ["Báo cáo tình hình thực hiện nhiệm vụ", "Phát biểu của Cụm Hàng Gai"], "{m}");
    near("the report item", m["programme"][0]["actual_seconds"].as_f64().unwrap(), &report);
    assert_eq!(titles(&m["not_reached"]), ["Phát biểu của Cụm Cửa Nam", "Phát biểu chỉ đạo của đồng chí Bí thư Quận ủy"]);

    let speeches: Vec<(String, f64)> =
        m["speakers"].as_array().unwrap().iter().map(|s| (s["site"].as_str().unwrap().to_owned(), s["seconds"].as_f64().unwrap())).collect();
    let sites: Vec<&str> = speeches.iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(sites, ["hq", "hang-gai", "hang-gai", "cua-nam"], "{}", m["speakers"]);
    near("HQ's report", speeches[0].1, &report);
    near("Hàng Gai before its browser died", speeches[1].1, &first_speech);
    near("Hàng Gai after it came back", speeches[2].1, &second_speech);
    near("Cửa Nam", speeches[3].1, &nam_speech);
    assert_eq!(m["speakers"][1]["item"], "Phát biểu của Cụm Hàng Gai");

    let requests = m["requests"].as_array().unwrap();
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert_eq!(
        (requests[0]["site"].as_str(), requests[0]["topic"].as_str(), requests[0]["outcome"].as_str()),
        (Some("cua-nam"), Some("Kiến nghị về ngân sách phường"), Some("granted"))
    );

    assert_eq!(m["votes"][0]["question"], "Thông qua Nghị quyết quý IV?");
    assert_eq!(m["votes"][0]["totals"], json!([18, 1, 2]));
    let tallies: Vec<(String, Value)> =
        m["votes"][0]["tallies"].as_array().unwrap().iter().map(|t| (t[0].as_str().unwrap().to_owned(), t[1].clone())).collect();
    assert!(tallies.contains(&("hang-gai".into(), json!([11, 1, 0]))) && tallies.contains(&("cua-nam".into(), json!([7, 0, 2]))), "{tallies:?}");

    let attendance = |site: &str| m["attendance"].as_array().unwrap().iter().find(|a| a["site"] == site).cloned().unwrap();
    assert_eq!((attendance("hang-gai")["headcount"].as_i64(), attendance("hang-gai")["reconnects"].as_u64()), (Some(12), Some(1)));
    assert_eq!(attendance("cua-nam")["headcount"], 9);
    assert_eq!(attendance("cua-nam")["attendees"], "Phường Cửa Nam");

    // Only the drop is asserted: on a loaded machine the pages' own RTT may rise past its
    // alarm too, which the minutes rightly file.
    let lost: Vec<&Value> = m["notable_incidents"].as_array().unwrap().iter().filter(|i| i["site"] == "hang-gai" && i["alarm"] == "site_dropped").collect();
    assert_eq!(lost.len(), 1, "Hàng Gai's lost connection, once: {}", m["notable_incidents"]);

    // The page to print: in Vietnamese, dated, the items not reached marked, the incident in
    // words, and the signature block.
    let auth = format!("Bearer {}", bridge.tech_token().await);
    let (status, html) = common::ws::https_request(
        &bridge.cert_pem(),
        bridge.port,
        "GET",
        &format!("/api/conferences/{id}/minutes?format=html"),
        &[("Authorization", &auth)],
        "",
    )
    .await;
    assert_eq!(status, 200);
    for words in [
        "BIÊN BẢN HỘI NGHỊ TRỰC TUYẾN",
        "tháng",
        "chưa thực hiện",
        "Kiến nghị về ngân sách phường",
        "Thông qua Nghị quyết quý IV?",
        "mất kết nối",
        "CHỦ TRÌ HỘI NGHỊ",
        "THƯ KÝ HỘI NGHỊ",
    ] {
        assert!(html.contains(words), "the printable minutes lack {words:?}");
    }
    let _ = std::fs::remove_dir_all(&scratch);
}
