//! Who is asking, and may they: the only place credentials are checked.
//!
//! A site proves itself with its key (`POST /api/session`), a person with a name and password
//! (`POST /api/login`); either gets a short-lived REST token, and a site also a one-use
//! ticket for its WebSocket `join`. [`Auth`] owns the token table and the per-address gate
//! (joins per minute, sockets per address and per site) behind one short mutex; the Argon2
//! checks run on the [`verifier`]'s few lanes, so a burst of sign-ins leaves cores to the
//! media. A watcher notices when `diemcau keys rotate` or `diemcau user remove` changed the
//! credentials under a running bridge and ends the sessions that used the old ones. Nothing here logs a key, password, token or ticket.

pub(crate) mod keys;
pub(crate) mod limits;
pub(crate) mod tokens;
pub(crate) mod turn;
pub(crate) mod verifier;

use crate::config::Settings;
use crate::store::{now_ms, SessionRecord, Store, StoreError};
use limits::{Gate, GateRefusal, Limits};
use rand::RngCore;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokens::{Issued, TokenError, Tokens};
pub(crate) use tokens::{Principal, Role};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// A refused credential or request, with the stable code clients see.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum AuthError {
    #[error("no site with that id")]
    SiteUnknown,
    #[error("the key does not match this site; use the site's join link")]
    BadKey,
    #[error("wrong user name or password")]
    BadCredentials,
    #[error("sign in first: no session token")]
    NoToken,
    #[error("the session token is not valid")]
    TokenInvalid,
    #[error("the session has expired; sign in again")]
    TokenExpired,
    #[error("this join ticket was already used; get a new one")]
    TicketReplayed,
    #[error("this role may not do that")]
    Forbidden,
    #[error("too many attempts from this address; wait a minute")]
    TooManyJoins,
    #[error("too many connections from this address or for this site")]
    TooManySockets,
    #[error("too many sign-ins at once; try again in a moment")]
    Busy,
}

impl AuthError {
    pub(crate) fn code(self) -> &'static str {
        match self {
            AuthError::SiteUnknown => "site_unknown",
            AuthError::BadKey => "bad_key",
            AuthError::BadCredentials => "bad_credentials",
            AuthError::NoToken => "token_missing",
            AuthError::TokenInvalid => "token_invalid",
            AuthError::TokenExpired => "token_expired",
            AuthError::TicketReplayed => "ticket_replayed",
            AuthError::Forbidden => "forbidden",
            AuthError::TooManyJoins => "too_many_joins",
            AuthError::TooManySockets => "too_many_sockets",
            AuthError::Busy => "busy",
        }
    }
}

impl From<TokenError> for AuthError {
    fn from(e: TokenError) -> Self {
        match e {
            TokenError::Invalid => AuthError::TokenInvalid,
            TokenError::Expired => AuthError::TokenExpired,
            TokenError::Replayed => AuthError::TicketReplayed,
        }
    }
}

impl From<GateRefusal> for AuthError {
    fn from(e: GateRefusal) -> Self {
        match e {
            GateRefusal::TooManyJoins => AuthError::TooManyJoins,
            GateRefusal::TooManySockets => AuthError::TooManySockets,
        }
    }
}

/// What a successful key check gives a site's page.
#[derive(Debug, Clone)]
pub(crate) struct SiteSession {
    pub(crate) principal: Principal,
    pub(crate) ticket: Issued,
    pub(crate) token: Issued,
}

struct State {
    tokens: Tokens,
    gate: Gate,
}

pub(crate) struct Auth {
    settings: Arc<Settings>,
    store: Store,
    state: Mutex<State>,
    verifier: verifier::Verifier,
}

fn random() -> [u8; 32] {
    let mut b = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut b);
    b
}

/// How the sessions table names a subject: sites and people never collide.
fn stored_subject(p: &Principal) -> String {
    format!("{}:{}", if p.is_site { "site" } else { "user" }, p.subject)
}

