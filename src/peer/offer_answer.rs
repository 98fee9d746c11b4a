//! The offer/answer rules both engines keep with a site, written once: how often it may offer,
//! that it may not offer while the bridge's own offer waits for its answer, how many
//! m-sections an offer may have, that every later description announces the DTLS certificate
//! of the first (which came over this authenticated signalling session), and when the bridge
//! stops offering again after refused answers.
//!
//! Pure and synchronous, time passed in; the engines apply a description only after it passed
//! here, and turn a [`Refusal`] into the site's `error` reply.

use super::budget::{self, Budget, RenegotiationBudget};
use super::lean::transport::dtls::fingerprint_set;
use super::Fault;
use std::time::Instant;

/// Answers to the bridge's offer refused in a row before it stops offering again: a page that
/// cannot answer the slots would otherwise be sent the same offer for ever.
pub(crate) const MAX_REFUSED_ANSWERS: u8 = 3;

/// Why a description from the site is not applied: what was wrong with it and the message its
/// page is sent, and the budget it went over (counted and logged once per connection, not per refusal).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Refusal {
    pub(crate) fault: Fault,
    pub message: String,
    pub(crate) over: Option<(Budget, &'static str)>,
}

impl Refusal {
    fn new(fault: Fault, message: impl Into<String>) -> Self {
        Refusal { fault, message: message.into(), over: None }
    }
}

/// After a refused answer: offer again, or stop (the page is told to join again).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AfterRefusedAnswer {
    OfferAgain,
    GiveUp,
}

/// One site's offer/answer state.
#[derive(Debug, Default)]
pub(crate) struct OfferAnswer {
    renegotiations: RenegotiationBudget,
    /// The bridge's offer waits for the browser's answer.
    awaiting_answer: bool,
    /// The certificate fingerprints of the site's first accepted offer.
    pinned: Option<Vec<String>>,
    refused_answers: u8,
}

/// The certificate fingerprints a description announces (`a=fingerprint:` lines, session or
/// media level), normalised and deduplicated.
pub(crate) fn fingerprints(sdp: &str) -> Vec<String> {
    fingerprint_set(sdp.lines().filter_map(|l| l.trim_end().strip_prefix("a=fingerprint:")))
}

impl OfferAnswer {
    /// Offers refused by the renegotiation budget so far.
    pub(crate) fn offers_refused(&self) -> u64 {
        self.renegotiations.refused
    }

    /// Whether the site's offer may be applied, given the bridge's own output slots (which
    /// the browser's offers repeat).
    pub(crate) fn check_offer(&mut self, sdp: &str, outputs: usize, now: Instant) -> Result<(), Refusal> {
        if !self.renegotiations.allow(now) {
            let message = format!("too many offers: at most {} a minute", budget::RENEGOTIATIONS_PER_MINUTE);
            let what = "this site offers more often than a page renegotiates; the extra offers are refused";
            return Err(Refusal { fault: Fault::TooOften, message, over: Some((Budget::Renegotiations, what)) });
        }
        if self.awaiting_answer {
            return Err(Refusal::new(Fault::OutOfOrder, "the server's offer is waiting for an answer; answer it before offering"));
        }
        let sections = budget::sections(sdp);
        if sections > outputs + budget::MAX_SITE_SECTIONS {
            let message = format!("offer not accepted: {} m-sections; a site may send at most {}", sections - outputs, budget::MAX_SITE_SECTIONS);
            let what = "this site's offer has more m-sections than a page sends; it is refused";
            return Err(Refusal { fault: Fault::BadSdp, message, over: Some((Budget::Sections, what)) });
        }
        if self.certificate_changed(sdp) {
            return Err(Refusal::new(Fault::BadSdp, "the offer announces another DTLS certificate than this session's (or none); join again"));
        }
        Ok(())
    }

    /// The site's offer was applied: its certificate is the session's from now on.
    pub(crate) fn offer_applied(&mut self, sdp: &str) {
        if self.pinned.is_none() {
            self.pinned = Some(fingerprints(sdp)).filter(|f| !f.is_empty());
        }
    }

    /// The bridge sent an offer of its own.
    pub(crate) fn offered(&mut self) {
        self.awaiting_answer = true;
    }

    /// Whether the bridge's offer waits for its answer.
    pub(crate) fn awaiting_answer(&self) -> bool {
        self.awaiting_answer
    }

    /// The site sent an answer: whether one was awaited. Either way none is awaited afterwards.
    pub(crate) fn take_answer(&mut self) -> Result<(), Refusal> {
        if !std::mem::take(&mut self.awaiting_answer) {
            return Err(Refusal::new(Fault::OutOfOrder, "no server offer is waiting for an answer"));
        }
        Ok(())
    }

    /// Whether an awaited answer announces the session's certificate; a refusal here counts as
    /// a refused answer ([`Self::answer_refused`]).
    pub(crate) fn check_answer(&self, sdp: &str) -> Result<(), Refusal> {
        if self.certificate_changed(sdp) {
            return Err(Refusal::new(Fault::BadSdp, "it announces another DTLS certificate than this session's (or none)"));
        }
        Ok(())
    }

    /// The answer was applied.
    pub(crate) fn answer_applied(&mut self) {
        self.refused_answers = 0;
    }

