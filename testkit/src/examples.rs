//! Building the Rust programs of `examples/` for `wasm32-unknown-unknown`
//! and `wasm64-unknown-unknown`, shared by `rust_programs.rs`, `engines.rs`
//! and `browser.rs`.
//!
//! # Building
//!
//! Each test binary builds the examples workspace once per target (a
//! [`OnceLock`]), by running cargo as a subprocess into its own target
//! directory, `target/examples-build` (or `$CARGO_TARGET_DIR/examples-build`
//! when that is an absolute path), the same for every test binary. It is
//! cached across runs, so only the first run pays for the build (on 2 cores:
//! about 1 s for wasm32, whose std is prebuilt, and about 30 s for wasm64,
//! which builds std); later runs take well under a second each.
//!
//! - wasm32: `$CARGO build --release --target wasm32-unknown-unknown`, with
//!   the toolchain running the tests. A missing rustup target is a failure
//!   that says to run `rustup target add wasm32-unknown-unknown`.
//! - wasm64: `rustup run nightly cargo build --release
//!   -Zbuild-std=std,panic_abort --target wasm64-unknown-unknown`. [`built`]
//!   returns `Err` (the tests then say `SKIPPED: ...` on stderr) only when
//!   there is no nightly toolchain or it lacks `rust-src`; any other build
//!   failure panics, failing the tests.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Instant;

use crate::paths::{describe_output, repo_root, say, target_dir};

/// The programs of the examples workspace, as named in `expected.json`.
pub const PROGRAMS: &[&str] = &[
    "hello-fork",
    "fork-tree",
    "deep-recursion",
    "fork-loop",
    "heap-data",
];

/// Environment variables that would make a cargo build run by the tests
/// use another target directory, target or codegen flags than asked for
/// (e.g. coverage flags meant for the host build); removed from each such
/// build.
pub const BUILD_ENV: &[&str] = &[
    "CARGO_TARGET_DIR",
    "CARGO_BUILD_TARGET_DIR",
    "CARGO_BUILD_TARGET",
    "RUSTFLAGS",
    "CARGO_ENCODED_RUSTFLAGS",
    "CARGO_BUILD_RUSTFLAGS",
];

/// What the toolchain running these tests set, which must not leak into
/// the nightly build (or `nightly` would not apply).
const TOOLCHAIN_ENV: &[&str] = &[
    "RUSTUP_TOOLCHAIN",
    "RUSTC",
    "RUSTDOC",
    "CARGO",
    "CARGO_BUILD_RUSTC",
    "CARGO_BUILD_RUSTDOC",
];

/// A wasm target of the examples.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// `wasm32-unknown-unknown`, with the toolchain running the tests.
    Wasm32,
    /// `wasm64-unknown-unknown`, nightly with `-Zbuild-std`.
    Wasm64,
}

impl Target {
    /// The target triple.
    pub fn triple(self) -> &'static str {
        match self {
            Target::Wasm32 => "wasm32-unknown-unknown",
            Target::Wasm64 => "wasm64-unknown-unknown",
        }
    }
}

/// The outcome of building the examples for one target.
#[derive(Debug)]
enum Build {
    /// The directory holding `<program>.wasm`.
    Built(PathBuf),
    /// The toolchain this target needs is absent; why.
    Skipped(String),
    /// Why the build failed.
    Failed(String),
}

/// `examples/`, the examples workspace.
pub fn examples_dir() -> PathBuf {
    repo_root().join("examples")
}

/// Where the examples are built: their own directory, so the build neither
/// waits on nor invalidates the workspace's or the examples' own target dir.
fn build_target_dir() -> PathBuf {
    target_dir().join("examples-build")
}

/// The directory holding the built (uninstrumented) `<program>.wasm` of
/// `target`, building the examples on the first call, or `Err` with why
/// the toolchain `target` needs is absent (the caller skips, saying
/// `SKIPPED: ...`). A failed build panics, on every call: it is cached, not
/// retried.
pub fn built(target: Target) -> Result<PathBuf, String> {
    static WASM32: OnceLock<Build> = OnceLock::new();
    static WASM64: OnceLock<Build> = OnceLock::new();
    let build = match target {
        Target::Wasm32 => WASM32.get_or_init(build_wasm32),
        Target::Wasm64 => WASM64.get_or_init(build_wasm64),
    };
    match build {
        Build::Built(dir) => Ok(dir.clone()),
        Build::Skipped(why) => Err(why.clone()),
        Build::Failed(why) => panic!("{why}"),
    }
}

fn cargo_build_command(cargo: Command, target: Target) -> Command {
    let mut cmd = cargo;
    cmd.arg("build").arg("--release");
    if target == Target::Wasm64 {
        cmd.arg("-Zbuild-std=std,panic_abort");
    }
    cmd.arg("--target")
        .arg(target.triple())
        .arg("--manifest-path")
        .arg(examples_dir().join("Cargo.toml"))
        .arg("--target-dir")
        .arg(build_target_dir())
        .current_dir(examples_dir());
    for var in BUILD_ENV {
        cmd.env_remove(var);
    }
    cmd
}

