//! The transport against an in-process DTLS client playing the browser (rtc-dtls as client,
//! its own certificate): checks, handshake, keys both ways, and what is refused.

use super::test_browser::{check, Browser, BRIDGE, BROWSER};
use super::*;
use rtc::dtls::endpoint::EndpointEvent;
use rtc::dtls::extension::extension_use_srtp::SrtpProtectionProfile;

fn rtp(ssrc: u32, seq: u16, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x80, 96];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&1234u32.to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

/// A receiver report (PT 201) with no report blocks.
fn rtcp_rr(ssrc: u32) -> Vec<u8> {
    let mut p = vec![0x80, 201, 0, 1];
    p.extend_from_slice(&ssrc.to_be_bytes());
    p
}

/// A bridge transport for a browser, its check answered; and the browser, handshake started.
fn checked(browser_fingerprint: Option<String>, profiles: Vec<SrtpProtectionProfile>) -> (Transport, Browser) {
    let identity = Identity::generate().unwrap();
    let (mut browser, client_config) = Browser::new(profiles);
    let remote = RemoteTransport { ufrag: "brws".into(), fingerprints: vec![browser_fingerprint.unwrap_or(browser.fingerprint.clone())] };
    let local = IceCredentials { ufrag: "brdg".into(), pwd: "bridge-password-0123456789".into() };
    let mut t = Transport::new(&identity, local, remote, BRIDGE);
    let now = Instant::now();
    assert_eq!(t.receive(now, BROWSER, &check("brdg:brws", "bridge-password-0123456789")), Ok(Received::Nothing));
    assert_eq!(t.state(), &TransportState::Connecting);
    let (to, _response) = t.poll_transmit().expect("the check is answered");
    assert_eq!(to, BROWSER);
    browser.dtls.connect(now, BRIDGE, client_config, None).unwrap();
    (t, browser)
}

/// Passes flights both ways until neither side has anything to send (bounded).
fn handshake(t: &mut Transport, browser: &mut Browser) -> Result<(), TransportError> {
    let now = Instant::now();
    for _ in 0..20 {
        let mut moved = false;
        while let Some(m) = browser.dtls.poll_transmit() {
            moved = true;
            t.receive(now, BROWSER, &m.message)?;
        }
        while let Some((to, bytes)) = t.poll_transmit() {
            assert_eq!(to, BROWSER);
            moved = true;
            for event in browser.dtls.read(now, BRIDGE, None, bytes).unwrap() {
                if let EndpointEvent::HandshakeComplete = event {
                    browser.key();
                }
            }
        }
        if !moved {
            return Ok(());
        }
    }
    panic!("the handshake did not settle in 20 rounds");
}

#[test]
fn a_browser_that_checks_and_shakes_hands_exchanges_srtp_both_ways() {
    let (mut t, mut browser) = checked(None, vec![SrtpProtectionProfile::Srtp_Aead_Aes_128_Gcm, SrtpProtectionProfile::Srtp_Aes128_Cm_Hmac_Sha1_80]);
    assert_eq!(t.protect_rtp(&rtp(1, 1, b"early")), Err(TransportError::NotConnected), "no keys before the handshake");
    handshake(&mut t, &mut browser).unwrap();
    assert_eq!(t.state(), &TransportState::Connected);
    let (out, inb) = browser.srtp.as_mut().expect("the browser keyed too");

    let sent = rtp(0xB0B, 7, b"camera frame");
    let now = Instant::now();
    let got = t.receive(now, BROWSER, &out.encrypt_rtp(&sent).unwrap()).unwrap();
    assert_eq!(got, Received::Rtp(BytesMut::from(&sent[..])), "the bridge decrypts what the browser sent");
    let report = rtcp_rr(0xB0B);
    assert_eq!(t.receive(now, BROWSER, &out.encrypt_rtcp(&report).unwrap()).unwrap(), Received::Rtcp(BytesMut::from(&report[..])));

    let forwarded = rtp(0xF00D, 100, b"another site's frame");
    let (to, datagram) = t.protect_rtp(&forwarded).unwrap();
    assert_eq!(to, BROWSER);
    assert_ne!(&datagram[12..], &forwarded[12..], "the payload leaves encrypted");
    assert_eq!(&inb.decrypt_rtp(&datagram).unwrap()[..], &forwarded[..], "the browser decrypts what the bridge forwards");
    let pli = [0x81, 206, 0, 2, 0, 0, 0, 1, 0, 0, 0x0B, 0x0B];
    let (_, datagram) = t.protect_rtcp(&pli).unwrap();
    assert_eq!(&inb.decrypt_rtcp(&datagram).unwrap()[..], &pli[..]);
}

