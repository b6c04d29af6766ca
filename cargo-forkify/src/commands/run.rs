//! `cargo forkify run`: run an instrumented module on the reference host,
//! either a given `FILE.wasm` or a program of the workspace, which is built
//! and instrumented first (the same pipeline as `build`).

use camino::{Utf8Path, Utf8PathBuf};

use super::{read_input, ForkImportOpts};
use crate::cargo::opts::{
    CargoOpts, CompileOpts, FeatureOpts, GlobalOpts, ManifestOpts, MessageFormat, PackageOpts,
    RunTargetOpts,
};
use crate::cargo::workspace::BuildPlan;
use crate::errors::ExpectedError;
use crate::events::Event;
use crate::pipeline::Session;

/// Run a program on the reference host, really forking it.
///
/// With FILE.wasm, runs that instrumented module. Otherwise builds the
/// program of the workspace (--bin NAME, --example NAME, or the only bin of
/// the selected package), instruments it as `cargo forkify build` does, and
/// runs the output.
///
/// The host (wasmtime) provides the reference kernel: the module imports
/// `kernel.kernel_fork`, `kernel_exit`, `kernel_waitpid`, `kernel_write`,
/// `kernel_getpid` and exports `memory` and `_start`. At a fork the child
/// runs to completion first, then the parent resumes. Prints every line the
/// processes wrote, prefixed with `[pid] `; exits 5 unless process 1 exits
/// with status 0.
#[derive(Debug, clap::Args)]
#[command(after_help = super::after_help(&[
    "cargo forkify run --bin hello-fork --release",
    "cargo forkify run -p fork-tree",
    "cargo forkify run app.forked.wasm",
    "cargo forkify run app.forked.wasm --json --buffer-size 4096",
]))]
pub(crate) struct RunOpts {
    /// An instrumented module to run (instead of building one)
    #[arg(value_name = "FILE.wasm")]
    file: Option<Utf8PathBuf>,
    /// Print a JSON summary (pid, parent, status, stdout of every process)
    /// instead of the output.
    #[arg(long)]
    json: bool,
    /// Size in bytes of the save buffer each process gets.
    #[arg(long, value_name = "N", default_value_t = 1 << 20)]
    buffer_size: u32,
    /// The most processes the run may create.
    #[arg(long, value_name = "N", default_value_t = 1024)]
    max_processes: u32,
    #[command(flatten)]
    global: GlobalOpts,
    /// Instrument again even when the program is unchanged since the last run
    #[arg(long)]
    force: bool,
    #[command(flatten)]
    imports: ForkImportOpts,
    /// Package with the program to run
    #[arg(
        short = 'p',
        long = "package",
        value_name = "SPEC",
        help_heading = "Package selection"
    )]
    package: Option<String>,
    #[command(flatten)]
    target: RunTargetOpts,
    #[command(flatten)]
    features: FeatureOpts,
    #[command(flatten)]
    compile: CompileOpts,
    #[command(flatten)]
    manifest: ManifestOpts,
    /// Arguments for the program (the reference kernel has no way to pass
    /// them, so none may be given)
    #[arg(last = true, value_name = "ARGS")]
    args: Vec<String>,
}

