//! Redundant audio (RFC 2198, `audio/red`): each packet carries the current Opus frame
//! (the *primary*) after copies of earlier ones, so a receiver that lost a packet finds its
//! frame in the next. Chromium and Safari send it when the answer puts `red` first.
//!
//! The bridge forwards RED as it comes to receivers that accepted it, and the primary alone
//! (a plain Opus packet, same sequence number and timestamp) to those that did not (Firefox,
//! a recording). Nothing here allocates unless a block's payload type must change.
//!
//! ```text
//!  redundant block header (4 bytes)        primary header (1 byte)
//!  |1| block PT |  ts offset  | length |    |0| block PT |
//! ```
//! then each redundant block's data in order, then the primary's data.
//!
//! A packet of padding alone (no payload: Chromium pads its audio stream so when it probes
//! the line) has no blocks; it is well formed, renumbers to itself and carries no frame.

use super::{Codec, RtpPacket};
use std::ops::Range;

/// More redundant blocks than this in one packet is refused (Chromium sends one or two).
const MAX_REDUNDANT: usize = 8;

/// Why a RED payload is not forwarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RedError {
    #[error("RED headers or block lengths run past the packet")]
    Truncated,
    #[error("more than {MAX_REDUNDANT} redundant blocks")]
    TooManyBlocks,
    #[error("a block carries payload type {0}, not the stream's Opus")]
    ForeignBlock(u8),
}

/// The payload's layout: where each block's header byte (the one holding its payload type)
/// is, and the primary's data.
struct Layout {
    headers: [usize; MAX_REDUNDANT + 1],
    count: usize,
    primary: Range<usize>,
}

impl Layout {
    fn read(payload: &[u8]) -> Result<Layout, RedError> {
        let mut layout = Layout { headers: [0; MAX_REDUNDANT + 1], count: 0, primary: 0..0 };
        if payload.is_empty() {
            return Ok(layout);
        }
        let (mut at, mut redundant_bytes) = (0usize, 0usize);
        loop {
            let first = *payload.get(at).ok_or(RedError::Truncated)?;
            if layout.count > MAX_REDUNDANT {
                return Err(RedError::TooManyBlocks);
            }
            layout.headers[layout.count] = at;
            layout.count += 1;
            if first & 0x80 == 0 {
                at += 1;
                break;
            }
            let header = payload.get(at..at + 4).ok_or(RedError::Truncated)?;
            redundant_bytes += (usize::from(header[2] & 0x03) << 8) | usize::from(header[3]);
            at += 4;
        }
        let start = at + redundant_bytes;
        if start > payload.len() {
            return Err(RedError::Truncated);
        }
        layout.primary = start..payload.len();
        Ok(layout)
    }

    fn pts<'a>(&'a self, payload: &'a [u8]) -> impl Iterator<Item = u8> + 'a {
        self.headers[..self.count].iter().map(|&at| payload[at] & 0x7f)
    }
}

/// The primary block's data, if `payload` is well formed (empty for padding alone).
pub fn primary(payload: &[u8]) -> Result<Range<usize>, RedError> {
    Layout::read(payload).map(|l| l.primary)
}

/// Checks that every block of `payload` carries payload type `from` (the stream's Opus) and
/// renumbers them `to`. Copies the payload only when the numbers differ.
pub fn renumber(payload: &mut bytes::Bytes, from: u8, to: u8) -> Result<(), RedError> {
    let layout = Layout::read(payload)?;
    if let Some(foreign) = layout.pts(payload).find(|pt| *pt != from) {
        return Err(RedError::ForeignBlock(foreign));
    }
    if from != to {
        let mut owned = bytes::BytesMut::from(&payload[..]);
        for &at in &layout.headers[..layout.count] {
            owned[at] = (owned[at] & 0x80) | (to & 0x7f);
        }
        *payload = owned.freeze();
    }
    Ok(())
}

/// A forwarded RED packet (the bridge's payload types) as the plain Opus packet it carries:
/// the primary block alone, same sequence number and timestamp. `None` if it is malformed,
/// or padding alone (there is no frame to keep).
pub fn into_primary(mut packet: RtpPacket) -> Option<RtpPacket> {
    if packet.payload.is_empty() {
        return None;
    }
    let range = primary(&packet.payload).ok()?;
    packet.payload = packet.payload.slice(range);
    packet.header.payload_type = Codec::Opus.internal_pt();
    Some(packet)
}

