//! Instrumenting the collected artifacts: in parallel on a rayon pool
//! bounded by `-j`, each read, hashed, skipped when unchanged since the
//! manifest recorded it, instrumented, written atomically beside cargo's
//! output (never over it), re-read and verified against the ABI before it is
//! reported. Then the manifests are written. Sends events; never prints.

use std::collections::BTreeMap;
use std::time::Instant;

use camino::Utf8PathBuf;
use forkify_abi::{verify, ABI_VERSION};
use forkify_instrument::Config;
use rayon::prelude::*;

use crate::atomic::write_atomic;
use crate::errors::ExpectedError;
use crate::events::{ArtifactDone, ArtifactFailed, ArtifactStatus, Event, FailureKind, Reporter};
use crate::layout::OutputLayout;
use crate::manifest::{self, ArtifactEntry, ArtifactId, FileInfo, Manifest};

/// One artifact to instrument.
#[derive(Debug, Clone)]
pub(crate) struct Job {
    pub id: ArtifactId,
    /// cargo's file.
    pub input: Utf8PathBuf,
    /// Where forkify's file and its manifest go.
    pub layout: OutputLayout,
    /// The options (fork imports, tool).
    pub config: Config,
    /// cargo did not rebuild the input.
    pub fresh: bool,
}

/// What the driver did.
#[derive(Debug, Default)]
pub(crate) struct Outcome {
    pub done: Vec<ArtifactDone>,
    pub failed: Vec<ArtifactFailed>,
    /// The manifests written.
    pub manifests: Vec<Utf8PathBuf>,
}

/// Instruments `jobs` on `threads` threads. `force` redoes unchanged inputs.
pub(crate) fn run(
    jobs: Vec<Job>,
    threads: usize,
    force: bool,
    reporter: &dyn Reporter,
) -> Result<Outcome, ExpectedError> {
    let tool = Config::default().tool;
    let mut manifests: BTreeMap<Utf8PathBuf, Manifest> = BTreeMap::new();
    for job in &jobs {
        let path = job.layout.manifest();
        if let std::collections::btree_map::Entry::Vacant(slot) = manifests.entry(path) {
            let (m, warning) = Manifest::load(slot.key(), &tool);
            if let Some(w) = warning {
                reporter.report(Event::Warning(w));
            }
            slot.insert(m);
        }
    }
    reporter.report(Event::InstrumentStarted { total: jobs.len() });
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads.max(1))
        // The instrumenter plans functions on these threads too.
        .stack_size(forkify_instrument::WORKER_STACK)
        .thread_name(|i| format!("forkify-{i}"))
        .build()
        .map_err(|e| {
            ExpectedError::Unexpected(anyhow::anyhow!(
                "cannot start the instrumenting threads: {e}"
            ))
        })?;
    let results: Vec<Result<ArtifactDone, Box<ArtifactFailed>>> = pool.install(|| {
        jobs.par_iter()
            .map(|job| {
                let manifest_path = job.layout.manifest();
                let prev = manifests
                    .get(&manifest_path)
                    .and_then(|m| m.find(&job.layout.output));
                let result = process(job, prev, force, manifest_path);
                match &result {
                    Ok(done) => reporter.report(Event::ArtifactDone(Box::new(done.clone()))),
                    Err(failed) => reporter.report(Event::ArtifactFailed(failed.clone())),
                }
                result
            })
            .collect()
    });
    let mut outcome = Outcome::default();
    for r in results {
        match r {
            Ok(done) => outcome.done.push(done),
            Err(failed) => outcome.failed.push(*failed),
        }
    }
    outcome.done.sort_by(|a, b| a.entry.id.cmp(&b.entry.id));
    for done in &outcome.done {
        if let Some(m) = manifests.get_mut(&done.manifest) {
            m.upsert(done.entry.clone());
        }
    }
    for (path, mut m) in manifests {
        if !outcome.done.iter().any(|d| d.manifest == path) {
            continue;
        }
        m.tool.clone_from(&tool);
        write_atomic(&path, m.to_json().as_bytes()).map_err(|error| {
            ExpectedError::WriteOutput {
                path: path.clone(),
                error,
            }
        })?;
        outcome.manifests.push(path);
    }
    Ok(outcome)
}

