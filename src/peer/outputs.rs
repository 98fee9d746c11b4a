//! The output slots towards one receiving site, for both engines: which writer each slot has,
//! its rewriting state (SSRC, payload type per codec, sequence and timestamp offsets) and its
//! keyframe gate. The `webrtc` engine's sink task and the lean peer task each own one.
//!
//! When a video slot starts carrying another site (or another simulcast layer), the new
//! stream's packets are held back until its next keyframe: what came before would only show as
//! a broken picture. While a slot waits, the keyframe is asked for again every
//! [`KEYFRAME_RETRY`]: a request can be lost or ignored by the publisher (Chromium drops one
//! that comes too soon after the last), and without a retry the slot would stay black until the
//! next natural keyframe, which may never come. Packets for a slot not negotiated yet or while
//! the connection is not up are dropped (counted).

use crate::media::codec::{Codec, PayloadTypes};
use crate::media::rewrite::{Rewriter, Written};
use crate::media::router::{Router, SinkPacket};
use crate::media::Ssrc;
use crate::media::{Kind, KINDS};
use std::time::{Duration, Instant};
use tracing::debug;

/// How long a slot waits for the keyframe it asked for before asking again.
pub(crate) const KEYFRAME_RETRY: Duration = Duration::from_millis(1000);

/// What to do with one packet on its way into an output slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Admit {
    Write,
    Hold,
    /// Hold it, and ask the publisher for the keyframe again.
    HoldAndAsk,
}

/// Decides, per output slot, which packets may go out: after the slot starts carrying another
/// source (site and layer), video waits for a keyframe, asked for again every [`KEYFRAME_RETRY`].
#[derive(Debug, Default)]
struct KeyframeGate {
    /// The site and layer this slot carried last.
    source: Option<(usize, u8)>,
    /// While waiting for a keyframe: when it was last asked for.
    asked: Option<Instant>,
}

impl KeyframeGate {
    fn admit(&mut self, source: (usize, u8), kind: Kind, codec: Codec, payload: &[u8], now: Instant) -> Admit {
        if self.source != Some(source) {
            self.source = Some(source);
            // The router asked for this keyframe when it moved the slot.
            self.asked = kind.is_video().then_some(now);
        }
        let Some(asked) = self.asked else { return Admit::Write };
        if codec.starts_keyframe(payload) {
            self.asked = None;
            return Admit::Write;
        }
        if now.duration_since(asked) >= KEYFRAME_RETRY {
            self.asked = Some(now);
            return Admit::HoldAndAsk;
        }
        Admit::Hold
    }
}

/// The output slots towards one receiving site: each bound slot's writer (`W`, whatever the
/// engine writes with), its rewriting state and its keyframe gate.
pub(crate) struct Outputs<W> {
    site: usize,
    slots: [Vec<Option<Binding<W>>>; KINDS],
    connected: bool,
    pub(crate) written: u64,
    pub(crate) unbound: u64,
    pub(crate) held: u64,
    pub(crate) failed: u64,
    /// Packets of a codec the receiver did not accept on that slot.
    pub(crate) unsupported: u64,
    /// Packets of temporal layers the receiver was not sent (its downlink could not carry them).
    pub(crate) thinned: u64,
}

pub(crate) struct Binding<W> {
    pub(crate) writer: W,
    rewriter: Rewriter,
    gate: KeyframeGate,
}

impl<W> Outputs<W> {
    pub(crate) fn new(site: usize) -> Self {
        Outputs { site, slots: Default::default(), connected: false, written: 0, unbound: 0, held: 0, failed: 0, unsupported: 0, thinned: 0 }
    }

    /// Media may flow only while connected: before DTLS completes there are no SRTP keys.
    pub(crate) fn set_connected(&mut self, connected: bool) {
        self.connected = connected;
    }

    /// Binds a slot to its writer, SSRC and the payload types the browser accepted (per
    /// codec). Rebinding the same SSRC keeps the stream continuous (only the payload types
    /// may change).
    pub(crate) fn bind(&mut self, kind: Kind, slot: usize, writer: W, ssrc: Ssrc, payload_types: PayloadTypes, clock_rate: u32) {
        let slots = &mut self.slots[kind.index()];
        if slots.len() <= slot {
            slots.resize_with(slot + 1, || None);
        }
        match &mut slots[slot] {
            Some(b) if b.rewriter.ssrc() == ssrc => b.rewriter.set_payload_types(payload_types),
            other => *other = Some(Binding { writer, rewriter: Rewriter::new(ssrc, payload_types, clock_rate), gate: KeyframeGate::default() }),
        }
    }

