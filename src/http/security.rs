//! Transport hardening for every response: HSTS (the bridge serves HTTPS only), a
//! Content-Security-Policy that allows nothing but the bridge's own scripts (and the boot
//! watchdog written into each page, by its hash: [`super::boot`]), styles and
//! media, no framing, no referrer, camera and microphone for this origin only; `no-store` on
//! the API. And the Origin check that keeps other web sites' pages from using a signed-in
//! browser's WebSocket or session (cross-site WebSocket hijacking, CSRF).

use crate::config::Settings;
use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderValue, Uri};
use axum::middleware::Next;
use axum::response::Response;

/// The policy for the bridge's own pages. Handlers that need another (the printable
/// minutes' inline style) set theirs and it is kept.
pub(crate) const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; \
     media-src 'self' blob: mediastream:; connect-src 'self'; object-src 'none'; base-uri 'none'; \
     form-action 'self'; frame-ancestors 'none'";

pub(crate) async fn headers(request: Request, next: Next) -> Response {
    let api = request.uri().path().starts_with("/api/") || request.uri().path() == "/metrics";
    let mut resp = next.run(request).await;
    let h = resp.headers_mut();
    let set = |h: &mut HeaderMap, name: header::HeaderName, value: &'static str| {
        h.entry(name).or_insert(HeaderValue::from_static(value));
    };
    set(h, header::STRICT_TRANSPORT_SECURITY, "max-age=31536000");
    h.entry(header::CONTENT_SECURITY_POLICY).or_insert_with(|| super::boot::csp().clone());
    set(h, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(h, header::X_FRAME_OPTIONS, "DENY");
    set(h, header::REFERRER_POLICY, "no-referrer");
    set(h, header::HeaderName::from_static("permissions-policy"), "camera=(self), microphone=(self), display-capture=(self), geolocation=()");
    if api {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    resp
}

/// Every request that changes something (any method but GET, HEAD and OPTIONS) must come from
/// no page or the bridge's own: refused `403 bad_origin` otherwise, before any handler runs,
/// so no endpoint can forget the check.
pub(crate) async fn same_origin_writes(
    axum::extract::State(bridge): axum::extract::State<std::sync::Arc<crate::server::Bridge>>,
    request: Request,
    next: Next,
) -> Response {
    use axum::http::Method;
    use axum::response::IntoResponse;
    let writes = !matches!(*request.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if writes && !origin_allowed(request.headers(), request.uri(), &bridge.settings) {
        return super::error::ApiError::BadOrigin("requests from another site's page are refused").into_response();
    }
    next.run(request).await
}

/// A request may come from no page at all (no `Origin`: a program, a test, the CLI) or from
/// this bridge's own pages: `Origin` equal to `https://<Host>` or to the configured
/// `server.public_url`. Anything else is another site's page acting through the user's
/// browser.
///
/// `uri` is the request's: over HTTP/2 the host is its authority, not a `Host` header.
pub(crate) fn origin_allowed(headers: &HeaderMap, uri: &Uri, settings: &Settings) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else { return true };
    let Ok(origin) = origin.to_str() else { return false };
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).or_else(|| uri.authority().map(|a| a.as_str()));
    if host.is_some_and(|h| origin.eq_ignore_ascii_case(&format!("https://{h}"))) {
        return true;
    }
    settings.public_url.as_deref().is_some_and(|url| {
        // The origin part of the URL: scheme://host[:port], no path.
        let end = url.find("://").map(|i| url[i + 3..].find('/').map_or(url.len(), |j| i + 3 + j)).unwrap_or(url.len());
        origin.eq_ignore_ascii_case(&url[..end])
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(public_url: Option<&str>) -> Settings {
        let mut s = Settings::from_toml("[conference]\ntitle = \"t\"\n[[sites]]\nid = \"hq\"\nname = \"HQ\"\nrole = \"chair\"\n").unwrap();
        s.public_url = public_url.map(str::to_string);
        s
    }

    fn headers(origin: Option<&str>, host: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_str(host).unwrap());
        if let Some(o) = origin {
            h.insert(header::ORIGIN, HeaderValue::from_str(o).unwrap());
        }
        h
    }

    fn origin_allowed(h: &HeaderMap, s: &Settings) -> bool {
        super::origin_allowed(h, &Uri::from_static("/api/session"), s)
    }

    #[test]
    fn over_http2_the_host_is_the_uri_authority() {
        let mut h = HeaderMap::new();
        h.insert(header::ORIGIN, HeaderValue::from_static("https://localhost:8443"));
        let uri = Uri::from_static("https://localhost:8443/api/session");
        assert!(super::origin_allowed(&h, &uri, &settings(None)));
        assert!(!super::origin_allowed(&h, &Uri::from_static("https://10.0.0.5:8443/api/session"), &settings(None)));
    }

    #[test]
    fn only_the_bridges_own_pages_or_no_page_may_call() {
        let s = settings(Some("https://cau.quanuy.vn:8443/"));
        assert!(origin_allowed(&headers(None, "localhost:8443"), &s), "no Origin: not a browser page");
        assert!(origin_allowed(&headers(Some("https://localhost:8443"), "localhost:8443"), &s));
        assert!(origin_allowed(&headers(Some("https://cau.quanuy.vn:8443"), "10.0.0.5:8443"), &s), "behind a proxy: the public URL");
        assert!(!origin_allowed(&headers(Some("https://evil.example"), "localhost:8443"), &s));
        assert!(!origin_allowed(&headers(Some("http://localhost:8443"), "localhost:8443"), &s), "plain HTTP is another origin");
        assert!(!origin_allowed(&headers(Some("https://cau.quanuy.vn:8443.evil.example"), "localhost:8443"), &s));
        assert!(!origin_allowed(&headers(Some("null"), "localhost:8443"), &settings(None)));
    }
}
