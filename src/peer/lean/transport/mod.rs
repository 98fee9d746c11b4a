//! The bridge's own transport for one site: ICE-lite, DTLS-SRTP and the SRTP contexts, as a
//! sans-IO state machine (datagrams and time in, datagrams and state out; no socket, no clock).
//!
//! This is the first part of the lean media path (docs/performance.md, "Why not 120 000
//! packets per core"): with the keys in the bridge's hands, forwarding a packet to a site is a
//! header rewrite, one [`Transport::protect_rtp`] and one `sendto`, with no PeerConnection
//! driver loop around it. It is proven against Chromium (`tests/browser_transport.rs`) and
//! does not carry meetings yet: the PeerConnections of [`super`] still do.
//!
//! Datagrams are told apart by their first byte (RFC 7983): 0–3 STUN, 20–63 DTLS, 128–191
//! RTP and RTCP (RTCP when the second byte, the packet type, is 192–223; RFC 5761). DTLS and
//! SRTP are accepted only from the address ICE selected; everything refused comes back as a
//! [`TransportError`] and leaves the transport as it was.

pub(crate) mod dtls;
pub mod ice_lite;

use bytes::BytesMut;
pub use dtls::{DtlsError, Identity};
use dtls::{DtlsServer, Srtp};
use ice_lite::IceLite;
pub use ice_lite::{CheckError, IceCredentials};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// How long a selected pair may wait for the DTLS handshake to complete. A browser's
/// retransmissions (1, 2, 4, 8 s apart) get through a lossy line well within it; past it the
/// association is stuck, and failing it lets the page join again with a fresh one instead of
/// waiting for media that never comes.
pub(crate) const HANDSHAKE_DEADLINE: Duration = Duration::from_secs(20);

/// What the site's SDP says about its end of the transport.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteTransport {
    pub ufrag: String,
    /// `a=fingerprint:` values, e.g. `sha-256 AB:CD:…`.
    pub fingerprints: Vec<String>,
}

/// Where one site's transport stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransportState {
    /// No valid connectivity check yet.
    New,
    /// A pair is selected; the DTLS handshake has not completed.
    Connecting,
    /// SRTP keys are in place: media flows both ways.
    Connected,
    /// The browser stopped confirming consent on the selected pair (RFC 7675).
    ConsentLost,
    /// The DTLS handshake failed or the certificate did not match; nothing more is accepted.
    Failed(DtlsError),
}

/// What one received datagram carried for the layers above.
#[derive(Debug, PartialEq, Eq)]
pub enum Received {
    /// Nothing for the media path (a check answered, a handshake flight).
    Nothing,
    /// A decrypted RTP packet.
    Rtp(BytesMut),
    /// A decrypted RTCP compound packet.
    Rtcp(BytesMut),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    #[error("connectivity check refused: {0}")]
    Check(#[from] CheckError),
    #[error(transparent)]
    Dtls(#[from] DtlsError),
    #[error("SRTP: {0}")]
    Srtp(String),
    #[error("no SRTP keys yet (the DTLS handshake has not completed)")]
    NotConnected,
    #[error("a DTLS or SRTP datagram from {0}, which is not the address ICE selected")]
    NotSelected(SocketAddr),
    #[error("not a STUN, DTLS, RTP or RTCP datagram")]
    Unrecognised,
    #[error("the transport has failed and accepts nothing more")]
    Failed,
}

/// The kinds of datagram that share a site's 5-tuple (RFC 7983).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    Stun,
    Dtls,
    Rtp,
    Rtcp,
    Unknown,
}

pub fn classify(datagram: &[u8]) -> Class {
    match datagram.first() {
        Some(0..=3) => Class::Stun,
        Some(20..=63) => Class::Dtls,
        Some(128..=191) if datagram.len() >= 2 && (192..=223).contains(&datagram[1]) => Class::Rtcp,
        Some(128..=191) => Class::Rtp,
        _ => Class::Unknown,
    }
}

/// One site's transport.
pub struct Transport {
    ice: IceLite,
    dtls: DtlsServer,
    srtp: Option<Srtp>,
    state: TransportState,
    /// When the first check selected a pair; the handshake must complete by
    /// [`HANDSHAKE_DEADLINE`] after it.
    checked_at: Option<Instant>,
    outbox: VecDeque<(SocketAddr, BytesMut)>,
}

impl Transport {
    /// `local_addr` is the bridge's socket the site reaches (the shared media port).
    pub fn new(identity: &Identity, local: IceCredentials, remote: RemoteTransport, local_addr: SocketAddr) -> Self {
        Transport {
            ice: IceLite::new(local, remote.ufrag),
            dtls: DtlsServer::new(identity, local_addr, remote.fingerprints),
            srtp: None,
            state: TransportState::New,
            checked_at: None,
            outbox: VecDeque::new(),
        }
    }

    /// The browser's ufrag of the current ICE generation.
    pub(crate) fn remote_ufrag(&self) -> &str {
        self.ice.remote_ufrag()
    }

    pub fn state(&self) -> &TransportState {
        &self.state
    }

    /// The address media is sent to, once a check selected one.
    pub(crate) fn remote(&self) -> Option<SocketAddr> {
        self.ice.selected()
    }

    /// An ICE restart: new credentials on both sides. The DTLS association and its SRTP keys
    /// stay; media goes out again once the browser's checks select a pair.
    pub(crate) fn restart_ice(&mut self, local: IceCredentials, remote_ufrag: impl Into<String>) {
        self.ice = IceLite::new(local, remote_ufrag);
        if self.state == TransportState::ConsentLost {
            self.state = TransportState::Connecting;
        }
    }

