//! The remote candidate type as the bridge sees it (host, srflx, prflx, relay), for the
//! technicians' page. ICE-lite needs none of the browser's candidates to connect, but the
//! ones it trickles say what the address its checks come from is: a TURN relay's address, a
//! NAT's, or the machine's own. An address no candidate named is peer-reflexive.

use std::collections::HashMap;
use std::net::SocketAddr;

use crate::peer::budget::MAX_CANDIDATES;

#[derive(Debug, Default, Clone)]
pub struct RemoteCandidates {
    /// Address → (type, over TCP).
    by_addr: HashMap<SocketAddr, (String, bool)>,
}

impl RemoteCandidates {
    /// Remembers one trickled candidate (`candidate:<foundation> <component> <udp|tcp>
    /// <priority> <address> <port> typ <type> …`, with or without `a=`); others are ignored.
    /// False when the site has [`MAX_CANDIDATES`] already and this one is refused.
    pub fn add(&mut self, candidate: &str) -> bool {
        let Some((addr, typ, tcp)) = parse(candidate) else { return true };
        if self.by_addr.len() < MAX_CANDIDATES || self.by_addr.contains_key(&addr) {
            self.by_addr.insert(addr, (typ.to_owned(), tcp));
            return true;
        }
        false
    }

    /// The type of the candidate `addr` belongs to. Over ICE-TCP the browser's port is the
    /// connection's own (its candidates say port 9), so the address alone decides.
    pub fn type_of(&self, addr: SocketAddr, tcp: bool) -> &str {
        if let Some((typ, _)) = self.by_addr.get(&addr) {
            return typ;
        }
        let same_ip = self.by_addr.iter().find(|(a, (_, t))| tcp && *t && a.ip() == addr.ip());
        same_ip.map_or("prflx", |(_, (typ, _))| typ.as_str())
    }
}

fn parse(candidate: &str) -> Option<(SocketAddr, &str, bool)> {
    let line = candidate.trim().trim_start_matches("a=").strip_prefix("candidate:")?;
    let fields: Vec<&str> = line.split_ascii_whitespace().collect();
    let (protocol, ip, port) = (fields.get(2)?, fields.get(4)?, fields.get(5)?);
    let typ = fields.iter().position(|f| *f == "typ").and_then(|i| fields.get(i + 1))?;
    let addr = SocketAddr::new(ip.parse().ok()?, port.parse().ok()?);
    Some((addr, typ, protocol.eq_ignore_ascii_case("tcp")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn the_address_checks_come_from_names_its_candidate_type() {
        let mut c = RemoteCandidates::default();
        c.add("candidate:1 1 udp 2122260223 192.168.1.20 54321 typ host generation 0 ufrag abcd");
        c.add("a=candidate:2 1 udp 1686052607 203.0.113.7 40000 typ srflx raddr 192.168.1.20 rport 54321");
        c.add("candidate:3 1 udp 41885439 198.51.100.2 61000 typ relay raddr 203.0.113.7 rport 40000");
        assert_eq!(c.type_of(addr("192.168.1.20:54321"), false), "host");
        assert_eq!(c.type_of(addr("203.0.113.7:40000"), false), "srflx");
        assert_eq!(c.type_of(addr("198.51.100.2:61000"), false), "relay");
        assert_eq!(c.type_of(addr("203.0.113.7:40001"), false), "prflx", "a NAT's other mapping");
    }

    #[test]
    fn over_tcp_the_browsers_own_port_is_not_in_its_candidate() {
        let mut c = RemoteCandidates::default();
        c.add("candidate:4 1 tcp 1518280447 10.0.0.5 9 typ host tcptype active generation 0");
        assert_eq!(c.type_of(addr("10.0.0.5:51234"), true), "host");
        assert_eq!(c.type_of(addr("10.0.0.5:51234"), false), "prflx");
    }

    #[test]
    fn what_is_not_a_candidate_is_ignored() {
        let mut c = RemoteCandidates::default();
        for junk in ["", "candidate:", "candidate:1 1 udp 1 not-an-ip 5 typ host", "candidate:1 1 udp 1 1.2.3.4 5", "a=end-of-candidates"] {
            assert!(c.add(junk), "junk is ignored, not counted as over the cap");
        }
        assert!(c.by_addr.is_empty());
        let refused = (0..(MAX_CANDIDATES as u16 + 10)).filter(|i| !c.add(&format!("candidate:1 1 udp 1 10.0.0.1 {} typ host", 1000 + i))).count();
        assert_eq!(c.by_addr.len(), MAX_CANDIDATES);
        assert_eq!(refused, 10, "the candidates over the cap are refused, and said to be");
    }
}
