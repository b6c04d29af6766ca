//! `forkify-instrument`: the WebAssembly-to-WebAssembly transform behind
//! `cargo forkify`. It rewrites only the functions that can reach a fork
//! import so that a host can unwind the call stack into linear memory, copy
//! the instance, and rewind parent and child to the call site. The contract
//! with the host is fork ABI 1 (the crate [`forkify_abi`], whose `ABI.md`
//! is the normative text).
//!
//! ```text
//! (func $walk (param $d i32) (result i32)            ;; before
//!   (i32.add (call $fork) (call $walk (i32.sub (local.get $d) (i32.const 1)))))
//! ```
//! becomes a function with the same locals whose calls are followed by a
//! state check (unwind: write the frame, return) and whose entry, when
//! replaying, pops its frame and branches straight to the suspended call.
//!
//! The stages, in the order `pipeline.rs` runs them, each a module of this
//! crate: `preflight` (validate, refuse), parse (walrus), `analysis` (call
//! graph, liveness; reads only), `plan` (per function: sites, carryovers,
//! frame layout), `runtime` (globals, helpers, control exports, section),
//! `rewrite` (one function at a time), `emit` (splice or whole module, then
//! validate). What walrus does not give us is worked around in
//! `walrus_gaps`; the frame layout has one home, `frame.rs`. See
//! ARCHITECTURE.md in the repository.
//!
//! ```
//! let wasm = wat::parse_str(r#"(module
//!   (import "kernel" "kernel_fork" (func $fork (result i32)))
//!   (memory (export "memory") 1)
//!   (func (export "_start") (drop (call $fork))))"#).unwrap();
//! let out = forkify_instrument::instrument(&wasm, &Default::default()).unwrap();
//! assert_eq!(out.report.functions.len(), 1);
//! assert!(forkify_abi::verify(&out.bytes, forkify_abi::ABI_VERSION).is_ok());
//! ```

#![deny(missing_docs)]

mod analysis;
mod codegen;
mod config;
mod emit;
mod error;
mod frame;
mod parallel;
mod pipeline;
mod plan;
mod preflight;
mod report;
mod reshape;
mod rewrite;
mod runtime;
mod screen;
mod tree;
mod walrus_gaps;

pub use config::{Config, ImportName, ReplayTwins, TOOL};
pub use error::{Error, Result, Stage};
pub use parallel::WORKER_STACK;
pub use pipeline::{explain, instrument, Explanation, Instrumented};
pub use report::{FunctionReport, Report};
