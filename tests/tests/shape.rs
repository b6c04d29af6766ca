//! Shape tests: what the instrumented module looks like, read with
//! wasmparser. They complement the runs of `fixtures.rs` (which check
//! behaviour) with the budgets and guarantees of abi/ABI.md and ARCHITECTURE.md that a
//! run cannot see: declared locals, block nesting, untouched functions,
//! pass-through, refusals, the frame header, the `forkify.abi` section and
//! the control exports.

mod fixture_support;

use std::collections::BTreeSet;

use fixture_support::{instrument_fixture, Fixture};
use forkify_abi::{self as abi, AbiSection};
use forkify_instrument::{Config, Error};
use forkify_testkit::module_info::{ModuleInfo, RawOp};
use forkify_testkit::wasm::custom_sections;
use wasmparser::ValType;

fn wat(text: &str) -> Vec<u8> {
    wat::parse_str(text).unwrap_or_else(|e| panic!("test WAT does not compile:\n{e}"))
}

fn instrument(wasm: &[u8]) -> forkify_instrument::Instrumented {
    forkify_instrument::instrument(wasm, &Config::default())
        .unwrap_or_else(|e| panic!("instrument() failed: {e}"))
}

/// Runs `check` on every fixture's input and instrumented output. A fixture
/// that fails (to instrument, or the check) does not hide the others: each
/// failure is printed as it happens and the test fails at the end naming
/// them all.
fn for_each_fixture(mut check: impl FnMut(&Fixture, &[u8], &forkify_instrument::Instrumented)) {
    let mut failed = Vec::new();
    for name in fixture_support::fixture_names() {
        let f = Fixture::load(&name);
        let ok = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let (input, out) = instrument_fixture(&f);
            check(&f, &input, &out);
        }));
        if ok.is_err() {
            failed.push(name);
        }
    }
    assert!(
        failed.is_empty(),
        "failed for these fixtures (see above): {failed:?}"
    );
}

/// ARCHITECTURE.md: "The ideal output for a recursive function declares exactly
/// the locals it had." The fork result is a carryover below the recursive
/// call, which the design keeps on the operand stack (stored by a helper
/// that pops it), so no local is needed.
#[test]
fn walk_keeps_its_declared_locals() {
    // Also the benchmark's depth probe `walk-wat`.
    let input = wat(include_str!("../probes/walk.wat"));
    let out = instrument(&input);
    let before = ModuleInfo::parse(&input);
    let after = ModuleInfo::parse(&out.bytes);
    let walk = |m: &ModuleInfo| {
        let (_, _, index) = m
            .exports
            .iter()
            .find(|(n, _, _)| n == "walk")
            .expect("walk export")
            .clone();
        m.func(index).expect("walk is defined").locals_per_type()
    };
    let (b, a) = (walk(&before), walk(&after));
    eprintln!("walk locals before {b:?}, after {a:?}");
    assert_eq!(a, b, "instrumenting $walk changed its declared locals");
    if let Some(fr) = out.report.functions.iter().find(|f| f.name == "walk") {
        assert_eq!(
            fr.locals_added, 0,
            "report says locals were added to walk: {fr:?}"
        );
    }
}

/// ARCHITECTURE.md: many call sites in one block use a bucketed dispatch so that
/// block nesting stays shallow.
#[test]
fn forty_sites_nesting_stays_shallow() {
    let f = Fixture::load("forty_sites");
    let (input, out) = instrument_fixture(&f);
    let before = ModuleInfo::parse(&input);
    let sites = before.func_named("sites").expect("$sites");
    let after = ModuleInfo::parse(&out.bytes);
    // By name when the output keeps the name section, else by index.
    let sites_after = after
        .func_named("sites")
        .or_else(|| after.func(sites.index))
        .expect("$sites in the output");
    let (before, after) = (sites.max_depth(), sites_after.max_depth());
    eprintln!("$sites block nesting: {before} before, {after} after instrumentation");
    // Dispatch adds one landing block per item of a bucket (16), a block
    // that skips to the next bucket, its own blocks (the state check, a
    // stub, the trap), and the function's shell (two blocks) to the two
    // levels $sites had: 40 sites must not mean 40 levels.
    assert!(
        after <= 24,
        "$sites nests {after} blocks deep after instrumentation (budget 24)"
    );
}

