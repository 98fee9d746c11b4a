//! The bad-input matrix: every way a broken or hostile client can be wrong — malformed or
//! oversize messages, wrong field types, unknown fields, messages out of order, a ward
//! using the chair's or the technicians' commands, expired, forged and replayed tokens, a
//! wrong key, a rotated key, another site's Origin — gets its documented error code, changes
//! nothing in the conference, and the other sites keep receiving media throughout.

mod common;

use common::sim::Sim;
use common::ws::{https_request, site_session, Client};
use common::{wait_until, TestBridge};
use serde_json::{json, Value};
use std::time::Duration;

/// What the conference looks like, without clocks: must not change under bad input.
fn conference(state: &Value) -> Value {
    let sites: Vec<Value> = state["sites"]
        .as_array()
        .map(|a| a.iter().map(|s| json!([s["id"], s["present"], s["audio_muted"], s["video_muted"], s["hard_muted"]])).collect())
        .unwrap_or_default();
    json!({
        "sites": sites, "floor": state["floor"], "layout": state["layout"], "locked": state["locked"],
        "agenda": state["agenda"]["items"], "item": state["agenda"]["current"]["index"],
        "sharing": state["sharing"], "meeting": state["meeting"], "recording": state["recording"],
    })
}

fn latest_state(sim: &Sim) -> Value {
    sim.messages.lock().unwrap().iter().rev().find(|m| m["type"] == "state").cloned().unwrap_or(Value::Null)
}

/// Both publishers' audio keeps reaching the listener.
async fn media_flows(listener: &Sim, case: &str) {
    let (a, b) = (listener.received("hq", "audio"), listener.received("hang-gai", "audio"));
    let what = format!("media to keep flowing after: {case}");
    wait_until(Duration::from_secs(10), &what, || async {
        (listener.received("hq", "audio") >= a + 10 && listener.received("hang-gai", "audio") >= b + 10).then_some(())
    })
    .await;
}