#[test]
fn the_cbc_profile_is_accepted_when_the_browser_offers_only_that() {
    let (mut t, mut browser) = checked(None, vec![SrtpProtectionProfile::Srtp_Aes128_Cm_Hmac_Sha1_80]);
    handshake(&mut t, &mut browser).unwrap();
    let (out, _) = browser.srtp.as_mut().unwrap();
    let sent = rtp(5, 1, b"audio");
    assert_eq!(t.receive(Instant::now(), BROWSER, &out.encrypt_rtp(&sent).unwrap()).unwrap(), Received::Rtp(BytesMut::from(&sent[..])));
}

#[test]
fn a_certificate_that_does_not_match_the_sdp_fingerprint_fails_the_transport() {
    let wrong = format!("sha-256 {}", ["AA"; 32].join(":"));
    let (mut t, mut browser) = checked(Some(wrong), vec![SrtpProtectionProfile::Srtp_Aead_Aes_128_Gcm]);
    let err = handshake(&mut t, &mut browser).unwrap_err();
    assert_eq!(err, TransportError::Dtls(DtlsError::FingerprintMismatch));
    assert_eq!(t.state(), &TransportState::Failed(DtlsError::FingerprintMismatch));
    assert_eq!(t.protect_rtp(&rtp(1, 1, b"x")), Err(TransportError::NotConnected), "no keys for an impostor");
    assert_eq!(t.receive(Instant::now(), BROWSER, &rtp(1, 1, b"x")), Err(TransportError::Failed));
}

#[test]
fn dtls_and_srtp_from_an_address_ice_did_not_select_are_refused() {
    let (mut t, mut browser) = checked(None, vec![SrtpProtectionProfile::Srtp_Aead_Aes_128_Gcm]);
    let stranger: SocketAddr = "203.0.113.5:4000".parse().unwrap();
    let hello = browser.dtls.poll_transmit().unwrap().message;
    assert_eq!(t.receive(Instant::now(), stranger, &hello), Err(TransportError::NotSelected(stranger)));
    assert!(t.poll_transmit().is_none(), "nothing is sent to an unchecked address");
    // The real browser's handshake is unaffected.
    t.receive(Instant::now(), BROWSER, &hello).unwrap();
    handshake(&mut t, &mut browser).unwrap();
    let (out, _) = browser.srtp.as_mut().unwrap();
    let packet = out.encrypt_rtp(&rtp(1, 1, b"x")).unwrap();
    assert_eq!(t.receive(Instant::now(), stranger, &packet), Err(TransportError::NotSelected(stranger)));
    assert!(matches!(t.receive(Instant::now(), BROWSER, &packet), Ok(Received::Rtp(_))));
}

#[test]
fn a_replayed_or_forged_packet_is_refused_and_the_next_good_one_still_decrypts() {
    let (mut t, mut browser) = checked(None, vec![SrtpProtectionProfile::Srtp_Aead_Aes_128_Gcm]);
    handshake(&mut t, &mut browser).unwrap();
    let (out, _) = browser.srtp.as_mut().unwrap();
    let now = Instant::now();
    let first = out.encrypt_rtp(&rtp(1, 1, b"one")).unwrap();
    assert!(matches!(t.receive(now, BROWSER, &first), Ok(Received::Rtp(_))));
    assert!(matches!(t.receive(now, BROWSER, &first), Err(TransportError::Srtp(_))), "a replay");
    let mut forged = out.encrypt_rtp(&rtp(1, 2, b"two")).unwrap().to_vec();
    forged[14] ^= 0xFF;
    assert!(matches!(t.receive(now, BROWSER, &forged), Err(TransportError::Srtp(_))), "a flipped bit fails authentication");
    let third = rtp(1, 3, b"three");
    assert_eq!(t.receive(now, BROWSER, &out.encrypt_rtp(&third).unwrap()), Ok(Received::Rtp(BytesMut::from(&third[..]))));
    assert_eq!(t.receive(now, BROWSER, &[0xFF, 1, 2]), Err(TransportError::Unrecognised));
    assert_eq!(t.state(), &TransportState::Connected);
}

