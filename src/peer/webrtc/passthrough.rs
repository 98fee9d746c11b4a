//! The shape of the bridge's own webrtc-rs interceptors: every packet passes through
//! unchanged and in order, except that a [`Watch`] sees each one on its way and may drop one
//! going out. The watch holds what the interceptor is about; the queues are here, once.

use rtc::interceptor::{Interceptor, StreamInfo, TaggedPacket};
use rtc::sansio::Protocol;
use rtc::shared::error::Error;
use std::collections::VecDeque;
use std::time::Instant;

/// What an interceptor does with the packets that pass it.
pub(crate) trait Watch: Send + Sync {
    /// A packet from the network on its way to the application (RTP or RTCP).
    fn on_read(&mut self, _msg: &TaggedPacket) {}

    /// A packet on its way to the network: false drops it.
    fn admit_write(&mut self, _msg: &TaggedPacket) -> bool {
        true
    }
}

/// An interceptor made of a [`Watch`].
pub(crate) struct PassThrough<W> {
    pub(crate) watch: W,
    read_queue: VecDeque<TaggedPacket>,
    write_queue: VecDeque<TaggedPacket>,
}

impl<W> PassThrough<W> {
    pub(crate) fn new(watch: W) -> Self {
        PassThrough { watch, read_queue: VecDeque::new(), write_queue: VecDeque::new() }
    }
}

impl<W: Watch> Protocol<TaggedPacket, TaggedPacket, ()> for PassThrough<W> {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = Error;
    type Time = Instant;

    fn handle_read(&mut self, msg: TaggedPacket) -> Result<(), Self::Error> {
        self.watch.on_read(&msg);
        self.read_queue.push_back(msg);
        Ok(())
    }

    fn poll_read(&mut self) -> Option<Self::Rout> {
        self.read_queue.pop_front()
    }

    fn handle_write(&mut self, msg: TaggedPacket) -> Result<(), Self::Error> {
        if self.watch.admit_write(&msg) {
            self.write_queue.push_back(msg);
        }
        Ok(())
    }

    fn poll_write(&mut self) -> Option<Self::Wout> {
        self.write_queue.pop_front()
    }
}

impl<W: Watch> Interceptor for PassThrough<W> {
    fn bind_local_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_local_stream(&mut self, _info: &StreamInfo) {}
    fn bind_remote_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_remote_stream(&mut self, _info: &StreamInfo) {}
}
