//! One site's shaped line: a second network namespace for that site's browser, joined to the
//! bridge's namespace by a veth pair, with impairments on that pair only. The loopback rules of
//! tests/lab/impair.sh shape every site at once (all sites share the bridge's one UDP port);
//! this shapes one ward and leaves the others untouched.
//!
//! The process that builds a [`Line`] must already run inside a private namespace of its own
//! (see [`enter_private_netns`]): that namespace is the bridge's side, `10.77.0.1/24` on
//! `dcb<pid>`; the ward's side is the namespace `dcw<pid>`, `10.77.0.2/24` on `dcw<pid>`.
//! This kernel has no netem, so:
//! - a rate cap is `tc htb` on the sending side's veth (a class of `kbit`, a byte FIFO of
//!   ~200 ms at that rate, excess dropped);
//! - loss and a cut are nftables rules on the receiving side's ingress hook (`numgen random`),
//!   which on a point-to-point pair is the same as losing the packet on the wire, and never
//!   makes a sender's `sendto()` fail;
//! - added delay is a userspace relay in the bridge's namespace: the ward's UDP to the bridge's
//!   media port is redirected (nftables `redirect`, set up before the ward's first packet so
//!   conntrack catches the flow) to a relay that holds packets for the configured time.
//!
//! It never touches the host's namespace, loopback or any interface it did not create, and
//! dropping it deletes the ward's namespace (with the veth pair) and its own tables.

use std::net::{Ipv4Addr, SocketAddr};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream, UdpSocket};

/// The bridge's end of the pair.
pub const BRIDGE_IP: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 1);
/// The ward's end of the pair.
pub const WARD_IP: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 2);

/// Which way along the line: `Down` is bridge → ward (what the ward receives), `Up` is
/// ward → bridge (what the ward sends).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    Down,
    Up,
}

/// Runs `ip`, `tc` or `nft` and fails loudly: a rule that silently did not apply would make
/// every figure taken afterwards a lie.
fn run(program: &str, args: &[&str]) {
    let out = Command::new(program).args(args).output().unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(out.status.success(), "{program} {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
}

/// As [`run`], with nftables rules on stdin.
fn nft(ns: Option<&str>, script: &str) {
    use std::io::Write;
    let mut c = match ns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns, "nft", "-f", "-"]);
            c
        }
        None => {
            let mut c = Command::new("nft");
            c.args(["-f", "-"]);
            c
        }
    };
    let mut child = c.stdin(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().expect("nft (apt-get install nftables)");
    child.stdin.take().unwrap().write_all(script.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "nft -f -: {}\n{script}", String::from_utf8_lossy(&out.stderr));
}

/// Output of a command as text ("" when it fails).
fn output(program: &str, args: &[&str]) -> String {
    Command::new(program).args(args).output().map(|o| String::from_utf8_lossy(&o.stdout).to_string()).unwrap_or_default()
}

/// When not yet inside one, re-runs this executable (same arguments) inside a fresh network
/// namespace that has only `lo`, waits for it, deletes that namespace and the ward's (in case
/// the child died before its [`Line`] dropped), and exits with the child's status. Inside,
/// returns. Needs root. Ctrl-C ends the child (its browsers' launchers clean up after
/// themselves); this parent ignores it so that it can still delete the namespaces.
pub fn enter_private_netns(tag: &str) {
    if std::env::var("DIEMCAU_NETNS").is_ok() {
        return;
    }
    // SAFETY: setting a signal disposition to SIG_IGN has no preconditions.
    unsafe {
        libc::signal(libc::SIGINT, libc::SIG_IGN);
    }
    let status = run_in_fresh_netns(tag, std::env::args_os().skip(1).collect(), &[]);
    std::process::exit(status.code().unwrap_or(1));
}

/// For a test: when not yet inside one, runs `test` of this test binary again inside a fresh
/// network namespace that has only `lo` (with `envs` set), deletes it and any ward namespace
/// a [`Line`] left, asserts it passed, and returns false; inside, returns true (run the body).
/// Needs root.
pub fn test_in_private_netns(test: &str, tag: &str, envs: &[(&str, &str)]) -> bool {
    if std::env::var("DIEMCAU_NETNS").is_ok() {
        return true;
    }
    let args = [test, "--exact", "--nocapture"].map(std::ffi::OsString::from).to_vec();
    let status = run_in_fresh_netns(tag, args, envs);
    assert!(status.success(), "the test inside the namespace failed");
    false
}

