#!/usr/bin/env bash
# Smoke run of every fuzz target (fuzz/, see FUZZING.md): builds them with nightly into
# fuzz/target (apart from the stable build in target/), then runs each for a few seconds from
# its committed seed corpus. New inputs go to fuzz/target/smoke-corpus, never into the
# committed seeds. A crash fails the run and leaves the input in fuzz/artifacts/TARGET/.
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_PER_TARGET="${FUZZ_SECONDS:-3}"
cargo +nightly fuzz build
for target in $(cargo +nightly fuzz list); do
  work="fuzz/target/smoke-corpus/$target"
  mkdir -p "$work"
  echo "fuzz smoke: $target (${SECONDS_PER_TARGET} s)" >&2
  log="fuzz/target/smoke-$target.log"
  if ! cargo +nightly fuzz run "$target" "$work" "fuzz/corpus/$target" -- \
    -max_total_time="$SECONDS_PER_TARGET" >"$log" 2>&1; then
    tail -n 60 "$log" >&2
    echo "fuzz smoke: $target failed (input in fuzz/artifacts/$target/)" >&2
    exit 1
  fi
  grep -E '^Done [0-9]+ runs' "$log" >&2 || true
done
