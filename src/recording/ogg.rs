//! Ogg files carrying Opus (RFC 7845): the two header pages, then one Opus packet per page.
//!
//! Granule positions come from RTP timestamps (48 kHz, the Opus clock), so a pause in the
//! stream is a jump in granule position and the file keeps its timing. The last packet is
//! held back until the next arrives or the file is finished, so it can carry the
//! end-of-stream flag.

use std::io::Write;

/// The Opus RTP clock and the granule rate of Ogg Opus.
pub(crate) const OPUS_CLOCK: u32 = 48_000;

pub(crate) struct OggOpusWriter<W: Write> {
    out: W,
    serial: u32,
    page: u32,
    /// A packet written on the next call or at finish: (payload, granule at its end).
    held: Option<(Vec<u8>, u64)>,
    packets: u64,
}

impl<W: Write> OggOpusWriter<W> {
    /// Writes the identification and comment headers.
    pub(crate) fn new(out: W, serial: u32, channels: u8) -> std::io::Result<Self> {
        let mut w = OggOpusWriter { out, serial, page: 0, held: None, packets: 0 };
        let mut head = Vec::with_capacity(19);
        head.extend_from_slice(b"OpusHead");
        head.push(1); // version
        head.push(channels.max(1));
        head.extend_from_slice(&0u16.to_le_bytes()); // pre-skip: unknown from RTP, none assumed
        head.extend_from_slice(&OPUS_CLOCK.to_le_bytes()); // input sample rate (informational)
        head.extend_from_slice(&0i16.to_le_bytes()); // output gain
        head.push(0); // channel mapping family 0 (mono/stereo)
        w.write_page(&head, 0, 0x02)?;
        let vendor = concat!("diemcau ", env!("CARGO_PKG_VERSION"));
        let mut tags = Vec::new();
        tags.extend_from_slice(b"OpusTags");
        tags.extend_from_slice(&(vendor.len() as u32).to_le_bytes());
        tags.extend_from_slice(vendor.as_bytes());
        tags.extend_from_slice(&0u32.to_le_bytes()); // no user comments
        w.write_page(&tags, 0, 0)?;
        Ok(w)
    }

    /// Appends one Opus packet that starts `start` samples (48 kHz) after the file's start.
    pub(crate) fn write_packet(&mut self, packet: &[u8], start: u64) -> std::io::Result<()> {
        let end = start + packet_samples(packet) as u64;
        if let Some((payload, granule)) = self.held.take() {
            self.write_page(&payload, granule, 0)?;
        }
        self.held = Some((packet.to_vec(), end));
        self.packets += 1;
        Ok(())
    }

    /// Hands everything written so far to the file (the held packet stays held): after a
    /// crash the file ends at the last page written.
    pub(crate) fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }

    /// Writes the held packet with the end-of-stream flag and flushes.
    pub(crate) fn finish(mut self) -> std::io::Result<W> {
        match self.held.take() {
            Some((payload, granule)) => self.write_page(&payload, granule, 0x04)?,
            None => self.write_page(&[], 0, 0x04)?,
        }
        self.out.flush()?;
        Ok(self.out)
    }

    fn write_page(&mut self, packet: &[u8], granule: u64, header_type: u8) -> std::io::Result<()> {
        // Lacing: 255-byte segments, then the remainder (a 0 when the size is a multiple).
        let segments = packet.len() / 255 + 1;
        let mut page = Vec::with_capacity(27 + segments + packet.len());
        page.extend_from_slice(b"OggS");
        page.push(0); // version
        page.push(header_type);
        page.extend_from_slice(&granule.to_le_bytes());
        page.extend_from_slice(&self.serial.to_le_bytes());
        page.extend_from_slice(&self.page.to_le_bytes());
        page.extend_from_slice(&[0; 4]); // CRC, filled below
        page.push(segments as u8);
        page.extend(std::iter::repeat_n(255u8, segments - 1));
        page.push((packet.len() % 255) as u8);
        page.extend_from_slice(packet);
        let crc = crc32(&page);
        page[22..26].copy_from_slice(&crc.to_le_bytes());
        self.page += 1;
        self.out.write_all(&page)
    }
}

