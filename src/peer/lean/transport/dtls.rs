//! DTLS-SRTP (RFC 5764) on the bridge's side: the bridge is always the DTLS server
//! (`a=setup:passive`), proves itself with one certificate whose fingerprint every answer
//! carries, and accepts a browser only if the certificate it presents hashes to the
//! fingerprint in that browser's own SDP. When the handshake completes, the SRTP master keys
//! are exported from it and become the two SRTP contexts of the site: one to decrypt what the
//! browser sends, one to encrypt what the bridge forwards.

use bytes::BytesMut;
use rtc::crypto::providers::RingProvider;
use rtc::crypto::RTCCryptoProvider;
use rtc::dtls::config::{ClientAuthType, ConfigBuilder, ExtendedMasterSecretType, HandshakeConfig};
use rtc::dtls::crypto::Certificate;
use rtc::dtls::endpoint::{Endpoint, EndpointEvent};
use rtc::dtls::extension::extension_use_srtp::SrtpProtectionProfile;
use rtc::shared::TransportProtocol;
use rtc::srtp::context::Context;
use rtc::srtp::option::{srtcp_replay_protection, srtp_replay_protection};
use rtc::srtp::protection_profile::ProtectionProfile;
use sha2::{Digest, Sha256};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

/// Packets remembered per direction to refuse replays (RFC 3711 §3.3.2 suggests at least 64).
const REPLAY_WINDOW: usize = 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DtlsError {
    #[error("DTLS: {0}")]
    Protocol(String),
    #[error("the certificate the peer presented does not match the fingerprint in its SDP")]
    FingerprintMismatch,
    #[error("the peer negotiated no SRTP protection profile the bridge supports")]
    NoSrtpProfile,
    #[error("SRTP: {0}")]
    Srtp(String),
    #[error("the DTLS handshake did not complete within {} s of the first connectivity check", super::HANDSHAKE_DEADLINE.as_secs())]
    HandshakeTimeout,
}

/// The bridge's DTLS certificate and the server configuration built from it, shared by every
/// site's transport.
pub struct Identity {
    fingerprint: String,
    config: Arc<HandshakeConfig>,
    provider: Arc<dyn RTCCryptoProvider>,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity").field("fingerprint", &self.fingerprint).finish_non_exhaustive()
    }
}

impl Identity {
    /// A fresh self-signed ECDSA P-256 certificate (browsers only compare its fingerprint).
    pub fn generate() -> Result<Self, DtlsError> {
        let provider: Arc<dyn RTCCryptoProvider> = Arc::new(RingProvider::new());
        let certificate = Certificate::generate_self_signed(vec!["diemcau".to_owned()], provider.crypto()).map_err(protocol)?;
        let der = certificate.certificate.first().ok_or_else(|| DtlsError::Protocol("empty certificate".into()))?;
        let fingerprint = sha256_fingerprint(der.as_ref());
        let config = ConfigBuilder::default()
            .with_crypto_provider(provider.clone())
            .with_certificates(vec![certificate])
            .with_srtp_protection_profiles(vec![SrtpProtectionProfile::Srtp_Aead_Aes_128_Gcm, SrtpProtectionProfile::Srtp_Aes128_Cm_Hmac_Sha1_80])
            // WebRTC peers present self-signed certificates: require one, verify it against
            // the SDP fingerprint after the handshake instead of against any CA.
            .with_client_auth(ClientAuthType::RequireAnyClientCert)
            .with_insecure_skip_verify(true)
            .with_extended_master_secret(ExtendedMasterSecretType::Require)
            .build(false, None)
            .map_err(protocol)?;
        Ok(Identity { fingerprint, config: Arc::new(config), provider })
    }

    /// The SDP value of `a=fingerprint:`, e.g. `sha-256 AB:CD:…`.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }
}

/// `sha-256 XX:XX:…` of a DER certificate, as SDP writes it.
pub(crate) fn sha256_fingerprint(der: &[u8]) -> String {
    let hex: Vec<String> = Sha256::digest(der).iter().map(|b| format!("{b:02X}")).collect();
    format!("sha-256 {}", hex.join(":"))
}

/// The site's two SRTP contexts, keyed from its DTLS handshake.
pub(crate) struct Srtp {
    pub(crate) inbound: Context,
    pub(crate) outbound: Context,
}

/// One site's DTLS association (server side) until it yields the SRTP keys.
pub(crate) struct DtlsServer {
    endpoint: Endpoint,
    provider: Arc<dyn RTCCryptoProvider>,
    /// The fingerprints the site's SDP announced, normalised (lowercase, `sha-256 aa:bb…`).
    remote_fingerprints: Vec<String>,
    remote: Option<SocketAddr>,
}

