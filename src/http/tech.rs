//! The technicians' API: live health, readiness check, actions; and `/metrics`.
//!
//! Every `/api/tech/*` call carries a technician's session token (from `POST /api/login`).
//! `/metrics` takes a technician's token too, or none from the bridge's own host (a local
//! Prometheus or node exporter).

use super::auth::{Require, Technicians};
use super::error::ApiError;
use crate::auth::AuthError;
use crate::conference::published::Order;
use crate::config::LineLimits;
use crate::health::journal::JournalEntry;
use crate::health::monitor::{HealthView, SiteReadiness};
use crate::media::delay;
use crate::media::Kind;
use crate::server::Bridge;
use axum::extract::rejection::JsonRejection;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use std::fmt::Write;
use std::sync::Arc;

/// The technicians' view: the health monitor's, with the event log's tail, the open calls for
/// help and the meeting's time zone.
#[derive(serde::Serialize)]
pub(crate) struct TechView {
    #[serde(flatten)]
    health: HealthView,
    /// Joins, reconnects, ICE restarts, alarms, actions: codes and parameters the page words.
    events: Vec<JournalEntry>,
    /// Sites asking for a technician's help, oldest first.
    help: Vec<HelpCall>,
    /// Times are written in this zone (an IANA name).
    time_zone: String,
}

#[derive(serde::Serialize)]
pub(crate) struct HelpCall {
    site: String,
    name: String,
    since_ms: i64,
    text: String,
}

pub(crate) async fn view(State(bridge): State<Arc<Bridge>>, _: Require<Technicians>) -> Result<Json<TechView>, ApiError> {
    let health = bridge.health.view(true).await.ok_or(ApiError::Unavailable("health monitor stopped"))?;
    let store = bridge.store.clone();
    let events = tokio::task::spawn_blocking(move || store.recent_events(40)).await.ok().and_then(Result::ok).unwrap_or_default();
    let events = events.iter().map(crate::health::journal::entry).collect();
    let seats = bridge.conference.presence().await;
    let mut help: Vec<_> = bridge
        .settings
        .sites
        .iter()
        .zip(seats)
        .filter_map(|(s, seat)| seat.help.map(|h| HelpCall { site: s.id.clone(), name: s.name.clone(), since_ms: h.since_ms, text: h.text }))
        .collect();
    help.sort_by_key(|h| h.since_ms);
    Ok(Json(TechView { health, events, help, time_zone: bridge.settings.time_zone.clone() }))
}

#[derive(serde::Serialize)]
pub(crate) struct ReadinessReply {
    /// Every site passed every check.
    pass: bool,
    sites: Vec<SiteReadiness>,
}

pub(crate) async fn readiness(State(bridge): State<Arc<Bridge>>, _: Require<Technicians>) -> Json<ReadinessReply> {
    let sites = bridge.health.readiness().await;
    let summary = sites.iter().map(|s| format!("{}={}", s.site, if s.pass { "pass" } else { "fail" })).collect::<Vec<_>>().join(" ");
    bridge.store.record(crate::store::journal::Entry::now(None, "readiness_check", &summary));
    Json(ReadinessReply { pass: sites.iter().all(|s| s.pass), sites })
}

/// What a technician may do to a site.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum TechAction {
    /// Ask the site's camera for a keyframe now.
    Keyframe,
    /// Tell the site's page to restart ICE.
    RestartIce,
    /// End the site's session; its page reconnects.
    Drop,
    /// Mark the site's call for help handled.
    HelpDone,
    /// Any other word. Kept rather than refused by the parser, so that the reply is
    /// `unknown_action` after the site is checked, as documented, not `invalid_message`.
    #[serde(other)]
    Unknown,
}

