#!/usr/bin/env bash
# Runs the whole test suite on a fresh machine (what CI runs).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo test --workspace --locked
