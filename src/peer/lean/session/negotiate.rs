//! The session's SDP: the browser's offers answered, the output slots offered once, their
//! answer applied, and the streams the browser sends learnt from what was negotiated.

use super::{Output, Session, Stream, RTCP_SSRC};
use crate::media::{Kind, Ssrc};
use crate::peer::budget::Budget;
use crate::peer::lean::history::History;
use crate::peer::lean::rtx::RtxStream;
use crate::peer::lean::sdp::{self, LocalTransport, RemoteDescription, Role};
use crate::peer::lean::sending::Sent;
use crate::peer::lean::transport::{IceCredentials, RemoteTransport, Transport};
use crate::peer::offer_answer::AfterRefusedAnswer;
use crate::peer::{Fault, PeerCommand, PeerEvent};
use crate::signal::protocol::{IceCandidate, MediaState};
use std::time::Instant;
use tracing::{debug, info};

impl Session {
    /// An offer, answer or candidate from the signalling session.
    pub(crate) fn handle_command(&mut self, now: Instant, cmd: PeerCommand) {
        match cmd {
            PeerCommand::RemoteOffer(sdp) => self.on_remote_offer(now, sdp),
            PeerCommand::RemoteAnswer(sdp) => self.on_remote_answer(sdp),
            PeerCommand::ContentTrack(id) => self.content_track = Some(id),
            // ICE-lite: the browser's checks come to the bridge; its candidates only say which
            // kind of address those come from.
            PeerCommand::RemoteCandidate(c) => {
                if !self.remote_candidates.add(&c.candidate) {
                    self.refusals.refuse(Budget::Candidates, 1, "this site trickles more candidates than a browser gathers; the rest are ignored");
                }
            }
        }
        self.after(now);
    }

    fn on_remote_offer(&mut self, now: Instant, sdp: String) {
        let outputs = self.negotiation.sections.iter().filter(|s| matches!(s.role, Role::Output(_))).count();
        if let Err(r) = self.offers.check_offer(&sdp, outputs, now) {
            let refused = self.refusals.note(r, "offer");
            return self.emit(refused);
        }
        let offer = match RemoteDescription::parse(&sdp) {
            Ok(d) => d,
            Err(e) => return self.refuse(Fault::BadSdp, format!("offer not accepted: {e}"), "offer"),
        };
        let mut negotiation = self.negotiation.clone();
        if let Err(e) = negotiation.apply_offer(&offer) {
            return self.refuse(Fault::BadSdp, format!("offer not accepted: {e}"), "offer");
        }
        self.negotiation = negotiation;
        // A browser that does not trickle lists its candidates in the offer.
        let ignored = offer.sections.iter().flat_map(|s| &s.candidates).filter(|c| !self.remote_candidates.add(c)).count();
        if ignored > 0 {
            self.refusals.refuse(Budget::Candidates, ignored as u64, "this site lists more candidates than a browser gathers; the rest are ignored");
        }
        let refused: Vec<String> = self.negotiation.refused_sends(&offer).map(|(s, why)| format!("its {} (mid {}): {why}", s.media, s.mid)).collect();
        if !refused.is_empty() {
            // Never a silently dead camera: the page is told, the log says why, and the
            // health page names the cause on the site's frozen-video alarm.
            let message = format!("the bridge cannot receive {}; it forwards Opus, {}", refused.join("; "), codec_names(&self.ctx.video_codecs));
            self.ctx.board.set_media_refused(self.site, Some(message.clone()));
            self.refuse(Fault::UnsupportedCodec, message, "offer");
        } else {
            self.ctx.board.set_media_refused(self.site, None);
        }
        let mut restarted = false;
        match self.transport.as_mut() {
            None => {
                let remote = RemoteTransport { ufrag: offer.ufrag.clone(), fingerprints: offer.fingerprints.clone() };
                self.transport = Some(Transport::new(&self.ctx.identity, self.ice.clone(), remote, self.ctx.udp_addr));
            }
            Some(t) if t.remote_ufrag() != offer.ufrag => {
                info!("the site restarted ICE");
                self.ice = IceCredentials::random();
                t.restart_ice(self.ice.clone(), offer.ufrag.clone());
                restarted = true;
                self.emit(PeerEvent::IceRestarted);
            }
            Some(_) => {}
        }
        self.offers.offer_applied(&sdp);
        self.learn_streams();
        let answer = self.negotiation.answer(&self.local_transport());
        self.out.push_back(Output::Listen(answer.clone()));
        self.emit(PeerEvent::LocalAnswer(answer));
        if !self.answered_first_offer || restarted {
            // The candidates are in the answer; trickled too, for pages (and relays in front
            // of the bridge) that read candidates from the signalling.
            let mid = self.negotiation.sections.iter().find(|s| !s.role.is_rejected()).map(|s| s.mid.to_string());
            for candidate in self.local_transport().candidates {
                let c = IceCandidate { candidate, sdp_mid: mid.clone(), sdp_m_line_index: Some(0), username_fragment: Some(self.ice.ufrag.clone()) };
                self.emit(PeerEvent::LocalCandidate(c));
            }
        }
        if !std::mem::replace(&mut self.answered_first_offer, true) {
            self.add_slots();
        }
    }

    fn local_transport(&self) -> LocalTransport {
        LocalTransport {
            ufrag: self.ice.ufrag.clone(),
            pwd: self.ice.pwd.clone(),
            fingerprint: self.ctx.identity.fingerprint().to_owned(),
            candidates: self.ctx.candidates.clone(),
        }
    }

