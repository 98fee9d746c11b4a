//! Per-receiver rewriting of a forwarded RTP stream. Pure: time is passed in.
//!
//! Each output stream gets its own SSRC and the payload type the receiver chose for the
//! packet's codec (a slot may carry VP8 from one publisher and H.264 from the next), and the
//! publisher's header extensions are stripped (their ids mean nothing on the receiver's leg).
//! When the publisher or simulcast layer behind an output changes, sequence numbers and
//! timestamps are shifted so the receiver's jitter buffer sees one continuous stream instead
//! of a jump it would treat as loss; for VP8 the PictureID and TL0PICIDX continue too, so the
//! receiver's decoder takes the new source's keyframe as the next picture rather than as an
//! old one to discard. A receiver given fewer temporal layers ([`super::temporal`]) gets its
//! VP8 with the dropped frames' numbers closed up.

use super::codec::{Codec, PayloadTypes};
use super::ids::Ssrc;
use super::temporal::{self, Thinning, Verdict};
use super::{red, vp8, RtpPacket};
use rtc::rtp::header::Header;
use std::time::Instant;

/// The state of one output stream (one slot towards one receiver).
#[derive(Debug, Clone)]
pub struct Rewriter {
    ssrc: Ssrc,
    payload_types: PayloadTypes,
    clock_rate: u32,
    source_ssrc: Option<Ssrc>,
    seq_delta: u16,
    ts_delta: u32,
    /// Highest sequence number written, its timestamp and when it was written.
    last_out: Option<(u16, u32, Instant)>,
    pictures: PictureNumbers,
    /// The highest temporal layer this receiver wants now, and the thinning of its source.
    temporal: u8,
    thinning: Thinning,
    /// Redundant audio goes out as the plain Opus it carries, though the receiver takes both.
    plain: bool,
}

/// What [`Rewriter::rewrite`] made of a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum Written {
    /// Rewritten: send it.
    Sent,
    /// The receiver did not accept its codec on this slot (or it is malformed).
    Refused,
    /// Of a temporal layer this receiver is not sent now.
    Thinned,
}

impl Written {
    pub fn sent(self) -> bool {
        self == Written::Sent
    }
}

/// VP8 picture numbering across source changes.
#[derive(Debug, Clone, Copy, Default)]
struct PictureNumbers {
    picture_delta: u16,
    tl0_delta: u8,
    /// The deltas are set at the new source's first numbered packet.
    pending: bool,
    /// Highest PictureID written (15-bit space) and the last TL0PICIDX.
    last: Option<(u16, u8)>,
}

const PICTURE_ID_SPACE: u16 = 0x8000;

impl PictureNumbers {
    /// Renumbers one VP8 payload (whose numbering reads `n`), `back` pictures earlier for
    /// the frames thinned before it; a copy only when the numbers change.
    fn rewrite(&mut self, packet: &mut RtpPacket, n: vp8::Numbering, back: u16) {
        let Some(pid) = n.picture_id.map(|p| (p + PICTURE_ID_SPACE - back % PICTURE_ID_SPACE) % PICTURE_ID_SPACE) else { return };
        let tl0 = n.tl0.unwrap_or(0);
        if std::mem::take(&mut self.pending) {
            if let Some((last_pid, last_tl0)) = self.last {
                let next = (last_pid + 1) % PICTURE_ID_SPACE;
                self.picture_delta = (next + PICTURE_ID_SPACE - pid % PICTURE_ID_SPACE) % PICTURE_ID_SPACE;
                self.tl0_delta = last_tl0.wrapping_add(1).wrapping_sub(tl0);
            }
        }
        let out_pid = (pid + self.picture_delta) % PICTURE_ID_SPACE;
        let out_tl0 = tl0.wrapping_add(self.tl0_delta);
        let newer = self.last.is_none_or(|(last, _)| {
            let d = (out_pid + PICTURE_ID_SPACE - last) % PICTURE_ID_SPACE;
            d < PICTURE_ID_SPACE / 2
        });
        if newer {
            self.last = Some((out_pid, out_tl0));
        }
        if self.picture_delta != 0 || self.tl0_delta != 0 || back != 0 {
            let mut payload = bytes::BytesMut::from(&packet.payload[..]);
            n.write(&mut payload, out_pid, out_tl0);
            packet.payload = payload.freeze();
        }
    }
}

