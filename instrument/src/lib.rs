//! `forkify-instrument`: the WebAssembly-to-WebAssembly transform behind
//! `cargo forkify`. It rewrites only the functions that can reach a fork
//! import so that a host can unwind the call stack into linear memory, copy
//! the instance, and rewind parent and child to the call site. The contract
//! with the host is fork ABI 1 (see [`abi`]).
//!
//! ```text
//! (func $walk (param $d i32) (result i32)            ;; before
//!   (i32.add (call $fork) (call $walk (i32.sub (local.get $d) (i32.const 1)))))
//! ```
//! becomes a function with the same locals whose calls are followed by a
//! state check (unwind: write the frame, return) and whose entry, when
//! replaying, pops its frame and branches straight to the suspended call.

#![deny(missing_docs)]

pub mod abi;
mod callgraph;
mod config;
mod error;
mod gen;
mod liveness;
mod plan;
mod preflight;
mod report;
mod rewrite;
mod runtime;
mod splice;
mod stack;
mod transform;
mod walk;

pub use config::{Config, ImportName};
pub use error::{Error, Result};
pub use report::{FunctionReport, Report};

/// Name, version and source fingerprint of this instrumenter, as written
/// into the `forkify.abi` section, e.g. `cargo-forkify 0.1.0 (1f0c…)`.
pub const TOOL: &str = concat!(
    "cargo-forkify ",
    env!("CARGO_PKG_VERSION"),
    " (",
    env!("FORKIFY_SOURCE_HASH"),
    ")"
);

/// An instrumented module and what was done to it.
#[derive(Debug, Clone)]
pub struct Instrumented {
    /// The output module.
    pub bytes: Vec<u8>,
    /// What was done.
    pub report: Report,
}

/// Why a function is on a fork path: the chain of calls from it to a fork
/// import, each step written as a function name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explanation {
    /// The function asked about, then each callee, ending at a fork import.
    /// Empty when the function is not on a fork path.
    pub chain: Vec<String>,
}

/// Instruments `wasm` for fork ABI 1.
///
/// A module that imports none of the fork imports comes back unchanged
/// (`report.passed_through`). Errors name the function and the reason.
pub fn instrument(wasm: &[u8], config: &Config) -> Result<Instrumented> {
    transform::guarded(|| transform::instrument(wasm, config))
}

/// Explains why `function` (a name or `func[INDEX]`) is on a fork path.
pub fn explain(wasm: &[u8], config: &Config, function: &str) -> Result<Explanation> {
    transform::guarded(|| transform::explain(wasm, config, function))
}