#[test]
fn consent_lost_stops_sending_and_a_new_check_brings_it_back() {
    let (mut t, mut browser) = checked(None, vec![SrtpProtectionProfile::Srtp_Aead_Aes_128_Gcm]);
    handshake(&mut t, &mut browser).unwrap();
    let due = t.poll_timeout().expect("consent is watched");
    t.handle_timeout(due).unwrap();
    assert_eq!(t.state(), &TransportState::ConsentLost);
    assert_eq!(t.protect_rtp(&rtp(1, 1, b"x")), Err(TransportError::NotConnected), "nothing is sent without consent");
    t.receive(due, BROWSER, &check("brdg:brws", "bridge-password-0123456789")).unwrap();
    assert_eq!(t.state(), &TransportState::Connected, "the keys survive; consent is back");
    assert!(t.protect_rtp(&rtp(1, 2, b"x")).is_ok());
}

#[test]
fn datagrams_are_classified_by_their_first_bytes() {
    assert_eq!(classify(&[0x00, 0x01]), Class::Stun);
    assert_eq!(classify(&[22, 254]), Class::Dtls);
    assert_eq!(classify(&[0x80, 96]), Class::Rtp);
    assert_eq!(classify(&[0x80, 96 | 0x80]), Class::Rtp, "a marked VP8 packet (PT 96 + marker = 224) is RTP");
    assert_eq!(classify(&[0x81, 200]), Class::Rtcp);
    assert_eq!(classify(&[0x8F, 206]), Class::Rtcp);
    assert_eq!(classify(&[0x80]), Class::Rtp);
    assert_eq!(classify(&[]), Class::Unknown);
    assert_eq!(classify(&[70]), Class::Unknown);
}

#[test]
fn a_handshake_that_never_completes_fails_the_transport_at_the_deadline() {
    let (mut t, mut browser) = checked(None, vec![SrtpProtectionProfile::Srtp_Aead_Aes_128_Gcm]);
    let start = Instant::now();
    // The browser's first flight arrives; the rest of the handshake is lost for good.
    while let Some(m) = browser.dtls.poll_transmit() {
        t.receive(start, BROWSER, &m.message).unwrap();
    }
    let mut now = start;
    for _ in 0..100 {
        let due = t.poll_timeout().expect("a retransmission or the deadline is due");
        assert!(due <= start + HANDSHAKE_DEADLINE + Duration::from_millis(1), "the deadline is never passed by");
        now = due.max(now);
        while t.poll_transmit().is_some() {}
        if let Err(e) = t.handle_timeout(now) {
            assert_eq!(e, TransportError::Dtls(DtlsError::HandshakeTimeout), "{e}");
            break;
        }
    }
    assert_eq!(t.state(), &TransportState::Failed(DtlsError::HandshakeTimeout));
    assert!(now >= start + HANDSHAKE_DEADLINE - Duration::from_millis(100), "not failed before its time");
}

#[test]
fn a_completed_handshake_has_no_deadline() {
    let (mut t, mut browser) = checked(None, vec![SrtpProtectionProfile::Srtp_Aead_Aes_128_Gcm]);
    handshake(&mut t, &mut browser).unwrap();
    assert!(t.handle_timeout(Instant::now() + HANDSHAKE_DEADLINE).is_ok(), "keyed: the deadline is gone");
    assert!(matches!(t.state(), TransportState::Connected | TransportState::ConsentLost));
}
