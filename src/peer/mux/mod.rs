//! One UDP port and one TCP port for every PeerConnection of the bridge, so a firewall needs
//! two short rules (docs/operations.md). It owns the shared sockets and the routing tables;
//! it never looks inside media (SRTP stays encrypted here) and never authenticates: each
//! PeerConnection's ICE agent checks what it is given.
//!
//! How it plugs into webrtc 0.21.1 without patching the crate:
//!
//! * Each PeerConnection is built with its own [`MuxRuntime`] (`PeerConnectionBuilder::with_runtime`).
//!   The driver still binds what `with_udp_addrs` / `with_tcp_addrs` say (`ip:0`: an ephemeral
//!   port) and hands the std socket/listener to `Runtime::wrap_udp_socket` /
//!   `Runtime::wrap_tcp_listener`. The runtime records that ephemeral address as the PC's
//!   *label*, closes the real socket, and returns a virtual socket/listener fed by this mux.
//! * The driver keys its sockets by the label and tags every inbound datagram with it, so the
//!   ICE agent finds its host candidate as usual. Only what is *advertised* changes: candidate
//!   port (and IP) are rewritten to the shared port (see [`sdp`]).
//! * Inbound UDP is routed: STUN Binding request → by the ufrag in USERNAME; STUN response →
//!   by the transaction id of the request this PC sent; anything else → by remote address,
//!   learned when the PC answers a check successfully or sends DTLS/SRTP there.
//! * Inbound TCP (RFC 6544 passive): the shared listener accepts, reads the first RFC 4571
//!   frame (a Binding request), routes the connection by ufrag and replays that frame to the
//!   PC's virtual listener, which hands the stream to the driver.

pub(crate) mod runtime;
pub mod sdp;
pub(crate) mod strangers;
pub mod stun;
pub mod tcp;
pub(crate) mod udp;

use futures::task::AtomicWaker;
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

pub(crate) use runtime::MuxRuntime;

/// How long a ufrag replaced by an ICE restart keeps routing (in-flight checks of the old
/// generation). The PC's agent already rejects them after the restart; this only avoids
/// counting them as unrouted.
pub(crate) const RETIRED_UFRAG_GRACE: Duration = Duration::from_secs(30);
/// A learned remote address is forgotten after this long without a packet from it. ICE
/// consent checks (RFC 7675) arrive every few seconds on a live pair, so this only drops
/// dead paths.
pub(crate) const ADDR_IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Transaction ids of our own outgoing Binding requests are kept this long for response routing.
pub(crate) const TXID_TTL: Duration = Duration::from_secs(10);
/// Datagrams queued per PC before the mux drops (the PC's driver is not keeping up).
pub(crate) const PC_QUEUE_LIMIT: usize = 4096;

/// Configuration of the shared ports.
#[derive(Debug, Clone)]
pub(crate) struct MuxConfig {
    /// Where the shared UDP socket binds, e.g. `0.0.0.0:10000` (port 0: any free port).
    pub(crate) udp_bind: SocketAddr,
    /// Where the shared ICE-TCP listener binds (None = no ICE-TCP).
    pub(crate) tcp_bind: Option<SocketAddr>,
    /// The addresses written into advertised candidates: the public IP behind 1:1 NAT, else
    /// the bind IP, else (bound to every interface) each interface's address.
    pub(crate) advertise_ips: Vec<std::net::IpAddr>,
}

pub(crate) use crate::health::board::Path;

/// One datagram for a PC, from the shared ports, with the time it was taken off the socket
/// (where the bridge's forwarding delay starts).
#[derive(Debug)]
pub(crate) struct Datagram {
    pub(crate) from: SocketAddr,
    pub(crate) data: bytes::Bytes,
    pub(crate) at: std::time::Instant,
}

/// Per-PeerConnection state shared between the mux (producer) and the PC's virtual sockets.
#[derive(Debug)]
pub(crate) struct PcLink {
    /// Inbound datagrams waiting for the PC's driver, with their source address.
    udp_queue: Mutex<VecDeque<Datagram>>,
    udp_waker: AtomicWaker,
    /// The ephemeral address the driver bound (and we closed): the PC's UDP label.
    udp_label: Mutex<Option<SocketAddr>>,
    /// The same for the TCP listener.
    tcp_label: Mutex<Option<SocketAddr>>,
    /// Where the TCP acceptor hands routed connections; replaced on every wrap_tcp_listener.
    tcp_accept_tx: Mutex<Option<tokio::sync::mpsc::Sender<tcp::Routed>>>,
    /// ICE-TCP connections routed to this PC and still served.
    tcp_routed: std::sync::atomic::AtomicUsize,
    /// Ufrags registered for this PC (current last).
    ufrags: Mutex<Vec<String>>,
    closed: AtomicBool,
    /// 1 + the path of the last media (non-STUN) packet this PC sent; 0 = none yet.
    path: std::sync::atomic::AtomicU8,
}

