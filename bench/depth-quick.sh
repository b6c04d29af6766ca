#!/usr/bin/env bash
# The recursion-depth probes alone (issue 9), for rerunning after a change
# to the instrumenter; about a minute on 2 cores:
#
#   bash bench/depth-quick.sh [[LABEL=]CARGO_FORKIFY ...] [--no-chromium] [--fresh-process]
#
# Each CARGO_FORKIFY binary (default target/release/cargo-forkify; it is
# not built here) instruments every probe; Asyncify -O runs beside them
# (its outputs are cached under target/bench/depth). Prints the depth of
# each probe and variant on Node (--no-liftoff, --liftoff-only) and in
# headless Chromium (default, --no-liftoff, --liftoff-only), the ratio to
# un-instrumented, what misses the targets, and the native stack the
# 1,000-site probe needs; writes target/bench/depth/depth.json. Node runs
# each search in one process (--fresh-process: a process per probe, as
# bench/run.sh does). Builds the harness and bench/guests when needed.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)

args=()
bins=0
for a in "$@"; do
    case "$a" in
        --*) args+=("$a") ;;
        *=*) args+=(--forkify "${a%%=*}=$(realpath "${a#*=}")"); bins=$((bins + 1)) ;;
        *) args+=(--forkify "$(realpath "$a")"); bins=$((bins + 1)) ;;
    esac
done
cd "$here"
export CARGO_TARGET_DIR="$here/target"
if [ "$bins" -eq 0 ]; then
    args+=(--forkify "forkify=$here/target/release/cargo-forkify")
fi

if [ ! -x bench/node_modules/binaryen/bin/wasm-opt ]; then
    npm ci --prefix bench --no-audit --no-fund >&2
fi
cargo build --quiet --release -p forkify-bench
cargo build --quiet --release --target wasm32-unknown-unknown \
    --manifest-path bench/guests/Cargo.toml --target-dir target/bench/guests
exec target/release/forkify-bench depth --repo . --out target/bench/depth "${args[@]}"
