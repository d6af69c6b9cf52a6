#!/usr/bin/env bash
# Installs what the fuzz smoke run needs: cargo-fuzz (from crates.io, built with the stable
# toolchain; a few minutes, once). It also needs the nightly toolchain (libFuzzer needs
# nightly's sanitizer flags), which the machine image provides. Idempotent.
set -euo pipefail

if ! rustup run nightly rustc --version >/dev/null 2>&1; then
  echo "install-fuzz: the nightly toolchain is missing (rustup toolchain install nightly)" >&2
  exit 1
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "install-fuzz: installing cargo-fuzz" >&2
  cargo install cargo-fuzz --locked
fi
