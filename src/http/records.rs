//! Meeting records over HTTP: the list of conferences and each one's minutes as JSON, CSV or
//! a printable Vietnamese page, and the recordings (their indexes and files). For the chair
//! (HQ's page, or the secretariat) and the technicians: a session token as a bearer header
//! or the session cookie (links opened in a new tab). A recording's one composed file is
//! served like its per-site files, and can be composed again on demand.

use super::auth::{RecordReaders, Require};
use super::error::ApiError;
use crate::recording::composer::{ComposeRefusal, Composition};
use crate::recording::Index;
use crate::records::{minutes, render};
use crate::server::Bridge;
use crate::store::{now_ms, ConferenceRecord};
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use std::sync::Arc;

#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RecordQuery {
    format: Option<String>,
}

#[derive(serde::Serialize)]
pub(crate) struct ConferencesReply {
    conferences: Vec<ConferenceRecord>,
}

pub(crate) async fn list(State(bridge): State<Arc<Bridge>>, _: Require<RecordReaders>) -> Result<Json<ConferencesReply>, ApiError> {
    let store = bridge.store.clone();
    match tokio::task::spawn_blocking(move || store.conferences()).await {
        Ok(Ok(conferences)) => Ok(Json(ConferencesReply { conferences })),
        _ => Err(ApiError::Internal("cannot read the records")),
    }
}

/// The minutes as `?format=json` (the default), `csv` or `html` (printable).
pub(crate) async fn minutes(
    State(bridge): State<Arc<Bridge>>,
    Path(id): Path<i64>,
    Query(q): Query<RecordQuery>,
    _: Require<RecordReaders>,
) -> Result<Response, ApiError> {
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
        Ok(Ok(None)) => return Err(ApiError::refused(StatusCode::NOT_FOUND, "conference_unknown", "no conference with that id")),
        _ => return Err(ApiError::Internal("cannot read the records")),
    };
    let sites: Vec<(String, String)> = bridge.settings.sites.iter().map(|s| (s.id.clone(), s.name.clone())).collect();
    let m = minutes::build(conference, &events, &attendance, &sites, now_ms());
    Ok(match q.format.as_deref().unwrap_or("json") {
        "csv" => ([(header::CONTENT_TYPE, "text/csv; charset=utf-8"), (header::CONTENT_DISPOSITION, "attachment; filename=\"bien-ban.csv\"")], render::csv(&m))
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
        _ => return Err(ApiError::refused(StatusCode::BAD_REQUEST, "invalid_message", "format must be json, csv or html")),
    })
}

/// One recording in the archive: its index, and where its composition stands.
#[derive(serde::Serialize)]
pub(crate) struct RecordingRow {
    #[serde(flatten)]
    index: Index,
    /// Queued, running with its percentage, done with its file, failed with why; `null` if
    /// never composed.
    composition: Option<Composition>,
}

#[derive(serde::Serialize)]
pub(crate) struct RecordingsReply {
    recordings: Vec<RecordingRow>,
}

/// Every recording's index, newest first, each with its `composition`.
pub(crate) async fn recordings(State(bridge): State<Arc<Bridge>>, _: Require<RecordReaders>) -> Json<RecordingsReply> {
    let root = bridge.recordings.clone();
    let composer = bridge.composer.clone();
    let recordings = tokio::task::spawn_blocking(move || {
        crate::recording::list(&root).into_iter().map(|index| RecordingRow { composition: composer.status(&index.id), index }).collect::<Vec<_>>()
    })
    .await
    .unwrap_or_default();
    Json(RecordingsReply { recordings })
}

#[derive(serde::Serialize)]
pub(crate) struct ComposeReply {
    recording: String,
    state: &'static str,
}

/// Composes a recording into one file (again): for an older recording, or after a failure.
pub(crate) async fn compose(
    State(bridge): State<Arc<Bridge>>,
    Path(id): Path<String>,
    _: Require<RecordReaders>,
) -> Result<(StatusCode, Json<ComposeReply>), ApiError> {
    let composer = bridge.composer.clone();
    let asked = id.clone();
    match tokio::task::spawn_blocking(move || composer.request(&asked)).await {
        Ok(Ok(())) => {
            tracing::info!(recording = %id, "composing the recording, as asked from the archive");
            Ok((StatusCode::ACCEPTED, Json(ComposeReply { recording: id, state: "queued" })))
        }
        Ok(Err(e)) => {
            let (status, code) = match e {
                ComposeRefusal::Unknown => (StatusCode::NOT_FOUND, "recording_unknown"),
                ComposeRefusal::Disabled => (StatusCode::CONFLICT, "composing_off"),
                ComposeRefusal::Recording | ComposeRefusal::Busy => (StatusCode::CONFLICT, "composing_busy"),
                ComposeRefusal::QueueFull => (StatusCode::SERVICE_UNAVAILABLE, "composing_busy"),
            };
            Err(ApiError::refused(status, code, e.to_string()))
        }
        Err(_) => Err(ApiError::Internal("cannot queue the composition")),
    }
}

/// One file of a recording: only names its index lists (or the index itself) are served.
pub(crate) async fn recording_file(
    State(bridge): State<Arc<Bridge>>,
    Path((id, file)): Path<(String, String)>,
    _: Require<RecordReaders>,
) -> Result<Response, ApiError> {
    let root = bridge.recordings.clone();
    let path = tokio::task::spawn_blocking(move || {
        let index = crate::recording::list(&root).into_iter().find(|i| i.id == id)?;
        let composed = file == crate::recording::composer::file_name(&index.id);
        let listed = file == "index.json" || composed || index.tracks.iter().any(|t| t.file == file);
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
        return Err(ApiError::refused(StatusCode::NOT_FOUND, "recording_unknown", "no such recording or file"));
    };
    let file = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    // Streamed: an hour of one site's video is hundreds of megabytes.
    let body = axum::body::Body::from_stream(tokio_util::io::ReaderStream::new(f));
    let mime = match file.rsplit('.').next() {
        Some("ogg") => "audio/ogg",
        Some("ivf") => "video/x-ivf",
        Some("mp4") => "video/mp4",
        Some("json") => "application/json",
        _ => "application/octet-stream",
    };
    let disposition = format!("attachment; filename=\"{file}\"");
    Ok(([(header::CONTENT_TYPE, mime.to_string()), (header::CONTENT_DISPOSITION, disposition)], body).into_response())
}