impl PcLink {
    /// Over UDP or ICE-TCP, from what the PC last sent media on.
    pub(crate) fn path(&self) -> Option<Path> {
        match self.path.load(Ordering::Relaxed) {
            1 => Some(Path::Udp),
            2 => Some(Path::Tcp),
            _ => None,
        }
    }

    fn sent_media(&self, path: Path) {
        self.path.store(if path == Path::Udp { 1 } else { 2 }, Ordering::Relaxed);
    }

    pub(crate) fn udp_label(&self) -> Option<SocketAddr> {
        *self.udp_label.lock().unwrap()
    }
    pub(crate) fn tcp_label(&self) -> Option<SocketAddr> {
        *self.tcp_label.lock().unwrap()
    }
    /// Moves up to `max` waiting datagrams into `out`; when none wait, registers `cx` to be
    /// woken by the next one. For peers that read the shared port themselves (the lean engine).
    pub(crate) fn poll_datagrams(&self, cx: &mut std::task::Context<'_>, out: &mut Vec<Datagram>, max: usize) -> std::task::Poll<()> {
        let take = |out: &mut Vec<_>| {
            let mut q = self.udp_queue.lock().unwrap();
            let n = q.len().min(max);
            out.extend(q.drain(..n));
            n
        };
        if take(out) > 0 {
            return std::task::Poll::Ready(());
        }
        // Register, then look again: a push in between would otherwise be missed.
        self.udp_waker.register(cx.waker());
        if take(out) > 0 {
            return std::task::Poll::Ready(());
        }
        std::task::Poll::Pending
    }

    /// Queues one datagram for the driver; false if dropped (queue full or PC closed).
    fn push_datagram(&self, from: SocketAddr, data: bytes::Bytes) -> bool {
        if self.closed.load(Ordering::Relaxed) {
            return false;
        }
        let at = std::time::Instant::now();
        {
            let mut q = self.udp_queue.lock().unwrap();
            if q.len() >= PC_QUEUE_LIMIT {
                return false;
            }
            q.push_back(Datagram { from, data, at });
        }
        self.udp_waker.wake();
        true
    }
}

struct UfragEntry {
    link: Weak<PcLink>,
    /// The ICE password that goes with this ufrag: an ICE-TCP connection is routed only when
    /// its first check is signed with it.
    pwd: String,
    /// Set when an ICE restart replaced this ufrag: routing stops after this instant.
    retire_at: Option<Instant>,
}

struct AddrEntry {
    link: Weak<PcLink>,
    /// Milliseconds since `Mux::epoch` of the last inbound packet (for idle expiry).
    last_rx_ms: AtomicU64,
}

/// A STUN transaction id (RFC 5389: 96 bits).
type TxId = [u8; 12];

/// Counters, all monotonic; read with [`Mux::counters`].
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) udp_in: AtomicU64,
    pub(crate) udp_by_ufrag: AtomicU64,
    pub(crate) udp_by_txid: AtomicU64,
    pub(crate) udp_by_addr: AtomicU64,
    pub(crate) udp_unrouted: AtomicU64,
    pub(crate) udp_queue_drops: AtomicU64,
    pub(crate) udp_out: AtomicU64,
    pub(crate) udp_send_drops: AtomicU64,
    pub(crate) tcp_accepted: AtomicU64,
    pub(crate) tcp_routed: AtomicU64,
    pub(crate) tcp_rejected: AtomicU64,
    pub(crate) tcp_frame_drops: AtomicU64,
    /// STUN checks dropped unrouted: their source address failed too many checks.
    pub(crate) stun_refused: AtomicU64,
    /// Routed ICE-TCP connections closed for a frame no browser sends (too large).
    pub(crate) tcp_oversized: AtomicU64,
    /// Routed ICE-TCP connections closed for carrying no whole frame for [`tcp::ROUTED_IDLE`].
    pub(crate) tcp_idle: AtomicU64,
}

