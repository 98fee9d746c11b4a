//! The HTTP face of the bridge: pages, static assets, REST and the WebSocket upgrade.
//!
//! [`app`] builds the router from shared state so tests drive it without a socket
//! (`app(bridge).oneshot(request)`, in `tests.rs`). Every response carries the security
//! headers of [`security`], and every write is refused from another site's page before any
//! handler runs. A protected endpoint names who may call it in its signature, with the
//! [`auth::Require`] extractor (the table is in docs/security.md); handlers refuse with
//! [`error::ApiError`], whose reply is the `{code, message}` JSON every endpoint uses.

pub(crate) mod auth;
mod boot;
pub(crate) mod conns;
pub(crate) mod error;
pub(crate) mod records;
pub(crate) mod security;
pub(crate) mod tech;
#[cfg(test)]
mod tests;
pub(crate) mod tls;

use crate::auth::AuthError;
use crate::server::Bridge;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use rust_embed::RustEmbed;
use std::net::SocketAddr;
use std::sync::Arc;

/// The web client, compiled into the binary.
#[derive(RustEmbed)]
#[folder = "web/"]
struct Assets;

/// WebSocket frames above this are refused by the socket layer itself (connection closed);
/// between [`crate::signal::protocol::MAX_MESSAGE_BYTES`] and this, the session replies
/// `too_large` and carries on.
const WS_FRAME_LIMIT: usize = 1024 * 1024;

pub(crate) fn app(bridge: Arc<Bridge>) -> Router {
    Router::new()
        .route("/", get(|| async { asset("index.html") }))
        .route("/site/{id}", get(site_page))
        .route("/chair", get(|| async { asset("site.html") }))
        .route("/api/session", axum::routing::post(auth::session))
        .route("/api/login", axum::routing::post(auth::login))
        .route("/api/logout", axum::routing::post(auth::logout))
        .route("/api/health", get(health))
        .route("/api/tech", get(tech::view))
        .route("/api/tech/readiness", axum::routing::post(tech::readiness))
        .route("/api/tech/action", axum::routing::post(tech::action))
        .route("/api/tech/notice", axum::routing::post(tech::notice))
        .route("/api/tech/line", axum::routing::post(tech::line))
        .route("/metrics", get(tech::metrics))
        .route("/api/conferences", get(records::list))
        .route("/api/conferences/{id}/minutes", get(records::minutes))
        .route("/api/recordings", get(records::recordings))
        .route("/api/recordings/{id}/compose", axum::routing::post(records::compose))
        .route("/api/recordings/{id}/{file}", get(records::recording_file))
        .route("/tech", get(|| async { asset("tech.html") }))
        .route("/records", get(|| async { asset("records.html") }))
        .route("/api/sites", get(sites))
        .route("/ws", get(ws))
        .route("/{*path}", get(|Path(path): Path<String>| async move { asset(&path) }))
        .layer(axum::middleware::from_fn_with_state(bridge.clone(), security::same_origin_writes))
        .layer(axum::middleware::from_fn(security::headers))
        .with_state(bridge)
}

fn asset(path: &str) -> Response {
    match Assets::get(path) {
        Some(file) => {
            let mime = mime_guess::from_path(path).first_or_octet_stream();
            let body = match path.ends_with(".html") {
                true => boot::inline(&String::from_utf8_lossy(&file.data)).into_bytes(),
                false => file.data.into_owned(),
            };
            let mut resp = (StatusCode::OK, body).into_response();
            let ct = if mime.type_() == "text" || mime.subtype() == "javascript" || mime.subtype() == "json" {
                format!("{}; charset=utf-8", mime.essence_str())
            } else {
                mime.essence_str().to_string()
            };
            if let Ok(v) = HeaderValue::from_str(&ct) {
                resp.headers_mut().insert(header::CONTENT_TYPE, v);
            }
            resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            resp
        }
        None => (StatusCode::NOT_FOUND, "không tìm thấy / not found").into_response(),
    }
}

async fn site_page(State(bridge): State<Arc<Bridge>>, Path(id): Path<String>) -> Response {
    if bridge.settings.site_index(&id).is_some() {
        asset("site.html")
    } else {
        (StatusCode::NOT_FOUND, format!("không có điểm cầu \"{id}\" / no site \"{id}\"")).into_response()
    }
}

