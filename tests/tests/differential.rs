//! Differential property test: the transform preserves semantics.
//!
//! Each case is a wasm-smith module (see `smith/mod.rs` for the swarm of
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
//! * Mode B: the fork import performs the ABI dance (ABI.md §6) on the same
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

mod smith;

use forkify_instrument::{abi, Config, Error, ImportName};
use smith::{mix64, Generated, Rng, FUEL_EXPORT, MEMORY_EXPORT};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use wasmtime::{
    Caller, Engine, Extern, ExternType, Func, FuncType, Global, Instance, Module, Store,
    StoreLimits, StoreLimitsBuilder, Trap, Val, ValType,
};

const DEFAULT_CASES: u64 = 3000;
const DEFAULT_SEED: u64 = 0xf0f0_0000;
/// Fail when more than this share of the cases with a fork-path function is
/// refused. Measured: about 18%, nearly all reference-typed values live
/// across a fork-path call (ABI.md §8) in the third of the cases with
/// reference types, plus modules without memory.
const MAX_REFUSED_PERCENT: u64 = 30;
/// At most this many forks per run (each fork re-runs an export).
const MAX_FORKS: u32 = 64;
/// Wasmtime fuel: a watchdog only (wasm-smith's `ensure_termination` makes
/// the programs themselves terminate). The instrumented module gets more.
const FUEL_ORIGINAL: u64 = 50_000_000;
const FUEL_INSTRUMENTED: u64 = 500_000_000;

// ---------------------------------------------------------------- engine --

fn engine() -> Engine {
    let mut c = wasmtime::Config::new();
    c.cranelift_opt_level(wasmtime::OptLevel::None)
        .cranelift_nan_canonicalization(true)
        .relaxed_simd_deterministic(true)
        .wasm_memory64(true)
        .wasm_multi_memory(true)
        .wasm_tail_call(true)
        .wasm_relaxed_simd(true)
        .wasm_extended_const(true)
        .wasm_exceptions(true)
        .wasm_simd(true)
        .wasm_multi_value(true)
        .wasm_bulk_memory(true)
        .consume_fuel(true)
        .async_stack_size(9 << 20)
        .max_wasm_stack(8 << 20);
    Engine::new(&c).expect("wasmtime engine")
}

// ---------------------------------------------------------------- values --

/// A value as compared: floats by bits except that every NaN is equal;
/// references by null-ness only.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Cv {
    I32(i32),
    I64(i64),
    F32(Option<u32>),
    F64(Option<u64>),
    V128(u128),
    Ref { null: bool },
}

fn cv(v: &Val) -> Cv {
    match *v {
        Val::I32(x) => Cv::I32(x),
        Val::I64(x) => Cv::I64(x),
        Val::F32(b) => Cv::F32((!f32::from_bits(b).is_nan()).then_some(b)),
        Val::F64(b) => Cv::F64((!f64::from_bits(b).is_nan()).then_some(b)),
        Val::V128(x) => Cv::V128(x.as_u128()),
        Val::FuncRef(ref f) => Cv::Ref { null: f.is_none() },
        Val::ExternRef(ref r) => Cv::Ref { null: r.is_none() },
        Val::AnyRef(ref r) => Cv::Ref { null: r.is_none() },
        Val::ExnRef(ref r) => Cv::Ref { null: r.is_none() },
        Val::ContRef(ref r) => Cv::Ref { null: r.is_none() },
    }
}

fn cv_hash(v: &Cv) -> u64 {
    match *v {
        Cv::I32(x) => x as u32 as u64,
        Cv::I64(x) => x as u64,
        Cv::F32(b) => b.map_or(0x7fc0_0000, u64::from),
        Cv::F64(b) => b.unwrap_or(0x7ff8_0000_0000_0000),
        Cv::V128(x) => (x as u64) ^ ((x >> 64) as u64).rotate_left(17),
        Cv::Ref { null } => null as u64,
    }
}

/// A small, "interesting" value of type `ty` derived from `h`: mostly small
/// integers (good addresses, loop counts, table indices), sometimes wild.
fn make_val(ty: &ValType, h: u64) -> Val {
    let small = match h % 8 {
        0 => h as i64,
        1 => -1,
        _ => ((h >> 8) % 40) as i64 - 2,
    };
    match ty {
        ValType::I32 => Val::I32(small as i32),
        ValType::I64 => Val::I64(small),
        ValType::F32 => Val::F32((small as f32 / 4.0).to_bits()),
        ValType::F64 => Val::F64((small as f64 / 4.0).to_bits()),
        ValType::V128 => Val::V128((u128::from(h) << 64 | u128::from(mix64(h))).into()),
        ValType::Ref(r) => Val::null_ref(r.heap_type()),
    }
}

/// Arguments of call round `round` (0: zeros, 1: small constants).
fn args_for(ty: &FuncType, round: usize) -> Vec<Val> {
    const INTS: [i64; 6] = [1, 7, -1, 3, 16, 100];
    const FLOATS: [f64; 4] = [1.5, -2.0, 0.5, 1e10];
    ty.params()
        .enumerate()
        .map(|(j, t)| {
            if round == 0 {
                return Val::default_for_ty(&t).unwrap_or(Val::I32(0));
            }
            match t {
                ValType::I32 => Val::I32(INTS[j % 6] as i32),
                ValType::I64 => Val::I64(INTS[j % 6]),
                ValType::F32 => Val::F32((FLOATS[j % 4] as f32).to_bits()),
                ValType::F64 => Val::F64(FLOATS[j % 4].to_bits()),
                ValType::V128 => {
                    Val::V128((0x0102_0304_0506_0708_090a_0b0c_0d0e_0f10u128 + j as u128).into())
                }
                ValType::Ref(r) => Val::null_ref(r.heap_type()),
            }
        })
        .collect()
}

// ------------------------------------------------------------------ host --

