//! Time-limited TURN credentials (the "TURN REST API" scheme coturn implements with
//! `use-auth-secret` / `static-auth-secret`): the user name is `<expiry unix time>:<site id>`,
//! the password the base64 HMAC-SHA1 of that name under the shared secret. The TURN server
//! checks them without asking the bridge; they stop working at the expiry. Pure.

use base64::Engine;
use hmac::{Hmac, Mac};

/// `(username, credential)` valid until `now_s + ttl_s`.
pub(crate) fn credentials(secret: &str, site: &str, now_s: u64, ttl_s: u64) -> (String, String) {
    let username = format!("{}:{site}", now_s + ttl_s);
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(username.as_bytes());
    let credential = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    (username, credential)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_follow_the_turn_rest_scheme() {
        // Reference value from Python: base64(hmac.new(secret, name, sha1).digest()).
        let (user, pass) = credentials("0123456789abcdef-secret", "hang-gai", 1_796_100_000, 50_000);
        assert_eq!(user, "1796150000:hang-gai");
        assert_eq!(pass, "iyhAtdvg477MNXuoVMgUDs60b08=");
    }
}
