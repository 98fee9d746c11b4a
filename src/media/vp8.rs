//! Reading VP8 RTP payloads (RFC 7741): the payload descriptor and the key frame header
//! (RFC 6386 §9.1). Pure functions over bytes, shared by the statistics (resolution) and the
//! recorder (frame assembly); nothing here allocates.

/// What the payload descriptor of one VP8 RTP packet says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Descriptor {
    /// Bytes of descriptor before the VP8 data.
    pub len: usize,
    /// S bit: this packet starts a VP8 partition.
    pub(crate) start: bool,
    /// Partition index (PID).
    pub(crate) partition: u8,
}

impl Descriptor {
    /// The first packet of a frame: start of partition 0.
    pub fn starts_frame(&self) -> bool {
        self.start && self.partition == 0
    }
}

/// Parses the payload descriptor; `None` if the payload is too short for what it announces.
pub fn descriptor(payload: &[u8]) -> Option<Descriptor> {
    let first = *payload.first()?;
    let (x, start, partition) = (first & 0x80 != 0, first & 0x10 != 0, first & 0x07);
    let mut len = 1;
    if x {
        let ext = *payload.get(len)?;
        len += 1;
        if ext & 0x80 != 0 {
            // PictureID: 15 bits when M is set, else 7.
            len += if *payload.get(len)? & 0x80 != 0 { 2 } else { 1 };
        }
        if ext & 0x40 != 0 {
            len += 1; // TL0PICIDX
        }
        if ext & 0x30 != 0 {
            len += 1; // TID / KEYIDX
        }
    }
    (payload.len() > len).then_some(Descriptor { len, start, partition })
}

/// True if `frame` (VP8 data, after the descriptor) begins a key frame.
pub fn is_keyframe(frame: &[u8]) -> bool {
    frame.first().is_some_and(|b| b & 0x01 == 0)
}

/// The picture numbering a payload descriptor carries (RFC 7741 §4.2): PictureID (7 or 15
/// bits) and TL0PICIDX, each if present.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Numbering {
    pub picture_id: Option<u16>,
    /// The PictureID has 15 bits (M set), not 7.
    pub wide: bool,
    pub tl0: Option<u8>,
    /// The temporal layer of the frame (TID), if the sender numbers them.
    pub temporal: Option<Temporal>,
    /// The packet starts a frame (S set, partition 0).
    pub starts_frame: bool,
    /// Offsets of the two fields in the payload.
    picture_id_at: usize,
    tl0_at: usize,
}

/// A frame's place among temporal layers (RFC 7741 §4.2): layer 0 is the base a decoder
/// needs; a sender using three layers (Chromium's simulcast) codes every other frame on layer 2
/// and every fourth on layer 1, each referring only to lower layers, so a receiver may be
/// sent layer 0 alone (a quarter of the frames) or layers 0 and 1 (half).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Temporal {
    /// TID: 0, 1 or 2.
    pub layer: u8,
    /// Y: this frame refers only to layer 0, so a receiver may start taking its layer here.
    pub sync: bool,
}

/// Reads the picture numbering of a payload; `None` if the descriptor is cut short.
pub fn numbering(payload: &[u8]) -> Option<Numbering> {
    let d = descriptor(payload)?;
    let mut n = Numbering { starts_frame: d.starts_frame(), ..Numbering::default() };
    if payload[0] & 0x80 == 0 {
        return Some(n);
    }
    let ext = payload[1];
    let mut at = 2;
    if ext & 0x80 != 0 {
        n.picture_id_at = at;
        n.wide = payload[at] & 0x80 != 0;
        n.picture_id = Some(if n.wide { u16::from_be_bytes([payload[at] & 0x7f, payload[at + 1]]) } else { payload[at] as u16 });
        at += if n.wide { 2 } else { 1 };
    }
    if ext & 0x40 != 0 {
        n.tl0_at = at;
        n.tl0 = Some(payload[at]);
        at += 1;
    }
    if ext & 0x20 != 0 {
        let t = payload[at];
        n.temporal = Some(Temporal { layer: t >> 6, sync: t & 0x20 != 0 });
    }
    Some(n)
}

impl Numbering {
    /// Writes `picture_id` and `tl0` into the fields `payload` already has (a 7-bit PictureID
    /// keeps its low 7 bits); fields it lacks stay absent.
    pub fn write(&self, payload: &mut [u8], picture_id: u16, tl0: u8) {
        if self.picture_id.is_some() {
            let at = self.picture_id_at;
            if self.wide {
                let [hi, lo] = (picture_id & 0x7fff).to_be_bytes();
                payload[at] = 0x80 | hi;
                payload[at + 1] = lo;
            } else {
                payload[at] = (picture_id & 0x7f) as u8;
            }
        }
        if self.tl0.is_some() {
            payload[self.tl0_at] = tl0;
        }
    }
}

/// Width and height from a VP8 keyframe's first packet; `None` for any other packet.
pub fn keyframe_size(payload: &[u8]) -> Option<(u16, u16)> {
    let d = descriptor(payload)?;
    if !d.starts_frame() {
        return None;
    }
    frame_size(&payload[d.len..])
}