/// How a case reaches the bridge.
enum Probe {
    /// A text frame on a socket that never joined.
    Stranger(String),
    /// A message on the joined ward's socket (Cụm Tràng Tiền, no media).
    Ward(Value),
    /// `join` with a ticket: made up, used before, or past its time.
    Join(Ticket),
    /// An HTTP request.
    Http { method: &'static str, path: &'static str, auth: Auth, origin: Option<&'static str>, body: String },
    /// A WebSocket opened by another site's page.
    WsOrigin(&'static str),
}

enum Ticket {
    Forged,
    Replayed,
    Expired,
}

enum Auth {
    None,
    Forged,
    Expired,
    Ward,
    Chair,
}

struct Case {
    name: &'static str,
    probe: Probe,
    /// HTTP status, when the probe is HTTP (0 for WebSocket replies).
    status: u16,
    code: &'static str,
}

fn case(name: &'static str, probe: Probe, status: u16, code: &'static str) -> Case {
    Case { name, probe, status, code }
}

fn http(method: &'static str, path: &'static str, auth: Auth, body: &str) -> Probe {
    Probe::Http { method, path, auth, origin: None, body: body.to_string() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_of_every_kind_is_refused_with_its_code_and_the_meeting_carries_on() {
    // Tokens and tickets that expire in 2 s, so expiry is part of the matrix.
    let (config, data) = TestBridge::config_with("[limits]\ntoken_idle_s = 2\nticket_s = 2\n");
    let bridge = TestBridge::start_with(config.clone(), data.clone());
    let (cert, port) = (bridge.cert_pem(), bridge.port);
    let hq = Sim::join(&cert, port, "hq", bridge.key("hq")).await;
    let _ward = Sim::join(&cert, port, "hang-gai", bridge.key("hang-gai")).await;
    let listener = Sim::join(&cert, port, "cua-nam", bridge.key("cua-nam")).await;
    let mut tt = Client::connect(&cert, port).await;
    assert_eq!(tt.join("trang-tien", bridge.key("trang-tien")).await["type"], "joined");
    let (_, used) = site_session(&cert, port, "hang-dao", bridge.key("hang-dao")).await;
    let used_ticket = used["ticket"].as_str().unwrap().to_string();
    let mut spent = Client::connect(&cert, port).await;
    assert_eq!(spent.join_with_ticket("hang-dao", &used_ticket).await["type"], "joined", "a fresh ticket admits once");
    spent.send(json!({"type": "leave"})).await;
    drop(spent);
    let present = |s: &Value| s["sites"].as_array().map(|a| a.iter().filter(|x| x[1] == true).count()).unwrap_or(0);
    let before = wait_until(Duration::from_secs(10), "the meeting to settle with four sites", || async {
        let c = conference(&latest_state(&hq));
        (present(&c) == 4).then_some(c)
    })
    .await;
    media_flows(&listener, "setup").await;
    let (_, old) = site_session(&cert, port, "hang-bai", bridge.key("hang-bai")).await;
    let (stale_token, stale_ticket) = (old["token"].as_str().unwrap().to_string(), old["ticket"].as_str().unwrap().to_string());
    let stale_since = std::time::Instant::now();

    // Opened last: a socket that has not joined is closed 20 s after it opened, and the
    // stranger's cases come first.
    let mut stranger = Client::connect(&cert, port).await;
    let big = format!("{{\"type\":\"offer\",\"sdp\":\"{}\"}}", "v".repeat(70_000));
    let cases = vec![
        case("malformed JSON", Probe::Stranger("{\"type\":\"join\",".into()), 0, "bad_json"),
        case("not an object", Probe::Stranger("[\"join\"]".into()), 0, "invalid_message"),
        case("no type", Probe::Stranger("{\"site\":\"hq\"}".into()), 0, "invalid_message"),
        case("unknown type", Probe::Stranger("{\"type\":\"seize_control\"}".into()), 0, "unknown_type"),
        case("wrong field type", Probe::Stranger("{\"type\":\"join\",\"site\":42,\"ticket\":\"x\"}".into()), 0, "invalid_message"),
        case("unknown field", Probe::Stranger("{\"type\":\"join\",\"site\":\"hq\",\"ticket\":\"x\",\"role\":\"chair\"}".into()), 0, "invalid_message"),
        case("a key on the socket", Probe::Stranger(format!("{{\"type\":\"join\",\"site\":\"hq\",\"key\":\"{}\"}}", bridge.key("hq"))), 0, "invalid_message"),
        case("oversize message", Probe::Stranger(big), 0, "too_large"),
        case("command before join", Probe::Stranger("{\"type\":\"give_floor\",\"site\":\"hang-gai\"}".into()), 0, "not_joined"),
        case("offer before join", Probe::Stranger("{\"type\":\"offer\",\"sdp\":\"v=0\"}".into()), 0, "not_joined"),
        case("answer with no offer out", Probe::Ward(json!({"type": "answer", "sdp": "v=0"})), 0, "negotiation_failed"),
        case("second join", Probe::Ward(json!({"type": "join", "site": "hq", "ticket": "dcj_x"})), 0, "already_joined"),
        case("ward mutes a site", Probe::Ward(json!({"type": "mute_site", "site": "hang-gai", "muted": true})), 0, "not_chair"),
        case("ward gives itself the floor", Probe::Ward(json!({"type": "give_floor", "site": "trang-tien"})), 0, "not_chair"),
        case("ward locks the meeting", Probe::Ward(json!({"type": "lock", "locked": true})), 0, "not_chair"),
        case("ward changes the layout", Probe::Ward(json!({"type": "set_layout", "layout": "grid"})), 0, "not_chair"),
        case("ward starts recording", Probe::Ward(json!({"type": "start_recording"})), 0, "not_chair"),
        case("ward ends the conference", Probe::Ward(json!({"type": "end_conference"})), 0, "not_chair"),
        case("ward opens a vote", Probe::Ward(json!({"type": "open_vote", "question": "Q"})), 0, "not_chair"),
        case("ward closes a vote", Probe::Ward(json!({"type": "close_vote"})), 0, "not_chair"),
        case("ward sends a notice", Probe::Ward(json!({"type": "send_notice", "text": "x"})), 0, "not_chair"),
        case("counts with no vote open", Probe::Ward(json!({"type": "vote_counts", "vote": 1, "counts": [1, 0, 0]})), 0, "vote_not_open"),
        case("a notice that does not exist", Probe::Ward(json!({"type": "ack_notice", "notice": 99})), 0, "unknown_notice"),
        case("a call for help of 301 characters", Probe::Ward(json!({"type": "ask_help", "text": "x".repeat(301)})), 0, "invalid_notice"),
        case("ward mistyped mute", Probe::Ward(json!({"type": "mute", "audio": "yes"})), 0, "invalid_message"),
        case(
            "a candidate with an unknown field",
            Probe::Ward(
                json!({"type": "candidate", "candidate": {"candidate": "candidate:1 1 udp 2130706431 127.0.0.1 9 typ host", "sdpMid": "0", "sdpMLineIndex": 0, "usernameFragment": "abcd", "relayed": true}}),
            ),
            0,
            "invalid_message",
        ),
        case("forged ticket", Probe::Join(Ticket::Forged), 0, "token_invalid"),
        case("replayed ticket", Probe::Join(Ticket::Replayed), 0, "ticket_replayed"),
        case("expired ticket", Probe::Join(Ticket::Expired), 0, "token_expired"),
        case("ward uses a technician action", http("POST", "/api/tech/action", Auth::Ward, r#"{"site":"hang-gai","action":"drop"}"#), 403, "forbidden"),
        case("chair sends a technician's notice", http("POST", "/api/tech/notice", Auth::Chair, r#"{"text":"x"}"#), 403, "forbidden"),
        case("chair reads the technicians' view", http("GET", "/api/tech", Auth::Chair, ""), 403, "forbidden"),
        case("ward reads the recordings", http("GET", "/api/recordings", Auth::Ward, ""), 403, "forbidden"),
        case("no token", http("GET", "/api/tech", Auth::None, ""), 401, "token_missing"),
        case("forged token", http("GET", "/api/conferences", Auth::Forged, ""), 401, "token_invalid"),
        case("expired token", http("GET", "/api/conferences", Auth::Expired, ""), 401, "token_expired"),
        case("wrong key", http("POST", "/api/session", Auth::None, r#"{"site":"hq","key":"0123456789abcdef0123"}"#), 401, "bad_key"),
        case("unknown site", http("POST", "/api/session", Auth::None, r#"{"site":"ba-dinh","key":"0123456789abcdef0123"}"#), 404, "site_unknown"),
        case("malformed sign-in", http("POST", "/api/session", Auth::None, "site=hq"), 400, "invalid_message"),
        case(
            "sign-in with an unknown field",
            http("POST", "/api/login", Auth::None, r#"{"user":"kythuat","password":"x","admin":true}"#),
            400,
            "invalid_message",
        ),
        case("wrong password", http("POST", "/api/login", Auth::None, r#"{"user":"kythuat","password":"not-the-password"}"#), 401, "bad_credentials"),
        case(
            "sign-in from another site's page",
            Probe::Http {
                method: "POST",
                path: "/api/session",
                auth: Auth::None,
                origin: Some("https://evil.example"),
                body: format!(r#"{{"site":"hq","key":"{}"}}"#, bridge.key("hq")),
            },
            403,
            "bad_origin",
        ),
        case("WebSocket from another site's page", Probe::WsOrigin("https://evil.example"), 403, "bad_origin"),
    ];

    for c in cases {
        let code = match c.probe {
            Probe::Stranger(text) => {
                stranger.send_text(text).await;
                let reply = stranger.recv().await.unwrap_or_else(|| panic!("{}: the socket closed instead of a reply", c.name));
                assert_eq!(reply["type"], "error", "{}: {reply}", c.name);
                assert!(!reply["message"].as_str().unwrap_or("").is_empty(), "{}: a message for people too", c.name);
                stranger.send(json!({"type": "ping"})).await;
                assert_eq!(stranger.recv().await.map(|m| m["type"].clone()), Some(json!("pong")), "{}: the stranger's socket is still usable", c.name);
                reply["code"].as_str().unwrap_or("").to_string()
            }
            Probe::Ward(msg) => {
                tt.send(msg).await;
                // The ward keeps receiving `speaking` and `state`; a refusal that never comes
                // must fail the case, not hang it.
                let reply = tokio::time::timeout(Duration::from_secs(10), tt.recv_type("error")).await;
                reply.unwrap_or_else(|_| panic!("{}: no error reply within 10 s", c.name))["code"].as_str().unwrap_or("").to_string()
            }
            Probe::Join(kind) => {
                let ticket = match kind {
                    Ticket::Forged => format!("dcj_{}", "ab".repeat(32)),
                    Ticket::Replayed => used_ticket.clone(),
                    Ticket::Expired => {
                        // The scenario waits out the 2 s ticket lifetime.
                        tokio::time::sleep(Duration::from_millis(2500).saturating_sub(stale_since.elapsed())).await;
                        stale_ticket.clone()
                    }
                };
                let mut c2 = Client::connect(&cert, port).await;
                c2.join_with_ticket("hang-bai", &ticket).await["code"].as_str().unwrap_or("").to_string()
            }
            Probe::Http { method, path, auth, origin, body } => {
                let token = match auth {
                    Auth::None => None,
                    Auth::Forged => Some(format!("dct_{}", "cd".repeat(32))),
                    Auth::Expired => {
                        tokio::time::sleep(Duration::from_millis(2500).saturating_sub(stale_since.elapsed())).await;
                        Some(stale_token.clone())
                    }
                    Auth::Ward => Some(bridge.site_token("trang-tien").await),
                    Auth::Chair => Some(bridge.site_token("hq").await),
                };
                let bearer = token.map(|t| format!("Bearer {t}"));
                let mut headers = vec![("Content-Type", "application/json")];
                if let Some(b) = &bearer {
                    headers.push(("Authorization", b));
                }
                if let Some(o) = origin {
                    headers.push(("Origin", o));
                }
                let (status, text) = https_request(&cert, port, method, path, &headers, &body).await;
                assert_eq!(status, c.status, "{}: {text}", c.name);
                serde_json::from_str::<Value>(&text).map(|v| v["code"].as_str().unwrap_or("").to_string()).unwrap_or(text)
            }
            Probe::WsOrigin(origin) => {
                use tokio_tungstenite::tungstenite::{client::IntoClientRequest, Error};
                let mut request = format!("wss://localhost:{port}/ws").into_client_request().unwrap();
                request.headers_mut().insert("Origin", origin.parse().unwrap());
                let connector = tokio_tungstenite::Connector::Rustls(common::ws::tls_config(&cert));
                match tokio_tungstenite::connect_async_tls_with_config(request, None, false, Some(connector)).await {
                    Err(Error::Http(resp)) => {
                        assert_eq!(resp.status().as_u16(), c.status, "{}", c.name);
                        let body = resp.body().clone().unwrap_or_default();
                        serde_json::from_slice::<Value>(&body).map(|v| v["code"].as_str().unwrap_or("").to_string()).unwrap_or_default()
                    }
                    other => panic!("{}: the upgrade was not refused: {:?}", c.name, other.map(|_| ())),
                }
            }
        };
        assert_eq!(code, c.code, "{}", c.name);
        media_flows(&listener, c.name).await;
        assert_eq!(conference(&latest_state(&hq)), before, "{}: the conference changed", c.name);
    }

    // A key rotated while its site is in the meeting: that session ends, the old key and
    // its sessions stop working, the new link works; the meeting goes on.
    let old_token = bridge.site_token("trang-tien").await;
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_diemcau"))
        .args(["keys", "rotate", "trang-tien", "--config"])
        .arg(&config)
        .arg("--data")
        .arg(&data)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let printed = String::from_utf8_lossy(&out.stdout).to_string();
    let new_key = printed.split("#key=").nth(1).and_then(|k| k.split_whitespace().next()).expect("the new link is printed").to_string();
    let revoked = tokio::time::timeout(Duration::from_secs(10), tt.recv_type("revoked")).await.expect("the rotated site is told");
    assert!(revoked["message"].as_str().unwrap().contains("cấp lại"), "{revoked}");
    assert!(tokio::time::timeout(Duration::from_secs(5), async { while tt.recv().await.is_some() {} }).await.is_ok(), "and its socket closed");
    let (status, r) = site_session(&cert, port, "trang-tien", bridge.key("trang-tien")).await;
    assert_eq!((status, r["code"].as_str()), (401, Some("bad_key")), "rotated key: {r}");
    let (status, r) = https_request(&cert, port, "GET", "/api/health", &[("Authorization", &format!("Bearer {old_token}"))], "").await;
    assert!(status == 200 && !r.contains("\"sites\""), "the rotated site's token no longer authenticates: {r}");
    let mut back = Client::connect(&cert, port).await;
    assert_eq!(back.join("trang-tien", &new_key).await["type"], "joined", "the new link works");
    media_flows(&listener, "key rotation").await;
    wait_until(Duration::from_secs(10), "trang-tien present again with the new key, nothing else changed", || async {
        (conference(&latest_state(&hq)) == before).then_some(())
    })
    .await;

    // No secret ever reaches the log.
    let log = bridge.log_text();
    for secret in [bridge.key("hq"), bridge.key("trang-tien"), &new_key, &bridge.technician.1, &used_ticket, &stale_token, &old_token] {
        assert!(!log.contains(secret), "a secret is in the server log");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_takes_as_long_for_an_unknown_user_as_for_a_wrong_password() {
    let bridge = TestBridge::start_default();
    let (user, _) = bridge.technician.clone();
    // Alternating, so a busy moment of the machine falls on both alike.
    let (mut known, mut unknown) = (Vec::new(), Vec::new());
    for _ in 0..6 {
        for (name, times) in [("nobody-here", &mut unknown), (user.as_str(), &mut known)] {
            let t = std::time::Instant::now();
            let (status, _) = bridge.login(name, "not the password").await;
            assert_eq!(status, 401);
            times.push(t.elapsed().as_secs_f64() * 1000.0);
        }
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (known, unknown) = (median(known), median(unknown));
    println!("median refusal: known user {known:.1} ms, unknown user {unknown:.1} ms");
    assert!(unknown > known / 2.0 && unknown < known * 2.0, "the refusal time tells whether a user exists: {known:.1} vs {unknown:.1} ms");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_technicians_action_from_another_sites_page_is_refused() {
    let bridge = TestBridge::start_default();
    let auth = format!("Bearer {}", bridge.tech_token().await);
    let body = r#"{"site":"hang-gai","action":"restart_ice"}"#;
    for path in ["/api/tech/action", "/api/tech/readiness", "/api/tech/notice"] {
        let headers = [("Authorization", auth.as_str()), ("Content-Type", "application/json"), ("Origin", "https://evil.example")];
        let (status, reply) = https_request(&bridge.cert_pem(), bridge.port, "POST", path, &headers, body).await;
        assert_eq!(status, 403, "{path}: {reply}");
        assert!(reply.contains("bad_origin"), "{path}: {reply}");
    }
    // The bridge's own page (its Origin: the Host this client sends) is let through.
    let own = "https://localhost".to_string();
    let headers = [("Authorization", auth.as_str()), ("Content-Type", "application/json"), ("Origin", own.as_str())];
    let (status, reply) = https_request(&bridge.cert_pem(), bridge.port, "POST", "/api/tech/readiness", &headers, "").await;
    assert_ne!(status, 403, "{reply}");
}