    /// The packet rewritten for its slot and the slot's writer, or `None` when the slot is not
    /// bound, the site not connected, or the slot waits for a keyframe (asked for again from
    /// `router` when the wait is long).
    pub(crate) fn prepare(&mut self, p: SinkPacket, router: &Router, now: Instant) -> Option<(&W, crate::media::RtpPacket)> {
        let SinkPacket { source, kind, layer, temporal, slot, plain, mut packet, .. } = p;
        let connected = self.connected;
        let Some(b) = self.slots[kind.index()].get_mut(slot as usize).and_then(Option::as_mut).filter(|_| connected) else {
            self.unbound += 1;
            return None;
        };
        let Some(codec) = Codec::of_internal_pt(packet.header.payload_type) else {
            self.unsupported += 1;
            return None;
        };
        match b.gate.admit((source, layer), kind, codec, &packet.payload, now) {
            Admit::Write => {}
            Admit::Hold => {
                self.held += 1;
                return None;
            }
            Admit::HoldAndAsk => {
                self.held += 1;
                debug!(site = self.site, source, layer, slot, "still no keyframe; asking again");
                router.request_layer_keyframe(source, kind, layer);
                return None;
            }
        }
        b.rewriter.set_temporal(temporal);
        b.rewriter.set_plain(plain);
        match b.rewriter.rewrite(&mut packet, now) {
            Written::Sent => {}
            Written::Refused => {
                self.unsupported += 1;
                return None;
            }
            Written::Thinned => {
                self.thinned += 1;
                return None;
            }
        }
        Some((&b.writer, packet))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = &[0x10, 0x00, 0x9d, 0x01, 0x2a];
    const DELTA: &[u8] = &[0x10, 0x01, 0x00];
    const CONTINUATION: &[u8] = &[0x00, 0x00, 0x9d];

    #[test]
    fn video_from_a_new_source_waits_for_a_keyframe_and_asks_again_while_none_comes() {
        let mut gate = KeyframeGate::default();
        let t0 = Instant::now();
        assert_eq!(gate.admit((1, 2), Kind::Video, Codec::Vp8, DELTA, t0), Admit::Hold);
        assert_eq!(gate.admit((1, 2), Kind::Video, Codec::Vp8, CONTINUATION, t0 + Duration::from_millis(500)), Admit::Hold);
        assert_eq!(gate.admit((1, 2), Kind::Video, Codec::Vp8, DELTA, t0 + KEYFRAME_RETRY), Admit::HoldAndAsk, "the first request went unanswered");
        assert_eq!(
            gate.admit((1, 2), Kind::Video, Codec::Vp8, DELTA, t0 + KEYFRAME_RETRY + Duration::from_millis(10)),
            Admit::Hold,
            "asked again only after another wait"
        );
        assert_eq!(gate.admit((1, 2), Kind::Video, Codec::Vp8, DELTA, t0 + 2 * KEYFRAME_RETRY), Admit::HoldAndAsk);
        assert_eq!(gate.admit((1, 2), Kind::Video, Codec::Vp8, KEY, t0 + 2 * KEYFRAME_RETRY), Admit::Write);
        assert_eq!(gate.admit((1, 2), Kind::Video, Codec::Vp8, DELTA, t0 + 5 * KEYFRAME_RETRY), Admit::Write, "after the keyframe everything goes");
    }

    #[test]
    fn a_layer_switch_waits_again_and_audio_never_waits() {
        let mut gate = KeyframeGate::default();
        let t0 = Instant::now();
        assert_eq!(gate.admit((1, 0), Kind::Video, Codec::Vp8, KEY, t0), Admit::Write);
        assert_eq!(gate.admit((1, 2), Kind::Video, Codec::Vp8, DELTA, t0), Admit::Hold, "the high layer starts on its own keyframe");
        let mut audio = KeyframeGate::default();
        assert_eq!(audio.admit((3, 2), Kind::Audio, Codec::Opus, DELTA, t0), Admit::Write);
        assert_eq!(audio.admit((4, 2), Kind::Audio, Codec::Opus, DELTA, t0), Admit::Write);
    }
}
