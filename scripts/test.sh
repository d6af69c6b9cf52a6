#!/usr/bin/env bash
# The whole test suite, as CI runs it: install the real peer programs the
# end-to-end tests drive (Debian packages, needs root the first time), check
# formatting and lints, build every binary, run every test, then a few seconds of every
# fuzz target.
#
# The tests run in a network namespace of their own (`unshare --net`, only `lo`,
# up): the ports the peers bind cannot collide with another run of the suite on this
# machine (scripts/test-twice.sh) or with a service of the host, and no test reaches
# the network. Everything that needs the network (apt, cargo's downloads, the builds)
# happens before, outside it. XCAUTH_TEST_SKIP_FUZZ=1 leaves out the fuzz smoke run
# (for quick runs by hand; CI runs everything).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-test-deps.sh
bash scripts/install-fuzz.sh

export CARGO_TERM_COLOR=never
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
# The end-to-end tests run the real xcauthd, jsxc-double and pam_xcauth.so.
cargo build --workspace --bins --locked
cargo test --workspace --locked --no-run
# In the namespace, cargo (also the one the PAM tests run to build the module) never
# needs the network.
if ! unshare --net -- true 2>/dev/null; then
  echo "test.sh: cannot make a network namespace (unshare --net needs root)" >&2
  exit 1
fi
CARGO_NET_OFFLINE=true unshare --net -- /bin/sh -c 'ip link set lo up && exec "$@"' in-netns \
  cargo test --workspace --locked --offline -- --test-threads=2
if [ "${XCAUTH_TEST_SKIP_FUZZ:-0}" = 1 ]; then
  echo "test.sh: fuzz smoke run skipped (XCAUTH_TEST_SKIP_FUZZ=1)" >&2
  exit 0
fi
# A few seconds of every fuzz target (FUZZING.md); its own nightly build in fuzz/target.
bash scripts/fuzz-smoke.sh
