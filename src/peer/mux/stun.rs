//! Just enough STUN parsing to demultiplex (RFC 5389 header + the USERNAME attribute).
//!
//! The demultiplexer never authenticates anything: MESSAGE-INTEGRITY is checked by the
//! PeerConnection's own ICE agent after routing. Routing errors are therefore harmless
//! for security (the wrong PC rejects the packet), but they must be rare for correctness.

/// RFC 5389 magic cookie, bytes 4..8 of every STUN message.
const MAGIC_COOKIE: [u8; 4] = [0x21, 0x12, 0xA4, 0x42];
const ATTR_USERNAME: u16 = 0x0006;
const HEADER_LEN: usize = 20;

/// The four STUN message classes (RFC 5389 §6: bits C1 = 0x0100, C0 = 0x0010 of the type).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    Request,
    Indication,
    Success,
    Error,
}

/// What the demultiplexer needs to know about one datagram or TCP frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind<'a> {
    /// A STUN message: its class, transaction id and (for requests) the USERNAME value.
    Stun { class: Class, txid: [u8; 12], username: Option<&'a [u8]> },
    /// Anything else (DTLS 20..=63, SRTP/SRTCP 128..=191, RFC 7983).
    Other,
}

/// Classifies `b` (RFC 7983 first-byte rule, then the STUN header). Cheap for non-STUN.
pub fn classify(b: &[u8]) -> Kind<'_> {
    // First byte 0..=3 and the magic cookie: STUN. Everything else goes by address.
    if b.len() < HEADER_LEN || b[0] > 3 || b[4..8] != MAGIC_COOKIE {
        return Kind::Other;
    }
    let typ = u16::from_be_bytes([b[0], b[1]]);
    let class = match ((typ & 0x0100) >> 7) | ((typ & 0x0010) >> 4) {
        0 => Class::Request,
        1 => Class::Indication,
        2 => Class::Success,
        _ => Class::Error,
    };
    let mut txid = [0u8; 12];
    txid.copy_from_slice(&b[8..20]);
    let username = if class == Class::Request { find_attr(b, ATTR_USERNAME) } else { None };
    Kind::Stun { class, txid, username }
}

/// Walks the TLV attributes (each padded to 4 bytes) and returns the first `want` value.
fn find_attr(b: &[u8], want: u16) -> Option<&[u8]> {
    let declared = u16::from_be_bytes([b[2], b[3]]) as usize;
    let end = (HEADER_LEN + declared).min(b.len());
    let mut off = HEADER_LEN;
    while off + 4 <= end {
        let typ = u16::from_be_bytes([b[off], b[off + 1]]);
        let len = u16::from_be_bytes([b[off + 2], b[off + 3]]) as usize;
        let value = b.get(off + 4..off + 4 + len)?;
        if typ == want {
            return Some(value);
        }
        off += 4 + ((len + 3) & !3);
    }
    None
}

/// USERNAME of a Binding request is `"<receiver's ufrag>:<sender's ufrag>"` (RFC 8445 §7.2.2),
/// so the part before ':' is the ufrag of *our* PeerConnection.
pub fn local_ufrag(username: &[u8]) -> Option<&str> {
    let s = std::str::from_utf8(username).ok()?;
    let (local, _remote) = s.split_once(':')?;
    (!local.is_empty()).then_some(local)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A Binding request with USERNAME "srv1:abcd" and one more attribute after it.
    fn request() -> Vec<u8> {
        let mut m = vec![0x00, 0x01, 0, 0];
        m.extend_from_slice(&MAGIC_COOKIE);
        m.extend_from_slice(&[7; 12]);
        let user = b"srv1:abcd"; // 9 bytes -> 3 bytes of padding
        m.extend_from_slice(&ATTR_USERNAME.to_be_bytes());
        m.extend_from_slice(&(user.len() as u16).to_be_bytes());
        m.extend_from_slice(user);
        m.extend_from_slice(&[0, 0, 0]);
        m.extend_from_slice(&[0x80, 0x2A, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8]); // ICE-CONTROLLING
        let len = (m.len() - HEADER_LEN) as u16;
        m[2..4].copy_from_slice(&len.to_be_bytes());
        m
    }

    #[test]
    fn request_username_is_found() {
        let m = request();
        match classify(&m) {
            Kind::Stun { class: Class::Request, txid, username: Some(u) } => {
                assert_eq!(txid, [7; 12]);
                assert_eq!(local_ufrag(u), Some("srv1"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn classes_and_non_stun() {
        let mut m = request();
        m[0] = 0x01;
        m[1] = 0x01; // Binding success response
        assert!(matches!(classify(&m), Kind::Stun { class: Class::Success, username: None, .. }));
        m[1] = 0x11; // error response
        assert!(matches!(classify(&m), Kind::Stun { class: Class::Error, .. }));
        assert_eq!(classify(&[0x80; 40]), Kind::Other); // RTP
        assert_eq!(classify(&[22; 40]), Kind::Other); // DTLS handshake
        assert_eq!(classify(&[0; 10]), Kind::Other); // too short
    }

    #[test]
    fn truncated_attribute_is_not_read() {
        let mut m = request();
        m.truncate(26);
        assert!(matches!(classify(&m), Kind::Stun { username: None, .. }));
    }
}
