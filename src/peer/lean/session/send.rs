//! What goes to the browser: forwarded packets into their slots, what its NACKs ask for again
//! (within its budget), probes of its downlink, reports, transport-cc feedback, NACKs and
//! keyframe requests for what it sends.

use super::{
    Output, Session, ESTIMATE_CHANGE, ESTIMATE_EVENT_EVERY, MAX_RETRANSMIT_PER_NACK, PADDING, PADDING_ON_THE_LINE, REMB_BPS, REPORT_INTERVAL, RTCP_SSRC,
    WIRE_OVERHEAD,
};
use super::{EARLY_REPORTS_FOR, EARLY_REPORT_INTERVAL, REPAIR_SAVED, REPAIR_SHARE};
use crate::health::board::Path;
use crate::media::router::SinkPacket;
use crate::media::{RtpPacket, Ssrc};
use crate::peer::budget::{self, Budget};
use crate::peer::lean::estimate;
use crate::peer::lean::history::{self, History, Retransmission};
use crate::peer::lean::sdp::Media;
use crate::peer::PeerEvent;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtcp::payload_feedbacks::receiver_estimated_maximum_bitrate::ReceiverEstimatedMaximumBitrate;
use rtc::rtcp::receiver_report::ReceiverReport;
use rtc::rtcp::transport_feedbacks::transport_layer_nack::TransportLayerNack;
use rtc::shared::marshal::Marshal;
use std::time::{Duration, Instant};
use tracing::{debug, warn};

impl Session {
    /// One packet from the router into its slot: rewritten, encrypted, sent, remembered.
    pub(crate) fn handle_packet(&mut self, now: Instant, p: SinkPacket) {
        let (received, source, pt) = (p.received, p.source, p.packet.header.payload_type);
        let unsupported = self.outputs.unsupported;
        let Some(((), mut packet)) = self.outputs.prepare(p, &self.ctx.router, now) else {
            if unsupported == 0 && self.outputs.unsupported > 0 {
                let codec = crate::media::Codec::of_internal_pt(pt).map_or("?", |c| c.as_str());
                let from = self.ctx.site_ids.get(source).map_or("?", String::as_str);
                warn!(codec, from, "this site's browser did not accept {codec}: it cannot show {from}'s video (list only the codecs every room decodes in [media] video_codecs)");
            }
            return;
        };
        if self.protect_and_send(now, &mut packet) {
            self.delays.record(now.saturating_duration_since(received));
            self.outputs.written += 1;
            self.ctx.board.add_outbound(self.site, packet.payload.len() + 12);
            let ssrc = Ssrc::of(&packet.header);
            if let Some(h) = self.histories.get_mut(&ssrc) {
                h.push(&packet);
            }
            if let Some(sent) = self.sent.get_mut(&ssrc) {
                sent.on_packet(packet.header.sequence_number, packet.header.timestamp, packet.payload.len(), now);
            }
        } else {
            self.outputs.failed += 1;
        }
    }

    /// The router asks the site for a keyframe of its layer with this SSRC (PLI).
    pub(crate) fn handle_keyframe_request(&mut self, now: Instant, media_ssrc: Ssrc) {
        if let Ok(pli) = (PictureLossIndication { sender_ssrc: RTCP_SSRC.0, media_ssrc: media_ssrc.0 }).marshal() {
            if self.send_rtcp(&pli, "keyframe request") {
                debug!(%media_ssrc, "asked the publisher for a keyframe");
            }
        }
        self.after(now);
    }

    /// Sends again what a NACK asks for, from the slot's history: each packet at most once
    /// per round trip, within the site's retransmission budget (a flood of NACKs must not
    /// turn the bridge into an amplifier against the site's own downlink or anyone else's).
    pub(super) fn retransmit(&mut self, now: Instant, nack: &TransportLayerNack) {
        let gap = self.rtt.map_or(budget::RESEND_GAP, |r| r.max(budget::RESEND_GAP));
        let Some(history) = self.histories.get_mut(&Ssrc(nack.media_ssrc)) else { return };
        let seqs: Vec<u16> = nack.nacks.iter().flat_map(|p| history::requested(p.packet_id, p.lost_packets)).take(MAX_RETRANSMIT_PER_NACK).collect();
        let mut again = Vec::new();
        let refused_before = self.retransmit_budget.refused;
        // Where the browser reports on the downlink, repairs take no more than their share of
        // its estimate: one that would not fit waits for the browser's next ask. The share
        // is asked before the budget, so an honest site on a full line is not taken for a
        // flood; the rate of NACKs is the budget's first word, so a flood still is.
        let share = self.numbering.is_on().then(|| self.estimate.bps() * REPAIR_SHARE / 8.0);
        if let Some(rate) = share {
            self.repair_share.set_rate(rate, rate * REPAIR_SAVED, now);
        }
        let seqs = if self.retransmit_budget.hear(seqs.len(), now) { seqs } else { Vec::new() };
        let (allowance, fits, mut held) = (&mut self.retransmit_budget, &mut self.repair_share, false);
        for seq in seqs {
            let admit = |bytes: usize| {
                if share.is_some() && !fits.take(bytes as f64, now) {
                    held = true;
                    return false;
                }
                allowance.allow(bytes, now)
            };
            match history.retransmission(seq, now, gap, admit) {
                Retransmission::Send(packet) => again.push(packet),
                Retransmission::Skipped => {}
                Retransmission::OverBudget => break,
            }
        }
        self.repairs_held += u64::from(held);
        let refused = self.retransmit_budget.refused - refused_before;
        if refused > 0 {
            let what = "this site asks for more retransmissions than its budget (200 NACKs, 120 packets a second); the rest are not sent (nack_refused)";
            self.refusals.refuse(Budget::Nacks, refused, what);
        }
        for mut packet in again {
            if self.protect_and_send(now, &mut packet) {
                self.retransmitted += 1;
            }
        }
        debug!(media_ssrc = nack.media_ssrc, retransmitted = self.retransmitted, refused = self.retransmit_budget.refused, "sent again what a NACK asked for");
    }

