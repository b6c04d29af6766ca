//! Differential property test: the transform preserves semantics.
//!
//! Each case is a wasm-smith module (see `forkify_testkit::smith` for the swarm of
//! configurations) whose imports come from a fixed list of candidates. Every
//! defined function is exported (an entry point) and so are memory 0 and
//! wasm-smith's `ensure_termination` fuel global, which the host refills
//! before each export call. The original runs first; the numeric import its
//! wasm code called most becomes the fork import (else one the code refers
//! to). The module is instrumented, the output is checked (validates; the
//! `forkify.abi` section agrees with the report; the control exports have
//! the right types; untouched functions keep their bytes; a second
//! instrumentation is refused) and run on wasmtime 48 with identical
//! deterministic import stubs. Every entry point is called twice (zero
//! arguments, then small constants), in order, in one instance per run.
//! Compared: results (any NaN equals any NaN), traps and their codes
//! (uncaught exceptions included), the sequence of import calls with their
//! arguments, the final contents of memory 0, exported (and host-owned
//! imported) globals, and exported table sizes.
//!
//! * Mode A: the fork import never forks; it just returns its value.
//! * Mode B: the fork import performs the ABI dance (ABI §6) on the same
//!   instance: unwind into a save buffer, rewind by calling the same export
//!   again, then return the value the original got. The buffer is placed at a
//!   random 16-aligned spot inside memory 0 (its bytes are saved before the
//!   unwind and restored once the rewind is done, so it is invisible to the
//!   program), sometimes barely larger than the minimum so that frames
//!   overflow and the abort path (state 3) runs.
//!
//! Environment: `FORKIFY_DIFF_CASES` (default 3000), `FORKIFY_DIFF_SEED`
//! (first seed; case `i` uses seed `SEED + i`), `FORKIFY_DIFF_THREADS`,
//! `FORKIFY_DIFF_IDENTITY=1` (compare each module with itself: checks the
//! harness), `FORKIFY_DEBUG_GEN=1` (say why cases were not generated or run).
//! Failing inputs are saved to `target/differential-failures/`.

mod differential_support;

use differential_support::*;

/// The main property: instrumenting preserves semantics, with and without
/// real forks, and never panics or emits an invalid module.
#[test]
fn instrumented_modules_behave_like_the_original() {
    let cases = env_u64("FORKIFY_DIFF_CASES").unwrap_or(DEFAULT_CASES);
    let seed = env_u64("FORKIFY_DIFF_SEED").unwrap_or(DEFAULT_SEED);
    let transform = if std::env::var_os("FORKIFY_DIFF_IDENTITY").is_some() {
        Transform::Identity
    } else {
        Transform::Instrument
    };
    let t = run_cases(seed, cases, transform);
    eprintln!("{}", t.summary());
    report_failures(&t);
    if transform == Transform::Identity {
        return;
    }
    if let Some(refused) = (t.refused_fork_referenced * 100).checked_div(t.fork_referenced) {
        assert!(
            refused <= MAX_REFUSED_PERCENT,
            "{refused}% of the {} cases with a fork-path function were refused (limit {MAX_REFUSED_PERCENT}%)",
            t.fork_referenced
        );
    }
    // The test must actually compare something.
    if cases >= 100 {
        assert!(
            t.compared_a * 4 >= t.instrumented,
            "too few cases compared in mode A: {}",
            t.summary()
        );
        assert!(
            t.cases_with_forks * 4 >= t.compared_b,
            "too few cases really forked in mode B: {}",
            t.summary()
        );
        assert!(
            t.stats.aborts > 0,
            "the abort path never ran: {}",
            t.summary()
        );
    }
}

/// The harness itself is sound: a module compared with itself shows no
/// difference, and generated modules terminate.
#[test]
fn harness_finds_no_difference_between_a_module_and_itself() {
    let t = run_cases(DEFAULT_SEED ^ 0x1d, 150, Transform::Identity);
    eprintln!("{}", t.summary());
    report_failures(&t);
    assert!(
        t.compared_a >= 75,
        "too few cases compared: {}",
        t.summary()
    );
    assert!(
        t.resource_skipped * 10 <= t.cases,
        "too many cases exhausted the stack or fuel: {}",
        t.summary()
    );
}

/// The comparison is sensitive: flipping one byte of the frames a real
/// instrumented module saved (a saved local, a carryover, a call index...)
/// must usually change what the program does.
#[test]
fn mode_b_notices_corrupted_frames() {
    let t = run_cases(DEFAULT_SEED ^ 0xc0, 400, Transform::CorruptFrames);
    eprintln!(
        "{}\n  corrupted cases with a visible difference: {} of {}",
        t.summary(),
        t.corruption_detected,
        t.cases_with_forks
    );
    report_failures(&t);
    assert!(
        t.cases_with_forks >= 50,
        "too few cases forked: {}",
        t.summary()
    );
    assert!(
        t.corruption_detected * 2 >= t.cases_with_forks,
        "only {} of {} cases with corrupted frames behaved differently",
        t.corruption_detected,
        t.cases_with_forks
    );
}

/// The transform is a function of its input: instrumenting twice gives the
/// same bytes (or the same error).
#[test]
fn instrumenting_twice_gives_identical_bytes() {
    let hand = wat::parse_str(
        r#"(module
          (import "kernel" "kernel_fork" (func $fork (result i32)))
          (memory (export "memory") 1)
          (global $g (mut i32) (i32.const 0))
          (func $walk (param $d i32) (result i32)
            (if (result i32) (i32.eqz (local.get $d))
              (then (call $fork))
              (else (i32.add (global.get $g) (call $walk (i32.sub (local.get $d) (i32.const 1)))))))
          (func (export "_start") (drop (call $walk (i32.const 3)))))"#,
    )
    .expect("wat");
    let mut inputs = vec![(hand, Config::default())];
    for i in 0..150u64 {
        if let Some(g) = smith::generate(DEFAULT_SEED ^ 0xde7 ^ (i << 20)) {
            let config = Config::with_fork_imports(g.fork.map(|f| vec![f.1]).unwrap_or_default());
            inputs.push((g.bytes, config));
        }
    }
    for (i, (bytes, config)) in inputs.iter().enumerate() {
        let a = forkify_instrument::instrument(bytes, config);
        let b = forkify_instrument::instrument(bytes, config);
        match (a, b) {
            (Ok(a), Ok(b)) => assert!(
                a.bytes == b.bytes,
                "input #{i}: two runs gave different bytes"
            ),
            (Err(a), Err(b)) => {
                assert_eq!(a.to_string(), b.to_string(), "input #{i}: different errors")
            }
            (a, b) => panic!(
                "input #{i}: {:?} then {:?}",
                a.map(|_| "ok"),
                b.map(|_| "ok")
            ),
        }
    }
}

/// Mode B's host protocol works against a module instrumented by hand
/// exactly as the ABI says, through both the normal and the abort path.
#[test]
fn mode_b_harness_agrees_with_a_hand_instrumented_module() {
    let (diff, stats) = hand_mode_b(false, 40);
    assert_eq!(diff, None);
    assert_eq!(stats.forks, 80, "{stats:?}");
    assert!(
        stats.aborts > 0 && stats.aborts < stats.forks,
        "both paths must run: {stats:?}"
    );
}

/// ...and notices a module whose replay re-runs code it must skip.
#[test]
fn mode_b_harness_catches_a_broken_replay() {
    let (diff, _) = hand_mode_b(true, 40);
    let diff = diff.expect("a replay that re-runs stores must be caught");
    assert!(
        diff.contains("call #") || diff.contains("memory") || diff.contains("global"),
        "{diff}"
    );
}
