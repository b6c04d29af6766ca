//! Building a `cargo forkify new` project for wasm32. The Rust programs of
//! `examples/` are built by `forkify_testkit::examples`, and their expected
//! runs are `forkify_testkit::expected`.

use std::path::Path;
use std::process::Command;

use forkify_testkit::examples::BUILD_ENV;
use forkify_testkit::{run_checked, target_dir};

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