/// The shared ports and the routing tables.
pub(crate) struct Mux {
    pub(crate) config: MuxConfig,
    pub(crate) udp_addr: SocketAddr,
    pub(crate) tcp_addr: Option<SocketAddr>,
    udp_sock: Arc<tokio::net::UdpSocket>,
    ufrags: Mutex<HashMap<String, UfragEntry>>,
    /// Remote address → PC. Read on every inbound non-STUN datagram, written rarely.
    addrs: std::sync::RwLock<HashMap<SocketAddr, AddrEntry>>,
    /// Transaction id of a Binding request we sent → the PC that sent it.
    txids: Mutex<HashMap<TxId, (Weak<PcLink>, Instant)>>,
    epoch: Instant,
    pub(crate) counters: Counters,
    /// Failed connectivity checks by source IP (strangers' sprays); see [`strangers`].
    check_failures: Mutex<strangers::CheckFailures>,
    /// Whether `check_failures` has anyone in it (no lock per check while it has not).
    check_failures_any: AtomicBool,
    /// When the log last told of refused checks, and how many it told of.
    check_failures_logged: Mutex<(Option<Instant>, u64)>,
    /// Stops the mux's own tasks (UDP demux, TCP acceptor, expiry): [`Mux::shutdown`], or the
    /// last `Arc<Mux>` dropped. They hold only a `Weak<Mux>` and the socket they read.
    stop: tokio_util::sync::CancellationToken,
}

impl Drop for Mux {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl std::fmt::Debug for Mux {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mux").field("udp", &self.udp_addr).field("tcp", &self.tcp_addr).finish()
    }
}

impl Mux {
    /// Binds the shared ports and starts the UDP demux, TCP acceptor and expiry tasks.
    /// Must run inside a tokio runtime.
    pub(crate) async fn bind(config: MuxConfig) -> std::io::Result<Arc<Mux>> {
        let udp_sock = Arc::new(udp::bind_shared(config.udp_bind)?);
        let udp_addr = udp_sock.local_addr()?;
        let tcp_listener = match config.tcp_bind {
            Some(a) => Some(tokio::net::TcpListener::bind(a).await?),
            None => None,
        };
        let tcp_addr = tcp_listener.as_ref().map(|l| l.local_addr()).transpose()?;
        let mux = Arc::new(Mux {
            config,
            udp_addr,
            tcp_addr,
            udp_sock,
            ufrags: Mutex::new(HashMap::new()),
            addrs: std::sync::RwLock::new(HashMap::new()),
            txids: Mutex::new(HashMap::new()),
            epoch: Instant::now(),
            counters: Counters::default(),
            check_failures: Mutex::default(),
            check_failures_any: AtomicBool::new(false),
            check_failures_logged: Mutex::new((None, 0)),
            stop: tokio_util::sync::CancellationToken::new(),
        });
        let stop = mux.stop.clone();
        tokio::spawn(udp::demux_loop(Arc::downgrade(&mux), mux.udp_sock.clone(), stop.clone()));
        if let Some(l) = tcp_listener {
            tokio::spawn(tcp::accept_loop(Arc::downgrade(&mux), l, stop.clone()));
        }
        tokio::spawn(expiry_loop(Arc::downgrade(&mux), stop));
        Ok(mux)
    }

    /// Stops the mux's tasks: the shared ports take nothing more in (the ICE-TCP listener
    /// closes; the UDP socket closes with the last `Arc<Mux>`). Also done on drop.
    pub(crate) fn shutdown(&self) {
        self.stop.cancel();
    }

    /// A connectivity check from `from` failed (wrong or unknown credentials): counted against
    /// its IP, whose checks are dropped once it is over budget ([`strangers`]). Addresses a
    /// site's media comes from are exempt.
    pub(crate) fn check_failed(&self, from: SocketAddr) {
        if self.addrs.read().unwrap().contains_key(&from) {
            return;
        }
        self.check_failures.lock().unwrap().failed(from.ip(), Instant::now());
        self.check_failures_any.store(true, Ordering::Relaxed);
    }

    /// Whether a check from `from` is dropped before routing (its IP failed too many).
    fn check_refused(&self, from: SocketAddr) -> bool {
        if !self.check_failures_any.load(Ordering::Relaxed) {
            return false;
        }
        let now = Instant::now();
        if !self.check_failures.lock().unwrap().refuse(from.ip(), now) || self.addrs.read().unwrap().contains_key(&from) {
            return false;
        }
        let total = self.counters.stun_refused.fetch_add(1, Ordering::Relaxed) + 1;
        // Logged the first time, then at most once a minute: never per packet.
        let mut logged = self.check_failures_logged.lock().unwrap();
        if logged.0.is_none_or(|at| now.duration_since(at) >= Duration::from_secs(60)) {
            tracing::warn!(
                refused = total,
                "refusing connectivity checks from {}: too many with wrong credentials (counted in stun_refused; logged at most once a minute)",
                from.ip()
            );
            *logged = (Some(now), total);
        }
        true
    }

