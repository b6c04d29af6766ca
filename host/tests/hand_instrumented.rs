//! Tests of the reference host on hand-instrumented WAT modules that follow
//! ABI 1 by hand, so the host is tested independently of the instrumenter.

use forkify_abi::{AbiSection, SectionInfo, ABI_VERSION, FLAG_ABORT_ON_OVERFLOW, SECTION_NAME};
use forkify_host::{run, ExitStatus, ProcessReport, RunOptions, RunReport};

use forkify_testkit::wasm::with_custom_section as with_custom;

fn section(width: u8, frames_offset: u32, max_frame_size: u32) -> AbiSection {
    AbiSection {
        version: ABI_VERSION,
        pointer_width: width,
        flags: FLAG_ABORT_ON_OVERFLOW,
        frame_header_size: 16,
        frames_offset,
        instrumented_functions: 1,
        max_frame_size,
        abort_reserve: 16,
        info: SectionInfo {
            tool: "hand-written test".into(),
            fork_imports: vec!["kernel.kernel_fork".into()],
        },
    }
}

/// The five control exports of ABI §3 over `$state` and `$buf`, for
/// pointer type `ptr` and frames starting at `buf + fo`.
fn controls(ptr: &str, fo: u32) -> String {
    format!(
        r#"
  (global $state (mut i32) (i32.const 0))
  (global $buf (mut {ptr}) ({ptr}.const 0))
  (func (export "wpk_fork_unwind_begin") (param $b {ptr})
    (if (i32.ne (global.get $state) (i32.const 0)) (then unreachable))
    (global.set $state (i32.const 1))
    (global.set $buf (local.get $b))
    ({ptr}.store (local.get $b) ({ptr}.add (local.get $b) ({ptr}.const {fo}))))
  (func (export "wpk_fork_unwind_end")
    (if (i32.ne (global.get $state) (i32.const 1)) (then unreachable))
    (global.set $state (i32.const 0))
    (global.set $buf ({ptr}.const 0)))
  (func (export "wpk_fork_rewind_begin") (param $b {ptr})
    (if (i32.ne (global.get $state) (i32.const 0)) (then unreachable))
    (global.set $state (i32.const 2))
    (global.set $buf (local.get $b)))
  (func (export "wpk_fork_rewind_end")
    (if (i32.lt_u (global.get $state) (i32.const 2)) (then unreachable))
    (global.set $state (i32.const 0))
    (global.set $buf ({ptr}.const 0)))
  (func (export "wpk_fork_state") (result i32) (global.get $state))
"#
    )
}

/// One fork in `_start`, instrumented by hand: "before" is skipped on
/// replay; an unwind that leaves less than 64 bytes before `end` aborts
/// (ABI §6) by re-issuing the call in ABORTING. The child writes "child\n"
/// and a byte pair the parent stored before forking, then exits with
/// getpid() + 5; the parent writes "parent\n" and exits with
/// 10 * waitpid(child) + waitpid(child) (the second wait is ECHILD).
fn single_fork_wat(width: u8) -> String {
    let ptr = if width == 8 { "i64" } else { "i32" };
    let fo = if width == 8 { 16 } else { 8 };
    let mem = if width == 8 { "i64 1" } else { "1" };
    format!(
        r#"(module
  (import "kernel" "kernel_fork" (func $fork (result i32)))
  (import "kernel" "kernel_exit" (func $exit (param i32)))
  (import "kernel" "kernel_write" (func $write (param {ptr} {ptr})))
  (import "kernel" "kernel_waitpid" (func $waitpid (param i32) (result i32)))
  (import "kernel" "kernel_getpid" (func $getpid (result i32)))
  (memory (export "memory") {mem})
  (data ({ptr}.const 16) "parent\n")
  (data ({ptr}.const 32) "child\n")
  (data ({ptr}.const 48) "before\n")
  (data ({ptr}.const 64) "failed\n")
  {controls}
  (func (export "_start") (local $r i32)
    (if (i32.lt_u (global.get $state) (i32.const 2))
      (then
        (i32.store16 ({ptr}.const 100) (i32.const 0x0a58))
        (call $write ({ptr}.const 48) ({ptr}.const 7))))
    (local.set $r (call $fork))
    (if (i32.eq (global.get $state) (i32.const 1))
      (then
        (if ({ptr}.gt_u ({ptr}.add ({ptr}.load (global.get $buf)) ({ptr}.const 64))
                        ({ptr}.load offset={width} (global.get $buf)))
          (then (global.set $state (i32.const 3)) (local.set $r (call $fork)))
          (else (return)))))
    (if (i32.lt_s (local.get $r) (i32.const 0))
      (then
        (call $write ({ptr}.const 64) ({ptr}.const 7))
        (call $exit (i32.sub (i32.const 0) (local.get $r)))))
    (if (i32.eqz (local.get $r))
      (then
        (call $write ({ptr}.const 32) ({ptr}.const 6))
        (call $write ({ptr}.const 100) ({ptr}.const 2))
        (call $exit (i32.add (call $getpid) (i32.const 5)))))
    (call $write ({ptr}.const 16) ({ptr}.const 7))
    (call $exit (i32.add (i32.mul (call $waitpid (local.get $r)) (i32.const 10))
                         (call $waitpid (local.get $r))))))"#,
        controls = controls(ptr, fo),
    )
}