impl Auth {
    /// Loads the REST sessions saved before a restart.
    pub(crate) fn new(settings: Arc<Settings>, store: Store, limits: Limits) -> Result<Auth, StoreError> {
        let now = now_ms();
        let mut tokens = Tokens::new(limits.token_idle_ms, limits.ticket_ms);
        for s in store.live_sessions(now)? {
            let (Some(role), Ok(bytes)) = (Role::parse(&s.role), hex::decode(&s.token_hash)) else { continue };
            let Ok(digest) = <[u8; 32]>::try_from(bytes) else { continue };
            let (is_site, subject) = match s.subject.split_once(':') {
                Some(("site", id)) => (true, id.to_string()),
                Some(("user", name)) => (false, name.to_string()),
                _ => continue,
            };
            tokens.restore(digest, Principal { role, subject, is_site }, s.expires_ms, now);
        }
        let verifier = verifier::Verifier::for_this_machine();
        Ok(Auth { settings, store, state: Mutex::new(State { tokens, gate: Gate::new(limits) }), verifier })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().expect("auth mutex poisoned")
    }

    /// A WebSocket from `ip` opens; refused over the per-address limit.
    pub(crate) fn open_socket(&self, ip: IpAddr) -> Result<(), AuthError> {
        Ok(self.lock().gate.open_socket(ip)?)
    }

    pub(crate) fn close_socket(&self, ip: IpAddr) {
        self.lock().gate.close_socket(ip);
    }

    /// A socket joins as `site`; refused over the per-site limit.
    pub(crate) fn enter_site(&self, site: &str) -> Result<(), AuthError> {
        Ok(self.lock().gate.enter_site(site)?)
    }

    pub(crate) fn leave_site(&self, site: &str) {
        self.lock().gate.leave_site(site);
    }

    /// Counts one attempt from `ip` against its per-minute budget.
    pub(crate) fn attempt(&self, ip: IpAddr) -> Result<(), AuthError> {
        Ok(self.lock().gate.attempt(ip, now_ms())?)
    }

    /// Checks a site's key; gives a REST token and a join ticket.
    pub(crate) async fn site_session(&self, site_id: &str, key: &str, ip: IpAddr) -> Result<SiteSession, AuthError> {
        self.attempt(ip)?;
        let site = self.settings.sites.iter().find(|s| s.id == site_id).ok_or(AuthError::SiteUnknown)?;
        let store = self.store.clone();
        let (id, key) = (site.id.clone(), key.to_string());
        let ok = self
            .verifier
            .run(ip, move || match store.key_hash(&id) {
                Ok(Some(hash)) => keys::verify_key(&key, &hash),
                _ => false,
            })
            .await
            .map_err(|_| {
                warn!(site = site_id, %ip, "sign-in refused: too many key checks waiting");
                AuthError::Busy
            })?;
        if !ok {
            warn!(site = site_id, %ip, "refused: wrong key for the site");
            self.verifier.failed(ip);
            return Err(AuthError::BadKey);
        }
        let role = Role::from(site.role);
        let principal = Principal { role, subject: site.id.clone(), is_site: true };
        let now = now_ms();
        let (ticket, token) = {
            let mut st = self.lock();
            (st.tokens.issue_ticket(principal.clone(), random(), now), st.tokens.issue_token(principal.clone(), random(), now))
        };
        self.persist(&principal, &token, now).await;
        Ok(SiteSession { principal, ticket, token })
    }

    /// Checks a person's name and password; gives a REST token.
    pub(crate) async fn login(&self, user: &str, password: &str, ip: IpAddr) -> Result<(Principal, Issued), AuthError> {
        self.attempt(ip)?;
        let store = self.store.clone();
        let (name, password) = (user.to_string(), password.to_string());
        let found = self
            .verifier
            .run(ip, move || match store.user(&name) {
                Ok(Some(u)) => keys::verify_key(&password, &u.password_hash).then(|| Role::parse(&u.role)).flatten(),
                // An unknown name costs the same one check as a known one: how long the
                // refusal takes must not tell whether a user exists.
                _ => {
                    let _ = keys::verify_key(&password, keys::DECOY_HASH.as_str());
                    None
                }
            })
            .await
            .map_err(|_| {
                warn!(%ip, "sign-in refused: too many password checks waiting");
                AuthError::Busy
            })?;
        let Some(role) = found else {
            warn!(%ip, "refused: wrong user name or password");
            self.verifier.failed(ip);
            return Err(AuthError::BadCredentials);
        };
        let principal = Principal { role, subject: user.to_string(), is_site: false };
        let now = now_ms();
        let token = self.lock().tokens.issue_token(principal.clone(), random(), now);
        self.persist(&principal, &token, now).await;
        info!(user, role = role.as_str(), %ip, "signed in");
        Ok((principal, token))
    }