    /// What the shared ports refused strangers so far: checks over their address's budget
    /// and ICE-TCP connections closed for oversized frames or idleness.
    pub(crate) fn strangers_refused(&self) -> u64 {
        let c = &self.counters;
        [&c.stun_refused, &c.tcp_oversized, &c.tcp_idle].iter().map(|a| a.load(Ordering::Relaxed)).sum()
    }

    /// The IP each PC's driver binds its throw-away label sockets on: the bind IP, or
    /// 127.0.0.1 when bound to every interface (one specific IP gives one label per PC).
    /// Never on the wire.
    pub(crate) fn label_ip(&self) -> std::net::IpAddr {
        let ip = self.udp_addr.ip();
        if ip.is_unspecified() {
            std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST)
        } else {
            ip
        }
    }

    /// A new PC's link and the runtime to build it with.
    pub(crate) fn new_pc(self: &Arc<Self>) -> (Arc<PcLink>, Arc<MuxRuntime>) {
        let link = self.new_link();
        let rt = Arc::new(MuxRuntime::new(self.clone(), link.clone()));
        (link, rt)
    }

    /// A new link for a peer that reads and writes the shared port itself
    /// ([`PcLink::poll_datagrams`], [`Mux::send_udp`]).
    pub(crate) fn new_link(&self) -> Arc<PcLink> {
        Arc::new(PcLink {
            udp_queue: Mutex::new(VecDeque::new()),
            udp_waker: AtomicWaker::new(),
            udp_label: Mutex::new(None),
            tcp_label: Mutex::new(None),
            tcp_accept_tx: Mutex::new(None),
            tcp_routed: Default::default(),
            ufrags: Mutex::new(Vec::new()),
            closed: AtomicBool::new(false),
            path: Default::default(),
        })
    }

    /// Registers every `a=ice-ufrag` of a local description for `link`. Call after each
    /// `set_local_description` and **before** the description is sent to the browser (the
    /// browser starts checks as soon as it has it). A ufrag the PC no longer uses (ICE
    /// restart) keeps routing for [`RETIRED_UFRAG_GRACE`].
    pub(crate) fn register_local_sdp(&self, link: &Arc<PcLink>, sdp: &str) -> Result<(), String> {
        let mut current: Vec<String> = Vec::new();
        let mut pwds: HashMap<String, String> = HashMap::new();
        let mut last_ufrag: Option<String> = None;
        for l in sdp.lines() {
            if let Some(u) = l.trim_end().strip_prefix("a=ice-ufrag:") {
                if !current.iter().any(|c| c == u) {
                    current.push(u.to_owned());
                }
                last_ufrag = Some(u.to_owned());
            } else if let Some(p) = l.trim_end().strip_prefix("a=ice-pwd:") {
                if let Some(u) = &last_ufrag {
                    pwds.entry(u.clone()).or_insert_with(|| p.to_owned());
                }
            }
        }
        let mut table = self.ufrags.lock().unwrap();
        for u in &current {
            if let Some(e) = table.get(u) {
                if let Some(other) = e.link.upgrade() {
                    if !Arc::ptr_eq(&other, link) {
                        return Err(format!("ufrag {u} already belongs to another PeerConnection"));
                    }
                }
            }
        }
        let mut mine = link.ufrags.lock().unwrap();
        let retire_at = Instant::now() + RETIRED_UFRAG_GRACE;
        for old in mine.iter().filter(|o| !current.contains(o)) {
            if let Some(e) = table.get_mut(old) {
                e.retire_at.get_or_insert(retire_at);
            }
        }
        for u in &current {
            let pwd = pwds.get(u).cloned().unwrap_or_default();
            table.insert(u.clone(), UfragEntry { link: Arc::downgrade(link), pwd, retire_at: None });
            if !mine.contains(u) {
                mine.push(u.clone());
            }
        }
        Ok(())
    }

    /// Forgets a PC: its ufrags stop routing at once; address entries expire lazily.
    pub(crate) fn close_pc(&self, link: &Arc<PcLink>) {
        link.closed.store(true, Ordering::Relaxed);
        let mut table = self.ufrags.lock().unwrap();
        for u in link.ufrags.lock().unwrap().drain(..) {
            table.remove(&u);
        }
        *link.tcp_accept_tx.lock().unwrap() = None;
    }

    fn link_by_ufrag(&self, ufrag: &str) -> Option<Arc<PcLink>> {
        self.link_and_pwd(ufrag).map(|(link, _)| link)
    }

    /// The PC a local ufrag routes to, and that ufrag's ICE password.
    fn link_and_pwd(&self, ufrag: &str) -> Option<(Arc<PcLink>, String)> {
        let table = self.ufrags.lock().unwrap();
        let e = table.get(ufrag)?;
        if e.retire_at.is_some_and(|t| Instant::now() >= t) {
            return None;
        }
        Some((e.link.upgrade()?, e.pwd.clone()))
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    fn link_by_addr(&self, addr: &SocketAddr) -> Option<Arc<PcLink>> {
        let table = self.addrs.read().unwrap();
        let e = table.get(addr)?;
        e.last_rx_ms.store(self.now_ms(), Ordering::Relaxed);
        e.link.upgrade()
    }

    /// Remember that `addr` belongs to `link` (called from the PC's send path).
    fn learn_addr(&self, addr: SocketAddr, link: &Arc<PcLink>) {
        {
            let table = self.addrs.read().unwrap();
            if let Some(e) = table.get(&addr) {
                if e.link.as_ptr() == Arc::as_ptr(link) {
                    return; // the common case: already known, read lock only
                }
            }
        }
        let entry = AddrEntry { link: Arc::downgrade(link), last_rx_ms: AtomicU64::new(self.now_ms()) };
        self.addrs.write().unwrap().insert(addr, entry);
    }

    fn remember_txid(&self, txid: TxId, link: &Arc<PcLink>) {
        self.txids.lock().unwrap().insert(txid, (Arc::downgrade(link), Instant::now()));
    }

    fn take_txid(&self, txid: &TxId) -> Option<Arc<PcLink>> {
        self.txids.lock().unwrap().remove(txid).and_then(|(l, _)| l.upgrade())
    }

    /// Candidate rewriting for `link` (see [`sdp::advertise_candidate`]): none, one or several.
    pub(crate) fn advertise_candidate(&self, link: &PcLink, candidate: &str) -> Vec<String> {
        sdp::advertise_candidate(candidate, &self.advertised(link))
    }

    /// The same for every `a=candidate` line of a description.
    pub(crate) fn advertise_sdp(&self, link: &PcLink, sdp_text: &str) -> String {
        sdp::advertise_sdp(sdp_text, &self.advertised(link))
    }

    fn advertised(&self, link: &PcLink) -> sdp::Advertised {
        sdp::Advertised {
            udp_label: link.udp_label(),
            tcp_label: link.tcp_label(),
            ips: self.config.advertise_ips.clone(),
            udp_port: self.udp_addr.port(),
            tcp_port: self.tcp_addr.map(|a| a.port()),
        }
    }

    /// The counters, for `/metrics`.
    pub(crate) fn snapshot(&self) -> MuxSnapshot {
        let c = &self.counters;
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        MuxSnapshot {
            udp_in: g(&c.udp_in),
            udp_unrouted: g(&c.udp_unrouted),
            udp_queue_drops: g(&c.udp_queue_drops),
            udp_out: g(&c.udp_out),
            udp_send_drops: g(&c.udp_send_drops),
            tcp_accepted: g(&c.tcp_accepted),
            tcp_routed: g(&c.tcp_routed),
            tcp_rejected: g(&c.tcp_rejected),
            tcp_frame_drops: g(&c.tcp_frame_drops),
            stun_refused: g(&c.stun_refused),
            tcp_oversized: g(&c.tcp_oversized),
            tcp_idle: g(&c.tcp_idle),
        }
    }
}

