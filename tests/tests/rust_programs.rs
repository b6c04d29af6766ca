//! End to end on real LLVM output: the Rust programs of `examples/` are
//! built for `wasm32-unknown-unknown` and `wasm64-unknown-unknown`,
//! instrumented with the default config (`kernel.kernel_fork`), really
//! forked on the reference host, and compared process by process, and
//! write by write, with `examples/expected.json`.
//!
//! # Building
//!
//! The examples are built by [`forkify_testkit::examples`] (once per target
//! and test binary, cached across runs in `target/examples-build`, shared
//! with `engines.rs` and `browser.rs`). A missing wasm32 target fails these
//! tests; the wasm64 ones are skipped, saying `SKIPPED: ...` on stderr, only
//! when there is no nightly toolchain or it lacks `rust-src`.
//!
//! # What runs
//!
//! For each target (module `wasm32` / `wasm64`):
//!
//! - one test per program: instrument, check the report and the
//!   `forkify.abi` section (pointer width 4 / 8), run it, and compare the
//!   whole [`RunReport`] with `expected.json` (printed in full on mismatch);
//! - `deep_recursion_small_buffer`: a 16 KiB save buffer is too small for
//!   the 1,000-frame unwind, so the guest aborts it (ABI §6): `fork` fails
//!   with errno 12, the program says so and exits 2, and no child exists;
//! - `uninstrumented_is_refused`: the raw module imports `kernel.kernel_fork`
//!   but has no `forkify.abi` section, and the host refuses it.

use forkify_abi::{AbiSection, SECTION_NAME};
use forkify_host::{ExitStatus, ProcessReport, RunOptions, RunReport};
use forkify_instrument::{Config, Instrumented};
use forkify_testkit::examples::{built, Target, PROGRAMS};
use forkify_testkit::say;

/// Save buffer for `deep-recursion`: its fork unwinds 1,000+ frames.
const DEEP_BUFFER: u32 = 1 << 20;

/// A save buffer too small for that unwind (but big enough for the
/// module's `frames_offset + abort_reserve`, so the guest itself aborts).
const SMALL_BUFFER: u32 = 16 << 10;

/// The pointer width `target` gives a module, in bytes.
fn pointer_width(target: Target) -> u8 {
    match target {
        Target::Wasm32 => 4,
        Target::Wasm64 => 8,
    }
}

/// The built (uninstrumented) module of `program`, or `None` when the
/// target's toolchain is absent (after saying `SKIPPED: ...`).
fn module(target: Target, program: &str, test: &str) -> Option<Vec<u8>> {
    match built(target) {
        Ok(dir) => {
            let path = dir.join(format!("{program}.wasm"));
            let bytes = std::fs::read(&path).unwrap_or_else(|e| {
                panic!(
                    "the examples build for {} succeeded but {} cannot be read: {e}",
                    target.triple(),
                    path.display()
                )
            });
            Some(bytes)
        }
        Err(why) => {
            say(&format!("SKIPPED: {test}: {why}"));
            None
        }
    }
}

/// The expected run of `program` from `examples/expected.json`.
fn expected_report(program: &str) -> RunReport {
    serde_json::from_value(forkify_testkit::expected::report(program))
        .unwrap_or_else(|e| panic!("examples/expected.json, `{program}`: not a run report: {e}"))
}

/// The differences between two runs, one per line.
fn differences(expected: &RunReport, actual: &RunReport) -> String {
    let mut out = String::new();
    let n = expected.processes.len().max(actual.processes.len());
    for i in 0..n {
        match (expected.processes.get(i), actual.processes.get(i)) {
            (Some(e), Some(a)) if e == a => {}
            (e, a) => out.push_str(&format!(
                "  process #{i}: expected {e:?}\n               got      {a:?}\n"
            )),
        }
    }
    let n = expected.log.len().max(actual.log.len());
    if let Some(i) = (0..n).find(|&i| expected.log.get(i) != actual.log.get(i)) {
        out.push_str(&format!(
            "  log: first difference at write #{i}: expected {:?}, got {:?} ({} writes expected, {} got)\n",
            expected.log.get(i),
            actual.log.get(i),
            expected.log.len(),
            actual.log.len()
        ));
    }
    out
}