/// Runs this executable with `args` inside a fresh namespace `dc<tag><pid>` that has only `lo`
/// up (`DIEMCAU_NETNS` names it, `DIEMCAU_LINE_ID` gives a [`Line`] its names), then deletes
/// that namespace and the ward's.
fn run_in_fresh_netns(tag: &str, args: Vec<std::ffi::OsString>, envs: &[(&str, &str)]) -> std::process::ExitStatus {
    let pid = std::process::id();
    let ns = format!("dc{tag}{pid}");
    let added = Command::new("ip").args(["netns", "add", &ns]).status().expect("ip (iproute2)");
    assert!(added.success(), "ip netns add failed: this needs root");
    run("ip", &["-n", &ns, "link", "set", "lo", "up"]);
    let status = Command::new("ip")
        .args(["netns", "exec", &ns])
        .arg(std::env::current_exe().unwrap())
        .args(args)
        .envs(envs.iter().copied())
        .env("DIEMCAU_NETNS", &ns)
        .env("DIEMCAU_LINE_ID", pid.to_string())
        .status()
        .expect("re-run inside the namespace");
    let _ = Command::new("ip").args(["netns", "del", &format!("dcw{pid}")]).stderr(std::process::Stdio::null()).status();
    let _ = Command::new("ip").args(["netns", "del", &ns]).status();
    status
}

/// A bridge of the default config for a meeting with a [`Line`]: media on every address of
/// this namespace on `udp_port`, advertised at the bridge's end of the line (the other sites
/// reach that address over their own loopback, unshaped), and no ICE-TCP, so the ward's media
/// takes the shaped UDP path and a cut of UDP is a cut of its media; `extra_media`: more
/// `[media]` settings (TOML lines).
pub fn start_bridge_with(udp_port: u16, extra_media: &str) -> super::TestBridge {
    let (config, data) = super::TestBridge::config_with("");
    let text = std::fs::read_to_string(&config).unwrap().replacen("bind_ip = \"\"", "bind_ip = \"0.0.0.0\"", 1).replacen(
        "public_ip = \"\"",
        &format!("public_ip = \"{BRIDGE_IP}\"\nudp_port = {udp_port}\nice_tcp = false\n{extra_media}"),
        1,
    );
    std::fs::write(&config, text).unwrap();
    super::TestBridge::start_with(config, data)
}

/// Runs `f` on a thread that has entered the network namespace `ns` (`setns` changes only the
/// calling thread); sockets it creates stay in that namespace wherever they are used after.
pub fn in_netns<T: Send + 'static>(ns: &str, f: impl FnOnce() -> std::io::Result<T> + Send + 'static) -> std::io::Result<T> {
    let path = format!("/run/netns/{ns}");
    std::thread::spawn(move || {
        use std::os::fd::AsRawFd;
        let file = std::fs::File::open(&path)?;
        // SAFETY: `file` is an open namespace file; setns affects only this short-lived thread.
        if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        f()
    })
    .join()
    .map_err(|_| std::io::Error::other("the namespace thread panicked"))?
}

/// Counters of one direction, read from the kernel (for checking that a rule bites).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Counters {
    /// Bytes and packets the cap's queue sent, and packets it dropped (queue full).
    pub shaped_bytes: u64,
    pub shaped_packets: u64,
    pub queue_drops: u64,
    /// Packets the loss rule dropped, and the cut rule.
    pub lost: u64,
    pub cut: u64,
}

