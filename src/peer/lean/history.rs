//! The packets recently sent into one output slot, kept to answer the receiver's NACKs
//! (RFC 4585 §6.2.1) by sending them again: on the slot's retransmission stream when the
//! receiver accepted one ([`super::rtx`]), else as the packet itself (same SSRC and sequence
//! number), as webrtc-rs's responder does.
//! A slot's history holds references: the payload is the router's shared `Bytes`, so keeping
//! it costs a header per packet, not a copy.

use super::rtx::RtxStream;
use crate::media::RtpPacket;
use std::time::{Duration, Instant};

/// Packets kept per slot: about 1.7 s of a 2.5 Mbit/s camera (≈ 300 packets/s).
pub(crate) const HISTORY: usize = 512;

#[derive(Debug)]
pub struct History {
    /// Each packet with when it was last sent again.
    ring: Vec<Option<(RtpPacket, Option<Instant>)>>,
    /// Where retransmissions go, if the receiver accepted a stream for them.
    rtx: Option<RtxStream>,
    /// The payload type and timestamp of the newest packet sent.
    last: Option<(u8, u32)>,
}

impl Default for History {
    fn default() -> Self {
        History { ring: vec![None; HISTORY], rtx: None, last: None }
    }
}

impl History {
    /// Remembers a packet as it was sent (after the slot's rewrite).
    pub fn push(&mut self, packet: &RtpPacket) {
        let seq = packet.header.sequence_number;
        self.last = Some((packet.header.payload_type, packet.header.timestamp));
        self.ring[seq as usize % HISTORY] = Some((packet.clone(), None));
    }

    /// Whether [`History::padding`] has a stream, and a format on it, to pad with.
    pub(crate) fn can_pad(&self) -> bool {
        self.last.zip(self.rtx.as_ref()).is_some_and(|((pt, _), rtx)| rtx.format_for(pt).is_some())
    }

    /// A packet of padding alone on the retransmission stream, for a probe of the line: none
    /// without a stream, or before the slot has sent anything.
    pub(crate) fn padding(&mut self) -> Option<RtpPacket> {
        let (pt, timestamp) = self.last?;
        self.rtx.as_mut()?.padding(pt, timestamp)
    }

    #[cfg(test)]
    /// The packet sent with `seq`, if it is still kept.
    pub(crate) fn get(&self, seq: u16) -> Option<&RtpPacket> {
        self.ring[seq as usize % HISTORY].as_ref().map(|(p, _)| p).filter(|p| p.header.sequence_number == seq)
    }

    /// The receiver's (re)negotiated retransmission stream, or none. The same stream
    /// renegotiated goes on with its numbering (a jump back would fall in the receiver's
    /// replay window).
    pub(crate) fn set_rtx(&mut self, rtx: Option<RtxStream>) {
        self.rtx = match (self.rtx.take(), rtx) {
            (Some(old), Some(new)) => Some(new.continuing(&old)),
            (_, new) => new,
        };
    }

    /// What to send for a NACK of `seq` (see [`History::resend`]): the packet wrapped for
    /// the retransmission stream when there is one (padding too: a receiver fills the gap in
    /// the sequence with it), else the packet itself. `allow` is asked first, with the size
    /// that would be sent: a refused packet takes no number of the retransmission stream.
    pub(crate) fn retransmission(&mut self, seq: u16, now: Instant, gap: Duration, allow: impl FnOnce(usize) -> bool) -> Retransmission {
        let Some(packet) = self.resend(seq, now, gap).cloned() else { return Retransmission::Skipped };
        let (size, rtx) = match self.rtx.as_mut().and_then(|rtx| Some((rtx.rtx_pt(&packet)?, rtx))) {
            Some((rtx_pt, rtx)) => (packet.payload.len() + 2 + 12, Some((rtx_pt, rtx))),
            None => (packet.payload.len() + 12, None),
        };
        if !allow(size) {
            return Retransmission::OverBudget;
        }
        Retransmission::Send(match rtx {
            Some((rtx_pt, rtx)) => rtx.wrap(packet, rtx_pt),
            None => packet,
        })
    }

    /// The packet to send again for a NACK of `seq`, unless it was sent again less than `gap`
    /// ago (a repeated NACK asks for what is already on its way); marks it sent at `now`.
    pub fn resend(&mut self, seq: u16, now: Instant, gap: Duration) -> Option<&RtpPacket> {
        let (packet, last) = self.ring[seq as usize % HISTORY].as_mut().filter(|(p, _)| p.header.sequence_number == seq)?;
        if last.is_some_and(|at| now.saturating_duration_since(at) < gap) {
            return None;
        }
        *last = Some(now);
        Some(packet)
    }
}

/// The answer to one NACKed sequence number.
#[derive(Debug)]
pub(crate) enum Retransmission {
    /// Send this.
    Send(RtpPacket),
    /// Nothing to send: no longer kept, or already sent again within the gap.
    Skipped,
    /// The site's budget refused it (and would refuse the rest of this NACK).
    OverBudget,
}

impl Retransmission {
    #[cfg(test)]
    fn packet(self) -> Option<RtpPacket> {
        match self {
            Retransmission::Send(p) => Some(p),
            _ => None,
        }
    }
}