/// Samples (48 kHz) in one Opus packet, from its TOC byte (RFC 6716 §3.1); 960 (20 ms) when
/// the packet is too short to tell.
pub(crate) fn packet_samples(packet: &[u8]) -> u32 {
    let Some(&toc) = packet.first() else { return 960 };
    let config = toc >> 3;
    // Frame duration in units of 1/400 s (2.5 ms = 120 samples).
    let frame_120ths: u32 = match config {
        0..=11 => [4, 8, 16, 24][(config % 4) as usize],
        12..=15 => [4, 8][(config % 2) as usize],
        _ => [1, 2, 4, 8][(config % 4) as usize],
    };
    let frames = match toc & 0x03 {
        0 => 1,
        1 | 2 => 2,
        _ => packet.get(1).map(|b| (b & 0x3f) as u32).unwrap_or(1),
    };
    frame_120ths * 120 * frames
}

/// The Ogg CRC: polynomial 0x04c11db7, no reflection, initial value 0.
fn crc32(data: &[u8]) -> u32 {
    static TABLE: std::sync::OnceLock<[u32; 256]> = std::sync::OnceLock::new();
    let table = TABLE.get_or_init(|| {
        let mut t = [0u32; 256];
        for (i, e) in t.iter_mut().enumerate() {
            let mut r = (i as u32) << 24;
            for _ in 0..8 {
                r = if r & 0x8000_0000 != 0 { (r << 1) ^ 0x04c1_1db7 } else { r << 1 };
            }
            *e = r;
        }
        t
    });
    data.iter().fold(0u32, |crc, &b| (crc << 8) ^ table[((crc >> 24) as u8 ^ b) as usize])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opus_packet_durations_follow_the_toc_byte() {
        assert_eq!(packet_samples(&[0xF8, 0xFF]), 960, "CELT 20 ms, one frame");
        assert_eq!(packet_samples(&[0x78]), 960, "hybrid 20 ms (config 15)");
        assert_eq!(packet_samples(&[0x08 | 0x01]), 2 * 960, "SILK 20 ms (config 1), two frames");
        assert_eq!(packet_samples(&[0x18 | 0x03, 0x03]), 3 * 2880, "SILK 60 ms (config 3), three frames");
        assert_eq!(packet_samples(&[0x80]), 120, "CELT 2.5 ms");
        assert_eq!(packet_samples(&[]), 960);
    }

    #[test]
    fn crc_matches_the_ogg_reference_value() {
        // Ogg's CRC is CRC-32/POSIX (check value 0x765E7680) without the final inversion.
        assert_eq!(crc32(b"123456789"), 0x89A1_897F);
    }

    #[test]
    fn pages_carry_granules_and_the_last_one_ends_the_stream() {
        let mut w = OggOpusWriter::new(Vec::new(), 7, 1).unwrap();
        w.write_packet(&[0xF8, 1, 2], 0).unwrap();
        w.write_packet(&[0xF8, 3], 960 * 5).unwrap(); // after a 80 ms pause
        let bytes = w.finish().unwrap();
        let pages: Vec<usize> = bytes.windows(4).enumerate().filter(|(_, w)| w == b"OggS").map(|(i, _)| i).collect();
        assert_eq!(pages.len(), 4, "head, tags, two audio pages");
        let granule = |p: usize| u64::from_le_bytes(bytes[p + 6..p + 14].try_into().unwrap());
        assert_eq!(granule(pages[2]), 960);
        assert_eq!(granule(pages[3]), 960 * 6);
        assert_eq!(bytes[pages[0] + 5], 0x02, "first page begins the stream");
        assert_eq!(bytes[pages[3] + 5], 0x04, "last page ends it");
        assert_eq!(&bytes[pages[0] + 28..pages[0] + 36], b"OpusHead");
        // Each page's CRC verifies.
        for (i, &p) in pages.iter().enumerate() {
            let end = pages.get(i + 1).copied().unwrap_or(bytes.len());
            let mut page = bytes[p..end].to_vec();
            let stored = u32::from_le_bytes(page[22..26].try_into().unwrap());
            page[22..26].fill(0);
            assert_eq!(crc32(&page), stored);
        }
    }
}