/// A ward's line to the bridge. See the module documentation.
pub struct Line {
    /// The ward's namespace (run its browser with [`super::browser::Browser::launch_in_netns`]).
    pub ward_ns: String,
    /// veth names: bridge side, ward side.
    bridge_dev: String,
    ward_dev: String,
    /// The relay's added delay per direction, in milliseconds.
    delay: Arc<[AtomicU64; 2]>,
    /// The relay and TCP forwarders; aborted on drop.
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Line {
    /// Builds the ward's namespace and the veth pair, and puts the delay relay in front of the
    /// bridge's UDP media port `media_port` (for the ward only). Call inside the runtime, from
    /// a process that [`enter_private_netns`] put in its own namespace, before the ward joins.
    pub async fn new(media_port: u16) -> Line {
        assert!(std::env::var("DIEMCAU_NETNS").is_ok(), "Line::new outside a private namespace would touch the host's network");
        let id = std::env::var("DIEMCAU_LINE_ID").unwrap_or_else(|_| std::process::id().to_string());
        let (ward_ns, bridge_dev, ward_dev) = (format!("dcw{id}"), format!("dcb{id}"), format!("dcw{id}"));
        let _ = Command::new("ip").args(["netns", "del", &ward_ns]).stderr(std::process::Stdio::null()).status();
        run("ip", &["netns", "add", &ward_ns]);
        let mut line = Line { ward_ns: ward_ns.clone(), bridge_dev: bridge_dev.clone(), ward_dev: ward_dev.clone(), delay: Arc::default(), tasks: Vec::new() };
        run("ip", &["-n", &ward_ns, "link", "set", "lo", "up"]);
        run("ip", &["link", "add", &bridge_dev, "type", "veth", "peer", "name", &ward_dev, "netns", &ward_ns]);
        run("ip", &["addr", "add", &format!("{BRIDGE_IP}/24"), "dev", &bridge_dev]);
        run("ip", &["link", "set", &bridge_dev, "up"]);
        run("ip", &["-n", &ward_ns, "addr", "add", &format!("{WARD_IP}/24"), "dev", &ward_dev]);
        run("ip", &["-n", &ward_ns, "link", "set", &ward_dev, "up"]);
        // Rule chains, empty until an impairment is set: loss and cut on each side's ingress
        // (the receiving end of its direction), and the relay's redirect.
        for (ns, dev) in [(None, &bridge_dev), (Some(ward_ns.as_str()), &ward_dev)] {
            nft(ns, &format!("table netdev dcline {{\n chain rx {{\n  type filter hook ingress device \"{dev}\" priority 0; policy accept;\n }}\n}}\n"));
        }
        let relay = UdpSocket::bind((BRIDGE_IP, 0)).await.expect("relay socket");
        let relay_port = relay.local_addr().unwrap().port();
        nft(
            None,
            &format!(
                "table ip dcline_nat {{\n chain pre {{\n  type nat hook prerouting priority -100; policy accept;\n  iifname \"{bridge_dev}\" udp dport {media_port} counter redirect to :{relay_port}\n }}\n}}\n"
            ),
        );
        line.tasks.push(tokio::spawn(relay_loop(relay, SocketAddr::from((BRIDGE_IP, media_port)), line.delay.clone())));
        line
    }

    /// Forwards TCP `BRIDGE_IP:port` to `127.0.0.1:port` (the bridge's HTTPS listener, which the
    /// test harness binds to loopback), so the ward's page and WebSocket cross the line too.
    pub async fn expose_tcp(&mut self, port: u16) {
        let listener = TcpListener::bind((BRIDGE_IP, port)).await.expect("bind the forwarder on the bridge's line address");
        self.tasks.push(tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            while let Ok((mut inbound, _)) = listener.accept().await {
                connections.spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(("127.0.0.1", port)).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        }));
    }

    /// A UDP socket on the ward's side (`WARD_IP`, a free port), for checking the line
    /// without a browser.
    pub fn ward_udp(&self) -> std::net::UdpSocket {
        in_netns(&self.ward_ns, || std::net::UdpSocket::bind((WARD_IP, 0))).expect("a UDP socket in the ward's namespace")
    }

    /// The veth device that sends in `dir`, and the namespace it lives in.
    fn sender(&self, dir: Dir) -> (Option<&str>, &str) {
        match dir {
            Dir::Down => (None, &self.bridge_dev),
            Dir::Up => (Some(self.ward_ns.as_str()), &self.ward_dev),
        }
    }

    /// The namespace whose ingress receives `dir`.
    fn receiver(&self, dir: Dir) -> Option<&str> {
        match dir {
            Dir::Down => Some(self.ward_ns.as_str()),
            Dir::Up => None,
        }
    }

    fn tc(&self, ns: Option<&str>, args: &[&str]) {
        match ns {
            Some(ns) => run("ip", &[&["netns", "exec", ns, "tc"], args].concat()),
            None => run("tc", args),
        }
    }

