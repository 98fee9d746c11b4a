//! Shared helpers for the integration tests: start the real binary, talk to it, wait for
//! conditions with deadlines. Every wait here is bounded.
#![allow(dead_code)]

pub mod browser;
pub mod drain;
pub mod line;
pub mod replay;
pub mod rtp;
pub mod sim;
pub mod ws;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Polls `check` until it returns `Some`, or panics with `what` after `timeout`.
pub async fn wait_until<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// (user+system CPU seconds, RSS KiB) of a process, from /proc (for benchmarks).
pub fn proc_usage(pid: u32) -> (f64, u64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = f.get(11).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0) + f.get(12).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rss = status.lines().find_map(|l| l.strip_prefix("VmRSS:")).and_then(|v| v.split_whitespace().next()?.parse().ok()).unwrap_or(0);
    (ticks / 100.0, rss)
}

/// Sends SIGTERM to `child` and waits up to `timeout` for it to exit; false if it did not.
pub fn terminate(child: &mut Child, timeout: Duration) -> bool {
    let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// A bounded wait for loops that need `&mut` access between polls:
/// `loop { if done { break } deadline.tick().await }` panics with `what` once expired.
pub struct Deadline {
    at: Instant,
    what: String,
}

impl Deadline {
    pub fn after(timeout: Duration, what: impl Into<String>) -> Self {
        Deadline { at: Instant::now() + timeout, what: what.into() }
    }

    /// Whether the next tick will panic: the moment to gather what explains the failure.
    pub fn expired(&self) -> bool {
        Instant::now() >= self.at
    }

    pub async fn tick(&self) {
        if Instant::now() >= self.at {
            panic!("timed out waiting for {}", self.what);
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
    }

    /// As [`Deadline::tick`], and the panic shows `last`, what was seen at the last poll.
    pub async fn tick_showing(&self, last: &dyn std::fmt::Debug) {
        if Instant::now() >= self.at {
            panic!("timed out waiting for {}; last seen: {last:?}", self.what);
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
}

/// `id`'s row in anything that lists `sites` by `id` (the conference state, `/api/health`, a
/// technicians' reply, whose health may sit under `health`), if it is there.
pub fn site_row<'a>(view: &'a serde_json::Value, id: &str) -> Option<&'a serde_json::Value> {
    let sites = view["sites"].as_array().or(view["health"]["sites"].as_array())?;
    sites.iter().find(|s| s["id"] == id)
}

/// As [`site_row`], for a site the test knows is listed: panics naming it otherwise.
pub fn site<'a>(view: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    site_row(view, id).unwrap_or_else(|| panic!("no site {id:?} in {view}"))
}

/// A fresh directory under /tmp. Kept short: Chromium puts a UNIX socket a few levels below
/// its profile, and socket paths over 107 bytes make it abort at start (SIGTRAP).
pub fn scratch_dir(name: &str) -> PathBuf {
    let id = uuid::Uuid::new_v4().simple().to_string();
    let dir = PathBuf::from("/tmp").join(format!("dc-{name}-{}", &id[..8]));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `DIEMCAU_TEST_ENGINE=webrtc` (or `lean`, the default) runs every test bridge on that engine: a
/// copy of `config` with `[media] engine` set, in `data`. Unset, or a config that names its
/// engine already ([`TestBridge::start_default_on`]): the config as it is.
pub fn with_engine_from_env(config: PathBuf, data: &Path) -> PathBuf {
    let explicit = std::fs::read_to_string(&config).is_ok_and(|c| names_engine(&c));
    match std::env::var("DIEMCAU_TEST_ENGINE") {
        Ok(engine) if !engine.is_empty() && !explicit => with_engine(config, data, &engine),
        _ => config,
    }
}

/// Whether the config's `[media]` section says which engine, on any of its lines.
fn names_engine(config: &str) -> bool {
    let Some(at) = config.find("\n[media]\n") else { return false };
    let section = &config[at + "\n[media]\n".len()..];
    let section = &section[..section.find("\n[").unwrap_or(section.len())];
    section.lines().any(|l| l.trim_start().starts_with("engine ="))
}

/// A copy of `config` in `data` whose `[media]` section says `engine = "<engine>"`.
pub fn with_engine(config: PathBuf, data: &Path, engine: &str) -> PathBuf {
    let text = std::fs::read_to_string(&config).unwrap();
    let line = format!("engine = \"{engine}\"");
    let text = match text.find("\n[media]\n") {
        _ if text.contains(&format!("\n[media]\n{line}\n")) => text,
        Some(at) => format!("{}\n[media]\n{line}\n{}", &text[..at], &text[at + "\n[media]\n".len()..]),
        None => format!("{text}\n[media]\n{line}\n"),
    };
    let copy = data.join(format!("config-{engine}.toml"));
    std::fs::write(&copy, text).unwrap();
    copy
}

fn seen(root: &Path, path: &Path) -> PathBuf {
    root.join(path.strip_prefix("/").unwrap_or(path))
}

/// The real `diemcau serve` on 127.0.0.1, a free port and a fresh data directory.
pub struct TestBridge {
    child: Child,
    config: PathBuf,
    pub port: u16,
    pub data: PathBuf,
    /// Join key per site id, from `<data>/join-links.txt` or the config.
    pub keys: HashMap<String, String>,
    /// The first technician's name and password (printed with the join links).
    pub technician: (String, String),
    pub log: PathBuf,
    /// The file system as the bridge sees it: `/`, or `/proc/<pid>/root` when a wrapper
    /// mounted something of its own (a small or read-only disk) in a private namespace.
    seen_root: PathBuf,
    /// A technician's session token, once signed in.
    tech_token: std::sync::Mutex<Option<String>>,
}

impl TestBridge {
    /// Starts on the bundled default config (keys generated on first start).
    pub fn start_default() -> Self {
        let config = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("config/default.toml");
        Self::start_with(config, scratch_dir("bridge"))
    }

    /// Starts on the bundled default config with `[media] engine` set (`webrtc`, `lean`),
    /// whatever `DIEMCAU_TEST_ENGINE` says.
    pub fn start_default_on(engine: &str) -> Self {
        let data = scratch_dir("bridge");
        let config = with_engine(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("config/default.toml"), &data, engine);
        Self::start_with(config, data)
    }

    pub fn start_with(config: PathBuf, data: PathBuf) -> Self {
        Self::start_on(config, data, 0)
    }

    /// Sends SIGTERM (an orderly stop) and waits up to 10 s for the process to exit.
    pub fn terminate(&mut self) {
        assert!(terminate(&mut self.child, Duration::from_secs(10)), "the bridge did not stop within 10 s of SIGTERM");
    }

    /// Kills the bridge (SIGKILL, as a crash would) and starts it again on the same data
    /// directory and port.
    pub fn kill_and_restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let next = Self::start_on(self.config.clone(), self.data.clone(), self.port);
        let old = std::mem::replace(self, next);
        drop(old); // its process is already gone; killing it again is a no-op
    }

    fn start_on(config: PathBuf, data: PathBuf, port: u16) -> Self {
        Self::start_under(&[], config, data, port)
    }

    /// Starts the bridge as the last arguments of `wrapper` (e.g. a shell that mounts a small
    /// file system first and then `exec "$@"`s the bridge).
    pub fn start_wrapped(wrapper: &[&str], config: PathBuf, data: PathBuf) -> Self {
        Self::start_under(wrapper, config, data, 0)
    }

    /// The default config with `extra` TOML appended, written into a fresh data directory.
    pub fn config_with(extra: &str) -> (PathBuf, PathBuf) {
        let data = scratch_dir("bridge");
        let default = std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("config/default.toml")).unwrap();
        let config = data.join("config.toml");
        std::fs::write(&config, format!("{default}\n{extra}\n")).unwrap();
        (config, data)
    }

    fn start_under(wrapper: &[&str], config: PathBuf, data: PathBuf, port: u16) -> Self {
        let config = with_engine_from_env(config, &data);
        let log = data.join(format!("server-{}.log", uuid::Uuid::new_v4().simple()));
        let mut command = match wrapper.split_first() {
            Some((program, args)) => {
                let mut c = Command::new(program);
                c.args(args).arg(env!("CARGO_BIN_EXE_diemcau"));
                c
            }
            None => Command::new(env!("CARGO_BIN_EXE_diemcau")),
        };
        // A restart keeps the HTTPS port (pages come back to it); its media ports are free
        // ones, as at the first start, so parallel tests never collide.
        let mut child = command
            .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--config"])
            .arg(&config)
            .arg("--data")
            .arg(&data)
            .args(if port != 0 { vec!["--media-port", "0"] } else { vec![] })
            .env("RUST_LOG", std::env::var("DIEMCAU_TEST_LOG").unwrap_or_else(|_| diemcau::server::DEFAULT_LOG_FILTER.into()))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start diemcau");
        let stderr = child.stderr.take().unwrap();
        let (port_tx, port_rx) = std::sync::mpsc::channel();
        let log_path = log.clone();
        std::thread::spawn(move || {
            let mut out = std::fs::File::create(&log_path).unwrap();
            let mut sent = false;
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                use std::io::Write;
                let _ = writeln!(out, "{line}");
                if !sent {
                    if let Some(rest) = line.split("bridge listening on https://127.0.0.1:").nth(1) {
                        let port: u16 = rest.split(|c: char| !c.is_ascii_digit()).next().unwrap().parse().unwrap();
                        let _ = port_tx.send(port);
                        sent = true;
                    }
                }
            }
        });
        let port = match port_rx.recv_timeout(Duration::from_secs(30)) {
            Ok(p) => p,
            Err(_) => {
                let _ = child.kill();
                panic!("bridge did not report its address within 30 s; log: {}", std::fs::read_to_string(&log).unwrap_or_default());
            }
        };
        let seen_root = if wrapper.is_empty() { PathBuf::from("/") } else { PathBuf::from(format!("/proc/{}/root", child.id())) };
        let links = std::fs::read_to_string(seen(&seen_root, &data.join("join-links.txt"))).unwrap_or_default();
        let urls: Vec<(String, String)> = links
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| {
                let mut cols = l.split('\t');
                Some((cols.next()?.to_string(), cols.nth(1)?.to_string()))
            })
            .collect();
        let keys = urls.iter().filter_map(|(site, url)| Some((site.clone(), url.split("#key=").nth(1)?.to_string()))).collect();
        let technician = urls
            .iter()
            .find_map(|(_, url)| {
                let fragment = url.split_once("#user=")?.1;
                let (user, password) = fragment.split_once("&password=")?;
                Some((user.to_string(), password.to_string()))
            })
            .unwrap_or_default();
        TestBridge { child, config, port, data, keys, technician, log, seen_root, tech_token: Default::default() }
    }

    /// `path` as the bridge sees it (through its own mounts, if a wrapper made any).
    pub fn seen(&self, path: &Path) -> PathBuf {
        seen(&self.seen_root, path)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.port)
    }

    pub fn join_url(&self, site: &str) -> String {
        format!("https://localhost:{}/site/{site}#key={}", self.port, self.keys[site])
    }

    pub fn key(&self, site: &str) -> &str {
        &self.keys[site]
    }

    pub fn cert_pem(&self) -> PathBuf {
        self.seen(&self.data.join("tls/cert.pem"))
    }

    /// The technicians' page, signing in as the first technician.
    pub fn tech_url(&self) -> String {
        format!("https://localhost:{}/tech#user={}&password={}", self.port, self.technician.0, self.technician.1)
    }

    /// `POST /api/login` with a name and password: status and reply.
    pub async fn login(&self, user: &str, password: &str) -> (u16, serde_json::Value) {
        let body = serde_json::json!({"user": user, "password": password}).to_string();
        let (status, text) = ws::https_request(&self.cert_pem(), self.port, "POST", "/api/login", &[("Content-Type", "application/json")], &body).await;
        (status, serde_json::from_str(&text).unwrap_or(serde_json::Value::Null))
    }

    /// A technician's session token (signed in once, then reused).
    pub async fn tech_token(&self) -> String {
        if let Some(t) = self.tech_token.lock().unwrap().clone() {
            return t;
        }
        let (user, password) = self.technician.clone();
        let (status, reply) = self.login(&user, &password).await;
        assert_eq!(status, 200, "the first technician could not sign in: {reply}");
        let token = reply["token"].as_str().unwrap().to_string();
        *self.tech_token.lock().unwrap() = Some(token.clone());
        token
    }

    /// A site's session token (from its key).
    pub async fn site_token(&self, site: &str) -> String {
        let (status, reply) = ws::site_session(&self.cert_pem(), self.port, site, self.key(site)).await;
        assert_eq!(status, 200, "{site} could not sign in: {reply}");
        reply["token"].as_str().unwrap().to_string()
    }

    /// A technicians' API call: status and JSON body.
    pub async fn tech(&self, method: &str, path: &str, body: &str) -> (u16, serde_json::Value) {
        let auth = format!("Bearer {}", self.tech_token().await);
        let (status, text) =
            ws::https_request(&self.cert_pem(), self.port, method, path, &[("Authorization", &auth), ("Content-Type", "application/json")], body).await;
        (status, serde_json::from_str(&text).unwrap_or(serde_json::Value::Null))
    }

    /// Waits until the technicians' API reports `site` connected by `path` (`udp`, `tcp`,
    /// `relay`); panics after 15 s, showing the last path seen.
    pub async fn wait_for_path(&self, site: &str, path: &str) {
        let deadline = Deadline::after(Duration::from_secs(15), format!("the bridge to report {site}'s path as {path}"));
        loop {
            let (_, v) = self.tech("GET", "/api/tech", "").await;
            let seen = site_row(&v, site).map(|x| x["path"].clone());
            if seen.as_ref().and_then(|p| p.as_str()) == Some(path) {
                return;
            }
            deadline.tick_showing(&seen).await;
        }
    }

    /// `GET path` over HTTPS as a technician, as JSON.
    pub async fn get_json(&self, path: &str) -> serde_json::Value {
        let auth = format!("Bearer {}", self.tech_token().await);
        ws::https_get_json(&self.cert_pem(), self.port, path, &[("Authorization", &auth)]).await
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `<field>=N` from the bridge's log line for `site`'s closed media connection (the lean
    /// engine counts what it did for a site there: retransmitted, refused, transport_feedback).
    pub fn closed_count(&self, site: &str, field: &str) -> Option<u64> {
        self.log_text()
            .lines()
            .filter(|l| l.contains(&format!("site={site} ")) && l.contains("media connection closed"))
            .find_map(|l| l.split(&format!(" {field}=")).nth(1)?.split(' ').next()?.parse().ok())
    }
}

impl Drop for TestBridge {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // A failing test explains itself: the bridge's last log lines go to the test output.
        if std::thread::panicking() {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            let lines: Vec<&str> = log.lines().collect();
            let tail = &lines[lines.len().saturating_sub(LOG_TAIL_LINES)..];
            eprintln!("--- last {} lines of the bridge's log ({}) ---\n{}\n--- end of log ---", tail.len(), self.log.display(), tail.join("\n"));
        }
    }
}

