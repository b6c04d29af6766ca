//! The WAT fixture suite: small programs in the reference-kernel world of
//! ABI §9 that fork, each run end to end and compared process by process.
//!
//! # Layout
//!
//! Every fixture is one self-contained module, `tests/fixtures/<name>.wat`,
//! that starts with `;;` lines giving its intent and directives:
//!
//! ```text
//! ;; intent: fork once; the child exits 7, the parent waits and prints its status
//! ;; @expect pid=1 parent=- status=0 stdout="parent: child 2 exited 7\n"
//! ;; @expect pid=2 parent=1 status=7 stdout="child\n"
//! ;; @options buffer-size=65536 max-processes=16   (optional: RunOptions)
//! ;; @fork-import kernel.kernel_fork                (optional, repeatable: Config)
//! ;; @requires exceptions                           (optional: exceptions or function-references)
//! ;; @oracle fail-forks=1                           (optional: see the oracle below)
//! ```
//!
//! `@expect` lists every process of the run: `pid`, `parent` (`-` for the
//! first), `status` (the exit status, or `trap`) and the exact `stdout`
//! (escapes `\n`, `\t`, `\"`, `\\`). Expected trees follow POSIX fork and
//! the deterministic schedule of §9: at a fork the child (the next pid) runs
//! to completion first, then the parent resumes; fork returns the child's
//! pid in the parent and 0 in the child; waitpid returns the child's exit
//! status, or -10 for a pid that is not a child.
//!
//! # The prelude
//!
//! Each file starts its module with the same prelude, copied verbatim
//! between the markers `;; ---- prelude` and `;; ---- end of prelude`: the
//! five kernel imports (`$fork`, `$exit`, `$waitpid`, `$write`, `$getpid`),
//! an exported one-page memory, and print helpers `$puts` (a NUL-terminated
//! string), `$put_i64`, `$put_num` (decimal) and `$nl`. Strings are data
//! segments at fixed addresses from 128 on, program data lives at 4096. The
//! memory64 fixtures use the memory64 variant (i64 addresses and
//! `kernel_write (i64, i64)`). The canonical copies are those of
//! `fork_once.wat` and `memory64_fork_once.wat`; the test
//! `preludes_are_identical` keeps the others in step. The helpers never
//! fork, so they are also the functions the shape tests expect untouched.
//!
//! `forty_sites.wat` is written by `fixture_support::forty_sites::forty_sites_wat`;
//! `BLESS=1 cargo test -p forkify-tests --test fixtures` rewrites it.
//!
//! # What runs
//!
//! For each fixture `NAME`, two tests:
//!
//! - `run::NAME`: compile the WAT, validate it, instrument it with
//!   `forkify_instrument::instrument`, validate the output with wasmparser,
//!   check it has exactly one `forkify.abi` section, run it with
//!   `forkify_host::run`, and compare the process tree with the
//!   `@expect` lines (on a mismatch the whole `RunReport` is printed).
//! - `oracle::NAME`: run the *uninstrumented* module with real fork
//!   semantics by re-execution (`fixture_support::oracle`) and compare with
//!   the same lines. This checks the programs and their expectations without
//!   forkify; `@oracle fail-forks=N` makes the first N forks fail with -12
//!   there, standing in for a save buffer too small on the real host.
//!
//! A fixture that `@requires exceptions` is still instrumented and validated
//! by `run::NAME`, but only run when this build's wasmtime supports the
//! proposal (it needs wasmtime's `gc` feature); otherwise the test says so
//! on stderr and passes.
//!
//! Adding a fixture: write the file, add its name to the `fixtures!` list
//! below (`every_fixture_is_listed` fails until you do).

mod fixture_support;

use fixture_support::{check_tree, instrument_fixture, instrument_fixture_with, Fixture};

fn run_fixture(name: &str) {
    let f = Fixture::load(name);
    let (_, out) = instrument_fixture(&f);
    run_instrumented(&f, &out, "instrumented, on the reference host");
}

/// Every fork-path function as a replay twin pair: the same process tree.
fn twins_fixture(name: &str) {
    let f = Fixture::load(name);
    let mut config = f.config();
    config.replay_twins = forkify_instrument::ReplayTwins::All;
    let (_, out) = instrument_fixture_with(&f, &config);
    assert!(
        out.report.added_bytes.contains_key("replay twin"),
        "fixture `{name}`: no replay twin was emitted"
    );
    run_instrumented(
        &f,
        &out,
        "instrumented with replay twins, on the reference host",
    );
}

fn run_instrumented(f: &Fixture, out: &forkify_instrument::Instrumented, who: &str) {
    let name = &f.name;
    if let Err(why) = f.runnable() {
        eprintln!("fixture `{name}`: instrumented and validated, not run: {why}");
        return;
    }
    let report = forkify_host::run(&out.bytes, &f.run_options())
        .unwrap_or_else(|e| panic!("fixture `{name}`: the host refused to run it: {e:#}"));
    if let Err(msg) = check_tree(f, &report, who) {
        panic!("{msg}");
    }
}