    /// Takes one datagram the site sent from `from`.
    pub fn receive(&mut self, now: Instant, from: SocketAddr, datagram: &[u8]) -> Result<Received, TransportError> {
        if matches!(self.state, TransportState::Failed(_)) {
            return Err(TransportError::Failed);
        }
        match classify(datagram) {
            Class::Stun => {
                let answer = self.ice.answer(now, from, datagram)?;
                self.outbox.push_back((from, BytesMut::from(&answer.response[..])));
                if matches!(self.state, TransportState::New | TransportState::ConsentLost) {
                    self.state = if self.srtp.is_some() { TransportState::Connected } else { TransportState::Connecting };
                }
                self.checked_at.get_or_insert(now);
                Ok(Received::Nothing)
            }
            Class::Dtls => {
                self.check_selected(from)?;
                let keyed = self.dtls.read(now, from, datagram);
                self.drain_dtls();
                match keyed {
                    Ok(Some(srtp)) => {
                        self.srtp = Some(srtp);
                        self.state = TransportState::Connected;
                    }
                    Ok(None) => {}
                    Err(e @ (DtlsError::FingerprintMismatch | DtlsError::NoSrtpProfile)) => {
                        self.state = TransportState::Failed(e.clone());
                        return Err(e.into());
                    }
                    Err(e) => return Err(e.into()),
                }
                Ok(Received::Nothing)
            }
            class @ (Class::Rtp | Class::Rtcp) => {
                self.check_selected(from)?;
                let srtp = self.srtp.as_mut().ok_or(TransportError::NotConnected)?;
                let plain = if class == Class::Rtp { srtp.inbound.decrypt_rtp(datagram) } else { srtp.inbound.decrypt_rtcp(datagram) };
                let plain = plain.map_err(|e| TransportError::Srtp(e.to_string()))?;
                Ok(if class == Class::Rtp { Received::Rtp(plain) } else { Received::Rtcp(plain) })
            }
            Class::Unknown => Err(TransportError::Unrecognised),
        }
    }

    /// Encrypts one RTP packet for the site: the datagram and where to send it.
    pub fn protect_rtp(&mut self, packet: &[u8]) -> Result<(SocketAddr, BytesMut), TransportError> {
        let (to, srtp) = self.keyed()?;
        let bytes = srtp.outbound.encrypt_rtp(packet).map_err(|e| TransportError::Srtp(e.to_string()))?;
        Ok((to, bytes))
    }

    /// Encrypts one RTCP compound packet for the site.
    pub fn protect_rtcp(&mut self, packet: &[u8]) -> Result<(SocketAddr, BytesMut), TransportError> {
        let (to, srtp) = self.keyed()?;
        let bytes = srtp.outbound.encrypt_rtcp(packet).map_err(|e| TransportError::Srtp(e.to_string()))?;
        Ok((to, bytes))
    }

    /// The next datagram of the transport itself (check responses, handshake flights).
    pub fn poll_transmit(&mut self) -> Option<(SocketAddr, BytesMut)> {
        self.outbox.pop_front()
    }

    /// When [`Self::handle_timeout`] is next due: a handshake retransmission or consent.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let consent = (self.state != TransportState::ConsentLost).then(|| self.ice.consent_deadline()).flatten();
        [self.dtls.poll_timeout(), consent, self.handshake_deadline()].into_iter().flatten().min()
    }

    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), TransportError> {
        if matches!(self.state, TransportState::Failed(_)) {
            return Ok(());
        }
        let stuck = self.handshake_deadline().is_some_and(|at| now >= at);
        if let Err(e) = if stuck { Err(DtlsError::HandshakeTimeout) } else { self.dtls.handle_timeout(now) } {
            // Retransmissions exhausted (the browser is gone or cannot reach us), or a
            // handshake that never completes.
            self.state = TransportState::Failed(e.clone());
            return Err(e.into());
        }
        self.drain_dtls();
        if self.ice.consent_expired(now) {
            self.state = TransportState::ConsentLost;
        }
        Ok(())
    }

    /// While a checked pair waits for its keys: when the handshake must have completed.
    fn handshake_deadline(&self) -> Option<Instant> {
        self.checked_at.filter(|_| self.srtp.is_none()).map(|at| at + HANDSHAKE_DEADLINE)
    }

    /// DTLS and media are taken from the selected address or another that passed a check
    /// (which then becomes the selected one); never from an address that did not.
    fn check_selected(&mut self, from: SocketAddr) -> Result<(), TransportError> {
        if self.ice.accept_from(from) {
            Ok(())
        } else {
            Err(TransportError::NotSelected(from))
        }
    }

    fn keyed(&mut self) -> Result<(SocketAddr, &mut Srtp), TransportError> {
        if self.state == TransportState::ConsentLost {
            return Err(TransportError::NotConnected);
        }
        let to = self.ice.selected().ok_or(TransportError::NotConnected)?;
        let srtp = self.srtp.as_mut().ok_or(TransportError::NotConnected)?;
        Ok((to, srtp))
    }

    fn drain_dtls(&mut self) {
        while let Some(datagram) = self.dtls.poll_transmit() {
            self.outbox.push_back(datagram);
        }
    }
}

#[cfg(test)]
pub(crate) mod test_browser;
#[cfg(test)]
mod tests;
