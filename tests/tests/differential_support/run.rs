//! One run of a module: instantiate, call every entry point twice, and
//! record results, traps, the import trace, memory, globals and tables; and
//! the comparison of two runs.

use super::*;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Ok(Vec<Cv>),
    Trap(String),
    /// A non-trap error (harness protocol failure in mode B).
    Error(String),
}

impl Outcome {
    pub fn resource(&self) -> bool {
        matches!(self, Outcome::Trap(t) if t == "StackOverflow" || t == "OutOfFuel")
    }
}

pub fn outcome_of_err(store: &mut Store<Host>, e: &wasmtime::Error) -> Outcome {
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
pub struct Run {
    pub instantiate: Option<Outcome>,
    pub calls: Vec<(String, Outcome)>,
    pub trace: Vec<(usize, Vec<Cv>)>,
    pub memory: Option<Vec<u8>>,
    pub globals: Vec<(String, Cv)>,
    pub host_globals: Vec<Cv>,
    pub tables: Vec<(String, u64)>,
    pub stats: ForkStats,
    pub wasm_calls: Vec<u64>,
    pub failure: Option<String>,
}

impl Run {
    pub fn resource_exhausted(&self) -> bool {
        self.instantiate.as_ref().is_some_and(Outcome::resource)
            || self.calls.iter().any(|(_, o)| o.resource())
    }
}

/// The ABI parameters mode B needs.
#[derive(Debug, Clone, Copy)]
pub struct ForkParams {
    pub pointer_width: u8,
    pub min_buffer: u64,
    pub seed: u64,
    /// `Some(frames_offset)`: flip a byte of the saved frames after each
    /// unwind (harness sensitivity check).
    pub corrupt_from: Option<u64>,
}

/// Instantiates `module` and calls the exports `export_names` in order,
/// refilling wasm-smith's fuel global to `refill` before each.
pub fn run(
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
pub fn call_export(
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
pub fn corrupt_frames(store: &mut Store<Host>, instance: &Instance, buf: u64) {
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
pub fn compare(orig: &Run, inst: &Run) -> Option<String> {
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