impl DtlsServer {
    pub(crate) fn new(identity: &Identity, local_addr: SocketAddr, remote_fingerprints: Vec<String>) -> Self {
        let remote_fingerprints = remote_fingerprints.iter().map(|f| normalise(f)).collect();
        DtlsServer {
            endpoint: Endpoint::new(local_addr, TransportProtocol::UDP, Some(identity.config.clone())),
            provider: identity.provider.clone(),
            remote_fingerprints,
            remote: None,
        }
    }

    /// Feeds one DTLS datagram from `from`. `Some(srtp)` once the handshake has completed and
    /// the peer's certificate matched its fingerprint.
    pub(crate) fn read(&mut self, now: Instant, from: SocketAddr, datagram: &[u8]) -> Result<Option<Srtp>, DtlsError> {
        self.remote = Some(from);
        let events = self.endpoint.read(now, from, None, BytesMut::from(datagram)).map_err(protocol)?;
        for event in events {
            if let EndpointEvent::HandshakeComplete = event {
                return self.keys(from).map(Some);
            }
        }
        Ok(None)
    }

    /// The next DTLS datagram to send, with its destination.
    pub(crate) fn poll_transmit(&mut self) -> Option<(SocketAddr, BytesMut)> {
        self.endpoint.poll_transmit().map(|m| (m.transport.peer_addr, m.message))
    }

    /// When the handshake next needs [`Self::handle_timeout`] (a flight to retransmit).
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        self.remote.and_then(|r| self.endpoint.poll_timeout(&r))
    }

    pub(crate) fn handle_timeout(&mut self, now: Instant) -> Result<(), DtlsError> {
        match self.remote {
            Some(r) => self.endpoint.handle_timeout(r, now).map_err(protocol),
            None => Ok(()),
        }
    }

    fn keys(&self, from: SocketAddr) -> Result<Srtp, DtlsError> {
        let state = self.endpoint.get_connection_state(from).ok_or_else(|| DtlsError::Protocol("association vanished".into()))?;
        let presented = state.peer_certificates.first().map(|der| normalise(&sha256_fingerprint(der)));
        if !presented.is_some_and(|f| self.remote_fingerprints.contains(&f)) {
            return Err(DtlsError::FingerprintMismatch);
        }
        let profile = match state.srtp_protection_profile() {
            SrtpProtectionProfile::Srtp_Aead_Aes_128_Gcm => ProtectionProfile::AeadAes128Gcm,
            SrtpProtectionProfile::Srtp_Aes128_Cm_Hmac_Sha1_80 => ProtectionProfile::Aes128CmHmacSha1_80,
            _ => return Err(DtlsError::NoSrtpProfile),
        };
        let mut config = rtc::srtp::config::Config { profile, ..Default::default() };
        let material = state.export_keying_material(rtc::srtp::config::LABEL_EXTRACTOR_DTLS_SRTP, &[], config.keying_material_len()).map_err(protocol)?;
        config.set_session_keys_from_keying_material(material.as_ref(), false).map_err(srtp)?;
        let keys = &config.keys;
        let crypto = self.provider.crypto();
        let outbound = Context::new(&keys.local_master_key, &keys.local_master_salt, profile, None, None, crypto).map_err(srtp)?;
        let inbound = Context::new(
            &keys.remote_master_key,
            &keys.remote_master_salt,
            profile,
            Some(srtp_replay_protection(REPLAY_WINDOW)),
            Some(srtcp_replay_protection(REPLAY_WINDOW)),
            crypto,
        )
        .map_err(srtp)?;
        Ok(Srtp { inbound, outbound })
    }
}

/// `sha-256 AB:CD` and `SHA-256 ab:cd` are the same fingerprint.
pub(crate) fn normalise(fingerprint: &str) -> String {
    fingerprint.split_whitespace().collect::<Vec<_>>().join(" ").to_ascii_lowercase()
}

/// A set of fingerprints, normalised, sorted and without duplicates: two descriptions
/// announce the same certificates when these are equal.
pub(crate) fn fingerprint_set<'a>(fingerprints: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut v: Vec<String> = fingerprints.into_iter().map(normalise).collect();
    v.sort();
    v.dedup();
    v
}

fn protocol(e: impl std::fmt::Display) -> DtlsError {
    DtlsError::Protocol(e.to_string())
}

fn srtp(e: impl std::fmt::Display) -> DtlsError {
    DtlsError::Srtp(e.to_string())
}
