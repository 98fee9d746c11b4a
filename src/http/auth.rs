//! Signing in over HTTP: a site's key or a person's password for a session token (and a
//! site's WebSocket join ticket), and the check every protected endpoint makes: the
//! [`Require`] extractor, whose type names the roles that may call.
//!
//! A token is accepted as `Authorization: Bearer <token>` or in the `diemcau_token` cookie
//! (Secure, HttpOnly, SameSite=Strict) that signing in sets, so links such as the printable
//! minutes open in a new tab without the token in the address.

use super::error::ApiError;
use crate::auth::{AuthError, Principal, Role};
use crate::server::Bridge;
use axum::extract::rejection::JsonRejection;
use axum::extract::{ConnectInfo, FromRequestParts, OptionalFromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use std::convert::Infallible;
use std::marker::PhantomData;
use std::net::SocketAddr;
use std::sync::Arc;

pub(crate) const COOKIE: &str = "diemcau_token";

/// The HTTP status of each refusal.
pub(crate) fn status(e: AuthError) -> StatusCode {
    match e {
        AuthError::SiteUnknown => StatusCode::NOT_FOUND,
        AuthError::Forbidden => StatusCode::FORBIDDEN,
        AuthError::TooManyJoins | AuthError::TooManySockets => StatusCode::TOO_MANY_REQUESTS,
        AuthError::Busy => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::UNAUTHORIZED,
    }
}

/// The token of an `Authorization: Bearer <token>` header, as sent.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "))
}

/// The token a request carries, from the header first, else the cookie.
fn token(headers: &HeaderMap) -> Option<&str> {
    bearer(headers).map(str::trim).filter(|t| !t.is_empty()).or_else(|| {
        headers.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(';')).find_map(|c| {
            let (name, value) = c.trim().split_once('=')?;
            (name == COOKIE && !value.is_empty()).then_some(value)
        })
    })
}

/// Who is asking, if anyone.
fn principal(bridge: &Bridge, headers: &HeaderMap) -> Result<Principal, AuthError> {
    bridge.auth.authenticate(token(headers).ok_or(AuthError::NoToken)?)
}

/// A set of roles, as a type: the `R` of [`Require<R>`].
pub(crate) trait Roles: Send + Sync + 'static {
    const ALLOWED: &'static [Role];
}

/// The technicians alone: `/api/tech/*` and `/metrics`.
pub(crate) struct Technicians;

impl Roles for Technicians {
    const ALLOWED: &'static [Role] = &[Role::Technician];
}

/// Who may read the records (conferences, minutes, recordings): the chair, the technicians,
/// the secretariat.
pub(crate) struct RecordReaders;

impl Roles for RecordReaders {
    const ALLOWED: &'static [Role] = &[Role::Chair, Role::Technician, Role::Secretariat];
}

/// Who sees every site's state in `/api/health`: the chair and the technicians.
pub(crate) struct Overseers;

impl Roles for Overseers {
    const ALLOWED: &'static [Role] = &[Role::Chair, Role::Technician];
}

/// A handler's argument that admits only a signed-in principal of one of `R`'s roles; anyone
/// else gets the [`AuthError`] as the reply (`401 token_missing`, `token_invalid`,
/// `token_expired`; `403 forbidden`) before the handler runs. As `Option<Require<R>>` it
/// only asks, and refuses nobody.
pub(crate) struct Require<R: Roles>(PhantomData<fn() -> R>);

impl<R: Roles> Require<R> {
    fn check(bridge: &Bridge, headers: &HeaderMap) -> Result<Self, AuthError> {
        let p = principal(bridge, headers)?;
        if R::ALLOWED.contains(&p.role) {
            Ok(Require(PhantomData))
        } else {
            Err(AuthError::Forbidden)
        }
    }
}

impl<R: Roles> FromRequestParts<Arc<Bridge>> for Require<R> {
    type Rejection = AuthError;

    async fn from_request_parts(parts: &mut Parts, bridge: &Arc<Bridge>) -> Result<Self, AuthError> {
        Self::check(bridge, &parts.headers)
    }
}

impl<R: Roles> OptionalFromRequestParts<Arc<Bridge>> for Require<R> {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, bridge: &Arc<Bridge>) -> Result<Option<Self>, Infallible> {
        Ok(Self::check(bridge, &parts.headers).ok())
    }
}

fn cookie(token: &str, max_age_s: i64) -> HeaderValue {
    HeaderValue::from_str(&format!("{COOKIE}={token}; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age={max_age_s}"))
        .unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The reply to a successful sign-in: who signed in, the token, and the session cookie.
#[derive(serde::Serialize)]
struct SignedIn<'a, W: serde::Serialize> {
    #[serde(flatten)]
    who: W,
    token: &'a str,
    expires_ms: i64,
}

fn signed_in(token: &crate::auth::tokens::Issued, who: impl serde::Serialize) -> Response {
    let max_age = (token.expires_ms - crate::store::now_ms()) / 1000;
    let body = SignedIn { who, token: &token.secret, expires_ms: token.expires_ms };
    ([(header::SET_COOKIE, cookie(&token.secret, max_age))], Json(body)).into_response()
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SessionRequest {
    site: String,
    key: String,
}

/// A site signed in: its id and role, and the ticket for its WebSocket `join`.
#[derive(serde::Serialize)]
struct SiteSignedIn<'a> {
    site: &'a str,
    role: Role,
    ticket: &'a str,
    ticket_expires_ms: i64,
}

/// `POST /api/session {site, key}`: a site's page signs in. (Another site's page never gets
/// here: `security::same_origin_writes` refuses every write from one.)
pub(crate) async fn session(
    State(bridge): State<Arc<Bridge>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    body: Result<Json<SessionRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Ok(Json(req)) = body else { return Err(ApiError::BadBody("{\"site\": \"…\", \"key\": \"…\"}")) };
    let s = bridge.auth.site_session(&req.site, &req.key, addr.ip()).await?;
    let who = SiteSignedIn { site: &s.principal.subject, role: s.principal.role, ticket: &s.ticket.secret, ticket_expires_ms: s.ticket.expires_ms };
    Ok(signed_in(&s.token, who))
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LoginRequest {
    user: String,
    password: String,
}

#[derive(serde::Serialize)]
struct UserSignedIn<'a> {
    user: &'a str,
    role: Role,
}

/// `POST /api/login {user, password}`: a technician or a member of the secretariat signs in.
pub(crate) async fn login(
    State(bridge): State<Arc<Bridge>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    body: Result<Json<LoginRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Ok(Json(req)) = body else { return Err(ApiError::BadBody("{\"user\": \"…\", \"password\": \"…\"}")) };
    let (p, token) = bridge.auth.login(&req.user, &req.password, addr.ip()).await?;
    Ok(signed_in(&token, UserSignedIn { user: &p.subject, role: p.role }))
}

/// `POST /api/logout`: ends the request's token and clears the cookie.
pub(crate) async fn logout(State(bridge): State<Arc<Bridge>>, headers: HeaderMap) -> Response {
    if let Some(t) = token(&headers) {
        bridge.auth.logout(t).await;
    }
    ([(header::SET_COOKIE, cookie("", 0))], StatusCode::NO_CONTENT).into_response()
}