    /// Probes the site's downlink if its tiles want more than its estimate allows (the
    /// conference says so through the router) and a probe is due. Only a site whose packets
    /// the browser reports on, with a retransmission stream to pad on, is probed.
    /// Over ICE-TCP the padding would queue behind the media in the connection's own buffer and
    /// measure nothing of the line; without a stream to pad on there is nothing to probe with.
    /// Either way the estimate climbs by itself again ([`estimate::DownlinkEstimate::set_can_probe`]).
    pub(super) fn start_probe(&mut self, now: Instant) {
        let can = self.numbering.is_on() && self.path == Some(Path::Udp) && self.paddable().is_some();
        self.estimate.set_can_probe(can);
        if !can {
            return;
        }
        let wanted = self.ctx.router.wanted_downlink(self.site);
        if self.estimate.start_probe(now, wanted) {
            self.due.padding = Some(now + estimate::probe::STEP);
            self.send_padding(now);
        }
    }

    /// A video slot whose packets the browser reports on, with a retransmission stream and a
    /// format on it to pad with.
    pub(super) fn paddable(&self) -> Option<Ssrc> {
        self.histories.iter().find(|(ssrc, h)| h.can_pad() && self.numbering.id_for(**ssrc).is_some()).map(|(ssrc, _)| *ssrc)
    }

    /// What the probe being sent owes in padding now, on a numbered retransmission stream.
    pub(super) fn send_padding(&mut self, now: Instant) {
        let mut owed = self.estimate.padding_due(now);
        let Some(ssrc) = self.paddable() else { return };
        while owed > 0 {
            let Some(mut packet) = self.histories.get_mut(&ssrc).and_then(History::padding) else { return };
            if !self.protect_and_send_padded(now, &mut packet, PADDING) {
                return;
            }
            owed = owed.saturating_sub(PADDING_ON_THE_LINE);
        }
    }

    /// Numbers the packet for the downlink estimate (once the browser reports arrivals),
    /// encrypts it and queues it for the site.
    fn protect_and_send(&mut self, now: Instant, packet: &mut RtpPacket) -> bool {
        self.protect_and_send_padded(now, packet, 0)
    }

    /// [`Self::protect_and_send`], with `padding` octets after the payload (RFC 3550 §5.1: the
    /// last says how many).
    fn protect_and_send_padded(&mut self, now: Instant, packet: &mut RtpPacket, padding: u8) -> bool {
        let Some(t) = self.transport.as_mut() else { return false };
        let numbered = self.numbering.id_for(Ssrc::of(&packet.header)).and_then(|id| {
            let seq = self.estimate.stamp();
            packet.header.set_extension(id, bytes::Bytes::copy_from_slice(&seq.to_be_bytes())).ok().map(|_| seq)
        });
        let Ok(mut n) = packet.marshal_to(&mut self.scratch) else { return false };
        if padding > 0 {
            let Some(tail) = self.scratch.get_mut(n..n + padding as usize) else { return false };
            tail.fill(0);
            tail[padding as usize - 1] = padding;
            self.scratch[0] |= 0x20;
            n += padding as usize;
        }
        let Ok((to, datagram)) = t.protect_rtp(&self.scratch[..n]) else { return false };
        self.out.push_back(Output::Transmit(to, datagram));
        // The departure is `now`, taken before the datagram goes, never after: a bridge thread
        // descheduled between the two would stamp one packet late, its delay would look
        // shorter than the line's empty-queue delay, and every packet for the next ten seconds
        // would seem to wait in a queue that is not there. Early, it only looks late once.
        if let Some(seq) = numbered {
            // As the line counts it: with the SRTP tag and the UDP and IPv4 headers.
            self.estimate.on_sent(now, Ssrc::of(&packet.header), packet.header.sequence_number, seq, n + WIRE_OVERHEAD);
        }
        true
    }

