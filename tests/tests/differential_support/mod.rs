//! The differential harness, split by idea; `differential.rs` holds the
//! tests. Every file imports this module's re-exports, so the pieces read
//! as one harness.

#![allow(clippy::too_many_arguments)]

pub mod case;
pub mod hand;
pub mod host;
pub mod run;
pub mod structure;
pub mod tally;
pub mod values;

pub use case::*;
pub use hand::*;
pub use host::*;
pub use run::*;
pub use structure::*;
pub use tally::*;
pub use values::*;

pub const DEFAULT_CASES: u64 = 3000;
pub const DEFAULT_SEED: u64 = 0xf0f0_0000;
/// Fail when more than this share of the cases with a fork-path function is
/// refused. Measured: about 18%, nearly all reference-typed values live
/// across a fork-path call (ABI §8) in the third of the cases with
/// reference types, plus modules without memory.
pub const MAX_REFUSED_PERCENT: u64 = 30;
/// At most this many forks per run (each fork re-runs an export).
pub const MAX_FORKS: u32 = 64;
/// Wasmtime fuel: a watchdog only (wasm-smith's `ensure_termination` makes
/// the programs themselves terminate). The instrumented module gets more.
pub const FUEL_ORIGINAL: u64 = 50_000_000;
pub const FUEL_INSTRUMENTED: u64 = 500_000_000;

pub use forkify_abi as abi;
pub use forkify_instrument::{Config, Error, ImportName};
pub use forkify_testkit::rng::{env_u64, failure_dir, mix64, Rng};
pub use forkify_testkit::smith::{self, Generated, FUEL_EXPORT, MEMORY_EXPORT};
pub use std::collections::BTreeMap;
pub use std::fmt::Write as _;
pub use std::sync::atomic::{AtomicU64, Ordering};
pub use std::sync::{Arc, Mutex};
pub use wasmtime::{
    Caller, Engine, Extern, ExternType, Func, FuncType, Global, Instance, Module, Store,
    StoreLimits, StoreLimitsBuilder, Trap, Val, ValType,
};

pub fn engine() -> Engine {
    let mut c = wasmtime::Config::new();
    c.cranelift_opt_level(wasmtime::OptLevel::None)
        .cranelift_nan_canonicalization(true)
        .relaxed_simd_deterministic(true)
        .wasm_memory64(true)
        .wasm_multi_memory(true)
        .wasm_tail_call(true)
        .wasm_relaxed_simd(true)
        .wasm_extended_const(true)
        .wasm_exceptions(true)
        .wasm_simd(true)
        .wasm_multi_value(true)
        .wasm_bulk_memory(true)
        .consume_fuel(true)
        .async_stack_size(9 << 20)
        .max_wasm_stack(8 << 20);
    Engine::new(&c).expect("wasmtime engine")
}
