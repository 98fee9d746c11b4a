//! RTP packets as the simulated senders write them (the sim sites, the replayed cameras, the
//! load bench, the adversarial site): version 2, no header extension, the payload as given.

use bytes::Bytes;

/// One RTP packet; the track it is written to adds nothing but SRTP.
pub fn packet(payload_type: u8, ssrc: u32, sequence_number: u16, timestamp: u32, marker: bool, payload: impl Into<Bytes>) -> rtc::rtp::Packet {
    let mut p = rtc::rtp::Packet::default();
    p.header.version = 2;
    p.header.payload_type = payload_type;
    p.header.ssrc = ssrc;
    p.header.sequence_number = sequence_number;
    p.header.timestamp = timestamp;
    p.header.marker = marker;
    p.payload = payload.into();
    p
}