/// What the fork import does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Return the value (original module, and mode A).
    Plain,
    /// Perform the unwind/rewind dance (mode B).
    Fork,
}

#[derive(Debug, Default, Clone, Copy)]
struct ForkStats {
    forks: u64,
    aborts: u64,
    no_room: u64,
    capped: u64,
}

impl std::ops::AddAssign for ForkStats {
    fn add_assign(&mut self, o: ForkStats) {
        self.forks += o.forks;
        self.aborts += o.aborts;
        self.no_room += o.no_room;
        self.capped += o.capped;
    }
}

/// A fork in progress: the value to return on rewind and the bytes the
/// buffer covered.
struct Pending {
    buf: u64,
    saved: Vec<u8>,
    results: Vec<Val>,
}

struct ForkHost {
    pointer_width: u8,
    /// `frames_offset + abort_reserve`: the smallest buffer allowed.
    min_buffer: u64,
    rng: Rng,
    pending: Option<Pending>,
    stats: ForkStats,
    corrupt_from: Option<u64>,
}

struct Host {
    limits: StoreLimits,
    counter: u64,
    trace: Vec<(usize, Vec<Cv>)>,
    in_export: bool,
    /// Per import: calls made by wasm code during export calls (a host
    /// function called directly from the host cannot fork).
    wasm_calls: Vec<u64>,
    fork: Option<ForkHost>,
    failure: Option<String>,
}

impl Host {
    fn fail(&mut self, msg: String) -> wasmtime::Error {
        if self.failure.is_none() {
            self.failure = Some(msg.clone());
        }
        wasmtime::Error::msg(msg)
    }
}

/// The results an import returns for this call, and the trace entry. Both
/// runs see the same sequence of calls, hence the same values.
fn plain_call(
    host: &mut Host,
    idx: usize,
    params: &[Val],
    result_tys: &[ValType],
    results: &mut [Val],
) {
    let args: Vec<Cv> = params.iter().map(cv).collect();
    let mut h = mix64(host.counter ^ ((idx as u64) << 40));
    for a in &args {
        h = mix64(h ^ cv_hash(a));
    }
    host.counter += 1;
    host.trace.push((idx, args));
    for (i, (ty, r)) in result_tys.iter().zip(results.iter_mut()).enumerate() {
        *r = make_val(ty, mix64(h.wrapping_add(i as u64)));
    }
}

fn export_func(caller: &mut Caller<'_, Host>, name: &str) -> Option<Func> {
    caller.get_export(name).and_then(Extern::into_func)
}

fn call0(
    caller: &mut Caller<'_, Host>,
    name: &str,
    args: &[Val],
    nresults: usize,
) -> Result<Vec<Val>, String> {
    let f = export_func(caller, name).ok_or_else(|| format!("no export `{name}`"))?;
    let mut out = vec![Val::I32(0); nresults];
    f.call(&mut *caller, args, &mut out)
        .map_err(|e| format!("`{name}` failed: {e:#}"))?;
    Ok(out)
}

/// The fork import in mode B.
fn fork_call(
    caller: &mut Caller<'_, Host>,
    idx: usize,
    params: &[Val],
    result_tys: &[ValType],
    results: &mut [Val],
) -> wasmtime::Result<()> {
    let state = match export_func(caller, abi::EXPORT_STATE) {
        Some(_) => match call0(caller, abi::EXPORT_STATE, &[], 1) {
            Ok(v) => v[0].i32().unwrap_or(-1),
            Err(e) => return Err(caller.data_mut().fail(e)),
        },
        None => 0,
    };
    match state {
        0 => {
            plain_call(caller.data_mut(), idx, params, result_tys, results);
            let has_exports = abi::EXPORTS
                .iter()
                .all(|(n, _, _)| export_func(caller, n).is_some());
            if !caller.data().in_export || !has_exports {
                return Ok(());
            }
            let Some(Extern::Memory(mem)) = caller.get_export(MEMORY_EXPORT) else {
                return Ok(());
            };
            let size = mem.data_size(&*caller) as u64;
            let host = caller.data_mut();
            let fh = host.fork.as_mut().expect("fork mode");
            if fh.stats.forks >= u64::from(MAX_FORKS) {
                fh.stats.capped += 1;
                return Ok(());
            }
            let min = fh.min_buffer.max(16);
            if size < min + 32 {
                fh.stats.no_room += 1;
                return Ok(());
            }
            let room = size - 16;
            let len = if fh.rng.chance(1, 4) {
                // Tight: frames will often overflow and abort.
                (min + 8 * fh.rng.below(24)).min(room)
            } else {
                room.min(32 * 1024).max(min)
            };
            let slots = (size - len - 16) / 16;
            let buf = 16 + 16 * fh.rng.below(slots + 1);
            let ptr64 = fh.pointer_width == 8;
            let range = buf as usize..(buf + len) as usize;
            let saved = mem.data(&*caller)[range.clone()].to_vec();
            let end = buf + len;
            let data = mem.data_mut(&mut *caller);
            if ptr64 {
                data[range.start + 8..range.start + 16].copy_from_slice(&end.to_le_bytes());
            } else {
                data[range.start + 4..range.start + 8].copy_from_slice(&(end as u32).to_le_bytes());
            }
            let fh = caller.data_mut().fork.as_mut().expect("fork mode");
            fh.pending = Some(Pending {
                buf,
                saved,
                results: results.to_vec(),
            });
            fh.stats.forks += 1;
            // The value returned while unwinding must be ignored.
            for (i, (ty, r)) in result_tys.iter().zip(results.iter_mut()).enumerate() {
                *r = make_val(ty, 0xdead_beef ^ i as u64);
            }
            let arg = if ptr64 {
                Val::I64(buf as i64)
            } else {
                Val::I32(buf as i32)
            };
            if let Err(e) = call0(caller, abi::EXPORT_UNWIND_BEGIN, &[arg], 0) {
                return Err(caller.data_mut().fail(e));
            }
            Ok(())
        }
        2 | 3 => {
            if let Err(e) = call0(caller, abi::EXPORT_REWIND_END, &[], 0) {
                return Err(caller.data_mut().fail(e));
            }
            let Some(p) = caller
                .data_mut()
                .fork
                .as_mut()
                .and_then(|f| f.pending.take())
            else {
                return Err(caller.data_mut().fail(format!(
                    "fork import called in state {state} with no fork pending"
                )));
            };
            if state == 3 {
                caller
                    .data_mut()
                    .fork
                    .as_mut()
                    .expect("fork mode")
                    .stats
                    .aborts += 1;
            }
            let Some(Extern::Memory(mem)) = caller.get_export(MEMORY_EXPORT) else {
                return Err(caller.data_mut().fail("memory export vanished".into()));
            };
            mem.data_mut(&mut *caller)[p.buf as usize..p.buf as usize + p.saved.len()]
                .copy_from_slice(&p.saved);
            results.copy_from_slice(&p.results);
            Ok(())
        }
        s => Err(caller
            .data_mut()
            .fail(format!("fork import called in state {s}"))),
    }
}

