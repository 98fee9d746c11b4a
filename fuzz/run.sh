#!/usr/bin/env bash
# Runs fuzz targets (all, or those named) for RUNS executions each (default 10 million), one
# after the other, on the build of docs/security.md ("Fuzzing"):
#   cargo +nightly fuzz build -O -a -s none     # release, debug assertions and overflow checks, no ASan
# MAX_TIME (seconds, default 0 = no limit) also ends each run after that long. New inputs go to
# corpus/<target>/, crashes to artifacts/<target>/, libFuzzer's output to logs/<target>.log;
# the last lines printed are the figures of docs/security.md's table. One libFuzzer process at a
# time, one core; run it under `nice -n 19` on a shared machine.
set -euo pipefail
cd "$(dirname "$0")"
runs="${RUNS:-10000000}"
max_time="${MAX_TIME:-0}"
bin="${BIN:-target/x86_64-unknown-linux-gnu/release}"
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(h264 vp8 stun ice_tcp signal_json rtcp rtp sdp)
mkdir -p logs
for t in "${targets[@]}"; do
  seeds=(seeds/"$t")
  max_len=4096
  case "$t" in
    sdp) seeds+=(../src/peer/lean/sdp/testdata); max_len=16384 ;;
    rtp) max_len=8192 ;;
  esac
  mkdir -p corpus/"$t" artifacts/"$t"
  start=$(date +%s)
  "$bin/$t" corpus/"$t" "${seeds[@]}" -runs="$runs" -max_total_time="$max_time" -timeout=10 -rss_limit_mb=2048 \
    -max_len="$max_len" -artifact_prefix=artifacts/"$t"/ -print_final_stats=1 >logs/"$t".log 2>&1 || echo "$t: libFuzzer exited $?" >>logs/"$t".log
  end=$(date +%s)
  echo "$t: $(grep -E '^#[0-9]+[[:space:]]+DONE' logs/"$t".log | tail -1) wall $((end - start)) s, corpus $(ls corpus/"$t" | wc -l) files, crashes $(ls artifacts/"$t" | wc -l)"
done
