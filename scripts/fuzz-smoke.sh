#!/usr/bin/env bash
# Smoke run of every fuzz target (fuzz/, see FUZZING.md): builds them with nightly into
# fuzz/target (apart from the stable build in target/), then runs each for a few seconds from
# its committed seed corpus. New inputs go to fuzz/target/smoke-corpus, never into the
# committed seeds. A crash fails the run and leaves the input in fuzz/artifacts/TARGET/. So
# does a target that ran nothing: each must end with libFuzzer's `Done N runs` and N > 0.
#
# FUZZ_SECONDS (default 3): seconds per target. FUZZ_SMOKE_DIR (default fuzz/target): where
# the working corpora and the logs go.
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_PER_TARGET="${FUZZ_SECONDS:-3}"
work_root="${FUZZ_SMOKE_DIR:-fuzz/target}"
cargo +nightly fuzz build
targets="$(cargo +nightly fuzz list)"
if [ -z "$targets" ]; then
  echo "fuzz smoke: cargo fuzz list named no target" >&2
  exit 1
fi
for target in $targets; do
  work="$work_root/smoke-corpus/$target"
  mkdir -p "$work"
  echo "fuzz smoke: $target (${SECONDS_PER_TARGET} s)" >&2
  log="$work_root/smoke-$target.log"
  if ! cargo +nightly fuzz run "$target" "$work" "fuzz/corpus/$target" -- \
    -max_total_time="$SECONDS_PER_TARGET" >"$log" 2>&1; then
    tail -n 60 "$log" >&2
    echo "fuzz smoke: $target failed (input in fuzz/artifacts/$target/)" >&2
    exit 1
  fi
  runs="$(sed -n -E 's/^Done ([0-9]+) runs.*/\1/p' "$log" | tail -n 1)"
  if [ -z "$runs" ] || [ "$runs" -eq 0 ]; then
    tail -n 60 "$log" >&2
    echo "fuzz smoke: $target ran no input (no 'Done N runs' with N > 0 in $log)" >&2
    exit 1
  fi
  echo "fuzz smoke: $target: $runs runs" >&2
done
