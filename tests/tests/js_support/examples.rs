//! Building the Rust programs of `examples/` (wasm32 on the running
//! toolchain, wasm64 on nightly with `-Zbuild-std`) into the directory
//! `rust_programs.rs` uses, so the two share the build; building a
//! `cargo forkify new` project; and `examples/expected.json`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Instant;

use serde_json::{json, Value};

use super::{describe_output, repo_root, say, target_dir};

/// A wasm target of the examples.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// `wasm32-unknown-unknown`, stable.
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

/// The programs of `examples/`, as named in `expected.json`.
pub const PROGRAMS: &[&str] = &[
    "hello-fork",
    "fork-tree",
    "deep-recursion",
    "fork-loop",
    "heap-data",
];

/// Environment that would change where or how the examples build (the same
/// list as `rust_programs.rs`, which builds into the same directory, so the
/// two share the cache).
const BUILD_ENV: &[&str] = &[
    "CARGO_TARGET_DIR",
    "CARGO_BUILD_TARGET_DIR",
    "CARGO_BUILD_TARGET",
    "RUSTFLAGS",
    "CARGO_ENCODED_RUSTFLAGS",
    "CARGO_BUILD_RUSTFLAGS",
];

/// What the running toolchain set, which must not leak into `rustup run nightly`.
const TOOLCHAIN_ENV: &[&str] = &[
    "RUSTUP_TOOLCHAIN",
    "RUSTC",
    "RUSTDOC",
    "CARGO",
    "CARGO_BUILD_RUSTC",
    "CARGO_BUILD_RUSTDOC",
];

/// The directory holding the built `<program>.wasm` of `target`, or why the
/// toolchain for it is absent (`Err`, a skip). A failing build panics.
pub fn examples_built(target: Target) -> Result<PathBuf, String> {
    static WASM32: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    static WASM64: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let cell = match target {
        Target::Wasm32 => &WASM32,
        Target::Wasm64 => &WASM64,
    };
    cell.get_or_init(|| build_examples(target)).clone()
}

fn build_examples(target: Target) -> Result<PathBuf, String> {
    let examples = repo_root().join("examples");
    let build_dir = target_dir().join("examples-build");
    let mut cmd = match target {
        Target::Wasm32 => Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into())),
        Target::Wasm64 => {
            nightly_with_rust_src()?;
            let mut cmd = Command::new("rustup");
            cmd.args(["run", "nightly", "cargo"]);
            for var in TOOLCHAIN_ENV {
                cmd.env_remove(var);
            }
            cmd
        }
    };
    cmd.arg("build").arg("--release");
    if target == Target::Wasm64 {
        cmd.arg("-Zbuild-std=std,panic_abort");
    }
    cmd.arg("--target")
        .arg(target.triple())
        .arg("--manifest-path")
        .arg(examples.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&build_dir)
        .current_dir(&examples);
    for var in BUILD_ENV {
        cmd.env_remove(var);
    }
    let shown = format!("{cmd:?}");
    let start = Instant::now();
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run the examples build: {shown}: {e}"));
    assert!(
        out.status.success(),
        "building the examples for {} failed (wasm32 needs `rustup target add wasm32-unknown-unknown`): {shown}\n{}",
        target.triple(),
        describe_output(&out)
    );
    say(&format!(
        "js-host tests: examples built for {} in {:.1?}",
        target.triple(),
        start.elapsed()
    ));
    Ok(build_dir.join(target.triple()).join("release"))
}

/// Builds the crate at `dir` (a `cargo forkify new` project) for wasm32 as
/// a debug build into a cached target directory, and returns `<name>.wasm`.
pub fn build_project(dir: &Path, name: &str) -> Vec<u8> {
    let build_dir = target_dir().join("js-host-project-build");
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.args([
        "build",
        "--target",
        "wasm32-unknown-unknown",
        "--manifest-path",
    ])
    .arg(dir.join("Cargo.toml"))
    .arg("--target-dir")
    .arg(&build_dir)
    .current_dir(dir);
    for var in BUILD_ENV {
        cmd.env_remove(var);
    }
    let shown = format!("{cmd:?}");
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {shown}: {e}"));
    assert!(
        out.status.success(),
        "building the project failed: {shown}\n{}",
        describe_output(&out)
    );
    let path = build_dir.join(format!("wasm32-unknown-unknown/debug/{name}.wasm"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// `Ok` when `rustup run nightly` has rust-src (what wasm64 needs).
fn nightly_with_rust_src() -> Result<(), String> {
    let how = "wasm64 needs a nightly toolchain with rust-src: rustup toolchain install nightly --component rust-src";
    let mut cmd = Command::new("rustup");
    cmd.args(["run", "nightly", "rustc", "--print", "sysroot"])
        .env("RUSTUP_AUTO_INSTALL", "0");
    for var in TOOLCHAIN_ENV {
        cmd.env_remove(var);
    }
    let out = cmd.output().map_err(|e| format!("{how} (rustup: {e})"))?;
    if !out.status.success() {
        return Err(format!("{how} (no nightly toolchain)"));
    }
    let sysroot = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if !Path::new(&sysroot)
        .join("lib/rustlib/src/rust/library")
        .is_dir()
    {
        return Err(format!("{how} (nightly lacks rust-src)"));
    }
    Ok(())
}

/// `examples/expected.json`, parsed.
pub fn expected_json() -> Value {
    let path = repo_root().join("examples/expected.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The expected run of `program`, in the JSON shape of a RunReport
/// (`expected.json` writes a status as a bare number).
pub fn expected_report(program: &str) -> Value {
    let mut v = expected_json()[program].clone();
    assert!(v.is_object(), "examples/expected.json has no `{program}`");
    if let Some(procs) = v["processes"].as_array_mut() {
        for p in procs {
            let code = p["status"].clone();
            p["status"] = json!({ "exited": code });
        }
    }
    v
}
