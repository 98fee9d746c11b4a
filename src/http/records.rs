//! Meeting records over HTTP: the list of conferences and each one's minutes as JSON, CSV or
//! a printable Vietnamese page, and the recordings (their indexes and files). For the chair
//! (HQ's page, or the secretariat) and the technicians: a session token as a bearer header
//! or the session cookie (links opened in a new tab).

use super::refuse;
use crate::auth::Role;
use crate::records::{minutes, render};
use crate::server::Bridge;
use crate::store::now_ms;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use std::sync::Arc;

#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RecordQuery {
    format: Option<String>,
}

fn authorise(bridge: &Bridge, headers: &HeaderMap) -> Result<(), Response> {
    super::auth::require(bridge, headers, &[Role::Chair, Role::Technician, Role::Secretariat]).map(|_| ())
}

pub async fn list(State(bridge): State<Arc<Bridge>>, headers: HeaderMap) -> Response {
    if let Err(r) = authorise(&bridge, &headers) {
        return r;
    }
    let store = bridge.store.clone();
    match tokio::task::spawn_blocking(move || store.conferences()).await {
        Ok(Ok(list)) => Json(serde_json::json!({"conferences": list})).into_response(),
        _ => refuse(StatusCode::INTERNAL_SERVER_ERROR, "internal", "cannot read the records"),
    }
}

pub async fn minutes(State(bridge): State<Arc<Bridge>>, Path(id): Path<i64>, headers: HeaderMap, Query(q): Query<RecordQuery>) -> Response {
    if let Err(r) = authorise(&bridge, &headers) {
        return r;
    }
    let store = bridge.store.clone();
    let loaded = tokio::task::spawn_blocking(move || -> Result<_, crate::store::StoreError> {
        Ok(match store.conference(id)? {
            Some(c) => Some((c, store.conference_events(id)?, store.attendance(id)?)),
            None => None,
        })
    })
    .await;
    let (conference, events, attendance) = match loaded {
        Ok(Ok(Some(x))) => x,
        Ok(Ok(None)) => return refuse(StatusCode::NOT_FOUND, "conference_unknown", "no conference with that id"),
        _ => return refuse(StatusCode::INTERNAL_SERVER_ERROR, "internal", "cannot read the records"),
    };
    let sites: Vec<(String, String)> = bridge.settings.sites.iter().map(|s| (s.id.clone(), s.name.clone())).collect();
    let m = minutes::build(conference, &events, &attendance, &sites, now_ms());
    match q.format.as_deref().unwrap_or("json") {
        "csv" => (
            [(header::CONTENT_TYPE, "text/csv; charset=utf-8"), (header::CONTENT_DISPOSITION, "attachment; filename=\"bien-ban.csv\"")],
            render::csv(&m),
        )
            .into_response(),
        "html" => {
            // Events without a site are the bridge's own (a failed recording).
            let name = |id: &str| match sites.iter().find(|(s, _)| s == id) {
                Some((_, n)) => n.clone(),
                None if id.is_empty() => "Máy chủ cầu".to_string(),
                None => id.to_string(),
            };
            // A printable page with its own inline style and no script at all.
            let csp = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'";
            ([(header::CONTENT_TYPE, "text/html; charset=utf-8"), (header::CONTENT_SECURITY_POLICY, csp)], render::html(&m, name)).into_response()
        }
        "json" => Json(m).into_response(),
        _ => refuse(StatusCode::BAD_REQUEST, "invalid_message", "format must be json, csv or html"),
    }
}

/// Every recording's index, newest first.
pub async fn recordings(State(bridge): State<Arc<Bridge>>, headers: HeaderMap) -> Response {
    if let Err(r) = authorise(&bridge, &headers) {
        return r;
    }
    let root = bridge.recordings.clone();
    let list = tokio::task::spawn_blocking(move || crate::recording::list(&root)).await.unwrap_or_default();
    Json(serde_json::json!({"recordings": list})).into_response()
}

/// One file of a recording: only names its index lists (or the index itself) are served.
pub async fn recording_file(
    State(bridge): State<Arc<Bridge>>,
    Path((id, file)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = authorise(&bridge, &headers) {
        return r;
    }
    let root = bridge.recordings.clone();
    let path = tokio::task::spawn_blocking(move || {
        let index = crate::recording::list(&root).into_iter().find(|i| i.id == id)?;
        let listed = file == "index.json" || index.tracks.iter().any(|t| t.file == file);
        listed.then(|| root.join(&index.id).join(&file))
    })
    .await
    .ok()
    .flatten();
    let opened = match path {
        Some(path) => tokio::fs::File::open(&path).await.ok().map(|f| (path, f)),
        None => None,
    };
    let Some((path, f)) = opened else {
        return refuse(StatusCode::NOT_FOUND, "recording_unknown", "no such recording or file");
    };
    let file = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    // Streamed: an hour of one site's video is hundreds of megabytes.
    let body = axum::body::Body::from_stream(tokio_util::io::ReaderStream::new(f));
    let mime = match file.rsplit('.').next() {
        Some("ogg") => "audio/ogg",
        Some("ivf") => "video/x-ivf",
        Some("json") => "application/json",
        _ => "application/octet-stream",
    };
    let disposition = format!("attachment; filename=\"{file}\"");
    ([(header::CONTENT_TYPE, mime.to_string()), (header::CONTENT_DISPOSITION, disposition)], body).into_response()
}