impl TechAction {
    /// The action's name on the wire and in the event log (`tech_<name>`).
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            TechAction::Keyframe => "keyframe",
            TechAction::RestartIce => "restart_ice",
            TechAction::Drop => "drop",
            TechAction::HelpDone => "help_done",
            TechAction::Unknown => "unknown",
        }
    }
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ActionRequest {
    site: String,
    action: TechAction,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NoticeRequest {
    /// The site it is for; absent: every site.
    #[serde(default)]
    site: Option<String>,
    text: String,
}

/// `{"ok": true}`, and the notice's id when one was sent.
#[derive(serde::Serialize)]
pub(crate) struct Done {
    ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    notice: Option<u64>,
}

impl Done {
    fn ok() -> Json<Done> {
        Json(Done { ok: true, notice: None })
    }
}

/// A technician's written notice to one site or all, shown on their pages until read.
pub(crate) async fn notice(
    State(bridge): State<Arc<Bridge>>,
    _: Require<Technicians>,
    body: Result<Json<NoticeRequest>, JsonRejection>,
) -> Result<Json<Done>, ApiError> {
    let Ok(Json(req)) = body else {
        return Err(ApiError::BadBody("{\"site\": \"…\" (or none: every site), \"text\": \"…\"}"));
    };
    let to = match req.site.as_deref().map(|id| bridge.settings.site_index(id)) {
        Some(None) => return Err(ApiError::SiteUnknown),
        Some(Some(i)) => Some(i),
        None => None,
    };
    let id = bridge.conference.tech_notice(to, req.text).await?;
    Ok(Json(Done { ok: true, notice: Some(id) }))
}

pub(crate) async fn action(
    State(bridge): State<Arc<Bridge>>,
    _: Require<Technicians>,
    body: Result<Json<ActionRequest>, JsonRejection>,
) -> Result<Json<Done>, ApiError> {
    let Ok(Json(req)) = body else {
        return Err(ApiError::BadBody("{\"site\": \"…\", \"action\": \"keyframe|restart_ice|drop\"}"));
    };
    let site = bridge.settings.site_index(&req.site).ok_or(ApiError::SiteUnknown)?;
    // What to tell the site's session (and whether to close it); none: a keyframe request.
    let told = match req.action {
        TechAction::HelpDone => {
            if !bridge.conference.help_done(site).await {
                return Err(ApiError::refused(StatusCode::CONFLICT, "no_help_request", "the site has no open request for help"));
            }
            tracing::info!(site = %req.site, "a technician handled the site's request for help");
            return Ok(Done::ok());
        }
        TechAction::Unknown => {
            return Err(ApiError::refused(StatusCode::BAD_REQUEST, "unknown_action", "action must be keyframe, restart_ice, drop or help_done"));
        }
        TechAction::Keyframe => None,
        TechAction::RestartIce => Some(Order::RestartIce),
        TechAction::Drop => Some(Order::Drop),
    };
    let present = bridge.conference.presence().await.get(site).is_some_and(|p| p.present);
    if !present {
        return Err(ApiError::SiteAbsent);
    }
    let name = bridge.settings.sites[site].name.clone();
    let done = match told {
        None => {
            bridge.peers.router.request_keyframe(site, Kind::Video);
            true
        }
        Some(order) => bridge.conference.order(site, order).await,
    };
    if !done {
        return Err(ApiError::SiteAbsent);
    }
    let action = req.action.as_str();
    tracing::info!(site = %req.site, action, "technician action on {name}");
    let kind = format!("tech_{action}");
    bridge.store.record(crate::store::journal::Entry::now(Some(&req.site), &kind, "by a technician"));
    Ok(Done::ok())
}

/// A site's line ceilings, set live: kbit/s, `null` for none (as the line takes), absent for
/// unchanged.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LineRequest {
    site: String,
    #[serde(default, deserialize_with = "given")]
    downlink_kbps: Option<Option<u32>>,
    #[serde(default, deserialize_with = "given")]
    uplink_kbps: Option<Option<u32>>,
}

/// A field that is there, whether a number or `null` (absent stays `None` by `default`).
fn given<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<u32>>, D::Error> {
    <Option<u32> as serde::Deserialize>::deserialize(d).map(Some)
}

