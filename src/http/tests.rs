//! The REST surface driven in-process: `app(bridge).oneshot(request)`, no socket, no TLS.
//! Who may reach which route (docs/security.md, "What each role may do"), the replies of a
//! refusal byte for byte, the Origin check on every write, and the technicians' actions.
//!
//! The bridge is the real one (`server::start` on the default config, a fresh data directory
//! and ephemeral ports it never receives on): the requests go straight into its router. Its
//! records hold one ended conference and one finished recording, so each route has something
//! to answer with.

use super::app;
use crate::server::{self, Running};
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{header, HeaderMap, Method, Request, StatusCode};
use axum::Router;
use serde_json::Value;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use tower::ServiceExt;

/// The password the tests give the people they sign in as.
const PASSWORD: &str = "mat-khau-cua-phep-thu";

/// Another computer on the office network (not the bridge's own host).
const LAN: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 7));

/// A running bridge on a scratch directory, its router, the site keys it generated, and the
/// ids of the conference and the recording in its records.
struct Fixture {
    running: Running,
    app: Router,
    data: PathBuf,
    keys: HashMap<String, String>,
    conference: i64,
    recording: String,
}

impl Fixture {
    async fn start() -> Fixture {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let data = std::env::temp_dir().join(format!("dc-http-{}", &id[..8]));
        let running = server::start(server::Options {
            config: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("config/default.toml"),
            listen: Some("127.0.0.1:0".into()),
            media_port: Some(0),
            data: data.clone(),
        })
        .await
        .expect("the bridge starts on the default config");
        let links = std::fs::read_to_string(data.join("join-links.txt")).expect("join links written at first start");
        let keys = links
            .lines()
            .filter_map(|l| {
                let (site, rest) = l.split_once('\t')?;
                Some((site.to_string(), rest.split("#key=").nth(1)?.to_string()))
            })
            .collect();
        // One person of each role, with a password the tests know.
        let hash = crate::auth::keys::hash_key(PASSWORD).unwrap();
        for (user, role) in [("kythuat", "technician"), ("chutri", "chair"), ("thuky", "secretariat")] {
            running.bridge.store.set_user(user, role, &hash).unwrap();
        }
        let bridge = &running.bridge;
        let conference = bridge.store.start_conference("Hội nghị thử").unwrap().id;
        bridge.store.end_conference().unwrap();
        let recording = "2026-12-05-thu".to_string();
        let index = crate::recording::Index {
            id: recording.clone(),
            title: "Hội nghị thử".into(),
            conference_id: Some(conference),
            started_ms: 1_764_900_000_000,
            stopped_ms: Some(1_764_900_060_000),
            complete: true,
            error: None,
            dropped_packets: 0,
            tracks: Vec::new(),
        };
        std::fs::create_dir_all(bridge.recordings.join(&recording)).unwrap();
        std::fs::write(bridge.recordings.join(&recording).join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
        let app = app(bridge.clone());
        Fixture { running, app, data, keys, conference, recording }
    }

    async fn call(&self, r: Req<'_>) -> Reply {
        let mut request = Request::builder().method(r.method).uri(r.path).header(header::HOST, "localhost:8443");
        if let Some(t) = r.token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        if let Some(o) = r.origin {
            request = request.header(header::ORIGIN, o);
        }
        if let Some(c) = r.cookie {
            request = request.header(header::COOKIE, c);
        }
        if !r.body.is_empty() {
            request = request.header(header::CONTENT_TYPE, "application/json");
        }
        let mut request = request.body(Body::from(r.body.to_string())).unwrap();
        request.extensions_mut().insert(ConnectInfo(SocketAddr::new(r.from, 50_000)));
        let response = self.app.clone().oneshot(request).await.unwrap();
        let (parts, body) = response.into_parts();
        let bytes = axum::body::to_bytes(body, 1 << 20).await.unwrap();
        Reply { status: parts.status, headers: parts.headers, text: String::from_utf8_lossy(&bytes).into_owned() }
    }

    /// A site's session token, from its key (`POST /api/session`).
    async fn site_token(&self, site: &str, from: u8) -> String {
        let body = format!(r#"{{"site":"{site}","key":"{}"}}"#, self.keys[site]);
        let reply = self.call(Req::post("/api/session", &body).from(IpAddr::V4(Ipv4Addr::new(10, 0, 1, from)))).await;
        assert_eq!(reply.status, StatusCode::OK, "{site} signs in: {}", reply.text);
        reply.json()["token"].as_str().unwrap().to_string()
    }

    /// A person's session token (`POST /api/login`).
    async fn user_token(&self, user: &str, from: u8) -> String {
        let body = format!(r#"{{"user":"{user}","password":"{PASSWORD}"}}"#);
        let reply = self.call(Req::post("/api/login", &body).from(IpAddr::V4(Ipv4Addr::new(10, 0, 2, from)))).await;
        assert_eq!(reply.status, StatusCode::OK, "{user} signs in: {}", reply.text);
        reply.json()["token"].as_str().unwrap().to_string()
    }

    /// A token for each kind of caller of docs/security.md's table.
    async fn tokens(&self) -> Vec<(Caller, Option<String>)> {
        vec![
            (Caller::Nobody, None),
            (Caller::Ward, Some(self.site_token("hang-gai", 1).await)),
            (Caller::ChairSite, Some(self.site_token("hq", 2).await)),
            (Caller::ChairUser, Some(self.user_token("chutri", 3).await)),
            (Caller::Technician, Some(self.user_token("kythuat", 4).await)),
            (Caller::Secretariat, Some(self.user_token("thuky", 5).await)),
        ]
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        self.running.shutdown.cancel();
        let _ = std::fs::remove_dir_all(&self.data);
    }
}

/// One request, as a test writes it.
#[derive(Clone)]
struct Req<'a> {
    method: Method,
    path: &'a str,
    body: &'a str,
    token: Option<&'a str>,
    origin: Option<&'a str>,
    cookie: Option<&'a str>,
    from: IpAddr,
}

impl<'a> Req<'a> {
    fn new(method: Method, path: &'a str, body: &'a str) -> Self {
        Req { method, path, body, token: None, origin: None, cookie: None, from: LAN }
    }

    fn get(path: &'a str) -> Self {
        Req::new(Method::GET, path, "")
    }

    fn post(path: &'a str, body: &'a str) -> Self {
        Req::new(Method::POST, path, body)
    }

    fn token(self, token: Option<&'a str>) -> Self {
        Req { token, ..self }
    }

    fn origin(self, origin: &'a str) -> Self {
        Req { origin: Some(origin), ..self }
    }

    fn cookie(self, cookie: &'a str) -> Self {
        Req { cookie: Some(cookie), ..self }
    }

    fn from(self, from: IpAddr) -> Self {
        Req { from, ..self }
    }
}

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    text: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or(Value::Null)
    }

