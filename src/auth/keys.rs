//! Credentials at rest: site keys and people's passwords, stored only as Argon2 hashes.
//!
//! A key is the secret part of a site's join link. The plaintext exists only in memory at
//! generation time, in the printed links and in `<data>/join-links.txt` (mode 0600); the store
//! keeps the hash. Technicians and the secretariat log in with a name and password (added
//! with `diemcau user add`); on first start one technician, `kythuat`, is created with a
//! random password printed beside the join links. Keys and passwords never appear in logs.

use crate::config::Settings;
use crate::store::{Store, StoreError};
use argon2::password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use rand::RngCore;
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("hashing a key failed: {0}")]
    Hash(String),
    #[error("writing join links to {path}: {reason}")]
    Links { path: String, reason: String },
    #[error("no site {0:?} in the configuration")]
    UnknownSite(String),
    #[error("site {0:?} has a fixed key in the configuration: change it there")]
    FixedKey(String),
}

/// A join link for one site, as printed at first start.
#[derive(Debug, Clone)]
pub(crate) struct JoinLink {
    pub(crate) site_id: String,
    pub(crate) site_name: String,
    pub(crate) url: String,
}

/// Makes sure every site has a key hash in the store. Sites with a fixed key in config get
/// that key's hash; sites with neither get a fresh random key. Returns the links for the keys
/// generated now (empty on later starts).
pub(crate) fn provision_keys(settings: &Settings, store: &Store, base_url: &str) -> Result<Vec<JoinLink>, AccessError> {
    let mut links = Vec::new();
    for site in &settings.sites {
        let fixed = settings.fixed_keys.iter().find(|(id, _)| id == &site.id).map(|(_, k)| k.clone());
        let existing = store.key_hash(&site.id)?;
        let key = match (fixed, existing) {
            (Some(key), Some(hash)) if verify_key(&key, &hash) => continue,
            (Some(key), _) => key,
            (None, Some(_)) => continue,
            (None, None) => {
                let key = generate_key();
                links.push(JoinLink { site_id: site.id.clone(), site_name: site.name.clone(), url: join_url(base_url, &site.id, &key) });
                key
            }
        };
        store.set_key_hash(&site.id, &hash_key(&key)?)?;
    }
    // The first technician, so the technicians' page works out of the box.
    if store.users()?.is_empty() {
        let password = generate_key();
        store.set_user(FIRST_TECHNICIAN, "technician", &hash_key(&password)?)?;
        links.push(JoinLink {
            site_id: TECHNICIANS_LINE.to_string(),
            site_name: "Kỹ thuật viên / technicians".to_string(),
            url: tech_url(base_url, FIRST_TECHNICIAN, &password),
        });
    }
    Ok(links)
}

/// The technician created on first start.
pub(crate) const FIRST_TECHNICIAN: &str = "kythuat";
/// The id of the technicians' line in the links file (not a valid site id).
pub(crate) const TECHNICIANS_LINE: &str = "@technician";

/// The technicians' page, signing in as `user` (the fragment never reaches the server's logs;
/// the page removes it from the address bar once signed in).
pub(crate) fn tech_url(base_url: &str, user: &str, password: &str) -> String {
    format!("{base_url}/tech#user={user}&password={password}")
}

/// Gives `site` a new random key: every session holding the old one ends (the running
/// bridge notices within seconds). Returns the new join link.
pub(crate) fn rotate_key(settings: &Settings, store: &Store, base_url: &str, site_id: &str) -> Result<JoinLink, AccessError> {
    let site = settings.sites.iter().find(|s| s.id == site_id).ok_or_else(|| AccessError::UnknownSite(site_id.to_string()))?;
    if settings.fixed_keys.iter().any(|(id, _)| id == site_id) {
        // The next start would put the configured key back.
        return Err(AccessError::FixedKey(site_id.to_string()));
    }
    let key = generate_key();
    store.set_key_hash(&site.id, &hash_key(&key)?)?;
    Ok(JoinLink { site_id: site.id.clone(), site_name: site.name.clone(), url: join_url(base_url, &site.id, &key) })
}

/// A valid user name: 1–40 lowercase letters, digits, `.`, `_`, `-`.
pub(crate) fn valid_user_name(name: &str) -> bool {
    (1..=40).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
}

/// Passwords people choose must be at least this long (generated ones are 32 hex digits).
pub(crate) const MIN_PASSWORD_CHARS: usize = 12;

pub(crate) fn join_url(base_url: &str, site_id: &str, key: &str) -> String {
    // The key rides in the fragment: browsers never send it to the server in the request line,
    // so it stays out of access logs and Referer headers.
    format!("{base_url}/site/{site_id}#key={key}")
}

/// 128 bits of randomness, hex-encoded.
pub(crate) fn generate_key() -> String {
    let mut bytes = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// Argon2id with 7 MiB and 5 passes (an OWASP-recommended setting). The default 19 MiB
/// buys nothing for 128-bit random keys and every verification's buffer stays in the
/// allocator of the thread that ran it, which showed as ~60 MiB extra resident memory.
fn argon2() -> Argon2<'static> {
    let params = argon2::Params::new(7 * 1024, 5, 1, None).expect("valid Argon2 parameters");
    Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
}

pub(crate) fn hash_key(key: &str) -> Result<String, AccessError> {
    let salt = SaltString::generate(&mut OsRng);
    argon2().hash_password(key.as_bytes(), &salt).map(|h| h.to_string()).map_err(|e| AccessError::Hash(e.to_string()))
}

