//! Cargo's own flags as `cargo forkify build` and `run` accept them, grouped
//! under cargo's help headings, and their re-serialisation into argv for the
//! inner `cargo metadata` and `cargo build`. Nothing here runs cargo.
//!
//! Cargo consumes its global flags (`cargo -v --locked forkify …`) before
//! running an external subcommand and does not forward them, so they are
//! accepted again after the subcommand; the matching `CARGO_*` environment
//! variables reach the inner cargo by inheritance and forkify's own output
//! through `cargo/config.rs`.

use camino::Utf8PathBuf;

/// Which packages to build.
#[derive(Debug, Clone, Default, clap::Args)]
#[command(next_help_heading = "Package selection")]
pub(crate) struct PackageOpts {
    /// Package to build (see `cargo help pkgid`; repeatable, globs allowed)
    #[arg(short = 'p', long = "package", value_name = "SPEC")]
    pub packages: Vec<String>,
    /// Build all packages in the workspace
    #[arg(long, alias = "all")]
    pub workspace: bool,
    /// Exclude packages from the build (with --workspace)
    #[arg(long, value_name = "SPEC", requires = "workspace")]
    pub exclude: Vec<String>,
}

impl PackageOpts {
    pub fn push_args(&self, args: &mut Vec<String>) {
        for p in &self.packages {
            args.extend(["--package".into(), p.clone()]);
        }
        if self.workspace {
            args.push("--workspace".into());
        }
        for p in &self.exclude {
            args.extend(["--exclude".into(), p.clone()]);
        }
    }
}

/// Which targets of the selected packages to build (`build`).
#[derive(Debug, Clone, Default, clap::Args)]
#[command(next_help_heading = "Target selection")]
pub(crate) struct TargetOpts {
    /// Build only this package's library (it must be a cdylib to give a .wasm)
    #[arg(long)]
    pub lib: bool,
    /// Build all binaries
    #[arg(long)]
    pub bins: bool,
    /// Build only the specified binary (repeatable)
    #[arg(long = "bin", value_name = "NAME")]
    pub bin: Vec<String>,
    /// Build all examples
    #[arg(long)]
    pub examples: bool,
    /// Build only the specified example (repeatable)
    #[arg(long = "example", value_name = "NAME")]
    pub example: Vec<String>,
}

impl TargetOpts {
    /// Whether any target-selection flag was given.
    pub fn any(&self) -> bool {
        self.lib || self.bins || !self.bin.is_empty() || self.examples || !self.example.is_empty()
    }

    pub fn push_args(&self, args: &mut Vec<String>) {
        if self.lib {
            args.push("--lib".into());
        }
        if self.bins {
            args.push("--bins".into());
        }
        for b in &self.bin {
            args.extend(["--bin".into(), b.clone()]);
        }
        if self.examples {
            args.push("--examples".into());
        }
        for e in &self.example {
            args.extend(["--example".into(), e.clone()]);
        }
    }
}

/// Which single program to run (`run`).
#[derive(Debug, Clone, Default, clap::Args)]
#[command(next_help_heading = "Target selection")]
pub(crate) struct RunTargetOpts {
    /// Name of the bin target to run
    #[arg(long = "bin", value_name = "NAME", conflicts_with = "example")]
    pub bin: Option<String>,
    /// Name of the example target to run
    #[arg(long = "example", value_name = "NAME")]
    pub example: Option<String>,
}

impl RunTargetOpts {
    /// The equivalent build selection.
    pub fn to_target_opts(&self) -> TargetOpts {
        TargetOpts {
            bin: self.bin.iter().cloned().collect(),
            example: self.example.iter().cloned().collect(),
            ..TargetOpts::default()
        }
    }
}

/// Features.
#[derive(Debug, Clone, Default, clap::Args)]
#[command(next_help_heading = "Feature selection")]
pub(crate) struct FeatureOpts {
    /// Space or comma separated list of features to activate
    #[arg(short = 'F', long = "features", value_name = "FEATURES")]
    pub features: Vec<String>,
    /// Activate all available features of all selected packages
    #[arg(long)]
    pub all_features: bool,
    /// Do not activate the `default` feature of the selected packages
    #[arg(long)]
    pub no_default_features: bool,
}

impl FeatureOpts {
    pub fn push_args(&self, args: &mut Vec<String>) {
        for f in &self.features {
            args.extend(["--features".into(), f.clone()]);
        }
        if self.all_features {
            args.push("--all-features".into());
        }
        if self.no_default_features {
            args.push("--no-default-features".into());
        }
    }
}

