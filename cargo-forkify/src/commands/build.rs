//! `cargo forkify build`: its flags, and the pipeline run with them
//! (`pipeline/`), plus `--emit-host`.

use super::ForkImportOpts;
use crate::cargo::opts::{
    CargoOpts, CompileOpts, FeatureOpts, GlobalOpts, ManifestOpts, MessageFormat, PackageOpts,
    TargetOpts,
};
use crate::errors::ExpectedError;
use crate::pipeline::{Built, Session};

/// Build wasm targets with cargo and instrument them so fork() works.
///
/// Runs `cargo build` for each target triple (--target, else `targets` in
/// [package|workspace.metadata.forkify], else build.target, else
/// wasm32-unknown-unknown), then instruments every .wasm bin, cdylib and
/// example of the selected packages in parallel, writing
/// <target-dir>/<triple>/<profile>/forkify/<name>.wasm and a
/// forkify-manifest.json beside them. cargo's own artifacts are never
/// modified; unchanged inputs are skipped (--force redoes them).
#[derive(Debug, clap::Args)]
#[command(after_help = super::after_help(&[
    "cargo forkify build --release",
    "cargo forkify build -p hello-fork --target wasm32-unknown-unknown --target wasm64-unknown-unknown",
    "cargo +nightly forkify build --target wasm64-unknown-unknown",
    "cargo forkify build --message-format json | jq 'select(.reason == \"forkify-artifact\")'",
    "cargo forkify build -- --timings",
]))]
pub(crate) struct BuildOpts {
    #[command(flatten)]
    global: GlobalOpts,
    /// Output format: human (standard error) or json (cargo's JSON messages
    /// plus forkify-artifact and forkify-finished records on standard output)
    #[arg(long, value_enum, value_name = "FMT", default_value_t)]
    message_format: MessageFormat,
    /// Instrument again even the artifacts that are unchanged since the last run
    #[arg(long)]
    force: bool,
    /// Also write a host for the outputs beside them: `js` writes
    /// `forkify-host.mjs`, the JavaScript host for Node and browsers
    #[arg(long, value_enum, value_name = "KIND")]
    emit_host: Option<HostKind>,
    #[command(flatten)]
    imports: ForkImportOpts,
    #[command(flatten)]
    packages: PackageOpts,
    #[command(flatten)]
    targets: TargetOpts,
    #[command(flatten)]
    features: FeatureOpts,
    #[command(flatten)]
    compile: CompileOpts,
    #[command(flatten)]
    manifest: ManifestOpts,
    /// Extra arguments for `cargo build`, after `--`
    #[arg(last = true, value_name = "CARGO-ARGS")]
    cargo_args: Vec<String>,
}

/// A host `--emit-host` can write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum HostKind {
    /// `forkify-host.mjs`: the JavaScript host (ES module) for Node and browsers.
    Js,
}

/// Writes the JavaScript host into every `forkify/` directory that got
/// outputs (beside their manifest).
fn emit_js_host(built: &Built) -> Result<(), ExpectedError> {
    for manifest in &built.outcome.manifests {
        let Some(dir) = manifest.parent() else {
            continue;
        };
        let path = dir.join(crate::templates::HOST_JS_FILE);
        crate::atomic::write_atomic(&path, crate::templates::host_js().as_bytes())
            .map_err(|error| ExpectedError::WriteOutput { path, error })?;
    }
    Ok(())
}

impl BuildOpts {
    pub(crate) fn exec(&self) -> Result<(), ExpectedError> {
        let opts = CargoOpts {
            packages: self.packages.clone(),
            targets: self.targets.clone(),
            features: self.features.clone(),
            compile: self.compile.clone(),
            manifest: self.manifest.clone(),
            global: self.global.clone(),
            extra: self.cargo_args.clone(),
        };
        let session = Session::new(&opts, self.message_format)?;
        let built = session.build(&opts, self.force, &self.imports.fork_imports);
        let built = match (built, self.emit_host) {
            (Ok(b), Some(HostKind::Js)) => emit_js_host(&b).map(|()| b),
            (other, _) => other,
        };
        session.finish(built)?;
        Ok(())
    }
}
