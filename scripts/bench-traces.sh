#!/usr/bin/env bash
# Our trace benchmark and ../shared/peerbench's published text CRDTs, in one
# run, on the same machine, for the README's Performance table.
#   scripts/bench-traces.sh [PEERS...]   (default: rope dt cola loro automerge yrs)
set -euo pipefail
cd "$(dirname "$0")/.."
peers=("$@")
[ ${#peers[@]} -gt 0 ] || peers=(rope dt cola loro automerge yrs)
traces=(../shared/traces/automerge-paper.json.gz ../shared/traces/seph-blog1.json.gz)
cargo bench --bench traces 2>/dev/null | grep -E '^peer='
CARGO_TARGET_DIR=target/peerbench cargo build --quiet --release --manifest-path ../shared/peerbench/Cargo.toml
for t in "${traces[@]}"; do
  for p in "${peers[@]}"; do
    target/peerbench/release/peerbench "$t" "$p" 5 | grep -E '^peer='
  done
done
# The same trace through the command line, whole process, 5 runs.
cargo build --quiet --release
tmp=$(mktemp -d)
for t in "${traces[@]}"; do
  name=$(basename "$t" .json.gz)
  scripts/trace-to-batch.py "$t" --end "$tmp/$name.end" > "$tmp/$name.txt"
  times=()
  for _ in 1 2 3 4 5; do
    rm -f "$tmp"/state.db "$tmp"/state.db-wal "$tmp"/state.db-shm
    start=$(date +%s%N)
    target/release/crdt --state "$tmp/state.db" --replica trace batch "$tmp/$name.txt" 2>/dev/null
    times+=($(( ($(date +%s%N) - start) / 1000000 )))
  done
  got=$(target/release/crdt --state "$tmp/state.db" get document:main)
  check=MISMATCH; [ "$got" == "$(cat "$tmp/$name.end")" ] && check=OK
  sorted=($(printf '%s\n' "${times[@]}" | sort -n))
  echo "peer=crdt-cli trace=$name.json.gz batch_process_ms=${sorted[2]} all_runs_ms=[${times[*]}] check=$check"
done
rm -rf "$tmp"
