//! Why the host would not run a module. What the guest itself does (exit
//! codes, traps) is never an error: it is in the kernel's record of the run.

use forkify_abi::VerifyError;

/// A module the host refuses, or a failure of the host itself.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The module is not a fork-ABI artifact this host supports (section,
    /// version, pointer width, control exports).
    #[error(transparent)]
    Abi(#[from] VerifyError),
    /// The module imports a fork import but was never instrumented.
    #[error("not instrumented: it imports `{0}` but has no `forkify.abi` section; run `cargo forkify instrument` first")]
    NotInstrumented(String),
    /// The module is missing what the host needs, or has it in the wrong
    /// shape (`memory` not memory 0, no `_start`, a control export without
    /// the section).
    #[error("{0}")]
    Refused(String),
    /// wasmtime cannot compile the module.
    #[error("cannot compile the module: {0}")]
    Compile(String),
    /// An import is neither the kernel's, a fork import, nor one added to
    /// the linker.
    #[error("cannot link the module against the kernel: {0}")]
    Link(String),
    /// The host could not do its own work (start its thread, copy memory).
    #[error("host failure: {0}")]
    Host(String),
}

/// Turns a wasmtime error into text, keeping its chain of causes.
pub(crate) fn chain(e: &wasmtime::Error) -> String {
    format!("{e:#}")
}