    /// Caps `dir` to `kbit` kbit/s (every packet on the line, IP headers included): an htb
    /// class with a FIFO of ~200 ms at that rate; what does not fit is dropped.
    pub fn cap(&self, dir: Dir, kbit: u32) {
        let (ns, dev) = self.sender(dir);
        self.uncap(dir);
        let limit = (kbit as u64 * 1000 / 8 / 5).max(3000).to_string();
        let rate = format!("{kbit}kbit");
        self.tc(ns, &["qdisc", "add", "dev", dev, "root", "handle", "1:", "htb", "default", "10"]);
        self.tc(ns, &["class", "add", "dev", dev, "parent", "1:", "classid", "1:10", "htb", "rate", &rate, "ceil", &rate, "burst", "4k", "cburst", "4k"]);
        self.tc(ns, &["qdisc", "add", "dev", dev, "parent", "1:10", "handle", "10:", "bfifo", "limit", &limit]);
    }

    /// Removes the cap on `dir` (the veth's default qdisc again).
    pub fn uncap(&self, dir: Dir) {
        let (ns, dev) = self.sender(dir);
        let mut args = vec!["tc", "qdisc", "del", "dev", dev, "root"];
        if let Some(ns) = ns {
            args.splice(0..0, ["ip", "netns", "exec", ns]);
        }
        let _ = Command::new(args[0]).args(&args[1..]).stderr(std::process::Stdio::null()).status();
    }

    pub fn cap_down(&self, kbit: u32) {
        self.cap(Dir::Down, kbit)
    }

    pub fn cap_up(&self, kbit: u32) {
        self.cap(Dir::Up, kbit)
    }

    /// Drops `pct` % of the IPv4 packets (media and signalling alike) going `dir`, at random;
    /// 0 removes the rule.
    pub fn loss(&self, dir: Dir, pct: u32) {
        assert!(pct <= 100);
        self.delete_rules(dir, "loss");
        if pct > 0 {
            self.add_rule(dir, &format!("meta protocol ip numgen random mod 100 < {pct} counter drop comment \"loss\""));
        }
    }

    pub fn loss_down(&self, pct: u32) {
        self.loss(Dir::Down, pct)
    }

    pub fn loss_up(&self, pct: u32) {
        self.loss(Dir::Up, pct)
    }

    /// Holds every UDP packet going `dir` for `ms` more milliseconds (the relay; order kept).
    pub fn delay(&self, dir: Dir, ms: u64) {
        self.delay[dir as usize].store(ms, Ordering::Relaxed);
    }

    pub fn delay_down(&self, ms: u64) {
        self.delay(Dir::Down, ms)
    }

    /// Drops all UDP going `dir` until [`Line::restore`] (TCP, i.e. signalling, stays up).
    pub fn cut(&self, dir: Dir) {
        self.delete_rules(dir, "cut");
        self.add_rule(dir, "meta protocol ip ip protocol udp counter drop comment \"cut\"");
    }

    /// Ends every cut.
    pub fn restore(&self) {
        for dir in [Dir::Down, Dir::Up] {
            self.delete_rules(dir, "cut");
        }
    }

    /// Removes every impairment, both ways: an unshaped line again.
    pub fn clear(&self) {
        for dir in [Dir::Down, Dir::Up] {
            self.uncap(dir);
            self.delete_rules(dir, "loss");
            self.delete_rules(dir, "cut");
            self.delay(dir, 0);
        }
    }

    fn add_rule(&self, dir: Dir, rule: &str) {
        nft(self.receiver(dir), &format!("add rule netdev dcline rx {rule}\n"));
    }

    fn nft_list(&self, dir: Dir) -> String {
        let mut args = vec!["nft", "-a", "list", "chain", "netdev", "dcline", "rx"];
        if let Some(ns) = self.receiver(dir) {
            args.splice(0..0, ["ip", "netns", "exec", ns]);
        }
        output(args[0], &args[1..])
    }

    fn delete_rules(&self, dir: Dir, tag: &str) {
        for line in self.nft_list(dir).lines().filter(|l| l.contains(&format!("comment \"{tag}\""))) {
            if let Some(handle) = line.rsplit("# handle ").next().map(str::trim) {
                nft(self.receiver(dir), &format!("delete rule netdev dcline rx handle {handle}\n"));
            }
        }
    }

