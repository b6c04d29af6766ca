//! The human output on standard error: warnings and status lines as they
//! happen, errors per artifact, the progress bar while instrumenting, and a
//! cargo-style summary at the end with one line per artifact.

use std::sync::Mutex;

use super::progress::Progress;
use super::{size, Style, Verbosity};
use crate::events::{ArtifactDone, ArtifactStatus, Event, Reporter, Summary};

/// Renders events for a person.
#[derive(Debug)]
pub(crate) struct HumanReporter {
    verbosity: Verbosity,
    style: Style,
    progress: Progress,
    done: Mutex<Vec<ArtifactDone>>,
}

impl HumanReporter {
    pub fn new(verbosity: Verbosity, style: Style) -> HumanReporter {
        HumanReporter {
            verbosity,
            style,
            progress: Progress::default(),
            done: Mutex::new(Vec::new()),
        }
    }

    fn say(&self, text: &str) {
        self.progress.eprintln(text);
    }

    fn summary(&self, summary: &Summary) {
        let mut done = self.done.lock().map(|d| d.clone()).unwrap_or_default();
        done.sort_by(|a, b| a.entry.id.cmp(&b.entry.id));
        for d in &done {
            self.say(&artifact_line(&self.style, d, self.verbosity));
        }
        if summary.artifacts == 0 && !summary.success {
            return;
        }
        let mut counts = vec![format!("{} instrumented", summary.instrumented)];
        if summary.skipped > 0 {
            counts.push(format!("{} unchanged", summary.skipped));
        }
        if summary.passed_through > 0 {
            counts.push(format!("{} passed through", summary.passed_through));
        }
        if summary.failed > 0 {
            counts.push(format!("{} failed", summary.failed));
        }
        let plural = if summary.artifacts == 1 { "" } else { "s" };
        let verb = if summary.success {
            "Finished"
        } else {
            "Failed"
        };
        self.say(&self.style.status(
            verb,
            &format!(
                "{} artifact{plural} ({}) in {:.2}s",
                summary.artifacts,
                counts.join(", "),
                summary.duration_ms as f64 / 1000.0
            ),
        ));
        for m in &summary.manifests {
            self.say(&self.style.status("Manifest", m.as_str()));
        }
    }
}

/// One summary line, e.g. `Instrumented hello-fork (wasm32-unknown-unknown)
/// 2 functions, 24.6 KB → 25.5 KB`.
fn artifact_line(style: &Style, d: &ArtifactDone, verbosity: Verbosity) -> String {
    let e = &d.entry;
    let who = format!("{} ({})", e.id.label(), e.id.triple);
    let functions = if e.instrumented_functions == 1 {
        "function"
    } else {
        "functions"
    };
    let sizes = format!("{} → {}", size(e.input.size), size(e.output.size));
    let mut line = match d.status {
        ArtifactStatus::Instrumented => style.status(
            "Instrumented",
            &format!("{who} {} {functions}, {sizes}", e.instrumented_functions),
        ),
        ArtifactStatus::PassedThrough => style.status(
            "Copied",
            &format!(
                "{who} passed through: no fork import, {}",
                size(e.output.size)
            ),
        ),
        ArtifactStatus::Skipped if e.passed_through => style.status(
            "Skipped",
            &format!(
                "{who} unchanged, passed through: no fork import, {}",
                size(e.output.size)
            ),
        ),
        ArtifactStatus::Skipped => style.status(
            "Skipped",
            &format!(
                "{who} unchanged: {} {functions}, {sizes}",
                e.instrumented_functions
            ),
        ),
    };
    if verbosity >= Verbosity::Verbose {
        line.push_str(&format!("\n{:>12} {}", "", e.output.path));
    }
    line
}

impl Reporter for HumanReporter {
    fn report(&self, event: Event) {
        let quiet = self.verbosity == Verbosity::Quiet;
        match event {
            Event::Warning(w) if !quiet => self.say(&self.style.warning(&w)),
            Event::Status { verb, message } if !quiet => {
                self.say(&self.style.status(verb, &message))
            }
            Event::Verbose { verb, message } if self.verbosity >= Verbosity::Verbose => {
                self.say(&self.style.status(verb, &message));
            }
            Event::CargoText(line) => self.say(&line),
            Event::InstrumentStarted { total } if !quiet => {
                self.progress.start(total, self.style.color)
            }
            Event::ArtifactDone(done) => {
                self.progress.inc(&done.entry.id.label());
                if let Ok(mut v) = self.done.lock() {
                    v.push(*done);
                }
            }
            Event::ArtifactFailed(failed) => {
                self.progress.inc(&failed.id.label());
                self.say(&self.style.error(&failed.message));
            }
            Event::Finished(summary) => {
                self.progress.finish();
                if !quiet {
                    self.summary(&summary);
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::{ArtifactEntry, ArtifactId, FileInfo};

    #[test]
    fn summary_lines() {
        let entry = ArtifactEntry {
            id: ArtifactId {
                triple: "wasm32-unknown-unknown".into(),
                package: "hello-fork".into(),
                target: "hello-fork".into(),
                kind: "bin".into(),
                profile: "release".into(),
                package_id: "x".into(),
            },
            input: FileInfo {
                path: "/i".into(),
                sha256: String::new(),
                size: 24_649,
            },
            output: FileInfo {
                path: "/o".into(),
                sha256: String::new(),
                size: 25_512,
            },
            abi_version: 1,
            tool: "t".into(),
            fork_imports: vec![],
            instrumented_functions: 2,
            passed_through: false,
            duration_ms: 3,
        };
        let mut d = ArtifactDone {
            status: ArtifactStatus::Instrumented,
            entry,
            manifest: "/m".into(),
            fresh: false,
        };
        let style = Style { color: false };
        assert_eq!(
            artifact_line(&style, &d, Verbosity::Normal),
            "Instrumented hello-fork (wasm32-unknown-unknown) 2 functions, 24.6 KB → 25.5 KB"
        );
        d.status = ArtifactStatus::Skipped;
        assert_eq!(
            artifact_line(&style, &d, Verbosity::Normal),
            "     Skipped hello-fork (wasm32-unknown-unknown) unchanged: 2 functions, 24.6 KB → 25.5 KB"
        );
        d.status = ArtifactStatus::PassedThrough;
        d.entry.id.target = "demo".into();
        d.entry.id.kind = "example".into();
        assert_eq!(
            artifact_line(&style, &d, Verbosity::Normal),
            "      Copied hello-fork (example `demo`) (wasm32-unknown-unknown) passed through: no fork import, 25.5 KB"
        );
    }
}
