//! A browser's half of the transport, for tests: a real DTLS client (rtc-dtls) with its own
//! certificate, its ICE connectivity checks, and its SRTP once keyed. The transport's tests and
//! the session's drive the bridge with it in process, on simulated time.

use super::dtls;
use rtc::crypto::providers::RingProvider;
use rtc::crypto::RTCCryptoProvider;
use rtc::dtls::config::{ConfigBuilder, ExtendedMasterSecretType};
use rtc::dtls::crypto::Certificate;
use rtc::dtls::endpoint::Endpoint;
use rtc::dtls::extension::extension_use_srtp::SrtpProtectionProfile;
use rtc::shared::TransportProtocol;
use rtc::srtp::context::Context;
use rtc::srtp::protection_profile::ProtectionProfile;
use rtc::stun::attributes::{ATTR_USERNAME, ATTR_USE_CANDIDATE};
use rtc::stun::fingerprint::FINGERPRINT;
use rtc::stun::integrity::MessageIntegrity;
use rtc::stun::message::{Message, Setter, TransactionId, BINDING_REQUEST};
use rtc::stun::textattrs::TextAttribute;
use std::net::SocketAddr;
use std::sync::Arc;

pub(crate) const BRIDGE: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1)), 10000);
pub(crate) const BROWSER: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::new(198, 51, 100, 9)), 53000);

/// The browser's half: a DTLS client with its own certificate, and its SRTP once keyed.
pub(crate) struct Browser {
    pub(crate) dtls: Endpoint,
    provider: Arc<dyn RTCCryptoProvider>,
    pub(crate) fingerprint: String,
    /// (outbound, inbound)
    pub(crate) srtp: Option<(Context, Context)>,
}

impl Browser {
    pub(crate) fn new(profiles: Vec<SrtpProtectionProfile>) -> (Browser, Arc<rtc::dtls::config::HandshakeConfig>) {
        let provider: Arc<dyn RTCCryptoProvider> = Arc::new(RingProvider::new());
        let cert = Certificate::generate_self_signed(vec!["browser".to_owned()], provider.crypto()).unwrap();
        let fingerprint = dtls::sha256_fingerprint(cert.certificate[0].as_ref());
        let config = ConfigBuilder::default()
            .with_crypto_provider(provider.clone())
            .with_certificates(vec![cert])
            .with_srtp_protection_profiles(profiles)
            .with_insecure_skip_verify(true)
            .with_extended_master_secret(ExtendedMasterSecretType::Require)
            .build(true, Some(BRIDGE))
            .unwrap();
        let dtls = Endpoint::new(BROWSER, TransportProtocol::UDP, None);
        (Browser { dtls, provider, fingerprint, srtp: None }, Arc::new(config))
    }

    /// Its (outbound, inbound) SRTP from the completed handshake, as a DTLS client keys it.
    pub(crate) fn key(&mut self) {
        let state = self.dtls.get_connection_state(BRIDGE).unwrap();
        let profile = match state.srtp_protection_profile() {
            SrtpProtectionProfile::Srtp_Aead_Aes_128_Gcm => ProtectionProfile::AeadAes128Gcm,
            _ => ProtectionProfile::Aes128CmHmacSha1_80,
        };
        let mut config = rtc::srtp::config::Config { profile, ..Default::default() };
        let material = state.export_keying_material(rtc::srtp::config::LABEL_EXTRACTOR_DTLS_SRTP, &[], config.keying_material_len()).unwrap();
        config.set_session_keys_from_keying_material(material.as_ref(), true).unwrap();
        let k = &config.keys;
        let c = self.provider.crypto();
        let out = Context::new(&k.local_master_key, &k.local_master_salt, profile, None, None, c).unwrap();
        let inb = Context::new(&k.remote_master_key, &k.remote_master_salt, profile, None, None, c).unwrap();
        self.srtp = Some((out, inb));
    }
}

pub(crate) fn check(username: &str, pwd: &str) -> Vec<u8> {
    let mut m = Message::new();
    m.write_header();
    BINDING_REQUEST.add_to(&mut m).unwrap();
    TransactionId::new().add_to(&mut m).unwrap();
    TextAttribute::new(ATTR_USERNAME, username.into()).add_to(&mut m).unwrap();
    m.add(ATTR_USE_CANDIDATE, &[]);
    MessageIntegrity::new_short_term_integrity_with_provider(pwd.into(), &rtc::crypto::providers::RingCrypto).add_to(&mut m).unwrap();
    FINGERPRINT.add_to(&mut m).unwrap();
    m.raw
}
