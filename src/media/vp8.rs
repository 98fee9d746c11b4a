//! Reading VP8 RTP payloads (RFC 7741): the payload descriptor and the key frame header
//! (RFC 6386 §9.1). Pure functions over bytes, shared by the statistics (resolution) and the
//! recorder (frame assembly); nothing here allocates.

/// What the payload descriptor of one VP8 RTP packet says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Descriptor {
    /// Bytes of descriptor before the VP8 data.
    pub len: usize,
    /// S bit: this packet starts a VP8 partition.
    pub start: bool,
    /// Partition index (PID).
    pub partition: u8,
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
