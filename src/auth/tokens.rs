//! Session tokens and join tickets. Pure: time and randomness are passed in.
//!
//! A **token** is the bearer credential of the REST API (and of the pages' cookie): issued
//! after a key or password check, valid while used at least every [`TOKEN_IDLE_MS`] and never
//! longer than [`TOKEN_MAX_MS`]. A **ticket** admits one WebSocket `join` of one site within
//! [`TICKET_MS`]; using it twice is a replay. Only SHA-256 digests of either are held, so a
//! memory dump or the database does not give out usable credentials. Expired and used
//! entries are remembered a while, so their holders are told "expired" or "replayed" rather
//! than "invalid".

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;

/// Defaults: a token lives 30 min without use, 12 h at most; a ticket 60 s.
pub(crate) const TOKEN_IDLE_MS: i64 = 30 * 60_000;
pub(crate) const TOKEN_MAX_MS: i64 = 12 * 3_600_000;
pub(crate) const TICKET_MS: i64 = 60_000;
/// How long an expired or used credential is still recognised.
const REMEMBER_MS: i64 = 3_600_000;

/// Who may do what: decided by config (sites) or by the user table (people).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Role {
    /// HQ's site, or a person who chairs.
    Chair,
    /// A ward's bridge point.
    Site,
    Technician,
    /// A person of the secretariat: the records only (past conferences, minutes, recordings).
    Secretariat,
}

impl Role {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Role::Chair => "chair",
            Role::Site => "site",
            Role::Technician => "technician",
            Role::Secretariat => "secretariat",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<Role> {
        match s {
            "chair" => Some(Role::Chair),
            "site" => Some(Role::Site),
            "technician" => Some(Role::Technician),
            "secretariat" => Some(Role::Secretariat),
            _ => None,
        }
    }
}

impl From<crate::domain::SiteRole> for Role {
    /// A site signs in with its key under the role its config gives it.
    fn from(role: crate::domain::SiteRole) -> Role {
        match role {
            crate::domain::SiteRole::Chair => Role::Chair,
            crate::domain::SiteRole::Site => Role::Site,
        }
    }
}

/// The holder of a credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Principal {
    pub(crate) role: Role,
    /// A site id (for a site's session) or a user name.
    pub(crate) subject: String,
    /// True when the subject is a site (authenticated by its key), not a person.
    pub(crate) is_site: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TokenError {
    /// Never issued (forged, mistyped, or forgotten long ago).
    Invalid,
    Expired,
    /// A ticket presented a second time.
    Replayed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Token,
    Ticket { used: bool },
}

#[derive(Debug, Clone)]
struct Entry {
    principal: Principal,
    kind: Kind,
    last_used_ms: i64,
    /// Absolute end of validity.
    expires_ms: i64,
}

impl Entry {
    fn valid_until(&self, idle_ms: i64) -> i64 {
        match self.kind {
            Kind::Token => (self.last_used_ms + idle_ms).min(self.expires_ms),
            Kind::Ticket { .. } => self.expires_ms,
        }
    }
}

/// A credential just issued: the secret itself (given to the client once) and its digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Issued {
    pub(crate) secret: String,
    pub(crate) digest: [u8; 32],
    pub(crate) expires_ms: i64,
}

