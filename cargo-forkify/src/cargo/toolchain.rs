//! The Rust toolchain behind `$CARGO`: is it nightly, is the standard
//! library of a target installed, does a tier-3 target need `-Zbuild-std`.
//! Missing pieces are installed with rustup, announced through an event
//! first; without rustup the error says what is missing and how to get it.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::errors::ExpectedError;
use crate::events::{Event, Reporter};

/// What `-Zbuild-std` builds for a tier-3 target.
pub(crate) const BUILD_STD: &str = "build-std=std,panic_abort";

/// The active toolchain, as `rustc -vV` and `--print sysroot` describe it.
#[derive(Debug, Clone)]
pub(crate) struct Toolchain {
    rustc: OsString,
    /// `release:` of `rustc -vV`, e.g. `1.95.0` or `1.97.0-nightly`.
    pub release: String,
    /// Whether `-Z` flags are accepted (nightly, dev, or RUSTC_BOOTSTRAP).
    pub unstable_ok: bool,
    sysroot: PathBuf,
}

/// How a target is built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TargetSetup {
    /// Add `-Zbuild-std=std,panic_abort`.
    pub build_std: bool,
}

/// Whether rustup ships no standard library for `triple` (tier 3), so it
/// must be built from source.
pub(crate) fn is_tier3(triple: &str) -> bool {
    triple.starts_with("wasm64-")
}

impl Toolchain {
    /// Finds the rustc that `cargo` will use: `$RUSTC`, else the `rustc`
    /// beside `cargo` (a toolchain's bin directory or rustup's proxies,
    /// which follow `RUSTUP_TOOLCHAIN` as cargo does), else `rustc`.
    pub fn probe(cargo: &OsStr) -> Result<Toolchain, ExpectedError> {
        let rustc = std::env::var_os("RUSTC")
            .filter(|r| !r.is_empty())
            .or_else(|| {
                let sibling = Path::new(cargo)
                    .with_file_name(format!("rustc{}", std::env::consts::EXE_SUFFIX));
                sibling.is_file().then(|| sibling.into_os_string())
            })
            .unwrap_or_else(|| OsString::from("rustc"));
        let shown = Path::new(&rustc).display().to_string();
        let run = |args: &[&str]| -> Result<String, ExpectedError> {
            let out = Command::new(&rustc)
                .args(args)
                .stderr(Stdio::piped())
                .output()
                .map_err(|e| {
                    ExpectedError::Toolchain(format!(
                        "cannot run `{shown}`: {e}; is a Rust toolchain installed?"
                    ))
                })?;
            if !out.status.success() {
                return Err(ExpectedError::Toolchain(format!(
                    "`{shown} {}` failed: {}",
                    args.join(" "),
                    String::from_utf8_lossy(&out.stderr).trim()
                )));
            }
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        };
        let version = run(&["-vV"])?;
        let release = version
            .lines()
            .find_map(|l| l.strip_prefix("release: "))
            .unwrap_or("unknown")
            .trim()
            .to_string();
        let bootstrap = std::env::var("RUSTC_BOOTSTRAP").is_ok_and(|v| v == "1");
        let unstable_ok = release.contains("nightly") || release.contains("-dev") || bootstrap;
        let sysroot = PathBuf::from(run(&["--print", "sysroot"])?.trim());
        Ok(Toolchain {
            rustc,
            release,
            unstable_ok,
            sysroot,
        })
    }

    /// The rustup toolchain name: `RUSTUP_TOOLCHAIN`, else the sysroot's
    /// directory name when it lies in rustup's `toolchains/`.
    fn rustup_name(&self) -> Option<String> {
        if let Ok(t) = std::env::var("RUSTUP_TOOLCHAIN") {
            if !t.is_empty() {
                return Some(t);
            }
        }
        let parent = self.sysroot.parent()?;
        (parent.file_name()? == "toolchains")
            .then(|| {
                self.sysroot
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
            })
            .flatten()
    }

    /// The toolchain as `+name` for messages, or its release.
    fn describe(&self) -> String {
        match self.rustup_name() {
            Some(n) => format!("toolchain `{n}` (rustc {})", self.release),
            None => format!("rustc {}", self.release),
        }
    }

    /// Makes sure `triple` can be built: a tier-3 target gets build-std
    /// (nightly only, with rust-src); another gets its standard library
    /// installed with rustup when it is missing.
    pub fn prepare(
        &self,
        triple: &str,
        user_build_std: bool,
        reporter: &dyn Reporter,
    ) -> Result<TargetSetup, ExpectedError> {
        if is_tier3(triple) || user_build_std {
            if !self.unstable_ok {
                return Err(ExpectedError::Toolchain(format!(
                    "`{triple}` is a tier-3 target: rustup ships no standard library for it, so it is built \
                     from source with `-Z{BUILD_STD}`, which needs a nightly toolchain, and this is {}.\n  \
                     help: run `cargo +nightly forkify build --target {triple}` (once: `rustup toolchain install \
                     nightly --component rust-src`)",
                    self.describe()
                )));
            }
            let library = self.sysroot.join("lib/rustlib/src/rust/library");
            if !library.is_dir() {
                self.rustup_install(
                    &["component", "add", "rust-src"],
                    &format!("the rust-src component (`-Z{BUILD_STD}` for {triple} builds the standard library from it)"),
                    &library,
                    reporter,
                )?;
            }
            return Ok(TargetSetup {
                build_std: !user_build_std,
            });
        }
        let libdir = self.target_libdir(triple)?;
        if !libdir.is_dir() {
            self.rustup_install(
                &["target", "add", triple],
                &format!("the standard library for {triple}"),
                &libdir,
                reporter,
            )?;
        }
        Ok(TargetSetup { build_std: false })
    }

    fn target_libdir(&self, triple: &str) -> Result<PathBuf, ExpectedError> {
        let out = Command::new(&self.rustc)
            .args(["--print", "target-libdir", "--target", triple])
            .output()
            .map_err(|e| ExpectedError::Toolchain(format!("cannot run rustc: {e}")))?;
        if !out.status.success() {
            return Err(ExpectedError::Toolchain(format!(
                "{} does not know the target `{triple}`: {}",
                self.describe(),
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        Ok(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
    }

    /// Runs `rustup <args> --toolchain <name>` after saying so; rustup's
    /// output goes to standard error (standard output may carry JSON).
    fn rustup_install(
        &self,
        args: &[&str],
        what: &str,
        missing: &Path,
        reporter: &dyn Reporter,
    ) -> Result<(), ExpectedError> {
        let mut full: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        if let Some(name) = self.rustup_name() {
            full.extend(["--toolchain".into(), name]);
        }
        let command = format!("rustup {}", full.join(" "));
        let rustup_works = Command::new("rustup")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !rustup_works {
            return Err(ExpectedError::Toolchain(format!(
                "{what} is not installed for {} ({} does not exist), and rustup is not available to install it; \
                 install it with your Rust distribution, or install rustup and run `{command}`",
                self.describe(),
                missing.display()
            )));
        }
        reporter.report(Event::Status {
            verb: "Installing",
            message: format!("{what}: `{command}`"),
        });
        let status = Command::new("rustup")
            .args(&full)
            .stdin(Stdio::null())
            .stdout(std::io::stderr())
            .status()
            .map_err(|e| ExpectedError::Toolchain(format!("cannot run `{command}`: {e}")))?;
        if !status.success() {
            return Err(ExpectedError::Toolchain(format!(
                "`{command}` failed ({status}); {what} is needed for {}",
                self.describe()
            )));
        }
        Ok(())
    }
}