/// Does one artifact.
fn process(
    job: &Job,
    prev: Option<&ArtifactEntry>,
    force: bool,
    manifest: Utf8PathBuf,
) -> Result<ArtifactDone, Box<ArtifactFailed>> {
    let start = Instant::now();
    let what = format!(
        "`{}` (package `{}`, {} `{}`, {})",
        job.input, job.id.package, job.id.kind, job.id.target, job.id.triple
    );
    let output = &job.layout.output;
    let fail = |message: String, kind: FailureKind| {
        Box::new(ArtifactFailed {
            id: job.id.clone(),
            input: job.input.clone(),
            message,
            kind,
        })
    };
    let bytes = std::fs::read(&job.input)
        .map_err(|e| fail(format!("cannot read {what}: {e}"), FailureKind::Io))?;
    let input = FileInfo::of(&job.input, &bytes);
    let fork_imports: Vec<String> = job
        .config
        .sorted_fork_imports()
        .iter()
        .map(ToString::to_string)
        .collect();
    let done = |status, entry| ArtifactDone {
        status,
        entry,
        manifest: manifest.clone(),
        fresh: job.fresh,
    };
    if let Some(prev) = prev.filter(|_| !force) {
        if prev.is_up_to_date(&input.sha256, &job.config.tool, &fork_imports, ABI_VERSION)
            && output_intact(prev)
        {
            let mut entry = prev.clone();
            entry.id = job.id.clone();
            entry.input = input;
            return Ok(done(ArtifactStatus::Skipped, entry));
        }
    }
    let instrumented = forkify_instrument::instrument(&bytes, &job.config).map_err(|e| {
        fail(
            format!("cannot instrument {what}: {e}"),
            FailureKind::Instrument,
        )
    })?;
    if let Some(dir) = output.parent() {
        std::fs::create_dir_all(dir).map_err(|e| {
            fail(
                format!("cannot create `{dir}` for {what}: {e}"),
                FailureKind::Io,
            )
        })?;
    }
    write_atomic(output, &instrumented.bytes).map_err(|e| {
        fail(
            format!("cannot write `{}` for {what}: {e}", output),
            FailureKind::Io,
        )
    })?;
    // Verify what is on disk, not what was meant to be written.
    let written = std::fs::read(output).map_err(|e| {
        fail(
            format!("cannot re-read `{}` for {what}: {e}", output),
            FailureKind::Io,
        )
    })?;
    let report = &instrumented.report;
    if written != instrumented.bytes {
        return Err(fail(
            format!("`{}` (for {what}) changed while it was written", output),
            FailureKind::Io,
        ));
    }
    // The instrumenter checked the bytes against the fork ABI on the pass
    // that validated them, and the file holds exactly those bytes: no
    // second parse of the output.
    if !report.passed_through {
        match &instrumented.verified {
            Some(v) if v.section.version == ABI_VERSION => {}
            other => {
                return Err(fail(
                    format!(
                        "the output `{}` for {what} fails the fork ABI {ABI_VERSION} check: {}",
                        output,
                        match other {
                            Some(v) => format!("it declares ABI {}", v.section.version),
                            None => "the instrumenter did not check it".to_string(),
                        }
                    ),
                    FailureKind::Check,
                ));
            }
        }
    }
    let entry = ArtifactEntry {
        id: job.id.clone(),
        input,
        output: FileInfo::of(output, &written),
        abi_version: ABI_VERSION,
        tool: job.config.tool.clone(),
        fork_imports,
        instrumented_functions: u32::try_from(report.functions.len()).unwrap_or(u32::MAX),
        passed_through: report.passed_through,
        duration_ms: u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX),
    };
    let status = if report.passed_through {
        ArtifactStatus::PassedThrough
    } else {
        ArtifactStatus::Instrumented
    };
    Ok(done(status, entry))
}

/// Whether the recorded output is still there, unchanged, and (unless
/// passed through) still passes the ABI check.
fn output_intact(prev: &ArtifactEntry) -> bool {
    let Ok(bytes) = std::fs::read(&prev.output.path) else {
        return false;
    };
    manifest::sha256_hex(&bytes) == prev.output.sha256
        && (prev.passed_through || verify::verify(&bytes, ABI_VERSION).is_ok())
}