    fn code(&self) -> String {
        self.json()["code"].as_str().unwrap_or("").to_string()
    }

    fn keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self.json().as_object().map(|o| o.keys().cloned().collect()).unwrap_or_default();
        keys.sort();
        keys
    }
}

/// The columns of docs/security.md's table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Caller {
    Nobody,
    Ward,
    ChairSite,
    ChairUser,
    Technician,
    Secretariat,
}

const TECHNICIANS: &[Caller] = &[Caller::Technician];
const RECORD_READERS: &[Caller] = &[Caller::ChairSite, Caller::ChairUser, Caller::Technician, Caller::Secretariat];

/// A role-guarded route, who may call it, and what it answers them (status, and the code of
/// a refusal) with the scratch bridge's records and no site connected.
struct Route {
    method: Method,
    path: String,
    body: &'static str,
    allowed: &'static [Caller],
    answer: (StatusCode, &'static str),
}

fn guarded_routes(f: &Fixture) -> Vec<Route> {
    let route = |method: Method, path: &str, body, allowed, answer| Route { method, path: path.to_string(), body, allowed, answer };
    let ok = (StatusCode::OK, "");
    let minutes = format!("/api/conferences/{}/minutes", f.conference);
    let recording = format!("/api/recordings/{}", f.recording);
    vec![
        route(Method::GET, "/api/tech", "", TECHNICIANS, ok),
        route(Method::POST, "/api/tech/readiness", "", TECHNICIANS, ok),
        route(Method::POST, "/api/tech/action", r#"{"site":"hang-gai","action":"keyframe"}"#, TECHNICIANS, (StatusCode::CONFLICT, "site_absent")),
        route(Method::POST, "/api/tech/action", r#"{"site":"hang-gai","action":"help_done"}"#, TECHNICIANS, (StatusCode::CONFLICT, "no_help_request")),
        route(Method::POST, "/api/tech/notice", r#"{"text":"Kiểm tra micro"}"#, TECHNICIANS, ok),
        route(Method::POST, "/api/tech/line", r#"{"site":"hang-gai","downlink_kbps":null,"uplink_kbps":null}"#, TECHNICIANS, ok),
        route(Method::GET, "/metrics", "", TECHNICIANS, ok),
        route(Method::GET, "/api/conferences", "", RECORD_READERS, ok),
        route(Method::GET, &minutes, "", RECORD_READERS, ok),
        route(Method::GET, &format!("{minutes}?format=csv"), "", RECORD_READERS, ok),
        route(Method::GET, &format!("{minutes}?format=html"), "", RECORD_READERS, ok),
        route(Method::GET, "/api/conferences/424242/minutes", "", RECORD_READERS, (StatusCode::NOT_FOUND, "conference_unknown")),
        route(Method::GET, "/api/recordings", "", RECORD_READERS, ok),
        route(Method::GET, &format!("{recording}/index.json"), "", RECORD_READERS, ok),
        route(Method::GET, "/api/recordings/khong-co/index.json", "", RECORD_READERS, (StatusCode::NOT_FOUND, "recording_unknown")),
        // Composing is not started for real here (it runs ffmpeg): the unknown recording's
        // refusal shows the guard let the caller through.
        route(Method::POST, "/api/recordings/khong-co/compose", "", RECORD_READERS, (StatusCode::NOT_FOUND, "recording_unknown")),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_role_reaches_exactly_the_routes_the_security_table_gives_it() {
    let f = Fixture::start().await;
    let tokens = f.tokens().await;
    for r in guarded_routes(&f) {
        for (caller, token) in &tokens {
            let reply = f.call(Req::new(r.method.clone(), &r.path, r.body).token(token.as_deref())).await;
            let what = format!("{caller:?} {} {}: {}", r.method, r.path, reply.text);
            let (status, code) = match caller {
                Caller::Nobody => (StatusCode::UNAUTHORIZED, "token_missing"),
                c if r.allowed.contains(c) => r.answer,
                _ => (StatusCode::FORBIDDEN, "forbidden"),
            };
            assert_eq!((reply.status, reply.code().as_str()), (status, code), "{what}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_of_who_is_asking_reads_the_same_on_every_route() {
    let f = Fixture::start().await;
    let ward = f.site_token("hang-gai", 1).await;
    let forged = format!("dct_{}", "cd".repeat(32));
    for r in guarded_routes(&f) {
        let call = |token| f.call(Req::new(r.method.clone(), &r.path, r.body).token(token));
        let none = call(None).await;
        assert_eq!(none.text, r#"{"code":"token_missing","message":"sign in first: no session token"}"#, "{}", r.path);
        assert_eq!(none.headers[header::CONTENT_TYPE], "application/json");
        let forbidden = call(Some(&ward)).await;
        assert_eq!(forbidden.text, r#"{"code":"forbidden","message":"this role may not do that"}"#, "{}", r.path);
        let bad = call(Some(&forged)).await;
        assert_eq!((bad.status, bad.text.as_str()), (StatusCode::UNAUTHORIZED, r#"{"code":"token_invalid","message":"the session token is not valid"}"#));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_session_cookie_admits_like_the_bearer_header() {
    let f = Fixture::start().await;
    let tech = f.user_token("kythuat", 1).await;
    let cookie = format!("lang=vi; diemcau_token={tech}");
    assert_eq!(f.call(Req::get("/api/tech").cookie(&cookie)).await.status, StatusCode::OK);
    assert_eq!(f.call(Req::get("/api/recordings").cookie(&cookie)).await.status, StatusCode::OK);
    let empty = f.call(Req::get("/api/tech").cookie("diemcau_token=")).await;
    assert_eq!((empty.status, empty.code().as_str()), (StatusCode::UNAUTHORIZED, "token_missing"));
    // Logging out ends the token: the next call with it is refused.
    assert_eq!(f.call(Req::post("/api/logout", "").token(Some(&tech))).await.status, StatusCode::NO_CONTENT);
    let after = f.call(Req::get("/api/tech").token(Some(&tech))).await;
    assert_eq!((after.status, after.code().as_str()), (StatusCode::UNAUTHORIZED, "token_invalid"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_need_a_technician_except_from_the_bridges_own_host() {
    let f = Fixture::start().await;
    let ward = f.site_token("hang-gai", 1).await;
    let local = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let reply = f.call(Req::get("/metrics").from(local)).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert!(reply.text.contains("# TYPE diemcau_media_forwarded_packets_total counter"), "{}", reply.text);
    assert_eq!(reply.headers[header::CONTENT_TYPE], "text/plain; version=0.0.4; charset=utf-8");
    assert_eq!(f.call(Req::get("/metrics").from(std::net::Ipv6Addr::LOCALHOST.into())).await.status, StatusCode::OK);
    assert_eq!(f.call(Req::get("/metrics")).await.status, StatusCode::UNAUTHORIZED, "from the LAN, no token");
    assert_eq!(f.call(Req::get("/metrics").token(Some(&ward))).await.status, StatusCode::FORBIDDEN, "from the LAN, a ward");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_tells_everyone_it_is_up_and_only_the_chair_and_technicians_more() {
    let f = Fixture::start().await;
    for (caller, token) in f.tokens().await {
        let reply = f.call(Req::get("/api/health").token(token.as_deref())).await;
        assert_eq!(reply.status, StatusCode::OK, "{caller:?}");
        let detailed = matches!(caller, Caller::ChairSite | Caller::ChairUser | Caller::Technician);
        let keys: &[&str] = if detailed {
            &["alarms", "conference", "forwarding_delay", "media", "sites", "status", "uptime_s", "version"]
        } else {
            &["status", "uptime_s", "version"]
        };
        assert_eq!(reply.keys(), keys, "{caller:?}: {}", reply.text);
        if detailed {
            let sites = reply.json()["sites"].as_array().cloned().unwrap_or_default();
            assert_eq!(sites.len(), 6, "every site of the default config");
            let hq = &sites[0];
            assert_eq!((hq["id"].as_str(), hq["present"].as_bool(), hq["status"].as_str()), (Some("hq"), Some(false), Some("absent")), "{hq}");
            assert!(hq["alarms"].is_array(), "{hq}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_in_answers_with_the_token_the_ticket_and_the_cookie() {
    let f = Fixture::start().await;
    let body = format!(r#"{{"site":"hq","key":"{}"}}"#, f.keys["hq"]);
    let site = f.call(Req::post("/api/session", &body)).await;
    assert_eq!(site.status, StatusCode::OK, "{}", site.text);
    assert_eq!(site.keys(), ["expires_ms", "role", "site", "ticket", "ticket_expires_ms", "token"]);
    assert_eq!((site.json()["site"].as_str(), site.json()["role"].as_str()), (Some("hq"), Some("chair")));
    let token = site.json()["token"].as_str().unwrap().to_string();
    let cookie = site.headers[header::SET_COOKIE].to_str().unwrap();
    assert!(cookie.starts_with(&format!("diemcau_token={token}; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=")), "{cookie}");

    let body = format!(r#"{{"user":"thuky","password":"{PASSWORD}"}}"#);
    let user = f.call(Req::post("/api/login", &body).from(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 8)))).await;
    assert_eq!(user.keys(), ["expires_ms", "role", "token", "user"], "{}", user.text);
    assert_eq!((user.json()["user"].as_str(), user.json()["role"].as_str()), (Some("thuky"), Some("secretariat")));

    let bad = f.call(Req::post("/api/session", "site=hq")).await;
    assert_eq!(
        (bad.status, bad.text.as_str()),
        (StatusCode::BAD_REQUEST, r#"{"code":"invalid_message","message":"expected {\"site\": \"…\", \"key\": \"…\"}"}"#)
    );
    let wrong = f.call(Req::post("/api/login", r#"{"user":"thuky","password":"sai"}"#)).await;
    assert_eq!((wrong.status, wrong.code().as_str()), (StatusCode::UNAUTHORIZED, "bad_credentials"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_write_from_another_sites_page_is_refused_before_its_handler() {
    let f = Fixture::start().await;
    let tech = f.user_token("kythuat", 1).await;
    let hq = format!(r#"{{"site":"hq","key":"{}"}}"#, f.keys["hq"]);
    let writes = [
        (Method::POST, "/api/session", hq.as_str()),
        (Method::POST, "/api/login", r#"{"user":"kythuat","password":"x"}"#),
        (Method::POST, "/api/logout", ""),
        (Method::POST, "/api/tech/readiness", ""),
        (Method::POST, "/api/tech/action", r#"{"site":"hang-gai","action":"drop"}"#),
        (Method::POST, "/api/tech/notice", r#"{"text":"x"}"#),
        (Method::POST, "/api/recordings/khong-co/compose", ""),
        (Method::DELETE, "/api/tech", ""),
        (Method::PUT, "/api/khong-co", ""),
    ];
    let refused = r#"{"code":"bad_origin","message":"requests from another site's page are refused"}"#;
    for (method, path, body) in &writes {
        for token in [None, Some(tech.as_str())] {
            for origin in ["https://evil.example", "http://localhost:8443", "null", "https://localhost:8443.evil.example"] {
                let reply = f.call(Req::new(method.clone(), path, body).token(token).origin(origin)).await;
                assert_eq!((reply.status, reply.text.as_str()), (StatusCode::FORBIDDEN, refused), "{method} {path} from {origin}");
            }
        }
    }
    // The technician's token still works: the refused logout did not end it.
    assert_eq!(f.call(Req::get("/api/tech").token(Some(&tech))).await.status, StatusCode::OK);
    // The bridge's own page (Origin = https://<Host>) may write.
    let own = f.call(Req::post("/api/tech/readiness", "").token(Some(&tech)).origin("https://localhost:8443")).await;
    assert_eq!(own.status, StatusCode::OK, "{}", own.text);
    // Reading is not a write: another site's page may load the public list (it learns nothing
    // secret, and the browser keeps the reply from it).
    assert_eq!(f.call(Req::get("/api/sites").origin("https://evil.example")).await.status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_technicians_action_is_one_of_four_words_and_the_site_is_checked_first() {
    let f = Fixture::start().await;
    let tech = f.user_token("kythuat", 1).await;
    let (f, tech) = (&f, tech.as_str());
    let act = |body: String| async move { f.call(Req::post("/api/tech/action", &body).token(Some(tech))).await };
    let unknown = act(r#"{"site":"hang-gai","action":"reboot"}"#.into()).await;
    assert_eq!(
        (unknown.status, unknown.text.as_str()),
        (StatusCode::BAD_REQUEST, r#"{"code":"unknown_action","message":"action must be keyframe, restart_ice, drop or help_done"}"#)
    );
    let site = act(r#"{"site":"ba-dinh","action":"reboot"}"#.into()).await;
    assert_eq!((site.status, site.text.as_str()), (StatusCode::NOT_FOUND, r#"{"code":"site_unknown","message":"no such site"}"#));
    for action in ["keyframe", "restart_ice", "drop"] {
        let absent = act(format!(r#"{{"site":"hang-gai","action":"{action}"}}"#)).await;
        assert_eq!(
            (absent.status, absent.text.as_str()),
            (StatusCode::CONFLICT, r#"{"code":"site_absent","message":"the site is not connected"}"#),
            "{action}"
        );
    }
    let malformed = r#"{"code":"invalid_message","message":"expected {\"site\": \"…\", \"action\": \"keyframe|restart_ice|drop\"}"}"#;
    for body in [r#"{"site":"hang-gai","action":7}"#, r#"{"site":"hang-gai"}"#, r#"{"site":"hang-gai","action":"drop","why":"x"}"#, "drop"] {
        let reply = act(body.into()).await;
        assert_eq!((reply.status, reply.text.as_str()), (StatusCode::BAD_REQUEST, malformed), "{body}");
    }
    let notice = f.call(Req::post("/api/tech/notice", r#"{"site":"ba-dinh","text":"x"}"#).token(Some(tech))).await;
    assert_eq!((notice.status, notice.code().as_str()), (StatusCode::NOT_FOUND, "site_unknown"));
    let sent = f.call(Req::post("/api/tech/notice", r#"{"text":"Kiểm tra micro"}"#).token(Some(tech))).await;
    assert_eq!(sent.keys(), ["notice", "ok"], "{}", sent.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_technician_sets_a_sites_line_ceilings_live_and_the_health_view_shows_them() {
    let f = Fixture::start().await;
    let tech = f.user_token("kythuat", 1).await;
    let (f, tech) = (&f, tech.as_str());
    let set = |body: &'static str| async move { f.call(Req::post("/api/tech/line", body).token(Some(tech))).await };
    let line = || async move {
        let view = f.call(Req::get("/api/tech").token(Some(tech))).await.json();
        view["sites"].as_array().unwrap().iter().find(|s| s["id"] == "hang-gai").unwrap()["line"].clone()
    };
    assert_eq!(line().await, serde_json::json!({"down_kbps": null, "up_kbps": null}), "none configured");

    let weak = set(r#"{"site":"hang-gai","downlink_kbps":1000,"uplink_kbps":500}"#).await;
    assert_eq!((weak.status, weak.text.as_str()), (StatusCode::OK, r#"{"ok":true}"#));
    assert_eq!(line().await, serde_json::json!({"down_kbps": 1000, "up_kbps": 500}));

    // Out of range, unknown or malformed: refused, and the ceilings stay as they were.
    let slow = set(r#"{"site":"hang-gai","downlink_kbps":64,"uplink_kbps":null}"#).await;
    assert_eq!((slow.status, slow.code().as_str()), (StatusCode::BAD_REQUEST, "line_out_of_range"), "{}", slow.text);
    let typo = set(r#"{"site":"hang-gai","downlink_kbps":50000000,"uplink_kbps":null}"#).await;
    assert_eq!(typo.code(), "line_out_of_range", "{}", typo.text);
    let unknown = set(r#"{"site":"ba-dinh","downlink_kbps":1000,"uplink_kbps":null}"#).await;
    assert_eq!((unknown.status, unknown.code().as_str()), (StatusCode::NOT_FOUND, "site_unknown"));
    for body in [
        r#"{"site":"hang-gai","downlink_kbps":"1000","uplink_kbps":null}"#,
        r#"{"site":"hang-gai","downlink_kbps":1000,"uplink_kbps":null,"x":1}"#,
        r#"{"site":"hang-gai"}"#,
    ] {
        assert_eq!(set(body).await.code(), "invalid_message", "{body}");
    }
    assert_eq!(line().await, serde_json::json!({"down_kbps": 1000, "up_kbps": 500}), "unchanged by the refusals");

    // One ceiling given: the other stays.
    assert_eq!(set(r#"{"site":"hang-gai","uplink_kbps":800}"#).await.status, StatusCode::OK);
    assert_eq!(line().await, serde_json::json!({"down_kbps": 1000, "up_kbps": 800}));

    let lifted = set(r#"{"site":"hang-gai","downlink_kbps":null,"uplink_kbps":null}"#).await;
    assert_eq!(lifted.status, StatusCode::OK);
    assert_eq!(line().await, serde_json::json!({"down_kbps": null, "up_kbps": null}), "lifted: as the line takes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_records_list_the_archives_conferences_and_recordings() {
    let f = Fixture::start().await;
    let secretariat = f.user_token("thuky", 1).await;
    let conferences = f.call(Req::get("/api/conferences").token(Some(&secretariat))).await.json();
    let listed = &conferences["conferences"][0];
    assert_eq!((listed["id"].as_i64(), listed["title"].as_str()), (Some(f.conference), Some("Hội nghị thử")), "{conferences}");
    assert!(listed["ended_ms"].is_i64(), "{conferences}");
    let minutes = f.call(Req::get(&format!("/api/conferences/{}/minutes?format=pdf", f.conference)).token(Some(&secretariat))).await;
    assert_eq!((minutes.status, minutes.code().as_str()), (StatusCode::BAD_REQUEST, "invalid_message"));

    let recordings = f.call(Req::get("/api/recordings").token(Some(&secretariat))).await;
    let row = recordings.json()["recordings"][0].clone();
    let mut keys: Vec<&str> = row.as_object().map(|o| o.keys().map(String::as_str).collect()).unwrap_or_default();
    keys.sort();
    assert_eq!(keys, ["complete", "composition", "conference_id", "dropped_packets", "id", "started_ms", "stopped_ms", "title", "tracks"], "{row}");
    assert!(row["composition"].is_null(), "never composed: {row}");
    let index = f.call(Req::get(&format!("/api/recordings/{}/index.json", f.recording)).token(Some(&secretariat))).await;
    assert_eq!(index.headers[header::CONTENT_DISPOSITION], "attachment; filename=\"index.json\"");
    assert_eq!(index.json()["id"], f.recording.as_str());
    let outside = f.call(Req::get(&format!("/api/recordings/{}/..%2F..%2Fdiemcau.sqlite3", f.recording)).token(Some(&secretariat))).await;
    assert_eq!((outside.status, outside.code().as_str()), (StatusCode::NOT_FOUND, "recording_unknown"), "only files its index lists");
}