/// A technician sets what a site receives (the bridge's downlink estimate never exceeds it, so
/// its layers are chosen within it) and sends (the REMB its browser is told) from the next
/// second on, without a reconnect; the health view shows it. Until the bridge restarts.
pub(crate) async fn line(
    State(bridge): State<Arc<Bridge>>,
    _: Require<Technicians>,
    body: Result<Json<LineRequest>, JsonRejection>,
) -> Result<Json<Done>, ApiError> {
    let Some(req) = body.ok().map(|Json(r)| r).filter(|r| r.downlink_kbps.is_some() || r.uplink_kbps.is_some()) else {
        return Err(ApiError::BadBody("{\"site\": \"…\", \"downlink_kbps\"?: kbit/s or null, \"uplink_kbps\"?: kbit/s or null}"));
    };
    let site = bridge.settings.site_index(&req.site).ok_or(ApiError::SiteUnknown)?;
    let was = bridge.peers.lines.get(site);
    let line = LineLimits::checked(req.downlink_kbps.unwrap_or(was.down_kbps), req.uplink_kbps.unwrap_or(was.up_kbps)).map_err(|(field, kbps)| {
        let range = crate::config::LINE_KBPS;
        ApiError::refused(
            StatusCode::BAD_REQUEST,
            "line_out_of_range",
            format!("{field} = {kbps}: a ceiling is {}…{} kbit/s (a site's audio and a small picture at least), or null for none", range.start(), range.end()),
        )
    })?;
    bridge.peers.lines.set(site, line);
    let said = |k: Option<u32>| k.map_or("none".to_string(), |k| format!("{k} kbit/s"));
    let (down, up) = (said(line.down_kbps), said(line.up_kbps));
    tracing::info!(site = %req.site, downlink = %down, uplink = %up, "a technician set the line ceilings of {}", bridge.settings.sites[site].name);
    let detail = format!("downlink {down}, uplink {up}");
    let params = serde_json::to_string(&line).ok();
    bridge.store.record(crate::store::journal::Entry::now(Some(&req.site), "tech_line", &detail).with_params(params));
    Ok(Done::ok())
}