/// Runs a build command and turns its result into a [`Build`]; `hint` is
/// called on the stderr of a failed build for an extra explanation.
fn finish_build(mut cmd: Command, target: Target, hint: impl Fn(&str) -> Option<String>) -> Build {
    let shown = format!("{cmd:?}");
    let start = Instant::now();
    let out = match cmd.output() {
        Ok(out) => out,
        Err(e) => {
            return Build::Failed(format!(
                "cannot run the examples build for {}: {shown}: {e}",
                target.triple()
            ))
        }
    };
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let extra = hint(&stderr)
            .map(|h| format!("{h}\n\n"))
            .unwrap_or_default();
        return Build::Failed(format!(
            "{extra}building the examples for {} failed: {shown}\n{}",
            target.triple(),
            describe_output(&out)
        ));
    }
    say(&format!(
        "forkify-tests: examples built for {} in {:.1?}",
        target.triple(),
        start.elapsed()
    ));
    Build::Built(build_target_dir().join(target.triple()).join("release"))
}

fn wasm32_missing_hint(stderr: &str) -> Option<String> {
    let missing = stderr.contains("target may not be installed")
        || stderr.contains("can't find crate for `core`")
        || stderr.contains("can't find crate for `std`");
    missing.then(|| {
        "the wasm32-unknown-unknown target is not installed for this toolchain: \
         run `rustup target add wasm32-unknown-unknown` (CI installs it via scripts/setup.sh)"
            .to_string()
    })
}

fn build_wasm32() -> Build {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"));
    // Check the target up front so its absence is named, not buried in a
    // build log. `rustc` here is the one the build will use.
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| OsString::from("rustc"));
    if let Ok(out) = Command::new(&rustc)
        .args([
            "--print",
            "target-libdir",
            "--target",
            "wasm32-unknown-unknown",
        ])
        .output()
    {
        let libdir = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if out.status.success() && !libdir.is_empty() && !Path::new(&libdir).is_dir() {
            return Build::Failed(format!(
                "the wasm32-unknown-unknown target is not installed for this toolchain \
                 ({libdir} does not exist): run `rustup target add wasm32-unknown-unknown` \
                 (CI installs it via scripts/setup.sh)"
            ));
        }
    }
    finish_build(
        cargo_build_command(Command::new(cargo), Target::Wasm32),
        Target::Wasm32,
        wasm32_missing_hint,
    )
}

/// `rustup <args>` for the nightly toolchain, clear of what the running
/// toolchain set.
fn rustup(args: &[&str]) -> Command {
    let mut cmd = Command::new("rustup");
    cmd.args(args);
    for var in TOOLCHAIN_ENV {
        cmd.env_remove(var);
    }
    // Probing must never install anything.
    cmd.env("RUSTUP_AUTO_INSTALL", "0");
    cmd
}

fn build_wasm64() -> Build {
    let how = "install them with `rustup toolchain install nightly --component rust-src`";
    let toolchains = match rustup(&["toolchain", "list"]).output() {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).into_owned(),
        Ok(out) => {
            return Build::Failed(format!(
                "`rustup toolchain list` failed: {}",
                describe_output(&out)
            ))
        }
        Err(e) => {
            return Build::Skipped(format!(
                "wasm64 needs a nightly toolchain with rust-src via rustup, and rustup cannot run ({e}); {how}"
            ))
        }
    };
    // `nightly-<host>`, not a dated `nightly-2025-01-01-<host>`.
    let undated_nightly = |l: &str| {
        l.strip_prefix("nightly-")
            .is_some_and(|rest| !rest.starts_with(|c: char| c.is_ascii_digit()))
    };
    if !toolchains.lines().any(undated_nightly) {
        return Build::Skipped(format!(
            "wasm64 needs a nightly toolchain with rust-src and none is installed; {how}"
        ));
    }
    let sysroot = match rustup(&["run", "nightly", "rustc", "--print", "sysroot"]).output() {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).trim().to_string(),
        Ok(out) => {
            return Build::Failed(format!(
                "the nightly toolchain is installed but does not run \
                 (`rustup run nightly rustc --print sysroot`): {}",
                describe_output(&out)
            ))
        }
        Err(e) => return Build::Failed(format!("cannot run rustup: {e}")),
    };
    let library = Path::new(&sysroot).join("lib/rustlib/src/rust/library");
    if !library.is_dir() {
        return Build::Skipped(format!(
            "the nightly toolchain lacks the rust-src component ({} does not exist), \
             which -Zbuild-std needs; run `rustup component add rust-src --toolchain nightly`",
            library.display()
        ));
    }
    let mut cargo = rustup(&["run", "nightly", "cargo"]);
    cargo.env_remove("RUSTUP_AUTO_INSTALL");
    finish_build(
        cargo_build_command(cargo, Target::Wasm64),
        Target::Wasm64,
        |_| None,
    )
}
