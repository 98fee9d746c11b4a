//! IVF files for VP8 (and H.264, fourcc `H264`, which FFmpeg reads the same way): a 32-byte
//! header, then each frame with its size and timestamp.
//!
//! The time base is the RTP clock (1/90 000 s) and each frame's timestamp is its RTP
//! timestamp relative to the file's first frame, so pauses and frame-rate changes stay in
//! the file (libvpx's own IVF writer counts frames instead, which loses timing). The header's
//! length field holds the duration in time-base units, as FFmpeg writes and reads it (with
//! libvpx's one-frame-per-tick time base that is also the frame count).

use std::io::{Seek, SeekFrom, Write};

/// RTP clock of video, and the file's time base denominator.
pub(crate) const VIDEO_CLOCK: u32 = 90_000;

pub(crate) struct IvfWriter<W: Write + Seek> {
    out: W,
    frames: u32,
    last_pts: u64,
    size: Option<(u16, u16)>,
}

impl<W: Write + Seek> IvfWriter<W> {
    /// Writes the header; width and height are filled in by [`IvfWriter::finish`] once known.
    pub(crate) fn new(out: W) -> std::io::Result<Self> {
        Self::with_fourcc(out, b"VP80")
    }

    /// As [`IvfWriter::new`] for another codec's fourcc (`H264`).
    pub(crate) fn with_fourcc(mut out: W, fourcc: &[u8; 4]) -> std::io::Result<Self> {
        let mut h = [0u8; 32];
        h[0..4].copy_from_slice(b"DKIF");
        h[4..6].copy_from_slice(&0u16.to_le_bytes()); // version
        h[6..8].copy_from_slice(&32u16.to_le_bytes()); // header size
        h[8..12].copy_from_slice(fourcc);
        // 12..16: width, height (patched later)
        h[16..20].copy_from_slice(&VIDEO_CLOCK.to_le_bytes()); // time base denominator
        h[20..24].copy_from_slice(&1u32.to_le_bytes()); // time base numerator
                                                        // 24..28: length in time-base units (patched later)
        out.write_all(&h)?;
        Ok(IvfWriter { out, frames: 0, last_pts: 0, size: None })
    }

    /// Notes the picture size (from a key frame); the first one seen goes in the header.
    pub(crate) fn set_size(&mut self, size: (u16, u16)) {
        self.size.get_or_insert(size);
    }

    /// Appends one frame at `pts` (RTP ticks since the first frame).
    pub(crate) fn write_frame(&mut self, frame: &[u8], pts: u64) -> std::io::Result<()> {
        let mut h = [0u8; 12];
        h[0..4].copy_from_slice(&(frame.len() as u32).to_le_bytes());
        h[4..12].copy_from_slice(&pts.to_le_bytes());
        self.out.write_all(&h)?;
        self.out.write_all(frame)?;
        self.frames += 1;
        self.last_pts = self.last_pts.max(pts);
        Ok(())
    }

    pub(crate) fn frames(&self) -> u32 {
        self.frames
    }

    pub(crate) fn size(&self) -> Option<(u16, u16)> {
        self.size
    }

    /// The file's length in ticks: the last frame's timestamp plus one average frame time.
    pub(crate) fn duration(&self) -> u64 {
        match self.frames {
            0 => 0,
            1 => self.last_pts,
            n => self.last_pts + self.last_pts / (n as u64 - 1),
        }
    }

    /// Patches the size and length so far into the header and hands everything to the
    /// file: after a crash the file is a complete IVF file up to this point.
    pub(crate) fn checkpoint(&mut self) -> std::io::Result<()> {
        let (w, h) = self.size.unwrap_or((0, 0));
        self.out.seek(SeekFrom::Start(12))?;
        self.out.write_all(&w.to_le_bytes())?;
        self.out.write_all(&h.to_le_bytes())?;
        self.out.seek(SeekFrom::Start(24))?;
        self.out.write_all(&(self.duration().min(u32::MAX as u64) as u32).to_le_bytes())?;
        self.out.seek(SeekFrom::End(0))?;
        self.out.flush()
    }

    /// Patches the size and length into the header and flushes.
    pub(crate) fn finish(mut self) -> std::io::Result<W> {
        self.checkpoint()?;
        Ok(self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    #[test]
    fn header_and_frames_carry_size_length_and_rtp_timestamps() {
        let mut w = IvfWriter::new(Cursor::new(Vec::new())).unwrap();
        w.set_size((320, 240));
        w.set_size((640, 480)); // later sizes do not rewrite the header
        w.write_frame(&[1, 2, 3], 0).unwrap();
        w.write_frame(&[4], 6000).unwrap();
        let bytes = w.finish().unwrap().into_inner();
        assert_eq!(&bytes[0..4], b"DKIF");
        assert_eq!(&bytes[8..12], b"VP80");
        assert_eq!(u16::from_le_bytes([bytes[12], bytes[13]]), 320);
        assert_eq!(u16::from_le_bytes([bytes[14], bytes[15]]), 240);
        assert_eq!(u32::from_le_bytes(bytes[16..20].try_into().unwrap()), 90_000);
        assert_eq!(u32::from_le_bytes(bytes[24..28].try_into().unwrap()), 12_000, "two frames 6000 ticks apart last 12000");
        // second frame: after header (32) + first frame (12 + 3)
        let f2 = &bytes[47..];
        assert_eq!(u32::from_le_bytes(f2[0..4].try_into().unwrap()), 1);
        assert_eq!(u64::from_le_bytes(f2[4..12].try_into().unwrap()), 6000);
        assert_eq!(f2[12], 4);
        assert_eq!(bytes.len(), 32 + 15 + 13);
    }

    #[test]
    fn a_checkpoint_leaves_a_complete_file_and_writing_goes_on_after_it() {
        let mut w = IvfWriter::new(Cursor::new(Vec::new())).unwrap();
        w.set_size((320, 240));
        w.write_frame(&[1, 2, 3], 0).unwrap();
        w.write_frame(&[4], 3000).unwrap();
        w.checkpoint().unwrap();
        let at_checkpoint = w.out.get_ref().clone();
        assert_eq!(u16::from_le_bytes([at_checkpoint[12], at_checkpoint[13]]), 320, "size in the header already");
        assert_eq!(u32::from_le_bytes(at_checkpoint[24..28].try_into().unwrap()), 6000, "length so far");
        assert_eq!(at_checkpoint.len(), 32 + 15 + 13, "both frames are in");
        w.write_frame(&[5, 6], 6000).unwrap();
        let bytes = w.finish().unwrap().into_inner();
        assert_eq!(bytes.len(), 32 + 15 + 13 + 14, "the next frame follows the checkpoint's");
        assert_eq!(&bytes[..60][..12], &at_checkpoint[..12]);
    }
}
