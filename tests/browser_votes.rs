//! Votes, notices and calls for help through the pages themselves: in headless Chromium (the
//! chair and Hàng Gai) and Firefox ESR (Cửa Nam), the chair opens a vote from its panel, each
//! ward types its room's counts into its own form (Cửa Nam's first try, over its headcount, is
//! refused on its page), the chair's table adds them up live and closes the vote, and every
//! ward page shows the result; a notice typed by the chair appears on Hàng Gai's page only and
//! goes when someone there presses "Đã rõ", and the chair sees it read; Cửa Nam's call for a
//! technician shows on its button until a technician handles it.

mod common;

use common::browser::{click, fake_media, type_into, until, Browser};
use common::{scratch_dir, TestBridge};
use serde_json::json;
use std::time::Duration;

/// A ward enters its room's counts in its vote form and sends them.
async fn enter_counts(page: &mut Browser, counts: [u32; 3]) {
    for (i, c) in counts.iter().enumerate() {
        type_into(page, &format!("#vote-panel input[name=count-{i}]"), &c.to_string()).await;
    }
    click(page, "#vote-panel button[type=submit]").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vote_a_notice_and_a_call_for_help_run_through_chromium_and_firefox_pages() {
    let bridge = TestBridge::start_default();
    let scratch = scratch_dir("votes");
    let mut hq = Browser::launch("hq", &bridge.join_url("hq"), &fake_media(&scratch, "hq", (220, 30, 30), 440), &scratch).await;
    hq.set_viewport(1366, 768).await;
    let mut gai = Browser::launch("hang-gai", &bridge.join_url("hang-gai"), &fake_media(&scratch, "hang-gai", (30, 200, 30), 660), &scratch).await;
    let mut nam = Browser::launch_firefox("cua-nam", &bridge.join_url("cua-nam"), &scratch).await;
    for page in [&mut hq, &mut gai, &mut nam] {
        until(page, "(window.diemcau?.state()?.sites ?? []).filter(s => s.present).length", json!(3), Duration::from_secs(60), "all three joined").await;
        page.eval("document.getElementById('devices-close')?.click()").await;
    }

    // The chair starts the meeting; each ward enters who attends and how many.
    click(&mut hq, "#meeting").await;
    until(&mut gai, "!document.getElementById('attendance').hidden", json!(true), Duration::from_secs(10), "the attendance form").await;
    for (page, who, count) in [(&mut gai, "Phường Hàng Gai", "12"), (&mut nam, "Phường Cửa Nam", "9")] {
        until(page, "!document.getElementById('attendance').hidden", json!(true), Duration::from_secs(10), "the attendance form").await;
        type_into(page, "#attendees", who).await;
        type_into(page, "#headcount", count).await;
        click(page, "#attendance button[type=submit]").await;
    }

    // The chair opens a vote with the usual options.
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
    // Cửa Nam counts more hands than people present: its own page says so, nothing is counted.
    enter_counts(&mut nam, [20, 0, 0]).await;
    until(
        &mut nam,
        "document.getElementById('notice').textContent.includes('vượt quá số người dự')",
        json!(true),
        Duration::from_secs(10),
        "the over-headcount refusal",
    )
    .await;
    until(
        &mut hq,
        "document.querySelector('#chair-vote tr[data-site=\"cua-nam\"]')?.dataset.sent",
        json!("false"),
        Duration::from_secs(5),
        "Cửa Nam not counted",
    )
    .await;
    enter_counts(&mut nam, [7, 0, 2]).await;
    until(&mut nam, "document.querySelector('#vote-panel .vote-sent')?.dataset.sent", json!("true"), Duration::from_secs(10), "its counts sent").await;
    let totals = "[...document.querySelectorAll('#chair-vote tr.total th')].map(e => e.textContent)";
    until(&mut hq, totals, json!(["Tổng cộng", "18", "1", "2"]), Duration::from_secs(10), "the live totals").await;
    click(&mut hq, "#chair-vote .vote-close").await;
    for page in [&mut gai, &mut nam] {
        until(
            page,
            "document.querySelector('#vote-panel .vote-result')?.textContent ?? ''",
            json!("Tán thành: 18 · Không tán thành: 1 · Ý kiến khác: 2"),
            Duration::from_secs(10),
            "the result",
        )
        .await;
    }

    // A notice to Hàng Gai only: on its page until read; the chair sees it read.
    hq.eval("document.querySelector('#chair-notices select').value = 'hang-gai'").await;
    type_into(&mut hq, "#chair-notices input", "Điểm cầu Hàng Gai đề nghị bật micro").await;
    click(&mut hq, "#chair-notices button[type=submit]").await;
    until(
        &mut gai,
        "document.querySelector('#site-notices p')?.textContent ?? ''",
        json!("Điểm cầu Hàng Gai đề nghị bật micro"),
        Duration::from_secs(10),
        "the notice shown",
    )
    .await;
    assert_eq!(gai.eval("document.getElementById('site-notices').hidden").await, Some(json!(false)));
    assert_eq!(nam.eval("document.getElementById('site-notices').hidden").await, Some(json!(true)), "not for Cửa Nam");
    click(&mut gai, "#site-notices button").await;
    until(&mut gai, "document.getElementById('site-notices').hidden", json!(true), Duration::from_secs(10), "the notice gone once read").await;
    until(&mut hq, "document.querySelector('#chair-notices li')?.dataset.read", json!("true"), Duration::from_secs(10), "the notice read").await;

    // Cửa Nam calls a technician; its button says so until a technician handles it.
    click(&mut nam, "#help").await;
    until(&mut nam, "document.getElementById('help').textContent", json!("Đã báo kỹ thuật viên"), Duration::from_secs(10), "the call shown").await;
    let (_, view) = bridge.tech("GET", "/api/tech", "").await;
    assert_eq!(view["help"][0]["site"], "cua-nam", "{}", view["help"]);
    let (status, _) = bridge.tech("POST", "/api/tech/action", r#"{"site": "cua-nam", "action": "help_done"}"#).await;
    assert_eq!(status, 200);
    until(&mut nam, "document.getElementById('help').textContent", json!("Cần hỗ trợ kỹ thuật"), Duration::from_secs(10), "the call handled").await;

    // The vote is in the minutes the chair's page links to.
    let id = hq.eval("window.diemcau.state().meeting.id").await.and_then(|v| v.as_i64()).unwrap();
    let minutes = bridge.get_json(&format!("/api/conferences/{id}/minutes")).await;
    assert_eq!(minutes["votes"][0]["totals"], json!([18, 1, 2]), "{minutes}");
    assert_eq!(minutes["votes"][0]["tallies"].as_array().map(Vec::len), Some(2));
    click(&mut hq, "#meeting").await; // the chair ends the meeting

    // The secretariat's archive: a records-only account signs in on /records and finds the
    // meeting, its minutes to print with the vote; the technicians' API stays closed to it.
    let mut add = std::process::Command::new(env!("CARGO_BIN_EXE_diemcau"))
        .args(["--data"])
        .arg(&bridge.data)
        .args(["user", "add", "vanphong", "--role", "secretariat", "--password-stdin"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .env("RUST_BACKTRACE", "0")
        .spawn()
        .expect("diemcau user add");
    use std::io::Write;
    add.stdin.take().unwrap().write_all(b"mat-khau-van-phong-2026\n").unwrap();
    let added = add.wait_with_output().unwrap();
    assert!(added.status.success(), "the secretariat's account is added: {}", String::from_utf8_lossy(&added.stderr));
    let (status, _) = bridge.login("vanphong", "mat-khau-van-phong-2026").await;
    assert_eq!(status, 200);
    let mut archive = Browser::launch_builtin("vanphong", &format!("https://localhost:{}/records", bridge.port), &scratch).await;
    until(&mut archive, "!document.getElementById('login').hidden", json!(true), Duration::from_secs(20), "the sign-in form").await;
    type_into(&mut archive, "#user", "vanphong").await;
    type_into(&mut archive, "#password", "mat-khau-van-phong-2026").await;
    click(&mut archive, "#login button[type=submit]").await;
    let row = format!("document.querySelector('#conferences tr[data-conference=\"{id}\"] a')?.getAttribute('href')");
    until(&mut archive, &row, json!(format!("/api/conferences/{id}/minutes?format=html")), Duration::from_secs(10), "the meeting in the archive").await;
    let page = format!("fetch('/api/conferences/{id}/minutes?format=html', {{credentials: 'same-origin'}}).then(r => r.text()).then(t => t.includes('Biểu quyết') && t.includes('Thông qua Nghị quyết quý IV?') && t.includes('CHỦ TRÌ HỘI NGHỊ'))");
    until(&mut archive, &page, json!(true), Duration::from_secs(10), "the minutes to sign, with the vote").await;
    let tech = "fetch('/api/tech', {credentials: 'same-origin'}).then(r => r.status)";
    assert_eq!(archive.eval(tech).await, Some(json!(403)), "the secretariat does not see the technicians' view");
}
