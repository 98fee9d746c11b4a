#!/usr/bin/env bash
# Runs every test of Điểm Cầu: unit, integration (webrtc-rs site simulator) and end to end
# in headless Chromium and Firefox ESR. On a fresh Debian machine with a Rust toolchain it
# first installs what the tests need: Debian's chromium, chromium-driver and fonts (via
# tests/lab/), firefox-esr (driven through tests/lab/firefox-webrtc.sh), ffmpeg (ffprobe
# checks recorded files; the bridge composes recordings with it, naming tiles in DejaVu Sans
# from fonts-dejavu-core), coturn (a TURN relay) and nftables (blocking UDP for ICE-TCP).
set -euo pipefail
cd "$(dirname "$0")/.."

# A run on a clean clone builds once: incremental state would only take disk (36 test
# binaries; a CI machine once ran out of space linking them).
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"

lab=tests/lab
packages="ffmpeg fonts-dejavu-core coturn nftables firefox-esr"
if [ "$(id -u)" -eq 0 ]; then
  LAB_EXTRA_PKGS="${LAB_EXTRA_PKGS:-} $packages" bash "$lab/install-chromium.sh"
elif ! command -v chromium >/dev/null || ! command -v ffprobe >/dev/null || ! command -v firefox-esr >/dev/null; then
  echo "tests/run.sh: chromium, firefox-esr or ffprobe is missing; run as root once (or: sudo LAB_EXTRA_PKGS=\"$packages\" bash $lab/install-chromium.sh)" >&2
  exit 1
fi
command -v python3 >/dev/null || { echo "tests/run.sh: python3 is needed to generate fake camera/microphone files" >&2; exit 1; }

# The web client's JSDoc types (jsconfig.json), checked by TypeScript: the pages have no build
# step, so this is what keeps `ServerMessage` and the pages' use of it honest.
tsc=target/tools/node_modules/.bin/tsc
if [ ! -x "$tsc" ]; then
  if ! command -v npm >/dev/null && [ "$(id -u)" -eq 0 ]; then
    apt-get install -y -q nodejs npm >/dev/null
  fi
  command -v npm >/dev/null || { echo "tests/run.sh: npm (Node.js) is needed to check the web client's types; run as root once or install nodejs and npm" >&2; exit 1; }
  npm install --prefix target/tools --no-audit --no-fund --silent typescript@5.6.3
fi
"$tsc" -p jsconfig.json

# What the code claims, checked by the tools: one format (rustfmt.toml), no clippy warning.
cargo fmt --check
cargo clippy --locked --all-targets -- -D warnings

# Bounded: a hung test fails the run instead of stalling CI.
timeout --signal=INT 1800 cargo test --locked --no-fail-fast -- --test-threads="${DIEMCAU_TEST_THREADS:-4}"
