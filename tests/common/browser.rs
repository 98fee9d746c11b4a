//! Headless browsers with fake camera and microphone, driven from the tests: Chromium through
//! tests/lab/chromium-webrtc.sh over the DevTools protocol, and Firefox ESR through the
//! project's own tests/lab/firefox-webrtc.sh over WebDriver BiDi (Firefox no longer speaks
//! DevTools). Either way: load a page, evaluate JavaScript, read the browser's own numbers.

use super::Deadline;
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;

pub fn lab_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/lab");
    assert!(dir.join("chromium-webrtc.sh").exists(), "tests/lab/chromium-webrtc.sh not found");
    dir
}

/// Writes `<name>.y4m` and `<name>.wav` (solid colour + moving bar, sine tone) into `dir`.
pub fn fake_media(dir: &Path, name: &str, rgb: (u8, u8, u8), tone_hz: u32) -> (PathBuf, PathBuf) {
    generate_fake_media(dir, name, rgb, tone_hz, &[])
}

/// Runs the lab's `gen-fake-media.py` for `name`, with `extra` arguments (size, rate).
fn generate_fake_media(dir: &Path, name: &str, rgb: (u8, u8, u8), tone_hz: u32, extra: &[&str]) -> (PathBuf, PathBuf) {
    let status = Command::new("python3")
        .arg(lab_dir().join("gen-fake-media.py"))
        .arg(dir)
        .arg(name)
        .args(["--rgb", &format!("{},{},{}", rgb.0, rgb.1, rgb.2), "--tone", &tone_hz.to_string()])
        .args(extra)
        .stdout(Stdio::null())
        .status()
        .expect("run gen-fake-media.py");
    assert!(status.success());
    (dir.join(format!("{name}.y4m")), dir.join(format!("{name}.wav")))
}

pub struct Browser {
    child: Child,
    ws: tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
    next_id: u64,
    protocol: Protocol,
    /// The browser's own process group (its launcher `setsid`s it).
    group: Option<i32>,
    pub name: String,
}

/// How the test talks to the browser.
enum Protocol {
    /// Chromium's DevTools protocol, attached to the page's target.
    DevTools,
    /// WebDriver BiDi (Firefox), in the top-level browsing context `context`.
    Bidi { context: String },
}

/// The project's Firefox launcher (tests/lab/firefox-webrtc.sh).
pub fn firefox_launcher() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/lab/firefox-webrtc.sh")
}

/// Firefox ESR on this machine, or why not (the browser tests need it; tests/run.sh installs it).
pub fn firefox_binary() -> PathBuf {
    let bin = std::env::var_os("DIEMCAU_FIREFOX").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/usr/bin/firefox-esr"));
    assert!(bin.exists(), "{} not found: the Firefox tests need Debian's firefox-esr (bash tests/run.sh installs it) or DIEMCAU_FIREFOX", bin.display());
    bin
}

impl Browser {
    /// Launches Chromium on `url` with the given fake camera and microphone.
    pub async fn launch(name: &str, url: &str, media: &(PathBuf, PathBuf), scratch: &Path) -> Browser {
        Self::launch_with(name, url, Some(media), scratch).await
    }

    /// Launches Chromium with its built-in fake camera (a 640x480 test pattern) and microphone.
    pub async fn launch_builtin(name: &str, url: &str, scratch: &Path) -> Browser {
        Self::launch_with(name, url, None, scratch).await
    }