fn assert_run(what: &str, expected: &RunReport, actual: &RunReport) {
    if expected != actual {
        panic!(
            "{what}: the run differs from the expected one\n\
             differences:\n{}\n\
             expected (rendered):\n{}\n\
             got (rendered):\n{}\n\
             the whole RunReport:\n{actual:#?}",
            differences(expected, actual),
            expected.render(),
            actual.render()
        );
    }
}

/// Every `forkify.abi` custom section of a module, parsed.
fn abi_sections(bytes: &[u8]) -> Vec<AbiSection> {
    wasmparser::Parser::new(0)
        .parse_all(bytes)
        .filter_map(|p| match p {
            Ok(wasmparser::Payload::CustomSection(c)) if c.name() == SECTION_NAME => Some(
                AbiSection::parse(c.data())
                    .unwrap_or_else(|e| panic!("bad `{SECTION_NAME}` section: {e}")),
            ),
            _ => None,
        })
        .collect()
}

/// Instruments with the default config and checks the report and the
/// `forkify.abi` section.
fn instrument(target: Target, program: &str, wasm: &[u8]) -> Instrumented {
    let what = format!("{program} ({})", target.triple());
    assert!(
        abi_sections(wasm).is_empty(),
        "{what}: the built module already has a `{SECTION_NAME}` section"
    );
    let out = forkify_instrument::instrument(wasm, &Config::default())
        .unwrap_or_else(|e| panic!("{what}: instrument() failed: {e}"));
    let report = &out.report;
    assert!(
        !report.passed_through,
        "{what}: passed through, but it imports kernel.kernel_fork: {report:#?}"
    );
    assert!(
        !report.functions.is_empty(),
        "{what}: no function was instrumented: {report:#?}"
    );
    assert_eq!(
        report.fork_imports_found,
        ["kernel.kernel_fork"],
        "{what}: fork imports found"
    );
    assert_eq!(
        report.pointer_width,
        pointer_width(target),
        "{what}: report.pointer_width"
    );
    if let Err(e) = wasmparser::Validator::new_with_features(wasmparser::WasmFeatures::all())
        .validate_all(&out.bytes)
    {
        panic!("{what}: the instrumented module does not validate: {e}");
    }
    let sections = abi_sections(&out.bytes);
    assert_eq!(
        sections.len(),
        1,
        "{what}: the instrumented module must carry exactly one `{SECTION_NAME}` section"
    );
    let section = &sections[0];
    assert_eq!(
        section.pointer_width,
        pointer_width(target),
        "{what}: pointer width in `{SECTION_NAME}`: {section:#?}"
    );
    assert_eq!(
        section.instrumented_functions as usize,
        report.functions.len(),
        "{what}: instrumented functions, section vs report"
    );
    assert_eq!(
        (section.frames_offset, section.abort_reserve),
        (report.frames_offset, report.abort_reserve),
        "{what}: frames_offset/abort_reserve, section vs report"
    );
    out
}

fn run_options(program: &str) -> RunOptions {
    let mut opts = RunOptions::default();
    if program == "deep-recursion" {
        opts.buffer_size = DEEP_BUFFER;
    }
    opts
}

/// Builds, instruments and runs `program`, and compares with
/// `expected.json`.
fn check_program(target: Target, program: &str) {
    let test = format!("{}::{}", target_module(target), program.replace('-', "_"));
    let Some(wasm) = module(target, program, &test) else {
        return;
    };
    let out = instrument(target, program, &wasm);
    let what = format!("{program} ({})", target.triple());
    let opts = run_options(program);
    let actual = forkify_host::run(&out.bytes, &opts)
        .unwrap_or_else(|e| panic!("{what}: the host refused the instrumented module: {e:#}"));
    assert_run(
        &format!("{what}, {opts:?}"),
        &expected_report(program),
        &actual,
    );
}

