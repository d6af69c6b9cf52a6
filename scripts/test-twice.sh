#!/usr/bin/env bash
# Runs the README's test command (scripts/test.sh) twice at once, in two fresh clones of
# this checkout's HEAD, the way two CI jobs on one machine would: the suite must pass
# side by side with itself (ports, Unix socket paths, /etc, local users, the installed
# package). Each clone sits in its own directory next to a symlink `shared` to this
# checkout's ../shared (which CI provides next to the clone). Both logs are kept; the
# exit statuses of both runs are reported; the script fails if either run failed.
#
#   scripts/test-twice.sh [WORKDIR]     (default: a new directory under /tmp)
#
# Extra environment is passed through to both runs (e.g. XCAUTH_TEST_SKIP_FUZZ=1 for a
# quicker run without the fuzz smoke part; the default is the real command).
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd -P)"
shared="$(cd "$here/../shared" 2>/dev/null && pwd -P)" || {
  echo "test-twice: $here/../shared is missing (the tests and docs expect it there)" >&2
  exit 2
}
work="${1:-$(mktemp -d /tmp/xcauth-twice-XXXXXX)}"
mkdir -p "$work"
head="$(git -C "$here" rev-parse HEAD)"
if [ -n "$(git -C "$here" status --porcelain)" ]; then
  echo "test-twice: uncommitted changes in $here are not tested (HEAD $head is)" >&2
fi

pids=()
for run in a b; do
  dir="$work/$run"
  rm -rf "$dir"
  mkdir -p "$dir"
  git clone --quiet --no-hardlinks "$here" "$dir/xcauth-rs"
  git -C "$dir/xcauth-rs" checkout --quiet --detach "$head"
  ln -s "$shared" "$dir/shared"
  echo "test-twice: run $run in $dir/xcauth-rs, log $dir/test.log" >&2
  (cd "$dir/xcauth-rs" && exec ./scripts/test.sh) >"$dir/test.log" 2>&1 &
  pids+=($!)
done

status=0
for i in 0 1; do
  run=$([ "$i" = 0 ] && echo a || echo b)
  if wait "${pids[$i]}"; then
    rc=0
  else
    rc=$?
    status=1
  fi
  echo "test-twice: run $run exited with status $rc ($work/$run/test.log)" >&2
  grep -E '^test result:|^failures:|panicked at' "$work/$run/test.log" | sed "s/^/  $run: /" >&2 || true
done
exit "$status"