    async fn launch_with(name: &str, url: &str, media: Option<&(PathBuf, PathBuf)>, scratch: &Path) -> Browser {
        let mut command = Command::new("bash");
        command.arg(lab_dir().join("chromium-webrtc.sh")).arg(url).env("LAB_DEVTOOLS_PORT", "0").env("LAB_SCRATCH", scratch);
        if let Some((video, audio)) = media {
            command.env("LAB_FAKE_VIDEO", video).env("LAB_FAKE_AUDIO", audio);
        }
        let (child, group, port, deadline) = start_chromium(command, name, "").await;
        let ws_url = loop {
            if let Some(u) = page_target(port, url).await {
                break u;
            }
            assert!(Instant::now() < deadline, "{name}: page target not found");
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let (ws, _) = tokio_tungstenite::connect_async(ws_url).await.expect("devtools websocket");
        Browser { child, ws, next_id: 1, protocol: Protocol::DevTools, group, name: name.to_string() }
    }

    /// Launches headless Firefox ESR (its fake camera and microphone: a 640x480 picture of
    /// changing colour and a 1 kHz tone) and opens `url` in it.
    pub async fn launch_firefox(name: &str, url: &str, scratch: &Path) -> Browser {
        let mut child = Command::new("bash")
            .arg(firefox_launcher())
            .arg("about:blank")
            .env("DIEMCAU_FIREFOX", firefox_binary())
            .env("LAB_SCRATCH", scratch)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("launch firefox-webrtc.sh");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = Vec::new();
            let mut group = None;
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                group = group.or(process_group(&line));
                if let Some(ws) = line.split("bidi=").nth(1) {
                    let _ = tx.send(Ok((ws.trim().to_string(), group)));
                }
                lines.push(line);
            }
            let _ = tx.send(Err(lines.join("\n")));
        });
        let (ws_url, group) = match rx.recv_timeout(Duration::from_secs(45)) {
            Ok(Ok(ws)) => ws,
            Ok(Err(log)) => panic!("{name}: firefox-webrtc.sh ended without a BiDi address:\n{log}"),
            Err(_) => panic!("{name}: no BiDi address from firefox-webrtc.sh within 45 s"),
        };
        let (ws, _) = tokio_tungstenite::connect_async(format!("{ws_url}/session")).await.expect("BiDi websocket");
        let mut b = Browser { child, ws, next_id: 1, protocol: Protocol::Bidi { context: String::new() }, group, name: name.to_string() };
        // The bridge's certificate is self-signed.
        let caps = json!({"capabilities": {"alwaysMatch": {"acceptInsecureCerts": true, "unhandledPromptBehavior": {"default": "ignore"}}}});
        b.command("session.new", caps).await.unwrap_or_else(|| panic!("{name}: BiDi session.new refused"));
        let tree = b.command("browsingContext.getTree", json!({"maxDepth": 0})).await.expect("browsingContext.getTree");
        let context = tree["contexts"][0]["context"].as_str().expect("a top-level browsing context").to_string();
        b.protocol = Protocol::Bidi { context: context.clone() };
        b.command("browsingContext.navigate", json!({"context": context, "url": url, "wait": "complete"}))
            .await
            .unwrap_or_else(|| panic!("{name}: Firefox did not load {url}"));
        b
    }

    /// Reloads the page, bypassing the cache.
    pub async fn reload(&mut self) {
        match &self.protocol {
            Protocol::DevTools => {
                self.command("Page.reload", json!({"ignoreCache": true})).await;
            }
            Protocol::Bidi { context } => {
                let context = context.clone();
                // Firefox does not support BiDi's ignoreCache yet (it refuses the whole command).
                self.command("browsingContext.reload", json!({"context": context, "wait": "interactive"})).await;
            }
        }
    }

    /// Kills the browser as a crash or a power cut would: SIGKILL to its whole process group,
    /// so nothing says goodbye (no WebSocket close, no RTCP BYE). Waits (bounded) until the
    /// browser is gone; its launcher then removes the profile.
    pub fn kill(&mut self) {
        let Some(group) = self.group else { return };
        let _ = Command::new("kill").args(["-KILL", "--", &format!("-{group}")]).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Path::new(&format!("/proc/{group}")).exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// As [`Browser::kill`], and the browser is gone.
    pub fn crash(mut self) {
        self.kill();
        drop(self);
    }

    /// True for Firefox.
    pub fn is_firefox(&self) -> bool {
        matches!(self.protocol, Protocol::Bidi { .. })
    }

    /// Sends a protocol command (DevTools or BiDi, whichever this browser speaks) and returns
    /// its `result`; `None` on an error reply or no reply.
    pub async fn command(&mut self, method: &str, params: Value) -> Option<Value> {
        let id = self.next_id;
        self.next_id += 1;
        let cmd = json!({"id": id, "method": method, "params": params});
        self.ws.send(Message::Text(cmd.to_string().into())).await.ok()?;
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            let msg = tokio::time::timeout(Duration::from_secs(15), self.ws.next()).await.ok()??.ok()?;
            let Message::Text(t) = msg else { continue };
            let v: Value = serde_json::from_str(t.as_str()).ok()?;
            if v["id"] == id {
                // An error reply (DevTools `error`, BiDi `type: error`) has no `result`.
                return v.get("result").cloned();
            }
        }
        None
    }

    /// Gives the page a screen of `width` × `height` CSS pixels (an office PC, a phone).
    pub async fn set_viewport(&mut self, width: u32, height: u32) {
        match &self.protocol {
            Protocol::DevTools => {
                let mobile = width < 700;
                let params = json!({"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile});
                self.command("Emulation.setDeviceMetricsOverride", params).await;
            }
            Protocol::Bidi { context } => {
                let context = context.clone();
                self.command("browsingContext.setViewport", json!({"context": context, "viewport": {"width": width, "height": height}})).await;
            }
        }
    }

    /// Saves a PNG of the page at its current viewport.
    pub async fn screenshot_as_is(&mut self, path: &Path) {
        let shot = match &self.protocol {
            Protocol::DevTools => self.command("Page.captureScreenshot", json!({"format": "png"})).await,
            Protocol::Bidi { context } => {
                let context = context.clone();
                self.command("browsingContext.captureScreenshot", json!({"context": context})).await
            }
        };
        if let Some(bytes) = shot.as_ref().and_then(|r| r["data"].as_str()).and_then(|d| base64_decode(d).ok()) {
            let _ = std::fs::write(path, bytes);
        }
    }

    /// Saves a PNG of the page (for people reviewing a run; tests do not assert on pixels here).
    pub async fn screenshot(&mut self, path: &Path) {
        let shot = match &self.protocol {
            Protocol::DevTools => {
                let _ =
                    self.command("Emulation.setDeviceMetricsOverride", json!({"width": 1280, "height": 800, "deviceScaleFactor": 1, "mobile": false})).await;
                self.command("Page.captureScreenshot", json!({"format": "png"})).await
            }
            Protocol::Bidi { context } => {
                let context = context.clone();
                let _ = self.command("browsingContext.setViewport", json!({"context": context, "viewport": {"width": 1280, "height": 800}})).await;
                self.command("browsingContext.captureScreenshot", json!({"context": context})).await
            }
        };
        if let Some(r) = shot {
            if let Some(data) = r["data"].as_str() {
                if let Ok(bytes) = base64_decode(data) {
                    let _ = std::fs::write(path, bytes);
                }
            }
        }
    }

    /// Evaluates an expression (promises awaited) and returns its JSON value; `None` on a
    /// JavaScript exception.
    pub async fn eval(&mut self, expression: &str) -> Option<Value> {
        match &self.protocol {
            Protocol::DevTools => {
                let params = json!({"expression": expression, "awaitPromise": true, "returnByValue": true});
                let result = self.command("Runtime.evaluate", params).await?;
                if result.get("exceptionDetails").is_some() {
                    return None;
                }
                Some(result["result"]["value"].clone())
            }
            Protocol::Bidi { context } => {
                // BiDi returns typed remote values; the page's own JSON is simpler to read.
                let expression = format!("(async () => JSON.stringify(await ({expression})))()");
                let params = json!({"expression": expression, "target": {"context": context}, "awaitPromise": true, "resultOwnership": "none"});
                let result = self.command("script.evaluate", params).await?;
                if result["type"] != "success" {
                    return None;
                }
                match result["result"]["value"].as_str() {
                    Some(text) => serde_json::from_str(text).ok(),
                    None => Some(Value::Null),
                }
            }
        }
    }
}

/// What a browser reports receiving from one remote site (its own `getStats()`).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Received {
    pub frames_decoded: f64,
    pub audio_energy: f64,
    pub audio_packets: f64,
}

