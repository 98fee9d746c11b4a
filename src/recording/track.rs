//! One recorded stream: puts forwarded RTP back in order and turns it into what a file
//! holds — Opus packets, or whole VP8 frames or H.264 access units (Annex B) — each with its
//! time since the stream's start.
//! Pure: time is passed in, nothing is written here.
//!
//! Packets can arrive out of order (retransmissions answer receivers' NACKs), so a short
//! reorder buffer holds them until the gap fills, or gives up on the gap after
//! [`MAX_HELD`] packets or [`MAX_WAIT`]. A video frame that lost a packet is dropped and a
//! keyframe is asked for; a stream's first frame must be a keyframe.

use crate::media::{h264, vp8, RtpPacket};
use bytes::Bytes;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Packets held waiting for a missing one before it is given up.
pub(crate) const MAX_HELD: usize = 64;
/// How long a missing packet is waited for.
pub(crate) const MAX_WAIT: Duration = Duration::from_millis(300);
/// How often a keyframe is asked for again while none arrives.
pub(crate) const KEYFRAME_RETRY: Duration = Duration::from_millis(400);

/// What a stream produces for its file.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Output {
    /// One Opus packet starting `pts` clock ticks after the stream's first packet.
    Audio { payload: Bytes, pts: u64 },
    /// One complete video frame (VP8, or an H.264 access unit in Annex B form).
    Frame { data: Vec<u8>, pts: u64, size: Option<(u16, u16)> },
    /// The next frames cannot be decoded without a keyframe: ask the publisher for one.
    NeedKeyframe,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StreamKind {
    Opus,
    Vp8,
    H264,
}

/// Counters of one stream, for the recording's index.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub(crate) struct StreamCounts {
    pub(crate) packets: u64,
    /// Given up waiting for (after [`MAX_WAIT`]) or arrived too late.
    pub(crate) lost: u64,
    pub(crate) frames_dropped: u64,
}

struct Frame {
    timestamp: u32,
    data: Vec<u8>,
    keyframe: bool,
    broken: bool,
}

pub(crate) struct Assembler {
    kind: StreamKind,
    /// Held packets by extended sequence number, with their arrival time.
    held: BTreeMap<u64, (RtpPacket, Instant)>,
    /// Extended sequence number of the next packet to release.
    next: Option<u64>,
    /// Extended RTP timestamp of the first packet, and of the last released one.
    first_ts: Option<u64>,
    last_ts: u64,
    frame: Option<Frame>,
    /// A keyframe has started this stream (video).
    keyframe_seen: bool,
    /// When a keyframe was last asked for, while none has arrived since.
    keyframe_asked: Option<Instant>,
    /// Packets were lost between two frames.
    after_gap: bool,
    counts: StreamCounts,
}

impl Assembler {
    pub(crate) fn new(kind: StreamKind) -> Self {
        Assembler {
            kind,
            held: BTreeMap::new(),
            next: None,
            first_ts: None,
            last_ts: 0,
            frame: None,
            keyframe_seen: false,
            keyframe_asked: None,
            after_gap: false,
            counts: StreamCounts::default(),
        }
    }

    pub(crate) fn counts(&self) -> StreamCounts {
        self.counts
    }

    /// Takes one packet; what became ready is appended to `out`.
    pub(crate) fn push(&mut self, packet: RtpPacket, now: Instant, out: &mut Vec<Output>) {
        self.counts.packets += 1;
        let seq = packet.header.sequence_number;
        let ext = match self.next {
            None => {
                self.next = Some(1 << 16 | seq as u64);
                1 << 16 | seq as u64
            }
            Some(next) => {
                // The extended number nearest to what is expected next.
                let delta = seq.wrapping_sub(next as u16) as i16 as i64;
                let ext = next as i64 + delta;
                if ext < next as i64 {
                    return; // late (already given up) or a duplicate
                }
                ext as u64
            }
        };
        self.held.entry(ext).or_insert((packet, now));
        self.release(now, out);
    }

    /// Gives up on gaps that have been waited for long enough; call a few times a second.
    pub(crate) fn flush(&mut self, now: Instant, out: &mut Vec<Output>) {
        self.release(now, out);
    }

    /// Releases everything held (the stream ends) and the frame in progress, if complete.
    pub(crate) fn finish(&mut self, now: Instant, out: &mut Vec<Output>) {
        while let Some((ext, (p, _))) = self.held.pop_first() {
            self.skip_to(ext);
            self.take(p, now, out);
        }
    }

