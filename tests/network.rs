//! Media addressing: every site's media on the one configured UDP port (and ICE-TCP on the
//! one TCP port) — what a firewall rule names; the configured public IP (1:1 NAT) is what the
//! bridge advertises in its ICE candidates, with the shared port; media binds to the listen IP.

mod common;

use common::sim::Sim;
use common::{scratch_dir, wait_until, TestBridge};
use std::process::Command;
use std::time::Duration;

/// Two free ports on 127.0.0.1 (UDP and TCP), for a config that names its media ports.
fn free_ports() -> (u16, u16) {
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    (udp, tcp)
}

/// The local ports of a process's sockets, from `ss` (`-ua`: every UDP socket, `-tl`:
/// listening TCP sockets).
fn ports_of(pid: u32, kind: &str) -> Vec<u16> {
    let out = Command::new("ss").args([kind, "-n", "-p", "-H"]).output().expect("ss (iproute2)");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains(&format!("pid={pid},")))
        .filter_map(|l| l.split_whitespace().nth(3)?.rsplit(':').next()?.parse().ok())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn six_sites_use_the_one_configured_udp_port_and_nothing_else() {
    six_sites_use_the_one_configured_udp_port_and_nothing_else_on(None).await;
}

/// The same on webrtc-rs PeerConnections, which bind sockets of their own that the shared
/// port's runtime must close.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_on_the_webrtc_engine() {
    six_sites_use_the_one_configured_udp_port_and_nothing_else_on(Some("webrtc")).await;
}

async fn six_sites_use_the_one_configured_udp_port_and_nothing_else_on(engine: Option<&str>) {
    let (udp, tcp) = free_ports();
    let (config, data) = TestBridge::config_with("");
    let text = std::fs::read_to_string(&config).unwrap().replace("public_ip = \"\"", &format!("public_ip = \"\"\nudp_port = {udp}\ntcp_port = {tcp}"));
    std::fs::write(&config, text).unwrap();
    let config = match engine {
        Some(engine) => common::with_engine(config, &data, engine),
        None => config,
    };
    let bridge = TestBridge::start_with(config, data);
    let mut sims = Vec::new();
    for site in ["hq", "cua-nam", "hang-bai", "hang-gai", "trang-tien", "hang-dao"] {
        sims.push(Sim::join(&bridge.cert_pem(), bridge.port, site, bridge.key(site)).await);
    }
    wait_until(Duration::from_secs(30), "every site to receive HQ", || async { sims[1..].iter().all(|s| s.received("hq", "audio") > 10).then_some(()) }).await;
    let udp_ports = ports_of(bridge.pid(), "-ua");
    assert_eq!(udp_ports, vec![udp], "the bridge's only UDP socket is the configured media port ({udp_ports:?})");
    let mut tcp_ports = ports_of(bridge.pid(), "-tl");
    tcp_ports.sort();
    let mut expected = vec![bridge.port, tcp];
    expected.sort();
    assert_eq!(tcp_ports, expected, "listening: HTTPS and ICE-TCP only");
    for sim in &sims {
        assert!(
            candidates(sim).iter().all(|c| c.contains(&format!(" {udp} typ host")) || c.contains(&format!(" {tcp} typ host tcptype passive"))),
            "{:?}",
            candidates(sim)
        );
    }
}

fn candidates(sim: &Sim) -> Vec<String> {
    sim.messages.lock().unwrap().iter().filter(|m| m["type"] == "candidate").filter_map(|m| m["candidate"]["candidate"].as_str().map(str::to_string)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configured_public_ip_is_advertised_in_server_candidates() {
    let data = scratch_dir("nat");
    let config = data.join("bridge.toml");
    let default = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config/default.toml")).unwrap();
    std::fs::write(&config, default.replace("public_ip = \"\"", "public_ip = \"203.0.113.7\"")).unwrap();
    let bridge = TestBridge::start_with(config, data);
    let sim = Sim::join(&bridge.cert_pem(), bridge.port, "hang-gai", bridge.key("hang-gai")).await;
    let found = wait_until(Duration::from_secs(15), "a server candidate", || async {
        let c = candidates(&sim);
        (!c.is_empty()).then_some(c)
    })
    .await;
    assert!(found.iter().all(|c| c.contains(" 203.0.113.7 ") && c.contains("typ host")), "{found:?}");
    assert!(!found.iter().any(|c| c.contains("tcptype active")), "no useless active TCP candidates: {found:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_nat_settings_candidates_carry_the_listen_ip() {
    let bridge = TestBridge::start_default();
    let sim = Sim::join(&bridge.cert_pem(), bridge.port, "hq", bridge.key("hq")).await;
    let found = wait_until(Duration::from_secs(15), "a server candidate", || async {
        let c = candidates(&sim);
        (!c.is_empty()).then_some(c)
    })
    .await;
    assert!(found.iter().all(|c| c.contains(" 127.0.0.1 ")), "{found:?}");
    wait_until(Duration::from_secs(15), "media to connect on loopback", || async { sim.is_connected().then_some(()) }).await;
}