/// The sequence numbers one NACK entry asks for: `packet_id` and each bit of the bitmask of
/// the 16 that follow it.
pub fn requested(packet_id: u16, lost_packets: u16) -> impl Iterator<Item = u16> {
    std::iter::once(packet_id).chain((0..16).filter(move |i| lost_packets & (1 << i) != 0).map(move |i| packet_id.wrapping_add(i + 1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(seq: u16) -> RtpPacket {
        let mut p = RtpPacket::default();
        p.header.sequence_number = seq;
        p.payload = bytes::Bytes::from(vec![seq as u8; 10]);
        p
    }

    #[test]
    fn a_packet_is_found_by_its_sequence_number_until_it_is_overwritten() {
        let mut h = History::default();
        // The last 512 sent, across the wrap of the sequence number: 65 100 … 65 535, 0 … 75.
        for seq in (65_100u16..=65_535).chain(0..76) {
            h.push(&packet(seq));
        }
        assert_eq!(h.get(65_535).map(|p| p.payload[0]), Some(255), "across the wrap");
        assert_eq!(h.get(75).map(|p| p.header.sequence_number), Some(75));
        assert!(h.get(76).is_none(), "never sent");
        assert!(h.get(65_100).is_some(), "the oldest of the last 512");
        h.push(&packet(76));
        assert!(h.get(65_100).is_none(), "its place was taken by the next packet");
        assert!(h.get(65_101).is_some());
    }

    #[test]
    fn a_packet_is_sent_again_once_per_gap_however_often_it_is_asked_for() {
        let t0 = Instant::now();
        let gap = Duration::from_millis(100);
        let mut h = History::default();
        h.push(&packet(7));
        assert!(h.resend(7, t0, gap).is_some());
        assert!(h.resend(7, t0 + Duration::from_millis(30), gap).is_none(), "already on its way");
        assert!(h.resend(7, t0 + gap, gap).is_some(), "asked again after the gap");
        assert!(h.resend(8, t0, gap).is_none(), "never sent");
    }

    #[test]
    fn a_nack_entry_names_its_packet_and_the_bits_that_follow() {
        assert_eq!(requested(100, 0).collect::<Vec<_>>(), vec![100]);
        assert_eq!(requested(100, 0b101).collect::<Vec<_>>(), vec![100, 101, 103]);
        assert_eq!(requested(65_535, 1 << 15).collect::<Vec<_>>(), vec![65_535, 15], "wrapping");
    }

    #[test]
    fn with_a_retransmission_stream_packets_and_padding_go_on_it_within_the_budget() {
        use crate::media::codec::{Codec, PayloadTypes};
        let t0 = Instant::now();
        let gap = Duration::from_millis(100);
        let vp8 = |seq: u16, payload: &'static [u8]| {
            let mut p = packet(seq);
            (p.header.ssrc, p.header.payload_type, p.header.padding) = (5, 96, payload.is_empty());
            p.payload = bytes::Bytes::from_static(payload);
            p
        };
        let mut h = History::default();
        for (seq, payload) in [(1, &b"frame"[..]), (2, &b""[..]), (3, &b"more"[..])] {
            h.push(&vp8(seq, payload));
        }
        // Without a stream: the packet itself, refused when the budget says no.
        assert_eq!(h.retransmission(1, t0, gap, |_| true).packet().map(|p| p.header.ssrc), Some(5));
        assert!(matches!(h.retransmission(3, t0, gap, |_| false), Retransmission::OverBudget));
        assert!(matches!(h.retransmission(7, t0, gap, |_| true), Retransmission::Skipped), "never sent");
        h.set_rtx(super::super::rtx::RtxStream::new(crate::media::Ssrc(9), PayloadTypes::single(Codec::Vp8, 96), PayloadTypes::single(Codec::Vp8, 97)));
        let later = t0 + gap;
        let mut sizes = Vec::new();
        let frame = h.retransmission(1, later, gap, |n| {
            sizes.push(n);
            true
        });
        let frame = frame.packet().unwrap();
        assert_eq!((frame.header.ssrc, frame.header.payload_type, &frame.payload[..]), (9, 97, &[0, 1, b'f', b'r', b'a', b'm', b'e'][..]));
        assert_eq!(sizes, vec![12 + 2 + 5], "the budget is asked with what goes on the wire");
        let padding = h.retransmission(2, later, gap, |_| true).packet().unwrap();
        assert_eq!((padding.header.ssrc, &padding.payload[..]), (9, &[0, 2][..]), "padding fills its gap too");
        assert!(matches!(h.retransmission(3, later + gap, gap, |_| false), Retransmission::OverBudget), "over budget: not sent");
        let next = h.retransmission(3, later + gap * 2, gap, |_| true).packet().unwrap();
        assert_eq!(next.header.sequence_number, padding.header.sequence_number.wrapping_add(1), "a refused packet took no number");
        let probe = h.padding().unwrap();
        assert_eq!(
            (probe.header.ssrc, probe.header.payload_type, probe.header.sequence_number),
            (9, 97, next.header.sequence_number.wrapping_add(1)),
            "a probe's padding, on the stream"
        );
        assert!(History::default().padding().is_none(), "nothing sent yet, no stream: no padding");
    }
}
