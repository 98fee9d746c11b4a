//! Strangers before sign-in: connections that open and say nothing, or trickle a header one
//! byte at a time, from a few addresses, cannot use up what the bridge needs for everyone
//! else. Over the per-address limit a connection is closed at once; idle and trickling ones
//! are closed when the TLS handshake or the request's header does not come in time; a site's
//! sign-in from another address meanwhile is answered as usual. A WebSocket that never joins
//! is closed however it pings; a malformed request gets hyper's bare 400 and a closed
//! connection.

mod common;

use common::ws::{site_session, tls_config};
use common::TestBridge;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// A TCP connection to the bridge from `from` (a loopback address of the test's choice).
async fn connect_from(from: IpAddr, port: u16) -> Option<TcpStream> {
    let socket = TcpSocket::new_v4().ok()?;
    socket.bind(SocketAddr::new(from, 0)).ok()?;
    tokio::time::timeout(Duration::from_secs(5), socket.connect(SocketAddr::from(([127, 0, 0, 1], port)))).await.ok()?.ok()
}

/// True once the bridge has closed `stream` (it reads end-of-file or an error), within `wait`.
async fn closed_within(stream: &mut TcpStream, wait: Duration) -> bool {
    let mut buf = [0u8; 512];
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
            Err(_) => return false,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_and_trickling_strangers_are_closed_and_a_site_still_signs_in() {
    let bridge = TestBridge::start_default();
    let stranger: IpAddr = "127.0.0.2".parse().unwrap();
    // 100 idle connections from one address: the first 64 (the default limit) are held for
    // the handshake; the rest are closed at once.
    let mut idle = Vec::new();
    for _ in 0..100 {
        idle.push(connect_from(stranger, bridge.port).await.expect("connect from 127.0.0.2"));
    }
    // Well before any timeout (10 s), the ones over the limit are closed. All 100 are watched
    // together, so neither the order the bridge accepted them in nor a slow test machine
    // changes the count; the ones held for the handshake stay open for the full 10 s.
    let watched = futures::future::join_all(idle.iter_mut().map(|s| closed_within(s, Duration::from_secs(5)))).await;
    let closed_at_once = watched.iter().filter(|closed| **closed).count();
    assert_eq!(closed_at_once, 36, "the connections over the per-address limit");
    // A site's sign-in from another address is answered meanwhile.
    let t = Instant::now();
    let (status, reply) = site_session(&bridge.cert_pem(), bridge.port, "hang-gai", bridge.key("hang-gai")).await;
    assert_eq!(status, 200, "{reply}");
    println!("sign-in during the flood took {:?}", t.elapsed());

    // A completed TLS handshake with no request, and a header trickled a byte at a time, from
    // a second address: both closed by the header timeout (10 s).
    let other: IpAddr = "127.0.0.3".parse().unwrap();
    let connector = tokio_rustls::TlsConnector::from(tls_config(&bridge.cert_pem()));
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let tcp = connect_from(other, bridge.port).await.unwrap();
    let mut quiet = connector.connect(name.clone(), tcp).await.expect("TLS handshake");
    let tcp = connect_from(other, bridge.port).await.unwrap();
    let mut trickle = connector.connect(name, tcp).await.expect("TLS handshake");
    let started = Instant::now();
    let header = b"GET /api/sites HTTP/1.1\r\nHost: localhost\r\nX-Slow: ";
    let mut trickled_to_end = true;
    for b in header.iter().cycle().take(60) {
        if trickle.write_all(&[*b]).await.is_err() || started.elapsed() > Duration::from_secs(20) {
            trickled_to_end = false;
            break;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let mut buf = [0u8; 64];
    let quiet_closed = matches!(tokio::time::timeout(Duration::from_secs(5), quiet.read(&mut buf)).await, Ok(Ok(0)) | Ok(Err(_)));
    assert!(quiet_closed, "a TLS connection that never sent a request is closed");
    assert!(
        !trickled_to_end || matches!(tokio::time::timeout(Duration::from_secs(5), trickle.read(&mut buf)).await, Ok(Ok(0)) | Ok(Err(_))),
        "a header trickled for 18 s is cut off"
    );
    println!("idle TLS and trickling connections closed after {:?}", started.elapsed());
    // And the first address's held connections are gone by now (no handshake in 10 s).
    let mut still_open = 0;
    for (s, _) in idle.iter_mut().zip(&watched).filter(|(_, closed)| !**closed) {
        if !closed_within(s, Duration::from_millis(50)).await {
            still_open += 1;
        }
    }
    assert_eq!(still_open, 0, "idle connections that never started TLS are closed by the handshake timeout");
}

/// A STUN Binding request naming `username`, without MESSAGE-INTEGRITY.
fn unsigned_check(username: &str) -> Vec<u8> {
    let mut attr = vec![0x00, 0x06];
    attr.extend_from_slice(&(username.len() as u16).to_be_bytes());
    attr.extend_from_slice(username.as_bytes());
    while attr.len() % 4 != 0 {
        attr.push(0);
    }
    let mut m = vec![0x00, 0x01];
    m.extend_from_slice(&(attr.len() as u16).to_be_bytes());
    m.extend_from_slice(&[0x21, 0x12, 0xA4, 0x42]);
    m.extend_from_slice(&[7; 12]);
    m.extend_from_slice(&attr);
    m
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ice_tcp_takes_only_signed_checks_and_a_few_pending_connections_per_address() {
    let bridge = TestBridge::start_default();
    let ward = common::sim::Sim::join(&bridge.cert_pem(), bridge.port, "hang-gai", bridge.key("hang-gai")).await;
    // The bridge's ICE ufrag and ICE-TCP port, from its answer to the ward.
    let answer = common::wait_until(Duration::from_secs(10), "the bridge's answer", || async {
        ward.messages.lock().unwrap().iter().find(|m| m["type"] == "answer").and_then(|m| m["sdp"].as_str().map(str::to_owned))
    })
    .await;
    let ufrag = answer.lines().find_map(|l| l.trim_end().strip_prefix("a=ice-ufrag:")).unwrap().to_string();
    let port: u16 = answer
        .lines()
        .find(|l| l.contains(" tcp ") && l.contains("typ host"))
        .and_then(|l| l.split_whitespace().nth(5)?.parse().ok())
        .expect("a TCP candidate");

    // A stranger names the ward's ufrag without the password, then announces a 64 KiB frame:
    // closed, not routed to the ward's peer.
    let mut s = connect_from("127.0.0.4".parse().unwrap(), port).await.unwrap();
    let check = unsigned_check(&format!("{ufrag}:stranger"));
    let mut framed = (check.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(&check);
    framed.extend_from_slice(&[0xFF, 0xFF, 1, 2, 3]);
    s.write_all(&framed).await.unwrap();
    assert!(closed_within(&mut s, Duration::from_secs(3)).await, "an unsigned check is refused");

    // Silent connections from one address: a few wait for their first frame, the rest are
    // closed at once, and all within the first-frame timeout.
    let mut silent = Vec::new();
    for _ in 0..20 {
        silent.push(connect_from("127.0.0.5".parse().unwrap(), port).await.unwrap());
    }
    let mut at_once = 0;
    for s in silent.iter_mut() {
        if closed_within(s, Duration::from_millis(300)).await {
            at_once += 1;
        }
    }
    assert!(at_once >= 12, "{at_once} of 20 closed at once (at most 8 may wait per address)");
    for s in silent.iter_mut() {
        assert!(closed_within(s, Duration::from_secs(4)).await, "a silent connection outlived the first-frame timeout");
    }
    assert!(ward.is_connected(), "the ward's own media connection is untouched");
}

/// `POST /api/session` with a wrong key, from `from`; the HTTP status (0 if no answer).
async fn wrong_key_from(from: IpAddr, port: u16, cert: &std::path::Path) -> u16 {
    let Some(tcp) = connect_from(from, port).await else { return 0 };
    let connector = tokio_rustls::TlsConnector::from(tls_config(cert));
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let Ok(mut tls) = connector.connect(name, tcp).await else { return 0 };
    let body = r#"{"site":"hang-gai","key":"a wrong key, tried by a stranger"}"#;
    let req = format!(
        "POST /api/session HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    if tls.write_all(req.as_bytes()).await.is_err() {
        return 0;
    }
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(30), tls.read_to_end(&mut buf)).await;
    String::from_utf8_lossy(&buf).split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storm_of_wrong_keys_does_not_keep_a_site_from_signing_in() {
    let bridge = TestBridge::start_default();
    let cert = bridge.cert_pem();
    // 40 addresses, 10 wrong keys each, all at once: minutes of key checks on one lane.
    let mut storm = tokio::task::JoinSet::new();
    for a in 1..=40u8 {
        for _ in 0..10 {
            let (cert, port) = (cert.clone(), bridge.port);
            storm.spawn(async move { wrong_key_from(IpAddr::from([127, 0, 1, a]), port, &cert).await });
        }
    }
    tokio::time::sleep(Duration::from_millis(800)).await;
    // A site that knows its key, from its own address.
    let t = Instant::now();
    let (status, reply) = site_session(&cert, bridge.port, "cua-nam", bridge.key("cua-nam")).await;
    let took = t.elapsed();
    println!("a site's sign-in in the storm took {took:?}");
    assert_eq!(status, 200, "{reply}");
    assert!(took < Duration::from_secs(3), "the storm kept the site waiting {took:?}");
    let mut answers = std::collections::BTreeMap::new();
    while let Some(Ok(code)) = storm.join_next().await {
        *answers.entry(code).or_insert(0) += 1;
    }
    println!("the storm's answers: {answers:?}");
    assert!(!answers.contains_key(&200), "no wrong key got in");
}

/// What a socket hears until it closes or `wait` passes: the `error` codes, and the close frame.
async fn listen(rx: &mut futures::stream::SplitStream<common::ws::Socket>, wait: Duration) -> (Vec<String>, Option<(u16, String)>) {
    use futures::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    let deadline = tokio::time::Instant::now() + wait;
    let mut codes = Vec::new();
    while let Ok(Some(Ok(m))) = tokio::time::timeout_at(deadline, rx.next()).await {
        match m {
            Message::Text(t) => {
                let v: serde_json::Value = serde_json::from_str(t.as_str()).unwrap();
                if v["type"] == "error" {
                    codes.push(v["code"].as_str().unwrap_or("").to_string());
                }
            }
            Message::Close(frame) => return (codes, frame.map(|f| (u16::from(f.code), f.reason.to_string()))),
            _ => {}
        }
    }
    (codes, None)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sockets_that_only_ping_are_closed_and_a_ping_flood_is_limited() {
    use futures::{SinkExt, StreamExt};
    use serde_json::json;
    use tokio_tungstenite::tungstenite::Message;
    let bridge = TestBridge::start_default();
    let (cert, port) = (bridge.cert_pem(), bridge.port);

    // A stranger that never joins and sends a WebSocket ping every 2 s.
    let pinger = {
        let (mut tx, mut rx) = common::ws::Client::connect(&cert, port).await.into_socket().split();
        tokio::spawn(async move {
            let opened = Instant::now();
            let pings = tokio::spawn(async move {
                while tx.send(Message::Ping(vec![1].into())).await.is_ok() {
                    tokio::time::sleep(Duration::from_secs(2)).await;
                }
            });
            let heard = listen(&mut rx, Duration::from_secs(40)).await;
            pings.abort();
            (heard, opened.elapsed())
        })
    };
    // A stranger that floods pings as fast as its socket takes them, for at most 10 s.
    let flooder = {
        let (mut tx, mut rx) = common::ws::Client::connect(&cert, port).await.into_socket().split();
        tokio::spawn(async move {
            let opened = Instant::now();
            let pings = tokio::spawn(async move {
                let mut sent = 0u64;
                while opened.elapsed() < Duration::from_secs(10) && tx.send(Message::Ping(vec![2].into())).await.is_ok() {
                    sent += 1;
                }
                sent
            });
            let heard = listen(&mut rx, Duration::from_secs(15)).await;
            (heard, opened.elapsed(), pings.await.unwrap())
        })
    };
    // A page: joins at once, then its JSON `ping` every 5 s (browsers send no WebSocket pings).
    let mut page = common::ws::Client::connect(&cert, port).await;
    assert_eq!(page.join("hang-gai", bridge.key("hang-gai")).await["type"], "joined");

    let ((flood_codes, flood_close), flood_took, sent) = flooder.await.unwrap();
    println!("ping flood: {sent} pings; errors {flood_codes:?}; closed with {flood_close:?} after {flood_took:?}");
    assert!(flood_codes.iter().any(|c| c == "rate_limited"), "the ping flooder is told it is over the rate: {flood_codes:?}");
    assert_eq!(flood_close, Some((1008, "flooding".to_string())), "and closed as a flood");

    let ((codes, close), took) = pinger.await.unwrap();
    println!("pinging stranger: errors {codes:?}; closed with {close:?} after {took:?}");
    assert_eq!(close, Some((1008, "join_timeout".to_string())), "a socket that only pings is closed");
    assert_eq!(codes, vec!["not_joined".to_string()], "with a reason it can read");
    assert!(took >= Duration::from_secs(19) && took < Duration::from_secs(25), "20 s after it opened, pings or not: {took:?}");

    // The page, joined for longer than that now, is unaffected.
    for _ in 0..2 {
        page.send(json!({"type": "ping"})).await;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let m = tokio::time::timeout_at(deadline, page.recv()).await.expect("a pong within 10 s").expect("the page's socket is open");
            if m["type"] == "pong" {
                break;
            }
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

/// What the bridge answers to `request` on a fresh TLS connection: the reply's bytes, and
/// whether the bridge closed the connection after it (within 5 s).
async fn raw_exchange(cert: &std::path::Path, port: u16, request: &[u8]) -> (Vec<u8>, bool) {
    let tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let connector = tokio_rustls::TlsConnector::from(tls_config(cert));
    let mut tls = connector.connect(rustls::pki_types::ServerName::try_from("localhost").unwrap(), tcp).await.unwrap();
    tls.write_all(request).await.unwrap();
    let mut reply = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(5), tls.read_to_end(&mut reply)).await.is_ok();
    (reply, closed)
}

/// A request hyper cannot parse is answered by hyper itself, before the router and its
/// security headers: a bare `400` (or `431`, `414`) with no body, then the connection closes.
/// Nothing there for a browser to render, frame, sniff or cache (docs/security.md,
/// "Transport"); this pins that shape, so a change of hyper that adds a body is noticed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_hyper_cannot_parse_gets_a_bare_400_and_the_connection_closes() {
    let bridge = TestBridge::start_default();
    let (cert, port) = (bridge.cert_pem(), bridge.port);
    for (what, request, status) in [
        ("a malformed request line", b"GET /\x01 HTTP/1.1\r\nHost: localhost\r\n\r\n".to_vec(), 400),
        ("a header line without a colon", b"GET / HTTP/1.1\r\nHost localhost\r\n\r\n".to_vec(), 400),
        ("an unknown HTTP version", b"GET / HTTP/7.1\r\nHost: localhost\r\n\r\n".to_vec(), 400),
    ] {
        let (reply, closed) = raw_exchange(&cert, port, &request).await;
        let text = String::from_utf8_lossy(&reply).to_string();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or_else(|| panic!("{what}: no HTTP reply: {text:?}"));
        let mut lines = head.lines();
        let status_line = lines.next().unwrap_or("");
        assert!(status_line.starts_with(&format!("HTTP/1.1 {status} ")), "{what}: {status_line}");
        let names: Vec<String> = lines.map(|l| l.split(':').next().unwrap_or("").trim().to_ascii_lowercase()).collect();
        assert!(names.iter().all(|n| ["content-length", "date", "connection"].contains(&n.as_str())), "{what}: hyper's own reply has grown headers: {names:?}");
        assert!(head.to_ascii_lowercase().contains("content-length: 0"), "{what}: {head}");
        assert!(body.is_empty(), "{what}: a body: {body:?}");
        assert!(closed, "{what}: the connection stays open after hyper's reply");
    }
    // What reaches the router gets the headers, even when refused.
    let (reply, _) = raw_exchange(
        &cert,
        port,
        b"POST /api/session HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: 7\r\n\r\nsite=hq",
    )
    .await;
    let head = String::from_utf8_lossy(&reply).split("\r\n\r\n").next().unwrap_or("").to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 400 "), "{head}");
    for h in ["strict-transport-security:", "content-security-policy:", "x-content-type-options: nosniff", "cache-control: no-store"] {
        assert!(head.contains(h), "the router's 400 lacks {h}: {head}");
    }
}