impl Rewriter {
    pub fn new(ssrc: Ssrc, payload_types: PayloadTypes, clock_rate: u32) -> Self {
        Self {
            ssrc,
            payload_types,
            clock_rate: clock_rate.max(1),
            source_ssrc: None,
            seq_delta: 0,
            ts_delta: 0,
            last_out: None,
            pictures: PictureNumbers::default(),
            temporal: temporal::ALL,
            thinning: Thinning::default(),
            plain: false,
        }
    }

    /// The highest temporal layer to send from now on ([`temporal::ALL`]: every frame).
    pub fn set_temporal(&mut self, layer: u8) {
        self.temporal = layer;
    }

    /// Whether redundant audio goes out as the plain Opus it carries from now on, to a
    /// receiver that accepted both (one that did not always gets plain Opus).
    pub fn set_plain(&mut self, plain: bool) {
        self.plain = plain;
    }

    pub(crate) fn ssrc(&self) -> Ssrc {
        self.ssrc
    }

    /// The receiver renegotiated: its payload types may have changed.
    pub(crate) fn set_payload_types(&mut self, payload_types: PayloadTypes) {
        self.payload_types = payload_types;
    }

    /// Rewrites a forwarded packet (its payload type is the bridge's internal one, see
    /// [`Codec::internal_pt`]) for this output; false if the receiver did not accept the
    /// packet's codec on this slot (the packet must not be sent). Redundant audio goes to a
    /// receiver that did not accept it, or one set [`Self::set_plain`], as the plain Opus it
    /// carries.
    pub fn rewrite(&mut self, packet: &mut RtpPacket, now: Instant) -> Written {
        let mut codec = Codec::of_internal_pt(packet.header.payload_type);
        // Padding alone (an empty payload) passes as it is, numbered as the receiver takes it.
        if codec == Some(Codec::Red) {
            match (self.payload_types.get(Codec::Red), self.payload_types.get(Codec::Opus)) {
                (Some(_), Some(opus)) if !self.plain => {
                    if red::renumber(&mut packet.payload, Codec::Opus.internal_pt(), opus).is_err() {
                        return Written::Refused;
                    }
                }
                (Some(_), None) => {}
                _ => {
                    let Ok(primary) = red::primary(&packet.payload) else { return Written::Refused };
                    packet.payload = packet.payload.slice(primary);
                    codec = Some(Codec::Opus);
                }
            }
        }
        let Some(pt) = codec.and_then(|c| self.payload_types.get(c)) else { return Written::Refused };
        if self.source_ssrc != Some(Ssrc::of(&packet.header)) {
            self.switch_source(&packet.header, now);
        }
        let numbering = if codec == Some(Codec::Vp8) { vp8::numbering(&packet.payload) } else { None };
        let (seq_back, picture_back) = match numbering.map(|n| self.thinning.admit(packet.header.sequence_number, &n, self.temporal)) {
            Some(Verdict::Drop) => return Written::Thinned,
            Some(Verdict::Send { seq_back, picture_back }) => (seq_back, picture_back),
            None => (self.thinning.pass(packet.header.sequence_number), 0),
        };
        self.write_header(&mut packet.header, pt, seq_back, now);
        if let Some(n) = numbering {
            self.pictures.rewrite(packet, n, picture_back);
        }
        Written::Sent
    }

    #[cfg(test)]
    fn rewrite_header(&mut self, h: &mut Header, pt: u8, now: Instant) {
        if self.source_ssrc != Some(Ssrc::of(h)) {
            self.switch_source(h, now);
        }
        self.write_header(h, pt, 0, now);
    }

    /// Writes the output's numbers into a header of the current source, `seq_back` packets
    /// earlier for the packets thinned before it.
    fn write_header(&mut self, h: &mut Header, pt: u8, seq_back: u16, now: Instant) {
        h.ssrc = self.ssrc.0;
        h.payload_type = pt;
        h.sequence_number = h.sequence_number.wrapping_add(self.seq_delta).wrapping_sub(seq_back);
        h.timestamp = h.timestamp.wrapping_add(self.ts_delta);
        h.extension = false;
        h.extension_profile = 0;
        h.extensions.clear();
        let newer = match self.last_out {
            None => true,
            Some((seq, _, _)) => {
                let d = h.sequence_number.wrapping_sub(seq);
                d != 0 && d < 0x8000
            }
        };
        if newer {
            self.last_out = Some((h.sequence_number, h.timestamp, now));
        }
    }

