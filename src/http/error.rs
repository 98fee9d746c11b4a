//! The one error a REST handler returns, and the one place that writes the JSON error reply
//! `{"code", "message"}` every endpoint uses.
//!
//! Each refusal maps to its HTTP status and its stable code (docs/protocol.md and
//! docs/security.md list them). Nothing here decides whether a request is allowed: that is
//! [`super::auth`] and the conference's business; this only says no in the agreed shape.

use crate::auth::AuthError;
use crate::conference::Refused;
use crate::signal::protocol::ErrorCode;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use std::borrow::Cow;

/// Why a REST request was refused.
#[derive(Debug)]
pub(crate) enum ApiError {
    /// Who is asking, or whether they may: the status and code [`super::auth::status`] gives.
    Auth(AuthError),
    /// A write, or a WebSocket, from another site's page: `403 bad_origin` with this message.
    BadOrigin(&'static str),
    /// A body that is not the JSON the endpoint expects (`400 invalid_message`, "expected …").
    BadBody(&'static str),
    /// The conference refused a command: `400` with the conference's own code.
    Conference(Refused),
    /// `404 site_unknown`: no site with the id given.
    SiteUnknown,
    /// `409 site_absent`: an action for a site that is not connected.
    SiteAbsent,
    /// `500 internal`: the bridge could not do its part (the store, a worker thread).
    Internal(&'static str),
    /// `503 internal`: a part of the bridge has stopped (the health monitor).
    Unavailable(&'static str),
    /// Any other refusal, with its status and stable code.
    Refused { status: StatusCode, code: &'static str, message: Cow<'static, str> },
}

impl ApiError {
    pub(crate) fn refused(status: StatusCode, code: &'static str, message: impl Into<Cow<'static, str>>) -> Self {
        ApiError::Refused { status, code, message: message.into() }
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        ApiError::Auth(e)
    }
}

impl From<Refused> for ApiError {
    fn from(r: Refused) -> Self {
        ApiError::Conference(r)
    }
}

/// The body of every REST refusal. `code` is a string on the wire, typed where it comes from.
#[derive(serde::Serialize)]
struct ErrorBody<'a, C: serde::Serialize> {
    code: C,
    message: &'a str,
}

/// The JSON error reply `{code, message}` with `status`.
pub(crate) fn refuse<C: serde::Serialize>(status: StatusCode, code: C, message: &str) -> Response {
    (status, Json(ErrorBody { code, message })).into_response()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            ApiError::Auth(e) => refuse(super::auth::status(e), e.code(), &e.to_string()),
            ApiError::BadOrigin(message) => refuse(StatusCode::FORBIDDEN, "bad_origin", message),
            ApiError::BadBody(expected) => refuse(StatusCode::BAD_REQUEST, "invalid_message", &format!("expected {expected}")),
            ApiError::Conference(r) => refuse(StatusCode::BAD_REQUEST, ErrorCode::from(&r), &r.message),
            ApiError::SiteUnknown => refuse(StatusCode::NOT_FOUND, "site_unknown", "no such site"),
            ApiError::SiteAbsent => refuse(StatusCode::CONFLICT, "site_absent", "the site is not connected"),
            ApiError::Internal(message) => refuse(StatusCode::INTERNAL_SERVER_ERROR, "internal", message),
            ApiError::Unavailable(message) => refuse(StatusCode::SERVICE_UNAVAILABLE, "internal", message),
            ApiError::Refused { status, code, message } => refuse(status, code, &message),
        }
    }
}

impl IntoResponse for AuthError {
    fn into_response(self) -> Response {
        ApiError::Auth(self).into_response()
    }
}