/// ABI §6 abort on real code: a save buffer too small for the unwind makes
/// `fork` fail with -12 in the guest; the parent continues, nothing forks.
fn check_small_buffer(target: Target) {
    let program = "deep-recursion";
    let test = format!("{}::deep_recursion_small_buffer", target_module(target));
    let Some(wasm) = module(target, program, &test) else {
        return;
    };
    let out = instrument(target, program, &wasm);
    let what = format!(
        "{program} ({}) with a {SMALL_BUFFER}-byte buffer",
        target.triple()
    );
    let min = u64::from(out.report.frames_offset) + u64::from(out.report.abort_reserve);
    assert!(
        u64::from(SMALL_BUFFER) >= min,
        "{what}: the buffer is below frames_offset + abort_reserve = {min}, so the host \
         would fail the fork without unwinding and the guest's abort path would not run"
    );
    let opts = RunOptions {
        buffer_size: SMALL_BUFFER,
        ..RunOptions::default()
    };
    let actual = forkify_host::run(&out.bytes, &opts)
        .unwrap_or_else(|e| panic!("{what}: the host refused the instrumented module: {e:#}"));
    // The checksum line is the one of the normal run (examples/README.md).
    let checksum_line = expected_report(program).log[0].1.clone();
    assert!(
        checksum_line.starts_with("pid 1: checksum of 1000 levels without fork: "),
        "examples/expected.json: unexpected first line for {program}: {checksum_line:?}"
    );
    let checksum = checksum_line
        .trim_end()
        .rsplit(' ')
        .next()
        .expect("a checksum");
    let failed_line =
        format!("pid 1: fork at depth 1000 failed with errno 12; checksum {checksum} matches\n");
    let expected = RunReport {
        processes: vec![ProcessReport {
            pid: 1,
            parent: None,
            stdout: format!("{checksum_line}{failed_line}"),
            status: ExitStatus::Exited(2),
        }],
        log: vec![(1, checksum_line), (1, failed_line)],
    };
    assert_run(&what, &expected, &actual);
}

/// The built module imports `kernel.kernel_fork` but has no `forkify.abi`
/// section: the host must refuse it, saying why.
fn check_uninstrumented_refused(target: Target) {
    let test = format!("{}::uninstrumented_is_refused", target_module(target));
    let Some(wasm) = module(target, "hello-fork", &test) else {
        return;
    };
    let err = match forkify_host::run(&wasm, &RunOptions::default()) {
        Ok(report) => panic!(
            "hello-fork ({}): the host ran an uninstrumented module that imports \
             kernel.kernel_fork:\n{report:#?}",
            target.triple()
        ),
        Err(e) => format!("{e:#}"),
    };
    for needle in ["not instrumented", "kernel.kernel_fork", SECTION_NAME] {
        assert!(
            err.contains(needle),
            "hello-fork ({}): the host's refusal should mention `{needle}`: {err}",
            target.triple()
        );
    }
}

fn target_module(target: Target) -> &'static str {
    match target {
        Target::Wasm32 => "wasm32",
        Target::Wasm64 => "wasm64",
    }
}

/// One module per target, with a test per program and the two others.
macro_rules! target_tests {
    ($module:ident, $target:expr, $($name:ident => $program:literal),*) => {
        mod $module {
            use super::*;

            $(
                #[test]
                fn $name() {
                    check_program($target, $program);
                }
            )*

            #[test]
            fn deep_recursion_small_buffer() {
                check_small_buffer($target);
            }

            #[test]
            fn uninstrumented_is_refused() {
                check_uninstrumented_refused($target);
            }
        }
    };
}

macro_rules! program_tests {
    ($($name:ident => $program:literal),* $(,)?) => {
        /// The programs with a test above, as named in `expected.json`.
        const TESTED: &[&str] = &[$($program),*];
        target_tests!(wasm32, Target::Wasm32, $($name => $program),*);
        target_tests!(wasm64, Target::Wasm64, $($name => $program),*);
    };
}

program_tests! {
    hello_fork => "hello-fork",
    fork_tree => "fork-tree",
    deep_recursion => "deep-recursion",
    fork_loop => "fork-loop",
    heap_data => "heap-data",
}

/// `expected.json` and [`PROGRAMS`] (which `engines.rs` also runs) list
/// the same programs, and each program has its test above.
#[test]
fn every_program_is_tested() {
    let listed = forkify_testkit::expected::programs();
    let mut listed: Vec<&str> = listed.iter().map(String::as_str).collect();
    listed.sort_unstable();
    let mut programs = PROGRAMS.to_vec();
    programs.sort_unstable();
    assert_eq!(
        listed, programs,
        "examples/expected.json and PROGRAMS in testkit/src/examples.rs disagree"
    );
    let mut tested = TESTED.to_vec();
    tested.sort_unstable();
    assert_eq!(
        programs, tested,
        "PROGRAMS in testkit/src/examples.rs and the tests in rust_programs.rs disagree; \
         add a test per program"
    );
}
