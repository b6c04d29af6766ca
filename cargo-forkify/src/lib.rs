//! `cargo-forkify`: the cargo subcommand that builds WebAssembly with cargo
//! and instruments it so `fork()` works (fork ABI 1), as a library: the CLI
//! ([`main_impl`]) with `cargo forkify build` (workspace resolution, the
//! cargo build, the parallel instrumenting driver, reporters),
//! artifact verification ([`verify`]) and, behind the default `run`
//! feature, the reference host ([`host`]) that really forks instrumented
//! modules.

#![deny(missing_docs)]

mod atomic;
mod build;
mod cargo_config;
mod cargo_opts;
mod cli;
mod commands;
mod driver;
pub mod errors;
mod events;
pub mod exit_codes;
#[cfg(feature = "run")]
pub mod host;
mod manifest;
mod project_config;
mod reporter;
pub mod templates;
mod toolchain;
pub mod verify;
mod workspace;

pub use cli::{main_impl, main_with_args};