/// ABI §1: every function not on a fork path keeps its exact bytes, at its
/// own index. Locals and operators are compared first for a readable
/// message, then the bytes.
#[test]
fn untouched_functions_keep_their_code() {
    for_each_fixture(|f, input, out| {
        let before = ModuleInfo::parse(input);
        let after = ModuleInfo::parse(&out.bytes);
        let instrumented: BTreeSet<u32> = out.report.functions.iter().map(|r| r.index).collect();
        let mut problems = Vec::new();
        for orig in &before.funcs {
            if instrumented.contains(&orig.index) {
                continue;
            }
            let label = format!(
                "{}: {}",
                f.name,
                orig.name.clone().unwrap_or(format!("func[{}]", orig.index))
            );
            let now = after
                .func(orig.index)
                .unwrap_or_else(|| panic!("{label}: missing from the output"));
            if now.locals != orig.locals {
                problems.push(format!(
                    "{label}: declared locals changed from {:?} to {:?}",
                    orig.locals, now.locals
                ));
            } else if now.ops != orig.ops {
                problems.push(format!(
                    "{label}: operators changed\n{}",
                    first_difference(&orig.ops, &now.ops)
                ));
            } else if now.body != orig.body {
                problems.push(format!("{label}: same operators, different bytes"));
            }
        }
        assert!(problems.is_empty(), "{}", problems.join("\n"));
    });
}

/// The first place two operator lists differ, with a little context.
fn first_difference(before: &[String], after: &[String]) -> String {
    let at = before.iter().zip(after).take_while(|(a, b)| a == b).count();
    let from = at.saturating_sub(3);
    let show = |ops: &[String]| {
        ops.iter()
            .enumerate()
            .skip(from)
            .take(7)
            .map(|(i, op)| format!("    {i}: {op}\n"))
            .collect::<String>()
    };
    format!(
        "  first difference at operator {at} (of {} before, {} after)\n  before:\n{}  after:\n{}",
        before.len(),
        after.len(),
        show(before),
        show(after)
    )
}

/// ABI §1 / ARCHITECTURE.md (call graph): the instrumented functions are exactly the
/// ones that can reach the fork import, computed here independently.
#[test]
fn fork_path_is_what_the_call_graph_says() {
    for_each_fixture(|f, input, out| {
        let before = ModuleInfo::parse(input);
        let forks: Vec<String> = f
            .config()
            .fork_imports
            .iter()
            .map(|i| i.to_string())
            .collect();
        let want = before.fork_path(&forks);
        let have: BTreeSet<u32> = out.report.functions.iter().map(|r| r.index).collect();
        let name = |i: &u32| {
            before
                .func(*i)
                .and_then(|x| x.name.clone())
                .unwrap_or(format!("func[{i}]"))
        };
        assert_eq!(
            have.iter().map(name).collect::<Vec<_>>(),
            want.iter().map(name).collect::<Vec<_>>(),
            "{}: instrumented functions differ from the fork path",
            f.name
        );
        let ordinals: Vec<u32> = out.report.functions.iter().map(|r| r.ordinal).collect();
        let want_ordinals: Vec<u32> = (0..ordinals.len() as u32).collect();
        assert_eq!(
            ordinals, want_ordinals,
            "{}: ordinals must follow function-index order",
            f.name
        );
        let mut sorted = out
            .report
            .functions
            .iter()
            .map(|r| r.index)
            .collect::<Vec<_>>();
        sorted.sort();
        assert_eq!(
            sorted,
            out.report
                .functions
                .iter()
                .map(|r| r.index)
                .collect::<Vec<_>>()
        );
    });
}

/// ABI §1: a module that imports no fork import is passed through
/// byte-identical, including one whose `kernel_fork` comes from another
/// module than the configured `kernel`.
#[test]
fn module_without_fork_import_is_byte_identical() {
    for text in [
        r#"(module
             (import "kernel" "kernel_write" (func $write (param i32 i32)))
             (memory (export "memory") 1)
             (data (i32.const 16) "hi\n")
             (func (export "_start") (call $write (i32.const 16) (i32.const 3))))"#,
        r#"(module
             (import "env" "kernel_fork" (func $fork (result i32)))
             (memory (export "memory") 1)
             (func (export "_start") (drop (call $fork))))"#,
    ] {
        let input = wat(text);
        let out = instrument(&input);
        assert!(
            out.bytes == input,
            "output differs from the input for\n{text}"
        );
        assert!(
            out.report.passed_through,
            "report.passed_through is false for\n{text}"
        );
        assert!(custom_sections(&out.bytes, abi::SECTION_NAME).is_empty());
    }
}

