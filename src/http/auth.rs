//! Signing in over HTTP: a site's key or a person's password for a session token (and a
//! site's WebSocket join ticket), and the check every protected endpoint makes.
//!
//! A token is accepted as `Authorization: Bearer <token>` or in the `diemcau_token` cookie
//! (Secure, HttpOnly, SameSite=Strict) that signing in sets, so links such as the printable
//! minutes open in a new tab without the token in the address.

use super::security::origin_allowed;
use crate::auth::{AuthError, Principal, Role};
use crate::server::Bridge;
use axum::extract::rejection::JsonRejection;
use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use std::net::SocketAddr;
use std::sync::Arc;

pub const COOKIE: &str = "diemcau_token";

/// The HTTP status of each refusal.
pub fn status(e: AuthError) -> StatusCode {
    match e {
        AuthError::SiteUnknown => StatusCode::NOT_FOUND,
        AuthError::Forbidden => StatusCode::FORBIDDEN,
        AuthError::TooManyJoins | AuthError::TooManySockets => StatusCode::TOO_MANY_REQUESTS,
        AuthError::Busy => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::UNAUTHORIZED,
    }
}

/// A refusal as the JSON error every endpoint uses.
pub fn refusal(e: AuthError) -> Response {
    super::refuse(status(e), e.code(), &e.to_string())
}

impl IntoResponse for AuthError {
    fn into_response(self) -> Response {
        refusal(self)
    }
}

/// The token a request carries, from the header first, else the cookie.
fn token(headers: &HeaderMap) -> Option<&str> {
    super::bearer(headers).map(str::trim).filter(|t| !t.is_empty()).or_else(|| {
        headers.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(';')).find_map(|c| {
            let (name, value) = c.trim().split_once('=')?;
            (name == COOKIE && !value.is_empty()).then_some(value)
        })
    })
}

/// Who is asking, if anyone.
pub fn principal(bridge: &Bridge, headers: &HeaderMap) -> Result<Principal, AuthError> {
    bridge.auth.authenticate(token(headers).ok_or(AuthError::NoToken)?)
}

/// The request's principal if its role is one of `allowed`; otherwise why not (a response).
pub fn require(bridge: &Bridge, headers: &HeaderMap, allowed: &[Role]) -> Result<Principal, AuthError> {
    let p = principal(bridge, headers)?;
    if allowed.contains(&p.role) {
        Ok(p)
    } else {
        Err(AuthError::Forbidden)
    }
}

fn cookie(token: &str, max_age_s: i64) -> HeaderValue {
    HeaderValue::from_str(&format!("{COOKIE}={token}; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age={max_age_s}"))
        .unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The reply to a successful sign-in: `body` plus the token, and the session cookie.
fn signed_in(token: &crate::auth::tokens::Issued, mut body: serde_json::Value) -> Response {
    body["token"] = serde_json::json!(token.secret);
    body["expires_ms"] = serde_json::json!(token.expires_ms);
    let max_age = (token.expires_ms - crate::store::now_ms()) / 1000;
    ([(header::SET_COOKIE, cookie(&token.secret, max_age))], Json(body)).into_response()
}

fn bad_origin() -> Response {
    super::refuse(StatusCode::FORBIDDEN, "bad_origin", "this request comes from a page of another site")
}

fn bad_body(expected: &str) -> Response {
    super::refuse(StatusCode::BAD_REQUEST, "invalid_message", &format!("expected {expected}"))
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionRequest {
    site: String,
    key: String,
}

/// `POST /api/session {site, key}`: a site's page signs in.
pub async fn session(
    State(bridge): State<Arc<Bridge>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    uri: Uri,
    headers: HeaderMap,
    body: Result<Json<SessionRequest>, JsonRejection>,
) -> Response {
    if !origin_allowed(&headers, &uri, &bridge.settings) {
        return bad_origin();
    }
    let Ok(Json(req)) = body else { return bad_body("{\"site\": \"…\", \"key\": \"…\"}") };
    match bridge.auth.site_session(&req.site, &req.key, addr.ip()).await {
        Ok(s) => signed_in(
            &s.token,
            serde_json::json!({
                "site": s.principal.subject,
                "role": s.principal.role,
                "ticket": s.ticket.secret,
                "ticket_expires_ms": s.ticket.expires_ms,
            }),
        ),
        Err(e) => refusal(e),
    }
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    user: String,
    password: String,
}

/// `POST /api/login {user, password}`: a technician or a member of the secretariat signs in.
pub async fn login(
    State(bridge): State<Arc<Bridge>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    uri: Uri,
    headers: HeaderMap,
    body: Result<Json<LoginRequest>, JsonRejection>,
) -> Response {
    if !origin_allowed(&headers, &uri, &bridge.settings) {
        return bad_origin();
    }
    let Ok(Json(req)) = body else { return bad_body("{\"user\": \"…\", \"password\": \"…\"}") };
    match bridge.auth.login(&req.user, &req.password, addr.ip()).await {
        Ok((p, token)) => signed_in(&token, serde_json::json!({"user": p.subject, "role": p.role})),
        Err(e) => refusal(e),
    }
}

/// `POST /api/logout`: ends the request's token and clears the cookie.
pub async fn logout(State(bridge): State<Arc<Bridge>>, uri: Uri, headers: HeaderMap) -> Response {
    if !origin_allowed(&headers, &uri, &bridge.settings) {
        return bad_origin();
    }
    if let Some(t) = token(&headers) {
        bridge.auth.logout(t).await;
    }
    ([(header::SET_COOKIE, cookie("", 0))], StatusCode::NO_CONTENT).into_response()
}