// ------------------------------------------------------------------- run --

#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    Ok(Vec<Cv>),
    Trap(String),
    /// A non-trap error (harness protocol failure in mode B).
    Error(String),
}

impl Outcome {
    fn resource(&self) -> bool {
        matches!(self, Outcome::Trap(t) if t == "StackOverflow" || t == "OutOfFuel")
    }
}

fn outcome_of_err(store: &mut Store<Host>, e: &wasmtime::Error) -> Outcome {
    if e.is::<wasmtime::ThrownException>() {
        // Uncaught: take it, or the store stays "throwing".
        let _ = store.take_pending_exception();
        return Outcome::Trap("UncaughtException".into());
    }
    match e.downcast_ref::<Trap>() {
        Some(t) => Outcome::Trap(format!("{t:?}")),
        None => Outcome::Error(format!("{e:#}")),
    }
}

#[derive(Debug, Default)]
struct Run {
    instantiate: Option<Outcome>,
    calls: Vec<(String, Outcome)>,
    trace: Vec<(usize, Vec<Cv>)>,
    memory: Option<Vec<u8>>,
    globals: Vec<(String, Cv)>,
    host_globals: Vec<Cv>,
    tables: Vec<(String, u64)>,
    stats: ForkStats,
    wasm_calls: Vec<u64>,
    failure: Option<String>,
}

impl Run {
    fn resource_exhausted(&self) -> bool {
        self.instantiate.as_ref().is_some_and(Outcome::resource)
            || self.calls.iter().any(|(_, o)| o.resource())
    }
}

/// The ABI parameters mode B needs.
#[derive(Debug, Clone, Copy)]
struct ForkParams {
    pointer_width: u8,
    min_buffer: u64,
    seed: u64,
    /// `Some(frames_offset)`: flip a byte of the saved frames after each
    /// unwind (harness sensitivity check).
    corrupt_from: Option<u64>,
}

/// Instantiates `module` and calls the exports `export_names` in order,
/// refilling wasm-smith's fuel global to `refill` before each.
fn run(
    engine: &Engine,
    module: &Module,
    fork_index: usize,
    export_names: &[String],
    refill: i32,
    fuel: u64,
    fork: Option<ForkParams>,
) -> Run {
    let limits = StoreLimitsBuilder::new()
        .memory_size(8 << 20)
        .table_elements(10_000)
        .instances(4)
        .build();
    let mode = if fork.is_some() {
        Mode::Fork
    } else {
        Mode::Plain
    };
    let host = Host {
        limits,
        counter: 0,
        trace: Vec::new(),
        in_export: false,
        wasm_calls: vec![0; module.imports().len()],
        fork: fork.map(|f| ForkHost {
            pointer_width: f.pointer_width,
            min_buffer: f.min_buffer,
            rng: Rng::new(f.seed),
            pending: None,
            stats: ForkStats::default(),
            corrupt_from: f.corrupt_from,
        }),
        failure: None,
    };
    let mut store = Store::new(engine, host);
    store.limiter(|h| &mut h.limits);
    store.set_fuel(fuel).expect("fuel enabled");
    let mut out = Run::default();

    let mut imports = Vec::new();
    let mut host_globals = Vec::new();
    for (idx, imp) in module.imports().enumerate() {
        match imp.ty() {
            ExternType::Func(ft) => {
                let result_tys: Vec<ValType> = ft.results().collect();
                let is_fork = idx == fork_index;
                let f = Func::new(
                    &mut store,
                    ft.clone(),
                    move |mut caller, params, results| {
                        if is_fork && mode == Mode::Fork {
                            fork_call(&mut caller, idx, params, &result_tys, results)
                        } else {
                            if caller.data().in_export && caller.get_export(MEMORY_EXPORT).is_some()
                            {
                                caller.data_mut().wasm_calls[idx] += 1;
                            }
                            plain_call(caller.data_mut(), idx, params, &result_tys, results);
                            Ok(())
                        }
                    },
                );
                imports.push(Extern::Func(f));
            }
            ExternType::Global(gt) => {
                let v = make_val(gt.content(), mix64(idx as u64 + 99));
                let g = Global::new(&mut store, gt.clone(), v).expect("host global");
                host_globals.push(g);
                imports.push(Extern::Global(g));
            }
            other => {
                out.instantiate = Some(Outcome::Error(format!("unexpected import {other:?}")));
                return out;
            }
        }
    }
    let instance = match Instance::new(&mut store, module, &imports) {
        Ok(i) => i,
        Err(e) => {
            out.instantiate = Some(outcome_of_err(&mut store, &e));
            out.failure = store.data_mut().failure.take();
            return out;
        }
    };

    // Like the reference kernel, make sure there is some memory to place a
    // buffer in: a host action, done identically in every run.
    if let Some(mem) = instance.get_memory(&mut store, MEMORY_EXPORT) {
        if mem.data_size(&store) < 65536 {
            let _ = mem.grow(&mut store, 1);
        }
    }

    let state_fn = fork.and_then(|_| instance.get_func(&mut store, abi::EXPORT_STATE));
    'rounds: for round in 0..2 {
        for name in export_names {
            let Some(func) = instance.get_func(&mut store, name) else {
                out.calls
                    .push((name.clone(), Outcome::Error("missing export".into())));
                continue;
            };
            if let Some(g) = instance.get_global(&mut store, FUEL_EXPORT) {
                let _ = g.set(&mut store, Val::I32(refill));
            }
            let ty = func.ty(&store);
            let args = args_for(&ty, round);
            let o = call_export(&mut store, &instance, func, &ty, &args, state_fn);
            let stop = o.resource() || matches!(o, Outcome::Error(_));
            out.calls.push((name.clone(), o));
            if stop {
                break 'rounds;
            }
        }
    }

    if let Some(mem) = instance.get_memory(&mut store, MEMORY_EXPORT) {
        out.memory = Some(mem.data(&store).to_vec());
    }
    for e in module.exports() {
        match e.ty() {
            ExternType::Global(_) => {
                if let Some(g) = instance.get_global(&mut store, e.name()) {
                    out.globals
                        .push((e.name().to_string(), cv(&g.get(&mut store))));
                }
            }
            ExternType::Table(_) => {
                if let Some(t) = instance.get_table(&mut store, e.name()) {
                    out.tables.push((e.name().to_string(), t.size(&store)));
                }
            }
            _ => {}
        }
    }
    out.host_globals = host_globals
        .iter()
        .map(|g| cv(&g.get(&mut store)))
        .collect();
    let host = store.data_mut();
    out.trace = std::mem::take(&mut host.trace);
    out.stats = host.fork.as_ref().map(|f| f.stats).unwrap_or_default();
    out.failure = host.failure.take();
    out.wasm_calls = std::mem::take(&mut host.wasm_calls);
    out
}

