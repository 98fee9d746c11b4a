//! What arrives from the browser: datagrams through the transport, RTP into the stream whose
//! SSRC it is learnt to be (within the site's SSRC budget), RTCP into reports, the estimate,
//! NACKs to answer and keyframe requests for the router.

use super::{Output, Session, DEFAULT_RTT, LOSS_EVENT_INTERVAL};
use crate::media::{Kind, Pt, RtpPacket, Ssrc};
use crate::peer::budget::Budget;
use crate::peer::inbound::Inbound;
use crate::peer::lean::reception::Reception;
use crate::peer::lean::repair::Repair;
use crate::peer::lean::sdp::Media;
use crate::peer::lean::sending;
use crate::peer::lean::transport::{Received, TransportError};
use crate::peer::PeerEvent;
use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtcp::receiver_report::ReceiverReport;
use rtc::rtcp::reception_report::ReceptionReport;
use rtc::rtcp::sender_report::SenderReport;
use rtc::rtcp::transport_feedbacks::transport_layer_cc::TransportLayerCc;
use rtc::rtcp::transport_feedbacks::transport_layer_nack::TransportLayerNack;
use rtc::shared::marshal::Unmarshal;
use std::net::SocketAddr;
use std::time::Instant;
use tracing::{debug, info};

impl Session {
    /// A datagram from `from` on the shared ports, taken off the socket at `arrived`.
    pub(crate) fn handle_datagram(&mut self, now: Instant, from: SocketAddr, data: &[u8], arrived: Instant) {
        self.on_datagram(now, from, data, arrived);
        self.after(now);
    }

    fn on_datagram(&mut self, now: Instant, from: SocketAddr, data: &[u8], arrived: Instant) {
        let Some(t) = self.transport.as_mut() else { return };
        match t.receive(now, from, data) {
            Ok(Received::Rtp(bytes)) => self.on_rtp(bytes.freeze(), arrived),
            Ok(Received::Rtcp(bytes)) => self.on_rtcp(now, &bytes),
            Ok(Received::Nothing) => {}
            Err(e) => {
                if matches!(e, TransportError::Check(_)) {
                    // Wrong credentials: counted against the address ([`crate::peer::mux::strangers`]).
                    self.out.push_back(Output::CheckFailed(from));
                }
                self.refused += 1;
                // The first few, then one in a thousand: a flood must not flood the log.
                if self.refused <= 5 || self.refused.is_multiple_of(1000) {
                    if matches!(e, TransportError::Dtls(_)) {
                        // The handshake's own trouble: what a technician needs when a site
                        // stays `connecting`.
                        info!(refused = self.refused, "handshake datagram from {from} refused: {e}");
                    } else {
                        debug!(refused = self.refused, "datagram from {from} refused: {e}");
                    }
                }
            }
        }
    }

    /// One decrypted RTP packet. Parsed from the decrypted buffer itself: the payload is a
    /// slice of it, not a copy, and the router shares it with every receiver.
    fn on_rtp(&mut self, mut bytes: bytes::Bytes, received: Instant) {
        let Ok(packet) = RtpPacket::unmarshal(&mut bytes) else { return };
        // Every numbered packet counts for congestion control, whichever stream it is. Arrival
        // is when the mux took the datagram off the socket.
        self.feedback.on_packet(received, &packet.header);
        let ssrc = Ssrc::of(&packet.header);
        let index = match self.by_ssrc.get(&ssrc) {
            Some(&i) => i,
            None => match self.stream_of(&packet) {
                Some(_) if !self.ssrc_budget.admit(self.by_ssrc.len()) => {
                    return self.refusals.refuse(Budget::Ssrcs, 1, "this site sends more SSRCs than a page does; their packets are dropped");
                }
                Some(i) => {
                    self.by_ssrc.insert(ssrc, i);
                    i
                }
                None => return,
            },
        };
        let clock_rate = self.streams[index].codec.clock_rate();
        let epoch = self.epoch;
        let reception = self.receptions.entry(ssrc).or_insert_with(|| Reception::new(ssrc, clock_rate, epoch));
        reception.on_packet(packet.header.sequence_number, packet.header.timestamp, received);
        if self.streams[index].media == Media::Video {
            self.repairs.entry(ssrc).or_insert_with(|| Repair::new(ssrc)).on_packet(packet.header.sequence_number, received);
        }
        let rid = self.streams[index].rid_ext.and_then(|id| packet.header.get_extension(id)).map(|r| String::from_utf8_lossy(&r).into_owned());
        let simulcast = self.streams[index].simulcast && self.streams[index].rid_ext.is_some();
        if self.inbound_for(index, received).is_none() {
            return;
        }
        // The stream's own field: the budgets and outputs beside it stay at hand.
        let Some(inbound) = self.streams[index].inbound.as_mut() else { return };
        if !inbound.has_layer(ssrc) && inbound.is_full() {
            self.ssrc_budget.refused += 1;
            return self.refusals.refuse(Budget::Ssrcs, 1, "this site sends more SSRCs on one stream than its layers; their packets are dropped");
        }
        if !inbound.has_layer(ssrc) {
            if simulcast && rid.is_none() {
                // Which layer this is shows in a later packet (browsers name the RID until
                // the bridge's reports reach them); guessing would mislabel it for good.
                return;
            }
            if let Some(requests) = inbound.open_layer(ssrc, rid.as_deref(), received) {
                self.out.push_back(Output::KeyframeRequests(ssrc, requests));
            }
        }
        inbound.on_packet(packet, received);
    }

