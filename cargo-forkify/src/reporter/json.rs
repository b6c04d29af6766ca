//! `--message-format json`: standard output carries only JSON lines:
//! cargo's own messages as cargo wrote them, one `forkify-artifact` record
//! per artifact and a final `forkify-finished`. Warnings and status lines
//! go to standard error.

use std::io::Write;

use camino::Utf8Path;
use serde::Serialize;
use serde_json::{json, Value};

use super::{Style, Verbosity};
use crate::events::{ArtifactStatus, Event, Reporter, Summary};
use crate::manifest::{ArtifactEntry, ArtifactId};

/// Renders events for a machine.
#[derive(Debug)]
pub(crate) struct JsonReporter {
    verbosity: Verbosity,
    style: Style,
}

impl JsonReporter {
    pub fn new(verbosity: Verbosity, style: Style) -> JsonReporter {
        JsonReporter { verbosity, style }
    }
}

/// One line on standard output. A closed pipe cannot be reported from here;
/// the line is dropped.
fn emit_line(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}").and_then(|()| out.flush());
}

fn stderr(text: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{text}");
}

/// A `forkify-artifact` record of a done artifact.
#[derive(Serialize)]
struct DoneRecord<'a> {
    reason: &'static str,
    status: ArtifactStatus,
    #[serde(flatten)]
    entry: &'a ArtifactEntry,
    manifest: &'a Utf8Path,
    fresh: bool,
}

/// A `forkify-artifact` record of a failed artifact.
#[derive(Serialize)]
struct FailedRecord<'a> {
    reason: &'static str,
    status: &'static str,
    #[serde(flatten)]
    id: &'a ArtifactId,
    input: Value,
    error: &'a str,
}

/// The `forkify-finished` record.
#[derive(Serialize)]
struct FinishedRecord<'a> {
    reason: &'static str,
    #[serde(flatten)]
    summary: &'a Summary,
}

fn emit(record: &impl Serialize) {
    // Records of strings, numbers and paths always serialize.
    if let Ok(line) = serde_json::to_string(record) {
        emit_line(&line);
    }
}

impl Reporter for JsonReporter {
    fn report(&self, event: Event) {
        let quiet = self.verbosity == Verbosity::Quiet;
        match event {
            Event::CargoMessage(line) => emit_line(&line),
            Event::CargoText(line) => stderr(&line),
            Event::Warning(w) if !quiet => stderr(&self.style.warning(&w)),
            Event::Status { verb, message } if !quiet => stderr(&self.style.status(verb, &message)),
            Event::Verbose { verb, message } if self.verbosity >= Verbosity::Verbose => {
                stderr(&self.style.status(verb, &message));
            }
            Event::ArtifactDone(done) => emit(&DoneRecord {
                reason: "forkify-artifact",
                status: done.status,
                entry: &done.entry,
                manifest: &done.manifest,
                fresh: done.fresh,
            }),
            Event::ArtifactFailed(failed) => emit(&FailedRecord {
                reason: "forkify-artifact",
                status: "failed",
                id: &failed.id,
                input: json!({ "path": failed.input }),
                error: &failed.message,
            }),
            Event::Finished(summary) => emit(&FinishedRecord {
                reason: "forkify-finished",
                summary: &summary,
            }),
            _ => {}
        }
    }
}
