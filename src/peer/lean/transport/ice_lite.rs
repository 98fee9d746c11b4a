//! ICE-lite (RFC 8445 §2.5): the bridge has one public address, so it gathers nothing and
//! checks nothing; it answers the browser's connectivity checks and sends media to the address
//! the browser chose.
//!
//! A check is answered only when its USERNAME is `<our ufrag>:<their ufrag>` and its
//! MESSAGE-INTEGRITY verifies with our password; anything else is refused with a reason and
//! changes nothing. The first valid check selects its source address; a check that carries
//! USE-CANDIDATE (the browser's nomination) selects its address even when another was selected
//! before, which is how a site that moved network (or came back through TURN) is followed.
//! Consent (RFC 7675): the browser repeats checks every few seconds on the selected pair; after
//! [`CONSENT_TIMEOUT`] without one, the pair counts as lost.

use rand::distributions::{Alphanumeric, DistString};
use rtc::crypto::providers::RingCrypto;
use rtc::stun::attributes::{ATTR_USERNAME, ATTR_USE_CANDIDATE};
use rtc::stun::fingerprint::FINGERPRINT;
use rtc::stun::integrity::MessageIntegrity;
use rtc::stun::message::{Message, Setter, BINDING_REQUEST, BINDING_SUCCESS};
use rtc::stun::textattrs::TextAttribute;
use rtc::stun::xoraddr::XorMappedAddress;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// How long the selected pair lives without a valid check from the browser (RFC 7675 §5.1).
pub(crate) const CONSENT_TIMEOUT: Duration = Duration::from_secs(30);

/// One side's ICE username fragment and password (`a=ice-ufrag`, `a=ice-pwd`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IceCredentials {
    pub ufrag: String,
    pub pwd: String,
}

impl IceCredentials {
    /// Fresh random credentials: 8 characters of ufrag, 24 of password (RFC 8839 asks 4 and 22
    /// at least).
    pub fn random() -> Self {
        let mut rng = rand::thread_rng();
        IceCredentials { ufrag: Alphanumeric.sample_string(&mut rng, 8), pwd: Alphanumeric.sample_string(&mut rng, 24) }
    }
}

/// Why a STUN message was not answered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckError {
    #[error("not a well-formed STUN message")]
    Malformed,
    #[error("not a Binding request")]
    NotBindingRequest,
    #[error("USERNAME is not ours:theirs")]
    WrongUsername,
    #[error("MESSAGE-INTEGRITY does not verify with our password")]
    BadIntegrity,
    #[error("FINGERPRINT does not match")]
    BadFingerprint,
}

/// What answering one check did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The Binding success response to send back to the check's source.
    pub response: Vec<u8>,
    /// The selected address changed with this check (first check, or a nomination elsewhere).
    pub selected_changed: bool,
}

/// The ICE-lite side of one site's transport.
#[derive(Debug)]
pub struct IceLite {
    local: IceCredentials,
    remote_ufrag: String,
    selected: Option<SocketAddr>,
    last_check: Option<Instant>,
    /// Addresses that sent a valid check lately (newest last, a few at most): the browser may
    /// use any of them for its handshake and media.
    validated: Vec<SocketAddr>,
}

/// How many checked addresses are remembered (a browser checks a pair per local candidate).
const VALIDATED: usize = 8;

impl IceLite {
    pub fn new(local: IceCredentials, remote_ufrag: impl Into<String>) -> Self {
        IceLite { local, remote_ufrag: remote_ufrag.into(), selected: None, last_check: None, validated: Vec::new() }
    }

    pub(crate) fn remote_ufrag(&self) -> &str {
        &self.remote_ufrag
    }

    /// Where media goes: the address of the browser's nominated (or first valid) check.
    pub(crate) fn selected(&self) -> Option<SocketAddr> {
        self.selected
    }

    /// Takes DTLS or media from `from` if the browser may send it from there: the selected
    /// address, or another that passed a check, which then becomes the selected one (the
    /// browser chose that pair; its nomination may have been lost or come on another path,
    /// as when a loaded browser first nominates an ICE-TCP pair and then a UDP one). False for
    /// an address that never passed a check.
    pub fn accept_from(&mut self, from: SocketAddr) -> bool {
        if self.selected == Some(from) {
            return true;
        }
        if self.validated.contains(&from) {
            self.selected = Some(from);
            return true;
        }
        false
    }

