//! Transport-wide congestion control feedback (draft-holmer-rmcat-transport-wide-cc-extensions-01),
//! the receiving half: the browser numbers every packet it sends on the transport; the bridge
//! tells it, every [`FEEDBACK_INTERVAL`], when each arrived (or that it did not), so the
//! browser's delay-based estimate lowers its camera's rate as soon as a queue starts to grow on
//! the uplink, before loss begins. The REMB ceiling still caps that estimate.
//!
//! The feedback itself is built by rtc-interceptor's TWCC receiver, driven here without an
//! interceptor chain: one call per packet that carries the sequence number, one per tick.

use rtc::interceptor::AttributedPacket;
use rtc::interceptor::{Interceptor, Packet, RTPHeaderExtension, StreamInfo, TaggedPacket, TwccReceiverBuilder, TwccReceiverInterceptor};
use rtc::rtp::header::Header;
use rtc::sansio::Protocol;
use rtc::shared::TransportContext;
use std::time::{Duration, Instant};

/// `a=extmap` URI of the transport-wide sequence number.
pub const TRANSPORT_CC_URI: &str = "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01";

/// How often the browser hears what arrived (Chromium's own receivers send every 50–250 ms).
pub(crate) const FEEDBACK_INTERVAL: Duration = Duration::from_millis(100);

/// The arrivals recorded since the last feedback, for one site's transport.
pub struct TransportFeedback {
    twcc: TwccReceiverInterceptor,
    /// The extension id the browser numbers its packets with; `None` until negotiated.
    ext_id: Option<u8>,
    /// Packets recorded and feedback packets built, for the closing log line.
    pub(crate) recorded: u64,
    pub(crate) sent: u64,
}

impl Default for TransportFeedback {
    fn default() -> Self {
        TransportFeedback { twcc: TwccReceiverBuilder::new().with_interval(FEEDBACK_INTERVAL).build(), ext_id: None, recorded: 0, sent: 0 }
    }
}

impl TransportFeedback {
    /// The id the browser's description gave the transport-wide sequence number (one per
    /// transport under BUNDLE); a renegotiation may change it.
    pub fn set_extension(&mut self, id: Option<u8>) {
        if id == self.ext_id {
            return;
        }
        if let Some(id) = id {
            self.twcc.bind_remote_stream(&StreamInfo {
                rtp_header_extensions: vec![RTPHeaderExtension { uri: TRANSPORT_CC_URI.to_owned(), id: id.into() }],
                ..Default::default()
            });
        }
        self.ext_id = id;
    }

    pub(crate) fn negotiated(&self) -> bool {
        self.ext_id.is_some()
    }

    /// Records the arrival of one packet the browser sent (only its header is read).
    pub fn on_packet(&mut self, now: Instant, header: &Header) {
        let Some(id) = self.ext_id else { return };
        if header.get_extension(id).is_none() {
            return;
        }
        let packet = rtc::rtp::Packet { header: header.clone(), payload: Default::default() };
        let tagged = TaggedPacket { now, transport: TransportContext::default(), message: AttributedPacket::new(Packet::Rtp(packet)) };
        if self.twcc.handle_read(tagged).is_ok() {
            self.recorded += 1;
        }
        while self.twcc.poll_read().is_some() {}
    }

    /// The feedback due at `now`, as RTCP packets ready to go in one compound (empty when
    /// nothing arrived since the last).
    pub fn due(&mut self, now: Instant) -> Vec<u8> {
        let mut compound = Vec::new();
        if self.ext_id.is_none() || self.twcc.handle_timeout(now).is_err() {
            return compound;
        }
        while let Some(out) = self.twcc.poll_write() {
            if let Packet::Rtcp(packets) = out.message.packet {
                for p in packets {
                    if let Ok(b) = p.marshal() {
                        compound.extend_from_slice(&b);
                        self.sent += 1;
                    }
                }
            }
        }
        compound
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtc::rtcp::transport_feedbacks::transport_layer_cc::TransportLayerCc;
    use rtc::shared::marshal::Unmarshal;

    fn numbered(ext_id: u8, seq: u16) -> Header {
        let mut h = Header { version: 2, ssrc: 7, sequence_number: seq, ..Default::default() };
        h.set_extension(ext_id, bytes::Bytes::copy_from_slice(&seq.to_be_bytes())).unwrap();
        h
    }

    #[test]
    fn arrivals_come_back_as_one_feedback_per_interval_with_the_missing_packet_marked() {
        let mut fb = TransportFeedback::default();
        fb.set_extension(Some(3));
        let t0 = Instant::now();
        for seq in [10u16, 11, 13, 14] {
            fb.on_packet(t0 + Duration::from_millis(seq as u64), &numbered(3, seq));
        }
        assert_eq!(fb.recorded, 4);
        assert!(fb.due(t0 + Duration::from_millis(50)).is_empty(), "not before the interval");
        // The first feedback is due one interval after the first arrival (t0 + 10 ms).
        let bytes = fb.due(t0 + Duration::from_millis(10) + FEEDBACK_INTERVAL);
        let cc = TransportLayerCc::unmarshal(&mut bytes.as_slice()).expect("a transport-cc feedback");
        assert_eq!(cc.base_sequence_number, 10);
        assert_eq!(cc.packet_status_count, 5, "10..=14, 12 reported as not received");
        assert_eq!(cc.recv_deltas.len(), 4, "one arrival time per received packet");
        assert_eq!(fb.sent, 1);
    }

    #[test]
    fn nothing_is_recorded_or_sent_until_the_extension_is_negotiated() {
        let mut fb = TransportFeedback::default();
        let t0 = Instant::now();
        fb.on_packet(t0, &numbered(3, 1));
        assert_eq!(fb.recorded, 0);
        assert!(fb.due(t0 + Duration::from_secs(1)).is_empty());
        fb.set_extension(Some(5));
        fb.on_packet(t0, &numbered(3, 2));
        assert_eq!(fb.recorded, 0, "a packet without the negotiated id is not counted");
    }
}
