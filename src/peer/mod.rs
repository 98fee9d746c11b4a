//! The media of each joined site, behind one seam: a signalling session starts its site's
//! peer with [`spawn`], sends it [`PeerCommand`]s and hears [`PeerEvent`]s; what speaks WebRTC
//! to the browser is the engine `[media] engine` picks:
//!
//! - [`lean`] (the default): the bridge's own ICE-lite, DTLS-SRTP and forwarding, one task per
//!   site on a sans-IO transport (`lean/transport/`), on webrtc-rs's lower crates;
//! - [`webrtc`]: a webrtc-rs PeerConnection per site, kept as the fallback a technician can
//!   switch to without a new release (the criterion is in docs/architecture.md).
//!
//! What both engines need is here, written once: the ports they share ([`mux`]), what happens
//! to a received packet before the router ([`inbound`]), the output slots with their rewriting
//! and keyframe gate ([`outputs`]), the per-site budgets ([`budget`]) and how their refusals are
//! counted ([`Refusals`]).
//!
//! The browser offers once (its camera and microphone, send-only); the peer answers and then
//! offers its fixed set of send-only output slots (audio, video, content): which site each slot
//! carries is the conference's decision, so sites coming and going never grow or renegotiate
//! the SDP. Packets reach a peer from the [`Router`](crate::media::router::Router), never through
//! its session.

pub mod budget;
pub(crate) mod ceilings;
pub mod inbound;
pub mod lean;
pub mod mux;
pub(crate) mod offer_answer;
pub(crate) mod outputs;
pub(crate) mod webrtc;

use crate::health::board::StatsBoard;
use crate::media::router::Router;
use crate::media::Kind;
use crate::signal::protocol::{IceCandidate, MediaState};
use mux::Mux;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::warn;

/// The shortest interval between two keyframe requests sent to one publisher. Requests from
/// several receivers inside it are coalesced into one. Chromium (libwebrtc's
/// `EncoderRtcpFeedback`) ignores a request that comes within 300 ms of the last one it
/// acted on, so a 300 ms spacing had coalesced requests arrive just inside that window and
/// be ignored (seen: a recording's first keyframe took a second); 350 ms clears it.
pub(crate) const KEYFRAME_MIN_INTERVAL: Duration = Duration::from_millis(350);

/// Passes the router's keyframe requests for one published layer on to its publisher, at most
/// one per [`KEYFRAME_MIN_INTERVAL`]: the channel holds one pending request, so a burst
/// collapses into one more request. `ask` sends one (a PLI, however the engine sends it); it
/// returns false when the publisher can no longer be asked, which ends the pacing, as do
/// `cancel` and the router dropping its side. Both engines pace with this.
pub(crate) async fn pace_keyframe_requests<F, Fut>(mut requests: mpsc::Receiver<()>, cancel: CancellationToken, mut ask: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    loop {
        tokio::select! {
            _ = cancel.cancelled() => break,
            r = requests.recv() => if r.is_none() { break },
        }
        if !ask().await {
            break;
        }
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = tokio::time::sleep(KEYFRAME_MIN_INTERVAL) => {}
        }
    }
}

/// What a site's budgets refused on its connection: counted on the health board (which raises
/// the site's `over_budget` alarm), logged once per budget and connection, never per packet.
/// Both engines report through one.
pub(crate) struct Refusals {
    site: usize,
    board: Arc<StatsBoard>,
    logged: Vec<budget::Budget>,
}

impl Refusals {
    pub(crate) fn new(site: usize, board: Arc<StatsBoard>) -> Self {
        Refusals { site, board, logged: Vec::new() }
    }

    /// `n` more of what the site asked for were refused by `budget`; `what` says why, once.
    pub(crate) fn refuse(&mut self, budget: budget::Budget, n: u64, what: &str) {
        self.board.refuse(self.site, budget, n);
        if !self.logged.contains(&budget) {
            self.logged.push(budget);
            warn!(budget = budget.code(), "over budget: {what} (counted; logged once per connection)");
        }
    }

    /// What the offer/answer rules refused, noted as both engines do: a budget's refusals are
    /// counted and logged once ([`Refusals::refuse`]), the others logged each time. Returns
    /// the event that tells the page.
    pub(crate) fn note(&mut self, r: offer_answer::Refusal, request: &'static str) -> PeerEvent {
        match r.over {
            Some((budget, what)) => self.refuse(budget, 1, what),
            None => warn!(message = %r.message, "refused {request}"),
        }
        PeerEvent::Refused { fault: r.fault, message: r.message, request }
    }
}

/// What a signalling session asks of its peer.
#[derive(Debug)]
pub(crate) enum PeerCommand {
    RemoteOffer(String),
    RemoteAnswer(String),
    RemoteCandidate(IceCandidate),
    /// The browser's track with this id (msid track id) carries shared content, not the camera.
    ContentTrack(String),
}

/// What was wrong with something a site sent its peer (an offer, an answer, a candidate).
/// The peer says what; `signal` names it on the wire (`From<Fault> for ErrorCode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// More often than a page does it (offers a minute).
    TooOften,
    /// Out of turn: an offer while the bridge's own waits for its answer, an answer to nothing.
    OutOfOrder,
    /// SDP that cannot be parsed or applied, is too large, or announces another certificate.
    BadSdp,
    /// A candidate the ICE agent does not take.
    BadCandidate,
    /// Media in a codec the bridge does not forward.
    UnsupportedCodec,
    /// The bridge's own failure.
    Internal,
}

