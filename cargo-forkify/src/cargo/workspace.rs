//! Workspace resolution: runs `cargo metadata`, selects the packages the
//! way cargo would (`-p`, `--workspace`/`--exclude`, else the manifest's
//! package or the default members), reads their forkify configuration,
//! checks the pinned ABI, and resolves the target triples into a
//! [`BuildPlan`]. It builds nothing and prints nothing.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::process::{Command, Stdio};

use camino::{Utf8Path, Utf8PathBuf};
use cargo_metadata::{Metadata, MetadataCommand, Package, PackageId, Target};
use forkify_abi::ABI_VERSION;

use super::config::CargoConfig;
use super::opts::CargoOpts;
use super::project_config::{self, Effective};
use crate::errors::ExpectedError;

/// The triple used when nothing names one.
pub(crate) const DEFAULT_TRIPLE: &str = "wasm32-unknown-unknown";

/// A selected package.
#[derive(Debug, Clone)]
pub(crate) struct SelectedPackage {
    pub id: PackageId,
    pub name: String,
    pub config: Effective,
    /// Its targets that give a .wasm module by default: bins and cdylibs
    /// (name, kind).
    pub wasm_targets: Vec<(String, String)>,
}

/// The packages to build for one triple.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TripleGroup {
    pub triple: String,
    /// Indices into [`BuildPlan::packages`].
    pub packages: Vec<usize>,
}

/// What to build.
#[derive(Debug, Clone)]
pub(crate) struct BuildPlan {
    pub target_dir: Utf8PathBuf,
    pub packages: Vec<SelectedPackage>,
    pub groups: Vec<TripleGroup>,
    /// Whether every group builds every selected package (then cargo gets
    /// the user's own package flags; otherwise an explicit `-p` list).
    pub uniform: bool,
    /// Problems worth a warning (unknown config keys).
    pub warnings: Vec<String>,
}

impl BuildPlan {
    /// The selected package with this id.
    pub fn package(&self, id: &PackageId) -> Option<&SelectedPackage> {
        self.packages.iter().find(|p| &p.id == id)
    }
}

/// Runs `cargo metadata` (standard error inherited, so cargo's own
/// messages reach the user) and parses it.
pub(crate) fn load_metadata(
    cargo: &OsStr,
    opts: &CargoOpts,
    manifest: Option<&Utf8Path>,
) -> Result<Metadata, ExpectedError> {
    let args = opts.metadata_args(manifest);
    let out = Command::new(cargo)
        .args(&args)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|error| ExpectedError::CargoSpawn {
            cargo: cargo.to_string_lossy().into_owned(),
            error,
        })?;
    if !out.status.success() {
        return Err(ExpectedError::Cargo {
            command: format!("cargo {}", args.join(" ")),
            status: out.status.to_string(),
            code: out.status.code(),
        });
    }
    let text = String::from_utf8_lossy(&out.stdout);
    MetadataCommand::parse(text.as_ref()).map_err(|e| {
        ExpectedError::Unexpected(anyhow::anyhow!("cannot parse `cargo metadata` output: {e}"))
    })
}

/// The manifest cargo would use: `--manifest-path`, else the nearest
/// `Cargo.toml` from `cwd` up.
pub(crate) fn locate_manifest(
    manifest_path: Option<&Utf8Path>,
    cwd: &Utf8Path,
) -> Option<Utf8PathBuf> {
    match manifest_path {
        Some(p) => Some(absolute(p, cwd)),
        None => cwd
            .ancestors()
            .map(|d| d.join("Cargo.toml"))
            .find(|p| p.is_file()),
    }
}

/// `path` made absolute against `cwd`, with `.` and `..` resolved
/// lexically (so messages and the manifest show clean paths).
pub(crate) fn absolute(path: &Utf8Path, cwd: &Utf8Path) -> Utf8PathBuf {
    use camino::Utf8Component;
    let joined = if path.is_absolute() {
        path.to_owned()
    } else {
        cwd.join(path)
    };
    let mut out = Utf8PathBuf::new();
    for c in joined.components() {
        match c {
            Utf8Component::CurDir => {}
            Utf8Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other.as_str()),
        }
    }
    out
}

