#!/usr/bin/env bash
# The benchmark harness of issue 5, one command from the repository root:
#
#   bash bench/run.sh [--runs N] [--only name,name]
#
# Builds the CLI, the examples, the bench guests and the harness; installs
# Binaryen 132 (npm `binaryen`, pinned by bench/package-lock.json) into
# bench/node_modules when missing; fetches the third-party modules of
# bench/npm-inputs.json and bench/workloads.json from the npm registry into
# target/bench/npm; runs every measurement; writes target/bench/results.json,
# copies it to bench/results.json, draws bench/results.png and renders the
# tables into BENCHMARKS.md. Takes about 15 minutes on 2 cores (plus builds),
# plus about 7 for the real-program workloads (`--only workload` runs only
# those), plus the scaling and refusal measurements of issue 10 (`--only
# scaling,refusal` runs only those, `--only large-indirect85-48` one size;
# `--scaling-timeout SECS`, default 600, limits each of their runs; without
# the examples or guests built: they need neither).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export CARGO_TARGET_DIR="$ROOT/target"

say() { printf '\n== %s\n' "$*" >&2; }

for tool in cargo node npm python3; do
    command -v "$tool" >/dev/null || { echo "bench/run.sh: $tool is required" >&2; exit 1; }
done

if [ ! -x bench/node_modules/binaryen/bin/wasm-opt ]; then
    say "installing Binaryen 132 (npm binaryen, pinned by bench/package-lock.json)"
    npm ci --prefix bench --no-audit --no-fund
fi
bench/node_modules/binaryen/bin/wasm-opt --version | grep -q 'version 132' \
    || { echo "bench/run.sh: bench/node_modules has the wrong Binaryen; delete it and rerun" >&2; exit 1; }

if ! python3 -c 'import matplotlib' 2>/dev/null; then
    say "installing matplotlib (pip --user) for the plot"
    python3 -m pip install --user --quiet matplotlib
fi

rustup target list --installed 2>/dev/null | grep -q wasm32-unknown-unknown \
    || rustup target add wasm32-unknown-unknown

# `--only` naming nothing but the scaling and refusal measurements needs no
# wasm examples or guests.
only=""
prev=""
for a in "$@"; do
    [ "$prev" = --only ] && only=$a
    prev=$a
done
guests=1
if [ -n "$only" ]; then
    guests=0
    IFS=, read -ra names <<<"$only"
    for n in "${names[@]}"; do
        case $n in
            scaling | refusal | large-today-* | large-indirect85-*) ;;
            *) guests=1 ;;
        esac
    done
fi

say "building cargo-forkify (release)"
cargo build --release -p cargo-forkify
if [ "$guests" = 1 ]; then
    say "building examples/ for wasm32-unknown-unknown"
    cargo build --release --target wasm32-unknown-unknown --manifest-path examples/Cargo.toml \
        --target-dir examples/target
    say "building bench/guests for wasm32-unknown-unknown"
    cargo build --release --target wasm32-unknown-unknown --manifest-path bench/guests/Cargo.toml \
        --target-dir target/bench/guests
fi
say "building the harness"
cargo build --release -p forkify-bench
BENCH=target/release/forkify-bench

say "measuring (timings are noisy on a shared machine: medians, tools interleaved)"
"$BENCH" run --repo . --out target/bench "$@"

cp target/bench/results.json bench/results.json
say "plotting"
python3 bench/plot.py bench/results.json bench/results.png
"$BENCH" report bench/results.json BENCHMARKS.md
say "done: BENCHMARKS.md, bench/results.json, bench/results.png"