/// Calls an export; in mode B, drives unwind/rewind until it returns in
/// state NORMAL.
fn call_export(
    store: &mut Store<Host>,
    instance: &Instance,
    func: Func,
    ty: &FuncType,
    args: &[Val],
    state_fn: Option<Func>,
) -> Outcome {
    let mut results: Vec<Val> = ty
        .results()
        .map(|t| Val::default_for_ty(&t).unwrap_or(Val::I32(0)))
        .collect();
    let mut rounds = 0u32;
    loop {
        store.data_mut().in_export = true;
        let r = func.call(&mut *store, args, &mut results);
        store.data_mut().in_export = false;
        let Some(state_fn) = state_fn else {
            return match r {
                Ok(()) => Outcome::Ok(results.iter().map(cv).collect()),
                Err(e) => outcome_of_err(store, &e),
            };
        };
        if let Some(f) = store.data().failure.clone() {
            return Outcome::Error(f);
        }
        let mut st = [Val::I32(0)];
        if let Err(e) = state_fn.call(&mut *store, &[], &mut st) {
            return Outcome::Error(format!("wpk_fork_state failed: {e:#}"));
        }
        let state = st[0].i32().unwrap_or(-1);
        let pending_buf = store
            .data()
            .fork
            .as_ref()
            .and_then(|f| f.pending.as_ref())
            .map(|p| p.buf);
        match (r, state) {
            (r, 0) => {
                if pending_buf.is_some() {
                    return Outcome::Error("export returned in NORMAL with a fork pending".into());
                }
                return match r {
                    Ok(()) => Outcome::Ok(results.iter().map(cv).collect()),
                    Err(e) => outcome_of_err(store, &e),
                };
            }
            (Ok(()), 1) => {
                let Some(buf) = pending_buf else {
                    return Outcome::Error("export returned UNWINDING without a fork".into());
                };
                rounds += 1;
                if rounds > 10 * MAX_FORKS {
                    return Outcome::Error("too many rewinds".into());
                }
                let ptr = match store.data().fork.as_ref().map(|f| f.pointer_width) {
                    Some(8) => Val::I64(buf as i64),
                    _ => Val::I32(buf as i32),
                };
                corrupt_frames(store, instance, buf);
                for (name, args) in [
                    (abi::EXPORT_UNWIND_END, vec![]),
                    (abi::EXPORT_REWIND_BEGIN, vec![ptr]),
                ] {
                    let f = instance
                        .get_func(&mut *store, name)
                        .expect("control export");
                    if let Err(e) = f.call(&mut *store, &args, &mut []) {
                        return Outcome::Error(format!("`{name}` failed: {e:#}"));
                    }
                }
            }
            (Err(e), s) => {
                if matches!(
                    e.downcast_ref::<Trap>(),
                    Some(Trap::StackOverflow | Trap::OutOfFuel)
                ) {
                    return outcome_of_err(store, &e);
                }
                return Outcome::Error(format!("trapped in state {s}: {e:#}"));
            }
            (Ok(()), s) => return Outcome::Error(format!("export returned in state {s}")),
        }
    }
}

/// With `corrupt_from` set, flips one byte among the frames written by the
/// unwind that just ended.
fn corrupt_frames(store: &mut Store<Host>, instance: &Instance, buf: u64) {
    let Some(fh) = store.data_mut().fork.as_mut() else {
        return;
    };
    let Some(from) = fh.corrupt_from else {
        return;
    };
    let (wide, pick) = (fh.pointer_width == 8, fh.rng.next_u64());
    let Some(mem) = instance.get_memory(&mut *store, MEMORY_EXPORT) else {
        return;
    };
    let data = mem.data_mut(&mut *store);
    let b = buf as usize;
    let cursor = if wide {
        u64::from_le_bytes(data[b..b + 8].try_into().expect("8 bytes"))
    } else {
        u64::from(u32::from_le_bytes(
            data[b..b + 4].try_into().expect("4 bytes"),
        ))
    };
    let start = buf + from;
    if cursor > start && (cursor as usize) <= data.len() {
        let i = (start + pick % (cursor - start)) as usize;
        data[i] ^= 1 << ((pick >> 32) % 8);
    }
}

