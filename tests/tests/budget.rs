//! The generated-code budget and the ABI 1 §8 refusals, on small modules
//! written next to the assertions. Each budget test also runs its module on
//! the reference host, so a cheaper shape that forks wrongly still fails.

use forkify_host::{ExitStatus, RunOptions};
use forkify_instrument::{Config, Error, Instrumented};

/// The kernel imports and a `$say(n)` that prints one digit and a newline.
const KERNEL: &str = r#"
  (import "kernel" "kernel_fork" (func $fork (result i32)))
  (import "kernel" "kernel_exit" (func $exit (param i32)))
  (import "kernel" "kernel_write" (func $write (param i32 i32)))
  (memory (export "memory") 1)
  (func $say (param $n i32)
    (i32.store8 (i32.const 0) (i32.add (i32.const 48) (local.get $n)))
    (i32.store8 (i32.const 1) (i32.const 10))
    (call $write (i32.const 0) (i32.const 2)))
"#;

fn module(body: &str) -> Vec<u8> {
    let text = format!("(module {KERNEL} {body})");
    wat::parse_str(&text).unwrap_or_else(|e| panic!("test WAT does not compile:\n{e}\n{text}"))
}

fn instrument(wasm: &[u8]) -> Instrumented {
    forkify_instrument::instrument(wasm, &Config::default())
        .unwrap_or_else(|e| panic!("instrument() failed: {e}"))
}

fn locals_added(out: &Instrumented, name: &str) -> u32 {
    out.report
        .functions
        .iter()
        .find(|f| f.name == name)
        .unwrap_or_else(|| panic!("{name} not instrumented: {:#?}", out.report))
        .locals_added
}

/// Runs and returns (pid, stdout, status) per process.
fn run(out: &Instrumented) -> Vec<(i32, String, ExitStatus)> {
    let r = forkify_host::run(&out.bytes, &RunOptions::default()).expect("host run");
    r.processes
        .into_iter()
        .map(|p| (p.pid, p.stdout, p.status))
        .collect()
}

/// Both processes print what `$child`/`$parent` compute after the fork.
const TABLE: &str = r#"
  (type $t (func (param i32) (result i32)))
  (table 4 funcref)
  (elem (i32.const 2) $forker)
  (func $forker (type $t) (i32.add (local.get 0) (call $fork)))
  (data (i32.const 64) "\02\00\00\00")
"#;

#[test]
fn a_spilled_table_index_reuses_a_dead_local() {
    // The index comes from memory (not recomputable), so it is spilled;
    // `$dead` is written before it is read after the call, so it is dead
    // at the call and takes the spill.
    let out = instrument(&module(&format!(
        r#"{TABLE}
        (func $_start (export "_start") (local $r i32) (local $dead i32)
          (local.set $r (call_indirect (type $t) (i32.const 5) (i32.load (i32.const 64))))
          (local.set $dead (i32.const 1))
          (call $say (i32.add (local.get $dead) (i32.gt_u (local.get $r) (i32.const 5)))))"#
    )));
    assert_eq!(
        locals_added(&out, "_start"),
        0,
        "the spill must reuse `$dead`"
    );
    // Child: fork returned 0, r = 5, prints 1. Parent: r = 5 + 2, prints 2.
    assert_eq!(
        run(&out),
        vec![
            (1, "2\n".into(), ExitStatus::Exited(0)),
            (2, "1\n".into(), ExitStatus::Exited(0))
        ]
    );
}

#[test]
fn a_spill_declares_a_local_only_when_none_is_dead() {
    // `$r` is live across the call (read after it): no dead i32 exists.
    let out = instrument(&module(&format!(
        r#"{TABLE}
        (func $_start (export "_start") (local $r i32)
          (local.set $r (i32.const 3))
          (drop (call_indirect (type $t) (local.get $r) (i32.load (i32.const 64))))
          (call $say (local.get $r)))"#
    )));
    assert_eq!(
        locals_added(&out, "_start"),
        1,
        "one spill local, declared once"
    );
    assert_eq!(
        run(&out),
        vec![
            (1, "3\n".into(), ExitStatus::Exited(0)),
            (2, "3\n".into(), ExitStatus::Exited(0))
        ]
    );
}