fn same_file(a: &Utf8Path, b: &Utf8Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// Resolves the plan. `manifest` is what [`locate_manifest`] found.
pub(crate) fn plan(
    metadata: &Metadata,
    opts: &CargoOpts,
    manifest: Option<&Utf8Path>,
    cwd: &Utf8Path,
    cargo_config: &CargoConfig,
) -> Result<BuildPlan, ExpectedError> {
    let mut warnings = Vec::new();
    let root_manifest = metadata.workspace_root.join("Cargo.toml");
    let config_error = |e: project_config::ConfigError| ExpectedError::Usage(e.to_string());
    let ws_table = project_config::parse(
        &metadata.workspace_metadata,
        "workspace",
        &root_manifest,
        &mut warnings,
    )
    .map_err(config_error)?;
    // The pin is checked before anything else is looked at.
    check_pin(
        ws_table
            .as_ref()
            .and_then(|t| t.abi.map(|a| (a, t.origin.to_string()))),
    )?;

    let members: Vec<&Package> = metadata.workspace_packages();
    let selected = select(metadata, &members, opts, manifest)?;
    let mut packages = Vec::new();
    for pkg in selected {
        let table =
            project_config::parse(&pkg.metadata, "package", &pkg.manifest_path, &mut warnings)
                .map_err(config_error)?;
        let config = project_config::merge(ws_table.as_ref(), table.as_ref());
        check_pin(config.abi.as_ref().map(|(a, o)| (*a, o.to_string())))?;
        packages.push(SelectedPackage {
            id: pkg.id.clone(),
            name: pkg.name.to_string(),
            config,
            wasm_targets: pkg.targets.iter().filter_map(wasm_target).collect(),
        });
    }

    if !opts.targets.any() && packages.iter().all(|p| p.wasm_targets.is_empty()) {
        let names: Vec<&str> = packages.iter().map(|p| p.name.as_str()).collect();
        return Err(ExpectedError::Usage(format!(
            "nothing to instrument: {} no bin or cdylib target, so building {} gives no .wasm module \
             (an rlib is not a module); add a `[[bin]]`, set `[lib] crate-type = [\"cdylib\"]`, or select \
             examples with --example NAME / --examples",
            if names.len() == 1 { format!("package `{}` has", names[0]) } else { format!("packages `{}` have", names.join("`, `")) },
            if names.len() == 1 { "it" } else { "them" },
        )));
    }

    let groups = triple_groups(&packages, opts, cargo_config)?;
    let uniform = groups.iter().all(|g| g.packages.len() == packages.len());
    let target_dir = match &opts.compile.target_dir {
        Some(d) => absolute(d, cwd),
        None => metadata.target_directory.clone(),
    };
    Ok(BuildPlan {
        target_dir,
        packages,
        groups,
        uniform,
        warnings,
    })
}

/// Fails when a pinned ABI differs from the one this tool emits.
fn check_pin(pin: Option<(u32, String)>) -> Result<(), ExpectedError> {
    match pin {
        Some((pinned, origin)) if pinned != ABI_VERSION => Err(ExpectedError::AbiPin {
            pinned,
            emitted: ABI_VERSION,
            origin,
            tool: env!("CARGO_PKG_VERSION").to_string(),
            binary: std::env::current_exe()
                .map(|p| p.display().to_string())
                .unwrap_or_else(|_| "cargo-forkify".into()),
        }),
        _ => Ok(()),
    }
}

/// A target that builds to a .wasm module by default: (name, kind).
fn wasm_target(t: &Target) -> Option<(String, String)> {
    if t.is_bin() {
        Some((t.name.clone(), "bin".into()))
    } else if t.is_cdylib()
        || (t.is_lib() && t.crate_types.iter().any(|c| c.to_string() == "cdylib"))
    {
        Some((t.name.clone(), "cdylib".into()))
    } else {
        None
    }
}

/// The packages cargo would build.
fn select<'m>(
    metadata: &'m Metadata,
    members: &[&'m Package],
    opts: &CargoOpts,
    manifest: Option<&Utf8Path>,
) -> Result<Vec<&'m Package>, ExpectedError> {
    let names = || {
        members
            .iter()
            .map(|p| p.name.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let p = &opts.packages;
    if p.workspace {
        for spec in &p.exclude {
            if !members.iter().any(|m| spec_matches(spec, m)) {
                return Err(ExpectedError::Usage(format!(
                    "--exclude `{spec}` matches no package of the workspace at {} (members: {})",
                    metadata.workspace_root,
                    names()
                )));
            }
        }
        let mut chosen: Vec<&Package> = members
            .iter()
            .copied()
            .filter(|m| !p.exclude.iter().any(|s| spec_matches(s, m)))
            .collect();
        for spec in &p.packages {
            chosen.extend(members.iter().copied().filter(|m| spec_matches(spec, m)));
        }
        return Ok(dedup(chosen));
    }
    if !p.packages.is_empty() {
        let mut chosen = Vec::new();
        for spec in &p.packages {
            let found: Vec<&Package> = members
                .iter()
                .copied()
                .filter(|m| spec_matches(spec, m))
                .collect();
            if found.is_empty() {
                return Err(ExpectedError::Usage(format!(
                    "package `{spec}` is not a member of the workspace at {} (members: {})",
                    metadata.workspace_root,
                    names()
                )));
            }
            chosen.extend(found);
        }
        return Ok(dedup(chosen));
    }
    // No flag: the manifest's own package, unless it is the workspace root,
    // whose default members are built.
    let root = metadata.workspace_root.join("Cargo.toml");
    if let Some(m) = manifest {
        if !same_file(m, &root) {
            if let Some(pkg) = members.iter().find(|p| same_file(&p.manifest_path, m)) {
                return Ok(vec![pkg]);
            }
        }
    }
    if metadata.workspace_default_members.is_available() {
        let defaults = metadata.workspace_default_packages();
        if !defaults.is_empty() {
            return Ok(defaults);
        }
    }
    Ok(metadata
        .root_package()
        .map_or_else(|| members.to_vec(), |r| vec![r]))
}

fn dedup(mut v: Vec<&Package>) -> Vec<&Package> {
    let mut seen = std::collections::BTreeSet::new();
    v.retain(|p| seen.insert(p.id.repr.clone()));
    v
}

/// Whether a package id spec (`name`, `name@version`, `name:version`, a
/// URL with `#name@version`, or a glob of names) names `pkg`.
pub(crate) fn spec_matches(spec: &str, pkg: &Package) -> bool {
    let fragment = match spec.rsplit_once('#') {
        Some((url, frag)) => {
            if frag.starts_with(|c: char| c.is_ascii_digit()) {
                // `path+file:///w/foo#0.1.0`: the name is the URL's last segment.
                let name = url.rsplit('/').next().unwrap_or(url);
                return name == pkg.name.as_str() && frag == pkg.version.to_string();
            }
            frag
        }
        None => spec,
    };
    let (name, version) = match fragment.split_once(['@', ':']) {
        Some((n, v)) => (n, Some(v)),
        None => (fragment, None),
    };
    let name_ok = if name.contains(['*', '?']) {
        glob(name.as_bytes(), pkg.name.as_bytes())
    } else {
        name == pkg.name.as_str()
    };
    name_ok && version.is_none_or(|v| pkg.version.to_string().starts_with(v))
}

/// `*` and `?` glob matching.
fn glob(pattern: &[u8], text: &[u8]) -> bool {
    match (pattern.first(), text.first()) {
        (None, None) => true,
        (Some(b'*'), _) => {
            glob(&pattern[1..], text) || (!text.is_empty() && glob(pattern, &text[1..]))
        }
        (Some(b'?'), Some(_)) => glob(&pattern[1..], &text[1..]),
        (Some(p), Some(t)) if p == t => glob(&pattern[1..], &text[1..]),
        _ => false,
    }
}

/// Whether a triple is WebAssembly.
pub(crate) fn is_wasm(triple: &str) -> bool {
    triple.starts_with("wasm32") || triple.starts_with("wasm64")
}

/// Triples per package: `--target`, else the package's or workspace's
/// `targets`, else `build.target`, else wasm32-unknown-unknown; grouped by
/// triple in first-seen order.
fn triple_groups(
    packages: &[SelectedPackage],
    opts: &CargoOpts,
    cargo_config: &CargoConfig,
) -> Result<Vec<TripleGroup>, ExpectedError> {
    let mut groups: BTreeMap<String, (usize, Vec<usize>)> = BTreeMap::new();
    for (i, pkg) in packages.iter().enumerate() {
        let (triples, origin): (Vec<String>, String) = if !opts.compile.targets.is_empty() {
            (opts.compile.targets.clone(), "--target".into())
        } else if let Some((t, origin)) = &pkg.config.targets {
            (t.clone(), format!("`targets` in {origin}"))
        } else if let Some(t) = &cargo_config.build_target {
            (t.value.clone(), format!("`build.target` in {}", t.origin))
        } else {
            (vec![DEFAULT_TRIPLE.to_string()], "the default".into())
        };
        for triple in triples {
            if !is_wasm(&triple) {
                return Err(ExpectedError::Usage(format!(
                    "`{triple}` (from {origin}) is not a WebAssembly target: cargo forkify instruments .wasm \
                     modules; use a wasm32-* or wasm64-* triple, e.g. --target {DEFAULT_TRIPLE}"
                )));
            }
            let next = groups.len();
            let entry = groups.entry(triple).or_insert((next, Vec::new()));
            if !entry.1.contains(&i) {
                entry.1.push(i);
            }
        }
    }
    let mut v: Vec<(usize, TripleGroup)> = groups
        .into_iter()
        .map(|(triple, (order, packages))| (order, TripleGroup { triple, packages }))
        .collect();
    v.sort_by_key(|(order, _)| *order);
    Ok(v.into_iter().map(|(_, g)| g).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cargo::config::Sourced;
    use crate::cargo::opts::{CompileOpts, PackageOpts, TargetOpts};

    /// `cargo metadata --no-deps` of examples/, recorded with its root
    /// rewritten to `/ws` (which does not exist: nothing here touches disk).
    fn recorded() -> Metadata {
        let text = include_str!("../../tests/fixtures/examples-metadata.json");
        MetadataCommand::parse(text).expect("the recorded metadata parses")
    }

    fn plan_with(
        opts: &CargoOpts,
        manifest: &str,
        config: &CargoConfig,
    ) -> Result<BuildPlan, ExpectedError> {
        plan(
            &recorded(),
            opts,
            Some(Utf8Path::new(manifest)),
            Utf8Path::new("/elsewhere"),
            config,
        )
    }

    fn names(plan: &BuildPlan) -> Vec<&str> {
        plan.packages.iter().map(|p| p.name.as_str()).collect()
    }

    fn packages(p: &[&str]) -> CargoOpts {
        CargoOpts {
            packages: PackageOpts {
                packages: p.iter().map(|s| s.to_string()).collect(),
                ..PackageOpts::default()
            },
            ..CargoOpts::default()
        }
    }

    #[test]
    fn selection_follows_cargo() {
        let none = CargoConfig::default();
        // The root of a virtual workspace: its default members.
        let p = plan_with(&CargoOpts::default(), "/ws/Cargo.toml", &none).expect("plan");
        assert_eq!(
            names(&p),
            [
                "forkify-guest",
                "hello-fork",
                "fork-tree",
                "deep-recursion",
                "fork-loop",
                "heap-data"
            ]
        );
        assert!(
            p.packages[0].wasm_targets.is_empty(),
            "an rlib gives no module"
        );
        assert_eq!(
            p.packages[1].wasm_targets,
            [("hello-fork".to_string(), "bin".to_string())]
        );
        assert_eq!(
            p.packages[1].config.abi.as_ref().map(|a| a.0),
            Some(1),
            "the examples pin ABI 1"
        );
        assert_eq!(
            p.groups,
            [TripleGroup {
                triple: DEFAULT_TRIPLE.into(),
                packages: (0..6).collect()
            }]
        );
        assert!(p.uniform);
        assert_eq!(p.target_dir, "/ws/target");
        // A member's manifest: that package.
        let p = plan_with(&CargoOpts::default(), "/ws/hello-fork/Cargo.toml", &none).expect("plan");
        assert_eq!(names(&p), ["hello-fork"]);
        // -p with globs, versions and URLs.
        let p = plan_with(
            &packages(&["fork-*", "hello-fork@0.1.0"]),
            "/ws/Cargo.toml",
            &none,
        )
        .expect("plan");
        assert_eq!(names(&p), ["fork-tree", "fork-loop", "hello-fork"]);
        let p = plan_with(
            &packages(&["path+file:///ws/heap-data#0.1.0"]),
            "/ws/Cargo.toml",
            &none,
        )
        .expect("plan");
        assert_eq!(names(&p), ["heap-data"]);
        // --workspace --exclude.
        let opts = CargoOpts {
            packages: PackageOpts {
                workspace: true,
                exclude: vec!["forkify-guest".into(), "*-data".into()],
                ..PackageOpts::default()
            },
            ..CargoOpts::default()
        };
        let p = plan_with(&opts, "/ws/hello-fork/Cargo.toml", &none).expect("plan");
        assert_eq!(
            names(&p),
            ["hello-fork", "fork-tree", "deep-recursion", "fork-loop"]
        );
        // Nothing that gives a module, or nothing at all.
        let e = plan_with(&packages(&["forkify-guest"]), "/ws/Cargo.toml", &none)
            .expect_err("no module");
        assert!(
            matches!(&e, ExpectedError::Usage(m) if m.contains("package `forkify-guest` has no bin or cdylib")),
            "{e}"
        );
        let e = plan_with(&packages(&["nope"]), "/ws/Cargo.toml", &none).expect_err("no package");
        assert!(
            e.to_string().contains("members: forkify-guest, hello-fork"),
            "{e}"
        );
        // ... unless examples are asked for: cargo decides then.
        let mut opts = packages(&["forkify-guest"]);
        opts.targets = TargetOpts {
            examples: true,
            ..TargetOpts::default()
        };
        assert!(plan_with(&opts, "/ws/Cargo.toml", &none).is_ok());
    }

    #[test]
    fn triples_come_from_flags_then_config_then_build_target() {
        let build_target = CargoConfig {
            build_target: Some(Sourced {
                value: vec!["wasm64-unknown-unknown".into()],
                origin: "/ws/.cargo/config.toml".into(),
            }),
            ..CargoConfig::default()
        };
        let p =
            plan_with(&packages(&["hello-fork"]), "/ws/Cargo.toml", &build_target).expect("plan");
        assert_eq!(p.groups[0].triple, "wasm64-unknown-unknown");
        let mut opts = packages(&["hello-fork", "fork-tree"]);
        opts.compile = CompileOpts {
            targets: vec![
                "wasm64-unknown-unknown".into(),
                "wasm32-unknown-unknown".into(),
            ],
            ..CompileOpts::default()
        };
        let p = plan_with(&opts, "/ws/Cargo.toml", &build_target).expect("plan");
        let triples: Vec<&str> = p.groups.iter().map(|g| g.triple.as_str()).collect();
        assert_eq!(
            triples,
            ["wasm64-unknown-unknown", "wasm32-unknown-unknown"],
            "in the order given"
        );
        assert!(p.uniform);
        opts.compile.targets = vec!["x86_64-unknown-linux-gnu".into()];
        let e = plan_with(&opts, "/ws/Cargo.toml", &build_target).expect_err("not wasm");
        assert!(
            e.to_string()
                .contains("(from --target) is not a WebAssembly target"),
            "{e}"
        );
        let native = CargoConfig {
            build_target: Some(Sourced {
                value: vec!["aarch64-apple-darwin".into()],
                origin: "/ws/.cargo/config.toml".into(),
            }),
            ..CargoConfig::default()
        };
        let e =
            plan_with(&packages(&["hello-fork"]), "/ws/Cargo.toml", &native).expect_err("not wasm");
        assert!(
            e.to_string()
                .contains("`build.target` in /ws/.cargo/config.toml"),
            "{e}"
        );
    }

    #[test]
    fn a_pin_other_than_the_tools_abi_fails_resolution() {
        let mut m = recorded();
        m.workspace_metadata = serde_json::json!({"forkify": {"abi": 7}});
        let e = plan(
            &m,
            &CargoOpts::default(),
            None,
            Utf8Path::new("/"),
            &CargoConfig::default(),
        )
        .expect_err("pin mismatch");
        assert!(
            matches!(
                e,
                ExpectedError::AbiPin {
                    pinned: 7,
                    emitted: 1,
                    ..
                }
            ),
            "{e}"
        );
        assert!(
            e.to_string()
                .contains("[workspace.metadata.forkify] in /ws/Cargo.toml"),
            "{e}"
        );
    }

    #[test]
    fn paths_are_made_absolute_and_clean() {
        let cwd = Utf8Path::new("/w/examples");
        assert_eq!(absolute(Utf8Path::new("../target/x"), cwd), "/w/target/x");
        assert_eq!(absolute(Utf8Path::new("./t"), cwd), "/w/examples/t");
        assert_eq!(absolute(Utf8Path::new("/abs/./p"), cwd), "/abs/p");
    }

    #[test]
    fn globs_and_triples() {
        assert!(glob(b"hello-*", b"hello-fork"));
        assert!(glob(b"*-fork", b"hello-fork"));
        assert!(glob(b"h?llo*", b"hello"));
        assert!(!glob(b"fork-*", b"hello-fork"));
        assert!(
            is_wasm("wasm32-unknown-unknown")
                && is_wasm("wasm64-unknown-unknown")
                && is_wasm("wasm32-wasip1")
        );
        assert!(!is_wasm("x86_64-unknown-linux-gnu"));
    }
}