pub(crate) fn digest(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

pub(crate) struct Tokens {
    entries: HashMap<[u8; 32], Entry>,
    idle_ms: i64,
    ticket_ms: i64,
}

impl Default for Tokens {
    fn default() -> Self {
        Tokens::new(TOKEN_IDLE_MS, TICKET_MS)
    }
}

impl Tokens {
    /// Tokens expire after `idle_ms` without use, tickets after `ticket_ms`.
    pub(crate) fn new(idle_ms: i64, ticket_ms: i64) -> Self {
        Tokens { entries: HashMap::new(), idle_ms: idle_ms.max(1), ticket_ms: ticket_ms.max(1) }
    }

    /// A REST token for `principal`; `random` must come from a cryptographic source.
    pub(crate) fn issue_token(&mut self, principal: Principal, random: [u8; 32], now_ms: i64) -> Issued {
        self.insert(principal, Kind::Token, "dct_", random, now_ms, now_ms + TOKEN_MAX_MS)
    }

    /// A one-use WebSocket join ticket for `principal` (a site).
    pub(crate) fn issue_ticket(&mut self, principal: Principal, random: [u8; 32], now_ms: i64) -> Issued {
        self.insert(principal, Kind::Ticket { used: false }, "dcj_", random, now_ms, now_ms + self.ticket_ms)
    }

    /// Takes back a token saved before a restart (its idle time starts again now).
    pub(crate) fn restore(&mut self, digest: [u8; 32], principal: Principal, expires_ms: i64, now_ms: i64) {
        self.entries.insert(digest, Entry { principal, kind: Kind::Token, last_used_ms: now_ms, expires_ms });
    }

    fn insert(&mut self, principal: Principal, kind: Kind, prefix: &str, random: [u8; 32], now_ms: i64, expires_ms: i64) -> Issued {
        let secret = format!("{prefix}{}", hex::encode(random));
        let digest = digest(&secret);
        self.entries.insert(digest, Entry { principal, kind, last_used_ms: now_ms, expires_ms });
        Issued { secret, digest, expires_ms }
    }

    /// Checks a REST token and extends its idle time.
    pub(crate) fn check(&mut self, token: &str, now_ms: i64) -> Result<Principal, TokenError> {
        let idle = self.idle_ms;
        let e = self.entries.get_mut(&digest(token)).filter(|e| e.kind == Kind::Token).ok_or(TokenError::Invalid)?;
        if now_ms >= e.valid_until(idle) {
            return Err(TokenError::Expired);
        }
        e.last_used_ms = now_ms;
        Ok(e.principal.clone())
    }

    /// Uses a join ticket: valid once, within its minute.
    pub(crate) fn redeem(&mut self, ticket: &str, now_ms: i64) -> Result<Principal, TokenError> {
        let e = self.entries.get_mut(&digest(ticket)).ok_or(TokenError::Invalid)?;
        match e.kind {
            Kind::Token => Err(TokenError::Invalid),
            Kind::Ticket { used: true } => Err(TokenError::Replayed),
            Kind::Ticket { used: false } if now_ms >= e.expires_ms => Err(TokenError::Expired),
            Kind::Ticket { used: false } => {
                e.kind = Kind::Ticket { used: true };
                Ok(e.principal.clone())
            }
        }
    }

    /// Ends one token (logout). Returns its digest if it existed.
    pub(crate) fn revoke(&mut self, token: &str) -> Option<[u8; 32]> {
        let d = digest(token);
        self.entries.remove(&d).map(|_| d)
    }

    /// Ends every token and ticket of a site or user (its key rotated, the user removed).
    pub(crate) fn revoke_subject(&mut self, subject: &str, is_site: bool) -> usize {
        let before = self.entries.len();
        self.entries.retain(|_, e| !(e.principal.subject == subject && e.principal.is_site == is_site));
        before - self.entries.len()
    }

    /// Forgets what expired more than an hour ago.
    pub(crate) fn purge(&mut self, now_ms: i64) {
        let idle = self.idle_ms;
        self.entries.retain(|_, e| now_ms < e.valid_until(idle) + REMEMBER_MS);
    }

    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site(id: &str) -> Principal {
        Principal { role: Role::Site, subject: id.into(), is_site: true }
    }

    #[test]
    fn a_token_lives_while_it_is_used_but_never_past_its_maximum() {
        let mut t = Tokens::default();
        let issued = t.issue_token(site("hang-gai"), [7; 32], 0);
        assert!(issued.secret.starts_with("dct_") && issued.secret.len() == 68);
        assert_eq!(t.check(&issued.secret, TOKEN_IDLE_MS - 1).unwrap().subject, "hang-gai");
        // Used just in time: the idle window starts again.
        assert!(t.check(&issued.secret, 2 * TOKEN_IDLE_MS - 2).is_ok());
        assert_eq!(t.check(&issued.secret, 4 * TOKEN_IDLE_MS), Err(TokenError::Expired));
        // Kept alive by use, it still ends at its maximum.
        let fresh = t.issue_token(site("hq"), [8; 32], 0);
        let mut now = 0;
        while now < TOKEN_MAX_MS - TOKEN_IDLE_MS {
            now += TOKEN_IDLE_MS / 2;
            assert!(t.check(&fresh.secret, now).is_ok());
        }
        assert_eq!(t.check(&fresh.secret, TOKEN_MAX_MS), Err(TokenError::Expired));
    }

    #[test]
    fn forged_tokens_are_invalid_and_tickets_are_not_tokens() {
        let mut t = Tokens::default();
        let ticket = t.issue_ticket(site("hang-gai"), [1; 32], 0);
        assert_eq!(t.check("dct_0000", 1), Err(TokenError::Invalid));
        assert_eq!(t.check(&ticket.secret, 1), Err(TokenError::Invalid), "a ticket is no REST token");
        let token = t.issue_token(site("hang-gai"), [2; 32], 0);
        assert_eq!(t.redeem(&token.secret, 1), Err(TokenError::Invalid), "a token is no ticket");
        // A near miss of a real token is still invalid.
        let mut forged = token.secret.clone();
        forged.replace_range(10..11, if &forged[10..11] == "0" { "1" } else { "0" });
        assert_eq!(t.check(&forged, 1), Err(TokenError::Invalid));
    }

    #[test]
    fn a_ticket_admits_once_within_its_minute() {
        let mut t = Tokens::default();
        let a = t.issue_ticket(site("hang-gai"), [3; 32], 0);
        assert_eq!(t.redeem(&a.secret, TICKET_MS - 1).unwrap().subject, "hang-gai");
        assert_eq!(t.redeem(&a.secret, TICKET_MS - 1), Err(TokenError::Replayed));
        let b = t.issue_ticket(site("hang-gai"), [4; 32], 0);
        assert_eq!(t.redeem(&b.secret, TICKET_MS), Err(TokenError::Expired));
    }

    #[test]
    fn revoking_a_subject_ends_its_tokens_only() {
        let mut t = Tokens::default();
        let a = t.issue_token(site("hang-gai"), [5; 32], 0);
        let b = t.issue_token(site("hq"), [6; 32], 0);
        let person = t.issue_token(Principal { role: Role::Technician, subject: "hang-gai".into(), is_site: false }, [9; 32], 0);
        assert_eq!(t.revoke_subject("hang-gai", true), 1);
        assert_eq!(t.check(&a.secret, 1), Err(TokenError::Invalid));
        assert!(t.check(&b.secret, 1).is_ok());
        assert!(t.check(&person.secret, 1).is_ok(), "a user named like a site is not that site");
    }

    #[test]
    fn expired_entries_are_remembered_for_an_hour_then_forgotten() {
        let mut t = Tokens::default();
        let a = t.issue_token(site("hq"), [1; 32], 0);
        t.purge(TOKEN_IDLE_MS + 1);
        assert_eq!(t.check(&a.secret, TOKEN_IDLE_MS + 1), Err(TokenError::Expired));
        t.purge(TOKEN_IDLE_MS + REMEMBER_MS);
        assert_eq!(t.check(&a.secret, TOKEN_IDLE_MS + REMEMBER_MS), Err(TokenError::Invalid));
        assert!(t.is_empty());
    }
}