fn single_fork(width: u8) -> Vec<u8> {
    let fo = if width == 8 { 16 } else { 8 };
    let wasm = wat::parse_str(single_fork_wat(width)).expect("test module parses");
    with_custom(wasm, SECTION_NAME, &section(width, fo, 16).encode())
}

/// Two forks in a row with a local (`$a`) live across the second, saved in
/// a 24-byte frame: four processes.
fn two_forks() -> Vec<u8> {
    let wat = format!(
        r#"(module
  (import "kernel" "kernel_fork" (func $fork (result i32)))
  (import "kernel" "kernel_write" (func $write (param i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 48) "start\n")
  {controls}
  (func $save (param $idx i32) (param $a i32) (local $c i32)
    (local.set $c (i32.load (global.get $buf)))
    (i32.store (local.get $c) (i32.const 0))
    (i32.store offset=4 (local.get $c) (local.get $idx))
    (i64.store offset=8 (local.get $c) (i64.const 0))
    (i32.store offset=16 (local.get $c) (local.get $a))
    (i32.store (global.get $buf) (i32.add (local.get $c) (i32.const 24))))
  (func (export "_start") (local $a i32) (local $b i32) (local $f i32)
    (if (i32.ge_u (global.get $state) (i32.const 2))
      (then
        (local.set $f (i32.sub (i32.load (global.get $buf)) (i32.const 24)))
        (i32.store (global.get $buf) (local.get $f))
        (if (i32.ne (i32.load (local.get $f)) (i32.const 0)) (then unreachable))
        (local.set $a (i32.load offset=16 (local.get $f)))))
    (block $site1
      (block $site0
        (if (i32.ge_u (global.get $state) (i32.const 2))
          (then (br_table $site0 $site1 (i32.load offset=4 (local.get $f)))))
        (call $write (i32.const 48) (i32.const 6)))
      (local.set $a (call $fork))
      (if (i32.eq (global.get $state) (i32.const 1))
        (then (call $save (i32.const 0) (local.get $a)) (return))))
    (local.set $b (call $fork))
    (if (i32.eq (global.get $state) (i32.const 1))
      (then (call $save (i32.const 1) (local.get $a)) (return)))
    (i32.store8 (i32.const 200) (i32.add (i32.const 48) (local.get $a)))
    (i32.store8 (i32.const 201) (i32.add (i32.const 48) (local.get $b)))
    (i32.store8 (i32.const 202) (i32.const 10))
    (call $write (i32.const 200) (i32.const 3))))"#,
        controls = controls("i32", 8),
    );
    let wasm = wat::parse_str(wat).expect("test module parses");
    with_custom(wasm, SECTION_NAME, &section(4, 8, 24).encode())
}

fn run_ok(wasm: &[u8], opts: &RunOptions) -> RunReport {
    run(wasm, opts).unwrap_or_else(|e| panic!("host refused the module: {e:#}"))
}

fn log(report: &RunReport) -> Vec<(i32, &str)> {
    report.log.iter().map(|(p, s)| (*p, s.as_str())).collect()
}

fn assert_single_fork(width: u8) {
    let report = run_ok(&single_fork(width), &RunOptions::default());
    assert_eq!(
        report.processes,
        vec![
            ProcessReport {
                pid: 1,
                parent: None,
                stdout: "before\nparent\n".into(),
                // waitpid: 7, then ECHILD (-10).
                status: ExitStatus::Exited(60),
            },
            ProcessReport {
                pid: 2,
                parent: Some(1),
                stdout: "child\nX\n".into(),
                status: ExitStatus::Exited(7)
            },
        ]
    );
    assert_eq!(
        log(&report),
        vec![(1, "before\n"), (2, "child\n"), (2, "X\n"), (1, "parent\n")]
    );
    assert_eq!(
        report.render(),
        "[1] before\n[2] child\n[2] X\n[1] parent\n"
    );
}

