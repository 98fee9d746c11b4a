//! Which of the bridge's output streams carry the transport-wide sequence number, for the
//! downlink estimate (`estimate.rs`). Only the slots whose answer kept the extension: a
//! browser reports on the numbers it read, and one that takes the numbering on video only
//! (Firefox) would report every audio packet's number between two video packets' as lost,
//! which the estimate would take for a lossy line.

use super::sdp::Output;
use crate::media::Ssrc;
use std::collections::HashSet;

#[derive(Debug, Default)]
pub(crate) struct Numbering {
    /// The extension id, once any slot accepted it (one id for the whole bundle).
    id: Option<u8>,
    /// The media and retransmission SSRCs of the slots that accepted it.
    streams: HashSet<Ssrc>,
}

impl Numbering {
    /// Takes in a slot the browser's answer accepted.
    pub(crate) fn accept(&mut self, output: &Output) {
        let streams = std::iter::once(output.ssrc).chain(output.rtx_ssrc);
        match output.transport_cc {
            Some(id) => {
                self.id = Some(id);
                self.streams.extend(streams);
            }
            None => {
                for ssrc in streams {
                    self.streams.remove(&ssrc);
                }
            }
        }
    }

    /// Any stream is numbered: the browser sends feedback to expect.
    pub(crate) fn is_on(&self) -> bool {
        self.id.is_some()
    }

    /// The extension id a packet of `ssrc` is numbered with, if it is numbered.
    pub(crate) fn id_for(&self, ssrc: Ssrc) -> Option<u8> {
        self.id.filter(|_| self.streams.contains(&ssrc))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::codec::PayloadTypes;
    use crate::media::Kind;
    use crate::peer::lean::sdp::{Media, RemoteDescription, TRANSPORT_CC_URI};

    fn slot(kind: Kind, ssrc: u32, rtx_ssrc: Option<u32>, transport_cc: Option<u8>) -> Output {
        Output {
            kind,
            slot: 0,
            ssrc: Ssrc(ssrc),
            payload_types: PayloadTypes::default(),
            rtx_ssrc: rtx_ssrc.map(Ssrc),
            rtx: PayloadTypes::default(),
            accepted: true,
            transport_cc,
        }
    }

    #[test]
    fn firefox_numbers_its_video_only() {
        // Its own offer says so (recorded from Firefox ESR 140): the extension on the camera,
        // not on the microphone.
        let offer = RemoteDescription::parse(include_str!("sdp/testdata/firefox140_offer.sdp")).unwrap();
        let on = |media: Media| offer.sections.iter().find(|s| s.media == media).and_then(|s| s.extmap(TRANSPORT_CC_URI));
        assert_eq!((on(Media::Audio), on(Media::Video)), (None, Some(7)));
    }

    #[test]
    fn only_the_slots_that_kept_the_extension_are_numbered_with_their_retransmissions() {
        let mut n = Numbering::default();
        assert!(!n.is_on());
        // Firefox's answer: audio slots without the extension, video slots with it.
        for o in [slot(Kind::Audio, 1111, None, None), slot(Kind::Video, 2221, Some(2231), Some(7)), slot(Kind::Content, 3331, Some(3341), Some(7))] {
            n.accept(&o);
        }
        assert!(n.is_on());
        assert_eq!(n.id_for(Ssrc(1111)), None, "its audio is not numbered: its feedback would call it lost");
        assert_eq!([n.id_for(Ssrc(2221)), n.id_for(Ssrc(2231)), n.id_for(Ssrc(3331)), n.id_for(Ssrc(3341))], [Some(7); 4]);
        assert_eq!(n.id_for(Ssrc(4444)), None, "a stream no slot has");
        // A later answer that drops it from a slot: that slot's streams are no longer numbered.
        n.accept(&slot(Kind::Video, 2221, Some(2231), None));
        assert_eq!((n.id_for(Ssrc(2221)), n.id_for(Ssrc(2231)), n.id_for(Ssrc(3331))), (None, None, Some(7)));
    }
}