impl RunOpts {
    pub(crate) fn exec(&self) -> Result<(), ExpectedError> {
        if let Some(file) = &self.file {
            if file.extension() != Some("wasm") {
                return Err(ExpectedError::Usage(format!(
                    "`{file}` is not a .wasm file: give an instrumented module, or build and run a program \
                     of the workspace with --bin NAME / --example NAME / -p PKG"
                )));
            }
            if self.package.is_some() || self.target.bin.is_some() || self.target.example.is_some()
            {
                return Err(ExpectedError::Usage(
                    "give either FILE.wasm or a program to build (--bin, --example, -p), not both"
                        .into(),
                ));
            }
            return self.run_file(file);
        }
        if !self.args.is_empty() {
            return Err(ExpectedError::Usage(format!(
                "the reference kernel (ABI §9) has no way to pass arguments to a program, so `-- {}` cannot be used",
                self.args.join(" ")
            )));
        }
        let mut opts = CargoOpts {
            packages: PackageOpts {
                packages: self.package.iter().cloned().collect(),
                ..PackageOpts::default()
            },
            targets: self.target.to_target_opts(),
            features: self.features.clone(),
            compile: self.compile.clone(),
            manifest: self.manifest.clone(),
            global: self.global.clone(),
            extra: Vec::new(),
        };
        let session = Session::new(&opts, MessageFormat::Human)?;
        let result = session.resolve(&opts).and_then(|plan| {
            let (kind, name) = self.program(&plan)?;
            if kind == "bin" {
                opts.targets.bin = vec![name.clone()];
            }
            session
                .build_resolved(&opts, plan, self.force, &self.imports.fork_imports)
                .map(|built| (built, kind, name))
        });
        let (result, program) = match result {
            Ok((built, kind, name)) => (Ok(built), Some((kind, name))),
            Err(e) => (Err(e), None),
        };
        let built = session.finish(result)?;
        let Some((kind, name)) = program else {
            return Err(ExpectedError::Unexpected(anyhow::anyhow!(
                "no program was chosen"
            )));
        };
        let done = built
            .outcome
            .done
            .iter()
            .find(|d| {
                d.entry.id.target == name && (d.entry.id.kind == "example") == (kind == "example")
            })
            .ok_or_else(|| {
                ExpectedError::Usage(format!("cargo built no .wasm module for {kind} `{name}`"))
            })?;
        let path = done.entry.output.path.clone();
        session.reporter.report(Event::Status {
            verb: "Running",
            message: format!("`{path}` on the reference host"),
        });
        self.run_file(&path)
    }

    /// The program to run: (`bin` or `example`, name).
    fn program(&self, plan: &BuildPlan) -> Result<(&'static str, String), ExpectedError> {
        if plan.groups.len() != 1 {
            let triples: Vec<&str> = plan.groups.iter().map(|g| g.triple.as_str()).collect();
            return Err(ExpectedError::Usage(format!(
                "`cargo forkify run` runs one program for one target, and this would build for {}; pick one with --target",
                triples.join(", ")
            )));
        }
        if let Some(b) = &self.target.bin {
            return Ok(("bin", b.clone()));
        }
        if let Some(e) = &self.target.example {
            return Ok(("example", e.clone()));
        }
        let bins: Vec<(String, String)> = plan
            .packages
            .iter()
            .flat_map(|p| {
                p.wasm_targets
                    .iter()
                    .filter(|(_, k)| k == "bin")
                    .map(move |(n, _)| (p.name.clone(), n.clone()))
            })
            .collect();
        match bins.as_slice() {
            [(_, name)] => Ok(("bin", name.clone())),
            [] => Err(ExpectedError::Usage(
                "there is no bin target to run in the selected package; use --example NAME, or -p PKG".into(),
            )),
            many => Err(ExpectedError::Usage(format!(
                "`cargo forkify run` could not determine which program to run; use --bin NAME or -p PKG \
                 (available bins: {})",
                many.iter().map(|(_, n)| n.as_str()).collect::<Vec<_>>().join(", ")
            ))),
        }
    }

    #[cfg(feature = "run")]
    fn run_file(&self, file: &Utf8Path) -> Result<(), ExpectedError> {
        use crate::errors::print_stdout;

        let wasm = read_input(file)?;
        let opts = forkify_host::RunOptions {
            buffer_size: self.buffer_size,
            max_processes: self.max_processes,
        };
        let report =
            forkify_host::run(&wasm, &opts).map_err(|error| ExpectedError::RunRefused {
                path: file.to_owned(),
                error,
            })?;
        if self.json {
            let mut text = serde_json::to_string_pretty(&report.to_json())
                .map_err(|e| ExpectedError::Unexpected(e.into()))?;
            text.push('\n');
            print_stdout(&text)?;
        } else {
            print_stdout(&report.render())?;
        }
        match report.root_status() {
            Some(status) if status.success() => Ok(()),
            Some(status) => Err(ExpectedError::GuestFailed {
                path: file.to_owned(),
                status: status.to_string(),
            }),
            None => Err(ExpectedError::GuestFailed {
                path: file.to_owned(),
                status: "never ran".into(),
            }),
        }
    }

    #[cfg(not(feature = "run"))]
    fn run_file(&self, file: &Utf8Path) -> Result<(), ExpectedError> {
        let _ = (
            read_input,
            file,
            self.json,
            self.buffer_size,
            self.max_processes,
        );
        Err(ExpectedError::NotBuiltIn(
            "this cargo-forkify was built without the `run` feature (the reference host)",
        ))
    }
}
