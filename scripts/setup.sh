#!/usr/bin/env bash
# Installs what the project needs on a fresh machine: the wasm targets for the
# stable toolchain, and for nightly (used for wasm64 with -Zbuild-std) the
# wasm32 target and rust-src when a nightly toolchain is present.
set -euo pipefail
if ! command -v rustup >/dev/null 2>&1; then
  echo "setup: rustup not found; install the wasm32-unknown-unknown target for your toolchain by hand" >&2
  exit 0
fi
rustup target add wasm32-unknown-unknown
if rustup toolchain list | grep -q '^nightly'; then
  rustup component add rust-src --toolchain nightly
  rustup target add wasm32-unknown-unknown --toolchain nightly
else
  echo "setup: no nightly toolchain; wasm64 tests will be skipped (install one with: rustup toolchain install nightly --component rust-src)" >&2
fi