impl Browser {
    /// Per remote site, from the page's `window.diemcau.stats()`.
    pub async fn received(&mut self) -> std::collections::HashMap<String, Received> {
        let v = self.eval("window.diemcau ? window.diemcau.stats() : {}").await.unwrap_or(Value::Null);
        let num = |s: &Value, k: &str| s[k].as_f64().unwrap_or(0.0);
        v.as_object()
            .map(|o| {
                o.iter()
                    .map(|(site, s)| {
                        let r = Received {
                            frames_decoded: num(s, "framesDecoded"),
                            audio_energy: num(s, "totalAudioEnergy"),
                            audio_packets: num(s, "audioPacketsReceived"),
                        };
                        (site.clone(), r)
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Browser {
    /// Waits until this page decodes `other`'s video and hears its audio; panics with `what`
    /// after `timeout`.
    pub async fn wait_receiving(&mut self, other: &str, timeout: Duration, what: &str) {
        let deadline = super::Deadline::after(timeout, format!("{} to decode and hear {other}{what}", self.name));
        loop {
            let r = self.received().await;
            if r.get(other).is_some_and(|x| x.frames_decoded > 0.0 && x.audio_energy > 0.0) {
                return;
            }
            self.tick_explaining(&deadline, &r).await;
        }
    }

    /// As [`super::Deadline::tick_showing`], and once the deadline has passed the panic also
    /// tells what the page shows ([`Browser::describe`]): why it did not get there.
    pub async fn tick_explaining(&mut self, deadline: &super::Deadline, last: &dyn std::fmt::Debug) {
        if deadline.expired() {
            let shown = self.describe().await;
            deadline.tick_showing(&format_args!("{last:?}\n{shown}")).await;
        }
        deadline.tick_showing(last).await;
    }

    /// What the page shows, for a failure message: its address, how far it loaded, its status
    /// line, whether it signed in and which sites it knows present, and the start of its text.
    pub async fn describe(&mut self) -> String {
        let js = "JSON.stringify({url: location.href, ready: document.readyState, status: document.getElementById('status')?.textContent ?? null, \
                  present: (window.diemcau?.state?.()?.sites ?? []).filter(s => s.present).map(s => s.id), \
                  media: {ice: window.diemcau?.client?.pc?.iceConnectionState ?? null, bridge: window.diemcau?.client?.serverMedia ?? null}, text: (document.body?.innerText ?? '').slice(0, 300), \
                  reloads: sessionStorage.getItem('diemcau.reloads'), via: performance.getEntriesByType('navigation')[0]?.nextHopProtocol ?? null, \
                  resources: performance.getEntriesByType('resource').map(e => `${e.name.split('/').pop()} ${Math.round(e.duration)} ms ${e.responseStatus ?? ''} ${e.nextHopProtocol}`)})";
        let shown = self.eval(js).await;
        format!("{}: {}", self.name, shown.as_ref().and_then(Value::as_str).unwrap_or("(the page did not answer)"))
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // The lab script ends Chromium's whole process group on SIGTERM and removes the profile.
        if !super::terminate(&mut self.child, Duration::from_secs(10)) {
            let _ = self.child.kill();
        }
    }
}

/// The process group a launcher's `pid=<n>` line names.
/// Runs a Chromium launcher (`chromium-webrtc.sh`, however it is wrapped) and waits for its
/// DevTools port: the child, its process group, the port, and the deadline (30 s) the caller's
/// own waits share. `place` names where it runs in messages (e.g. " in <namespace>").
async fn start_chromium(mut command: Command, name: &str, place: &str) -> (Child, Option<i32>, u16, Instant) {
    let mut child = command.stdout(Stdio::null()).stderr(Stdio::piped()).spawn().expect("launch chromium-webrtc.sh");
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        // "chromium-webrtc: pid=<pid> profile=<dir>"
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(p) = line.split("profile=").nth(1) {
                let _ = tx.send((PathBuf::from(p.trim()), process_group(&line)));
            }
        }
    });
    let (profile, group) = rx.recv_timeout(Duration::from_secs(20)).expect("chromium-webrtc.sh printed no profile");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(text) = std::fs::read_to_string(profile.join("DevToolsActivePort")) {
            if let Some(Ok(port)) = text.lines().next().map(str::parse) {
                return (child, group, port, deadline);
            }
        }
        if let Ok(Some(status)) = child.try_wait() {
            let log = std::fs::read_to_string(profile.join("chromium.log")).unwrap_or_default();
            panic!("{name}: chromium exited ({status}){place} before DevTools was up; log:\n{log}");
        }
        assert!(Instant::now() < deadline, "{name}: no DevToolsActivePort within 30 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn process_group(line: &str) -> Option<i32> {
    line.split("pid=").nth(1)?.split_whitespace().next()?.parse().ok()
}

/// The DevTools WebSocket URL of the page showing `url`.
async fn page_target(port: u16, url: &str) -> Option<String> {
    page_target_over(tokio::net::TcpStream::connect(("127.0.0.1", port)).await.ok()?, port, url).await
}

/// The page target for `url` from DevTools' `/json/list`, asked over `tcp` (to `port`).
async fn page_target_over(mut tcp: tokio::net::TcpStream, port: u16, url: &str) -> Option<String> {
    tcp.write_all(b"GET /json/list HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").await.ok()?;
    // DevTools keeps the connection open: read the head, then exactly Content-Length bytes.
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let body = loop {
        let n = tokio::time::timeout(Duration::from_secs(5), tcp.read(&mut chunk)).await.ok()?.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf).to_string();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let len: usize = head.lines().find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().ok()))??;
            if body.len() >= len {
                break body.to_string();
            }
        }
    };
    let targets: Vec<Value> = serde_json::from_str(&body).ok()?;
    let prefix = url.split('#').next()?;
    targets
        .iter()
        .find(|t| t["type"] == "page" && t["url"].as_str().is_some_and(|u| u.starts_with(prefix)))
        .and_then(|t| t["id"].as_str().map(|id| format!("ws://127.0.0.1:{port}/devtools/page/{id}")))
}

