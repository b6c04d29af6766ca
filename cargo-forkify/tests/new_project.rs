//! `cargo forkify new` and `cargo forkify build --emit-host js`: a project
//! made from the template builds, its output forks on the reference host,
//! and the JavaScript host lands beside the outputs.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use forkify_host::{ExitStatus, RunOptions};

fn forkify_in(cwd: &Path, args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cargo-forkify"));
    cmd.arg("forkify").args(args).current_dir(cwd);
    for var in [
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("CARGO_TERM_COLOR", "never");
    cmd.output().expect("cargo-forkify runs")
}

fn ok(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed ({:?}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_new_project_builds_forks_and_gets_the_js_host() {
    let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("forkify-new");
    let project = root.join("forker");
    let _ = std::fs::remove_dir_all(&project);
    std::fs::create_dir_all(&root).expect("tmp dir");

    ok(&forkify_in(&root, &["new", "forker"]), "new");
    // Refuses to overwrite what it just made.
    let again = forkify_in(&root, &["new", "forker"]);
    assert_eq!(
        again.status.code(),
        Some(2),
        "new over a non-empty directory must be a usage error"
    );

    ok(
        &forkify_in(&project, &["build", "--emit-host", "js"]),
        "build --emit-host js",
    );
    let out_dir = project.join("target/wasm32-unknown-unknown/debug/forkify");
    let js = std::fs::read_to_string(out_dir.join("forkify-host.mjs"))
        .expect("forkify-host.mjs written");
    assert_eq!(
        js,
        cargo_forkify::templates::host_js(),
        "the emitted host is the template"
    );

    let wasm = std::fs::read(out_dir.join("forker.wasm")).expect("instrumented output");
    let report =
        forkify_host::run(&wasm, &RunOptions::default()).expect("runs on the reference host");
    let pids: Vec<(i32, Option<i32>)> =
        report.processes.iter().map(|p| (p.pid, p.parent)).collect();
    assert_eq!(
        pids,
        vec![(1, None), (2, Some(1))],
        "one fork: {}",
        report.render()
    );
    assert_eq!(
        report.processes[0].status,
        ExitStatus::Exited(0),
        "{}",
        report.render()
    );
    assert!(
        report.processes[1].stdout.contains("child"),
        "{}",
        report.render()
    );
}
