//! An interceptor that reports receivers' keyframe requests (PLI, FIR) to the peer task.
//!
//! webrtc-rs hands inbound RTCP to the interceptors only; rather than marking packets for
//! delivery on each local track (one poll task per forwarded track), this tap copies the
//! media SSRC of each keyframe request into a channel and lets the packet continue unchanged.

use super::passthrough::{PassThrough, Watch};
use rtc::interceptor::{Packet, TaggedPacket};
use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use tokio::sync::mpsc;

/// The interceptor: every packet passes, keyframe requests are copied to the peer task.
pub(crate) type KeyframeTap = PassThrough<KeyframeRequests>;

/// Copies the media SSRC of each PLI and FIR that passes into a channel.
pub(crate) struct KeyframeRequests {
    requests: mpsc::UnboundedSender<u32>,
}

impl KeyframeTap {
    pub(crate) fn tap(requests: mpsc::UnboundedSender<u32>) -> Self {
        PassThrough::new(KeyframeRequests { requests })
    }
}

impl Watch for KeyframeRequests {
    fn on_read(&mut self, msg: &TaggedPacket) {
        if let Packet::Rtcp(packets) = &msg.message.packet {
            for p in packets {
                let any = p.as_any();
                if let Some(pli) = any.downcast_ref::<PictureLossIndication>() {
                    let _ = self.requests.send(pli.media_ssrc);
                } else if let Some(fir) = any.downcast_ref::<FullIntraRequest>() {
                    for entry in &fir.fir {
                        let _ = self.requests.send(entry.ssrc);
                    }
                }
            }
        }
    }
}
