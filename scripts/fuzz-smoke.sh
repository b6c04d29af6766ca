#!/usr/bin/env bash
# Builds the fuzz target (instrument/fuzz, its own workspace) and runs it
# briefly, so it cannot rot. With a nightly toolchain it is built as
# cargo-fuzz builds it (sanitizer coverage, so libFuzzer really explores)
# and runs for FORKIFY_FUZZ_SECONDS (default 30); on stable it is built
# without coverage and runs FORKIFY_FUZZ_RUNS inputs (default 20000).
# A crash fails the script and leaves the input in instrument/fuzz/.
set -euo pipefail
cd "$(dirname "$0")/../instrument/fuzz"
mkdir -p corpus/instrument
if command -v rustup >/dev/null 2>&1 && rustup toolchain list | grep -q '^nightly'; then
    host=$(rustc -vV | sed -n 's/^host: //p')
    RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing -Cdebug-assertions" \
        cargo +nightly build --release --locked --target "$host" --bin instrument
    "target/$host/release/instrument" corpus/instrument \
        -max_total_time="${FORKIFY_FUZZ_SECONDS:-30}" -max_len=16384 -print_final_stats=1
else
    echo "fuzz-smoke: no nightly toolchain; building without coverage" >&2
    cargo build --release --locked --bin instrument
    target/release/instrument corpus/instrument -runs="${FORKIFY_FUZZ_RUNS:-20000}" -max_len=16384
fi