fn oracle_fixture(name: &str) {
    let f = Fixture::load(name);
    let wasm = f.wasm();
    if let Err(e) = forkify_testkit::wasm::validate(&wasm) {
        panic!("{}: does not validate: {e}", f.path.display());
    }
    if let Err(why) = f.runnable() {
        eprintln!("fixture `{name}`: not run by the oracle: {why}");
        return;
    }
    let report = fixture_support::oracle::run(&wasm, f.oracle_fail_forks)
        .unwrap_or_else(|e| panic!("fixture `{name}`: the oracle failed: {e}"));
    if let Err(msg) = check_tree(&f, &report, "uninstrumented, by the re-execution oracle") {
        panic!("{msg}");
    }
}

macro_rules! fixtures {
    ($($name:ident),* $(,)?) => {
        const LISTED: &[&str] = &[$(stringify!($name)),*];
        /// The instrumented fixtures on the reference host.
        mod run {
            $(#[test] fn $name() { super::run_fixture(stringify!($name)); })*
        }
        /// The fixtures instrumented with a replay twin for every
        /// fork-path function, on the reference host.
        mod twins {
            $(#[test] fn $name() { super::twins_fixture(stringify!($name)); })*
        }
        /// The uninstrumented fixtures on the re-execution oracle.
        mod oracle {
            $(#[test] fn $name() { super::oracle_fixture(stringify!($name)); })*
        }
    };
}

fixtures! {
    fork_once,
    fork_loop,
    fork_nested_control,
    deep_recursion,
    shadow_stack,
    carryover_store,
    store_once,
    call_indirect,
    if_condition,
    three_forks,
    v128_local,
    v128_carryover,
    multi_value,
    memory64_fork_once,
    memory64_carryover,
    tiny_buffer,
    tiny_buffer_then_fork,
    forty_sites,
    try_table,
    grandchild,
    waitpid_non_child,
    tail_call,
    tail_call_indirect,
    br_table,
    float_carryovers,
    block_params,
    globals_snapshot,
    child_trap,
    call_chain,
    call_ref,
    memory_grow,
    table_set_elsewhere,
}

#[test]
fn every_fixture_is_listed() {
    let on_disk = fixture_support::fixture_names();
    let mut listed: Vec<String> = LISTED.iter().map(|s| s.to_string()).collect();
    listed.sort();
    assert_eq!(
        on_disk, listed,
        "tests/fixtures/*.wat and the fixtures! list differ"
    );
}

#[test]
fn every_fixture_parses() {
    for name in fixture_support::fixture_names() {
        let f = Fixture::load(&name);
        let pids: Vec<i32> = f.expect.iter().map(|e| e.pid).collect();
        let want: Vec<i32> = (1..=pids.len() as i32).collect();
        assert_eq!(pids, want, "{name}: @expect pids must be 1..=n, each once");
        assert_eq!(f.expect[0].parent, None, "{name}: pid 1 has no parent");
        f.wasm();
    }
}

#[test]
fn preludes_are_identical() {
    for name in fixture_support::fixture_names() {
        let f = Fixture::load(&name);
        let prelude = fixture_support::forty_sites::extract_prelude(&f.text)
            .unwrap_or_else(|| panic!("{name}: no prelude markers"));
        let canonical = fixture_support::forty_sites::prelude(
            prelude.contains("(memory (export \"memory\") i64"),
        );
        assert_eq!(
            prelude, canonical,
            "{name}: the prelude differs from the canonical copy"
        );
    }
}

#[test]
fn forty_sites_is_generated() {
    let path = fixture_support::fixtures_dir().join("forty_sites.wat");
    let want = fixture_support::forty_sites::forty_sites_wat();
    if std::env::var_os("BLESS").is_some_and(|v| v == "1") {
        std::fs::write(&path, &want).expect("write forty_sites.wat");
    }
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        have == want,
        "{} is stale: rerun with BLESS=1 to regenerate it",
        path.display()
    );
}

/// A function with hundreds of fork sites, each with the same locals live,
/// is one whose replay landings would push it past V8's TurboFan limit
/// for its top-tier register allocator: by default it gets a replay twin,
/// and the program still forks as `@expect` says (one child resumes in
/// the function, one in the twin after a replay).
#[test]
fn many_sites_get_a_replay_twin() {
    let text = fixture_support::forty_sites::sites_wat(450, [3, 440]);
    let path = std::path::Path::new("generated:sites_wat(450)");
    let f = Fixture::parse("sites_450", path, text).expect("the generated fixture parses");
    let (_, out) = instrument_fixture(&f);
    let twin = out.report.added_bytes.get("replay twin").copied();
    assert!(
        twin.is_some_and(|b| b > 0),
        "no replay twin for 450 sites: {:?}",
        out.report.added_bytes
    );
    run_instrumented(
        &f,
        &out,
        "instrumented (a replay twin by default), on the reference host",
    );
    // The same program with no twin, and on the oracle, agree.
    let mut none = f.config();
    none.replay_twins = forkify_instrument::ReplayTwins::None;
    let (wasm, plain) = instrument_fixture_with(&f, &none);
    assert!(!plain.report.added_bytes.contains_key("replay twin"));
    run_instrumented(
        &f,
        &plain,
        "instrumented without replay twins, on the reference host",
    );
    let report = fixture_support::oracle::run(&wasm, 0).expect("the oracle runs it");
    if let Err(msg) = check_tree(&f, &report, "uninstrumented, by the re-execution oracle") {
        panic!("{msg}");
    }
}
