//! Strangers before sign-in: connections that open and say nothing, or trickle a header one
//! byte at a time, from a few addresses, cannot use up what the bridge needs for everyone
//! else. Over the per-address limit a connection is closed at once; idle and trickling ones
//! are closed when the TLS handshake or the request's header does not come in time; a site's
//! sign-in from another address meanwhile is answered as usual.

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
    let mut closed_at_once = 0;
    for s in idle.iter_mut().skip(64) {
        if closed_within(s, Duration::from_secs(2)).await {
            closed_at_once += 1;
        }
    }
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
    assert!(!trickled_to_end || matches!(tokio::time::timeout(Duration::from_secs(5), trickle.read(&mut buf)).await, Ok(Ok(0)) | Ok(Err(_))), "a header trickled for 18 s is cut off");
    println!("idle TLS and trickling connections closed after {:?}", started.elapsed());
    // And the first address's held connections are gone by now (no handshake in 10 s).
    let mut still_open = 0;
    for s in idle.iter_mut().take(64) {
        if !closed_within(s, Duration::from_millis(50)).await {
            still_open += 1;
        }
    }
    assert_eq!(still_open, 0, "idle connections that never started TLS are closed by the handshake timeout");
}
