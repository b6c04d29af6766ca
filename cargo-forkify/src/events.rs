//! The only interface between the build (workspace resolution, cargo, the
//! instrumenting driver) and what the user sees: those parts send events to
//! a [`Reporter`] and never print; `reporter/*` renders them.

use camino::Utf8PathBuf;
use serde::Serialize;

use crate::manifest::{ArtifactEntry, ArtifactId};

/// What became of one artifact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum ArtifactStatus {
    /// Instrumented and written now.
    Instrumented,
    /// Imports no fork import: copied unchanged.
    PassedThrough,
    /// Unchanged since the last run (same input hash, tool, options): the
    /// existing output was kept.
    Skipped,
}

/// An artifact that is done.
#[derive(Debug, Clone)]
pub(crate) struct ArtifactDone {
    pub status: ArtifactStatus,
    pub entry: ArtifactEntry,
    /// The manifest that records it.
    pub manifest: Utf8PathBuf,
    /// cargo's `fresh`: cargo did not rebuild the input.
    pub fresh: bool,
}

/// What kind of failure an artifact had; `errors.rs` turns it into an
/// exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FailureKind {
    /// Reading, writing or re-reading a file failed.
    Io,
    /// The instrumenter refused the module (or failed).
    Instrument,
    /// The fresh output failed its ABI check.
    Check,
}

/// An artifact that could not be instrumented or failed its check.
#[derive(Debug, Clone)]
pub(crate) struct ArtifactFailed {
    pub id: ArtifactId,
    pub input: Utf8PathBuf,
    /// The full message (names the file, package, target and reason).
    pub message: String,
    /// What failed.
    pub kind: FailureKind,
}

/// The end of a run.
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct Summary {
    pub success: bool,
    pub artifacts: usize,
    pub instrumented: usize,
    pub passed_through: usize,
    pub skipped: usize,
    pub failed: usize,
    /// The manifests written.
    pub manifests: Vec<Utf8PathBuf>,
    pub duration_ms: u64,
    /// Why the run failed, when it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The exit code of the run.
    pub exit_code: i32,
}

/// Something the user may want to know.
#[derive(Debug, Clone)]
pub(crate) enum Event {
    /// A problem that does not stop the run (e.g. an unknown config key).
    Warning(String),
    /// A cargo-style status line: `verb` right-aligned, then the message
    /// (e.g. `Installing`, `Running`).
    Status { verb: &'static str, message: String },
    /// A status line shown only with `-v` (e.g. the cargo command line).
    Verbose { verb: &'static str, message: String },
    /// A JSON line cargo wrote on its standard output.
    CargoMessage(String),
    /// A line cargo wrote on its standard output that is not JSON.
    CargoText(String),
    /// Instrumentation of `total` artifacts begins.
    InstrumentStarted { total: usize },
    /// One artifact is done.
    ArtifactDone(Box<ArtifactDone>),
    /// One artifact failed.
    ArtifactFailed(Box<ArtifactFailed>),
    /// The run ended (successfully or not); always the last event.
    Finished(Summary),
}

/// Receives events; called from several threads while instrumenting.
pub(crate) trait Reporter: Sync {
    /// Handles one event.
    fn report(&self, event: Event);
}
