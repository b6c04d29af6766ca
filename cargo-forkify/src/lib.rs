//! `cargo-forkify`: the cargo subcommand that builds WebAssembly with cargo
//! and instruments it so `fork()` works (fork ABI 1), as a library: the CLI
//! ([`main_impl`]). The transform is `forkify-instrument`, the ABI
//! `forkify-abi`, and `cargo forkify run` is a thin caller of the host
//! library `forkify-host` (default feature `run`).
//!
//! Inside: `cli.rs` and `commands/` (one file per subcommand), `cargo/`
//! (everything that speaks to cargo: its flags, configuration, metadata,
//! toolchain and `cargo build`), `pipeline/` (the build-and-instrument
//! pipeline and its parallel driver), `layout.rs` (where outputs go),
//! `manifest.rs`, `events.rs` and `reporter/` (what the user sees), and
//! `errors.rs` with `exit_codes.rs` (the only places exit codes are
//! decided).

#![deny(missing_docs)]

mod atomic;
mod cargo;
mod cli;
mod commands;
mod errors;
mod events;
pub mod exit_codes;
mod layout;
mod manifest;
mod pipeline;
mod reporter;
pub mod templates;

pub use cli::{main_impl, main_with_args};
