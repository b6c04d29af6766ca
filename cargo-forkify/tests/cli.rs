//! End-to-end tests of the `cargo-forkify` binary: argument layout, exit
//! codes, messages and files left behind.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use forkify_abi::{AbiSection, SectionInfo, ABI_VERSION, FLAG_ABORT_ON_OVERFLOW, SECTION_NAME};

/// Runs `cargo-forkify forkify ARGS…`, as cargo does for `cargo forkify ARGS…`.
fn forkify(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cargo-forkify"))
        .arg("forkify")
        .args(args)
        .output()
        .expect("the binary runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A fresh, empty directory for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("cli")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> String {
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("write fixture");
    path.to_str().expect("utf-8 path").to_string()
}

fn leb(mut n: usize) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return out;
        }
        out.push(byte | 0x80);
    }
}

fn with_section(mut wasm: Vec<u8>, payload: &[u8]) -> Vec<u8> {
    let mut body = leb(SECTION_NAME.len());
    body.extend_from_slice(SECTION_NAME.as_bytes());
    body.extend_from_slice(payload);
    wasm.push(0);
    wasm.extend(leb(body.len()));
    wasm.extend(body);
    wasm
}

fn section(version: u32) -> Vec<u8> {
    AbiSection {
        version,
        pointer_width: 4,
        flags: FLAG_ABORT_ON_OVERFLOW,
        frame_header_size: 16,
        frames_offset: 8,
        instrumented_functions: 1,
        max_frame_size: 16,
        abort_reserve: 16,
        info: SectionInfo {
            tool: "hand-written test".into(),
            fork_imports: vec!["kernel.kernel_fork".into()],
        },
    }
    .encode()
}

/// A module that forks once and follows ABI 1 by hand (its `_start` has
/// nothing before the fork, so replay needs no frame): the child writes
/// "child", the parent "parent" and exits with the child's status (4).
const HAND_INSTRUMENTED: &str = r#"(module
  (import "kernel" "kernel_fork" (func $fork (result i32)))
  (import "kernel" "kernel_exit" (func $exit (param i32)))
  (import "kernel" "kernel_write" (func $write (param i32 i32)))
  (import "kernel" "kernel_waitpid" (func $waitpid (param i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "parent\n")
  (data (i32.const 32) "child\n")
  (global $state (mut i32) (i32.const 0))
  (global $buf (mut i32) (i32.const 0))
  (func (export "wpk_fork_unwind_begin") (param $b i32)
    (global.set $state (i32.const 1)) (global.set $buf (local.get $b))
    (i32.store (local.get $b) (i32.add (local.get $b) (i32.const 8))))
  (func (export "wpk_fork_unwind_end") (global.set $state (i32.const 0)) (global.set $buf (i32.const 0)))
  (func (export "wpk_fork_rewind_begin") (param $b i32)
    (global.set $state (i32.const 2)) (global.set $buf (local.get $b)))
  (func (export "wpk_fork_rewind_end") (global.set $state (i32.const 0)) (global.set $buf (i32.const 0)))
  (func (export "wpk_fork_state") (result i32) (global.get $state))
  (func (export "_start") (local $r i32)
    (local.set $r (call $fork))
    (if (i32.eq (global.get $state) (i32.const 1)) (then (return)))
    (if (i32.eqz (local.get $r))
      (then (call $write (i32.const 32) (i32.const 6)) (call $exit (i32.const 4))))
    (call $write (i32.const 16) (i32.const 7))
    (call $exit (call $waitpid (local.get $r)))))"#;

/// A module that imports the fork but was never instrumented.
const NOT_INSTRUMENTED: &str = r#"(module
  (import "kernel" "kernel_fork" (func $fork (result i32)))
  (memory (export "memory") 1)
  (func (export "_start") (drop (call $fork))))"#;

fn hand_instrumented() -> Vec<u8> {
    with_section(
        wat::parse_str(HAND_INSTRUMENTED).expect("parses"),
        &section(ABI_VERSION),
    )
}

