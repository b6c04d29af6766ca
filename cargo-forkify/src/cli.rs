//! The command line: clap definitions of the `cargo forkify` indirection
//! and the dispatch from a parsed command to `commands/*`. Only this file
//! and `errors.rs` decide exit codes.

use std::ffi::OsString;

use clap::{Parser, Subcommand};

use crate::commands::{
    abi::AbiOpts, build::BuildOpts, check::CheckOpts, explain::ExplainOpts,
    instrument::InstrumentOpts, new::NewOpts, run::RunOpts,
};
use crate::errors::ExpectedError;
use crate::exit_codes;

// cargo runs `cargo-forkify forkify ARGS…` for `cargo forkify ARGS…`, so the
// top level is cargo and `forkify` is its only subcommand.
/// cargo-forkify: run it as `cargo forkify <COMMAND>` (or `cargo-forkify forkify <COMMAND>`).
#[derive(Debug, Parser)]
#[command(name = "cargo", bin_name = "cargo")]
enum Cargo {
    Forkify(ForkifyOpts),
}

/// Make fork() work in WebAssembly (fork ABI 1).
///
/// Build a workspace's wasm targets and instrument them so that a host can
/// unwind, copy and rewind them; check instrumented artifacts; run them on
/// the bundled reference host.
#[derive(Debug, clap::Args)]
#[command(
    version,
    after_help = crate::commands::after_help(&[
        "cargo forkify build --release",
        "cargo forkify run --bin hello-fork",
        "cargo forkify instrument app.wasm -o app.forked.wasm --stats",
        "cargo forkify check target/wasm32-unknown-unknown/release/forkify/*.wasm",
        "cargo forkify run app.forked.wasm",
        "cargo forkify abi > abi.json",
    ]),
)]
struct ForkifyOpts {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    Build(BuildOpts),
    Instrument(InstrumentOpts),
    Explain(ExplainOpts),
    Abi(AbiOpts),
    Run(RunOpts),
    Check(CheckOpts),
    New(NewOpts),
}

impl Command {
    fn exec(&self) -> Result<(), ExpectedError> {
        match self {
            Command::Build(o) => o.exec(),
            Command::Instrument(o) => o.exec(),
            Command::Explain(o) => o.exec(),
            Command::Abi(o) => o.exec(),
            Command::Run(o) => o.exec(),
            Command::Check(o) => o.exec(),
            Command::New(o) => o.exec(),
        }
    }
}

/// Parses the process's arguments, runs the command and returns the exit
/// code (see `exit_codes`). Prints errors to standard error; exits quietly
/// when standard output is a closed pipe.
pub fn main_impl() -> i32 {
    main_with_args(std::env::args_os())
}

/// [`main_impl`] with explicit arguments (the first is the program name).
pub fn main_with_args(args: impl IntoIterator<Item = impl Into<OsString> + Clone>) -> i32 {
    let Cargo::Forkify(opts) = match Cargo::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            // --help and --version are "errors" with exit code 0.
            let _ = e.print();
            return e.exit_code();
        }
    };
    match opts.command.exec() {
        Ok(()) => exit_codes::OK,
        Err(e) if e.is_broken_pipe() => exit_codes::OK,
        Err(e) => {
            e.display_to_stderr();
            e.exit_code()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_is_consistent() {
        use clap::CommandFactory;
        Cargo::command().debug_assert();
    }
}