#[derive(serde::Serialize)]
struct PublicSite<'a> {
    id: &'a str,
    name: &'a str,
    role: crate::domain::SiteRole,
}

#[derive(serde::Serialize)]
struct SitesReply<'a> {
    title: &'a str,
    /// The meeting's time zone (IANA name): pages write times in it.
    time_zone: &'a str,
    sites: Vec<PublicSite<'a>>,
}

async fn sites(State(bridge): State<Arc<Bridge>>) -> Response {
    let s = &bridge.settings;
    Json(SitesReply {
        title: &s.title,
        time_zone: &s.time_zone,
        sites: s.sites.iter().map(|x| PublicSite { id: &x.id, name: &x.name, role: x.role }).collect(),
    })
    .into_response()
}

/// What anyone may know: whether the bridge is up.
#[derive(serde::Serialize)]
pub(crate) struct HealthSummary {
    /// `ok` or `degraded` (any alarm active).
    status: &'static str,
    version: &'static str,
    uptime_s: u64,
}

/// What the chair and the technicians see besides.
#[derive(serde::Serialize)]
pub(crate) struct HealthDetail {
    #[serde(flatten)]
    summary: HealthSummary,
    conference: String,
    sites: Vec<SiteDetail>,
    alarms: Vec<crate::health::monitor::AlarmView>,
    media: crate::media::router::CounterSnapshot,
    forwarding_delay: crate::media::delay::DelaySnapshot,
}

/// A site's presence, with its health status and its active alarms.
#[derive(serde::Serialize)]
pub(crate) struct SiteDetail {
    #[serde(flatten)]
    presence: crate::signal::protocol::SitePresence,
    status: &'static str,
    alarms: Vec<crate::health::monitor::AlarmView>,
}

/// Open: whether the bridge is up (for a load balancer or a monitor). With the chair's or a
/// technician's token: every site's presence, status and alarms, and the media counters.
async fn health(State(bridge): State<Arc<Bridge>>, overseer: Option<auth::Require<auth::Overseers>>) -> Response {
    let view = bridge.health.view(false).await;
    let status = view.as_ref().map(|v| v.status).unwrap_or("degraded");
    let summary = HealthSummary { status, version: crate::VERSION, uptime_s: bridge.started.elapsed().as_secs() };
    if overseer.is_none() {
        return Json(summary).into_response();
    }
    let alarms = view.as_ref().map(|v| v.alarms.clone()).unwrap_or_default();
    let seats = bridge.conference.presence().await;
    let sites = crate::signal::render::presence(&seats, &crate::signal::render::Sites(&bridge.settings.sites))
        .into_iter()
        .map(|presence| {
            let health = view.as_ref().and_then(|v| v.sites.iter().find(|h| h.id == presence.id));
            let alarms = alarms.iter().filter(|a| a.site == presence.id).cloned().collect();
            SiteDetail { status: health.map(|h| h.status).unwrap_or("absent"), alarms, presence }
        })
        .collect();
    Json(HealthDetail {
        summary,
        conference: bridge.settings.title.clone(),
        sites,
        alarms,
        media: bridge.peers.router.counters(),
        forwarding_delay: bridge.peers.router.forwarding_delay().snapshot(),
    })
    .into_response()
}

/// The signalling socket: only from no page or the bridge's own pages, and within the
/// per-address socket limit. Who the socket speaks for is decided by its `join` ticket.
async fn ws(
    State(bridge): State<Arc<Bridge>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Result<Response, error::ApiError> {
    if !security::origin_allowed(&headers, &uri, &bridge.settings) {
        tracing::warn!(ip = %addr.ip(), "refused a WebSocket from another site's page");
        return Err(error::ApiError::BadOrigin("this WebSocket comes from a page of another site"));
    }
    bridge.auth.open_socket(addr.ip()).inspect_err(|e: &AuthError| tracing::warn!(ip = %addr.ip(), "refused a WebSocket: {e}"))?;
    let ip = addr.ip();
    Ok(upgrade
        .max_message_size(WS_FRAME_LIMIT)
        .max_frame_size(WS_FRAME_LIMIT)
        .on_failed_upgrade({
            let bridge = bridge.clone();
            move |_| bridge.auth.close_socket(ip)
        })
        .on_upgrade(move |socket| crate::signal::session::run(socket, bridge, ip)))
}