/// Profile, targets, target directory, jobs.
#[derive(Debug, Clone, Default, clap::Args)]
#[command(next_help_heading = "Compilation options")]
pub(crate) struct CompileOpts {
    /// Build artifacts in release mode, with optimizations
    #[arg(short = 'r', long)]
    pub release: bool,
    /// Build artifacts with the specified profile
    #[arg(long, value_name = "PROFILE-NAME")]
    pub profile: Option<String>,
    /// Build for the target triple (repeatable; default: the forkify config,
    /// then build.target, then wasm32-unknown-unknown)
    #[arg(long = "target", value_name = "TRIPLE")]
    pub targets: Vec<String>,
    /// Directory for all generated artifacts
    #[arg(long, value_name = "DIRECTORY")]
    pub target_dir: Option<Utf8PathBuf>,
    /// Number of parallel jobs, for cargo and for instrumenting; negative
    /// counts back from the number of CPUs
    #[arg(short = 'j', long, value_name = "N", allow_negative_numbers = true)]
    pub jobs: Option<String>,
}

impl CompileOpts {
    /// The flags for `cargo build`, except `--target` and `--target-dir`,
    /// which the build adds per triple and made absolute.
    pub fn push_args(&self, args: &mut Vec<String>) {
        if self.release {
            args.push("--release".into());
        }
        if let Some(p) = &self.profile {
            args.extend(["--profile".into(), p.clone()]);
        }
        if let Some(j) = &self.jobs {
            args.extend(["--jobs".into(), j.clone()]);
        }
    }
}

/// The manifest and the lock file.
#[derive(Debug, Clone, Default, clap::Args)]
#[command(next_help_heading = "Manifest options")]
pub(crate) struct ManifestOpts {
    /// Path to Cargo.toml
    #[arg(long, value_name = "PATH")]
    pub manifest_path: Option<Utf8PathBuf>,
    /// Assert that `Cargo.lock` will remain unchanged
    #[arg(long)]
    pub locked: bool,
    /// Run without accessing the network
    #[arg(long)]
    pub offline: bool,
    /// Equivalent to specifying both --locked and --offline
    #[arg(long)]
    pub frozen: bool,
}

impl ManifestOpts {
    /// `--locked`/`--offline`/`--frozen` (not the manifest path, which the
    /// caller makes absolute).
    pub fn push_lock_args(&self, args: &mut Vec<String>) {
        if self.locked {
            args.push("--locked".into());
        }
        if self.offline {
            args.push("--offline".into());
        }
        if self.frozen {
            args.push("--frozen".into());
        }
    }
}

/// The value of `--color`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum ColorChoice {
    /// Colour when standard error is a terminal.
    Auto,
    /// Always colour.
    Always,
    /// Never colour.
    Never,
}

impl ColorChoice {
    pub fn as_str(self) -> &'static str {
        match self {
            ColorChoice::Auto => "auto",
            ColorChoice::Always => "always",
            ColorChoice::Never => "never",
        }
    }

    /// Parses cargo's `term.color` value.
    pub fn parse(s: &str) -> Option<ColorChoice> {
        match s {
            "auto" => Some(ColorChoice::Auto),
            "always" => Some(ColorChoice::Always),
            "never" => Some(ColorChoice::Never),
            _ => None,
        }
    }
}

/// cargo's global flags, accepted after the subcommand.
#[derive(Debug, Clone, Default, clap::Args)]
pub(crate) struct GlobalOpts {
    /// Use verbose output (-vv very verbose); also passed to cargo
    #[arg(short = 'v', long, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Do not print cargo log messages nor the forkify summary
    #[arg(short = 'q', long, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Coloring
    #[arg(long, value_name = "WHEN", value_enum)]
    pub color: Option<ColorChoice>,
    /// Override a configuration value (KEY=VALUE or a TOML file)
    #[arg(long = "config", value_name = "KEY=VALUE|PATH")]
    pub config: Vec<String>,
    /// Unstable (nightly-only) flags to Cargo, see `cargo -Z help`
    #[arg(short = 'Z', value_name = "FLAG")]
    pub unstable: Vec<String>,
}

impl GlobalOpts {
    /// Flags shared by `cargo metadata` and `cargo build`.
    pub fn push_config_args(&self, args: &mut Vec<String>) {
        for c in &self.config {
            args.extend(["--config".into(), c.clone()]);
        }
        for z in &self.unstable {
            args.extend(["-Z".into(), z.clone()]);
        }
        if let Some(c) = self.color {
            args.extend(["--color".into(), c.as_str().into()]);
        }
    }

    /// `-v`/`-q` for `cargo build`.
    pub fn push_verbosity_args(&self, args: &mut Vec<String>) {
        if self.quiet {
            args.push("--quiet".into());
        }
        for _ in 0..self.verbose {
            args.push("--verbose".into());
        }
    }

    /// Whether `-Z build-std…` was given (then forkify adds none).
    pub fn has_build_std(&self) -> bool {
        self.unstable.iter().any(|z| z.starts_with("build-std"))
    }
}

