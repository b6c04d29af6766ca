//! `forkify-testkit`: what the test suites, the fuzz target and the
//! benchmark harness share, so each exists once:
//!
//! - [`paths`]: the repository, the target directory, subprocess helpers;
//! - [`examples`]: building the Rust programs of `examples/` for wasm32 and
//!   wasm64, once per test binary;
//! - [`expected`]: `examples/expected.json`, the exact runs of those programs;
//! - [`wasm`] and [`module_info`]: looking inside modules;
//! - [`artifact`]: what every instrumented output must be;
//! - [`rng`], [`smith`] and [`inputs`]: deterministic module generation
//!   (wasm-smith swarms) and input mangling;
//! - [`properties`]: the never-panic/never-internal properties, and the
//!   fuzz target's body.
//!
//! It depends on the instrumenter and the ABI but not on wasmtime, so the
//! fuzz target stays light; running modules is the tests' own business.

pub mod artifact;
pub mod examples;
pub mod expected;
pub mod inputs;
pub mod module_info;
pub mod paths;
pub mod properties;
pub mod rng;
pub mod smith;
pub mod wasm;

pub use paths::{describe_output, repo_root, run_checked, say, target_dir};