#[test]
fn fork_runs_child_first_then_parent_wasm32() {
    assert_single_fork(4);
}

#[test]
fn fork_runs_child_first_then_parent_memory64() {
    assert_single_fork(8);
}

#[test]
fn nested_forks_build_a_process_tree() {
    let report = run_ok(&two_forks(), &RunOptions::default());
    let tree: Vec<_> = report
        .processes
        .iter()
        .map(|p| (p.pid, p.parent, p.stdout.as_str(), p.status.clone()))
        .collect();
    assert_eq!(
        tree,
        vec![
            (1, None, "start\n24\n", ExitStatus::Exited(0)),
            (2, Some(1), "03\n", ExitStatus::Exited(0)),
            (3, Some(2), "00\n", ExitStatus::Exited(0)),
            (4, Some(1), "20\n", ExitStatus::Exited(0)),
        ]
    );
    assert_eq!(
        report.render(),
        "[1] start\n[3] 00\n[2] 03\n[4] 20\n[1] 24\n"
    );
}

#[test]
fn buffer_smaller_than_the_section_minimum_fails_fork_without_unwinding() {
    for width in [4, 8] {
        let opts = RunOptions {
            buffer_size: 8,
            ..RunOptions::default()
        };
        let report = run_ok(&single_fork(width), &opts);
        assert_eq!(report.processes.len(), 1);
        assert_eq!(report.processes[0].stdout, "before\nfailed\n");
        assert_eq!(report.processes[0].status, ExitStatus::Exited(12));
    }
}

#[test]
fn an_aborted_unwind_fails_fork_with_enomem() {
    for width in [4, 8] {
        // Enough for frames_offset + abort_reserve, not for the 64 bytes
        // the hand-written unwind wants.
        let opts = RunOptions {
            buffer_size: 40,
            ..RunOptions::default()
        };
        let report = run_ok(&single_fork(width), &opts);
        assert_eq!(report.processes.len(), 1, "{report:?}");
        assert_eq!(report.processes[0].stdout, "before\nfailed\n");
        assert_eq!(report.processes[0].status, ExitStatus::Exited(12));
    }
}

#[test]
fn fork_beyond_max_processes_fails_with_eagain() {
    let opts = RunOptions {
        max_processes: 1,
        ..RunOptions::default()
    };
    let report = run_ok(&single_fork(4), &opts);
    assert_eq!(report.processes.len(), 1);
    assert_eq!(report.processes[0].status, ExitStatus::Exited(11));
}