/// Prometheus text format; names `diemcau_<subsystem>_<name>_<unit>`, documented in
/// docs/operations.md.
pub(crate) async fn metrics(
    State(bridge): State<Arc<Bridge>>,
    axum::extract::ConnectInfo(addr): axum::extract::ConnectInfo<std::net::SocketAddr>,
    technician: Result<Require<Technicians>, AuthError>,
) -> Result<Response, ApiError> {
    if !addr.ip().is_loopback() {
        technician?;
    }
    let view = bridge.health.view(false).await.ok_or(ApiError::Unavailable("health monitor stopped"))?;
    let c = bridge.peers.router.counters();
    let mut out = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, rows: Vec<(String, f64)>| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (labels, v) in rows {
            let _ = writeln!(out, "{name}{labels} {v}");
        }
    };
    let site = |id: &str| format!("{{site=\"{id}\"}}");
    let site_kind = |id: &str, k: &str| format!("{{site=\"{id}\",kind=\"{k}\"}}");
    metric("diemcau_site_present", "gauge", "1 while the site holds its seat.", view.sites.iter().map(|s| (site(&s.id), s.present as u8 as f64)).collect());
    let per_kind = |f: fn(&crate::health::board::InboundSnapshot) -> f64| {
        view.sites.iter().flat_map(|s| [(site_kind(&s.id, "audio"), f(&s.audio_in)), (site_kind(&s.id, "video"), f(&s.video_in))]).collect::<Vec<_>>()
    };
    metric("diemcau_media_in_packets_per_second", "gauge", "RTP packets/s received from the site.", per_kind(|s| s.packets_per_second));
    metric("diemcau_media_in_bitrate_bits_per_second", "gauge", "Bitrate received from the site.", per_kind(|s| s.bitrate_bps));
    metric("diemcau_media_in_loss_ratio", "gauge", "Inbound packet loss before retransmission, last second.", per_kind(|s| s.loss_percent / 100.0));
    metric("diemcau_media_in_jitter_seconds", "gauge", "RFC 3550 interarrival jitter.", per_kind(|s| s.jitter_ms / 1000.0));
    metric("diemcau_media_in_packets_total", "counter", "RTP packets received from the site.", per_kind(|s| s.packets_total as f64));
    metric(
        "diemcau_media_in_frames_per_second",
        "gauge",
        "Camera frames/s received from the site.",
        view.sites.iter().map(|s| (site(&s.id), s.video_in.frames_per_second)).collect(),
    );
    metric(
        "diemcau_media_out_bitrate_bits_per_second",
        "gauge",
        "Bitrate sent to the site.",
        view.sites.iter().map(|s| (site(&s.id), s.bitrate_out_bps)).collect(),
    );
    metric(
        "diemcau_media_out_packets_total",
        "counter",
        "RTP packets sent to the site.",
        view.sites.iter().map(|s| (site(&s.id), s.packets_out_total as f64)).collect(),
    );
    metric(
        "diemcau_ice_rtt_seconds",
        "gauge",
        "Round-trip time of the site's media path.",
        view.sites.iter().filter_map(|s| s.rtt_ms.map(|r| (site(&s.id), r / 1000.0))).collect(),
    );
    metric(
        "diemcau_audio_level_ratio",
        "gauge",
        "Recent loudness of the site's audio, 0..1.",
        view.sites.iter().map(|s| (site(&s.id), s.audio_level)).collect(),
    );
    metric(
        "diemcau_alarm_active",
        "gauge",
        "1 for each active alarm.",
        view.alarms.iter().map(|a| (format!("{{site=\"{}\",alarm=\"{}\"}}", a.site, a.alarm), 1.0)).collect(),
    );
    metric("diemcau_media_received_packets_total", "counter", "RTP packets received from all sites.", vec![(String::new(), c.received_packets as f64)]);
    metric("diemcau_media_forwarded_packets_total", "counter", "RTP packets queued to receivers.", vec![(String::new(), c.forwarded_packets as f64)]);
    metric(
        "diemcau_media_dropped_packets_total",
        "counter",
        "RTP packets not forwarded, by reason.",
        vec![("{reason=\"queue_full\"}".into(), c.dropped_queue_full as f64), ("{reason=\"muted\"}".into(), c.blocked_muted as f64)],
    );
    metric("diemcau_media_keyframe_requests_total", "counter", "Keyframe requests sent to publishers.", vec![(String::new(), c.keyframe_requests as f64)]);
    metric(
        "diemcau_recording_dropped_packets_total",
        "counter",
        "Packets the recorder could not keep up with.",
        vec![(String::new(), c.recorder_dropped as f64)],
    );
    metric(
        "diemcau_media_stale_source_packets_total",
        "counter",
        "Packets from a site's replaced peer, not forwarded.",
        vec![(String::new(), c.stale_source as f64)],
    );
    let (open, refused) = bridge.conns.snapshot();
    metric("diemcau_http_connections", "gauge", "HTTPS connections open (signed in or not).", vec![(String::new(), open as f64)]);
    metric(
        "diemcau_http_connections_refused_total",
        "counter",
        "HTTPS connections closed at once: over the per-address or total limit.",
        vec![(String::new(), refused as f64)],
    );
    // Flat across a long meeting when every task has an owner that stops it (the soak bench
    // reads this; docs/performance.md, "Soak").
    let tasks = tokio::runtime::Handle::current().metrics().num_alive_tasks();
    metric("diemcau_tasks_alive", "gauge", "Tokio tasks alive in the bridge's runtime.", vec![(String::new(), tasks as f64)]);
    let m = bridge.peers.network.mux.snapshot();
    metric(
        "diemcau_mux_tcp_connections_total",
        "counter",
        "ICE-TCP connections to the shared port, by outcome.",
        vec![
            ("{outcome=\"accepted\"}".into(), m.tcp_accepted as f64),
            ("{outcome=\"routed\"}".into(), m.tcp_routed as f64),
            ("{outcome=\"rejected\"}".into(), m.tcp_rejected as f64),
        ],
    );
    // Cumulative buckets, as Prometheus histograms are: each `le` counts everything at or below it.
    let delay = bridge.peers.router.forwarding_delay().snapshot();
    let mut at_or_below = 0;
    let buckets = delay.counts.iter().enumerate().map(|(i, n)| {
        at_or_below += n;
        let le = if i < delay::BUCKETS { delay::bound_seconds(i).to_string() } else { "+Inf".to_string() };
        (format!("_bucket{{le=\"{le}\"}}"), at_or_below as f64)
    });
    let mut rows: Vec<_> = buckets.collect();
    rows.push(("_sum".into(), delay.sum_seconds));
    rows.push(("_count".into(), delay.total() as f64));
    metric(
        "diemcau_forwarding_delay_seconds",
        "histogram",
        "Time from a datagram's arrival on the media port to the send of each packet forwarded from it (lean engine).",
        rows,
    );
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], out).into_response())
}

#[cfg(test)]
mod tests {
    use super::TechAction;

    #[test]
    fn a_tech_actions_name_is_the_one_it_is_asked_by() {
        for a in [TechAction::Keyframe, TechAction::RestartIce, TechAction::Drop, TechAction::HelpDone] {
            assert_eq!(serde_json::from_str::<TechAction>(&format!("\"{}\"", a.as_str())).unwrap(), a);
        }
        for other in ["reboot", "Keyframe", "restart-ice", ""] {
            assert_eq!(serde_json::from_str::<TechAction>(&format!("\"{other}\"")).unwrap(), TechAction::Unknown, "{other}");
        }
        assert!(serde_json::from_str::<TechAction>("7").is_err(), "not a word: a malformed request");
    }
}