    fn release(&mut self, now: Instant, out: &mut Vec<Output>) {
        loop {
            let Some((&ext, (_, arrived))) = self.held.first_key_value() else { return };
            let next = self.next.unwrap_or(ext);
            if ext != next {
                let waited = now.saturating_duration_since(*arrived) >= MAX_WAIT;
                if self.held.len() <= MAX_HELD && !waited {
                    return;
                }
                self.skip_to(ext);
            }
            let (_, (p, _)) = self.held.pop_first().expect("checked above");
            self.next = Some(ext + 1);
            self.take(p, now, out);
        }
    }

    /// Gives up on the packets before `ext`.
    fn skip_to(&mut self, ext: u64) {
        if let Some(next) = self.next {
            if ext > next {
                self.counts.lost += ext - next;
                match &mut self.frame {
                    Some(f) => f.broken = true,
                    // A whole frame may have gone: the next one may not decode without a keyframe.
                    None => self.after_gap = true,
                }
            }
        }
        self.next = Some(ext + 1);
    }

    /// The extended timestamp of `ts`, nearest to the last one released.
    fn pts(&mut self, ts: u32) -> u64 {
        let ext = match self.first_ts {
            None => {
                let e = 1u64 << 32 | ts as u64;
                self.first_ts = Some(e);
                e
            }
            Some(_) => {
                let delta = ts.wrapping_sub(self.last_ts as u32) as i32 as i64;
                (self.last_ts as i64 + delta).max(0) as u64
            }
        };
        self.last_ts = self.last_ts.max(ext);
        ext.saturating_sub(self.first_ts.unwrap_or(ext))
    }

    fn take(&mut self, p: RtpPacket, now: Instant, out: &mut Vec<Output>) {
        if p.payload.is_empty() {
            return; // padding only
        }
        match self.kind {
            StreamKind::Opus => {
                let pts = self.pts(p.header.timestamp);
                out.push(Output::Audio { payload: p.payload, pts });
            }
            StreamKind::Vp8 => self.take_vp8(p, now, out),
            StreamKind::H264 => self.take_h264(p, now, out),
        }
    }

    /// H.264 has no start-of-frame bit: a frame is the packets of one timestamp, up to the
    /// marker. After a gap, a frame is whole only if it begins with a keyframe's first packet.
    fn take_h264(&mut self, p: RtpPacket, now: Instant, out: &mut Vec<Output>) {
        let ts = p.header.timestamp;
        let key_start = h264::starts_keyframe(&p.payload);
        if self.frame.as_ref().is_some_and(|f| f.timestamp != ts) {
            // A new frame began before the last one's marker: that one lost its end.
            self.frame = None;
            self.drop_frame(now, out);
        }
        if self.frame.is_none() {
            let after_gap = std::mem::take(&mut self.after_gap);
            if after_gap && !key_start {
                self.ask_keyframe(now, out);
            }
            self.frame = Some(Frame { timestamp: ts, data: Vec::new(), keyframe: key_start, broken: after_gap && !key_start });
        }
        let f = self.frame.as_mut().expect("set above");
        f.keyframe |= key_start;
        if !h264::append_annex_b(&p.payload, &mut f.data) {
            f.broken = true;
        }
        if p.header.marker {
            self.finish_frame(now, out);
        }
    }

    fn take_vp8(&mut self, p: RtpPacket, now: Instant, out: &mut Vec<Output>) {
        let ts = p.header.timestamp;
        let Some(d) = vp8::descriptor(&p.payload) else {
            if let Some(f) = &mut self.frame {
                f.broken = true;
            }
            return;
        };
        let data = &p.payload[d.len..];
        if d.starts_frame() {
            if self.frame.take().is_some() {
                // A new frame began before the last one's marker: that one lost its end.
                self.drop_frame(now, out);
            }
            let keyframe = vp8::is_keyframe(data);
            if std::mem::take(&mut self.after_gap) && !keyframe {
                self.ask_keyframe(now, out);
            }
            self.frame = Some(Frame { timestamp: ts, data: data.to_vec(), keyframe, broken: false });
        } else {
            match &mut self.frame {
                Some(f) if f.timestamp == ts => f.data.extend_from_slice(data),
                // The end of one frame and the start of this one were lost.
                Some(f) => {
                    f.broken = true;
                    f.timestamp = ts;
                }
                None => self.frame = Some(Frame { timestamp: ts, data: Vec::new(), keyframe: false, broken: true }),
            }
        }
        if p.header.marker {
            self.finish_frame(now, out);
        }
    }