/// What a peer tells its signalling session.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum PeerEvent {
    LocalAnswer(String),
    LocalOffer(String),
    LocalCandidate(IceCandidate),
    State(MediaState),
    /// The browser renegotiated with new ICE credentials (an ICE restart).
    IceRestarted,
    /// The worst video loss (percent) the browser reports on what the bridge sends it (lean
    /// engine, from its RTCP reception reports): whether its downlink can take large layers.
    DownlinkLoss(f64),
    /// How much the site's downlink takes (bit/s), from its browser's transport-cc feedback on
    /// what the bridge sends (lean engine): the conference fits the site's layers into it.
    DownlinkEstimate {
        bps: f64,
        loss_bps: f64,
        /// The line loses packets at random, not only to its own queue (see
        /// `conference::view::Redundancy`).
        lossy: bool,
    },
    Refused {
        fault: Fault,
        message: String,
        request: &'static str,
    },
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum PeerError {
    #[error("cannot create the media connection: {0}")]
    Build(#[from] ::webrtc::error::Error),
}

/// Everything a peer needs from the bridge.
#[derive(Clone)]
pub(crate) struct PeerContext {
    pub(crate) router: Router,
    pub(crate) network: MediaNetwork,
    /// Site ids by index: stream ids of forwarded tracks, so browsers know whose media it is.
    pub(crate) site_ids: Arc<[String]>,
    /// Where measured statistics go.
    pub(crate) board: Arc<StatsBoard>,
    /// Output slots per receiving site: (audio, video).
    pub(crate) slots: (usize, usize),
    /// The video codecs the meeting forwards (the lean engine; `webrtc` forwards VP8).
    pub(crate) video_codecs: Vec<crate::media::Codec>,
    /// Negotiate redundant audio with browsers that offer it (the lean engine).
    pub(crate) audio_red: bool,
    /// Each site's line ceilings, live (the lean engine).
    pub(crate) lines: Arc<ceilings::Ceilings>,
}

/// The session's handle; dropping it closes the peer.
pub(crate) struct PeerHandle {
    commands: mpsc::Sender<PeerCommand>,
    cancel: CancellationToken,
}

impl PeerHandle {
    /// Queues a command; false if the peer has stopped.
    pub(crate) async fn send(&self, command: PeerCommand) -> bool {
        self.commands.send(command).await.is_ok()
    }
}

impl Drop for PeerHandle {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// The bridge's shared media ports, which every peer uses, and the engine that drives them.
#[derive(Debug, Clone)]
pub(crate) struct MediaNetwork {
    pub(crate) mux: Arc<Mux>,
    pub(crate) engine: crate::config::MediaEngine,
    /// The lean engine's DTLS certificate, one for every site.
    pub(crate) identity: Arc<lean::transport::Identity>,
}

/// Starts the peer for `site` on the configured engine; events arrive on the returned receiver
/// until the peer stops.
pub(crate) async fn spawn(site: usize, ctx: PeerContext) -> Result<(PeerHandle, mpsc::Receiver<PeerEvent>), PeerError> {
    match ctx.network.engine {
        crate::config::MediaEngine::Lean => lean::spawn(site, ctx).await,
        crate::config::MediaEngine::Webrtc => webrtc::spawn(site, ctx).await,
    }
}

/// The stream id of an output slot, as the page sees it: `a0`, `v3`, `c0`.
pub(crate) fn slot_id(kind: Kind, slot: usize) -> String {
    let prefix = match kind {
        Kind::Audio => 'a',
        Kind::Video => 'v',
        Kind::Content => 'c',
    };
    format!("{prefix}{slot}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use std::time::Instant;

    /// Waits (at most 5 s) until `asks` holds `n` entries.
    async fn until(asks: &Mutex<Vec<Instant>>, n: usize) {
        for _ in 0..500 {
            if asks.lock().unwrap().len() >= n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("{n} keyframe requests were not asked within 5 s");
    }

    #[tokio::test]
    async fn a_burst_of_keyframe_requests_is_asked_once_more_after_the_interval_and_then_no_more() {
        let (tx, rx) = mpsc::channel(1);
        let asks = Arc::new(Mutex::new(Vec::new()));
        let seen = asks.clone();
        let pacing = tokio::spawn(pace_keyframe_requests(rx, CancellationToken::new(), move || {
            seen.lock().unwrap().push(Instant::now());
            std::future::ready(true)
        }));
        tx.try_send(()).unwrap();
        until(&asks, 1).await;
        // Ten receivers ask while the publisher was just asked: the channel holds one of them.
        let held = (0..10).filter(|_| tx.try_send(()).is_ok()).count();
        assert_eq!(held, 1);
        until(&asks, 2).await;
        let at = asks.lock().unwrap().clone();
        assert!(at[1] - at[0] >= KEYFRAME_MIN_INTERVAL, "the second ask waits the interval: {:?}", at[1] - at[0]);
        tokio::time::sleep(KEYFRAME_MIN_INTERVAL * 2).await;
        assert_eq!(asks.lock().unwrap().len(), 2, "the burst was one request");
        // The router dropping its side ends the pacing.
        drop(tx);
        tokio::time::timeout(Duration::from_secs(5), pacing).await.expect("pacing ends with its channel").unwrap();
    }

    #[tokio::test]
    async fn pacing_ends_when_the_publisher_can_no_longer_be_asked_or_the_peer_stops() {
        let (tx, rx) = mpsc::channel(1);
        let gone = tokio::spawn(pace_keyframe_requests(rx, CancellationToken::new(), || std::future::ready(false)));
        tx.try_send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(5), gone).await.expect("a failed ask ends the pacing").unwrap();
        let (_tx, rx) = mpsc::channel::<()>(1);
        let cancel = CancellationToken::new();
        let stopped = tokio::spawn(pace_keyframe_requests(rx, cancel.clone(), || std::future::ready(true)));
        cancel.cancel();
        tokio::time::timeout(Duration::from_secs(5), stopped).await.expect("the peer's cancel ends the pacing").unwrap();
    }
}
