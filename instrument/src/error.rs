//! Typed errors of the library. Each names what it can: the function, the
//! reason, and what was found; the binary adds the file name. Refusals
//! (the input is invalid, already instrumented, or does something ABI 1
//! cannot unwind) are kept apart from [`Error::Internal`], which is always a
//! bug in forkify: tests treat the first as answers and the second as
//! failures.

use std::fmt;

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
    /// The input uses a WebAssembly proposal the instrumenter cannot read.
    #[error("uses the {proposal} proposal ({found}), which forkify cannot instrument yet")]
    UnsupportedProposal {
        /// The proposal, e.g. `stack switching`.
        proposal: &'static str,
        /// What uses it and where, e.g. `` `cont.new` in function 3 at offset 0x2a ``.
        found: String,
    },
    /// A fork-path function uses something ABI 1 cannot unwind (ABI §8).
    /// When several do, this is the first in function-index order and
    /// `others` lists the rest, so one run names every refusal.
    #[error("function {function}: {reason}{}", others_text(others))]
    Unsupported {
        /// The function, by name when it has one, else `func[index]`.
        function: String,
        /// What it does that version 1 refuses.
        reason: String,
        /// The other refused functions and their reasons, in
        /// function-index order.
        others: Vec<(String, String)>,
    },
    /// Something about the module as a whole prevents instrumentation
    /// (no memory, a fork import with reference-typed parameters).
    #[error("{0}")]
    Module(String),
    /// The function asked about does not exist.
    #[error("no function named `{0}` (give a name from the name section, or `func[INDEX]`)")]
    NoSuchFunction(String),
    /// A bug in forkify: a panic, a broken invariant, or an output that does
    /// not validate. Never an answer about the input.
    #[error(
        "internal error in the {stage} stage: {message}; please report this with the input module"
    )]
    Internal {
        /// The stage that failed.
        stage: Stage,
        /// What went wrong.
        message: String,
    },
}

/// The refusals after the first, one per line.
fn others_text(others: &[(String, String)]) -> String {
    let mut s = String::new();
    if !others.is_empty() {
        s.push_str(&format!(
            "\n  and {} more function(s) refused:",
            others.len()
        ));
        for (function, reason) in others {
            s.push_str(&format!("\n  function {function}: {reason}"));
        }
    }
    s
}

impl Error {
    /// An internal error of `stage`.
    #[cold]
    pub fn internal(stage: Stage, message: impl Into<String>) -> Error {
        Error::Internal {
            stage,
            message: message.into(),
        }
    }

    /// True for [`Error::Internal`]: a bug, not a refusal.
    pub fn is_internal(&self) -> bool {
        matches!(self, Error::Internal { .. })
    }
}

/// The stages of the pipeline, in order (see `pipeline.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Stage {
    /// Validation and the checks on the raw bytes.
    Preflight,
    /// Looking for ABI §8 refusals on the functions that may have one.
    Screen,
    /// Parsing into walrus.
    Parse,
    /// The fork-path call graph.
    CallGraph,
    /// Per-function analysis: operand types, liveness.
    Analysis,
    /// Reshaping fork-path functions so replay needs fewer dispatch points.
    Reshape,
    /// Per-function plans.
    Plan,
    /// Adding the runtime: globals, helpers, exports, section.
    Runtime,
    /// Rewriting the fork-path functions.
    Rewrite,
    /// Writing the output module.
    Emit,
    /// Validating the output.
    Validate,
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Stage::Preflight => "preflight",
            Stage::Screen => "refusal screen",
            Stage::Parse => "parse",
            Stage::CallGraph => "call graph",
            Stage::Analysis => "analysis",
            Stage::Reshape => "reshape",
            Stage::Plan => "plan",
            Stage::Runtime => "runtime",
            Stage::Rewrite => "rewrite",
            Stage::Emit => "emit",
            Stage::Validate => "validate",
        })
    }
}

/// Result with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
