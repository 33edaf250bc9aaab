#!/usr/bin/env bash
# Fuzzes every decoder (tests/fuzz.rs) for MINUTES in all (default 10),
# split over the seven targets, in a release build. A failure prints the
# input that replays it: CRDT_FUZZ_INPUT=N cargo test --release --test fuzz TARGET.
set -euo pipefail
cd "$(dirname "$0")/.."
minutes="${1:-10}"
targets=7
secs=$(python3 -c "print($minutes * 60 / $targets * 2)")  # 2 cores: two targets at a time
# Overflow checks on, as in the debug build CI fuzzes: a wrapped number is a bug.
CARGO_PROFILE_RELEASE_OVERFLOW_CHECKS=true CRDT_FUZZ_SECS="$secs" cargo test --release --locked --test fuzz -- --nocapture --test-threads 2 2>&1 \
  | grep -E '^fuzz |test result|panicked|FAILED|replay'