/// Width and height from the start of a key frame's data; `None` if it is not one.
pub fn frame_size(frame: &[u8]) -> Option<(u16, u16)> {
    let frame = frame.get(..10)?;
    if !is_keyframe(frame) || frame[3..6] != [0x9d, 0x01, 0x2a] {
        return None;
    }
    let w = u16::from_le_bytes([frame[6], frame[7]]) & 0x3fff;
    let h = u16::from_le_bytes([frame[8], frame[9]]) & 0x3fff;
    Some((w, h))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyframe_size_is_read_from_the_first_packet() {
        // Descriptor with X and a 15-bit PictureID, then a 640x360 key frame header.
        let mut p = vec![0x90, 0x80, 0x81, 0x23];
        p.extend_from_slice(&[0x50, 0x2a, 0x00, 0x9d, 0x01, 0x2a, 0x80, 0x02, 0x68, 0x01]);
        assert_eq!(keyframe_size(&p), Some((640, 360)));
        // Same without the extension byte.
        let q = [0x10, 0x50, 0x2a, 0x00, 0x9d, 0x01, 0x2a, 0x40, 0x01, 0xf0, 0x00];
        assert_eq!(keyframe_size(&q), Some((320, 240)));
        // An inter frame, a continuation packet, garbage.
        assert_eq!(keyframe_size(&[0x10, 0x51, 0x2a, 0x00, 0x9d, 0x01, 0x2a, 0x40, 0x01, 0xf0, 0x00]), None);
        assert_eq!(keyframe_size(&[0x00, 0x50]), None);
        assert_eq!(keyframe_size(&[]), None);
    }

    #[test]
    fn picture_numbering_is_read_and_rewritten_in_place_at_its_width() {
        // X; I and L; 15-bit PictureID 0x1234; TL0PICIDX 7; then VP8 data.
        let mut p = vec![0x90, 0xC0, 0x92, 0x34, 0x07, 0xAA];
        let n = numbering(&p).unwrap();
        assert_eq!((n.picture_id, n.wide, n.tl0), (Some(0x1234), true, Some(7)));
        n.write(&mut p, 0x7fff, 200);
        assert_eq!(p, vec![0x90, 0xC0, 0xFF, 0xFF, 200, 0xAA]);
        // A 7-bit PictureID keeps its width.
        let mut q = vec![0x90, 0x80, 0x05, 0xAA];
        let n = numbering(&q).unwrap();
        assert_eq!((n.picture_id, n.wide, n.tl0), (Some(5), false, None));
        n.write(&mut q, 0x0181, 9);
        assert_eq!(q, vec![0x90, 0x80, 0x01, 0xAA]);
        // No extension: nothing to number.
        assert_eq!(numbering(&[0x10, 0xAA]), Some(Numbering { starts_frame: true, ..Numbering::default() }));
        assert_eq!(numbering(&[0x90, 0x80]), None);
    }

    #[test]
    fn the_temporal_layer_and_its_sync_flag_are_read_as_chromium_writes_them() {
        // As captured from Chromium's simulcast: X; I, L, T; 15-bit PictureID; TL0PICIDX; TID/Y.
        let layer = |b: u8| numbering(&[0x90, 0xE0, 0xB9, 0x3A, 0x68, b, 0xAA]).unwrap().temporal.unwrap();
        assert_eq!(layer(0x00), Temporal { layer: 0, sync: false });
        assert_eq!(layer(0x60), Temporal { layer: 1, sync: true });
        assert_eq!(layer(0x80), Temporal { layer: 2, sync: false });
        assert_eq!(layer(0xA0), Temporal { layer: 2, sync: true });
        // Without T, no temporal layer; a continuation packet does not start a frame.
        let n = numbering(&[0xA0, 0xC0, 0xB9, 0x3A, 0x68, 0xAA]).unwrap();
        assert_eq!((n.temporal, n.starts_frame), (None, false));
        // T announced but the byte missing: cut short.
        assert_eq!(numbering(&[0x90, 0xE0, 0xB9, 0x3A, 0x68]), None);
    }

    #[test]
    fn descriptor_length_follows_the_extension_bits() {
        assert_eq!(descriptor(&[0x10, 0xAA]), Some(Descriptor { len: 1, start: true, partition: 0 }));
        // X, I with 7-bit PictureID, L, T: 1 + 1 + 1 + 1 + 1.
        assert_eq!(descriptor(&[0x80, 0xF0, 0x05, 0x07, 0x20, 0xAA]).map(|d| d.len), Some(5));
        // A continuation packet of partition 1.
        let d = descriptor(&[0x01, 0xAA]).unwrap();
        assert!(!d.start && d.partition == 1 && !d.starts_frame());
        // Announces a PictureID but ends: too short.
        assert_eq!(descriptor(&[0x80, 0x80]), None);
        assert_eq!(descriptor(&[0x10]), None, "no VP8 data after the descriptor");
    }
}