/// What `/metrics` shows of the shared ports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub(crate) struct MuxSnapshot {
    pub(crate) udp_in: u64,
    pub(crate) udp_unrouted: u64,
    pub(crate) udp_queue_drops: u64,
    pub(crate) udp_out: u64,
    pub(crate) udp_send_drops: u64,
    pub(crate) tcp_accepted: u64,
    pub(crate) tcp_routed: u64,
    pub(crate) tcp_rejected: u64,
    pub(crate) tcp_frame_drops: u64,
    pub(crate) stun_refused: u64,
    pub(crate) tcp_oversized: u64,
    pub(crate) tcp_idle: u64,
}

/// The IPv4 addresses of the host's interfaces that are up, for a bridge bound to every
/// interface, which advertises each of them; loopback only when there is nothing else.
pub(crate) fn interface_ips() -> Vec<std::net::IpAddr> {
    let mut ips = Vec::new();
    let mut loopback = Vec::new();
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `head` with a list we only read and then free once.
    if unsafe { libc::getifaddrs(&mut head) } != 0 {
        return ips;
    }
    let mut cur = head;
    while !cur.is_null() {
        // SAFETY: `cur` is a node of the list getifaddrs returned, not yet freed.
        let ifa = unsafe { &*cur };
        let up = ifa.ifa_flags & libc::IFF_UP as u32 != 0;
        if up && !ifa.ifa_addr.is_null() && unsafe { (*ifa.ifa_addr).sa_family } as i32 == libc::AF_INET {
            // SAFETY: an AF_INET address is a sockaddr_in.
            let sin = unsafe { &*(ifa.ifa_addr as *const libc::sockaddr_in) };
            let ip = std::net::Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr));
            if ip.is_loopback() {
                loopback.push(ip.into())
            } else if !ips.contains(&ip.into()) {
                ips.push(ip.into())
            }
        }
        cur = ifa.ifa_next;
    }
    // SAFETY: `head` came from getifaddrs and is freed exactly once.
    unsafe { libc::freeifaddrs(head) };
    if ips.is_empty() {
        ips = loopback;
    }
    ips
}

