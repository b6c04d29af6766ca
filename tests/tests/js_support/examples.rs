//! Building a `cargo forkify new` project for wasm32, and
//! `examples/expected.json` in the JSON shape of a RunReport. The Rust
//! programs of `examples/` are built by `forkify_tests::examples`.

use std::path::Path;
use std::process::Command;

use forkify_tests::examples::BUILD_ENV;
use forkify_tests::{repo_root, run_checked, target_dir};
use serde_json::{json, Value};

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
    run_checked(&mut cmd, |shown| {
        format!("building the project failed: {shown}\n")
    });
    let path = build_dir.join(format!("wasm32-unknown-unknown/debug/{name}.wasm"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
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