fn base64_decode(s: &str) -> Result<Vec<u8>, ()> {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0);
    for c in s.bytes().filter(|c| *c != b'=') {
        let v = T.iter().position(|t| *t == c).ok_or(())? as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Ok(out)
}

/// JavaScript giving the median colour of the middle of a video element.
pub fn colour_of(selector: &str) -> String {
    format!(
        r#"(() => {{
            const v = document.querySelector('{selector}');
            if (!v || v.readyState < 2 || !v.videoWidth) return null;
            const c = new OffscreenCanvas(64, 48), g = c.getContext('2d');
            g.drawImage(v, 0, 0, 64, 48);
            const d = g.getImageData(16, 28, 32, 12).data, ch = [[], [], []];
            for (let i = 0; i < d.length; i += 4) {{ ch[0].push(d[i]); ch[1].push(d[i + 1]); ch[2].push(d[i + 2]); }}
            return ch.map((a) => a.sort((x, y) => x - y)[a.length >> 1]);
        }})()"#
    )
}

/// Evaluates `js` until it returns `want`, or fails with `what` and the last value seen.
pub async fn until(page: &mut Browser, js: &str, want: Value, timeout: Duration, what: &str) {
    let deadline = Deadline::after(timeout, format!("{}: {what}", page.name));
    loop {
        let v = page.eval(js).await.unwrap_or(Value::Null);
        if v == want {
            return;
        }
        page.tick_explaining(&deadline, &v).await;
    }
}