    /// True once a pair was selected and no valid check came for [`CONSENT_TIMEOUT`].
    pub(crate) fn consent_expired(&self, now: Instant) -> bool {
        self.last_check.is_some_and(|t| now.saturating_duration_since(t) >= CONSENT_TIMEOUT)
    }

    /// When consent runs out if no further check comes.
    pub(crate) fn consent_deadline(&self) -> Option<Instant> {
        self.last_check.map(|t| t + CONSENT_TIMEOUT)
    }

    /// Verifies a Binding request from `from` and builds its success response.
    pub fn answer(&mut self, now: Instant, from: SocketAddr, datagram: &[u8]) -> Result<Answer, CheckError> {
        let mut request = Message::new();
        request.unmarshal_binary(datagram).map_err(|_| CheckError::Malformed)?;
        if request.typ != BINDING_REQUEST {
            return Err(CheckError::NotBindingRequest);
        }
        let username = TextAttribute::get_from_as(&request, ATTR_USERNAME).map_err(|_| CheckError::WrongUsername)?;
        if username.text != format!("{}:{}", self.local.ufrag, self.remote_ufrag) {
            return Err(CheckError::WrongUsername);
        }
        // FINGERPRINT is optional in RFC 5389 but always sent by browsers; when present it
        // must match. It is checked before MESSAGE-INTEGRITY, which rewrites the header length.
        if request.contains(rtc::stun::attributes::ATTR_FINGERPRINT) {
            FINGERPRINT.check(&request).map_err(|_| CheckError::BadFingerprint)?;
        }
        MessageIntegrity::check(&mut request, self.local.pwd.as_bytes(), &RingCrypto).map_err(|_| CheckError::BadIntegrity)?;

        let nominated = request.contains(ATTR_USE_CANDIDATE);
        let selected_changed = match self.selected {
            None => true,
            Some(addr) => addr != from && nominated,
        };
        if selected_changed {
            self.selected = Some(from);
        }
        if self.selected == Some(from) {
            self.last_check = Some(now);
        }
        self.validated.retain(|a| *a != from);
        self.validated.push(from);
        if self.validated.len() > VALIDATED {
            self.validated.remove(0);
        }
        Ok(Answer { response: success_response(&request, from, &self.local.pwd)?, selected_changed })
    }
}