    /// The frame in progress is complete (its marker arrived).
    fn finish_frame(&mut self, now: Instant, out: &mut Vec<Output>) {
        let Some(f) = self.frame.take() else { return };
        if f.broken || (!self.keyframe_seen && !f.keyframe) {
            return self.drop_frame(now, out);
        }
        if f.keyframe {
            self.keyframe_seen = true;
            self.keyframe_asked = None;
        }
        let size = if f.keyframe && self.kind == StreamKind::Vp8 { vp8::frame_size(&f.data) } else { None };
        let pts = self.pts(f.timestamp);
        out.push(Output::Frame { data: f.data, pts, size });
    }

    fn drop_frame(&mut self, now: Instant, out: &mut Vec<Output>) {
        self.counts.frames_dropped += 1;
        self.ask_keyframe(now, out);
    }

    /// Asks for a missing keyframe, again each [`KEYFRAME_RETRY`] while none arrives (the
    /// router also rate-limits requests to the publisher).
    fn ask_keyframe(&mut self, now: Instant, out: &mut Vec<Output>) {
        if self.keyframe_asked.is_none_or(|at| now.saturating_duration_since(at) >= KEYFRAME_RETRY) {
            self.keyframe_asked = Some(now);
            out.push(Output::NeedKeyframe);
        }
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    fn packet(seq: u16, ts: u32, marker: bool, payload: &[u8]) -> RtpPacket {
        let mut p = RtpPacket::default();
        p.header.sequence_number = seq;
        p.header.timestamp = ts;
        p.header.marker = marker;
        p.payload = Bytes::copy_from_slice(payload);
        p
    }

    /// A VP8 packet: descriptor (S bit when `start`) then one data byte; keyframes have bit 0
    /// of the first frame byte clear.
    fn vp8(seq: u16, ts: u32, start: bool, marker: bool, key: bool) -> RtpPacket {
        let data = if key { 0x10 } else { 0x11 };
        packet(seq, ts, marker, &[if start { 0x10 } else { 0x00 }, data])
    }

    fn frames(out: &[Output]) -> Vec<(Vec<u8>, u64)> {
        out.iter().filter_map(|o| if let Output::Frame { data, pts, .. } = o { Some((data.clone(), *pts)) } else { None }).collect()
    }

    #[test]
    fn audio_is_put_back_in_order_with_timestamps_from_the_first_packet() {
        let t = Instant::now();
        let mut a = Assembler::new(StreamKind::Opus);
        let mut out = Vec::new();
        a.push(packet(65534, 4_294_966_000, false, &[1]), t, &mut out);
        a.push(packet(0, 4_294_966_000u32.wrapping_add(1920), false, &[3]), t, &mut out);
        assert_eq!(out.len(), 1, "packet 65535 is missing: 0 waits");
        a.push(packet(65535, 4_294_966_000u32.wrapping_add(960), false, &[2]), t, &mut out);
        assert_eq!(
            out,
            vec![
                Output::Audio { payload: Bytes::from_static(&[1]), pts: 0 },
                Output::Audio { payload: Bytes::from_static(&[2]), pts: 960 },
                Output::Audio { payload: Bytes::from_static(&[3]), pts: 1920 },
            ],
            "sequence numbers and timestamps wrap"
        );
        assert_eq!(a.counts().lost, 0);
    }

    #[test]
    fn a_gap_is_given_up_after_the_wait() {
        let t = Instant::now();
        let mut a = Assembler::new(StreamKind::Opus);
        let mut out = Vec::new();
        a.push(packet(1, 0, false, &[1]), t, &mut out);
        a.push(packet(3, 1920, false, &[3]), t, &mut out);
        a.flush(t + Duration::from_millis(100), &mut out);
        assert_eq!(out.len(), 1);
        a.flush(t + MAX_WAIT, &mut out);
        assert_eq!(out.len(), 2);
        assert_eq!(a.counts().lost, 1);
        // The missing packet arriving now is too late and changes nothing.
        a.push(packet(2, 960, false, &[2]), t + MAX_WAIT, &mut out);
        assert_eq!(out.len(), 2);
    }

    #[test]
    fn video_frames_are_assembled_and_start_with_a_keyframe() {
        let t = Instant::now();
        let mut v = Assembler::new(StreamKind::Vp8);
        let mut out = Vec::new();
        // An inter frame first: dropped, a keyframe asked for.
        v.push(vp8(10, 0, true, true, false), t, &mut out);
        assert_eq!(out, vec![Output::NeedKeyframe]);
        out.clear();
        // A keyframe in two packets, then an inter frame.
        v.push(vp8(11, 3000, true, false, true), t, &mut out);
        v.push(vp8(12, 3000, false, true, true), t, &mut out);
        v.push(vp8(13, 6000, true, true, false), t, &mut out);
        assert_eq!(frames(&out), vec![(vec![0x10, 0x10], 0), (vec![0x11], 3000)]);
        assert!(!out.contains(&Output::NeedKeyframe));
    }

    #[test]
    fn a_frame_that_lost_a_packet_is_dropped_and_a_keyframe_asked_for() {
        let t = Instant::now();
        let mut v = Assembler::new(StreamKind::Vp8);
        let mut out = Vec::new();
        v.push(vp8(1, 0, true, true, true), t, &mut out);
        // Frame at 3000 is packets 2, 3, 4; packet 3 never comes.
        v.push(vp8(2, 3000, true, false, false), t, &mut out);
        v.push(vp8(4, 3000, false, true, false), t, &mut out);
        v.push(vp8(5, 6000, true, true, false), t, &mut out);
        v.flush(t + MAX_WAIT, &mut out);
        assert_eq!(frames(&out), vec![(vec![0x10], 0), (vec![0x11], 6000)]);
        assert!(out.contains(&Output::NeedKeyframe));
        assert_eq!(v.counts().frames_dropped, 1);
        assert_eq!(v.counts().lost, 1);
    }

    #[test]
    fn losing_the_first_packet_of_a_frame_drops_that_frame_only() {
        let t = Instant::now();
        let mut v = Assembler::new(StreamKind::Vp8);
        let mut out = Vec::new();
        v.push(vp8(1, 0, true, true, true), t, &mut out);
        // Frame at 3000: packets 2 (lost) and 3.
        v.push(vp8(3, 3000, false, true, false), t, &mut out);
        v.push(vp8(4, 6000, true, true, false), t, &mut out);
        v.flush(t + MAX_WAIT, &mut out);
        assert_eq!(frames(&out), vec![(vec![0x10], 0), (vec![0x11], 6000)]);
        assert_eq!(v.counts().frames_dropped, 1);
    }

    #[test]
    fn h264_access_units_are_assembled_by_timestamp_and_start_with_a_keyframe() {
        let t = Instant::now();
        let mut v = Assembler::new(StreamKind::H264);
        let mut out = Vec::new();
        // A non-IDR slice first: dropped, a keyframe asked for.
        v.push(packet(1, 0, true, &[0x41, 0x01]), t, &mut out);
        assert_eq!(out, vec![Output::NeedKeyframe]);
        out.clear();
        // SPS+PPS in a STAP-A, an IDR in two FU-A fragments; then a one-packet slice.
        v.push(packet(2, 3000, false, &[0x78, 0x00, 0x02, 0x67, 0x42, 0x00, 0x01, 0x68]), t, &mut out);
        v.push(packet(3, 3000, false, &[0x7c, 0x85, 0xAA]), t, &mut out);
        v.push(packet(4, 3000, true, &[0x7c, 0x45, 0xBB]), t, &mut out);
        v.push(packet(5, 6000, true, &[0x41, 0x02]), t, &mut out);
        let key = vec![0, 0, 0, 1, 0x67, 0x42, 0, 0, 0, 1, 0x68, 0, 0, 0, 1, 0x65, 0xAA, 0xBB];
        assert_eq!(frames(&out), vec![(key, 0), (vec![0, 0, 0, 1, 0x41, 0x02], 3000)]);
        // A lost first fragment: that access unit is dropped, a keyframe asked for.
        out.clear();
        v.push(packet(7, 9000, true, &[0x7c, 0x41, 0xCC]), t, &mut out);
        v.flush(t + MAX_WAIT, &mut out);
        assert!(frames(&out).is_empty());
        assert!(out.contains(&Output::NeedKeyframe));
        assert_eq!(v.counts().frames_dropped, 2, "the first slice and the broken access unit");
    }

    #[test]
    fn the_held_packets_are_written_when_the_stream_ends() {
        let t = Instant::now();
        let mut a = Assembler::new(StreamKind::Opus);
        let mut out = Vec::new();
        a.push(packet(1, 0, false, &[1]), t, &mut out);
        a.push(packet(3, 1920, false, &[3]), t, &mut out);
        a.finish(t, &mut out);
        assert_eq!(out.len(), 2);
    }
}
