//! The pipeline behind `cargo forkify build` and `run`: resolve the
//! workspace, check the pinned ABI, prepare the toolchain, run cargo once
//! per target triple, instrument every `.wasm` artifact (`driver.rs`) and
//! report. The steps that speak to cargo live in `cargo/`; this module
//! orders them and turns the outcome into a summary and a result.

pub(crate) mod driver;

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::time::Instant;

use camino::Utf8PathBuf;
use forkify_instrument::{Config, ImportName};

use crate::cargo::build::{self as cargo_build, WasmArtifact};
use crate::cargo::config::CargoConfig;
use crate::cargo::opts::{parse_jobs, CargoOpts, MessageFormat};
use crate::cargo::toolchain::Toolchain;
use crate::cargo::workspace::{self, BuildPlan};
use crate::errors::ExpectedError;
use crate::events::{ArtifactStatus, Event, Reporter, Summary};
use crate::layout::OutputLayout;
use crate::manifest::ArtifactId;
use crate::reporter::{self, Style, Verbosity};
use driver::{Job, Outcome};

/// One run of the pipeline: where it runs, its configuration and reporter.
pub(crate) struct Session {
    cwd: Utf8PathBuf,
    cargo: OsString,
    config: CargoConfig,
    message_format: MessageFormat,
    pub reporter: Box<dyn Reporter>,
    start: Instant,
}

/// What a successful pipeline produced.
#[derive(Debug)]
pub(crate) struct Built {
    pub outcome: Outcome,
}

impl Session {
    /// Reads the cargo configuration and picks the reporter.
    pub fn new(opts: &CargoOpts, message_format: MessageFormat) -> Result<Session, ExpectedError> {
        let start = Instant::now();
        let cwd = std::env::current_dir().map_err(|e| {
            ExpectedError::Unexpected(anyhow::anyhow!("cannot read the current directory: {e}"))
        })?;
        let cwd = Utf8PathBuf::from_path_buf(cwd).map_err(|p| {
            ExpectedError::Usage(format!(
                "the current directory `{}` is not valid UTF-8",
                p.display()
            ))
        })?;
        let env = |k: &str| std::env::var(k).ok();
        let config = CargoConfig::load(cwd.as_std_path(), &opts.global.config, &env)
            .map_err(ExpectedError::Usage)?;
        let verbosity = Verbosity::resolve(&opts.global, &config);
        let style = Style {
            color: reporter::use_color(&opts.global, &config),
        };
        Ok(Session {
            cwd,
            cargo: std::env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo")),
            reporter: reporter::new(message_format, verbosity, style),
            config,
            message_format,
            start,
        })
    }

    /// The whole pipeline up to the instrumented artifacts. Artifact
    /// failures are in the outcome, not the error.
    pub fn build(
        &self,
        opts: &CargoOpts,
        force: bool,
        cli_imports: &[ImportName],
    ) -> Result<Built, ExpectedError> {
        let plan = self.resolve(opts)?;
        self.build_resolved(opts, plan, force, cli_imports)
    }

    /// Reads the workspace and resolves what to build (and checks the
    /// pinned ABI): nothing is built yet.
    pub fn resolve(&self, opts: &CargoOpts) -> Result<BuildPlan, ExpectedError> {
        let manifest =
            workspace::locate_manifest(opts.manifest.manifest_path.as_deref(), &self.cwd);
        let metadata = workspace::load_metadata(&self.cargo, opts, manifest.as_deref())?;
        let plan = workspace::plan(
            &metadata,
            opts,
            manifest.as_deref(),
            &self.cwd,
            &self.config,
        )?;
        for w in &plan.warnings {
            self.reporter.report(Event::Warning(w.clone()));
        }
        Ok(plan)
    }