/// Types `value` into the field `selector` as a person would (the page reads `.value`).
pub async fn type_into(page: &mut Browser, selector: &str, value: &str) {
    let js = format!("(() => {{ const e = document.querySelector({selector:?}); if (!e) return false; e.value = {value:?}; e.dispatchEvent(new Event('input', {{bubbles: true}})); return true; }})()");
    assert_eq!(page.eval(&js).await, Some(serde_json::json!(true)), "{}: no field {selector}", page.name);
}

/// Clicks the enabled element `selector`, as a person would; fails if there is none.
pub async fn click(page: &mut Browser, selector: &str) {
    let js = format!("(() => {{ const b = document.querySelector({selector:?}); if (!b || b.disabled) return false; b.click(); return true; }})()");
    assert_eq!(page.eval(&js).await, Some(serde_json::json!(true)), "{}: no enabled {selector} to click", page.name);
}

impl Browser {
    /// As [`Browser::launch`], with Chromium running inside the network namespace `ns` (e.g. a
    /// ward's shaped line, `common::line`). `url` must name an address reachable from there;
    /// IP literals work (they are let through Chromium's host-resolver rules here). DevTools
    /// listens on the namespace's own loopback; this process reaches it from a thread that
    /// enters the namespace only to open the connection, so the test's control traffic never
    /// crosses (or is shaped by) the ward's line.
    pub async fn launch_in_netns(ns: &str, name: &str, url: &str, media: &(PathBuf, PathBuf), scratch: &Path) -> Browser {
        let host = url.split("://").nth(1).and_then(|r| r.split([':', '/']).next()).unwrap_or("localhost").to_string();
        let rules = format!("--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE localhost , EXCLUDE 127.0.0.1 , EXCLUDE [::1] , EXCLUDE {host}");
        let mut command = Command::new("ip");
        command.args(["netns", "exec", ns, "bash"]).arg(lab_dir().join("chromium-webrtc.sh")).arg(url).arg(rules);
        command.env("LAB_DEVTOOLS_PORT", "0").env("LAB_SCRATCH", scratch).env("LAB_FAKE_VIDEO", &media.0).env("LAB_FAKE_AUDIO", &media.1);
        let (child, group, port, deadline) = start_chromium(command, name, &format!(" in {ns}")).await;
        let ws_url = loop {
            if let Some(u) = page_target_in(ns, port, url).await {
                break u;
            }
            assert!(Instant::now() < deadline, "{name}: page target not found in {ns}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let tcp = connect_in_netns(ns, port).await.unwrap_or_else(|e| panic!("{name}: DevTools in {ns}: {e}"));
        let (ws, _) = tokio_tungstenite::client_async(ws_url, tokio_tungstenite::MaybeTlsStream::Plain(tcp)).await.expect("devtools websocket");
        Browser { child, ws, next_id: 1, protocol: Protocol::DevTools, group, name: name.to_string() }
    }
}

/// A TCP connection to `127.0.0.1:port` inside the network namespace `ns`: a short-lived
/// thread enters the namespace (`setns` changes only the calling thread), connects, and hands
/// the socket back; the socket stays in that namespace wherever it is used.
pub async fn connect_in_netns(ns: &str, port: u16) -> std::io::Result<tokio::net::TcpStream> {
    let stream = super::line::in_netns(ns, move || {
        let s = std::net::TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_secs(5))?;
        s.set_nonblocking(true)?;
        Ok(s)
    })?;
    tokio::net::TcpStream::from_std(stream)
}

/// As `page_target`, for a browser inside the namespace `ns`.
async fn page_target_in(ns: &str, port: u16, url: &str) -> Option<String> {
    page_target_over(connect_in_netns(ns, port).await.ok()?, port, url).await
}

/// As [`fake_media`], with a camera of `size` (e.g. `"640x360"`: the page's camera size, large
/// enough for two simulcast layers) at 15 frames per second.
pub fn fake_media_sized(dir: &Path, name: &str, rgb: (u8, u8, u8), tone_hz: u32, size: &str) -> (PathBuf, PathBuf) {
    generate_fake_media(dir, name, rgb, tone_hz, &["--size", size, "--fps", "15"])
}

/// A fake camera and microphone for `site`: the lab's tone, and 640x360 at 15 frames/s of the
/// site's colour under fresh random noise every frame. The lab's plain colour with a moving
/// bar compresses to ~50 kbit/s, far under any cap; noise keeps each simulcast layer at its
/// bitrate ceiling, as a detailed office scene would, so a cap on the line binds.
pub fn busy_camera(dir: &std::path::Path, site: &str, rgb: (u8, u8, u8), tone: u32) -> (std::path::PathBuf, std::path::PathBuf) {
    let (video, audio) = fake_media_sized(dir, site, rgb, tone, "640x360");
    let (w, h, frames) = (640usize, 360usize, 30usize);
    let (r, g, b) = (rgb.0 as f64, rgb.1 as f64, rgb.2 as f64);
    let y = (0.257 * r + 0.504 * g + 0.098 * b + 16.0) as i32;
    let u = (-0.148 * r - 0.291 * g + 0.439 * b + 128.0) as u8;
    let v = (0.439 * r - 0.368 * g - 0.071 * b + 128.0) as u8;
    let mut out = format!("YUV4MPEG2 W{w} H{h} F15:1 Ip A1:1 C420jpeg\n").into_bytes();
    let mut seed = 0x9e37_79b9_7f4a_7c15u64 ^ tone as u64;
    for _ in 0..frames {
        out.extend_from_slice(b"FRAME\n");
        for _ in 0..w * h {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            out.push((y + (seed % 81) as i32 - 40).clamp(16, 235) as u8);
        }
        out.extend(std::iter::repeat_n(u, w * h / 4));
        out.extend(std::iter::repeat_n(v, w * h / 4));
    }
    std::fs::write(&video, out).unwrap();
    (video, audio)
}
