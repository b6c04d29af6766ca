#!/usr/bin/env bash
# The main job on the bundled examples: `cargo forkify build` builds every
# program in examples/ for wasm32 and instruments it, then `cargo forkify
# run` runs hello-fork on the reference host so a fork is seen to happen.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo build --release -p cargo-forkify
# Put the freshly built subcommand first on PATH, so `cargo forkify` is it.
export PATH="$PWD/target/release:$PATH"
cargo forkify build --manifest-path examples/Cargo.toml --release
echo "== outputs: examples/target/wasm32-unknown-unknown/release/forkify/ =="
cargo forkify check examples/target/wasm32-unknown-unknown/release/forkify/*.wasm
echo "== running hello-fork on the reference host =="
cargo forkify run --manifest-path examples/Cargo.toml --release --bin hello-fork
