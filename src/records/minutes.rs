//! The minutes of one conference, derived from its events. Pure: no clock, no store.

use crate::store::{AttendanceEntry, ConferenceRecord, Event};
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub(crate) struct Minutes {
    pub(crate) conference: ConferenceRecord,
    /// The chair's site id (who started the conference).
    pub(crate) chair: Option<String>,
    pub(crate) programme: Vec<ItemRecord>,
    /// Planned items never started, in programme order.
    pub(crate) not_reached: Vec<PlannedItem>,
    pub(crate) speakers: Vec<SpeechRecord>,
    pub(crate) requests: Vec<RequestRecord>,
    pub(crate) attendance: Vec<SiteAttendance>,
    /// Every alarm raised during the conference (the technical appendix).
    pub(crate) incidents: Vec<Incident>,
    /// The incidents that mattered, merged (see [`notable`]).
    pub(crate) notable_incidents: Vec<Incident>,
    pub(crate) recordings: Vec<RecordingRecord>,
    pub(crate) votes: Vec<VoteRecord>,
}

/// A vote and its result, as closed by the chair (or still open when the minutes were made).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub(crate) struct VoteRecord {
    pub(crate) question: String,
    pub(crate) options: Vec<String>,
    pub(crate) opened_ms: i64,
    pub(crate) closed_ms: Option<i64>,
    /// Per site id that entered counts: its counts, one per option.
    pub(crate) tallies: Vec<(String, Vec<u64>)>,
    pub(crate) totals: Vec<u64>,
}

/// A recording made during the conference (its files are listed in its `index.json`).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub(crate) struct RecordingRecord {
    pub(crate) id: String,
    pub(crate) started_ms: i64,
    pub(crate) stopped_ms: Option<i64>,
    /// Why it stopped early, if it failed.
    pub(crate) error: Option<String>,
}