#[test]
fn a_pure_table_index_is_recomputed_not_spilled() {
    // `$k + 1` is built from a local and a non-trapping add: recomputed on
    // replay from the restored `$k`. `$k` is live after the call, so a
    // spill would have had to declare a local.
    let out = instrument(&module(&format!(
        r#"{TABLE}
        (func $_start (export "_start") (local $k i32)
          (local.set $k (i32.const 1))
          (drop (call_indirect (type $t) (i32.const 0) (i32.add (local.get $k) (i32.const 1))))
          (call $say (local.get $k)))"#
    )));
    assert_eq!(locals_added(&out, "_start"), 0);
    assert_eq!(
        run(&out),
        vec![
            (1, "1\n".into(), ExitStatus::Exited(0)),
            (2, "1\n".into(), ExitStatus::Exited(0))
        ]
    );
}

fn refusal(body: &str) -> (String, String) {
    match forkify_instrument::instrument(&module(body), &Config::default()) {
        Err(Error::Unsupported {
            function, reason, ..
        }) => (function, reason),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn a_reference_local_live_across_a_fork_is_refused_by_name() {
    let (function, reason) = refusal(
        r#"(func $holds_ref (export "_start") (local $r externref)
             (local.set $r (ref.null extern))
             (drop (call $fork))
             (drop (ref.is_null (local.get $r))))"#,
    );
    assert_eq!(function, "holds_ref");
    assert!(
        reason.contains("reference-typed local") && reason.contains("§8"),
        "{reason}"
    );
}

#[test]
fn every_refused_function_is_named_in_one_error() {
    let wasm = module(
        r#"(func $first (local $r externref)
             (local.set $r (ref.null extern))
             (drop (call $fork))
             (drop (ref.is_null (local.get $r))))
           (func $second
             (ref.null func)
             (drop (call $fork))
             (drop))
           (func $_start (export "_start") (call $first) (call $second))"#,
    );
    let err = forkify_instrument::instrument(&wasm, &Config::default())
        .expect_err("two functions ABI 1 cannot unwind");
    let Error::Unsupported {
        function,
        reason,
        others,
    } = &err
    else {
        panic!("expected a refusal, got {err:?}");
    };
    assert_eq!(function, "first", "{err}");
    assert!(reason.contains("reference-typed local"), "{reason}");
    assert_eq!(others.len(), 1, "{err}");
    assert_eq!(others[0].0, "second", "{err}");
    assert!(others[0].1.contains("reference-typed operand"), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("function first:") && text.contains("function second:"),
        "{text}"
    );
}

#[test]
fn a_reference_operand_below_a_fork_is_refused_by_name() {
    let (function, reason) = refusal(
        r#"(func $keeps_ref (export "_start")
             (ref.null func)
             (drop (call $fork))
             (drop))"#,
    );
    assert_eq!(function, "keeps_ref");
    assert!(
        reason.contains("reference-typed operand") && reason.contains("§8"),
        "{reason}"
    );
}

#[test]
fn a_fork_in_a_legacy_catch_handler_is_refused_by_name() {
    let (function, reason) = refusal(
        r#"(tag $e)
           (func $handler (export "_start")
             try
               throw $e
             catch $e
               call $fork
               drop
             end)"#,
    );
    assert_eq!(function, "handler");
    assert!(reason.contains("legacy `catch`"), "{reason}");
}

#[test]
fn a_module_without_memory_is_refused_with_the_reason() {
    let text = r#"(module (import "kernel" "kernel_fork" (func $fork (result i32)))
        (func (export "_start") (drop (call $fork))))"#;
    let err = forkify_instrument::instrument(&wat::parse_str(text).unwrap(), &Config::default())
        .unwrap_err();
    assert!(err.to_string().contains("no memory"), "{err}");
}