/// A module that never forks, with `body` as `_start`.
fn plain(body: &str) -> Vec<u8> {
    wat::parse_str(format!(
        r#"(module
  (import "kernel" "kernel_exit" (func $exit (param i32)))
  (import "kernel" "kernel_write" (func $write (param i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "no newline")
  (func $deep (param $n i32) (result i32) (local $x i64) (local $y i64)
    (if (result i32) (i32.eqz (local.get $n))
      (then (i32.const 0))
      (else (i32.add (i32.const 1) (call $deep (i32.sub (local.get $n) (i32.const 1)))))))
  (func (export "_start") {body}))"#
    ))
    .expect("test module parses")
}

#[test]
fn modules_without_a_fork_import_run_unchanged() {
    let report = run_ok(
        &plain("(call $write (i32.const 0) (i32.const 10)) (call $exit (i32.const 3))"),
        &RunOptions::default(),
    );
    assert_eq!(report.processes.len(), 1);
    assert_eq!(report.processes[0].status, ExitStatus::Exited(3));
    assert_eq!(report.render(), "[1] no newline\n");

    let report = run_ok(&plain(""), &RunOptions::default());
    assert!(report.processes[0].status.success());
}

#[test]
fn traps_and_bad_kernel_calls_are_statuses() {
    let report = run_ok(&plain("unreachable"), &RunOptions::default());
    match &report.processes[0].status {
        ExitStatus::Trapped(msg) => assert!(msg.contains("unreachable"), "{msg}"),
        other => panic!("expected a trap, got {other:?}"),
    }
    let report = run_ok(
        &plain("(call $write (i32.const 65530) (i32.const 100))"),
        &RunOptions::default(),
    );
    match &report.processes[0].status {
        ExitStatus::Trapped(msg) => assert!(msg.contains("outside memory"), "{msg}"),
        other => panic!("expected a trap, got {other:?}"),
    }
}

#[test]
fn deep_recursion_fits_on_the_host_stack() {
    let body =
        "(if (i32.ne (call $deep (i32.const 200000)) (i32.const 200000)) (then unreachable))";
    let report = run_ok(&plain(body), &RunOptions::default());
    assert_eq!(
        report.processes[0].status,
        ExitStatus::Exited(0),
        "{report:?}"
    );
}

fn refusal(wasm: &[u8]) -> String {
    match run(wasm, &RunOptions::default()) {
        Ok(r) => panic!("expected a refusal, the module ran: {r:?}"),
        Err(e) => format!("{e:#}"),
    }
}

#[test]
fn refuses_modules_that_do_not_follow_the_abi() {
    let bare = wat::parse_str(single_fork_wat(4)).expect("test module parses");
    let msg = refusal(&bare);
    assert!(
        msg.contains("not instrumented") && msg.contains("cargo forkify instrument"),
        "{msg}"
    );

    let mut v2 = section(4, 8, 16);
    v2.version = ABI_VERSION + 1;
    let msg = refusal(&with_custom(bare.clone(), SECTION_NAME, &v2.encode()));
    assert!(
        msg.contains(&format!("ABI version {}", ABI_VERSION + 1)),
        "{msg}"
    );

    let msg = refusal(&with_custom(
        bare.clone(),
        SECTION_NAME,
        &section(8, 16, 16).encode(),
    ));
    assert!(msg.contains("pointer width 8"), "{msg}");

    let msg = refusal(&with_custom(bare.clone(), SECTION_NAME, b"FKAB"));
    assert!(msg.contains("bad `forkify.abi` section"), "{msg}");

    let no_state = wat::parse_str(single_fork_wat(4).replace("(export \"wpk_fork_state\")", ""))
        .expect("parses");
    let msg = refusal(&with_custom(
        no_state,
        SECTION_NAME,
        &section(4, 8, 16).encode(),
    ));
    assert!(msg.contains("wpk_fork_state"), "{msg}");

    let wrong_sig = wat::parse_str(single_fork_wat(4).replace(
        "(func (export \"wpk_fork_state\") (result i32) (global.get $state))",
        "(func (export \"wpk_fork_state\") (result i64) (i64.extend_i32_u (global.get $state)))",
    ))
    .expect("parses");
    let msg = refusal(&with_custom(
        wrong_sig,
        SECTION_NAME,
        &section(4, 8, 16).encode(),
    ));
    assert!(
        msg.contains("wpk_fork_state") && msg.contains("() -> (i64)"),
        "{msg}"
    );

    let no_start =
        wat::parse_str(single_fork_wat(4).replace("(export \"_start\")", "")).expect("parses");
    let msg = refusal(&with_custom(
        no_start,
        SECTION_NAME,
        &section(4, 8, 16).encode(),
    ));
    assert!(msg.contains("_start"), "{msg}");

    let msg = refusal(b"\0asm garbage");
    assert!(msg.contains("not a valid WebAssembly module"), "{msg}");
}

#[test]
fn render_prefixes_lines_and_to_json_summarises() {
    let report = RunReport {
        processes: vec![
            ProcessReport {
                pid: 1,
                parent: None,
                stdout: "ab\nc".into(),
                status: ExitStatus::Exited(0),
            },
            ProcessReport {
                pid: 2,
                parent: Some(1),
                stdout: "x\n".into(),
                status: ExitStatus::Trapped("boom".into()),
            },
        ],
        log: vec![(1, "a".into()), (2, "x\n".into()), (1, "b\nc".into())],
    };
    assert_eq!(report.render(), "[2] x\n[1] ab\n[1] c\n");
    assert_eq!(
        report.to_json(),
        serde_json::json!({ "processes": [
            { "pid": 1, "parent": null, "status": { "exited": 0 }, "stdout": "ab\nc" },
            { "pid": 2, "parent": 1, "status": { "trapped": "boom" }, "stdout": "x\n" },
        ]})
    );
}

#[test]
fn runaway_recursion_is_a_clean_trap() {
    let body = "(drop (call $deep (i32.const 0x7fffffff)))";
    let report = run_ok(&plain(body), &RunOptions::default());
    match &report.processes[0].status {
        ExitStatus::Trapped(msg) => assert!(msg.contains("stack"), "{msg}"),
        other => panic!("expected a stack overflow trap, got {other:?}"),
    }
}
