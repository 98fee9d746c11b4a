//! The short fuzzing run of every `cargo test` (stable, no instrumentation): each target of
//! `fuzz/targets.rs` (the same functions the libFuzzer binaries run) over its committed seeds
//! in `fuzz/seeds/<target>/`, then over a bounded number of cheap deterministic mutations of
//! them: bit flips, byte overwrites with boundary values, truncations, insertions and splices of
//! two seeds. A panic in a target fails the test and names the input that caused it; an input
//! that takes over a second fails it too (a hang shows as the run's timeout). The long runs
//! are in docs/security.md ("Fuzzing").

#[path = "../fuzz/targets.rs"]
mod targets;

use std::panic::{self, AssertUnwindSafe};
use std::path::Path;
use std::time::{Duration, Instant};

/// Mutated inputs per target (on top of the seeds themselves).
const MUTATIONS: usize = 3000;
/// Slower than this for one input counts as a failure (the fuzzer's own timeout is 10 s on an
/// optimised build; a debug build is ~10-30x slower than that on these parsers).
const SLOW: Duration = Duration::from_secs(1);

/// A small deterministic generator (xorshift64*), so a failure replays the same way.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// The `i`-th mutation of the seeds: one of the cheap mutations libFuzzer also makes.
fn mutate(seeds: &[Vec<u8>], rng: &mut Rng) -> Vec<u8> {
    let mut input = seeds[rng.below(seeds.len())].clone();
    let len = input.len();
    match rng.below(6) {
        0 if len > 0 => {
            let at = rng.below(len);
            input[at] ^= 1 << rng.below(8);
        }
        1 if len > 0 => {
            let at = rng.below(len);
            input[at] = [0x00, 0xff, 0x7f, 0x80, 0x01, 0xfe][rng.below(6)];
        }
        2 => input.truncate(rng.below(len + 1)),
        3 => {
            let at = rng.below(len + 1);
            let bytes: Vec<u8> = (0..1 + rng.below(8)).map(|_| rng.next() as u8).collect();
            input.splice(at..at, bytes);
        }
        4 => {
            let other = &seeds[rng.below(seeds.len())];
            let (cut, from) = (rng.below(len + 1), rng.below(other.len() + 1));
            input.truncate(cut);
            input.extend_from_slice(&other[from..]);
        }
        _ if len > 1 => {
            // A 16-bit length or count field set to a boundary value.
            let at = rng.below(len - 1);
            let v: u16 = [0, 1, 0x7fff, 0x8000, 0xffff, len as u16][rng.below(6)];
            input[at..at + 2].copy_from_slice(&v.to_be_bytes());
        }
        _ => input.push(rng.next() as u8),
    }
    input
}

/// The seeds of a target: `fuzz/seeds/<name>/`, and for SDP also the recorded browser SDP of
/// the lean engine's unit tests.
fn seeds(name: &str) -> Vec<Vec<u8>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut dirs = vec![root.join("fuzz/seeds").join(name)];
    if name == "sdp" {
        dirs.push(root.join("src/peer/lean/sdp/testdata"));
    }
    let mut files: Vec<_> = dirs
        .iter()
        .flat_map(|dir| std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_none_or(|x| x != "md"))
        .collect();
    files.sort();
    files.iter().map(|f| std::fs::read(f).unwrap()).collect()
}

/// Runs `target` over `seeds` and `mutations` mutations of them; the number of inputs run, or
/// what went wrong with which input.
fn replay(target: fn(&[u8]), seeds: &[Vec<u8>], mutations: usize) -> Result<usize, String> {
    if seeds.is_empty() {
        return Err("no seeds".into());
    }
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let inputs = seeds.iter().cloned().chain((0..mutations).map(|_| mutate(seeds, &mut rng)));
    let mut count = 0;
    for input in inputs {
        let started = Instant::now();
        if let Err(e) = panic::catch_unwind(AssertUnwindSafe(|| target(&input))) {
            let what = e.downcast_ref::<String>().cloned().or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string())).unwrap_or_default();
            return Err(format!("input #{count} ({} bytes, hex {}) panicked: {what}", input.len(), hex::encode(&input)));
        }
        if started.elapsed() > SLOW {
            return Err(format!("input #{count} ({} bytes, hex {}) took {:?}", input.len(), hex::encode(&input), started.elapsed()));
        }
        count += 1;
    }
    Ok(count)
}

#[test]
fn every_parser_survives_its_seeds_and_their_mutations() {
    let mut failures = Vec::new();
    for &(name, target) in targets::TARGETS {
        let started = Instant::now();
        let seeds = seeds(name);
        match replay(target, &seeds, MUTATIONS) {
            Ok(n) => eprintln!("{name}: {n} inputs ({} seeds) in {:?}", seeds.len(), started.elapsed()),
            Err(e) => failures.push(format!("{name}: {e}")),
        }
    }
    assert!(failures.is_empty(), "fuzz targets failed:\n{}", failures.join("\n"));
}

#[test]
fn a_panicking_target_fails_the_replay() {
    fn fragile(data: &[u8]) {
        assert!(!data.contains(&0xff), "0xff in the input");
    }
    let seeds = vec![b"abc".to_vec(), vec![0x00, 0x7f]];
    let err = replay(fragile, &seeds, 200).expect_err("a mutation writes 0xff");
    assert!(err.contains("0xff in the input"), "{err}");
}

#[test]
fn records_split_a_multi_packet_input() {
    let input = [0, 2, 0xaa, 0xbb, 0, 1, 0xcc, 0, 9, 0xdd];
    let records: Vec<&[u8]> = targets::records(&input).collect();
    assert_eq!(records, [&[0xaa, 0xbb][..], &[0xcc], &[0xdd]]);
}

#[test]
fn re_signed_chromium_checks_reach_the_answer() {
    use diemcau::peer::lean::transport::{ice_lite::IceLite, IceCredentials};
    let checks: Vec<Vec<u8>> = seeds("stun").into_iter().filter(|s| s.len() > 20 && s[..2] == [0, 1]).collect();
    let answered = checks
        .iter()
        .filter(|c| {
            let mut ice = IceLite::new(IceCredentials { ufrag: targets::LOCAL_UFRAG.into(), pwd: targets::PWD.into() }, targets::REMOTE_UFRAG);
            ice.answer(Instant::now(), "192.0.2.7:40000".parse().unwrap(), c).is_ok()
        })
        .count();
    assert!(answered >= 2, "{answered} of {} seed checks answered: the seeds no longer reach ICE-lite's answer", checks.len());
}
