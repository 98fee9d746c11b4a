//! A plain signalling client over the real TLS WebSocket, speaking the documented JSON.

use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;

pub type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A rustls client config that trusts the bridge's self-signed certificate.
pub fn tls_config(cert_pem: &Path) -> Arc<rustls::ClientConfig> {
    use rustls::pki_types::pem::PemObject;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_file_iter(cert_pem).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    Arc::new(rustls::ClientConfig::builder().with_root_certificates(roots).with_no_client_auth())
}

pub struct Client {
    socket: Socket,
    cert_pem: std::path::PathBuf,
    port: u16,
}

/// `POST /api/session {site, key}`: status and reply (ticket, token, …, or an error).
pub async fn site_session(cert_pem: &Path, port: u16, site: &str, key: &str) -> (u16, Value) {
    let body = json!({"site": site, "key": key}).to_string();
    let (status, text) = https_request(cert_pem, port, "POST", "/api/session", &[("Content-Type", "application/json")], &body).await;
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

impl Client {
    pub async fn connect(cert_pem: &Path, port: u16) -> Client {
        let url = format!("wss://localhost:{port}/ws");
        let connector = tokio_tungstenite::Connector::Rustls(tls_config(cert_pem));
        let (socket, _) = tokio_tungstenite::connect_async_tls_with_config(url, None, false, Some(connector)).await.expect("websocket connect");
        Client { socket, cert_pem: cert_pem.to_path_buf(), port }
    }

    /// A join ticket for `site`, signing in with its key (panics if refused).
    pub async fn ticket(&self, site: &str, key: &str) -> String {
        let (status, reply) = site_session(&self.cert_pem, self.port, site, key).await;
        assert_eq!(status, 200, "sign-in of {site} refused: {reply}");
        reply["ticket"].as_str().unwrap().to_string()
    }

    pub async fn send_text(&mut self, text: impl Into<String>) {
        self.socket.send(Message::Text(text.into().into())).await.expect("send");
    }

    pub async fn send(&mut self, v: Value) {
        self.send_text(v.to_string()).await;
    }

    /// The next JSON message, or `None` if the socket closed; panics after 10 s.
    pub async fn recv(&mut self) -> Option<Value> {
        loop {
            let msg = tokio::time::timeout(Duration::from_secs(10), self.socket.next()).await.expect("no message within 10 s");
            match msg {
                Some(Ok(Message::Text(t))) => return Some(serde_json::from_str(t.as_str()).expect("server sent JSON")),
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return None,
                Some(Ok(_)) => continue,
            }
        }
    }

    /// Skips messages until one of `type_`; panics if the socket closes first.
    pub async fn recv_type(&mut self, type_: &str) -> Value {
        loop {
            match self.recv().await {
                Some(v) if v["type"] == type_ => return v,
                Some(_) => continue,
                None => panic!("socket closed while waiting for {type_}"),
            }
        }
    }

    /// Signs in with the site's key, sends `join` with the ticket and returns the reply
    /// (`joined` or `error`).
    pub async fn join(&mut self, site: &str, key: &str) -> Value {
        let ticket = self.ticket(site, key).await;
        self.join_with_ticket(site, &ticket).await
    }

    /// Sends `join` with a given ticket and returns the reply (`joined` or `error`).
    pub async fn join_with_ticket(&mut self, site: &str, ticket: &str) -> Value {
        self.send(json!({"type": "join", "site": site, "ticket": ticket})).await;
        loop {
            let v = self.recv().await.expect("reply to join");
            if v["type"] == "joined" || v["type"] == "error" {
                return v;
            }
        }
    }

    pub fn with_socket(&self, socket: Socket) -> Client {
        Client { socket, cert_pem: self.cert_pem.clone(), port: self.port }
    }

    pub fn into_socket(self) -> Socket {
        self.socket
    }

    pub fn socket_mut(&mut self) -> &mut Socket {
        &mut self.socket
    }
}

/// A minimal HTTPS request (tests only; HTTP/1.1, Connection: close): status and body text.
pub async fn https_request(cert_pem: &Path, port: u16, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> (u16, String) {
    let (status, bytes) = https_request_bytes(cert_pem, port, method, path, headers, body).await;
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

/// As [`https_request`], with the body as bytes (for downloads).
pub async fn https_request_bytes(cert_pem: &Path, port: u16, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> (u16, Vec<u8>) {
    let connector = tokio_rustls::TlsConnector::from(tls_config(cert_pem));
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut tls = connector.connect(name, tcp).await.unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    tls.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), tls.read_to_end(&mut buf)).await;
    let split = buf.windows(4).position(|w| w == b"\r\n\r\n").expect("http response");
    let head = String::from_utf8_lossy(&buf[..split]).to_ascii_lowercase();
    let body = &buf[split + 4..];
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = if head.contains("transfer-encoding: chunked") { dechunk(body) } else { body.to_vec() };
    (status, body)
}

/// A minimal HTTPS GET returning JSON (tests only; HTTP/1.1, Connection: close).
pub async fn https_get_json(cert_pem: &Path, port: u16, path: &str, headers: &[(&str, &str)]) -> Value {
    let (status, body) = https_request(cert_pem, port, "GET", path, headers, "").await;
    assert_eq!(status, 200, "GET {path}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {path}: {e}: {body}"))
}

fn dechunk(mut body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = body.windows(2).position(|w| w == b"\r\n") {
        let n = usize::from_str_radix(String::from_utf8_lossy(&body[..eol]).trim(), 16).unwrap_or(0);
        let rest = &body[eol + 2..];
        if n == 0 || rest.len() < n {
            break;
        }
        out.extend_from_slice(&rest[..n]);
        body = rest.get(n + 2..).unwrap_or(&[]);
    }
    out
}

/// The next state (within 10 s) for which `pred` holds.
pub async fn state_where(c: &mut Client, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match tokio::time::timeout_at(deadline, c.recv()).await {
            Ok(Some(v)) if v["type"] == "state" && pred(&v) => return v,
            Ok(Some(_)) => continue,
            _ => panic!("no state where {what} within 10 s"),
        }
    }
}
