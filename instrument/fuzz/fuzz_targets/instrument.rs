//! Fuzz target `instrument`: `forkify_instrument::instrument` (and `explain`)
//! must never panic and never fail internally, and every module it returns
//! must be a valid, complete artifact (byte-identical when passed through,
//! refused when instrumented again). The body is
//! `forkify_testkit::properties::fuzz_one`, which the stable test suite
//! also runs (`tests/tests/robustness.rs`, `fuzz_target_smoke`); its first
//! byte picks raw bytes, a wasm-smith module with every default feature, or
//! a module from the differential swarm.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    forkify_testkit::properties::fuzz_one(data);
});