/// The output format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum MessageFormat {
    /// Cargo's and forkify's usual output on standard error.
    #[default]
    Human,
    /// Like human, with cargo's short diagnostics.
    Short,
    /// cargo's JSON messages and forkify's records on standard output.
    Json,
    /// JSON, with cargo's short diagnostics in `rendered`.
    JsonDiagnosticShort,
    /// JSON, with ANSI colours in cargo's `rendered` diagnostics.
    JsonDiagnosticRenderedAnsi,
    /// JSON, with cargo rendering diagnostics on standard error.
    JsonRenderDiagnostics,
}

impl MessageFormat {
    /// Whether standard output carries JSON lines.
    pub fn is_json(self) -> bool {
        !matches!(self, MessageFormat::Human | MessageFormat::Short)
    }

    /// What `cargo build --message-format=` gets: always JSON, so the
    /// artifacts can be collected; human formats let cargo render
    /// diagnostics on standard error as a plain build would.
    pub fn cargo_value(self) -> &'static str {
        match self {
            MessageFormat::Human => "json-render-diagnostics",
            MessageFormat::Short => "json-render-diagnostics,json-diagnostic-short",
            MessageFormat::Json => "json",
            MessageFormat::JsonDiagnosticShort => "json-diagnostic-short",
            MessageFormat::JsonDiagnosticRenderedAnsi => "json-diagnostic-rendered-ansi",
            MessageFormat::JsonRenderDiagnostics => "json-render-diagnostics",
        }
    }
}

/// Everything that decides what cargo builds, shared by `build` and `run`.
#[derive(Debug, Clone, Default)]
pub(crate) struct CargoOpts {
    pub packages: PackageOpts,
    pub targets: TargetOpts,
    pub features: FeatureOpts,
    pub compile: CompileOpts,
    pub manifest: ManifestOpts,
    pub global: GlobalOpts,
    /// Arguments after `--`, appended to `cargo build` verbatim.
    pub extra: Vec<String>,
}

impl CargoOpts {
    /// The arguments of `cargo metadata` that matter for resolution.
    pub fn metadata_args(&self, manifest_path: Option<&camino::Utf8Path>) -> Vec<String> {
        let mut args = vec![
            "metadata".into(),
            "--format-version".into(),
            "1".into(),
            "--no-deps".into(),
        ];
        if let Some(m) = manifest_path {
            args.extend(["--manifest-path".into(), m.to_string()]);
        }
        self.manifest.push_lock_args(&mut args);
        self.global.push_config_args(&mut args);
        args
    }
}

/// The number of jobs `-j N` asks for: cargo's rule, negative counts back
/// from the number of CPUs, `default` is all of them.
pub(crate) fn parse_jobs(value: &str, cpus: usize) -> Result<usize, String> {
    if value == "default" {
        return Ok(cpus);
    }
    let n: i64 = value
        .parse()
        .map_err(|_| format!("`{value}` is not a number of jobs (an integer or `default`)"))?;
    match n {
        0 => Err("jobs may not be 0".into()),
        n if n > 0 => Ok(usize::try_from(n).unwrap_or(usize::MAX)),
        n => Ok(cpus
            .saturating_sub(usize::try_from(n.unsigned_abs()).unwrap_or(usize::MAX))
            .max(1)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_follow_cargo() {
        assert_eq!(parse_jobs("3", 8), Ok(3));
        assert_eq!(parse_jobs("-1", 8), Ok(7));
        assert_eq!(parse_jobs("-20", 8), Ok(1));
        assert_eq!(parse_jobs("default", 8), Ok(8));
        assert!(parse_jobs("0", 8).is_err());
        assert!(parse_jobs("many", 8).is_err());
    }

    #[test]
    fn flags_round_trip_to_cargo() {
        let opts = CargoOpts {
            packages: PackageOpts {
                packages: vec!["a".into()],
                ..Default::default()
            },
            targets: TargetOpts {
                bin: vec!["x".into()],
                examples: true,
                ..Default::default()
            },
            features: FeatureOpts {
                features: vec!["f1,f2".into()],
                no_default_features: true,
                ..Default::default()
            },
            compile: CompileOpts {
                profile: Some("dist".into()),
                jobs: Some("2".into()),
                ..Default::default()
            },
            global: GlobalOpts {
                verbose: 2,
                config: vec!["build.jobs=1".into()],
                unstable: vec!["build-std=std".into()],
                ..Default::default()
            },
            ..Default::default()
        };
        let mut args = Vec::new();
        opts.packages.push_args(&mut args);
        opts.targets.push_args(&mut args);
        opts.features.push_args(&mut args);
        opts.compile.push_args(&mut args);
        opts.global.push_verbosity_args(&mut args);
        opts.global.push_config_args(&mut args);
        assert_eq!(
            args.join(" "),
            "--package a --bin x --examples --features f1,f2 --no-default-features \
             --profile dist --jobs 2 --verbose --verbose --config build.jobs=1 -Z build-std=std"
        );
        assert!(opts.global.has_build_std());
        assert_eq!(
            opts.metadata_args(None).join(" "),
            "metadata --format-version 1 --no-deps --config build.jobs=1 -Z build-std=std"
        );
    }
}
