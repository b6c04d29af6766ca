//! Running `$CARGO build --message-format=json-render-diagnostics` (or the
//! JSON format the user asked for) for one target triple and collecting the
//! `.wasm` files of the selected packages from its `compiler-artifact`
//! messages. Cargo owns the terminal while it runs (its standard error is
//! inherited); its standard output is parsed here and each line is sent as
//! an event. Nothing here prints.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use camino::{Utf8Path, Utf8PathBuf};
use cargo_metadata::{Artifact, Message};

use super::opts::CargoOpts;
use super::toolchain::{TargetSetup, BUILD_STD};
use super::workspace::{BuildPlan, TripleGroup};
use crate::errors::ExpectedError;
use crate::events::{Event, Reporter};

/// A `.wasm` file cargo built for a selected package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct WasmArtifact {
    pub package_id: cargo_metadata::PackageId,
    pub package: String,
    /// The cargo target's name.
    pub target: String,
    /// `bin`, `cdylib` or `example`.
    pub kind: String,
    pub triple: String,
    /// cargo's file (a hard link into `deps/`; never modified).
    pub path: Utf8PathBuf,
    /// cargo did not rebuild it.
    pub fresh: bool,
}

/// The argv (after `cargo`) of the build for one group.
pub(crate) fn build_args(
    opts: &CargoOpts,
    plan: &BuildPlan,
    group: &TripleGroup,
    setup: TargetSetup,
    message_format: &str,
    cwd: &Utf8Path,
) -> Vec<String> {
    let mut args = vec![
        "build".to_string(),
        format!("--message-format={message_format}"),
    ];
    if plan.uniform {
        opts.packages.push_args(&mut args);
    } else {
        for &i in &group.packages {
            args.extend(["--package".into(), plan.packages[i].name.clone()]);
        }
    }
    opts.targets.push_args(&mut args);
    opts.features.push_args(&mut args);
    opts.compile.push_args(&mut args);
    args.extend(["--target".into(), group.triple.clone()]);
    if opts.compile.target_dir.is_some() {
        args.extend(["--target-dir".into(), plan.target_dir.to_string()]);
    }
    if let Some(m) = &opts.manifest.manifest_path {
        args.extend([
            "--manifest-path".into(),
            super::workspace::absolute(m, cwd).to_string(),
        ]);
    }
    opts.manifest.push_lock_args(&mut args);
    opts.global.push_verbosity_args(&mut args);
    opts.global.push_config_args(&mut args);
    if setup.build_std {
        args.push(format!("-Z{BUILD_STD}"));
    }
    args.extend(opts.extra.iter().cloned());
    args
}

/// Runs one cargo build and returns the `.wasm` artifacts of `selected`
/// packages (package id -> name; ids are compared, never parsed). A
/// failed build is `ExpectedError::Cargo` with cargo's code.
pub(crate) fn run(
    cargo: &OsStr,
    args: &[String],
    triple: &str,
    selected: &BTreeMap<String, String>,
    reporter: &dyn Reporter,
) -> Result<Vec<WasmArtifact>, ExpectedError> {
    let shown = format!("cargo {}", args.join(" "));
    reporter.report(Event::Verbose {
        verb: "Running",
        message: format!("`{shown}`"),
    });
    let mut child = Command::new(cargo)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|error| ExpectedError::CargoSpawn {
            cargo: cargo.to_string_lossy().into_owned(),
            error,
        })?;
    let mut artifacts = Vec::new();
    if let Some(stdout) = child.stdout.take() {
        for line in BufReader::new(stdout).lines() {
            let line = line.map_err(|e| {
                ExpectedError::Unexpected(anyhow::anyhow!("cannot read cargo's output: {e}"))
            })?;
            match Message::parse_stream(line.as_bytes()).next() {
                Some(Ok(Message::TextLine(_))) | None | Some(Err(_)) => {
                    reporter.report(Event::CargoText(line));
                    continue;
                }
                Some(Ok(Message::CompilerArtifact(a))) => {
                    artifacts.extend(wasm_artifacts(&a, triple, selected));
                }
                Some(Ok(_)) => {}
            }
            reporter.report(Event::CargoMessage(line));
        }
    }
    let status = child
        .wait()
        .map_err(|e| ExpectedError::Unexpected(anyhow::anyhow!("cannot wait for cargo: {e}")))?;
    if !status.success() {
        return Err(ExpectedError::Cargo {
            command: format!("cargo build --target {triple}"),
            status: status.to_string(),
            code: status.code(),
        });
    }
    Ok(artifacts)
}

/// The `.wasm` files of one artifact message, if its package is selected.
fn wasm_artifacts(
    a: &Artifact,
    triple: &str,
    selected: &BTreeMap<String, String>,
) -> Vec<WasmArtifact> {
    let Some(package) = selected.get(&a.package_id.repr) else {
        return Vec::new();
    };
    let kind = if a.target.is_example() {
        "example"
    } else if a.target.is_bin() {
        "bin"
    } else {
        "cdylib"
    };
    a.filenames
        .iter()
        .filter(|f| f.extension() == Some("wasm"))
        .map(|f| WasmArtifact {
            package_id: a.package_id.clone(),
            package: package.clone(),
            target: a.target.name.clone(),
            kind: kind.to_string(),
            triple: triple.to_string(),
            path: f.clone(),
            fresh: a.fresh,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn artifact_messages_yield_wasm_files_of_selected_packages() {
        let line = r#"{"reason":"compiler-artifact","package_id":"path+file:///w/hello-fork#0.1.0","manifest_path":"/w/hello-fork/Cargo.toml","target":{"kind":["bin"],"crate_types":["bin"],"name":"hello-fork","src_path":"/w/hello-fork/src/main.rs","edition":"2021","doc":true,"doctest":false,"test":true},"profile":{"opt_level":"2","debuginfo":0,"debug_assertions":false,"overflow_checks":false,"test":false},"features":[],"filenames":["/t/wasm32-unknown-unknown/release/hello-fork.wasm"],"executable":"/t/wasm32-unknown-unknown/release/hello-fork.wasm","fresh":true}"#;
        let Some(Ok(Message::CompilerArtifact(a))) = Message::parse_stream(line.as_bytes()).next()
        else {
            panic!("not an artifact message");
        };
        let selected: BTreeMap<String, String> = [(
            "path+file:///w/hello-fork#0.1.0".to_string(),
            "hello-fork".to_string(),
        )]
        .into();
        let found = wasm_artifacts(&a, "wasm32-unknown-unknown", &selected);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].package, "hello-fork");
        assert_eq!(found[0].kind, "bin");
        assert!(found[0].fresh);
        assert!(wasm_artifacts(&a, "wasm32-unknown-unknown", &BTreeMap::new()).is_empty());
    }
}
