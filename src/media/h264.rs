//! Reading H.264 RTP payloads (RFC 6184, packetization mode 1: single NAL units, STAP-A and
//! FU-A): where a key frame starts, and the NAL units of a packet in Annex B form for the
//! recorder. Pure functions over bytes.

const STAP_A: u8 = 24;
const FU_A: u8 = 28;
const IDR: u8 = 5;
const SPS: u8 = 7;

fn nal_type(byte: u8) -> u8 {
    byte & 0x1f
}

/// True if the packet begins a key frame: it carries a sequence parameter set (browsers send
/// SPS and PPS in a STAP-A before each IDR picture) or the first fragment of an IDR slice.
pub fn starts_keyframe(payload: &[u8]) -> bool {
    let Some(&first) = payload.first() else { return false };
    match nal_type(first) {
        IDR | SPS => true,
        STAP_A => stap_units(payload).any(|nal| nal.first().is_some_and(|b| matches!(nal_type(*b), IDR | SPS))),
        FU_A => payload.get(1).is_some_and(|fu| fu & 0x80 != 0 && nal_type(*fu) == IDR),
        _ => false,
    }
}

/// The NAL units aggregated in a STAP-A payload (each after its 16-bit size); stops at the
/// first size that runs past the end.
fn stap_units(payload: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = payload.get(1..).unwrap_or_default();
    std::iter::from_fn(move || {
        let size = u16::from_be_bytes([*rest.first()?, *rest.get(1)?]) as usize;
        let nal = rest.get(2..2 + size)?;
        rest = &rest[2 + size..];
        Some(nal)
    })
}

/// Appends what one packet carries to an Annex B byte stream (start codes before each NAL
/// unit; a fragmented unit's header once, at its first fragment). False if the payload is
/// not one the bridge understands (then nothing is appended).
pub fn append_annex_b(payload: &[u8], out: &mut Vec<u8>) -> bool {
    const START: [u8; 4] = [0, 0, 0, 1];
    let Some(&first) = payload.first() else { return false };
    match nal_type(first) {
        1..=23 => {
            out.extend_from_slice(&START);
            out.extend_from_slice(payload);
        }
        STAP_A => {
            let before = out.len();
            for nal in stap_units(payload) {
                out.extend_from_slice(&START);
                out.extend_from_slice(nal);
            }
            return out.len() > before;
        }
        FU_A => {
            let Some(&fu) = payload.get(1) else { return false };
            if fu & 0x80 != 0 {
                out.extend_from_slice(&START);
                out.push((first & 0xe0) | nal_type(fu));
            }
            out.extend_from_slice(&payload[2..]);
        }
        _ => return false,
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A STAP-A with an SPS (type 7) and a PPS (type 8), as browsers send before an IDR.
    const STAP_SPS_PPS: &[u8] = &[0x78, 0x00, 0x03, 0x67, 0x42, 0xe0, 0x00, 0x02, 0x68, 0xce];

    #[test]
    fn keyframes_start_at_parameter_sets_or_an_idr_fragment() {
        assert!(starts_keyframe(STAP_SPS_PPS));
        assert!(starts_keyframe(&[0x65, 0x88]), "a single IDR NAL unit");
        assert!(starts_keyframe(&[0x7c, 0x85, 0x88]), "FU-A, start bit, IDR");
        assert!(!starts_keyframe(&[0x7c, 0x05, 0x88]), "FU-A continuation of an IDR");
        assert!(!starts_keyframe(&[0x7c, 0x81, 0x9a]), "FU-A start of a non-IDR slice");
        assert!(!starts_keyframe(&[0x41, 0x9a]), "a non-IDR slice");
        assert!(!starts_keyframe(&[0x78, 0x00, 0x09, 0x68]), "a STAP-A whose size runs past the end");
        assert!(!starts_keyframe(&[]));
    }

    #[test]
    fn packets_become_an_annex_b_stream() {
        let mut out = Vec::new();
        assert!(append_annex_b(STAP_SPS_PPS, &mut out));
        assert!(append_annex_b(&[0x7c, 0x85, 0xaa, 0xbb], &mut out), "first fragment of an IDR");
        assert!(append_annex_b(&[0x7c, 0x45, 0xcc], &mut out), "last fragment");
        assert!(append_annex_b(&[0x41, 0x9a], &mut out));
        let want: Vec<u8> =
            [&[0, 0, 0, 1, 0x67, 0x42, 0xe0][..], &[0, 0, 0, 1, 0x68, 0xce], &[0, 0, 0, 1, 0x65, 0xaa, 0xbb, 0xcc], &[0, 0, 0, 1, 0x41, 0x9a]].concat();
        assert_eq!(out, want);
        assert!(!append_annex_b(&[0x00], &mut out), "NAL type 0 is not a packet the bridge knows");
    }
}
