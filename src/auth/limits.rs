//! Limits that keep one broken or hostile client from hurting the meeting: messages per
//! second per socket, logins and joins per minute per address, sockets per address and per
//! site. Pure: time is passed in (ms); the owners (a session, the [`super::Auth`] gate) hold
//! the state.

use std::collections::HashMap;
use std::net::IpAddr;

/// Configured limits (`[limits]` in the config).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Limits {
    /// Sustained messages per second one socket may send.
    pub(crate) messages_per_second: f64,
    /// Messages one socket may send at once before the rate applies.
    pub(crate) message_burst: f64,
    /// Seconds in a row a socket may stay over its rate before it is closed.
    pub(crate) flood_strikes: u32,
    /// Key or password checks (sessions, logins) and joins per minute from one address.
    pub(crate) joins_per_minute: f64,
    /// Open WebSockets from one address.
    pub(crate) sockets_per_ip: usize,
    /// Open HTTPS connections (any, before sign-in too) from one address, and in all.
    pub(crate) connections_per_ip: usize,
    pub(crate) connections_total: usize,
    /// Sockets joined (or joining) as one site at a time.
    pub(crate) sockets_per_site: usize,
    /// A session token ends after this long without use (ms).
    pub(crate) token_idle_ms: i64,
    /// A join ticket must be used within this (ms).
    pub(crate) ticket_ms: i64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            messages_per_second: 50.0,
            message_burst: 100.0,
            flood_strikes: 3,
            joins_per_minute: 30.0,
            sockets_per_ip: 20,
            connections_per_ip: 64,
            connections_total: 4096,
            sockets_per_site: 3,
            token_idle_ms: super::tokens::TOKEN_IDLE_MS,
            ticket_ms: super::tokens::TICKET_MS,
        }
    }
}

/// A token bucket: `capacity` at once, refilled at `per_ms`.
#[derive(Debug, Clone)]
pub(crate) struct Bucket {
    capacity: f64,
    per_ms: f64,
    level: f64,
    at_ms: i64,
}

impl Bucket {
    pub(crate) fn new(capacity: f64, per_second: f64, now_ms: i64) -> Self {
        Bucket { capacity, per_ms: per_second / 1000.0, level: capacity, at_ms: now_ms }
    }

    /// When the bucket will be full again if nothing is taken.
    fn full_at(&self) -> i64 {
        self.at_ms + ((self.capacity - self.level) / self.per_ms.max(1e-12)).ceil() as i64
    }

    /// Takes one token if there is one.
    pub(crate) fn take(&mut self, now_ms: i64) -> bool {
        let elapsed = (now_ms - self.at_ms).max(0) as f64;
        self.level = (self.level + elapsed * self.per_ms).min(self.capacity);
        self.at_ms = now_ms;
        if self.level >= 1.0 {
            self.level -= 1.0;
            true
        } else {
            false
        }
    }
}

/// What to do with one incoming message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    Accept,
    /// Over the rate: drop it; `reply` on the first drop of each second (so a flood does not
    /// get a flood of replies back).
    Drop {
        reply: bool,
    },
    /// Over the rate for `flood_strikes` seconds in a row: close the socket.
    Close,
}

/// One socket's message rate.
#[derive(Debug, Clone)]
pub(crate) struct MessageRate {
    bucket: Bucket,
    strikes_allowed: u32,
    /// The current one-second window and whether it dropped anything.
    window: i64,
    dropped_in_window: bool,
    strikes: u32,
}

impl MessageRate {
    pub(crate) fn new(limits: &Limits, now_ms: i64) -> Self {
        MessageRate {
            bucket: Bucket::new(limits.message_burst, limits.messages_per_second, now_ms),
            strikes_allowed: limits.flood_strikes.max(1),
            window: now_ms / 1000,
            dropped_in_window: false,
            strikes: 0,
        }
    }

    pub(crate) fn on_message(&mut self, now_ms: i64) -> Verdict {
        let window = now_ms / 1000;
        if window != self.window {
            // A second with drops right after another counts; a quiet second forgives.
            self.strikes = if self.dropped_in_window && window == self.window + 1 { self.strikes } else { 0 };
            self.window = window;
            self.dropped_in_window = false;
        }
        if self.bucket.take(now_ms) {
            return Verdict::Accept;
        }
        let first = !self.dropped_in_window;
        if first {
            self.dropped_in_window = true;
            self.strikes += 1;
        }
        if self.strikes >= self.strikes_allowed {
            Verdict::Close
        } else {
            Verdict::Drop { reply: first }
        }
    }
}

/// Why a gate refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GateRefusal {
    TooManyJoins,
    TooManySockets,
}

/// Per-address and per-site counters, shared by every socket and login (behind one short
/// mutex in [`super::Auth`]).
#[derive(Debug, Default)]
pub(crate) struct Gate {
    limits: Limits,
    joins: HashMap<IpAddr, Bucket>,
    sockets: HashMap<IpAddr, usize>,
    site_sockets: HashMap<String, usize>,
}

impl Gate {
    pub(crate) fn new(limits: Limits) -> Self {
        Gate { limits, ..Default::default() }
    }