/// The first difference between the original's run and the instrumented
/// one's, if any.
fn compare(orig: &Run, inst: &Run) -> Option<String> {
    if let Some(f) = &inst.failure {
        return Some(format!("host protocol failure: {f}"));
    }
    if orig.instantiate != inst.instantiate {
        return Some(format!(
            "instantiation: original {:?}, instrumented {:?}",
            orig.instantiate, inst.instantiate
        ));
    }
    for (i, (a, b)) in orig.calls.iter().zip(&inst.calls).enumerate() {
        if a != b {
            return Some(format!(
                "call #{i} `{}`: original {:?}, instrumented {:?}",
                a.0, a.1, b.1
            ));
        }
    }
    if orig.calls.len() != inst.calls.len() {
        return Some(format!(
            "{} calls vs {}",
            orig.calls.len(),
            inst.calls.len()
        ));
    }
    if orig.trace != inst.trace {
        let i = orig
            .trace
            .iter()
            .zip(&inst.trace)
            .position(|(a, b)| a != b)
            .unwrap_or(orig.trace.len().min(inst.trace.len()));
        return Some(format!(
            "import call #{i} differs (of {} vs {}): original {:?}, instrumented {:?}",
            orig.trace.len(),
            inst.trace.len(),
            orig.trace.get(i),
            inst.trace.get(i)
        ));
    }
    match (&orig.memory, &inst.memory) {
        (Some(a), Some(b)) if a != b => {
            if a.len() != b.len() {
                return Some(format!("memory 0 size: {} vs {}", a.len(), b.len()));
            }
            let i = a.iter().zip(b).position(|(x, y)| x != y).unwrap_or(0);
            return Some(format!(
                "memory 0 differs at {i:#x}: {:#04x} vs {:#04x}",
                a[i], b[i]
            ));
        }
        (a, b) if a.is_some() != b.is_some() => {
            return Some("memory 0 exported in one only".into())
        }
        _ => {}
    }
    if orig.globals != inst.globals {
        return Some(format!(
            "exported globals: {:?} vs {:?}",
            orig.globals, inst.globals
        ));
    }
    if orig.host_globals != inst.host_globals {
        return Some(format!(
            "imported globals: {:?} vs {:?}",
            orig.host_globals, inst.host_globals
        ));
    }
    if orig.tables != inst.tables {
        return Some(format!(
            "exported table sizes: {:?} vs {:?}",
            orig.tables, inst.tables
        ));
    }
    None
}

// ----------------------------------------------------------------- cases --

#[derive(Debug, Default)]
struct Tally {
    cases: u64,
    not_generated: u64,
    no_fork_import: u64,
    fork_referenced: u64,
    instrumented: u64,
    instrumented_fork_referenced: u64,
    refused_unsupported: u64,
    refused_module: u64,
    refused_fork_referenced: u64,
    engine_rejected: u64,
    resource_skipped: u64,
    compared_a: u64,
    compared_b: u64,
    skipped_b: u64,
    cases_with_forks: u64,
    /// Of the original runs: export calls, those that trapped, import calls,
    /// cases whose exports called the fork import.
    fork_called: u64,
    uncaught: u64,
    corruption_detected: u64,
    calls: u64,
    traps: u64,
    import_calls: u64,
    stats: ForkStats,
    reasons: BTreeMap<String, u64>,
    failures: Vec<String>,
}

impl Tally {
    fn merge(&mut self, o: Tally) {
        self.cases += o.cases;
        self.not_generated += o.not_generated;
        self.no_fork_import += o.no_fork_import;
        self.fork_referenced += o.fork_referenced;
        self.instrumented += o.instrumented;
        self.instrumented_fork_referenced += o.instrumented_fork_referenced;
        self.refused_unsupported += o.refused_unsupported;
        self.refused_module += o.refused_module;
        self.refused_fork_referenced += o.refused_fork_referenced;
        self.engine_rejected += o.engine_rejected;
        self.resource_skipped += o.resource_skipped;
        self.compared_a += o.compared_a;
        self.compared_b += o.compared_b;
        self.skipped_b += o.skipped_b;
        self.cases_with_forks += o.cases_with_forks;
        self.calls += o.calls;
        self.fork_called += o.fork_called;
        self.uncaught += o.uncaught;
        self.corruption_detected += o.corruption_detected;
        self.traps += o.traps;
        self.import_calls += o.import_calls;
        self.stats += o.stats;
        for (k, v) in o.reasons {
            *self.reasons.entry(k).or_default() += v;
        }
        self.failures.extend(o.failures);
    }

    fn summary(&self) -> String {
        let mut s = format!(
            "differential: cases={} instrumented={} refused={} (unsupported={} module={}) compared: A={} B={} (with forks={}) \
             skipped: not-generated={} no-fork-import={} engine-rejected={} resource={} B-only={} \
             forks={} aborts={} no-room={} capped={} fork-referenced={} (instrumented {}, refused {}) \
             original runs: calls={} traps={} (uncaught exceptions {}) import-calls={} fork-called={} failures={}",
            self.cases,
            self.instrumented,
            self.refused_unsupported + self.refused_module,
            self.refused_unsupported,
            self.refused_module,
            self.compared_a,
            self.compared_b,
            self.cases_with_forks,
            self.not_generated,
            self.no_fork_import,
            self.engine_rejected,
            self.resource_skipped,
            self.skipped_b,
            self.stats.forks,
            self.stats.aborts,
            self.stats.no_room,
            self.stats.capped,
            self.fork_referenced,
            self.instrumented_fork_referenced,
            self.refused_fork_referenced,
            self.calls,
            self.traps,
            self.uncaught,
            self.import_calls,
            self.fork_called,
            self.failures.len(),
        );
        let mut reasons: Vec<_> = self.reasons.iter().collect();
        reasons.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        for (r, n) in reasons.into_iter().take(8) {
            let _ = write!(s, "\n  refused {n:>5}x: {r}");
        }
        let mut kinds: BTreeMap<String, u64> = BTreeMap::new();
        for f in &self.failures {
            *kinds.entry(failure_kind(f)).or_default() += 1;
        }
        let mut kinds: Vec<_> = kinds.into_iter().collect();
        kinds.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        for (k, n) in kinds.into_iter().take(12) {
            let _ = write!(s, "\n  FAILED  {n:>5}x: {k}");
        }
        s
    }
}

