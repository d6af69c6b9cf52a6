#!/usr/bin/env bash
# The whole test suite, as CI runs it: install the real peer programs the
# end-to-end tests drive (Debian packages, needs root the first time), check
# formatting and lints, build every binary, run every test, then a few seconds of every
# fuzz target.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-test-deps.sh
bash scripts/install-fuzz.sh

export CARGO_TERM_COLOR=never
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
# The end-to-end tests run the real xcauthd, jsxc-double and pam_xcauth.so.
cargo build --workspace --bins --locked
cargo test --workspace --locked -- --test-threads=2
# A few seconds of every fuzz target (FUZZING.md); its own nightly build in fuzz/target.
bash scripts/fuzz-smoke.sh