/// A RED payload: `(pt, ts_offset, data)` redundant blocks, then the primary. Each block's
/// data must be under 1 024 bytes (its length has 10 bits). The bridge only reads RED; tests
/// and simulated sites write it with this.
pub fn encode(redundant: &[(u8, u16, &[u8])], primary_pt: u8, primary: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for (pt, offset, data) in redundant {
        let len = data.len() as u16;
        out.push(0x80 | pt);
        out.push((offset >> 6) as u8);
        out.push(((offset & 0x3f) << 2) as u8 | (len >> 8) as u8);
        out.push(len as u8);
    }
    out.push(primary_pt);
    for (_, _, data) in redundant {
        out.extend_from_slice(data);
    }
    out.extend_from_slice(primary);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use encode as red;

    #[test]
    fn the_primary_is_the_data_after_every_redundant_block() {
        let payload = red(&[(111, 960, b"older"), (111, 480, b"old")], 111, b"current");
        assert_eq!(&payload[primary(&payload).unwrap()], b"current");
        let alone = red(&[], 111, b"first");
        assert_eq!(&alone[primary(&alone).unwrap()], b"first", "a first packet has nothing earlier to repeat");
    }

    #[test]
    fn a_stripped_packet_is_plain_opus_with_the_same_numbers() {
        let mut p = RtpPacket::default();
        (p.header.sequence_number, p.header.timestamp, p.header.payload_type) = (7, 4800, Codec::Red.internal_pt());
        p.payload = bytes::Bytes::from(red(&[(111, 960, b"old")], 111, b"now"));
        let opus = into_primary(p).unwrap();
        assert_eq!((opus.header.sequence_number, opus.header.timestamp, opus.header.payload_type), (7, 4800, Codec::Opus.internal_pt()));
        assert_eq!(&opus.payload[..], b"now");
    }

    #[test]
    fn blocks_are_renumbered_and_only_then_copied() {
        let mut payload = bytes::Bytes::from(red(&[(109, 960, b"old")], 109, b"now"));
        renumber(&mut payload, 109, 111).unwrap();
        assert_eq!(&payload[..], &red(&[(111, 960, b"old")], 111, b"now")[..]);
        let before = payload.as_ptr();
        renumber(&mut payload, 111, 111).unwrap();
        assert_eq!(payload.as_ptr(), before, "same numbers: the payload is not copied");
    }

    #[test]
    fn padding_alone_passes_renumbered_as_it_is_and_carries_no_frame() {
        let mut padding = bytes::Bytes::new();
        renumber(&mut padding, 109, 111).unwrap();
        assert!(padding.is_empty());
        assert_eq!(primary(&padding), Ok(0..0));
        let mut p = RtpPacket::default();
        p.header.payload_type = Codec::Red.internal_pt();
        assert!(into_primary(p).is_none(), "nothing to record");
    }

    #[test]
    fn malformed_or_foreign_payloads_are_refused() {
        let good = red(&[(111, 960, b"old")], 111, b"now");
        assert_eq!(primary(&good[..1]), Err(RedError::Truncated), "a redundant header alone");
        assert_eq!(primary(&good[..3]), Err(RedError::Truncated), "header cut");
        assert_eq!(primary(&good[..6]), Err(RedError::Truncated), "redundant block longer than the packet");
        let endless = vec![0x80 | 111; 4 * (MAX_REDUNDANT + 2)];
        assert!(primary(&endless).is_err(), "no primary header: refused, not looped over");
        let many: Vec<(u8, u16, &[u8])> = vec![(111, 1, b"x"); MAX_REDUNDANT + 1];
        assert_eq!(primary(&red(&many, 111, b"p")), Err(RedError::TooManyBlocks));
        let mut dtmf = bytes::Bytes::from(red(&[(110, 960, b"old")], 111, b"now"));
        assert_eq!(renumber(&mut dtmf, 111, 111), Err(RedError::ForeignBlock(110)));
    }
}
