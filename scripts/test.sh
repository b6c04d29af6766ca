#!/usr/bin/env bash
# The whole test suite on a fresh machine (what CI's .ci/run calls): set-up,
# then the gates in order of cost: formatting, lints (every crate and
# target, warnings denied), documentation (warnings denied, doctests run
# with the tests), the test suite, and a short run of the fuzz target.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
step() { printf '\n== %s\n' "$*" >&2; }
step "cargo fmt --check"
cargo fmt --all --check
step "cargo clippy (all targets, -D warnings)"
cargo clippy --workspace --all-targets --locked -- -D warnings
step "cargo doc (-D warnings)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked
step "cargo test"
cargo test --workspace --locked
step "fuzz target: build and a short run"
bash scripts/fuzz-smoke.sh