/// ABI §1 passes through only modules that import no fork import: one that
/// imports it without calling it is instrumented, with no function on a
/// fork path.
#[test]
fn fork_import_never_called_is_still_instrumented() {
    let input = wat(r#"(module
        (import "kernel" "kernel_fork" (func $fork (result i32)))
        (memory (export "memory") 1)
        (func (export "_start")))"#);
    let out = instrument(&input);
    assert!(!out.report.passed_through);
    let sections = custom_sections(&out.bytes, abi::SECTION_NAME);
    assert_eq!(sections.len(), 1);
    let s = AbiSection::parse(&sections[0]).expect("section parses");
    assert_eq!(s.instrumented_functions, 0);
    forkify_testkit::wasm::validate(&out.bytes).expect("output validates");
}

fn refused(wasm: &[u8]) -> Error {
    match forkify_instrument::instrument(wasm, &Config::default()) {
        Ok(_) => panic!("instrument() accepted a module it must refuse"),
        Err(e) => e,
    }
}

/// ABI §1: an instrumented module (a `forkify.abi` section or any
/// `wpk_fork_*` export) is refused, naming what was found.
#[test]
fn instrumenting_twice_is_refused() {
    let once = Fixture::load("fork_once");
    let (_, out) = instrument_fixture(&once);
    let e = refused(&out.bytes);
    assert!(
        e.to_string().contains("already instrumented"),
        "message: {e}"
    );
    assert!(matches!(e, Error::AlreadyInstrumented(_)), "{e:?}");

    let export_only = wat(r#"(module
        (import "kernel" "kernel_fork" (func $fork (result i32)))
        (memory (export "memory") 1)
        (func (export "wpk_fork_state") (result i32) (i32.const 0))
        (func (export "_start") (drop (call $fork))))"#);
    let e = refused(&export_only);
    assert!(
        e.to_string().contains("already instrumented"),
        "message: {e}"
    );
    assert!(
        e.to_string().contains("wpk_fork_state"),
        "the message must name the export: {e}"
    );

    let section_only = wat(r#"(module
        (@custom "forkify.abi" "FKAB")
        (import "kernel" "kernel_fork" (func $fork (result i32)))
        (memory (export "memory") 1)
        (func (export "_start") (drop (call $fork))))"#);
    let e = refused(&section_only);
    assert!(
        e.to_string().contains("already instrumented"),
        "message: {e}"
    );
    assert!(
        e.to_string().contains("forkify.abi"),
        "the message must name the section: {e}"
    );
}

/// ABI §1: a module carrying Asyncify exports is refused.
#[test]
fn asyncify_is_refused() {
    let input = wat(r#"(module
        (import "kernel" "kernel_fork" (func $fork (result i32)))
        (memory (export "memory") 1)
        (func (export "asyncify_start_unwind") (param i32))
        (func (export "_start") (drop (call $fork))))"#);
    let e = refused(&input);
    assert!(e.to_string().contains("Asyncify"), "message: {e}");
    assert!(
        e.to_string().contains("asyncify_start_unwind"),
        "the message must name the export: {e}"
    );
}

/// The frame header's `catch_region_id` and `exn_slot` words (+8, +12) are
/// only meaningful in functions with catch handlers: plain frames must not
/// spend a store on them. Scans the instrumented functions of every fixture
/// without exceptions for an `i64.store offset=8`. (A heuristic: it assumes
/// frames are addressed from their start.)
#[test]
fn no_zero_header_stores() {
    for_each_fixture(|f, input, out| {
        if f.requires.iter().any(|r| r == "exceptions") {
            return;
        }
        let header_store = |op: &RawOp| {
            matches!(
                op,
                RawOp::Store {
                    bytes: 8,
                    offset: 8,
                    int: true
                }
            )
        };
        let before = ModuleInfo::parse(input);
        assert!(
            !before
                .funcs
                .iter()
                .any(|x| x.raw_ops.iter().any(header_store)),
            "{}: the fixture itself has an i64.store offset=8; pick another offset",
            f.name
        );
        let after = ModuleInfo::parse(&out.bytes);
        for r in &out.report.functions {
            let func = after.func(r.index).expect("instrumented function exists");
            let n = func.raw_ops.iter().filter(|op| header_store(op)).count();
            assert_eq!(
                n, 0,
                "{}: {} has {n} i64.store offset=8 (zeroing the frame header?)",
                f.name, r.name
            );
        }
    });
}