/// A failure message without its seed, numbers and values: groups failures
/// by kind in the summary.
fn failure_kind(f: &str) -> String {
    let first = f.lines().next().unwrap_or("");
    let msg = first.split_once(": ").map_or(first, |(_, m)| m);
    let mut out = String::new();
    let mut depth = 0;
    for c in msg.chars() {
        match c {
            '(' | '[' | '{' => {
                if depth == 0 {
                    out.push_str("(..)");
                }
                depth += 1;
            }
            ')' | ']' | '}' => depth -= 1,
            c if depth == 0 && !c.is_ascii_digit() => out.push(c),
            _ => {}
        }
    }
    out.chars().take(110).collect()
}

/// Shortens a refusal message to its reason (function names vary).
fn reason_key(e: &Error) -> String {
    let s = match e {
        Error::Unsupported { reason, .. } => format!("unsupported: {reason}"),
        other => other.to_string(),
    };
    let s: String = s
        .chars()
        .map(|c| if c.is_ascii_digit() { '#' } else { c })
        .collect();
    s.chars().take(120).collect()
}

fn save_failure(seed: u64, input: &[u8], output: Option<&[u8]>, msg: &str) -> String {
    let dir = smith::failure_dir("differential-failures");
    let _ = std::fs::create_dir_all(&dir);
    let base = dir.join(format!("{seed:016x}"));
    let _ = std::fs::write(base.with_extension("wasm"), input);
    if let Some(out) = output {
        let _ = std::fs::write(base.with_extension("out.wasm"), out);
    }
    let _ = std::fs::write(base.with_extension("txt"), msg);
    format!("seed {seed:#x}: {msg}\n    saved to {}.wasm (replay: FORKIFY_DIFF_SEED={seed:#x} FORKIFY_DIFF_CASES=1)", base.display())
}

/// How the "instrumented" module of a case is obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transform {
    Instrument,
    /// The module itself: checks the harness (the comparison must find no
    /// difference and generated modules must terminate).
    Identity,
    /// Instrument, then corrupt the saved frames in mode B: checks that the
    /// comparison notices (differences are counted, not failures).
    CorruptFrames,
}