    /// Which stream a packet with a new SSRC belongs to: the SDP's SSRCs, else its mid header
    /// extension, else the one stream with its payload type.
    fn stream_of(&self, packet: &RtpPacket) -> Option<usize> {
        let ssrc = Ssrc::of(&packet.header);
        if let Some(i) = self.streams.iter().position(|s| s.ssrcs.contains(&ssrc)) {
            return Some(i);
        }
        let by_mid =
            self.streams.iter().position(|s| s.mid_ext.and_then(|id| packet.header.get_extension(id)).is_some_and(|m| m.as_ref() == s.mid.as_str().as_bytes()));
        if by_mid.is_some() {
            return by_mid;
        }
        let pt = Pt::of(&packet.header);
        let mut same_pt = self.streams.iter().enumerate().filter(|(_, s)| s.carries(pt) && s.ssrcs.is_empty());
        match (same_pt.next(), same_pt.next()) {
            (Some((i, _)), None) => Some(i),
            _ => None,
        }
    }

    /// The stream's [`Inbound`], created at its first packet: audio, the camera, or content
    /// (the track the conference accepted as shared content); an extra video stream that is
    /// neither is ignored.
    fn inbound_for(&mut self, index: usize, now: Instant) -> Option<&mut Inbound> {
        if self.streams[index].inbound.is_none() {
            let s = &self.streams[index];
            let kind = if s.media == Media::Audio {
                Kind::Audio
            } else if s.track_id.is_some() && s.track_id == self.content_track {
                Kind::Content
            } else if self.camera_mid.as_ref().is_none_or(|m| *m == s.mid) {
                self.camera_mid = Some(s.mid.clone());
                Kind::Video
            } else {
                return None;
            };
            let codec = s.codec;
            info!(codec = codec.as_str(), "receiving {}", kind.as_str());
            let (router, board) = (self.ctx.router.clone(), self.ctx.board.clone());
            let mut inbound = Inbound::new(self.site, kind, self.generation, router, board, self.audio_level_id.clone(), codec, now);
            inbound.set_audio_formats(s.audio());
            self.streams[index].inbound = Some(inbound);
        }
        self.streams[index].inbound.as_mut()
    }

    /// The browser's RTCP: reports on what it sends and receives, transport-cc feedback for
    /// the downlink estimate, NACKs to answer, keyframe requests (PLI, FIR) for its slots.
    fn on_rtcp(&mut self, now: Instant, bytes: &[u8]) {
        let Ok(packets) = rtc::rtcp::packet::unmarshal(&mut &bytes[..]) else { return };
        let mut nacks = Vec::new();
        let mut blocks = Vec::new();
        for p in &packets {
            let any = p.as_any();
            let wants = |ssrc: u32| {
                if let Some(&(kind, slot)) = self.output_ssrcs.get(&Ssrc(ssrc)) {
                    self.ctx.router.request_slot_keyframe(self.site, kind, slot);
                }
            };
            if let Some(sr) = any.downcast_ref::<SenderReport>() {
                if let Some(r) = self.receptions.get_mut(&Ssrc(sr.ssrc)) {
                    r.on_sender_report(sr.ntp_time, now);
                }
                blocks.extend(sr.reports.iter().cloned());
            } else if let Some(rr) = any.downcast_ref::<ReceiverReport>() {
                blocks.extend(rr.reports.iter().cloned());
            } else if let Some(cc) = any.downcast_ref::<TransportLayerCc>() {
                self.estimate.on_feedback(now, cc, self.rtt.unwrap_or(DEFAULT_RTT));
            } else if let Some(nack) = any.downcast_ref::<TransportLayerNack>() {
                nacks.push(nack.clone());
            } else if let Some(pli) = any.downcast_ref::<PictureLossIndication>() {
                wants(pli.media_ssrc);
            } else if let Some(fir) = any.downcast_ref::<FullIntraRequest>() {
                fir.fir.iter().for_each(|e| wants(e.ssrc));
            }
        }
        for nack in nacks {
            self.retransmit(now, &nack);
        }
        // The worst downlink loss on a video slot in this packet's reports.
        let worst = blocks.iter().filter_map(|block| self.on_reception_report(now, block)).reduce(f64::max);
        if let Some(loss) = worst.filter(|_| now >= self.next_loss_event) {
            debug!("the browser reports {loss:.1} % of its video lost on the way to it");
            // Droppable if the signalling session is behind: reports repeat every second.
            self.out.push_back(Output::Event { event: PeerEvent::DownlinkLoss(loss), droppable: true });
            self.next_loss_event = now + LOSS_EVENT_INTERVAL;
        }
    }

    /// The round trip from a reception report about one of the output slots; for a video
    /// slot, the share of what the bridge sent that the report says was lost on the way.
    fn on_reception_report(&mut self, now: Instant, report: &ReceptionReport) -> Option<f64> {
        let wall = self.wall(now);
        let sent = self.sent.get_mut(&Ssrc(report.ssrc))?;
        if let Some(rtt) = sending::round_trip(report, wall) {
            self.rtt = Some(match self.rtt {
                Some(old) => old.mul_f64(0.875) + rtt.mul_f64(0.125),
                None => rtt,
            });
        }
        let loss = sent.downlink_loss(report);
        loss.filter(|_| self.histories.contains_key(&Ssrc(report.ssrc)))
    }
}
