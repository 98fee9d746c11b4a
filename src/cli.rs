//! The command line beside `serve`: re-issuing site keys and managing the people who sign in.
//!
//! These commands work on the data directory's SQLite file directly, with or without a
//! running bridge; a running bridge notices changed credentials within seconds and ends the
//! sessions that used the old ones. Secrets are printed once, never logged.

use crate::auth::keys::{self, AccessError, MIN_PASSWORD_CHARS};
use crate::config::Settings;
use crate::store::Store;
use std::io::BufRead;
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Access(#[from] AccessError),
    #[error("{0}")]
    Usage(String),
}

fn open(data: &Path) -> Result<Store, CliError> {
    if !data.join("diemcau.sqlite3").exists() {
        return Err(CliError::Usage(format!("no bridge data in {} (start the bridge once, or give --data)", data.display())));
    }
    Ok(Store::open(data)?)
}

/// The base of join links: the configured public URL, else localhost on the listen port.
fn base_url(settings: &Settings) -> String {
    settings.public_url.clone().unwrap_or_else(|| format!("https://localhost:{}", settings.listen.port()))
}

/// `diemcau keys rotate <site>`: a new key and link; the old link stops working.
pub fn rotate(config: &Path, data: &Path, site: &str) -> Result<(), CliError> {
    let settings = Settings::load(config)?;
    let store = open(data)?;
    let link = keys::rotate_key(&settings, &store, &base_url(&settings), site)?;
    keys::write_links_file(data, &settings.title, std::slice::from_ref(&link))?;
    let _ = store.log_event(Some(site), "key_rotated", "by an operator (diemcau keys rotate)");
    println!("Khóa mới của {} / new key for {}:\n  {}", link.site_name, link.site_id, link.url);
    println!("(also in {}; the old link no longer works)", data.join("join-links.txt").display());
    Ok(())
}

/// `diemcau keys list`: sites and when their keys were issued (no secrets).
pub fn list_keys(config: &Path, data: &Path) -> Result<(), CliError> {
    let settings = Settings::load(config)?;
    let times: std::collections::HashMap<String, i64> = open(data)?.key_times()?.into_iter().collect();
    for s in &settings.sites {
        let issued = times.get(&s.id).map(|ms| crate::recording::hanoi_time(*ms)).unwrap_or_else(|| "–".into());
        let fixed = if settings.fixed_keys.iter().any(|(id, _)| id == &s.id) { " (fixed in config)" } else { "" };
        println!("{:<12} {:<32} {issued}{fixed}", s.id, s.name);
    }
    Ok(())
}

/// The password from standard input (one line), or a fresh random one.
fn password(from_stdin: bool) -> Result<(String, bool), CliError> {
    if !from_stdin {
        return Ok((keys::generate_key(), true));
    }
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).map_err(|e| CliError::Usage(format!("reading the password: {e}")))?;
    let p = line.trim_end_matches(['\r', '\n']).to_string();
    if p.chars().count() < MIN_PASSWORD_CHARS {
        return Err(CliError::Usage(format!("the password must have at least {MIN_PASSWORD_CHARS} characters")));
    }
    Ok((p, false))
}

/// `diemcau user add <name> --role technician|chair|secretariat` (or `passwd` for an existing user).
pub fn set_user(data: &Path, name: &str, role: Option<&str>, from_stdin: bool, must_exist: bool) -> Result<(), CliError> {
    if !keys::valid_user_name(name) {
        return Err(CliError::Usage(format!("{name:?}: a user name is 1-40 lowercase letters, digits, '.', '_' or '-'")));
    }
    let store = open(data)?;
    let existing = store.user(name)?;
    let role = match (role, &existing, must_exist) {
        (_, None, true) => return Err(CliError::Usage(format!("no user {name:?}"))),
        (Some(r @ ("technician" | "chair" | "secretariat")), _, _) => r.to_string(),
        (Some(r), _, _) => return Err(CliError::Usage(format!("role {r:?}: use technician, chair or secretariat"))),
        (None, Some(u), _) => u.role.clone(),
        (None, None, false) => return Err(CliError::Usage("give --role technician, chair or secretariat".into())),
    };
    let (password, generated) = password(from_stdin)?;
    store.set_user(name, &role, &keys::hash_key(&password)?)?;
    let _ = store.log_event(None, "user_changed", &format!("{name} ({role})"));
    println!("{name}: {role}{}", if existing.is_some() { ", password changed (its sessions end)" } else { ", added" });
    if generated {
        println!("  password / mật khẩu: {password}");
    }
    Ok(())
}

pub fn remove_user(data: &Path, name: &str) -> Result<(), CliError> {
    let store = open(data)?;
    if !store.remove_user(name)? {
        return Err(CliError::Usage(format!("no user {name:?}")));
    }
    let _ = store.log_event(None, "user_removed", name);
    println!("{name}: removed (its sessions end)");
    Ok(())
}

pub fn list_users(data: &Path) -> Result<(), CliError> {
    for u in open(data)?.users()? {
        println!("{:<20} {:<11} since {}", u.name, u.role, crate::recording::hanoi_time(u.created_ms));
    }
    Ok(())
}
