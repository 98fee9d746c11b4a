//! The event log as technicians read it on `/tech`: each stored [`Event`] becomes a stable
//! `code` with its parameters (numbers, site ids, titles — never session ids or request
//! numbers), which the page words in Vietnamese or English. It owns only that reading, and
//! knows the detail formats the writers use (the conference actor, the health monitor, the
//! technicians' API, the command line); it never writes the log and never words a sentence.
//! An event it does not know keeps its kind and detail as `other`, so nothing is hidden.

use crate::store::Event;
use serde::Serialize;
use serde_json::{json, Map, Value};

/// One line of the technicians' event log.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct JournalEntry {
    pub(crate) at_ms: i64,
    /// The site the event concerns (its id); `None` for the bridge as a whole.
    pub(crate) site_id: Option<String>,
    /// The kind as stored (`alarm_raised:one_way_audio`), for styling and scripts.
    pub(crate) kind: String,
    /// What the page words: `join`, `alarm_raised`, `readiness_check`, …
    pub(crate) code: String,
    pub(crate) params: Map<String, Value>,
}

fn params(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// Reads one stored event.
pub(crate) fn entry(e: &Event) -> JournalEntry {
    let (code, p) = code_and_params(e);
    JournalEntry { at_ms: e.at_ms, site_id: e.site_id.clone(), kind: e.kind.clone(), code: code.to_string(), params: params(p) }
}

fn code_and_params(e: &Event) -> (&str, Value) {
    let detail = e.detail.as_str();
    if let Some(alarm) = e.kind.strip_prefix("alarm_raised:") {
        // The monitor stores the reason's code and numbers beside its English detail; older
        // rows have the English only.
        return match e.params.as_deref().and_then(|p| serde_json::from_str::<Value>(p).ok()) {
            Some(reason) => ("alarm_raised", json!({"alarm": alarm, "reason": reason})),
            None => ("alarm_raised", json!({"alarm": alarm, "text": detail})),
        };
    }
    if let Some(alarm) = e.kind.strip_prefix("alarm_cleared:") {
        let seconds = detail.trim_end_matches(" s").trim().parse::<f64>().unwrap_or(0.0);
        return ("alarm_cleared", json!({"alarm": alarm, "seconds": seconds}));
    }
    let none = json!({});
    match e.kind.as_str() {
        // Session ids and request numbers are for the store, not for people.
        "join" if detail == "present at the start" => ("join_at_start", none),
        "leave" if detail == "present at the end" => ("leave_at_end", none),
        kind @ ("join" | "rejoin" | "reconnect" | "join_held_seat" | "connection_lost" | "leave" | "hard_mute" | "hard_mute_released" | "mute_all"
        | "unmute_all" | "locked" | "unlocked" | "share_start" | "share_stop" | "floor_requested" | "floor_cancelled" | "floor_granted"
        | "floor_denied" | "floor_revoked" | "floor_released" | "conference_started" | "conference_ended" | "recording_started" | "ice_restart"
        | "tech_keyframe" | "tech_restart_ice" | "tech_drop" | "key_rotated" | "bridge_restarted") => (kind, none),
        "seat_released" if detail.contains("key") => ("seat_released_key", none),
        "seat_released" => ("seat_released", none),
        "recording_stopped" => match detail {
            "server shutdown" => ("recording_stopped_shutdown", none),
            "the conference ended" => ("recording_stopped_end", none),
            _ => ("recording_stopped", none),
        },
        "recording_failed" => ("recording_failed", json!({"error": detail})),
        "composition_done" => ("composition_done", json!({"recording": detail})),
        "composition_failed" => {
            // `<recording>: <error>`, with both as params from the composer.
            let p: Value = e.params.as_deref().and_then(|p| serde_json::from_str(p).ok()).unwrap_or_default();
            match (p["recording"].as_str(), p["error"].as_str()) {
                (Some(r), Some(err)) => ("composition_failed", json!({"recording": r, "error": err})),
                _ => ("composition_failed", json!({"recording": "", "error": detail})),
            }
        }
        "mute" => {
            let flag = |name: &str| detail.split_whitespace().any(|w| w == format!("{name}=true"));
            ("mute", json!({"audio_muted": flag("audio_muted"), "video_muted": flag("video_muted")}))
        }
        "layout" => ("layout", json!({"layout": detail.to_lowercase()})),
        "agenda_item_started" => {
            // `index\tplanned minutes\ttitle`; people count items from 1.
            let mut f = detail.splitn(3, '\t');
            let index = f.next().and_then(|x| x.parse::<u64>().ok()).unwrap_or(0);
            let minutes = f.next().and_then(|x| x.parse::<u64>().ok()).unwrap_or(0);
            let title = f.next().unwrap_or("");
            ("agenda_item_started", json!({"item": index + 1, "minutes": minutes, "title": title}))
        }
        "agenda_item_ended" => ("agenda_item_ended", json!({"item": detail.trim().parse::<u64>().map(|i| i + 1).unwrap_or(0)})),
        "readiness_check" => {
            // `hq=pass hang-gai=fail …`
            let of = |verdict: &str| -> Vec<&str> {
                detail.split_whitespace().filter_map(|w| w.split_once('=')).filter(|(_, v)| *v == verdict).map(|(site, _)| site).collect()
            };
            ("readiness_check", json!({"passed": of("pass"), "failed": of("fail")}))
        }
        "user_changed" => ("user_changed", json!({"user": detail.split(" (").next().unwrap_or(detail)})),
        "user_removed" => ("user_removed", json!({"user": detail})),
        "vote_opened" => ("vote_opened", json!({"question": detail})),
        "vote_counts" => ("vote_counts", json!({"counts": detail})),
        "vote_closed" => ("vote_closed", json!({"result": detail})),
        "notice_sent" => {
            let p: Value = e.params.as_deref().and_then(|p| serde_json::from_str(p).ok()).unwrap_or_default();
            let code = if p["from"] == "technician" { "notice_sent_tech" } else { "notice_sent" };
            (code, json!({"text": detail, "to": p["to"]}))
        }
        "notice_acked" => ("notice_acked", none),
        "tech_line" => {
            // The ceilings as params from the technicians' API (`null`: none).
            let p: Value = e.params.as_deref().and_then(|p| serde_json::from_str(p).ok()).unwrap_or_default();
            ("tech_line", json!({"down_kbps": p["down_kbps"], "up_kbps": p["up_kbps"]}))
        }
        "help_requested" => ("help_requested", json!({"text": detail})),
        "help_done" => ("help_done", none),
        _ => ("other", json!({"kind": e.kind, "detail": detail})),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(kind: &str, detail: &str) -> Event {
        Event { at_ms: 1_700_000_000_000, site_id: Some("hang-gai".into()), kind: kind.into(), detail: detail.into(), params: None }
    }

    fn read(kind: &str, detail: &str) -> (String, Value) {
        let e = entry(&ev(kind, detail));
        (e.code, Value::Object(e.params))
    }

    #[test]
    fn a_technicians_ceilings_are_read_from_their_params() {
        let mut e = ev("tech_line", "downlink 700 kbit/s, uplink none");
        e.params = Some(r#"{"down_kbps":700,"up_kbps":null}"#.into());
        let read = entry(&e);
        assert_eq!((read.code.as_str(), Value::Object(read.params)), ("tech_line", json!({"down_kbps": 700, "up_kbps": null})));
    }

    #[test]
    fn joins_and_losses_carry_no_session_ids() {
        let session = "6f1c2a9e-4b7d-4c1e-9a3f-2d5e8b7c6a10";
        for kind in ["join", "reconnect", "rejoin", "join_held_seat", "connection_lost", "leave"] {
            let (code, params) = read(kind, session);
            assert_eq!(code, kind);
            assert_eq!(params, json!({}), "{kind} shows no session id");
        }
        assert_eq!(read("join", "present at the start").0, "join_at_start");
        assert_eq!(read("leave", "present at the end").0, "leave_at_end");
        assert_eq!(read("floor_granted", "17"), ("floor_granted".into(), json!({})));
    }

    #[test]
    fn an_alarm_keeps_its_reason_as_a_code_and_numbers() {
        let mut e = ev("alarm_raised:high_rtt", "rtt 530 ms > 300 ms");
        e.params = Some(r#"{"code":"high_rtt","ms":530.0,"limit":300.0}"#.into());
        let entry = entry(&e);
        assert_eq!(entry.code, "alarm_raised");
        assert_eq!(entry.kind, "alarm_raised:high_rtt");
        assert_eq!(Value::Object(entry.params), json!({"alarm": "high_rtt", "reason": {"code": "high_rtt", "ms": 530.0, "limit": 300.0}}));
        // A row written before reasons were stored keeps its English.
        assert_eq!(read("alarm_raised:high_rtt", "rtt 530 ms > 300 ms").1, json!({"alarm": "high_rtt", "text": "rtt 530 ms > 300 ms"}));
        assert_eq!(read("alarm_cleared:site_dropped", "12 s"), ("alarm_cleared".into(), json!({"alarm": "site_dropped", "seconds": 12.0})));
    }

    #[test]
    fn details_written_as_text_become_parameters() {
        assert_eq!(read("mute", "audio_muted=true video_muted=false").1, json!({"audio_muted": true, "video_muted": false}));
        assert_eq!(read("layout", "Grid").1, json!({"layout": "grid"}));
        assert_eq!(read("agenda_item_started", "1\t7\tPhát biểu của Cụm Hàng Gai").1, json!({"item": 2, "minutes": 7, "title": "Phát biểu của Cụm Hàng Gai"}));
        assert_eq!(read("agenda_item_ended", "1").1, json!({"item": 2}));
        assert_eq!(read("readiness_check", "hq=pass hang-gai=fail cua-nam=fail").1, json!({"passed": ["hq"], "failed": ["hang-gai", "cua-nam"]}));
        assert_eq!(read("seat_released", "grace period over; floor returned to the chair").0, "seat_released");
        assert_eq!(read("seat_released", "the site's key was re-issued").0, "seat_released_key");
        assert_eq!(read("recording_stopped", "server shutdown").0, "recording_stopped_shutdown");
        assert_eq!(read("user_changed", "kythuat2 (technician)").1, json!({"user": "kythuat2"}));
    }

    /// Every code the technicians' page may be sent has its words in both languages.
    #[test]
    fn every_code_has_words_in_vietnamese_and_english() {
        use crate::health::alarms::{Reason, VideoCause};
        use crate::health::monitor::Finding;
        let stored = [
            ("join", ""),
            ("join", "present at the start"),
            ("rejoin", ""),
            ("reconnect", ""),
            ("join_held_seat", ""),
            ("connection_lost", ""),
            ("leave", ""),
            ("leave", "present at the end"),
            ("seat_released", "grace period over; floor returned to the chair"),
            ("seat_released", "the site's key was re-issued"),
            ("mute", "audio_muted=true video_muted=false"),
            ("hard_mute", ""),
            ("hard_mute_released", ""),
            ("mute_all", ""),
            ("unmute_all", ""),
            ("layout", "Stage"),
            ("layout", "Grid"),
            ("locked", ""),
            ("unlocked", ""),
            ("share_start", ""),
            ("share_stop", ""),
            ("floor_requested", ""),
            ("floor_cancelled", ""),
            ("floor_granted", ""),
            ("floor_denied", ""),
            ("floor_revoked", ""),
            ("floor_released", ""),
            ("conference_started", ""),
            ("conference_ended", ""),
            ("recording_started", ""),
            ("recording_stopped", "by the chair"),
            ("recording_stopped", "server shutdown"),
            ("recording_stopped", "the conference ended"),
            ("recording_failed", "disk full"),
            ("composition_done", "2026-12-05_08-00-00"),
            ("composition_failed", "2026-12-05_08-00-00: ffmpeg failed"),
            ("agenda_item_started", "0\t20\tBáo cáo"),
            ("agenda_item_ended", "0"),
            ("ice_restart", ""),
            ("tech_keyframe", ""),
            ("tech_restart_ice", ""),
            ("tech_drop", ""),
            ("tech_line", "downlink 1000 kbit/s, uplink none"),
            ("key_rotated", ""),
            ("readiness_check", "hq=pass hang-gai=fail"),
            ("user_changed", "kythuat (technician)"),
            ("user_removed", "kythuat"),
            ("vote_opened", "Thông qua nghị quyết?"),
            ("vote_counts", "10/1/0"),
            ("vote_closed", "Tán thành: 10; Không tán thành: 1; Ý kiến khác: 0"),
            ("notice_sent", "Đề nghị bật micro"),
            ("notice_acked", "3"),
            ("help_requested", "Không nghe thấy"),
            ("help_done", "by a technician"),
            ("bridge_restarted", ""),
            ("alarm_raised:site_dropped", ""),
            ("alarm_cleared:site_dropped", "3 s"),
            ("something_new", ""),
        ];
        let mut keys: Vec<String> = Vec::new();
        for (kind, detail) in stored {
            match read(kind, detail).0.as_str() {
                "readiness_check" => keys.extend(["tech.event.readiness_passed".into(), "tech.event.readiness_failed".into()]),
                code => keys.push(format!("tech.event.{code}")),
            }
        }
        keys.extend(["stage", "grid"].map(|l| format!("tech.layout.{l}")));
        let reasons = [
            Reason::NoMedia { seconds: 1.0 },
            Reason::NoMediaSinceJoining { seconds: 1.0 },
            Reason::ConnectionLost { seconds: 1.0 },
            Reason::SiteDoesNotHearHq,
            Reason::HqDoesNotHearSite,
            Reason::NoAudioEitherWay,
            Reason::FloorHolderSilent { level: 0.0, limit: 0.02 },
            Reason::FrozenVideo { cause: None },
            Reason::HighLoss { percent: 9.0, limit: 5.0 },
            Reason::HighRtt { ms: 400.0, limit: 300.0 },
            Reason::RecordingFailed { error: String::new() },
            Reason::CompositionFailed { recording: String::new(), error: String::new() },
            Reason::StorageFailed { path: String::new(), problem: crate::store::fault::Problem::DiskFull, error: String::new() },
            Reason::OverBudget { budget: "ssrcs", refused: 1 },
            Reason::StrangerTraffic { refused: 1 },
        ];
        keys.extend(["over_budget", "stranger_traffic", "composition_failed"].map(|a| format!("alarm.{a}")));
        keys.extend(crate::health::board::Budget::ALL.map(|b| format!("tech.budget.{}", b.code())));
        let code = |v: Value| v["code"].as_str().unwrap().to_string();
        keys.extend(reasons.into_iter().map(|r| format!("tech.reason.{}", code(json!(r)))));
        let causes = [VideoCause::Refused { detail: String::new() }, VideoCause::NoVideoPackets, VideoCause::NoPictures];
        keys.extend(causes.into_iter().map(|c| format!("tech.cause.{}", code(json!(c)))));
        let findings = [
            Finding::NotJoined,
            Finding::Held { seconds_left: 1 },
            Finding::Joined,
            Finding::AudioPackets { pps: 0.0 },
            Finding::NoReport,
            Finding::ReceivesAudio,
            Finding::ReceivesNoAudio,
            Finding::Level { level: 0.0 },
            Finding::Frames { fps: 0.0 },
            Finding::Rtt { ms: 0.0, limit: 0.0 },
            Finding::RttUnknown,
            Finding::Loss { percent: 0.0, limit: 0.0 },
        ];
        keys.extend(findings.into_iter().map(|f| format!("tech.check_reason.{}", code(json!(f)))));
        for (lang, text) in [("vi", include_str!("../../web/i18n/vi.json")), ("en", include_str!("../../web/i18n/en.json"))] {
            let strings: Value = serde_json::from_str(text).unwrap();
            let missing: Vec<&String> = keys.iter().filter(|k| strings.get(k.as_str()).is_none()).collect();
            assert!(missing.is_empty(), "{lang}.json has no words for {missing:?}");
        }
    }

    #[test]
    fn an_unknown_event_is_shown_as_stored() {
        assert_eq!(read("something_new", "as it was"), ("other".into(), json!({"kind": "something_new", "detail": "as it was"})));
    }
}
