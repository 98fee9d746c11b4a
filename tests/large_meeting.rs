//! A meeting larger than a page: with 4 video and 2 audio slots, each site receives HQ, the
//! floor holder and a page of thumbnails, and hears HQ, the floor holder and the loudest;
//! nothing else is forwarded to it; turning the page brings other thumbnails.

mod common;

use common::sim::Sim;
use common::{wait_until, TestBridge};
use serde_json::{json, Value};
use std::time::Duration;

const WARDS: usize = 9;

/// A config of HQ and nine wards, with few slots per page.
fn config() -> String {
    let mut c = String::from("[conference]\ntitle = \"Hội nghị mở rộng\"\nvideo_slots = 4\naudio_slots = 2\n\n");
    c.push_str("[[sites]]\nid = \"hq\"\nname = \"Trụ sở\"\nrole = \"chair\"\nkey = \"hq-key-0123456789abcdef\"\n\n");
    for i in 1..=WARDS {
        c.push_str(&format!("[[sites]]\nid = \"p{i}\"\nname = \"Phường {i}\"\nrole = \"site\"\nkey = \"p{i}-key-0123456789abcdef\"\n\n"));
    }
    c
}

fn latest_view(sim: &Sim) -> Value {
    sim.messages.lock().unwrap().iter().rev().find(|m| m["type"] == "view").cloned().unwrap_or(Value::Null)
}

fn sites_in(view: &Value, kind: &str) -> Vec<String> {
    view[kind].as_array().into_iter().flatten().filter_map(|s| s.as_str().map(str::to_string)).collect()
}

/// Waits until `sim` receives `kind` from exactly `want` (and from nobody else during the wait).
async fn receives_only(sim: &Sim, kind: &str, want: &[&str], all: &[String]) {
    let before: Vec<u64> = all.iter().map(|s| sim.received(s, kind)).collect();
    let what = format!("{} to receive {kind} from {want:?} only", sim.site);
    wait_until(Duration::from_secs(20), &what, || async {
        let gained: Vec<bool> = all.iter().zip(&before).map(|(s, b)| sim.received(s, kind) > b + 5).collect();
        let ok = all.iter().zip(&gained).all(|(s, g)| *g == want.contains(&s.as_str()));
        ok.then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_site_gets_the_stage_a_page_of_thumbnails_and_the_loudest_voices() {
    let data = common::scratch_dir("large");
    let path = data.join("large.toml");
    std::fs::write(&path, config()).unwrap();
    let bridge = TestBridge::start_with(path, data);
    let key = |id: &str| format!("{id}-key-0123456789abcdef");
    let ids: Vec<String> = std::iter::once("hq".to_string()).chain((1..=WARDS).map(|i| format!("p{i}"))).collect();
    let mut sims = Vec::new();
    for id in &ids {
        sims.push(Sim::join(&bridge.cert_pem(), bridge.port, id, &key(id)).await);
    }
    let me = &sims[WARDS]; // p9, the last ward
                           // Video: HQ, then the first three others of config order; audio: HQ and one more.
    wait_until(Duration::from_secs(30), "p9's view", || async { (sites_in(&latest_view(me), "video").len() == 4).then_some(()) }).await;
    let view = latest_view(me);
    assert_eq!(sites_in(&view, "video"), ["hq", "p1", "p2", "p3"], "{view}");
    assert_eq!(view["pages"], 3, "eight others beyond HQ, three per page");
    receives_only(me, "video", &["hq", "p1", "p2", "p3"], &ids).await;
    receives_only(me, "audio", &["hq", "p1"], &ids).await;

    // The chair mutes every ward and gives the floor to p7: p9 hears HQ and p7, sees them
    // on the stage and p1, p2 in the rest of the page.
    sims[0].send(json!({"type": "mute_all", "muted": true}));
    sims[0].send(json!({"type": "give_floor", "site": "p7"}));
    wait_until(Duration::from_secs(10), "p9's view with p7 on the stage", || async {
        sites_in(&latest_view(me), "audio").contains(&"p7".to_string()).then_some(())
    })
    .await;
    let mut video = sites_in(&latest_view(me), "video");
    video.sort();
    assert_eq!(video, ["hq", "p1", "p2", "p7"]);
    receives_only(me, "audio", &["hq", "p7"], &ids).await;
    receives_only(me, "video", &["hq", "p1", "p2", "p7"], &ids).await;

    // The next page of thumbnails.
    me.send(json!({"type": "view_page", "page": 1}));
    wait_until(Duration::from_secs(10), "page 2", || async { (latest_view(me)["page"] == 1).then_some(()) }).await;
    let mut video = sites_in(&latest_view(me), "video");
    video.sort();
    assert_eq!(video, ["hq", "p3", "p4", "p7"], "HQ and the floor stay; the next two of the others");
    receives_only(me, "video", &["hq", "p3", "p4", "p7"], &ids).await;
    let health = bridge.get_json("/api/health").await;
    assert_eq!(health["media"]["dropped_queue_full"], 0);
}
