//! The failures `cargo forkify` expects, each mapped to one documented exit
//! code (`exit_codes.rs`) in a single match. Messages name the file and
//! what to do; the library's own message (function, reason) is kept whole.

use std::io::{self, Write};

use camino::Utf8PathBuf;

use crate::events::FailureKind;
use crate::exit_codes;

/// A failure the CLI reports to the user and turns into an exit code.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExpectedError {
    /// An input file could not be read.
    #[error("cannot read `{path}`: {error}")]
    ReadInput {
        /// The file.
        path: Utf8PathBuf,
        /// Why.
        error: io::Error,
    },
    /// The output file could not be written (nothing was left behind).
    #[error("cannot write `{path}`: {error}")]
    WriteOutput {
        /// The file.
        path: Utf8PathBuf,
        /// Why.
        error: io::Error,
    },
    /// The instrumenter refused or failed.
    #[error("cannot instrument `{path}`: {error}")]
    Instrument {
        /// The input module.
        path: Utf8PathBuf,
        /// The library's error (names the function and reason).
        error: forkify_instrument::Error,
    },
    /// `explain` could not inspect the module.
    #[error("cannot explain `{path}`: {error}")]
    Explain {
        /// The input module.
        path: Utf8PathBuf,
        /// The library's error.
        error: forkify_instrument::Error,
    },
    /// `check` found artifacts that do not match the ABI (each was already
    /// reported on its own line).
    #[error("{failed} of {total} artifacts failed the check")]
    CheckFailed {
        /// How many failed.
        failed: usize,
        /// How many were checked.
        total: usize,
    },
    /// `run`: the host refused the module (ABI, exports, imports).
    #[cfg(feature = "run")]
    #[error("cannot run `{path}`: {error}")]
    RunRefused {
        /// The module.
        path: Utf8PathBuf,
        /// Why.
        error: forkify_host::Error,
    },
    /// `run`: the first process did not exit with status 0.
    #[cfg(feature = "run")]
    #[error("`{path}`: process 1 {status}")]
    GuestFailed {
        /// The module.
        path: Utf8PathBuf,
        /// How it ended, e.g. `exited with status 3`.
        status: String,
    },
    /// The command line or the configuration is wrong (the message says
    /// what to change).
    #[error("{0}")]
    Usage(String),
    /// The project pins a fork ABI this tool does not emit; nothing was built.
    #[error(
        "this project pins fork ABI {pinned} (`abi = {pinned}` in {origin}), but this \
         cargo-forkify {tool} (`{binary}`) emits fork ABI {emitted}; nothing was built\n  \
         help: install a cargo-forkify that emits ABI {pinned}, or, if the project's host \
         supports ABI {emitted}, change the pin to `abi = {emitted}` in {origin}"
    )]
    AbiPin {
        /// The project's pin.
        pinned: u32,
        /// The ABI this tool emits.
        emitted: u32,
        /// The table that pins it, with its manifest.
        origin: String,
        /// This tool's version.
        tool: String,
        /// This binary's path.
        binary: String,
    },
    /// The toolchain cannot build a target (the message names the command
    /// that fixes it).
    #[error("{0}")]
    Toolchain(String),
    /// cargo could not be started.
    #[error("cannot run `{cargo}`: {error} (cargo is found through $CARGO, else `cargo` on PATH)")]
    CargoSpawn {
        /// The cargo binary.
        cargo: String,
        /// Why.
        error: io::Error,
    },
    /// cargo itself failed (it has said why on standard error); its exit
    /// code is passed through.
    #[error("`{command}` failed ({status})")]
    Cargo {
        /// What ran, e.g. `cargo build --target wasm32-unknown-unknown`.
        command: String,
        /// How it ended.
        status: String,
        /// cargo's exit code, passed on; `None` when it was killed by a
        /// signal.
        code: Option<i32>,
    },
    /// Some artifacts failed (each was already reported).
    #[error("{failed} of {total} artifacts could not be instrumented")]
    ArtifactsFailed {
        /// How many failed.
        failed: usize,
        /// How many there were.
        total: usize,
        /// What kinds of failure there were.
        kinds: Vec<FailureKind>,
    },
    /// A feature this binary was built without.
    #[cfg(not(feature = "run"))]
    #[error("{0}")]
    NotBuiltIn(&'static str),
    /// Standard output could not be written.
    #[error("cannot write to standard output: {0}")]
    Stdout(io::Error),
    /// Anything else: a bug or an environment problem.
    #[error("{0:#}")]
    Unexpected(anyhow::Error),
}

impl ExpectedError {
    /// The exit code for this failure.
    pub fn exit_code(&self) -> i32 {
        match self {
            ExpectedError::Instrument { .. } | ExpectedError::Explain { .. } => {
                exit_codes::INSTRUMENT_FAILED
            }
            ExpectedError::CheckFailed { .. } => exit_codes::ABI_MISMATCH,
            #[cfg(feature = "run")]
            ExpectedError::RunRefused { .. } => exit_codes::ABI_MISMATCH,
            #[cfg(feature = "run")]
            ExpectedError::GuestFailed { .. } => exit_codes::GUEST_FAILED,
            ExpectedError::Usage(_) => exit_codes::USAGE,
            ExpectedError::AbiPin { .. } => exit_codes::ABI_MISMATCH,
            ExpectedError::Toolchain(_) => exit_codes::TOOLCHAIN,
            ExpectedError::Cargo { code, .. } => code.unwrap_or(exit_codes::CARGO_BUILD_FAILED),
            ExpectedError::ArtifactsFailed { kinds, .. } => failure_code(kinds),
            ExpectedError::CargoSpawn { .. } => exit_codes::UNEXPECTED,
            #[cfg(not(feature = "run"))]
            ExpectedError::NotBuiltIn(_) => exit_codes::UNEXPECTED,
            ExpectedError::ReadInput { .. }
            | ExpectedError::WriteOutput { .. }
            | ExpectedError::Stdout(_)
            | ExpectedError::Unexpected(_) => exit_codes::UNEXPECTED,
        }
    }

    /// True when standard output was closed under us (`cargo forkify abi |
    /// head`): not worth a message.
    pub fn is_broken_pipe(&self) -> bool {
        matches!(self, ExpectedError::Stdout(e) if e.kind() == io::ErrorKind::BrokenPipe)
    }

    /// Prints `error: <message>` to standard error.
    pub fn display_to_stderr(&self) {
        let _ = writeln!(io::stderr().lock(), "error: {self}");
    }
}

/// The exit code of a run whose artifacts failed in these ways: an ABI
/// failure wins, then instrumentation, then anything else.
fn failure_code(kinds: &[FailureKind]) -> i32 {
    if kinds.contains(&FailureKind::Check) {
        exit_codes::ABI_MISMATCH
    } else if kinds.contains(&FailureKind::Instrument) {
        exit_codes::INSTRUMENT_FAILED
    } else {
        exit_codes::UNEXPECTED
    }
}

/// Writes `text` to standard output.
pub(crate) fn print_stdout(text: &str) -> Result<(), ExpectedError> {
    let mut out = io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(ExpectedError::Stdout)
}

/// Writes `text` to standard error; failures to do so are ignored, there is
/// nowhere left to report them.
pub(crate) fn print_stderr(text: &str) {
    let _ = io::stderr().lock().write_all(text.as_bytes());
}
