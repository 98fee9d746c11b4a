//! Chairing in real headless Chromium: the chair gives the floor from its page; every page
//! puts that ward on the stage and hears it; the chair's mute stops a ward's audio at the
//! bridge (the other browsers stop receiving its audio packets); a ward's attempt to give
//! itself the floor is refused and changes nothing; the active speaker is highlighted; the
//! floor holder's shared content is shown large everywhere and ends with its floor; the
//! chair edits the programme and starting a speech gives its site the floor; a ward's
//! attendance reaches the minutes the chair's page links to.

mod common;

use common::browser::{colour_of, fake_media, Browser};
use common::{scratch_dir, Deadline, TestBridge};
use serde_json::json;
use std::time::Duration;

const SITES: [(&str, (u8, u8, u8), u32); 3] = [("hq", (220, 30, 30), 440), ("hang-gai", (30, 200, 30), 660), ("cua-nam", (40, 40, 220), 880)];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chair_gives_the_floor_and_mutes_a_ward_and_every_browser_follows() {
    let bridge = TestBridge::start_default();
    let scratch = scratch_dir("ch");
    let mut browsers = Vec::new();
    for (id, rgb, tone) in SITES {
        let media = fake_media(&scratch, id, rgb, tone);
        browsers.push(Browser::launch(id, &bridge.join_url(id), &media, &scratch).await);
    }
    for (i, (me, _, _)) in SITES.iter().enumerate() {
        let deadline = Deadline::after(Duration::from_secs(90), format!("{me} to receive both other sites"));
        loop {
            let r = browsers[i].received().await;
            if SITES.iter().filter(|s| s.0 != *me).all(|s| r.get(s.0).is_some_and(|x| x.frames_decoded > 0.0 && x.audio_energy > 0.0)) {
                break;
            }
            deadline.tick_showing(&r).await;
        }
    }
    // Only the chair's page shows the chair's controls.
    assert_eq!(browsers[0].eval("document.getElementById('chair').hidden").await, Some(json!(false)));
    assert_eq!(browsers[1].eval("document.getElementById('chair').hidden").await, Some(json!(true)));

    // The chair clicks "give the floor" for Hàng Gai.
    let clicked = browsers[0].eval("document.querySelector('#sites tr[data-site=\"hang-gai\"] button.give').click() ?? true").await;
    assert_eq!(clicked, Some(json!(true)));
    for (i, (me, _, _)) in SITES.iter().enumerate() {
        let deadline = Deadline::after(Duration::from_secs(10), format!("{me} to put hang-gai on the stage"));
        loop {
            let floor = browsers[i].eval("document.body.dataset.floor").await;
            let staged = browsers[i].eval("!!document.querySelector('#stage figure[data-site=\"hang-gai\"]')").await;
            if floor == Some(json!("hang-gai")) && staged == Some(json!(true)) {
                break;
            }
            deadline.tick().await;
        }
    }
    for i in [0, 2] {
        let before = browsers[i].received().await["hang-gai"];
        let deadline = Deadline::after(Duration::from_secs(10), format!("{} to hear the floor holder", SITES[i].0));
        while browsers[i].received().await["hang-gai"].audio_energy <= before.audio_energy {
            deadline.tick().await;
        }
    }

    if let Ok(dir) = std::env::var("DIEMCAU_SCREENSHOTS") {
        std::fs::create_dir_all(&dir).unwrap();
        for (i, b) in browsers.iter_mut().enumerate() {
            b.screenshot(&std::path::Path::new(&dir).join(format!("floor-{}.png", SITES[i].0))).await;
        }
    }

    // A ward tries to give itself the floor: refused, nothing changes.
    browsers[2].eval("window.diemcau.client.act({type: 'give_floor', site: 'cua-nam'})").await;
    let deadline = Deadline::after(Duration::from_secs(10), "the refusal notice on cua-nam's page");
    loop {
        let notice = browsers[2].eval("document.getElementById('notice').textContent").await;
        if notice.as_ref().and_then(|n| n.as_str()).is_some_and(|n| n.contains("chỉ chủ trì")) {
            break;
        }
        deadline.tick().await;
    }
    for b in browsers.iter_mut() {
        assert_eq!(b.eval("document.body.dataset.floor").await, Some(json!("hang-gai")));
    }

    // The chair mutes Cửa Nam: the others stop receiving its audio, its video continues.
    browsers[0].eval("document.querySelector('#sites tr[data-site=\"cua-nam\"] button.mute').click()").await;
    let deadline = Deadline::after(Duration::from_secs(10), "cua-nam's audio to stop arriving at hang-gai");
    let mut last = browsers[1].received().await["cua-nam"];
    let mut still = 0;
    loop {
        deadline.tick().await;
        let now = browsers[1].received().await["cua-nam"];
        // Audio packets stand still for three checks in a row while frames keep decoding.
        still = if now.audio_packets == last.audio_packets { still + 1 } else { 0 };
        if still >= 3 && now.frames_decoded > last.frames_decoded {
            break;
        }
        last = now;
    }

    // The chair mutes its own microphone: the floor holder is the only voice left, and every
    // page highlights it as the active speaker (levels come from the audio-level extension).
    browsers[0].eval("document.getElementById('mic').click()").await;
    for (i, (me, _, _)) in SITES.iter().enumerate() {
        let deadline = Deadline::after(Duration::from_secs(10), format!("{me} to show hang-gai speaking"));
        while browsers[i].eval("document.body.dataset.speaking").await != Some(json!("hang-gai")) {
            deadline.tick().await;
        }
        let tile = browsers[i].eval("document.querySelector('figure[data-site=\"hang-gai\"]').dataset.speaking").await;
        assert_eq!(tile, Some(json!("true")));
    }

    // The floor holder shares content (a canvas standing in for slides): every other page
    // shows it large; a ward without the floor may not share.
    let refused =
        browsers[2].eval(&format!("({CANVAS_TRACK}).then(t => window.diemcau.shareTrack(t)).then(() => document.getElementById('notice').textContent)")).await;
    assert!(refused.as_ref().and_then(|n| n.as_str()).is_some_and(|n| n.contains("được trình chiếu")), "{refused:?}");
    assert_eq!(browsers[0].eval("window.diemcau.state().sharing ?? null").await, Some(json!(null)), "nobody shares");
    browsers[1].eval(&format!("({CANVAS_TRACK}).then(t => window.diemcau.shareTrack(t))")).await;
    for i in [0, 2] {
        let deadline = Deadline::after(Duration::from_secs(15), format!("{} to show hang-gai's slides", SITES[i].0));
        loop {
            let c = browsers[i].eval(&colour_of("#content video")).await;
            let shown = browsers[i].eval("!document.getElementById('content').hidden").await == Some(json!(true));
            let yellow = c.as_ref().and_then(|v| v.as_array()).is_some_and(|a| {
                let ch: Vec<f64> = a.iter().filter_map(|x| x.as_f64()).collect();
                ch.len() == 3 && (ch[0] - 230.0).abs() < 40.0 && (ch[1] - 200.0).abs() < 40.0 && ch[2] < 70.0
            });
            if shown && yellow {
                break;
            }
            deadline.tick().await;
        }
    }
    // Taking the floor back ends the ward's share everywhere.
    browsers[0].eval("document.querySelector('#sites tr[data-site=\"hang-gai\"] button.revoke').click()").await;
    for (i, (me, _, _)) in SITES.iter().enumerate() {
        let deadline = Deadline::after(Duration::from_secs(10), format!("{me} to hide the content"));
        while browsers[i].eval("document.getElementById('content').hidden").await != Some(json!(true)) {
            deadline.tick().await;
        }
    }

    // The chair writes a one-item programme in the editor, forgetting its title first: the
    // row says what is missing and nothing typed is lost. Then it starts the item: the speech
    // gives the floor to its site everywhere, and the banner shows the item's timer.
    let first_try = browsers[0]
        .eval(
            "(() => { document.getElementById('edit-agenda').click();
               document.querySelectorAll('#agenda-rows button.remove').forEach((b) => b.click());
               document.getElementById('add-item').click();
               const tr = document.querySelector('#agenda-rows tr'), kind = tr.querySelector('.kind');
               kind.value = 'speech'; kind.dispatchEvent(new Event('change'));
               tr.querySelector('.site').value = 'cua-nam'; tr.querySelector('.minutes').value = '5';
               document.getElementById('agenda-editor').requestSubmit();
               return [document.getElementById('agenda-error').textContent, tr.querySelector('.site').value, document.getElementById('agenda-editor').hidden]; })()",
        )
        .await;
    assert_eq!(first_try, Some(json!(["Chưa lưu — mục 1: chưa có tiêu đề.", "cua-nam", false])), "the row at fault is named, what was typed kept");
    browsers[0]
        .eval("(() => { document.querySelector('#agenda-rows tr .title').value = 'Ý kiến của Cụm Cửa Nam'; document.getElementById('agenda-editor').requestSubmit(); return true; })()")
        .await;
    let deadline = Deadline::after(Duration::from_secs(10), "the new programme in the state, the editor closed");
    while browsers[0].eval("window.diemcau.state().agenda.items.map(i => i.site).join() + ' ' + document.getElementById('agenda-editor').hidden").await
        != Some(json!("cua-nam true"))
    {
        deadline.tick().await;
    }
    browsers[0].eval("document.getElementById('next-item').click()").await;
    for (i, (me, _, _)) in SITES.iter().enumerate() {
        let deadline = Deadline::after(Duration::from_secs(10), format!("{me} to show cua-nam's programme item"));
        loop {
            let floor = browsers[i].eval("document.body.dataset.floor").await;
            let item = browsers[i].eval("document.getElementById('item').textContent").await;
            if floor == Some(json!("cua-nam")) && item.as_ref().and_then(|v| v.as_str()).is_some_and(|t| t.starts_with("Mục 1/1: Ý kiến của Cụm Cửa Nam"))
            {
                break;
            }
            deadline.tick().await;
        }
    }

    // The chair starts the recorded conference; a ward enters its attendance from its page;
    // the chair's page links to the printable minutes, which list it.
    browsers[0].eval("document.getElementById('meeting').click()").await;
    let deadline = Deadline::after(Duration::from_secs(10), "the attendance form on hang-gai's page");
    while browsers[1].eval("document.getElementById('attendance').hidden").await != Some(json!(false)) {
        deadline.tick().await;
    }
    browsers[1]
        .eval("document.getElementById('attendees').value = 'Phường Hàng Gai'; document.getElementById('headcount').value = '9'; document.getElementById('attendance').requestSubmit()")
        .await;
    // The link carries no credential: the chair's browser opens it with its session cookie.
    let deadline = Deadline::after(Duration::from_secs(10), "the minutes to list hang-gai's attendance");
    loop {
        let page = browsers[0].eval("fetch(document.getElementById('minutes').href).then(async (r) => `${r.status} ${await r.text()}`)").await;
        if page.as_ref().and_then(|p| p.as_str()).is_some_and(|p| p.starts_with("200 ") && p.contains("Phường Hàng Gai")) {
            break;
        }
        deadline.tick().await;
    }
    let href = browsers[0].eval("document.getElementById('minutes').href").await.unwrap_or_default();
    let path = href.as_str().unwrap_or("").splitn(4, '/').nth(3).map(|p| format!("/{p}")).unwrap_or_default();
    let (status, _) = common::ws::https_request(&bridge.cert_pem(), bridge.port, "GET", &path, &[], "").await;
    assert_eq!(status, 401, "without the chair's session the minutes stay closed");
    drop(browsers);
    let _ = std::fs::remove_dir_all(&scratch);
}

/// A 320x240 canvas painted yellow with a moving bar, as a video track (stands in for a
/// shared screen: headless Chromium has no screen to capture).
const CANVAS_TRACK: &str = "new Promise((resolve) => {
    const c = document.createElement('canvas'); c.width = 320; c.height = 240;
    const g = c.getContext('2d');
    setInterval(() => { g.fillStyle = 'rgb(230,200,20)'; g.fillRect(0, 0, 320, 240);
                        g.fillStyle = '#000'; g.fillRect((Date.now() / 10) % 320, 0, 8, 30); }, 100);
    resolve(c.captureStream(10).getVideoTracks()[0]);
})";
