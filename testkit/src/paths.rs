//! Paths of the repository and its target directory, and the process
//! helpers the builds run by tests use.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("testkit/ has a parent")
        .to_path_buf()
}

/// The workspace's target directory: `$CARGO_TARGET_DIR` when that is an
/// absolute path, else `target/` in the repository root.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .unwrap_or_else(|| repo_root().join("target"))
}

/// Writes to the real stderr, past the test harness's output capture, so
/// skips (`SKIPPED: ...`) and build times show without `--nocapture`.
pub fn say(msg: &str) {
    let _ = writeln!(std::io::stderr(), "{msg}");
}

/// A subprocess's exit status, stdout and stderr, for a failure message.
pub fn describe_output(out: &Output) -> String {
    format!(
        "{}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Runs `cmd` and returns its output when it succeeds. Panics with
/// `cannot run <cmd>: <error>` when it cannot be started, and with
/// `failed(<cmd>)` followed by [`describe_output`] when it fails.
pub fn run_checked(cmd: &mut Command, failed: impl FnOnce(&str) -> String) -> Output {
    let shown = format!("{cmd:?}");
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {shown}: {e}"));
    if !out.status.success() {
        panic!("{}{}", failed(&shown), describe_output(&out));
    }
    out
}