fn success_response(request: &Message, from: SocketAddr, pwd: &str) -> Result<Vec<u8>, CheckError> {
    let mut response = Message::new();
    response.write_header();
    let integrity = MessageIntegrity::new_short_term_integrity_with_provider(pwd.to_owned(), &RingCrypto);
    let mapped = XorMappedAddress { ip: from.ip(), port: from.port() };
    let setters: [&dyn Setter; 5] = [&BINDING_SUCCESS, request, &mapped, &integrity, &FINGERPRINT];
    for setter in setters {
        setter.add_to(&mut response).map_err(|_| CheckError::Malformed)?;
    }
    Ok(response.raw)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtc::stun::message::TransactionId;

    fn creds(ufrag: &str, pwd: &str) -> IceCredentials {
        IceCredentials { ufrag: ufrag.into(), pwd: pwd.into() }
    }

    /// A browser's check: USERNAME, optional USE-CANDIDATE, integrity with `pwd`, fingerprint.
    fn check(username: &str, pwd: &str, use_candidate: bool) -> Vec<u8> {
        let mut m = Message::new();
        m.write_header();
        BINDING_REQUEST.add_to(&mut m).unwrap();
        TransactionId::new().add_to(&mut m).unwrap();
        TextAttribute::new(ATTR_USERNAME, username.into()).add_to(&mut m).unwrap();
        if use_candidate {
            m.add(ATTR_USE_CANDIDATE, &[]);
        }
        MessageIntegrity::new_short_term_integrity_with_provider(pwd.into(), &RingCrypto).add_to(&mut m).unwrap();
        FINGERPRINT.add_to(&mut m).unwrap();
        m.raw
    }

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([192, 0, 2, 7], port))
    }

    #[test]
    fn a_valid_check_is_answered_with_its_source_address_and_our_integrity() {
        let mut ice = IceLite::new(creds("brdg", "bridge-password-24chars!"), "brws");
        let now = Instant::now();
        let answer = ice.answer(now, addr(5000), &check("brdg:brws", "bridge-password-24chars!", false)).unwrap();
        assert!(answer.selected_changed);
        assert_eq!(ice.selected(), Some(addr(5000)));

        let mut response = Message::new();
        response.unmarshal_binary(&answer.response).unwrap();
        assert_eq!(response.typ, BINDING_SUCCESS);
        FINGERPRINT.check(&response).unwrap();
        let mut mapped = XorMappedAddress::default();
        mapped.get_from_as(&response, rtc::stun::attributes::ATTR_XORMAPPED_ADDRESS).unwrap();
        assert_eq!(SocketAddr::new(mapped.ip, mapped.port), addr(5000));
        MessageIntegrity::check(&mut response, b"bridge-password-24chars!", &RingCrypto).expect("signed with our password");
    }

    #[test]
    fn the_handshake_is_taken_from_any_checked_address_which_then_carries_the_media() {
        let pwd = "bridge-password-24chars!";
        let mut ice = IceLite::new(creds("brdg", pwd), "brws");
        let now = Instant::now();
        // A loaded browser's ICE-TCP check comes first; its UDP check comes later, and the
        // nomination that would move the pair is lost.
        ice.answer(now, addr(6000), &check("brdg:brws", pwd, false)).unwrap();
        ice.answer(now, addr(5000), &check("brdg:brws", pwd, false)).unwrap();
        assert_eq!(ice.selected(), Some(addr(6000)));
        // Its DTLS arrives on the UDP pair: taken, and the media follows it there.
        assert!(ice.accept_from(addr(5000)));
        assert_eq!(ice.selected(), Some(addr(5000)));
        // An address that never passed a check is not.
        assert!(!ice.accept_from(addr(7000)));
        assert_eq!(ice.selected(), Some(addr(5000)));
    }

    #[test]
    fn checks_with_the_wrong_username_password_or_type_are_refused_and_select_nothing() {
        let mut ice = IceLite::new(creds("brdg", "right-password-abcdefghi"), "brws");
        let now = Instant::now();
        assert_eq!(ice.answer(now, addr(1), &check("brdg:other", "right-password-abcdefghi", true)), Err(CheckError::WrongUsername));
        assert_eq!(ice.answer(now, addr(1), &check("brdg:brws", "wrong-password-abcdefghi", true)), Err(CheckError::BadIntegrity));
        assert_eq!(ice.answer(now, addr(1), b"\x00\x01\x00\x00garbage"), Err(CheckError::Malformed));
        let mut corrupted = check("brdg:brws", "right-password-abcdefghi", true);
        let last = corrupted.len() - 1;
        corrupted[last] ^= 1;
        assert_eq!(ice.answer(now, addr(1), &corrupted), Err(CheckError::BadFingerprint));
        assert_eq!(ice.selected(), None);
        assert!(!ice.consent_expired(now + CONSENT_TIMEOUT * 2), "no consent to lose before any pair");
    }

    #[test]
    fn a_nomination_moves_the_selected_pair_and_a_plain_check_does_not() {
        let mut ice = IceLite::new(creds("b", "pppppppppppppppppppppp"), "r");
        let now = Instant::now();
        let ok = |ice: &mut IceLite, port, nominate| ice.answer(now, addr(port), &check("b:r", "pppppppppppppppppppppp", nominate)).unwrap();
        assert!(ok(&mut ice, 1, false).selected_changed);
        assert!(!ok(&mut ice, 2, false).selected_changed, "another candidate's check alone does not move media");
        assert_eq!(ice.selected(), Some(addr(1)));
        assert!(ok(&mut ice, 2, true).selected_changed);
        assert_eq!(ice.selected(), Some(addr(2)));
    }

    #[test]
    fn consent_runs_out_thirty_seconds_after_the_last_check_on_the_selected_pair() {
        let mut ice = IceLite::new(creds("b", "pppppppppppppppppppppp"), "r");
        let t0 = Instant::now();
        ice.answer(t0, addr(1), &check("b:r", "pppppppppppppppppppppp", true)).unwrap();
        ice.answer(t0 + Duration::from_secs(20), addr(9), &check("b:r", "pppppppppppppppppppppp", false)).unwrap();
        assert!(!ice.consent_expired(t0 + Duration::from_secs(29)));
        assert!(ice.consent_expired(t0 + CONSENT_TIMEOUT), "a check on another pair does not renew consent");
        ice.answer(t0 + Duration::from_secs(31), addr(1), &check("b:r", "pppppppppppppppppppppp", false)).unwrap();
        assert!(!ice.consent_expired(t0 + Duration::from_secs(40)));
    }

    #[test]
    fn random_credentials_are_long_enough_and_differ() {
        let (a, b) = (IceCredentials::random(), IceCredentials::random());
        assert!(a.ufrag.len() >= 4 && a.pwd.len() >= 22);
        assert_ne!(a, b);
    }
}
