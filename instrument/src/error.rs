//! Typed errors of the library. Each names what it can: the function, the
//! reason, and what was found. The binary adds the file name.

/// Why a module could not be instrumented.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The input is not a valid WebAssembly module.
    #[error("not a valid WebAssembly module: {0}")]
    InvalidWasm(String),
    /// The input was already instrumented by forkify.
    #[error("already instrumented: it has {0}")]
    AlreadyInstrumented(String),
    /// The input carries Binaryen Asyncify instrumentation.
    #[error(
        "carries Asyncify instrumentation (export `{0}`); forkify and Asyncify cannot be combined"
    )]
    Asyncify(String),
    /// A fork-path function uses something ABI 1 cannot unwind.
    #[error("function {function}: {reason}")]
    Unsupported {
        /// The function, by name when it has one, else `func[index]`.
        function: String,
        /// What it does that version 1 refuses.
        reason: String,
    },
    /// Something about the module as a whole prevents instrumentation.
    #[error("{0}")]
    Module(String),
    /// The function asked about does not exist.
    #[error("no function named `{0}` (give a name from the name section, or `func[INDEX]`)")]
    NoSuchFunction(String),
    /// The output failed validation: a bug in forkify.
    #[error("internal error: the instrumented module does not validate ({0}); please report this with the input module")]
    InvalidOutput(String),
}

/// Result with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
