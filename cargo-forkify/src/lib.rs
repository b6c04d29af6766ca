//! `cargo-forkify`: the cargo subcommand that instruments WebAssembly so
//! `fork()` works (fork ABI 1), as a library: the CLI ([`main_impl`]),
//! artifact verification ([`verify`]) and, behind the default `run`
//! feature, the reference host ([`host`]) that really forks instrumented
//! modules.

#![deny(missing_docs)]

mod cli;
mod commands;
pub mod errors;
pub mod exit_codes;
#[cfg(feature = "run")]
pub mod host;
pub mod verify;

pub use cli::{main_impl, main_with_args};