    /// What the kernel counted for `dir` so far (queue and rules as they are now: a rule or
    /// a queue removed takes its counters with it).
    pub fn counters(&self, dir: Dir) -> Counters {
        let mut c = Counters::default();
        let (ns, dev) = self.sender(dir);
        let mut args = vec!["tc", "-s", "qdisc", "show", "dev", dev];
        if let Some(ns) = ns {
            args.splice(0..0, ["ip", "netns", "exec", ns]);
        }
        let qdisc = output(args[0], &args[1..]);
        // " Sent 12345 bytes 67 pkt (dropped 8, overlimits 9 requeues 0)" under "qdisc bfifo 10:"
        if let Some(fifo) = qdisc.split("qdisc bfifo 10:").nth(1) {
            let words: Vec<&str> = fifo.split_whitespace().collect();
            let after =
                |w: &str| words.iter().position(|x| *x == w).and_then(|i| words.get(i + 1)).map(|v| v.trim_end_matches(',').parse().unwrap_or(0)).unwrap_or(0);
            c.shaped_bytes = after("Sent");
            c.shaped_packets = words.iter().position(|x| *x == "bytes").and_then(|i| words.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(0);
            c.queue_drops = after("(dropped");
        }
        for l in self.nft_list(dir).lines() {
            let packets = l.split("counter packets ").nth(1).and_then(|r| r.split_whitespace().next()).and_then(|v| v.parse().ok()).unwrap_or(0);
            if l.contains("comment \"loss\"") {
                c.lost += packets;
            } else if l.contains("comment \"cut\"") {
                c.cut += packets;
            }
        }
        c
    }
}

impl Drop for Line {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
        // Deleting the ward's namespace deletes the pair (both ends) and the ward's rules;
        // the bridge side's tables go with the bridge's private namespace, but a Line may be
        // dropped before that namespace is, so remove them here too.
        let _ = Command::new("ip").args(["netns", "del", &self.ward_ns]).status();
        let _ = Command::new("nft").args(["delete", "table", "netdev", "dcline"]).stderr(std::process::Stdio::null()).status();
        let _ = Command::new("nft").args(["delete", "table", "ip", "dcline_nat"]).stderr(std::process::Stdio::null()).status();
    }
}

/// The delay relay: one upstream socket per ward address, packets held `delay[dir]` ms each
/// way (read per packet, so a change applies at once; a packet never overtakes the one
/// before it).
async fn relay_loop(listen: UdpSocket, target: SocketAddr, delay: Arc<[AtomicU64; 2]>) {
    let listen = Arc::new(listen);
    let mut flows: std::collections::HashMap<SocketAddr, tokio::sync::mpsc::Sender<(Instant, Vec<u8>)>> = Default::default();
    let mut buf = vec![0u8; 65536];
    // Dropped (and so aborted) with this loop when the Line aborts it.
    let mut children = tokio::task::JoinSet::new();
    loop {
        let Ok((n, from)) = listen.recv_from(&mut buf).await else { break };
        let up = match flows.get(&from) {
            Some(tx) => tx.clone(),
            None => {
                let Ok(upstream) = UdpSocket::bind((BRIDGE_IP, 0)).await else { continue };
                if upstream.connect(target).await.is_err() {
                    continue;
                }
                let upstream = Arc::new(upstream);
                let (up_tx, up_rx) = tokio::sync::mpsc::channel(4096);
                let (down_tx, down_rx) = tokio::sync::mpsc::channel(4096);
                children.spawn(delayed_sender(up_rx, upstream.clone(), None));
                children.spawn(delayed_sender(down_rx, listen.clone(), Some(from)));
                let (upstream_rx, delay) = (upstream.clone(), delay.clone());
                children.spawn(async move {
                    let mut buf = vec![0u8; 65536];
                    while let Ok(n) = upstream_rx.recv(&mut buf).await {
                        let due = Instant::now() + Duration::from_millis(delay[Dir::Down as usize].load(Ordering::Relaxed));
                        // A full queue (a stalled relay) drops, as a full router queue would.
                        let _ = down_tx.try_send((due, buf[..n].to_vec()));
                    }
                });
                flows.insert(from, up_tx.clone());
                up_tx
            }
        };
        let due = Instant::now() + Duration::from_millis(delay[Dir::Up as usize].load(Ordering::Relaxed));
        let _ = up.try_send((due, buf[..n].to_vec()));
    }
}

/// Sends each queued packet at its due time: on `socket`'s connected peer, or to `to`.
async fn delayed_sender(mut rx: tokio::sync::mpsc::Receiver<(Instant, Vec<u8>)>, socket: Arc<UdpSocket>, to: Option<SocketAddr>) {
    while let Some((due, data)) = rx.recv().await {
        tokio::time::sleep_until(due.into()).await;
        let _ = match to {
            Some(to) => socket.send_to(&data, to).await,
            None => socket.send(&data).await,
        };
    }
}
