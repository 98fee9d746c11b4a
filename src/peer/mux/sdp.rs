//! What the browser must be told: the shared ports instead of each PC's label. Pure.
//!
//! Candidate grammar (RFC 8839 §5.1): `candidate:<foundation> <component> <transport>
//! <priority> <address> <port> typ <type> [raddr <a> rport <p>] [tcptype <t>] *(<ext> <v>)`.
//! Fields 4 and 5 (0-based) are address and port. A bridge bound to every interface
//! advertises each of its addresses: one candidate becomes several, each with its own
//! foundation and a slightly lower priority than the one before.

use std::net::{IpAddr, SocketAddr};

/// The addresses one PC has and the ones to advertise instead.
#[derive(Debug, Clone)]
pub struct Advertised {
    pub udp_label: Option<SocketAddr>,
    pub tcp_label: Option<SocketAddr>,
    /// Advertised addresses of the shared ports (the public IP behind 1:1 NAT, the bind IP, or
    /// every interface's address when bound to all).
    pub ips: Vec<IpAddr>,
    pub udp_port: u16,
    pub tcp_port: Option<u16>,
}

/// Rewrites one candidate (`candidate:...`, with or without the `a=` prefix):
/// * UDP host candidate on the PC's UDP label → one per advertised IP, on the shared UDP port.
/// * TCP `tcptype passive` on the PC's TCP label → the same on the shared TCP port.
/// * TCP `tcptype active` (port 9) and `so` → nothing: the server never dials out (the runtime
///   refuses `connect_tcp`) and a browser does not listen, so they are useless.
/// * Anything else (srflx/relay, or unknown) is returned unchanged.
pub(crate) fn advertise_candidate(candidate: &str, adv: &Advertised) -> Vec<String> {
    let f: Vec<&str> = candidate.split(' ').collect();
    if f.len() < 8 || f[6] != "typ" {
        return vec![candidate.to_owned()];
    }
    let addr: Option<SocketAddr> = match (f[4].parse::<IpAddr>(), f[5].parse::<u16>()) {
        (Ok(ip), Ok(port)) => Some(SocketAddr::new(ip, port)),
        _ => None,
    };
    let tcptype = f.iter().position(|x| *x == "tcptype").and_then(|i| f.get(i + 1)).copied();
    let port = match (f[2].to_ascii_lowercase().as_str(), tcptype) {
        ("udp", _) if f[7] == "host" && addr.is_some() && addr == adv.udp_label => adv.udp_port,
        ("tcp", Some("passive")) if addr.is_some() && addr == adv.tcp_label => match adv.tcp_port {
            Some(p) => p,
            None => return Vec::new(),
        },
        ("tcp", Some("active" | "so")) => return Vec::new(),
        _ => return vec![candidate.to_owned()],
    };
    let priority: u32 = f[3].parse().unwrap_or(0);
    adv.ips
        .iter()
        .enumerate()
        .map(|(i, ip)| {
            let mut g: Vec<String> = f.iter().map(|x| x.to_string()).collect();
            if i > 0 {
                // Another base address: its own foundation (the prefix keeps the `candidate:`).
                g[0] = format!("{}{i}", f[0]);
                g[3] = priority.saturating_sub((i as u32) << 8).to_string();
            }
            g[4] = ip.to_string();
            g[5] = port.to_string();
            g.join(" ")
        })
        .collect()
}

/// Applies [`advertise_candidate`] to every `a=candidate:` line; other lines unchanged.
pub fn advertise_sdp(sdp: &str, adv: &Advertised) -> String {
    let mut out = String::with_capacity(sdp.len());
    for line in sdp.split_inclusive('\n') {
        let body = line.trim_end_matches(['\r', '\n']);
        let eol = &line[body.len()..];
        match body.strip_prefix("a=") {
            Some(c) if c.starts_with("candidate:") => {
                for new in advertise_candidate(c, adv) {
                    out.push_str("a=");
                    out.push_str(&new);
                    out.push_str(eol);
                }
            }
            _ => out.push_str(line),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn adv() -> Advertised {
        Advertised {
            udp_label: Some("127.0.0.1:40001".parse().unwrap()),
            tcp_label: Some("127.0.0.1:40002".parse().unwrap()),
            ips: vec!["203.0.113.7".parse().unwrap()],
            udp_port: 3478,
            tcp_port: Some(443),
        }
    }

    #[test]
    fn udp_host_gets_shared_port_and_ip() {
        let c = "candidate:1 1 udp 2130706431 127.0.0.1 40001 typ host";
        assert_eq!(advertise_candidate(c, &adv()), ["candidate:1 1 udp 2130706431 203.0.113.7 3478 typ host"]);
    }

    #[test]
    fn tcp_passive_rewritten_active_dropped() {
        let p = "candidate:2 1 tcp 1671430143 127.0.0.1 40002 typ host tcptype passive";
        assert_eq!(advertise_candidate(p, &adv()), ["candidate:2 1 tcp 1671430143 203.0.113.7 443 typ host tcptype passive"]);
        let a = "candidate:3 1 tcp 1671430143 127.0.0.1 9 typ host tcptype active";
        assert!(advertise_candidate(a, &adv()).is_empty());
    }

    #[test]
    fn other_candidates_untouched_and_sdp_lines_kept() {
        let other = "candidate:4 1 udp 1 10.0.0.1 5000 typ host";
        assert_eq!(advertise_candidate(other, &adv()), [other]);
        let sdp = "v=0\r\na=candidate:1 1 udp 2130706431 127.0.0.1 40001 typ host\r\n\
                   a=candidate:3 1 tcp 1 127.0.0.1 9 typ host tcptype active\r\na=end-of-candidates\r\n";
        assert_eq!(advertise_sdp(sdp, &adv()), "v=0\r\na=candidate:1 1 udp 2130706431 203.0.113.7 3478 typ host\r\na=end-of-candidates\r\n");
    }

    #[test]
    fn every_interface_address_gets_its_own_candidate() {
        let mut a = adv();
        a.ips = vec!["10.0.0.5".parse().unwrap(), "192.168.1.5".parse().unwrap()];
        let c = "candidate:1 1 udp 2130706431 127.0.0.1 40001 typ host";
        assert_eq!(
            advertise_candidate(c, &a),
            ["candidate:1 1 udp 2130706431 10.0.0.5 3478 typ host", "candidate:11 1 udp 2130706175 192.168.1.5 3478 typ host"]
        );
    }
}