    /// The answer (checked here or by the engine) was not applied: offer again, unless that
    /// has failed [`MAX_REFUSED_ANSWERS`] times in a row.
    pub(crate) fn answer_refused(&mut self) -> AfterRefusedAnswer {
        self.refused_answers = self.refused_answers.saturating_add(1);
        if self.refused_answers >= MAX_REFUSED_ANSWERS {
            AfterRefusedAnswer::GiveUp
        } else {
            AfterRefusedAnswer::OfferAgain
        }
    }

    /// A description after the first must announce the same certificate; one that announces
    /// none is refused too (both engines: the DTLS session is bound to the first).
    fn certificate_changed(&self, sdp: &str) -> bool {
        self.pinned.as_ref().is_some_and(|pinned| &fingerprints(sdp) != pinned)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const CERT_A: &str = "a=fingerprint:sha-256 AA:BB:CC\r\n";
    const CERT_B: &str = "a=fingerprint:sha-256 DD:EE:FF\r\n";

    fn offer(cert: &str, sections: usize) -> String {
        format!("v=0\r\n{cert}{}", "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n".repeat(sections))
    }

    #[test]
    fn a_later_description_must_announce_the_first_certificate_and_one_without_any_is_refused() {
        let mut oa = OfferAnswer::default();
        let t0 = Instant::now();
        assert_eq!(oa.check_offer(&offer(CERT_A, 2), 0, t0), Ok(()));
        oa.offer_applied(&offer(CERT_A, 2));
        assert_eq!(oa.check_offer(&offer(CERT_A, 2), 0, t0), Ok(()), "the same certificate, again");
        assert_eq!(oa.check_offer(&offer(CERT_B, 2), 0, t0).unwrap_err().fault, Fault::BadSdp);
        assert_eq!(oa.check_offer(&offer("", 2), 0, t0).unwrap_err().fault, Fault::BadSdp, "no certificate at all");
        assert_eq!(oa.check_answer(&offer("", 2)).unwrap_err().fault, Fault::BadSdp, "an answer without one");
        assert_eq!(oa.check_answer(&offer("a=fingerprint:SHA-256 aa:bb:cc\r\n", 2)), Ok(()), "written another way, the same certificate");
    }

    #[test]
    fn no_offer_while_the_bridges_offer_waits_and_no_answer_without_one() {
        let mut oa = OfferAnswer::default();
        let t0 = Instant::now();
        assert_eq!(oa.take_answer().unwrap_err().fault, Fault::OutOfOrder, "nothing was offered");
        oa.offered();
        assert!(oa.awaiting_answer());
        assert_eq!(oa.check_offer(&offer(CERT_A, 1), 0, t0).unwrap_err().fault, Fault::OutOfOrder);
        assert_eq!(oa.take_answer(), Ok(()));
        assert!(!oa.awaiting_answer());
        assert_eq!(oa.check_offer(&offer(CERT_A, 1), 0, t0), Ok(()), "answered: the site may offer again");
    }

    #[test]
    fn offers_over_the_budget_are_rate_limited_and_counted() {
        let mut oa = OfferAnswer::default();
        let t0 = Instant::now();
        let taken = (0..100).take_while(|_| oa.check_offer(&offer(CERT_A, 1), 0, t0).is_ok()).count();
        assert_eq!(taken, budget::RENEGOTIATION_BURST as usize);
        let refused = oa.check_offer(&offer(CERT_A, 1), 0, t0).unwrap_err();
        assert_eq!((refused.fault, refused.over.map(|(b, _)| b)), (Fault::TooOften, Some(Budget::Renegotiations)));
        assert_eq!(oa.offers_refused(), 2);
        assert_eq!(oa.check_offer(&offer(CERT_A, 1), 0, t0 + Duration::from_secs(60)), Ok(()), "a minute later");
    }

    #[test]
    fn an_offer_may_repeat_the_output_slots_plus_what_a_page_sends() {
        let mut oa = OfferAnswer::default();
        let t0 = Instant::now();
        let most = 16 + budget::MAX_SITE_SECTIONS;
        assert_eq!(oa.check_offer(&offer(CERT_A, most), 16, t0), Ok(()));
        let refused = oa.check_offer(&offer(CERT_A, most + 1), 16, t0).unwrap_err();
        assert_eq!((refused.fault, refused.over.map(|(b, _)| b)), (Fault::BadSdp, Some(Budget::Sections)));
    }

    #[test]
    fn the_bridge_stops_offering_after_three_refused_answers_in_a_row() {
        let mut oa = OfferAnswer::default();
        assert_eq!(oa.answer_refused(), AfterRefusedAnswer::OfferAgain);
        oa.answer_applied();
        assert_eq!(oa.answer_refused(), AfterRefusedAnswer::OfferAgain, "an applied answer starts the count again");
        assert_eq!(oa.answer_refused(), AfterRefusedAnswer::OfferAgain);
        assert_eq!(oa.answer_refused(), AfterRefusedAnswer::GiveUp);
    }

    #[test]
    fn fingerprints_are_read_once_per_value() {
        let sdp = "v=0\r\na=fingerprint:sha-256 AB:CD\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=fingerprint:sha-256 ab:cd\r\n";
        assert_eq!(fingerprints(sdp), vec!["sha-256 ab:cd".to_string()]);
        assert!(fingerprints("v=0\r\n").is_empty());
    }
}