fn run_case(engine: &Engine, seed: u64, transform: Transform, t: &mut Tally) {
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
    let fork_referenced = smith::references_function(&bytes, fork_func);
    t.fork_referenced += fork_referenced as u64;
    let fail = |t: &mut Tally, output: Option<&[u8]>, msg: String| {
        let msg = format!("{msg}\n    fork import {fork_name}; {}", knobs.describe());
        t.failures.push(save_failure(seed, &bytes, output, &msg));
    };
    if let Some(f) = &orig.failure {
        return fail(t, None, format!("harness failure on the original: {f}"));
    }

    let config = Config::with_fork_imports(vec![fork_name.clone()]);
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
                Ok(Err(e)) => return fail(t, None, format!("instrument() failed: {e}")),
                Ok(Ok(i)) => (i.bytes, Some(i.report)),
            }
        }
    };
    if transform != Transform::Identity {
        t.instrumented += 1;
        t.instrumented_fork_referenced += fork_referenced as u64;
    }
    if let Err(e) = smith::validate(&out) {
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
        if let Err(e) = check_control_exports(&inst_module, &out) {
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

/// The bodies of the defined functions, by function index.
fn bodies(wasm: &[u8]) -> BTreeMap<u32, &[u8]> {
    use wasmparser::{Payload, TypeRef};
    let mut out = BTreeMap::new();
    let mut next = 0u32;
    for payload in wasmparser::Parser::new(0).parse_all(wasm).flatten() {
        match payload {
            Payload::ImportSection(r) => {
                next += r
                    .into_imports()
                    .flatten()
                    .filter(|i| matches!(i.ty, TypeRef::Func(_) | TypeRef::FuncExact(_)))
                    .count() as u32;
            }
            Payload::CodeSectionEntry(b) => {
                out.insert(next, &wasm[b.range()]);
                next += 1;
            }
            _ => {}
        }
    }
    out
}

/// What ABI.md §1 and §7 promise about an output, checked against the
/// report.
fn check_structure(
    input: &[u8],
    out: &[u8],
    report: &forkify_instrument::Report,
    config: &Config,
) -> Result<(), String> {
    if report.passed_through {
        return if out == input {
            Ok(())
        } else {
            Err("passed through but not byte-identical".into())
        };
    }
    let s = match abi::AbiSection::find(out) {
        Ok(Some(s)) => s,
        Ok(None) => return Err("output has no forkify.abi section".into()),
        Err(e) => return Err(format!("bad forkify.abi section: {e}")),
    };
    let want_imports: Vec<String> = config
        .sorted_fork_imports()
        .iter()
        .map(|i| i.to_string())
        .collect();
    let problems = [
        (
            s.version != abi::ABI_VERSION,
            format!("section version {}", s.version),
        ),
        (
            s.pointer_width != report.pointer_width,
            format!(
                "section pointer width {} vs report {}",
                s.pointer_width, report.pointer_width
            ),
        ),
        (
            s.flags & abi::FLAG_ABORT_ON_OVERFLOW == 0,
            "abort-on-overflow flag not set".into(),
        ),
        (
            u32::from(s.frame_header_size) != abi::FRAME_HEADER_SIZE,
            format!("frame header size {}", s.frame_header_size),
        ),
        (
            s.frames_offset != report.frames_offset,
            format!(
                "frames_offset {} vs report {}",
                s.frames_offset, report.frames_offset
            ),
        ),
        (
            s.frames_offset % 8 != 0 || s.frames_offset < 2 * u32::from(s.pointer_width),
            format!("frames_offset {}", s.frames_offset),
        ),
        (
            s.abort_reserve != report.abort_reserve,
            format!(
                "abort_reserve {} vs report {}",
                s.abort_reserve, report.abort_reserve
            ),
        ),
        (
            s.abort_reserve % 8 != 0 || s.abort_reserve < 16,
            format!("abort_reserve {}", s.abort_reserve),
        ),
        (
            s.max_frame_size != report.max_frame_size,
            format!(
                "max_frame_size {} vs report {}",
                s.max_frame_size, report.max_frame_size
            ),
        ),
        (
            s.max_frame_size % 8 != 0,
            format!("max_frame_size {} not a multiple of 8", s.max_frame_size),
        ),
        (
            s.instrumented_functions as usize != report.functions.len(),
            format!(
                "{} instrumented functions vs {} reported",
                s.instrumented_functions,
                report.functions.len()
            ),
        ),
        (
            s.info.fork_imports != want_imports,
            format!(
                "section fork imports {:?}, config {:?}",
                s.info.fork_imports, want_imports
            ),
        ),
    ];
    if let Some((_, p)) = problems.iter().find(|(bad, _)| *bad) {
        return Err(format!("section/report mismatch: {p}"));
    }
    for (i, f) in report.functions.iter().enumerate() {
        if f.ordinal as usize != i || (i > 0 && report.functions[i - 1].index >= f.index) {
            return Err(format!(
                "report.functions not in ordinal / ascending index order at {i}: {f:?}"
            ));
        }
        if f.frame_size % 8 != 0
            || f.frame_size < abi::FRAME_HEADER_SIZE
            || f.frame_size > s.max_frame_size
        {
            return Err(format!(
                "function {} frame size {} (max {})",
                f.name, f.frame_size, s.max_frame_size
            ));
        }
    }
    match forkify_instrument::instrument(out, config) {
        Err(Error::AlreadyInstrumented(_)) => {}
        Err(e) => {
            return Err(format!(
                "re-instrumenting the output: expected AlreadyInstrumented, got: {e}"
            ))
        }
        Ok(_) => return Err("the output was instrumented a second time".into()),
    }
    let instrumented: std::collections::BTreeSet<u32> =
        report.functions.iter().map(|f| f.index).collect();
    let after = bodies(out);
    let changed: Vec<_> = bodies(input)
        .into_iter()
        .filter(|(i, b)| !instrumented.contains(i) && after.get(i) != Some(b))
        .map(|(i, _)| i)
        .collect();
    if !changed.is_empty() {
        return Err(format!(
            "functions {changed:?} are not reported as instrumented but their bodies changed (ABI.md §1: they keep their exact bytes)"
        ));
    }
    Ok(())
}

/// The five control exports, with `ptr` the pointer type.
fn check_control_exports(module: &Module, out: &[u8]) -> Result<(), String> {
    let width = abi::AbiSection::find(out)
        .ok()
        .flatten()
        .map_or(4, |s| s.pointer_width);
    for (name, params, results) in abi::EXPORTS {
        let Some(ExternType::Func(ft)) = module.get_export(name) else {
            return Err(format!("control export `{name}` missing or not a function"));
        };
        let ty = |t: &str| match (t, width) {
            ("ptr", 8) | ("i64", _) => "i64",
            _ => "i32",
        };
        let show = |ts: &mut dyn Iterator<Item = ValType>| -> Vec<String> {
            ts.map(|t| t.to_string()).collect()
        };
        let want_p: Vec<String> = params.iter().map(|p| ty(p).to_string()).collect();
        let want_r: Vec<String> = results.iter().map(|r| ty(r).to_string()).collect();
        let (got_p, got_r) = (show(&mut ft.params()), show(&mut ft.results()));
        if got_p != want_p || got_r != want_r {
            return Err(format!("control export `{name}`: {got_p:?} -> {got_r:?}, expected {want_p:?} -> {want_r:?}"));
        }
    }
    Ok(())
}

/// Runs `cases` cases from `first_seed` on a few threads with big stacks.
fn run_cases(first_seed: u64, cases: u64, transform: Transform) -> Tally {
    let threads = smith::env_u64("FORKIFY_DIFF_THREADS")
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

fn report_failures(t: &Tally) {
    if !t.failures.is_empty() {
        let shown: Vec<_> = t.failures.iter().take(20).cloned().collect();
        panic!(
            "{} failing case(s):\n{}",
            t.failures.len(),
            shown.join("\n")
        );
    }
}

// ----------------------------------------------------------------- tests --

/// The main property: instrumenting preserves semantics, with and without
/// real forks, and never panics or emits an invalid module.
#[test]
fn instrumented_modules_behave_like_the_original() {
    let cases = smith::env_u64("FORKIFY_DIFF_CASES").unwrap_or(DEFAULT_CASES);
    let seed = smith::env_u64("FORKIFY_DIFF_SEED").unwrap_or(DEFAULT_SEED);
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

// ------------------------------------------- mode B harness self-check --

/// A module and a hand-instrumented version of it (following ABI.md §2–§7):
/// checks mode B's host protocol before (and independently of) the real
/// instrumenter. With `broken`, replay re-runs the code before the call
/// site, which the ABI forbids: the harness must notice.
fn hand_instrumented(broken: bool) -> (Vec<u8>, Vec<u8>) {
    let body = r#"
      (global.set $g (i32.add (global.get $g) (i32.const 1)))
      (i32.store (i32.const 100) (i32.add (i32.load (i32.const 100)) (local.get $x)))"#;
    let original = format!(
        r#"(module
          (import "env" "fork" (func $fork (param i32) (result i32)))
          (memory (export "{MEMORY_EXPORT}") 1)
          (global $g (export "g") (mut i32) (i32.const 0))
          (func (export "run") (param $x i32) (result i32)
            {body}
            (i32.add (call $fork (local.get $x)) (global.get $g))))"#
    );
    // frames_offset = align8(2P + 4 bytes of $g) = 16; one frame of 16
    // bytes (header only: no carryovers, no live locals); abort_reserve 16.
    let replay_skip = if broken { "" } else { "(br $resume)" };
    let instrumented = format!(
        r#"(module
          (import "env" "fork" (func $fork (param i32) (result i32)))
          (memory (export "{MEMORY_EXPORT}") 1)
          (global $g (export "g") (mut i32) (i32.const 0))
          (global $state (mut i32) (i32.const 0))
          (global $buf (mut i32) (i32.const 0))
          (func (export "run") (param $x i32) (result i32) (local $r i32) (local $c i32)
            (block $resume
              (if (i32.ge_s (global.get $state) (i32.const 2)) (then
                (local.set $c (i32.sub (i32.load (global.get $buf)) (i32.const 16)))
                (i32.store (global.get $buf) (local.get $c))
                (if (i32.load (local.get $c)) (then unreachable))
                {replay_skip}))
              {body})
            (loop $again
              (local.set $r (call $fork (local.get $x)))
              (if (i32.eq (global.get $state) (i32.const 1)) (then
                (local.set $c (i32.load (global.get $buf)))
                (i32.store (local.get $c) (i32.const 0))
                (i32.store offset=4 (local.get $c) (i32.const 0))
                (i32.store offset=8 (local.get $c) (i32.const 0))
                (i32.store offset=12 (local.get $c) (i32.const 0))
                (if (i32.gt_u (i32.add (local.get $c) (i32.const 32)) (i32.load offset=4 (global.get $buf)))
                  (then (global.set $state (i32.const 3)) (br $again)))
                (i32.store (global.get $buf) (i32.add (local.get $c) (i32.const 16)))
                (return (i32.const 0)))))
            (i32.add (local.get $r) (global.get $g)))
          (func (export "wpk_fork_unwind_begin") (param $p i32)
            (if (global.get $state) (then unreachable))
            (global.set $state (i32.const 1))
            (global.set $buf (local.get $p))
            (i32.store (local.get $p) (i32.add (local.get $p) (i32.const 16)))
            (i32.store offset=8 (local.get $p) (global.get $g)))
          (func (export "wpk_fork_unwind_end")
            (if (i32.ne (global.get $state) (i32.const 1)) (then unreachable))
            (global.set $state (i32.const 0))
            (global.set $buf (i32.const 0)))
          (func (export "wpk_fork_rewind_begin") (param $p i32)
            (if (global.get $state) (then unreachable))
            (global.set $state (i32.const 2))
            (global.set $buf (local.get $p))
            (global.set $g (i32.load offset=8 (local.get $p))))
          (func (export "wpk_fork_rewind_end")
            (if (i32.lt_s (global.get $state) (i32.const 2)) (then unreachable))
            (global.set $state (i32.const 0))
            (global.set $buf (i32.const 0)))
          (func (export "wpk_fork_state") (result i32) (global.get $state)))"#
    );
    let mut inst = wat::parse_str(&instrumented).expect("hand-instrumented wat");
    let section = abi::AbiSection {
        version: abi::ABI_VERSION,
        pointer_width: 4,
        flags: abi::FLAG_ABORT_ON_OVERFLOW,
        frame_header_size: abi::FRAME_HEADER_SIZE as u16,
        frames_offset: 16,
        instrumented_functions: 1,
        max_frame_size: 16,
        abort_reserve: 16,
        info: abi::SectionInfo {
            tool: "hand".into(),
            fork_imports: vec!["env.fork".into()],
        },
    };
    let mut payload = vec![abi::SECTION_NAME.len() as u8];
    payload.extend_from_slice(abi::SECTION_NAME.as_bytes());
    payload.extend(section.encode());
    inst.push(0);
    let mut n = payload.len();
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        inst.push(if n == 0 { byte } else { byte | 0x80 });
        if n == 0 {
            break;
        }
    }
    inst.extend(payload);
    (wat::parse_str(&original).expect("original wat"), inst)
}

/// Runs original and hand-instrumented module in mode B with `seeds`
/// buffer-placement seeds; the first difference, and the fork statistics.
fn hand_mode_b(broken: bool, seeds: u64) -> (Option<String>, ForkStats) {
    let engine = engine();
    let (orig, inst) = hand_instrumented(broken);
    let section = abi::AbiSection::find(&inst)
        .expect("section")
        .expect("present");
    let orig = Module::new(&engine, &orig).expect("original compiles");
    let inst = Module::new(&engine, &inst).expect("instrumented compiles");
    let names = vec!["run".to_string()];
    let reference = run(&engine, &orig, 0, &names, 0, FUEL_ORIGINAL, None);
    let mut stats = ForkStats::default();
    for seed in 0..seeds {
        let params = ForkParams {
            pointer_width: section.pointer_width,
            min_buffer: u64::from(section.frames_offset + section.abort_reserve),
            seed,
            corrupt_from: None,
        };
        let b = run(
            &engine,
            &inst,
            0,
            &names,
            0,
            FUEL_INSTRUMENTED,
            Some(params),
        );
        stats += b.stats;
        if let Some(d) = compare(&reference, &b) {
            return (Some(d), stats);
        }
    }
    (None, stats)
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