/// An item of the planned programme (the last one the chair set).
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub(crate) struct PlannedItem {
    pub(crate) title: String,
    /// `report`, `speech` or `directive`.
    pub(crate) kind: String,
    #[serde(default)]
    pub(crate) site: Option<String>,
    pub(crate) planned_minutes: u32,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub(crate) struct ItemRecord {
    pub(crate) index: usize,
    pub(crate) title: String,
    /// `report`, `speech` or `directive`, when the event log says.
    pub(crate) kind: Option<String>,
    pub(crate) planned_minutes: u32,
    pub(crate) started_ms: i64,
    pub(crate) ended_ms: Option<i64>,
    pub(crate) actual_seconds: f64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub(crate) struct SpeechRecord {
    pub(crate) site: String,
    /// The floor request; 0 for the chair speaking in a report or directive item.
    pub(crate) request: u64,
    /// The programme item's title, for the chair's report or directive.
    pub(crate) item: Option<String>,
    pub(crate) started_ms: i64,
    pub(crate) ended_ms: Option<i64>,
    pub(crate) seconds: f64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub(crate) struct RequestRecord {
    pub(crate) request: u64,
    pub(crate) site: String,
    pub(crate) at_ms: i64,
    pub(crate) topic: Option<String>,
    /// `pending`, `granted`, `denied`, `cancelled`.
    pub(crate) outcome: String,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub(crate) struct SiteAttendance {
    pub(crate) site: String,
    pub(crate) name: String,
    pub(crate) first_join_ms: Option<i64>,
    pub(crate) last_leave_ms: Option<i64>,
    pub(crate) present_seconds: f64,
    pub(crate) reconnects: u32,
    pub(crate) attendees: String,
    pub(crate) headcount: Option<i64>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub(crate) struct Incident {
    pub(crate) site: String,
    pub(crate) alarm: String,
    pub(crate) raised_ms: i64,
    pub(crate) cleared_ms: Option<i64>,
    pub(crate) detail: String,
}

/// Builds the minutes. `sites` are (id, name) in config order; `now_ms` closes intervals
/// still open (a running conference).
pub(crate) fn build(conference: ConferenceRecord, events: &[Event], attendance: &[AttendanceEntry], sites: &[(String, String)], now_ms: i64) -> Minutes {
    let end = conference.ended_ms.unwrap_or(now_ms);
    let secs = |a: i64, b: Option<i64>| (b.unwrap_or(end) - a).max(0) as f64 / 1000.0;
    let mut programme: Vec<ItemRecord> = Vec::new();
    let mut speakers: Vec<SpeechRecord> = Vec::new();
    let mut requests: BTreeMap<u64, RequestRecord> = BTreeMap::new();
    let mut incidents: Vec<Incident> = Vec::new();
    let mut recordings: Vec<RecordingRecord> = Vec::new();
    let mut votes: Vec<VoteRecord> = Vec::new();
    let mut present_since: BTreeMap<String, i64> = BTreeMap::new();
    let mut planned: Vec<PlannedItem> = Vec::new();
    let mut chair: Option<String> = None;
    // Speeches cut when their site lost its connection (request per site): the seat hold is
    // not speaking time; the speech goes on if the site comes back holding the floor.
    let mut cut: BTreeMap<String, (u64, Option<String>)> = BTreeMap::new();
    // The running programme item: its title, and the site it names for a speech.
    let mut running: Option<(String, Option<String>)> = None;
    let mut att: BTreeMap<String, SiteAttendance> = sites
        .iter()
        .map(|(id, name)| {
            let entered = attendance.iter().find(|a| &a.site_id == id);
            (
                id.clone(),
                SiteAttendance {
                    site: id.clone(),
                    name: name.clone(),
                    first_join_ms: None,
                    last_leave_ms: None,
                    present_seconds: 0.0,
                    reconnects: 0,
                    attendees: entered.map(|a| a.attendees.clone()).unwrap_or_default(),
                    headcount: entered.and_then(|a| a.headcount),
                },
            )
        })
        .collect();

    for e in events {
        let site = e.site_id.clone().unwrap_or_default();
        let request = e.detail.parse::<u64>().unwrap_or(0);
        let params: serde_json::Value = e.params.as_deref().and_then(|p| serde_json::from_str(p).ok()).unwrap_or_default();
        match e.kind.as_str() {
            "conference_started" => chair = Some(site.clone()),
            "programme" => planned = serde_json::from_value(params["items"].clone()).unwrap_or_default(),
            "join" | "rejoin" | "reconnect" | "join_held_seat" => {
                if let Some(a) = att.get_mut(&site) {
                    a.first_join_ms.get_or_insert(e.at_ms);
                    if e.kind == "reconnect" || e.kind == "join_held_seat" {
                        a.reconnects += 1;
                    }
                }
                if let Some((request, item)) = cut.remove(&site) {
                    speakers.push(SpeechRecord { site: site.clone(), request, item, started_ms: e.at_ms, ended_ms: None, seconds: 0.0 });
                }
                present_since.entry(site).or_insert(e.at_ms);
            }
            "leave" | "connection_lost" => {
                if let (Some(a), Some(since)) = (att.get_mut(&site), present_since.remove(&site)) {
                    a.present_seconds += secs(since, Some(e.at_ms));
                    a.last_leave_ms = Some(e.at_ms);
                }
                if let Some(s) = speakers.iter_mut().rev().find(|s| s.site == site && s.request != 0 && s.ended_ms.is_none()) {
                    s.ended_ms = Some(e.at_ms);
                    if e.kind == "connection_lost" {
                        cut.insert(site, (s.request, s.item.clone()));
                    }
                }
            }
            "floor_requested" => {
                let topic = params["topic"].as_str().map(str::to_owned);
                requests.insert(request, RequestRecord { request, site, at_ms: e.at_ms, topic, outcome: "pending".into() });
            }
            "floor_granted" => {
                if let Some(r) = requests.get_mut(&request) {
                    r.outcome = "granted".into();
                }
                // The floor given to the site the running item names is that item's speech;
                // any other is a request's, and its topic says what it was about.
                let item = running.as_ref().filter(|(_, speaker)| speaker.as_deref() == Some(site.as_str())).map(|(title, _)| title.clone());
                speakers.push(SpeechRecord { site, request, item, started_ms: e.at_ms, ended_ms: None, seconds: 0.0 });
            }
            "floor_denied" | "floor_cancelled" => {
                if let Some(r) = requests.get_mut(&request) {
                    r.outcome = e.kind.trim_start_matches("floor_").into();
                }
            }
            "floor_revoked" | "floor_released" => {
                cut.retain(|_, (r, _)| *r != request);
                if let Some(s) = speakers.iter_mut().rev().find(|s| s.request == request && s.ended_ms.is_none()) {
                    s.ended_ms = Some(e.at_ms);
                }
            }
            "agenda_item_started" => {
                let mut f = e.detail.splitn(3, '\t');
                let index = f.next().and_then(|x| x.parse().ok()).unwrap_or(0);
                let planned_minutes = f.next().and_then(|x| x.parse().ok()).unwrap_or(0);
                let title = f.next().unwrap_or("").to_string();
                let kind = params["kind"].as_str().map(str::to_owned);
                // In a report or a directive the chair speaks, without a floor request.
                if matches!(kind.as_deref(), Some("report" | "directive")) {
                    speakers.push(SpeechRecord {
                        site: site.clone(),
                        request: 0,
                        item: Some(title.clone()),
                        started_ms: e.at_ms,
                        ended_ms: None,
                        seconds: 0.0,
                    });
                }
                running = Some((title.clone(), params["site"].as_str().map(str::to_owned)));
                programme.push(ItemRecord { index, title, kind, planned_minutes, started_ms: e.at_ms, ended_ms: None, actual_seconds: 0.0 });
            }
            "agenda_item_ended" => {
                let index: usize = e.detail.split('\t').next().and_then(|x| x.parse().ok()).unwrap_or(0);
                if let Some(item) = programme.iter_mut().rev().find(|i| i.index == index && i.ended_ms.is_none()) {
                    item.ended_ms = Some(e.at_ms);
                    let title = item.title.clone();
                    running.take_if(|(t, _)| *t == title);
                    if let Some(s) = speakers.iter_mut().rev().find(|s| s.request == 0 && s.item.as_deref() == Some(&title) && s.ended_ms.is_none()) {
                        s.ended_ms = Some(e.at_ms);
                    }
                }
            }
            "recording_started" => {
                recordings.push(RecordingRecord { id: e.detail.clone(), started_ms: e.at_ms, stopped_ms: None, error: None });
            }
            "recording_stopped" | "recording_failed" => {
                if let Some(r) = recordings.iter_mut().rev().find(|r| r.stopped_ms.is_none()) {
                    r.stopped_ms = Some(e.at_ms);
                    if e.kind == "recording_failed" {
                        r.error = Some(e.detail.clone());
                    }
                }
            }
            "vote_opened" => {
                let p: serde_json::Value = e.params.as_deref().and_then(|p| serde_json::from_str(p).ok()).unwrap_or_default();
                let options: Vec<String> =
                    p["options"].as_array().map(|a| a.iter().filter_map(|o| o.as_str().map(str::to_owned)).collect()).unwrap_or_default();
                let totals = vec![0; options.len()];
                votes.push(VoteRecord { question: e.detail.clone(), options, opened_ms: e.at_ms, closed_ms: None, tallies: Vec::new(), totals });
            }
            "vote_counts" => {
                if let Some(v) = votes.last_mut().filter(|v| v.closed_ms.is_none()) {
                    // The counts are in the params; logs written before they were carry them
                    // only in the detail ("11/1/0").
                    let counts: Vec<u64> =
                        serde_json::from_value(params["counts"].clone()).unwrap_or_else(|_| e.detail.split('/').filter_map(|c| c.parse().ok()).collect());
                    v.tallies.retain(|(s, _)| *s != site);
                    v.tallies.push((site, counts));
                    v.totals = (0..v.options.len()).map(|i| v.tallies.iter().map(|(_, c)| c.get(i).copied().unwrap_or(0)).sum()).collect();
                }
            }
            "vote_closed" => {
                if let Some(v) = votes.last_mut().filter(|v| v.closed_ms.is_none()) {
                    v.closed_ms = Some(e.at_ms);
                }
            }
            "bridge_restarted" => {
                // Everyone was cut off while the bridge was down: presence resumes when each
                // site is back, and a recording the restart interrupted ends here.
                for (site, since) in std::mem::take(&mut present_since) {
                    if let Some(a) = att.get_mut(&site) {
                        a.present_seconds += secs(since, Some(e.at_ms));
                    }
                }
                for r in recordings.iter_mut().filter(|r| r.stopped_ms.is_none()) {
                    r.stopped_ms = Some(e.at_ms);
                    r.error = Some("interrupted by a restart of the bridge".into());
                }
                incidents.push(Incident {
                    site: String::new(),
                    alarm: e.kind.clone(),
                    raised_ms: e.at_ms,
                    cleared_ms: Some(e.at_ms),
                    detail: e.detail.clone(),
                });
            }
            kind if kind.starts_with("alarm_raised:") => {
                incidents.push(Incident {
                    site,
                    alarm: kind.trim_start_matches("alarm_raised:").into(),
                    raised_ms: e.at_ms,
                    cleared_ms: None,
                    detail: e.detail.clone(),
                });
            }
            kind if kind.starts_with("alarm_cleared:") => {
                let alarm = kind.trim_start_matches("alarm_cleared:");
                if let Some(i) = incidents.iter_mut().rev().find(|i| i.site == site && i.alarm == alarm && i.cleared_ms.is_none()) {
                    i.cleared_ms = Some(e.at_ms);
                }
            }
            _ => {}
        }
    }
    for (site, since) in present_since {
        if let Some(a) = att.get_mut(&site) {
            a.present_seconds += secs(since, None);
        }
    }
    for s in &mut speakers {
        s.seconds = secs(s.started_ms, s.ended_ms);
    }
    for i in &mut programme {
        i.actual_seconds = secs(i.started_ms, i.ended_ms);
    }
    let not_reached = planned.into_iter().enumerate().filter(|(i, _)| !programme.iter().any(|p| p.index == *i)).map(|(_, p)| p).collect();
    Minutes {
        conference,
        chair,
        programme,
        not_reached,
        speakers,
        requests: requests.into_values().collect(),
        attendance: sites.iter().filter_map(|(id, _)| att.remove(id)).collect(),
        notable_incidents: notable(&incidents),
        incidents,
        recordings,
        votes,
    }
}

/// An alarm that cleared within this long is left out of the incidents that mattered.
pub const BRIEF_MS: i64 = 10_000;
/// The same alarm of the same site raised again within this long of clearing continues the
/// same incident.
pub(crate) const MERGE_GAP_MS: i64 = 60_000;
/// The alarm of a site whose connection is lost.
const SITE_DROPPED: &str = "site_dropped";

/// The incidents a secretariat files: alarms of a site merged when they come back within a
/// minute, and brief ones (cleared within 10 s, merged) left out; the bridge's own and
/// uncleared ones always kept. What a site's alarms say while it is disconnected (silent,
/// no picture) is the lost connection's doing, filed as that one incident.
pub(crate) fn notable(incidents: &[Incident]) -> Vec<Incident> {
    let dropped: Vec<&Incident> = incidents.iter().filter(|i| i.alarm == SITE_DROPPED).collect();
    let while_dropped = |i: &Incident| {
        i.alarm != SITE_DROPPED && dropped.iter().any(|d| d.site == i.site && i.raised_ms >= d.raised_ms && d.cleared_ms.is_none_or(|c| i.raised_ms <= c))
    };
    let mut merged: Vec<Incident> = Vec::new();
    for i in incidents.iter().filter(|i| !while_dropped(i)) {
        let previous = merged.iter_mut().rev().find(|m| m.site == i.site && m.alarm == i.alarm);
        match previous {
            Some(m) if m.cleared_ms.is_some_and(|c| i.raised_ms - c <= MERGE_GAP_MS) => m.cleared_ms = i.cleared_ms,
            _ => merged.push(i.clone()),
        }
    }
    merged.retain(|m| m.site.is_empty() || m.cleared_ms.is_none_or(|c| c - m.raised_ms >= BRIEF_MS));
    merged
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(at_ms: i64, site: &str, kind: &str, detail: &str) -> Event {
        Event { at_ms, site_id: (!site.is_empty()).then(|| site.to_string()), kind: kind.into(), detail: detail.into(), params: None }
    }

    #[test]
    fn a_scripted_meeting_gives_the_expected_minutes() {
        let conf = ConferenceRecord { id: 1, title: "Hội nghị".into(), started_ms: 0, ended_ms: Some(100_000) };
        let events = vec![
            ev(1_000, "hq", "join", "s1"),
            ev(2_000, "hang-gai", "join", "s2"),
            ev(3_000, "hq", "agenda_item_started", "0\t20\tBáo cáo"),
            ev(10_000, "hang-gai", "floor_requested", "1"),
            ev(12_000, "hang-gai", "floor_granted", "1"),
            ev(42_000, "hang-gai", "floor_revoked", "1"),
            ev(43_000, "cua-nam", "floor_requested", "2"),
            ev(44_000, "cua-nam", "floor_denied", "2"),
            ev(50_000, "hang-gai", "connection_lost", "s2"),
            ev(55_000, "hang-gai", "reconnect", "s3"),
            ev(60_000, "hang-gai", "alarm_raised:high_loss", "loss 12 %"),
            ev(70_000, "hang-gai", "alarm_cleared:high_loss", "10 s"),
            ev(80_000, "hq", "agenda_item_ended", "0"),
            ev(90_000, "hang-gai", "leave", "s3"),
        ];
        let sites = vec![("hq".to_string(), "Trụ sở".to_string()), ("hang-gai".to_string(), "Cụm Hàng Gai".to_string())];
        let att = vec![AttendanceEntry { site_id: "hang-gai".into(), attendees: "Phường Hàng Gai".into(), headcount: Some(12) }];
        let m = build(conf, &events, &att, &sites, 200_000);
        assert_eq!(m.speakers.len(), 1);
        assert_eq!((m.speakers[0].site.as_str(), m.speakers[0].seconds), ("hang-gai", 30.0));
        assert_eq!(m.requests.iter().map(|r| r.outcome.as_str()).collect::<Vec<_>>(), ["granted", "denied"]);
        assert_eq!(m.programme[0].title, "Báo cáo");
        assert_eq!((m.programme[0].planned_minutes, m.programme[0].actual_seconds), (20, 77.0));
        let hg = &m.attendance[1];
        assert_eq!((hg.reconnects, hg.present_seconds, hg.headcount), (1, 83.0, Some(12)));
        assert_eq!(hg.first_join_ms, Some(2_000));
        assert_eq!(m.attendance[0].present_seconds, 99.0, "HQ still present: counted to the conference end");
        assert_eq!(m.incidents[0].cleared_ms, Some(70_000));
    }

    #[test]
    fn recordings_and_their_failures_are_in_the_minutes() {
        let conf = ConferenceRecord { id: 1, title: "Hội nghị".into(), started_ms: 0, ended_ms: Some(100_000) };
        let events = vec![
            ev(1_000, "hq", "recording_started", "2026-12-01_08-00-01"),
            ev(30_000, "hq", "recording_stopped", "by the chair"),
            ev(40_000, "hq", "recording_started", "2026-12-01_08-00-40"),
            ev(50_000, "", "alarm_raised:recording_failed", "disk almost full"),
            ev(50_000, "hq", "recording_failed", "disk almost full"),
        ];
        let m = build(conf, &events, &[], &[("hq".into(), "Trụ sở".into())], 200_000);
        assert_eq!(m.recordings.len(), 2);
        assert_eq!((m.recordings[0].started_ms, m.recordings[0].stopped_ms, m.recordings[0].error.as_deref()), (1_000, Some(30_000), None));
        assert_eq!(m.recordings[1].error.as_deref(), Some("disk almost full"));
        assert_eq!((m.incidents[0].site.as_str(), m.incidents[0].alarm.as_str()), ("", "recording_failed"));
    }

    fn incident(site: &str, alarm: &str, raised_ms: i64, cleared_ms: Option<i64>) -> Incident {
        Incident { site: site.into(), alarm: alarm.into(), raised_ms, cleared_ms, detail: String::new() }
    }

    #[test]
    fn brief_alarms_are_left_out_and_repeated_ones_merged() {
        let all = [
            incident("hang-gai", "one_way_audio", 1_000, Some(4_000)), // 3 s: noise
            incident("hang-gai", "high_loss", 10_000, Some(16_000)),
            incident("hang-gai", "high_loss", 40_000, Some(47_000)), // back within a minute: one incident, 37 s
            incident("cua-nam", "site_dropped", 50_000, None),       // never cleared: kept
            incident("", "recording_failed", 60_000, Some(61_000)),  // the bridge's own: kept
            incident("cua-nam", "floor_holder_silent", 58_000, None), // it is gone: part of the drop
        ];
        let kept = notable(&all);
        assert_eq!(
            kept.iter().map(|i| (i.alarm.as_str(), i.raised_ms, i.cleared_ms)).collect::<Vec<_>>(),
            [("high_loss", 10_000, Some(47_000)), ("site_dropped", 50_000, None), ("recording_failed", 60_000, Some(61_000)),]
        );
    }

    #[test]
    fn the_minutes_list_every_planned_item_hq_speaking_topics_and_no_seat_hold() {
        let conf = ConferenceRecord { id: 1, title: "Hội nghị".into(), started_ms: 0, ended_ms: Some(300_000) };
        let mut programme = ev(0, "hq", "programme", "3 items");
        programme.params = Some(r#"{"items":[{"title":"Báo cáo","kind":"report","planned_minutes":10},{"title":"Phát biểu Hàng Gai","kind":"speech","site":"hang-gai","planned_minutes":5},{"title":"Chỉ đạo","kind":"directive","planned_minutes":5}]}"#.into());
        let mut report = ev(1_000, "hq", "agenda_item_started", "0\t10\tBáo cáo");
        report.params = Some(r#"{"kind":"report"}"#.into());
        let mut asked = ev(5_000, "hang-gai", "floor_requested", "1");
        asked.params = Some(r#"{"topic":"Về chỉnh trang đô thị"}"#.into());
        let events = vec![
            ev(0, "hq", "conference_started", "1"),
            programme,
            report,
            asked,
            ev(61_000, "hq", "agenda_item_ended", "0"),
            ev(62_000, "hang-gai", "floor_granted", "1"),
            ev(80_000, "hang-gai", "connection_lost", "s"),  // its browser crashed: the seat is held
            ev(100_000, "hang-gai", "join_held_seat", "s2"), // back 20 s later, still holding the floor
            ev(130_000, "hang-gai", "floor_released", "1"),
        ];
        let sites = [("hq".to_string(), "Trụ sở".to_string()), ("hang-gai".to_string(), "Cụm Hàng Gai".to_string())];
        let m = build(conf, &events, &[], &sites, 400_000);
        assert_eq!(m.chair.as_deref(), Some("hq"));
        assert_eq!(m.not_reached.iter().map(|p| p.title.as_str()).collect::<Vec<_>>(), ["Phát biểu Hàng Gai", "Chỉ đạo"]);
        let spoke: Vec<(&str, f64)> = m.speakers.iter().map(|s| (s.site.as_str(), s.seconds)).collect();
        assert_eq!(spoke, [("hq", 60.0), ("hang-gai", 18.0), ("hang-gai", 30.0)], "HQ's report counted; the 20 s seat hold is not");
        assert_eq!(m.requests[0].topic.as_deref(), Some("Về chỉnh trang đô thị"));
    }

    #[test]
    fn a_programme_speech_is_named_by_its_item_across_a_lost_connection_and_a_request_by_its_topic() {
        let conf = ConferenceRecord { id: 1, title: "Hội nghị".into(), started_ms: 0, ended_ms: Some(300_000) };
        let mut speech = ev(1_000, "hq", "agenda_item_started", "1\t7\tPhát biểu Hàng Gai");
        speech.params = Some(r#"{"kind":"speech","site":"hang-gai"}"#.into());
        let mut asked = ev(2_000, "cua-nam", "floor_requested", "2");
        asked.params = Some(r#"{"topic":"Kiến nghị"}"#.into());
        let events = vec![
            speech,
            ev(1_000, "hang-gai", "floor_granted", "1"), // the programme gives it the floor
            asked,
            ev(20_000, "hang-gai", "connection_lost", "s"),
            ev(30_000, "hang-gai", "join_held_seat", "s2"),
            ev(40_000, "hang-gai", "floor_revoked", "1"),
            ev(41_000, "cua-nam", "floor_granted", "2"), // from the queue, in the same item
            ev(50_000, "cua-nam", "floor_released", "2"),
            ev(60_000, "hq", "agenda_item_ended", "1"),
        ];
        let sites = [("hang-gai".to_string(), "Cụm Hàng Gai".to_string()), ("cua-nam".to_string(), "Cụm Cửa Nam".to_string())];
        let m = build(conf, &events, &[], &sites, 400_000);
        let spoke: Vec<(&str, Option<&str>, f64)> = m.speakers.iter().map(|s| (s.site.as_str(), s.item.as_deref(), s.seconds)).collect();
        assert_eq!(spoke, [("hang-gai", Some("Phát biểu Hàng Gai"), 19.0), ("hang-gai", Some("Phát biểu Hàng Gai"), 10.0), ("cua-nam", None, 9.0),]);
    }

    #[test]
    fn vote_counts_come_from_the_params_and_an_older_log_from_its_detail() {
        let conf = ConferenceRecord { id: 1, title: "Hội nghị".into(), started_ms: 0, ended_ms: Some(60_000) };
        let mut opened = ev(1_000, "hq", "vote_opened", "Thông qua?");
        opened.params = Some(r#"{"vote":1,"options":["Tán thành","Không tán thành","Ý kiến khác"]}"#.into());
        let mut gai = ev(2_000, "hang-gai", "vote_counts", "");
        gai.params = Some(r#"{"vote":1,"counts":[11,1,0]}"#.into());
        let nam = ev(3_000, "cua-nam", "vote_counts", "7/0/2"); // written before the params had counts
        let mut corrected = ev(4_000, "hang-gai", "vote_counts", "");
        corrected.params = Some(r#"{"vote":1,"counts":[10,2,0]}"#.into());
        let events = vec![opened, gai, nam, corrected, ev(5_000, "hq", "vote_closed", "")];
        let m = build(conf, &events, &[], &[], 60_000);
        assert_eq!(m.votes[0].tallies, [("cua-nam".to_string(), vec![7, 0, 2]), ("hang-gai".to_string(), vec![10, 2, 0])]);
        assert_eq!(m.votes[0].totals, [17, 2, 2]);
        assert_eq!(m.votes[0].closed_ms, Some(5_000));
    }

    #[test]
    fn a_crash_in_the_middle_splits_presence_and_the_recording_into_segments() {
        let conf = ConferenceRecord { id: 1, title: "Hội nghị".into(), started_ms: 0, ended_ms: Some(100_000) };
        let events = vec![
            ev(1_000, "hq", "join", "s1"),
            ev(2_000, "hq", "recording_started", "2026-12-01_08-00-02"),
            // killed at about 30 s; back at 40 s
            ev(40_000, "hq", "bridge_restarted", "the conference carries on"),
            ev(40_000, "hq", "recording_started", "2026-12-01_08-00-40"),
            ev(45_000, "hq", "join_held_seat", "s2"),
            ev(90_000, "hq", "recording_stopped", "the conference ended"),
            ev(90_000, "hq", "leave", "present at the end"),
        ];
        let m = build(conf, &events, &[], &[("hq".into(), "Trụ sở".into())], 200_000);
        assert_eq!(m.recordings.len(), 2, "two segments");
        assert_eq!((m.recordings[0].stopped_ms, m.recordings[0].error.as_deref()), (Some(40_000), Some("interrupted by a restart of the bridge")));
        assert_eq!((m.recordings[1].started_ms, m.recordings[1].stopped_ms), (40_000, Some(90_000)));
        assert_eq!(m.attendance[0].present_seconds, 39.0 + 45.0, "the time away is not counted");
        assert_eq!(m.attendance[0].reconnects, 1);
        assert!(m.incidents.iter().any(|i| i.alarm == "bridge_restarted" && i.raised_ms == 40_000));
    }
}