#[test]
fn abi_prints_the_described_abi_as_json() {
    let out = forkify(&["abi"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("abi prints JSON");
    assert_eq!(json, forkify_abi::describe());
    assert_eq!(json["abi_version"], serde_json::json!(ABI_VERSION));
}

#[test]
fn help_and_usage_errors() {
    let out = forkify(&["--help"]);
    assert_eq!(out.status.code(), Some(0));
    let help = stdout(&out);
    for word in [
        "instrument",
        "explain",
        "abi",
        "run",
        "check",
        "Exit status",
    ] {
        assert!(help.contains(word), "help lacks {word}:\n{help}");
    }
    let out = forkify(&[
        "instrument",
        "in.wasm",
        "-o",
        "out.wasm",
        "--fork-import",
        "nodot",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("module.name"), "{}", stderr(&out));
    let out = forkify(&["no-such-command"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    // Without the `forkify` that cargo inserts, the binary explains itself.
    let out = Command::new(env!("CARGO_BIN_EXE_cargo-forkify"))
        .arg("abi")
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn check_rejects_a_module_that_is_not_instrumented() {
    let dir = scratch("check_rejects");
    let plain = write(
        &dir,
        "plain.wasm",
        &wat::parse_str(NOT_INSTRUMENTED).expect("parses"),
    );
    let out = forkify(&["check", &plain]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("plain.wasm") && err.contains("not instrumented"),
        "{err}"
    );
}

#[test]
fn check_accepts_an_artifact_and_reports_each_failure_on_one_line() {
    let dir = scratch("check_mixed");
    let good = write(&dir, "good.wasm", &hand_instrumented());
    let out = forkify(&["check", &good]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("good.wasm: ok"), "{}", stdout(&out));

    let future = write(
        &dir,
        "future.wasm",
        &with_section(
            wat::parse_str(HAND_INSTRUMENTED).expect("parses"),
            &section(ABI_VERSION + 1),
        ),
    );
    let garbage = write(&dir, "garbage.wasm", b"not wasm at all");
    let out = forkify(&["check", &good, &future, &garbage]);
    assert_eq!(out.status.code(), Some(4));
    let err = stderr(&out);
    let lines: Vec<&str> = err.lines().collect();
    assert!(
        lines
            .iter()
            .any(|l| l.contains("future.wasm") && l.contains("ABI version")),
        "{err}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("garbage.wasm") && l.contains("not a valid")),
        "{err}"
    );
    assert!(!err.contains("good.wasm"), "{err}");
    // Asking for the future version flips the verdicts.
    let out = forkify(&["check", &future, "--abi", &(ABI_VERSION + 1).to_string()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[test]
fn instrument_refuses_garbage_and_leaves_no_file() {
    let dir = scratch("instrument_garbage");
    let input = write(
        &dir,
        "garbage.wasm",
        b"\0asm\x01\0\0\0 this is not a module",
    );
    let output = dir.join("out.wasm");
    let out = forkify(&["instrument", &input, "-o", output.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stderr(&out).contains("garbage.wasm"), "{}", stderr(&out));
    assert!(
        !output.exists(),
        "a failed instrument left {}",
        output.display()
    );
    let left: Vec<_> = std::fs::read_dir(&dir)
        .expect("read dir")
        .filter_map(Result::ok)
        .map(|e| e.file_name())
        .collect();
    assert_eq!(left.len(), 1, "temporary files left behind: {left:?}");
}

#[test]
fn instrument_reports_an_unreadable_input() {
    let dir = scratch("instrument_missing");
    let missing = dir.join("missing.wasm");
    let out = forkify(&[
        "instrument",
        missing.to_str().expect("utf-8"),
        "-o",
        "unused.wasm",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("missing.wasm"), "{}", stderr(&out));
}

#[test]
#[cfg(feature = "run")]
fn run_forks_and_reports_the_guest_status() {
    let dir = scratch("run_forks");
    let file = write(&dir, "fork.wasm", &hand_instrumented());
    let out = forkify(&["run", &file]);
    // The parent exits with its child's status, 4: the guest failed.
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    assert_eq!(stdout(&out), "[2] child\n[1] parent\n");
    assert!(
        stderr(&out).contains("fork.wasm") && stderr(&out).contains("status 4"),
        "{}",
        stderr(&out)
    );

    let out = forkify(&["run", &file, "--json"]);
    let json: serde_json::Value =
        serde_json::from_str(&stdout(&out)).expect("run --json prints JSON");
    assert_eq!(json["processes"][0]["pid"], 1);
    assert_eq!(
        json["processes"][0]["status"],
        serde_json::json!({ "exited": 4 })
    );
    assert_eq!(json["processes"][1]["parent"], 1);
    assert_eq!(json["processes"][1]["stdout"], "child\n");

    // A buffer below frames_offset + abort_reserve: fork fails with ENOMEM
    // in the guest, which then exits with waitpid(-12) = ECHILD.
    let out = forkify(&["run", &file, "--buffer-size", "8"]);
    assert_eq!(out.status.code(), Some(5));
    assert_eq!(stdout(&out), "[1] parent\n");
}

#[test]
#[cfg(feature = "run")]
fn run_exits_zero_when_the_guest_does() {
    let dir = scratch("run_ok");
    let wat = r#"(module
      (import "kernel" "kernel_write" (func $write (param i32 i32)))
      (memory (export "memory") 1)
      (data (i32.const 0) "hello\n")
      (func (export "_start") (call $write (i32.const 0) (i32.const 6))))"#;
    let file = write(&dir, "hello.wasm", &wat::parse_str(wat).expect("parses"));
    let out = forkify(&["run", &file]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "[1] hello\n");
}

#[test]
#[cfg(feature = "run")]
fn run_refuses_a_module_that_is_not_instrumented() {
    let dir = scratch("run_refuses");
    let file = write(
        &dir,
        "plain.wasm",
        &wat::parse_str(NOT_INSTRUMENTED).expect("parses"),
    );
    let out = forkify(&["run", &file]);
    assert_eq!(out.status.code(), Some(4));
    let err = stderr(&out);
    assert!(
        err.contains("plain.wasm") && err.contains("cargo forkify instrument"),
        "{err}"
    );
}

// The tests below need the real instrumenter (forkify_instrument::instrument
// and explain); they pass once it has landed.

const FORKING: &str = r#"(module
  (import "kernel" "kernel_fork" (func $fork (result i32)))
  (import "kernel" "kernel_exit" (func $exit (param i32)))
  (import "kernel" "kernel_write" (func $write (param i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "parent\n")
  (data (i32.const 32) "child\n")
  (func $spawn (result i32) (call $fork))
  (func $main (export "_start") (local $r i32)
    (local.set $r (call $spawn))
    (if (i32.eqz (local.get $r))
      (then (call $write (i32.const 32) (i32.const 6)) (call $exit (i32.const 0))))
    (call $write (i32.const 16) (i32.const 7))))"#;

#[test]
#[cfg(feature = "run")]
fn instrument_then_check_then_run() {
    let dir = scratch("instrument_pipeline");
    let input = write(&dir, "in.wasm", &wat::parse_str(FORKING).expect("parses"));
    let output = dir.join("out.wasm");
    let output = output.to_str().expect("utf-8");
    let out = forkify(&["instrument", &input, "-o", output, "--stats"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("spawn"),
        "--stats lists instrumented functions:\n{}",
        stderr(&out)
    );
    let out = forkify(&["check", output]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = forkify(&["run", output]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "[2] child\n[1] parent\n");
    // Instrumenting twice is refused, and the earlier output stays.
    let again = dir.join("again.wasm");
    let out = forkify(&["instrument", output, "-o", again.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(3));
    assert!(stderr(&out).contains("out.wasm"), "{}", stderr(&out));
    assert!(!again.exists());
}

#[test]
fn explain_prints_the_chain_to_the_fork_import() {
    let dir = scratch("explain");
    let input = write(&dir, "in.wasm", &wat::parse_str(FORKING).expect("parses"));
    let out = forkify(&["explain", &input, "main"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "main -> spawn -> kernel.kernel_fork");
}