    async fn persist(&self, principal: &Principal, token: &Issued, now: i64) {
        let record = SessionRecord {
            token_hash: hex::encode(token.digest),
            role: principal.role.as_str().into(),
            subject: stored_subject(principal),
            created_ms: now,
            expires_ms: token.expires_ms,
        };
        let store = self.store.clone();
        if let Ok(Err(e)) = tokio::task::spawn_blocking(move || store.save_session(&record)).await {
            warn!("saving a session failed (it lasts until a restart): {e}");
        }
    }

    /// The holder of a REST token (its idle time starts again).
    pub(crate) fn authenticate(&self, token: &str) -> Result<Principal, AuthError> {
        Ok(self.lock().tokens.check(token, now_ms())?)
    }

    /// Uses a join ticket for `site`. A bad ticket counts against the address's budget.
    pub(crate) fn redeem(&self, ticket: &str, site: &str, ip: IpAddr) -> Result<Principal, AuthError> {
        let now = now_ms();
        let mut st = self.lock();
        match st.tokens.redeem(ticket, now) {
            Ok(p) if p.is_site && p.subject == site => Ok(p),
            Ok(_) => Err(AuthError::Forbidden),
            Err(e) => {
                st.gate.attempt(ip, now)?;
                Err(e.into())
            }
        }
    }

    pub(crate) async fn logout(&self, token: &str) {
        let Some(digest) = self.lock().tokens.revoke(token) else { return };
        let store = self.store.clone();
        let _ = tokio::task::spawn_blocking(move || store.delete_session(&hex::encode(digest))).await;
    }

    fn revoke(&self, subject: &str, is_site: bool) {
        let n = self.lock().tokens.revoke_subject(subject, is_site);
        let stored = stored_subject(&Principal { role: Role::Site, subject: subject.to_string(), is_site });
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || store.delete_sessions_of(&stored));
        info!(subject, is_site, tokens = n, "credentials changed: its sessions ended");
    }

    /// Every 2 s: a site whose key hash changed (rotated) loses its sessions, and is named on
    /// the returned channel for whoever owns its seat (the server hands it to the conference);
    /// a user removed or given a new password loses theirs. Also forgets stale tokens.
    pub(crate) fn watch_credentials(self: Arc<Self>, cancel: CancellationToken) -> mpsc::Receiver<KeyReissued> {
        let (reissued, receiver) = mpsc::channel(64);
        tokio::spawn(async move {
            let mut known: Option<(HashMap<String, String>, HashMap<String, String>)> = None;
            let mut tick = tokio::time::interval(Duration::from_secs(2));
            loop {
                tokio::select! {
                    _ = cancel.cancelled() => break,
                    _ = tick.tick() => {}
                }
                let store = self.store.clone();
                let read = tokio::task::spawn_blocking(move || -> Result<_, StoreError> {
                    let keys: HashMap<String, String> = store.key_hashes()?.into_iter().collect();
                    let users: HashMap<String, String> = store.users()?.into_iter().map(|u| (u.name, format!("{}|{}", u.role, u.password_hash))).collect();
                    Ok((keys, users))
                })
                .await;
                let Ok(Ok(now)) = read else { continue };
                if let Some((old_keys, old_users)) = &known {
                    for (site, hash) in old_keys {
                        if now.0.get(site) != Some(hash) {
                            warn!(site = %site, "the site's key was re-issued; ending its sessions");
                            self.revoke(site, true);
                            if let Some(i) = self.settings.site_index(site) {
                                let _ = reissued.send(KeyReissued { site: i }).await;
                            }
                        }
                    }
                    for (user, hash) in old_users {
                        if now.1.get(user) != Some(hash) {
                            self.revoke(user, false);
                        }
                    }
                }
                known = Some(now);
                let t = now_ms();
                let mut st = self.lock();
                st.tokens.purge(t);
                st.gate.purge(t);
            }
        });
        receiver
    }
}

/// A site whose key was re-issued while the bridge ran: its sessions are ended, and its seat
/// must go too (its old link no longer signs in).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct KeyReissued {
    pub(crate) site: usize,
}