/// Every 5 s: drop retired ufrags, idle or dead addresses, old transaction ids, forgiven
/// strangers.
async fn expiry_loop(mux: Weak<Mux>, stop: tokio_util::sync::CancellationToken) {
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let Some(mux) = mux.upgrade() else { return };
        let now = Instant::now();
        {
            let mut failures = mux.check_failures.lock().unwrap();
            failures.forget_forgiven(now);
            mux.check_failures_any.store(!failures.is_empty(), Ordering::Relaxed);
        }
        mux.ufrags.lock().unwrap().retain(|_, e| e.link.strong_count() > 0 && e.retire_at.is_none_or(|t| now < t));
        let idle_ms = ADDR_IDLE_TIMEOUT.as_millis() as u64;
        let now_ms = mux.now_ms();
        mux.addrs.write().unwrap().retain(|_, e| {
            let alive = e.link.upgrade().is_some_and(|l| !l.closed.load(Ordering::Relaxed));
            alive && now_ms.saturating_sub(e.last_rx_ms.load(Ordering::Relaxed)) < idle_ms
        });
        mux.txids.lock().unwrap().retain(|_, (l, t)| l.strong_count() > 0 && now.duration_since(*t) < TXID_TTL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn bind_loopback() -> Arc<Mux> {
        let any = "127.0.0.1:0".parse().unwrap();
        Mux::bind(MuxConfig { udp_bind: any, tcp_bind: Some(any), advertise_ips: vec![any.ip()] }).await.unwrap()
    }

    /// Polls `ok` every 20 ms for at most 5 s.
    async fn eventually(mut ok: impl FnMut() -> bool) -> bool {
        for _ in 0..250 {
            if ok() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        false
    }

    #[tokio::test]
    async fn dropping_the_mux_stops_its_tasks_and_frees_its_ports() {
        let mux = bind_loopback().await;
        let (udp, tcp) = (mux.udp_addr, mux.tcp_addr.unwrap());
        assert!(std::net::UdpSocket::bind(udp).is_err(), "the port is the mux's while it runs");
        drop(mux);
        // The tasks held the sockets; once they stop, the ports can be bound again.
        assert!(eventually(|| std::net::UdpSocket::bind(udp).is_ok()).await, "UDP {udp} still held after the mux was dropped");
        assert!(eventually(|| std::net::TcpListener::bind(tcp).is_ok()).await, "TCP {tcp} still held after the mux was dropped");
    }

    #[tokio::test]
    async fn a_mux_shut_down_takes_nothing_more_in() {
        let mux = bind_loopback().await;
        let stranger = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        stranger.send_to(b"before", mux.udp_addr).unwrap();
        assert!(eventually(|| mux.counters.udp_in.load(Ordering::Relaxed) == 1).await);
        mux.shutdown();
        let tcp = mux.tcp_addr.unwrap();
        assert!(eventually(|| std::net::TcpStream::connect(tcp).is_err()).await, "the ICE-TCP listener closes");
        stranger.send_to(b"after", mux.udp_addr).unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(mux.counters.udp_in.load(Ordering::Relaxed), 1, "a datagram after shutdown was taken in");
    }
}