/// Lines of the bridge's log printed when a test fails.
const LOG_TAIL_LINES: usize = 120;

/// (UDP port, ICE-TCP port) from "media on UDP 127.0.0.1:<port>, ICE-TCP 127.0.0.1:<port>)".
pub fn media_ports_from_log(log: &str) -> (u16, u16) {
    let port = |after: &str| {
        let addr = log.split(after).nth(1).and_then(|r| r.split([')', ',', ' ']).next());
        addr.and_then(|a| a.rsplit(':').next()?.parse().ok()).unwrap_or_else(|| panic!("{after} in the log"))
    };
    (port("media on UDP "), port("ICE-TCP "))
}

/// A Binding request with USERNAME `username` and a MESSAGE-INTEGRITY of zeros.
pub fn binding_request(username: &str) -> Vec<u8> {
    let mut name = username.as_bytes().to_vec();
    let padded = name.len().div_ceil(4) * 4;
    let attrs_len = 4 + padded + 4 + 20;
    let mut m = vec![0x00, 0x01];
    m.extend_from_slice(&(attrs_len as u16).to_be_bytes());
    m.extend_from_slice(&[0x21, 0x12, 0xA4, 0x42]);
    m.extend_from_slice(&rand::random::<[u8; 12]>());
    m.extend_from_slice(&[0x00, 0x06]);
    m.extend_from_slice(&(name.len() as u16).to_be_bytes());
    name.resize(padded, 0);
    m.extend_from_slice(&name);
    m.extend_from_slice(&[0x00, 0x08, 0x00, 20]);
    m.extend_from_slice(&[0u8; 20]);
    m
}