/// ABI §4 and §7: the section describes the module: version, pointer width,
/// flags, header size, `frames_offset` computed from the module's own
/// mutable numeric globals, counts and sizes consistent with the report.
#[test]
fn abi_section_matches_the_module() {
    for_each_fixture(|f, input, out| {
        let before = ModuleInfo::parse(input);
        let data = &custom_sections(&out.bytes, abi::SECTION_NAME)[0];
        let s = AbiSection::parse(data)
            .unwrap_or_else(|e| panic!("{}: section does not parse: {e}", f.name));
        let p: u32 = if before.memory64 { 8 } else { 4 };
        assert_eq!(&data[0..4], b"FKAB", "{}", f.name);
        assert_eq!(s.version, 1, "{}", f.name);
        assert_eq!(u32::from(s.pointer_width), p, "{}", f.name);
        assert_eq!(s.flags & 1, 1, "{}: abort-on-overflow flag", f.name);
        assert_eq!(s.frame_header_size, 16, "{}", f.name);
        let mut end = 2 * p;
        for (ty, mutable) in &before.globals {
            let size = match ty {
                ValType::I32 | ValType::F32 => 4,
                ValType::I64 | ValType::F64 => 8,
                ValType::V128 => 16,
                ValType::Ref(_) => continue,
            };
            if *mutable {
                end = end.next_multiple_of(size.min(8)) + size;
            }
        }
        assert_eq!(
            s.frames_offset,
            abi::align8(end),
            "{}: frames_offset",
            f.name
        );
        assert_eq!(s.frames_offset, out.report.frames_offset, "{}", f.name);
        assert_eq!(
            s.instrumented_functions as usize,
            out.report.functions.len(),
            "{}",
            f.name
        );
        let max_frame = out
            .report
            .functions
            .iter()
            .map(|r| r.frame_size)
            .max()
            .unwrap_or(0);
        assert_eq!(s.max_frame_size, max_frame, "{}: largest frame", f.name);
        for r in &out.report.functions {
            assert!(
                r.frame_size >= 16 && r.frame_size.is_multiple_of(8),
                "{}: frame of {}: {r:?}",
                f.name,
                r.name
            );
        }
        assert!(
            s.abort_reserve >= 16 && s.abort_reserve.is_multiple_of(8),
            "{}: abort_reserve {}",
            f.name,
            s.abort_reserve
        );
        assert_eq!(s.abort_reserve, out.report.abort_reserve, "{}", f.name);
        // The instrumenter's own ABI check, which `cargo forkify build`
        // uses instead of parsing the output again, says what a separate
        // check of the bytes says.
        assert_eq!(
            out.verified.as_ref(),
            Some(&abi::verify(&out.bytes, abi::ABI_VERSION).expect("output verifies")),
            "{}: instrument()'s check vs forkify_abi::verify",
            f.name
        );
        assert!(!s.info.tool.is_empty(), "{}: tool", f.name);
        assert_eq!(
            s.info.fork_imports,
            vec!["kernel.kernel_fork".to_string()],
            "{}",
            f.name
        );
    });
}

/// ABI §3: the five control exports with their exact types (the
/// verifier's check), and nothing else added to the exports (the state and
/// buffer globals are internal).
#[test]
fn control_exports_are_exact() {
    for_each_fixture(|f, input, out| {
        if let Err(e) = forkify_testkit::artifact::check(&out.bytes) {
            panic!("{}: {e}", f.name);
        }
        let before = ModuleInfo::parse(input);
        let after = ModuleInfo::parse(&out.bytes);
        let mut added: Vec<&str> = after
            .exports
            .iter()
            .filter(|(n, _, _)| !before.exports.iter().any(|(m, _, _)| m == n))
            .map(|(n, _, _)| n.as_str())
            .collect();
        added.sort();
        let mut want: Vec<&str> = abi::EXPORTS.iter().map(|(n, _, _)| *n).collect();
        want.sort();
        assert_eq!(added, want, "{}: exports added", f.name);
    });
}

/// ARCHITECTURE.md: the same input and options give the same bytes.
#[test]
fn output_is_deterministic() {
    for name in ["three_forks", "forty_sites", "deep_recursion"] {
        let f = Fixture::load(name);
        let wasm = f.wasm();
        let a = forkify_instrument::instrument(&wasm, &f.config()).expect("instrument");
        let b = forkify_instrument::instrument(&wasm, &f.config()).expect("instrument");
        assert!(a.bytes == b.bytes, "{name}: two runs gave different bytes");
    }
}