    /// Keeps `streams` in step with the negotiated inbound sections.
    fn learn_streams(&mut self) {
        let transport_cc = self.negotiation.inbound().find_map(|(_, section)| section.extmap(sdp::TRANSPORT_CC_URI));
        self.feedback.set_extension(transport_cc);
        for (mid, section) in self.negotiation.inbound() {
            let (mid_ext, rid_ext) = (section.extmap(sdp::MID_URI), section.extmap(sdp::RID_URI));
            if let Some(level) = section.extmap(sdp::AUDIO_LEVEL_URI) {
                self.audio_level_id.store(level, std::sync::atomic::Ordering::Relaxed);
            }
            let media = self.negotiation.sections.iter().find(|s| s.mid == *mid).map(|s| s.media.clone()).unwrap_or_default();
            match self.streams.iter_mut().find(|s| s.mid == *mid) {
                Some(s) => {
                    s.ssrcs = section.ssrcs.clone();
                    s.payload_type = section.payload_type;
                    s.codec = section.codec;
                    s.red = section.red;
                    let audio = s.audio();
                    if let Some(inbound) = s.inbound.as_mut() {
                        inbound.set_audio_formats(audio);
                    }
                    s.simulcast = !section.rids.is_empty();
                    (s.mid_ext, s.rid_ext) = (mid_ext, rid_ext);
                    s.track_id = section.track_id.clone();
                }
                None => self.streams.push(Stream {
                    mid: mid.clone(),
                    inbound: None,
                    ssrcs: section.ssrcs.clone(),
                    payload_type: section.payload_type,
                    codec: section.codec,
                    red: section.red,
                    simulcast: !section.rids.is_empty(),
                    media,
                    mid_ext,
                    rid_ext,
                    track_id: section.track_id.clone(),
                }),
            }
        }
    }

    /// Adds the fixed output slots (after the browser's first offer is answered) and offers
    /// them: `a0…`, `v0…` and `c0` are their stream ids, which `view` messages map to sites.
    fn add_slots(&mut self) {
        let (audio, video) = self.ctx.slots;
        let wanted = (0..audio).map(|i| (Kind::Audio, i)).chain((0..video).map(|i| (Kind::Video, i))).chain([(Kind::Content, 0)]);
        let mut taken: std::collections::HashSet<Ssrc> = self.output_ssrcs.keys().copied().collect();
        let mut new_ssrc = || loop {
            let s = Ssrc(rand::random::<u32>());
            if s > RTCP_SSRC && taken.insert(s) {
                break s;
            }
        };
        for (kind, slot) in wanted {
            let ssrc = new_ssrc();
            // Video slots have a second SSRC for retransmissions (RFC 4588).
            let rtx_ssrc = kind.is_video().then(&mut new_ssrc);
            self.negotiation.add_output_repaired(kind, slot, ssrc, rtx_ssrc);
            self.output_ssrcs.insert(ssrc, (kind, slot));
            if kind.is_video() {
                self.histories.insert(ssrc, History::default());
            }
            self.sent.insert(ssrc, Sent::new(ssrc, kind.clock_rate()));
        }
        info!(outputs = self.output_ssrcs.len(), "offering the output slots");
        self.offer();
    }

    fn offer(&mut self) {
        let offer = self.negotiation.offer(&self.local_transport());
        self.offers.offered();
        self.out.push_back(Output::Listen(offer.clone()));
        self.emit(PeerEvent::LocalOffer(offer));
    }

    fn on_remote_answer(&mut self, sdp: String) {
        if let Err(r) = self.offers.take_answer() {
            let refused = self.refusals.note(r, "answer");
            return self.emit(refused);
        }
        let answer = self.offers.check_answer(&sdp).map_err(|r| r.message).and_then(|()| RemoteDescription::parse(&sdp).map_err(|e| e.to_string()));
        let applied = answer.and_then(|a| self.negotiation.apply_answer(&a).map_err(|e| e.to_string()));
        match applied {
            Ok(accepted) => {
                self.offers.answer_applied();
                debug!(accepted = accepted.len(), "answer applied");
                let connected = self.state == Some(MediaState::Connected);
                for o in accepted {
                    self.numbering.accept(&o);
                    if let (Some(history), Some(rtx_ssrc)) = (self.histories.get_mut(&o.ssrc), o.rtx_ssrc) {
                        history.set_rtx(RtxStream::new(rtx_ssrc, o.payload_types, o.rtx));
                    }
                    self.outputs.bind(o.kind, o.slot, (), o.ssrc, o.payload_types, o.kind.clock_rate());
                    if o.kind.is_video() && connected {
                        self.ctx.router.request_slot_keyframe(self.site, o.kind, o.slot);
                    }
                }
            }
            Err(e) => {
                if self.offers.answer_refused() == AfterRefusedAnswer::GiveUp {
                    return self.refuse(Fault::BadSdp, format!("answer not accepted: {e}; not offering again, join again"), "answer");
                }
                self.refuse(Fault::BadSdp, format!("answer not accepted: {e}; offering again"), "answer");
                self.offer();
            }
        }
    }

    /// The video slots the browser accepted.
    pub(super) fn bound_video_slots(&self) -> Vec<(Kind, usize)> {
        let outputs = self.negotiation.sections.iter().filter_map(|s| match &s.role {
            Role::Output(o) if o.accepted && o.kind.is_video() => Some((o.kind, o.slot)),
            _ => None,
        });
        outputs.collect()
    }
}

/// "VP8 and H.264", for messages.
fn codec_names(codecs: &[crate::media::Codec]) -> String {
    let names: Vec<&str> = codecs.iter().map(|c| if *c == crate::media::Codec::H264 { "H.264" } else { "VP8" }).collect();
    names.join(" and ")
}