    /// The downlink estimate to the health board, and to the conference when it moved (it
    /// fits the layers this site receives into it).
    pub(super) fn report_estimate(&mut self, now: Instant) {
        if !self.numbering.is_on() || self.estimate.feedbacks == 0 {
            return;
        }
        let view = self.estimate.view();
        self.ctx.board.set_downlink(self.site, Some(view.bps), view.queue);
        let due = match self.estimate_sent {
            None => true,
            Some((bps, lossy, at)) => (view.bps - bps).abs() >= bps * ESTIMATE_CHANGE || lossy != view.lossy || now.duration_since(at) >= ESTIMATE_EVENT_EVERY,
        };
        if due {
            debug!(kbps = (view.bps / 1000.0) as u64, delay_kbps = (view.delay_bps / 1000.0) as u64, loss_kbps = (view.loss_bps / 1000.0) as u64, queue = ?view.queue, "downlink estimate");
            let event = PeerEvent::DownlinkEstimate { bps: view.bps, loss_bps: view.loss_bps, lossy: view.lossy };
            self.out.push_back(Output::Event { event, droppable: true });
            self.estimate_sent = Some((view.bps, view.lossy, now));
        }
    }

    /// A sender report for every output slot that sent, a receiver report for every stream
    /// the browser sends, and the bandwidth ceiling: one compound packet.
    pub(super) fn send_reports(&mut self, now: Instant) {
        let Some(connected_at) = self.connected_at.filter(|_| now >= self.next_report) else { return };
        let early = now.duration_since(connected_at) < EARLY_REPORTS_FOR;
        self.next_report = now + if early { EARLY_REPORT_INTERVAL } else { REPORT_INTERVAL } - Duration::from_millis(5);
        let wall = self.wall(now);
        let mut compound = Vec::with_capacity(1024);
        for sr in self.sent.values().filter_map(|s| s.report(now, wall)) {
            if let Ok(b) = sr.marshal() {
                compound.extend_from_slice(&b);
            }
        }
        // At most 31 report blocks per RR: one RR per 31 streams.
        let mut reports: Vec<_> = self.receptions.values_mut().map(|r| r.report(now)).collect();
        while !reports.is_empty() {
            let rest = reports.split_off(reports.len().min(31));
            let rr = ReceiverReport { ssrc: RTCP_SSRC.0, reports: std::mem::replace(&mut reports, rest), profile_extensions: Default::default() };
            if let Ok(b) = rr.marshal() {
                compound.extend_from_slice(&b);
            }
        }
        if compound.is_empty() {
            return;
        }
        let video: Vec<u32> = self.by_ssrc.iter().filter(|(_, &i)| self.streams[i].media == Media::Video).map(|(ssrc, _)| ssrc.0).collect();
        if !video.is_empty() {
            let ceiling = self.ctx.lines.get(self.site).up_bps().map_or(REMB_BPS, |up| REMB_BPS.min(up as f32));
            if let Ok(b) = (ReceiverEstimatedMaximumBitrate { sender_ssrc: RTCP_SSRC.0, bitrate: ceiling, ssrcs: video }).marshal() {
                compound.extend_from_slice(&b);
            }
        }
        self.send_rtcp(&compound, "reports");
    }

    /// What arrived of the browser's numbered packets since the last feedback.
    pub(super) fn send_feedback(&mut self, now: Instant) {
        let compound = self.feedback.due(now);
        if !compound.is_empty() {
            self.send_rtcp(&compound, "transport feedback");
        }
    }

    /// One NACK per video stream the uplink lost packets of, in one compound.
    pub(super) fn send_nacks(&mut self, now: Instant) {
        let mut compound = Vec::new();
        for r in self.repairs.values_mut() {
            if let Some(Ok(b)) = r.due(now, self.rtt, RTCP_SSRC).map(|n| n.marshal()) {
                compound.extend_from_slice(&b);
            }
        }
        if !compound.is_empty() {
            self.send_rtcp(&compound, "NACK");
        }
    }

    /// One compound RTCP packet to the site, encrypted; false if it could not go.
    fn send_rtcp(&mut self, compound: &[u8], what: &str) -> bool {
        let Some(t) = self.transport.as_mut() else { return false };
        match t.protect_rtcp(compound) {
            Ok((to, datagram)) => {
                self.out.push_back(Output::Transmit(to, datagram));
                true
            }
            Err(e) => {
                debug!("{what} not sent: {e}");
                false
            }
        }
    }
}