    /// A key or password check, or a join, from `ip`.
    pub(crate) fn attempt(&mut self, ip: IpAddr, now_ms: i64) -> Result<(), GateRefusal> {
        let (capacity, per_second) = (self.limits.joins_per_minute, self.limits.joins_per_minute / 60.0);
        let bucket = self.joins.entry(ip).or_insert_with(|| Bucket::new(capacity, per_second, now_ms));
        if bucket.take(now_ms) {
            Ok(())
        } else {
            Err(GateRefusal::TooManyJoins)
        }
    }

    pub(crate) fn open_socket(&mut self, ip: IpAddr) -> Result<(), GateRefusal> {
        let n = self.sockets.entry(ip).or_default();
        if *n >= self.limits.sockets_per_ip {
            return Err(GateRefusal::TooManySockets);
        }
        *n += 1;
        Ok(())
    }

    pub(crate) fn close_socket(&mut self, ip: IpAddr) {
        if let Some(n) = self.sockets.get_mut(&ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.sockets.remove(&ip);
            }
        }
    }

    pub(crate) fn enter_site(&mut self, site: &str) -> Result<(), GateRefusal> {
        let n = self.site_sockets.entry(site.to_string()).or_default();
        if *n >= self.limits.sockets_per_site {
            return Err(GateRefusal::TooManySockets);
        }
        *n += 1;
        Ok(())
    }

    pub(crate) fn leave_site(&mut self, site: &str) {
        if let Some(n) = self.site_sockets.get_mut(site) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.site_sockets.remove(site);
            }
        }
    }

    /// Forgets addresses whose join bucket is full again (idle), so the map stays small.
    pub(crate) fn purge(&mut self, now_ms: i64) {
        self.joins.retain(|_, b| b.full_at() > now_ms);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_a_burst_then_its_rate() {
        let mut b = Bucket::new(3.0, 10.0, 0);
        assert!(b.take(0) && b.take(0) && b.take(0));
        assert!(!b.take(0));
        assert!(!b.take(50), "half a token after 50 ms");
        assert!(b.take(100));
        assert!(b.take(10_000) && b.take(10_000) && b.take(10_000) && !b.take(10_000), "refills to capacity only");
    }

    #[test]
    fn a_socket_over_its_rate_is_told_once_a_second_and_closed_when_it_persists() {
        let limits = Limits { messages_per_second: 10.0, message_burst: 10.0, flood_strikes: 3, ..Limits::default() };
        let mut r = MessageRate::new(&limits, 0);
        let mut verdicts = Vec::new();
        // 100 messages a second for 3 seconds.
        for i in 0..300 {
            verdicts.push(r.on_message(i * 10));
            if verdicts.last() == Some(&Verdict::Close) {
                break;
            }
        }
        let replies = verdicts.iter().filter(|v| **v == Verdict::Drop { reply: true }).count();
        assert_eq!(replies, 2, "one reply in each of the first two seconds");
        assert_eq!(verdicts.last(), Some(&Verdict::Close), "closed in the third second");
        assert!(verdicts.len() > 200 && verdicts.len() < 300);
    }

    #[test]
    fn a_short_burst_is_forgiven() {
        let limits = Limits { messages_per_second: 10.0, message_burst: 10.0, flood_strikes: 2, ..Limits::default() };
        let mut r = MessageRate::new(&limits, 0);
        for _ in 0..15 {
            r.on_message(0); // one second with drops
        }
        assert_eq!(r.on_message(2500), Verdict::Accept, "a quiet second later");
        for _ in 0..30 {
            assert_ne!(r.on_message(2600), Verdict::Close, "the old strike was forgiven");
        }
        // Well-behaved traffic at the rate is never dropped.
        let mut r = MessageRate::new(&limits, 0);
        for i in 0..100 {
            assert_eq!(r.on_message(i * 100), Verdict::Accept);
        }
    }

    #[test]
    fn joins_per_address_and_sockets_per_address_and_site_are_bounded() {
        let ip: IpAddr = "10.0.0.7".parse().unwrap();
        let other: IpAddr = "10.0.0.8".parse().unwrap();
        let mut g = Gate::new(Limits { joins_per_minute: 3.0, sockets_per_ip: 2, sockets_per_site: 1, ..Limits::default() });
        assert!(g.attempt(ip, 0).is_ok() && g.attempt(ip, 0).is_ok() && g.attempt(ip, 0).is_ok());
        assert_eq!(g.attempt(ip, 0), Err(GateRefusal::TooManyJoins));
        assert!(g.attempt(other, 0).is_ok(), "another address has its own budget");
        assert!(g.attempt(ip, 20_000).is_ok(), "one more after a third of a minute");
        assert!(g.open_socket(ip).is_ok() && g.open_socket(ip).is_ok());
        assert_eq!(g.open_socket(ip), Err(GateRefusal::TooManySockets));
        g.close_socket(ip);
        assert!(g.open_socket(ip).is_ok());
        assert!(g.enter_site("hang-gai").is_ok());
        assert_eq!(g.enter_site("hang-gai"), Err(GateRefusal::TooManySockets));
        g.leave_site("hang-gai");
        assert!(g.enter_site("hang-gai").is_ok());
        g.purge(10 * 60_000);
        assert!(g.joins.is_empty(), "idle addresses are forgotten");
    }
}
