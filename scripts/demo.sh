#!/usr/bin/env bash
# The main job on the bundled examples: build every program in examples/ for
# wasm32, instrument each with cargo-forkify, and run hello-fork on the
# reference host so a fork is seen to happen.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo build --release -p cargo-forkify
forkify=target/release/cargo-forkify
cargo build --release --target wasm32-unknown-unknown --manifest-path examples/Cargo.toml
out=target/forkify-demo
mkdir -p "$out"
for wasm in examples/target/wasm32-unknown-unknown/release/*.wasm; do
  name=$(basename "$wasm")
  "$forkify" forkify instrument "$wasm" -o "$out/$name" --stats
done
echo "== running hello-fork on the reference host =="
"$forkify" forkify run "$out/hello-fork.wasm"