    /// Builds and instruments what `plan` selected.
    pub fn build_resolved(
        &self,
        opts: &CargoOpts,
        plan: BuildPlan,
        force: bool,
        cli_imports: &[ImportName],
    ) -> Result<Built, ExpectedError> {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        let threads = match opts
            .compile
            .jobs
            .as_ref()
            .or(self.config.build_jobs.as_ref())
        {
            Some(j) => parse_jobs(j, cpus).map_err(|e| ExpectedError::Usage(format!("-j: {e}")))?,
            None => cpus,
        };

        // Every triple is checked before anything is built.
        let toolchain = Toolchain::probe(&self.cargo)?;
        let mut setups = Vec::new();
        for group in &plan.groups {
            setups.push(toolchain.prepare(
                &group.triple,
                opts.global.has_build_std(),
                self.reporter.as_ref(),
            )?);
        }

        let mut artifacts: Vec<WasmArtifact> = Vec::new();
        for (group, setup) in plan.groups.iter().zip(setups) {
            let args = cargo_build::build_args(
                opts,
                &plan,
                group,
                setup,
                self.message_format.cargo_value(),
                &self.cwd,
            );
            let selected: BTreeMap<String, String> = group
                .packages
                .iter()
                .map(|&i| {
                    (
                        plan.packages[i].id.repr.clone(),
                        plan.packages[i].name.clone(),
                    )
                })
                .collect();
            artifacts.extend(cargo_build::run(
                &self.cargo,
                &args,
                &group.triple,
                &selected,
                self.reporter.as_ref(),
            )?);
        }
        if artifacts.is_empty() {
            return Err(ExpectedError::Usage(
                "cargo built no .wasm module for the selected packages and targets, so there is nothing to \
                 instrument (bins, cdylibs and examples give .wasm modules; an rlib does not)"
                    .into(),
            ));
        }

        let mut jobs: Vec<Job> = Vec::new();
        for a in artifacts {
            let layout = OutputLayout::for_artifact(&a.path);
            if jobs.iter().any(|j| j.layout.output == layout.output) {
                continue;
            }
            let imports = if cli_imports.is_empty() {
                plan.package(&a.package_id)
                    .map(|p| p.config.fork_imports.clone())
                    .unwrap_or_default()
            } else {
                cli_imports.to_vec()
            };
            jobs.push(Job {
                id: ArtifactId {
                    triple: a.triple,
                    package: a.package,
                    target: a.target,
                    kind: a.kind,
                    profile: layout.profile.clone(),
                    package_id: a.package_id.repr,
                },
                input: a.path,
                layout,
                config: Config::with_fork_imports(imports),
                fresh: a.fresh,
            });
        }
        let outcome = driver::run(jobs, threads, force, self.reporter.as_ref())?;
        Ok(Built { outcome })
    }

    /// Reports the end of the run (always the last event) and turns the
    /// result into the command's result.
    pub fn finish(&self, result: Result<Built, ExpectedError>) -> Result<Built, ExpectedError> {
        let duration_ms = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        let (summary, result) = match result {
            Ok(built) if built.outcome.failed.is_empty() => {
                (summarize(&built.outcome, duration_ms), Ok(built))
            }
            Ok(built) => {
                let failed = built.outcome.failed.len();
                let e = ExpectedError::ArtifactsFailed {
                    failed,
                    total: failed + built.outcome.done.len(),
                    kinds: built.outcome.failed.iter().map(|f| f.kind).collect(),
                };
                let mut s = summarize(&built.outcome, duration_ms);
                s.success = false;
                s.failed = failed;
                s.artifacts += failed;
                s.error = Some(e.to_string());
                s.exit_code = e.exit_code();
                (s, Err(e))
            }
            Err(e) => (
                Summary {
                    success: false,
                    error: Some(e.to_string()),
                    exit_code: e.exit_code(),
                    duration_ms,
                    ..Summary::default()
                },
                Err(e),
            ),
        };
        self.reporter.report(Event::Finished(summary));
        result
    }
}

/// The summary of a successful run.
fn summarize(outcome: &Outcome, duration_ms: u64) -> Summary {
    let count = |s: ArtifactStatus| outcome.done.iter().filter(|d| d.status == s).count();
    Summary {
        success: true,
        artifacts: outcome.done.len(),
        instrumented: count(ArtifactStatus::Instrumented),
        passed_through: count(ArtifactStatus::PassedThrough),
        skipped: count(ArtifactStatus::Skipped),
        failed: 0,
        manifests: outcome.manifests.clone(),
        duration_ms,
        error: None,
        exit_code: crate::exit_codes::OK,
    }
}
