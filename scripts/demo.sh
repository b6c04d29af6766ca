#!/usr/bin/env bash
# The main job on the bundled examples: `cargo forkify build` builds every
# program in examples/ for wasm32 and instruments it, then `cargo forkify
# run` runs hello-fork on the reference host so a fork is seen to happen.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo build --release -p cargo-forkify
# Put the freshly built subcommand first on PATH, so `cargo forkify` is it
# (where cargo put it: CARGO_TARGET_DIR when set).
export PATH="${CARGO_TARGET_DIR:-$PWD/target}/release:$PATH"
cargo forkify build --manifest-path examples/Cargo.toml --release
out="${CARGO_TARGET_DIR:-examples/target}/wasm32-unknown-unknown/release/forkify"
echo "== outputs: $out/ =="
cargo forkify check "$out"/*.wasm
echo "== running hello-fork on the reference host =="
cargo forkify run --manifest-path examples/Cargo.toml --release --bin hello-fork