    fn switch_source(&mut self, h: &Header, now: Instant) {
        self.source_ssrc = Some(Ssrc::of(h));
        self.pictures.pending = true;
        self.thinning = Thinning::default();
        match self.last_out {
            // First source: pass numbers through unchanged.
            None => {
                self.seq_delta = 0;
                self.ts_delta = 0;
            }
            // Continue right after the last packet written, with the wall-clock gap in timestamps.
            Some((seq, ts, at)) => {
                let gap = now.saturating_duration_since(at).as_secs_f64() * self.clock_rate as f64;
                let ticks = (gap as u64).clamp(1, u32::MAX as u64 / 2) as u32;
                self.seq_delta = seq.wrapping_add(1).wrapping_sub(h.sequence_number);
                self.ts_delta = ts.wrapping_add(ticks).wrapping_sub(h.timestamp);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn header(ssrc: u32, seq: u16, ts: u32) -> Header {
        Header { version: 2, ssrc, sequence_number: seq, timestamp: ts, payload_type: Codec::Vp8.internal_pt(), extension: true, ..Default::default() }
    }

    fn vp8_only(pt: u8) -> PayloadTypes {
        PayloadTypes::single(Codec::Vp8, pt)
    }

    /// A VP8 packet with a 15-bit PictureID and a TL0PICIDX.
    fn vp8_packet(ssrc: u32, seq: u16, picture_id: u16, tl0: u8) -> RtpPacket {
        let [hi, lo] = picture_id.to_be_bytes();
        let payload = bytes::Bytes::from(vec![0x90, 0xC0, 0x80 | hi, lo, tl0, 0xAA]);
        RtpPacket { header: header(ssrc, seq, seq as u32 * 3000), payload }
    }

    fn numbers(p: &RtpPacket) -> (u16, u8) {
        let n = vp8::numbering(&p.payload).unwrap();
        (n.picture_id.unwrap(), n.tl0.unwrap())
    }

    #[test]
    fn first_source_keeps_its_numbers_but_gets_the_output_ssrc_and_payload_type() {
        let t0 = Instant::now();
        let mut rw = Rewriter::new(Ssrc(0xAAAA), vp8_only(120), 90_000);
        let mut p = vp8_packet(0x1234, 100, 7, 3);
        assert!(rw.rewrite(&mut p, t0).sent());
        let h = &p.header;
        assert_eq!((h.ssrc, h.payload_type, h.sequence_number, h.timestamp), (0xAAAA, 120, 100, 300_000));
        assert!(!h.extension && h.extensions.is_empty());
        assert_eq!(numbers(&p), (7, 3), "the first source's pictures keep their numbers");
    }

    #[test]
    fn redundant_audio_reaches_each_receiver_in_the_form_it_accepted() {
        let t0 = Instant::now();
        let forwarded = || {
            let mut p = RtpPacket::default();
            (p.header.ssrc, p.header.sequence_number, p.header.timestamp, p.header.payload_type) = (1, 40, 9600, Codec::Red.internal_pt());
            p.payload = bytes::Bytes::from(red::encode(&[(111, 960, b"old")], 111, b"now"));
            p
        };
        // Firefox accepted Opus alone (at 109): it gets the primary as plain Opus.
        let mut firefox = Rewriter::new(Ssrc(7), PayloadTypes::single(Codec::Opus, 109), 48_000);
        let mut p = forwarded();
        assert!(firefox.rewrite(&mut p, t0).sent());
        assert_eq!((p.header.payload_type, p.header.sequence_number, p.header.timestamp, &p.payload[..]), (109, 40, 9600, &b"now"[..]));
        // A receiver that accepted both, numbering Opus 109 and RED 121: the packet as sent,
        // its blocks renumbered.
        let mut both = PayloadTypes::single(Codec::Opus, 109);
        both.set(Codec::Red, 121);
        let mut chromium = Rewriter::new(Ssrc(8), both, 48_000);
        let mut p = forwarded();
        assert!(chromium.rewrite(&mut p, t0).sent());
        assert_eq!(p.header.payload_type, 121);
        assert_eq!(&p.payload[..], &red::encode(&[(109, 960, b"old")], 109, b"now")[..]);
        // A malformed one is sent to no one.
        let mut bad = forwarded();
        bad.payload = bytes::Bytes::from_static(&[0x80 | 111, 0, 0]);
        assert!(!firefox.rewrite(&mut bad.clone(), t0).sent() && !chromium.rewrite(&mut bad, t0).sent());
        // Padding alone passes to both, as padding in the form each accepted.
        for (receiver, pt) in [(&mut firefox, 109), (&mut chromium, 121)] {
            let mut padding = forwarded();
            padding.payload = bytes::Bytes::new();
            assert!(receiver.rewrite(&mut padding, t0).sent());
            assert_eq!((padding.header.payload_type, padding.payload.len()), (pt, 0));
        }
    }

    #[test]
    fn a_receiver_set_plain_gets_the_primary_and_its_sequence_runs_on() {
        let t0 = Instant::now();
        let forwarded = |seq: u16| {
            let mut p = RtpPacket::default();
            (p.header.ssrc, p.header.sequence_number, p.header.timestamp, p.header.payload_type) = (1, seq, 960 * seq as u32, Codec::Red.internal_pt());
            p.payload = bytes::Bytes::from(red::encode(&[(111, 960, b"old")], 111, b"now"));
            p
        };
        let mut both = PayloadTypes::single(Codec::Opus, 109);
        both.set(Codec::Red, 121);
        let mut rw = Rewriter::new(Ssrc(8), both, 48_000);
        let sent = |rw: &mut Rewriter, seq| {
            let mut p = forwarded(seq);
            assert!(rw.rewrite(&mut p, t0).sent());
            (p.header.payload_type, p.header.sequence_number, p.payload.len())
        };
        let red_len = red::encode(&[(109, 960, b"old")], 109, b"now").len();
        assert_eq!(sent(&mut rw, 40), (121, 40, red_len));
        // The line grew tight: the same stream, plain, one packet after the other.
        rw.set_plain(true);
        assert_eq!(sent(&mut rw, 41), (109, 41, 3));
        assert_eq!(sent(&mut rw, 42), (109, 42, 3));
        // And back to redundancy when the line has room again.
        rw.set_plain(false);
        assert_eq!(sent(&mut rw, 43), (121, 43, red_len));
    }

    #[test]
    fn a_new_publisher_continues_the_sequence_after_the_old_one() {
        let t0 = Instant::now();
        let mut rw = Rewriter::new(Ssrc(7), PayloadTypes::single(Codec::Opus, 111), 48_000);
        let mut rewrite = |h: &mut Header, at| rw.rewrite_header(h, 111, at);
        for i in 0..10u16 {
            let mut h = header(1, 65530u16.wrapping_add(i), 1000 + 960 * i as u32);
            rewrite(&mut h, t0);
        }
        // last out: seq 65530+9 = 3 (wrapped), ts 1000 + 8640
        let mut h = header(2, 40_000, 77);
        rewrite(&mut h, t0 + Duration::from_millis(500));
        assert_eq!(h.sequence_number, 4);
        assert_eq!(h.timestamp, 1000 + 8640 + 24_000, "500 ms of 48 kHz clock after the last packet");
        let mut next = header(2, 40_001, 77 + 960);
        rewrite(&mut next, t0 + Duration::from_millis(520));
        assert_eq!(next.sequence_number, 5);
        assert_eq!(next.timestamp, 1000 + 8640 + 24_000 + 960);
        assert_eq!(next.ssrc, 7);
    }

    #[test]
    fn a_late_reordered_packet_does_not_move_the_continuation_point() {
        let t0 = Instant::now();
        let mut rw = Rewriter::new(Ssrc(7), vp8_only(96), 90_000);
        for seq in [10u16, 12, 11] {
            let mut h = header(1, seq, seq as u32 * 3000);
            rw.rewrite_header(&mut h, 96, t0);
        }
        let mut h = header(2, 500, 0);
        rw.rewrite_header(&mut h, 96, t0);
        assert_eq!(h.sequence_number, 13, "continues after 12, the highest written");
    }

    #[test]
    fn payload_type_follows_renegotiation_and_the_packets_codec() {
        let mut rw = Rewriter::new(Ssrc(7), vp8_only(96), 90_000);
        let mut both = vp8_only(98);
        both.set(Codec::H264, 127);
        rw.set_payload_types(both);
        let mut p = vp8_packet(1, 1, 1, 1);
        assert!(rw.rewrite(&mut p, Instant::now()).sent());
        assert_eq!(p.header.payload_type, 98);
        let mut h264 =
            RtpPacket { header: Header { payload_type: Codec::H264.internal_pt(), ..header(1, 2, 2) }, payload: bytes::Bytes::from_static(&[0x41, 0x9a]) };
        assert!(rw.rewrite(&mut h264, Instant::now()).sent());
        assert_eq!(h264.header.payload_type, 127);
    }

    #[test]
    fn a_codec_the_receiver_did_not_accept_is_not_sent() {
        let mut rw = Rewriter::new(Ssrc(7), vp8_only(96), 90_000);
        let mut h264 =
            RtpPacket { header: Header { payload_type: Codec::H264.internal_pt(), ..header(1, 2, 2) }, payload: bytes::Bytes::from_static(&[0x41, 0x9a]) };
        assert!(!rw.rewrite(&mut h264, Instant::now()).sent());
    }

    #[test]
    fn a_receiver_sent_the_base_layer_alone_sees_one_stream_without_holes_across_a_switch() {
        let t0 = Instant::now();
        let mut rw = Rewriter::new(Ssrc(7), vp8_only(96), 90_000);
        rw.set_temporal(0);
        // Chromium's pattern of temporal layers 0, 2, 1, 2: one packet per frame.
        let frame = |ssrc: u32, seq: u16, pid: u16| {
            let [hi, lo] = pid.to_be_bytes();
            let tid = [0x00, 0x80, 0x40, 0x80][pid as usize % 4];
            RtpPacket { header: header(ssrc, seq, seq as u32 * 3000), payload: bytes::Bytes::from(vec![0x90, 0xE0, 0x80 | hi, lo, (pid / 4) as u8, tid, 0xAA]) }
        };
        let mut out = Vec::new();
        for i in 0..8u16 {
            let mut p = frame(1, 100 + i, 500 + i);
            match rw.rewrite(&mut p, t0) {
                Written::Sent => out.push((p.header.sequence_number, numbers(&p).0)),
                w => assert_eq!(w, Written::Thinned),
            }
        }
        assert_eq!(out, vec![(100, 500), (101, 501)], "frames 500 and 504, numbered on");
        // Another source (a switch on its keyframe): it continues after the last written.
        for i in 0..4u16 {
            let mut p = frame(2, 9000 + i, 20 + i);
            if rw.rewrite(&mut p, t0).sent() {
                out.push((p.header.sequence_number, numbers(&p).0));
            }
        }
        assert_eq!(out[2..], [(102, 502)]);
    }

    #[test]
    fn vp8_pictures_continue_across_a_switch_so_the_decoder_takes_the_new_keyframe() {
        let t0 = Instant::now();
        let mut rw = Rewriter::new(Ssrc(7), vp8_only(96), 90_000);
        // The first source's pictures 30 000..=30 002 (TL0PICIDX 40..=42), two packets each.
        for (i, pid) in [30_000u16, 30_000, 30_001, 30_001, 30_002, 30_002].into_iter().enumerate() {
            let mut p = vp8_packet(1, 100 + i as u16, pid, 40 + (pid - 30_000) as u8);
            assert!(rw.rewrite(&mut p, t0).sent());
            assert_eq!(numbers(&p), (pid, 40 + (pid - 30_000) as u8), "unchanged before any switch");
        }
        // Another site (or layer) whose numbering is far behind: it continues at 30 003 / 43.
        let mut next = vp8_packet(2, 9, 12, 250);
        assert!(rw.rewrite(&mut next, t0).sent());
        assert_eq!(numbers(&next), (30_003, 43));
        let mut same_picture = vp8_packet(2, 10, 12, 250);
        assert!(rw.rewrite(&mut same_picture, t0).sent());
        assert_eq!(numbers(&same_picture), (30_003, 43));
        let mut after = vp8_packet(2, 11, 13, 251);
        assert!(rw.rewrite(&mut after, t0).sent());
        assert_eq!(numbers(&after), (30_004, 44));
        // Wraps in 15 bits: a source at 0x7fff continues from there.
        let mut rw = Rewriter::new(Ssrc(7), vp8_only(96), 90_000);
        let mut p = vp8_packet(1, 1, 0x7fff, 0);
        assert!(rw.rewrite(&mut p, t0).sent());
        let mut q = vp8_packet(2, 1, 500, 0);
        assert!(rw.rewrite(&mut q, t0).sent());
        assert_eq!(numbers(&q).0, 0, "after 0x7fff comes 0");
    }
}
