//! One case from seed to verdict (generate, run the original, instrument,
//! check the output, run modes A and B, compare), and running many cases on
//! a few threads.

use super::*;

/// How the "instrumented" module of a case is obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transform {
    Instrument,
    /// The module itself: checks the harness (the comparison must find no
    /// difference and generated modules must terminate).
    Identity,
    /// Instrument, then corrupt the saved frames in mode B: checks that the
    /// comparison notices (differences are counted, not failures).
    CorruptFrames,
}

pub fn run_case(engine: &Engine, seed: u64, transform: Transform, t: &mut Tally) {
    t.cases += 1;
    let Some(Generated {
        bytes,
        entries: export_names,
        numeric_imports,
        fork,
        knobs,
    }) = smith::generate(seed)
    else {
        t.not_generated += 1;
        return;
    };
    if numeric_imports.is_empty() {
        t.no_fork_import += 1;
        return;
    }
    let orig_module = match Module::new(engine, &bytes) {
        Ok(m) => m,
        Err(e) => {
            if std::env::var_os("FORKIFY_DEBUG_GEN").is_some() {
                eprintln!("seed {seed:#x}: wasmtime rejects the input: {e:#}");
            }
            t.engine_rejected += 1;
            return;
        }
    };
    let import_index = |name: &ImportName| {
        orig_module
            .imports()
            .position(|i| i.module() == name.module && i.name() == name.name)
            .expect("import present")
    };

    // The original's behavior does not depend on which import is the fork
    // import (it never forks): run it first, then name as the fork import
    // the numeric import that wasm code called most (most forks in mode B),
    // else the generator's pick (one the code refers to).
    let orig = run(
        engine,
        &orig_module,
        usize::MAX,
        &export_names,
        knobs.fuel as i32,
        FUEL_ORIGINAL,
        None,
    );
    if orig.resource_exhausted() {
        t.resource_skipped += 1;
        return;
    }
    let hottest = numeric_imports
        .iter()
        .map(|(f, n)| {
            (
                orig.wasm_calls.get(import_index(n)).copied().unwrap_or(0),
                *f,
                n,
            )
        })
        .filter(|(calls, _, _)| *calls > 0)
        .max_by_key(|(calls, f, _)| (*calls, u32::MAX - f));
    let (fork_func, fork_name) = match (hottest, fork) {
        (Some((_, f, n)), _) => (f, n.clone()),
        (None, Some(f)) => f,
        (None, None) => unreachable!("numeric imports exist"),
    };
    let fork_index = import_index(&fork_name);
    let fork_referenced = forkify_testkit::wasm::references_function(&bytes, fork_func);
    t.fork_referenced += fork_referenced as u64;
    let fail = |t: &mut Tally, output: Option<&[u8]>, msg: String| {
        let twins = if seed % 2 == 1 { "; replay twins" } else { "" };
        let msg = format!(
            "{msg}\n    fork import {fork_name}{twins}; {}",
            knobs.describe()
        );
        t.failures.push(save_failure(seed, &bytes, output, &msg));
    };
    if let Some(f) = &orig.failure {
        return fail(t, None, format!("harness failure on the original: {f}"));
    }

    let mut config = Config::with_fork_imports(vec![fork_name.clone()]);
    // Every other case runs every fork-path function as a replay twin pair
    // (normal execution in the function, replay in its twin).
    if seed % 2 == 1 {
        config.replay_twins = forkify_instrument::ReplayTwins::All;
    }
    let (out, report) = match transform {
        Transform::Identity => (bytes.clone(), None),
        Transform::Instrument | Transform::CorruptFrames => {
            let r = std::panic::catch_unwind(|| forkify_instrument::instrument(&bytes, &config));
            match r {
                Err(p) => {
                    let m = p
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()));
                    return fail(
                        t,
                        None,
                        format!("instrument() panicked: {}", m.unwrap_or_default()),
                    );
                }
                Ok(Err(e @ (Error::Unsupported { .. } | Error::Module(_)))) => {
                    match e {
                        Error::Unsupported { .. } => t.refused_unsupported += 1,
                        _ => t.refused_module += 1,
                    }
                    t.refused_fork_referenced += fork_referenced as u64;
                    *t.reasons.entry(reason_key(&e)).or_default() += 1;
                    return;
                }
                // Internal errors, and refusals the generator never asks
                // for (it emits valid modules of supported proposals).
                Ok(Err(e)) => return fail(t, None, format!("instrument() failed: {e}")),
                Ok(Ok(i)) => (i.bytes, Some(i.report)),
            }
        }
    };
    if transform != Transform::Identity {
        t.instrumented += 1;
        t.instrumented_fork_referenced += fork_referenced as u64;
    }
    if let Err(e) = forkify_testkit::wasm::validate(&out) {
        return fail(t, Some(&out), format!("output does not validate: {e}"));
    }
    if let Some(report) = &report {
        match check_structure(&bytes, &out, report, &config) {
            Ok(()) => {}
            Err(e) => return fail(t, Some(&out), e),
        }
    }
    let inst_module = match Module::new(engine, &out) {
        Ok(m) => m,
        Err(e) => return fail(t, Some(&out), format!("wasmtime rejects the output: {e:#}")),
    };
    if report.is_some() {
        if let Err(e) = forkify_testkit::artifact::check(&out) {
            return fail(t, Some(&out), e);
        }
    }
    t.calls += orig.calls.len() as u64;
    t.traps += orig
        .calls
        .iter()
        .filter(|c| matches!(c.1, Outcome::Trap(_)))
        .count() as u64;
    t.uncaught += orig
        .calls
        .iter()
        .filter(|c| matches!(&c.1, Outcome::Trap(t) if t == "UncaughtException"))
        .count() as u64;
    t.import_calls += orig.trace.len() as u64;
    t.fork_called += (orig.wasm_calls.get(fork_index).copied().unwrap_or(0) > 0) as u64;

    // Mode A.
    let a = run(
        engine,
        &inst_module,
        fork_index,
        &export_names,
        knobs.fuel as i32,
        FUEL_INSTRUMENTED,
        None,
    );
    if a.resource_exhausted() {
        t.resource_skipped += 1;
        return;
    }
    if let Some(d) = compare(&orig, &a) {
        return fail(t, Some(&out), format!("mode A (no fork) differs: {d}"));
    }
    t.compared_a += 1;

    // Mode B.
    let section = match abi::AbiSection::find(&out) {
        Ok(Some(s)) => s,
        Ok(None) if transform == Transform::Identity => {
            t.skipped_b += 1;
            return;
        }
        Ok(None) => return fail(t, Some(&out), "output has no forkify.abi section".into()),
        Err(e) => return fail(t, Some(&out), format!("bad forkify.abi section: {e}")),
    };
    let params = ForkParams {
        pointer_width: section.pointer_width,
        min_buffer: u64::from(section.frames_offset) + u64::from(section.abort_reserve),
        seed: mix64(seed ^ 0xb),
        corrupt_from: (transform == Transform::CorruptFrames)
            .then_some(u64::from(section.frames_offset)),
    };
    let b = run(
        engine,
        &inst_module,
        fork_index,
        &export_names,
        knobs.fuel as i32,
        FUEL_INSTRUMENTED,
        Some(params),
    );
    if b.resource_exhausted() {
        t.skipped_b += 1;
        return;
    }
    if transform == Transform::CorruptFrames {
        if b.stats.forks > 0 {
            t.cases_with_forks += 1;
            t.corruption_detected += compare(&orig, &b).is_some() as u64;
        }
        return;
    }
    if let Some(d) = compare(&orig, &b) {
        return fail(
            t,
            Some(&out),
            format!(
                "mode B (forking) differs: {d} [forks={} aborts={}]",
                b.stats.forks, b.stats.aborts
            ),
        );
    }
    t.compared_b += 1;
    t.cases_with_forks += (b.stats.forks > 0) as u64;
    t.stats += b.stats;
}
/// Runs `cases` cases from `first_seed` on a few threads with big stacks.
pub fn run_cases(first_seed: u64, cases: u64, transform: Transform) -> Tally {
    let threads = env_u64("FORKIFY_DIFF_THREADS")
        .unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map_or(1, |n| n.get() as u64)
                .min(2)
        })
        .max(1);
    let engine = engine();
    let next = Arc::new(AtomicU64::new(0));
    let total = Arc::new(Mutex::new(Tally::default()));
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (engine, next, total) = (engine.clone(), next.clone(), total.clone());
            std::thread::Builder::new()
                .stack_size(64 << 20)
                .spawn(move || {
                    let mut t = Tally::default();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= cases {
                            break;
                        }
                        run_case(&engine, first_seed.wrapping_add(i), transform, &mut t);
                    }
                    total.lock().unwrap().merge(t);
                })
                .expect("spawn")
        })
        .collect();
    for h in handles {
        h.join().expect("worker panicked");
    }
    let mut t = std::mem::take(&mut *total.lock().unwrap());
    t.failures.sort();
    t
}

pub fn report_failures(t: &Tally) {
    if !t.failures.is_empty() {
        let shown: Vec<_> = t.failures.iter().take(20).cloned().collect();
        panic!(
            "{} failing case(s):\n{}",
            t.failures.len(),
            shown.join("\n")
        );
    }
}
