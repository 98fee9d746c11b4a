//! HTTPS certificates: PEM files from config, or a self-signed one kept in `<data>/tls/`.
//!
//! Browsers only allow camera, microphone and WebRTC on secure origins, so the bridge never
//! serves plain HTTP. The generated certificate covers `localhost`, the loopback addresses
//! and the listen address, and is reused across restarts so a browser's exception holds.

use axum_server::tls_rustls::RustlsConfig;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("TLS certificate {path}: {reason}")]
    Io { path: String, reason: String },
    #[error("generating a self-signed certificate: {0}")]
    Generate(String),
}

/// Where the generated certificate lives.
pub(crate) fn self_signed_paths(data_dir: &Path) -> (PathBuf, PathBuf) {
    let dir = data_dir.join("tls");
    (dir.join("cert.pem"), dir.join("key.pem"))
}

/// Loads the configured PEM pair, or the self-signed pair (generating it the first time).
pub(crate) async fn load(cert: Option<&Path>, key: Option<&Path>, data_dir: &Path, listen_ip: IpAddr) -> Result<RustlsConfig, TlsError> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let (cert, key) = match (cert, key) {
        (Some(c), Some(k)) => (c.to_path_buf(), k.to_path_buf()),
        _ => {
            let (c, k) = self_signed_paths(data_dir);
            if !c.exists() || !k.exists() {
                generate(&c, &k, listen_ip)?;
            }
            (c, k)
        }
    };
    let io = |p: &Path, e: std::io::Error| TlsError::Io { path: p.display().to_string(), reason: e.to_string() };
    let cert_pem = std::fs::read(&cert).map_err(|e| io(&cert, e))?;
    let key_pem = std::fs::read(&key).map_err(|e| io(&key, e))?;
    RustlsConfig::from_pem(cert_pem, key_pem).await.map_err(|e| io(&cert, e))
}

fn generate(cert: &Path, key: &Path, listen_ip: IpAddr) -> Result<(), TlsError> {
    let mut names = vec!["localhost".to_string(), "127.0.0.1".to_string(), "::1".to_string()];
    if !listen_ip.is_unspecified() && !listen_ip.is_loopback() {
        names.push(listen_ip.to_string());
    }
    let certified = rcgen::generate_simple_self_signed(names).map_err(|e| TlsError::Generate(e.to_string()))?;
    let io = |p: &Path, e: std::io::Error| TlsError::Io { path: p.display().to_string(), reason: e.to_string() };
    if let Some(dir) = cert.parent() {
        std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    }
    std::fs::write(cert, certified.cert.pem()).map_err(|e| io(cert, e))?;
    write_private(key, certified.signing_key.serialize_pem().as_bytes()).map_err(|e| io(key, e))?;
    tracing::info!(path = %cert.display(), "generated a self-signed TLS certificate");
    Ok(())
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    opts.open(path)?.write_all(bytes)
}
