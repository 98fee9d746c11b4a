//! Retransmissions on a stream of their own (RFC 4588): a video slot whose receiver accepted
//! `rtx` gets what it asks for again on the slot's second SSRC, each packet numbered in that
//! stream's own sequence, with the original sequence number (OSN) first in its payload. The
//! receiver then counts a repair as a repair, not as a late packet of the stream, so its loss,
//! jitter and bandwidth statistics stay those of the line.

use crate::media::codec::PayloadTypes;
use crate::media::RtpPacket;
use crate::media::Ssrc;

/// One video slot's retransmission stream.
#[derive(Debug)]
pub(crate) struct RtxStream {
    ssrc: Ssrc,
    /// The receiver's number for each codec on the slot, and for its retransmissions.
    payload_types: PayloadTypes,
    rtx: PayloadTypes,
    next_seq: u16,
}

impl RtxStream {
    /// The stream, if the receiver accepted a retransmission format for any codec.
    pub(crate) fn new(ssrc: Ssrc, payload_types: PayloadTypes, rtx: PayloadTypes) -> Option<RtxStream> {
        (!rtx.is_empty()).then(|| RtxStream { ssrc, payload_types, rtx, next_seq: rand::random() })
    }

    /// This stream renegotiated: `old`'s numbering goes on if the SSRC is the same.
    pub(crate) fn continuing(mut self, old: &RtxStream) -> RtxStream {
        if old.ssrc == self.ssrc {
            self.next_seq = old.next_seq;
        }
        self
    }

    /// The retransmission format of `packet`'s codec, if it has one here: then `packet` goes
    /// again on this stream ([`RtxStream::wrap`]).
    pub(crate) fn rtx_pt(&self, packet: &RtpPacket) -> Option<u8> {
        self.format_for(packet.header.payload_type)
    }

    /// The retransmission format for the codec with `media_pt`, if the receiver took one.
    pub(crate) fn format_for(&self, media_pt: u8) -> Option<u8> {
        self.rtx.get(self.payload_types.codec_of(media_pt)?)
    }

    /// A packet of padding alone on this stream, in the retransmission format of the codec
    /// with `media_pt`, at `timestamp`: what a probe of the line is topped up with (the browser
    /// counts its arrival for the estimate and discards it). Its padding octets are added as it
    /// is serialised (`Session::protect_and_send_padded`); the payload is empty.
    pub(crate) fn padding(&mut self, media_pt: u8, timestamp: u32) -> Option<RtpPacket> {
        let mut packet = RtpPacket::default();
        let h = &mut packet.header;
        (h.version, h.ssrc, h.payload_type, h.timestamp) = (2, self.ssrc.0, self.format_for(media_pt)?, timestamp);
        h.sequence_number = self.next_seq;
        self.next_seq = self.next_seq.wrapping_add(1);
        Some(packet)
    }

    /// `packet` (as it was sent on the slot) as a retransmission on this stream, in its
    /// codec's retransmission format `rtx_pt` ([`RtxStream::rtx_pt`]).
    pub(crate) fn wrap(&mut self, mut packet: RtpPacket, rtx_pt: u8) -> RtpPacket {
        let osn = packet.header.sequence_number;
        packet.header.ssrc = self.ssrc.0;
        packet.header.payload_type = rtx_pt;
        packet.header.sequence_number = self.next_seq;
        self.next_seq = self.next_seq.wrapping_add(1);
        let mut payload = bytes::BytesMut::with_capacity(packet.payload.len() + 2);
        payload.extend_from_slice(&osn.to_be_bytes());
        payload.extend_from_slice(&packet.payload);
        packet.payload = payload.freeze();
        packet
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::Codec;

    #[test]
    fn a_repair_carries_the_original_number_first_on_its_own_stream() {
        let mut pts = PayloadTypes::single(Codec::Vp8, 96);
        pts.set(Codec::H264, 102);
        let mut stream = RtxStream::new(Ssrc(0xBEEF), pts, PayloadTypes::single(Codec::Vp8, 97)).unwrap();
        let mut p = RtpPacket::default();
        (p.header.ssrc, p.header.payload_type, p.header.sequence_number, p.header.timestamp, p.header.marker) = (7, 96, 0x1234, 90_000, true);
        p.payload = bytes::Bytes::from_static(&[0x10, 0x02, 0xAA]);
        let first = stream.wrap(p.clone(), stream.rtx_pt(&p).unwrap());
        let h = &first.header;
        assert_eq!((h.ssrc, h.payload_type, h.timestamp, h.marker), (0xBEEF, 97, 90_000, true), "same timestamp and marker, the stream's own SSRC and format");
        assert_eq!(&first.payload[..], &[0x12, 0x34, 0x10, 0x02, 0xAA]);
        let second = stream.wrap(p.clone(), 97);
        assert_eq!(second.header.sequence_number, first.header.sequence_number.wrapping_add(1), "the stream numbers its own packets");
        p.header.payload_type = 102;
        assert_eq!(stream.rtx_pt(&p), None, "H.264 has no retransmission format here: sent again as it was");
        let padding = stream.padding(96, 90_000).unwrap();
        let h = &padding.header;
        assert_eq!((h.ssrc, h.payload_type, h.timestamp, h.sequence_number), (0xBEEF, 97, 90_000, second.header.sequence_number.wrapping_add(1)));
        assert!(padding.payload.is_empty(), "padding alone");
        assert!(stream.padding(102, 0).is_none(), "no retransmission format for H.264: no padding on this stream");
        assert!(RtxStream::new(Ssrc(1), pts, PayloadTypes::default()).is_none(), "no format accepted: no stream");
        let again = RtxStream::new(Ssrc(0xBEEF), pts, PayloadTypes::single(Codec::Vp8, 97)).unwrap().continuing(&stream);
        assert_eq!(again.next_seq, stream.next_seq, "renegotiated, the same stream goes on with its numbers");
    }
}