/// A hash of a random key nobody knows, made once: checked against when a user name does not
/// exist, so a refusal takes as long as for a known name with a wrong password.
pub(crate) static DECOY_HASH: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| hash_key(&hex::encode(rand::random::<[u8; 16]>())).unwrap_or_default());

pub(crate) fn verify_key(key: &str, hash: &str) -> bool {
    match PasswordHash::new(hash) {
        // The parameters stored in the hash decide the cost, so older hashes still verify.
        Ok(parsed) => argon2().verify_password(key.as_bytes(), &parsed).is_ok(),
        Err(_) => false,
    }
}

/// Writes the links to `<dir>/join-links.txt`, readable by the owner only. Lines of sites
/// not in `links` are kept from the existing file, so re-issuing one site's key leaves the
/// other sites' links in place.
pub(crate) fn write_links_file(dir: &Path, title: &str, links: &[JoinLink]) -> Result<(), AccessError> {
    use std::io::Write;
    let path = dir.join("join-links.txt");
    let kept: Vec<String> = std::fs::read_to_string(&path)
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter(|l| {
            let site = l.split('\t').next().unwrap_or("");
            !links.iter().any(|k| k.site_id == site)
        })
        .map(str::to_string)
        .collect();
    let err = |e: std::io::Error| AccessError::Links { path: path.display().to_string(), reason: e.to_string() };
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(&path).map_err(err)?;
    writeln!(f, "# {title}: đường dẫn tham gia của từng điểm cầu (giữ bí mật) / join links (keep secret)").map_err(err)?;
    for line in kept {
        writeln!(f, "{line}").map_err(err)?;
    }
    for l in links {
        writeln!(f, "{}\t{}\t{}", l.site_id, l.site_name, l.url).map_err(err)?;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).map_err(err)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_names_are_plain_lowercase() {
        assert!(valid_user_name("kythuat") && valid_user_name("van.phong_1"));
        assert!(!valid_user_name("") && !valid_user_name("Kỹ thuật") && !valid_user_name("a b") && !valid_user_name(&"a".repeat(41)));
    }

    #[test]
    fn a_key_verifies_against_its_hash_and_nothing_else_does() {
        let key = generate_key();
        assert_eq!(key.len(), 32);
        let hash = hash_key(&key).unwrap();
        assert!(!hash.contains(&key));
        assert!(verify_key(&key, &hash));
        assert!(!verify_key(&generate_key(), &hash));
        assert!(!verify_key(&key, "not-a-hash"));
    }

    #[test]
    fn keys_are_generated_once_and_fixed_keys_are_honoured() {
        let dir = std::env::temp_dir().join(format!("diemcau-access-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let settings = crate::config::Settings::from_toml(
            r#"
            [conference]
            title = "t"
            [[sites]]
            id = "hq"
            name = "HQ"
            role = "chair"
            key = "0123456789abcdef-fixed"
            [[sites]]
            id = "hang-gai"
            name = "Cụm Hàng Gai"
            role = "site"
            "#,
        )
        .unwrap();
        let store = Store::open(&dir).unwrap();
        let links = provision_keys(&settings, &store, "https://localhost:8443").unwrap();
        assert_eq!(links.len(), 2, "the site without a fixed key, and the first technician");
        assert_eq!(links[0].site_id, "hang-gai");
        assert!(links[1].url.starts_with("https://localhost:8443/tech#user=kythuat&password="));
        let password = links[1].url.split("password=").nth(1).unwrap();
        assert!(verify_key(password, &store.user("kythuat").unwrap().unwrap().password_hash));
        let key = links[0].url.split("#key=").nth(1).unwrap();
        assert!(verify_key(key, &store.key_hash("hang-gai").unwrap().unwrap()));
        assert!(verify_key("0123456789abcdef-fixed", &store.key_hash("hq").unwrap().unwrap()));
        // Second start: nothing new is generated, the old key still works.
        assert!(provision_keys(&settings, &store, "https://localhost:8443").unwrap().is_empty());
        assert!(verify_key(key, &store.key_hash("hang-gai").unwrap().unwrap()));
        // Rotation: a new key works, the old one no longer does.
        let rotated = rotate_key(&settings, &store, "https://localhost:8443", "hang-gai").unwrap();
        let new_key = rotated.url.split("#key=").nth(1).unwrap();
        let hash = store.key_hash("hang-gai").unwrap().unwrap();
        assert!(verify_key(new_key, &hash) && !verify_key(key, &hash));
        assert!(rotate_key(&settings, &store, "https://localhost:8443", "ba-dinh").is_err());
        assert!(matches!(rotate_key(&settings, &store, "https://localhost:8443", "hq"), Err(AccessError::FixedKey(_))));
        write_links_file(&dir, "t", &links).unwrap();
        // Re-issuing another site's link keeps hang-gai's line.
        let other = JoinLink { site_id: "hq".into(), site_name: "HQ".into(), url: "https://x/site/hq#key=k".into() };
        write_links_file(&dir, "t", &[other]).unwrap();
        let text = std::fs::read_to_string(dir.join("join-links.txt")).unwrap();
        assert!(text.contains(&links[0].url) && text.contains("https://x/site/hq#key=k"), "{text}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.join("join-links.txt")).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::remove_dir_all(dir).unwrap();
    }
}

#[cfg(test)]
mod decoy_tests {
    use super::*;

    #[test]
    fn the_decoy_hash_is_a_real_argon2_hash_that_no_key_matches() {
        assert!(DECOY_HASH.starts_with("$argon2id$"), "{}", *DECOY_HASH);
        let t = std::time::Instant::now();
        assert!(!verify_key("anything", &DECOY_HASH));
        println!("decoy check {:?}", t.elapsed());
    }
}
