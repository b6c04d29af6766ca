//! Orders the stages: preflight, refusal screen, parse, call graph,
//! operand types, reshape, plans, runtime, rewrite, section, emit,
//! validate. Each stage is entered through [`Progress`], so a panic
//! anywhere (walrus's included) becomes an [`Error::Internal`] naming the
//! stage it happened in, and bad input never takes the caller down.

use std::cell::Cell;
use std::collections::{BTreeSet, HashMap};

use walrus::{FunctionId, FunctionKind, Module};

use crate::analysis::callgraph::{CallGraph, CodeEffects};
use crate::analysis::index::{self, FunctionIndex};
use crate::plan::new_locals::NewLocals;
use crate::plan::{plan_function, Ctx, FuncPlan};
use crate::rewrite::twin;
use crate::walrus_gaps::{self, operand_types::OperandTypes};
use crate::{
    emit, frame, preflight, runtime, Config, Error, FunctionReport, Report, Result, Stage,
};

/// What a replay twin's name adds to its function's.
const TWIN_SUFFIX: &str = "$forkify_replay";

/// An instrumented module and what was done to it.
#[derive(Debug, Clone)]
pub struct Instrumented {
    /// The output module.
    pub bytes: Vec<u8>,
    /// What was done.
    pub report: Report,
    /// The output's fork ABI check ([`forkify_abi::verify()`]), done on the
    /// same pass that validated it; `None` when the module was passed
    /// through unchanged.
    pub verified: Option<forkify_abi::Verified>,
}

/// Why a function is on a fork path: the chain of calls from it to a fork
/// import, each step written as a function name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explanation {
    /// The function asked about, then each callee, ending at a fork import.
    /// Empty when the function is not on a fork path.
    pub chain: Vec<String>,
}

/// Instruments `wasm` for fork ABI 1.
///
/// A module that imports none of the fork imports comes back unchanged
/// (`report.passed_through`). Errors name the function and the reason;
/// [`Error::Internal`] is a bug in forkify, never an answer about the input.
pub fn instrument(wasm: &[u8], config: &Config) -> Result<Instrumented> {
    guarded(|p| run(wasm, config, p))
}

/// Explains why `function` (a name or `func[INDEX]`) is on a fork path.
pub fn explain(wasm: &[u8], config: &Config, function: &str) -> Result<Explanation> {
    guarded(|p| {
        preflight::check(wasm, config, false)?;
        p.enter(Stage::Parse);
        let module = walrus_gaps::parse(wasm)?;
        let index = FunctionIndex::build(&module);
        p.enter(Stage::CallGraph);
        let forks = index::fork_imports(&module, config)?;
        let graph = CallGraph::build(&module, forks, &Default::default());
        let id = index
            .find(function)
            .ok_or_else(|| Error::NoSuchFunction(function.to_string()))?;
        let chain = graph.chain(id).into_iter().map(|f| index.name(f)).collect();
        Ok(Explanation { chain })
    })
}

/// The stage the pipeline is in, for the error a panic turns into.
pub struct Progress {
    stage: Cell<Stage>,
    /// Developer aid (`FORKIFY_PROFILE` set): when the stage began, for a
    /// line per stage on standard error with its time and the process's
    /// resident memory at its end.
    profile: Option<Cell<std::time::Instant>>,
}

impl Progress {
    fn new() -> Progress {
        Progress {
            stage: Cell::new(Stage::Preflight),
            profile: std::env::var_os("FORKIFY_PROFILE")
                .map(|_| Cell::new(std::time::Instant::now())),
        }
    }

    /// Marks the start of `stage`.
    pub fn enter(&self, stage: Stage) {
        self.profile_line();
        self.stage.set(stage);
    }

    /// A line of the profile (nothing without `FORKIFY_PROFILE`).
    pub fn note(&self, what: impl FnOnce() -> String) {
        if self.profile.is_some() {
            eprintln!("forkify profile: {}", what());
        }
    }

    fn profile_line(&self) {
        if let Some(start) = &self.profile {
            let rss = std::fs::read_to_string("/proc/self/status")
                .ok()
                .and_then(|s| {
                    s.lines()
                        .find(|l| l.starts_with("VmRSS:"))
                        .map(|l| l[6..].trim().to_string())
                })
                .unwrap_or_default();
            eprintln!(
                "forkify profile: {:<10} {:>8.3} s  rss {rss}",
                self.stage.get().to_string(),
                start.get().elapsed().as_secs_f64()
            );
            start.set(std::time::Instant::now());
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.profile_line();
    }
}

/// Runs `f`, turning a panic into an [`Error::Internal`] of the stage it
/// happened in.
fn guarded<T>(f: impl FnOnce(&Progress) -> Result<T>) -> Result<T> {
    let progress = Progress::new();
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&progress))) {
        Ok(r) => r,
        Err(p) => {
            let msg = p
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            Err(Error::internal(
                progress.stage.get(),
                format!("panic: {msg}"),
            ))
        }
    }
}

/// The transform proper.
fn run(wasm: &[u8], config: &Config, p: &Progress) -> Result<Instrumented> {
    let pre = preflight::check(wasm, config, true)?;
    if pre.fork_imports_found.is_empty() {
        return Ok(Instrumented {
            bytes: wasm.to_vec(),
            report: Report {
                passed_through: true,
                bytes_before: wasm.len(),
                bytes_after: wasm.len(),
                ..Default::default()
            },
            verified: None,
        });
    }
    p.enter(Stage::Screen);
    crate::screen::screen(wasm, config, &pre)?;
    p.enter(Stage::Parse);
    // Walrus IR only for the functions that reach a fork import, when the
    // splice will put every other function's bytes back.
    let splices = walrus_gaps::splice::applies(wasm);
    let slim = (pre.reaches.iter().any(|r| !r) && splices)
        .then(|| walrus_gaps::slim::build(wasm, &pre.bodies, &pre.reaches))
        .flatten();
    let kept: &[bool] = if slim.is_some() { &pre.reaches } else { &[] };
    p.note(|| {
        let on = pre.reaches.iter().filter(|r| **r).count();
        let of = pre.reaches.len();
        let how = if slim.is_some() { "slim" } else { "whole" };
        format!("parse: {how}, {on} of {of} bodies reach a fork import")
    });
    let mut module = match slim {
        Some(slim) => walrus_gaps::parse_slim(slim)?,
        None => walrus_gaps::parse(wasm)?,
    };
    let index = FunctionIndex::build(&module);

    p.enter(Stage::CallGraph);
    let forks = index::fork_imports(&module, config)?;
    let code = code_effects(&module, &index, &pre, kept);
    let graph = CallGraph::build(&module, forks, &code);
    agrees(&graph, &index, &pre)?;
    for f in graph.on_path.keys() {
        if let FunctionKind::Local(lf) = &mut module.funcs.get_mut(*f).kind {
            walrus_gaps::dead_code::truncate(lf);
        }
    }
    let (memory, is64) = module
        .memories
        .iter()
        .next()
        .map(|m| (m.id(), m.memory64))
        .ok_or_else(|| {
            Error::Module(
                "the module has no memory: fork needs memory 0 for the save buffer".into(),
            )
        })?;
    let ptr_width = if is64 { 8 } else { 4 };

    // Functions on a fork path, in function-index order (their ordinals).
    let mut targets: Vec<FunctionId> = graph.on_path.keys().copied().collect();
    targets.sort_by_key(|f| index.of(*f));

    let facts = pre.facts;

    p.enter(Stage::Reshape);
    // Each function on its own, in parallel; the call graph then learns
    // where its calls went.
    let mut graph = graph;
    let relocated = {
        use rayon::prelude::*;
        let types = &module.types;
        let mut work: Vec<(FunctionId, &mut walrus::LocalFunction)> = module
            .funcs
            .iter_local_mut()
            .filter(|(f, _)| graph.on_path.contains_key(f))
            .collect();
        let (graph, facts) = (&graph, &facts);
        crate::parallel::run(|| {
            work.par_iter_mut()
                .map(|(f, lf)| {
                    let calls = graph.calls_by_loc(*f, lf);
                    let sites = graph.site_locs(*f, lf);
                    crate::reshape::reshape(lf, types, facts, &sites);
                    (*f, CallGraph::relocated(&calls, lf))
                })
                .collect::<Vec<_>>()
        })
    };
    for (f, calls) in relocated {
        graph.calls.insert(f, calls);
    }

    p.enter(Stage::Plan);
    let plans = plan_all(&mut module, &graph, &facts, &index, &targets)?;
    // Peak memory is reached while emitting: free what is done with first.
    drop((facts, graph));

    p.enter(Stage::Runtime);
    let snap = runtime::snapshot(&module, ptr_width);
    // An aborting activation writes its whole frame into the reserve before
    // it re-enters itself (ABI §6), so the reserve holds the largest frame.
    let max_frame = plans.iter().map(|p| p.frame_size).max().unwrap_or(0);
    let abort_reserve = frame::abort_reserve(max_frame);
    let mut popped = std::collections::BTreeMap::new();
    let mut stored = std::collections::BTreeMap::new();
    let mut loaded = std::collections::BTreeMap::new();
    for pl in &plans {
        let u = pl.runs();
        for (m, runs) in [
            (&mut popped, u.popped),
            (&mut stored, u.saves),
            (&mut loaded, u.loads),
        ] {
            for r in runs {
                *m.entry(r).or_insert(0u32) += 1;
            }
        }
    }
    let (saves, loads) = runtime::helpers(&popped, &stored, &loaded);
    let mem = runtime::add_globals(&mut module, memory, is64);
    let rt = runtime::add_runtime(&mut module, mem, &snap, abort_reserve, &saves, &loads);

    p.enter(Stage::Rewrite);
    let mut functions = Vec::new();
    let mut added = crate::rewrite::Bytes::default();
    // (function, its replay twin), in plan order.
    let mut twins: Vec<(FunctionId, FunctionId)> = Vec::new();
    // Each function on its own, in parallel (it only reads the module's
    // types); then, in plan order, its block types are declared and its
    // replay twin made.
    let before: Vec<(u32, u64)> = {
        use rayon::prelude::*;
        let module = &module;
        crate::parallel::run(|| {
            plans
                .par_iter()
                .map(|pl| {
                    (
                        locals_used(module, pl.id),
                        twin::own_registers(module, pl.id),
                    )
                })
                .collect()
        })
    };
    let rewritten: Vec<Option<crate::rewrite::Rewritten>> = {
        use rayon::prelude::*;
        let mut bodies: HashMap<FunctionId, &mut walrus::LocalFunction> =
            module.funcs.iter_local_mut().collect();
        let mut work: Vec<(&crate::plan::FuncPlan, Option<&mut walrus::LocalFunction>)> =
            plans.iter().map(|pl| (pl, bodies.remove(&pl.id))).collect();
        let (types, rt) = (&module.types, &rt);
        crate::parallel::run(|| {
            work.par_iter_mut()
                .map(|(pl, f)| {
                    f.as_mut()
                        .map(|f| crate::rewrite::rewrite(f, types, rt, pl))
                })
                .collect()
        })
    };
    for ((pl, done), (locals_before, own)) in plans.iter().zip(rewritten).zip(before) {
        let mut bytes = crate::rewrite::Bytes::default();
        let mut arms = Vec::new();
        if let (FunctionKind::Local(f), Some(done)) = (&mut module.funcs.get_mut(pl.id).kind, done)
        {
            done.types.declare(f, &mut module.types);
            bytes = done.bytes;
            arms = done.arms;
        }
        if config.replay_twins.wants(own, pl.added_registers()) {
            let name = format!("{}{}", index.name(pl.id), TWIN_SUFFIX);
            let twin = twin::copy(&mut module, pl.id, name);
            twin::hand_over(&mut module, pl.id, twin, rt.mem.state, &arms);
            bytes
                .0
                .insert("replay twin", twin::body_bytes(&module, twin));
            twins.push((pl.id, twin));
        }
        added.merge(&bytes);
        functions.push(FunctionReport {
            added_bytes: bytes.0.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
            index: index.of(pl.id),
            name: index.name(pl.id),
            ordinal: pl.ordinal,
            call_sites: pl.sites.len() as u32,
            locals_before: locals_before.saturating_sub(pl.locals_added),
            locals_added: pl.locals_added,
            frame_size: pl.frame_size,
        });
    }

    p.enter(Stage::Runtime);
    let fork_imports: Vec<String> = config
        .sorted_fork_imports()
        .iter()
        .map(|n| n.to_string())
        .collect();
    let data = runtime::section(
        ptr_width,
        snap.frames_offset,
        plans.len() as u32,
        max_frame,
        abort_reserve,
        &config.tool,
        fork_imports,
    );
    module.customs.add(walrus::RawCustomSection {
        name: forkify_abi::SECTION_NAME.to_string(),
        data,
    });
    module
        .producers
        .add_processed_by("cargo-forkify", env!("CARGO_PKG_VERSION"));

    p.enter(Stage::Emit);
    let placed: Vec<(FunctionId, u32)> = plans.iter().map(|pl| (pl.id, pl.ordinal)).collect();
    drop(plans);
    let emit::Emitted {
        bytes,
        placement,
        verified,
    } = emit::emit(
        module,
        splices.then_some(wasm),
        &index,
        &placed,
        &twins,
        &rt,
        &|s| p.enter(s),
    )?;
    for (f, (id, _)) in functions.iter_mut().zip(&placed) {
        if let Some((out_index, ordinal)) = placement.get(id) {
            f.index = *out_index;
            f.ordinal = *ordinal;
        }
    }
    functions.sort_by_key(|f| f.ordinal);
    Ok(Instrumented {
        report: Report {
            passed_through: false,
            pointer_width: ptr_width as u8,
            bytes_before: wasm.len(),
            bytes_after: bytes.len(),
            frames_offset: snap.frames_offset,
            abort_reserve,
            max_frame_size: max_frame,
            fork_imports_found: pre.fork_imports_found,
            added_bytes: added.0.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
            functions,
        },
        bytes,
        verified: Some(verified),
    })
}

/// What the bodies walrus was not given (`kept[i]` false; all were given
/// when `kept` is empty) do for the call graph: the tables they change,
/// the functions they and the sections take references to, and which of
/// them reach a fork import.
pub fn code_effects(
    module: &Module,
    index: &FunctionIndex,
    pre: &preflight::Preflight,
    kept: &[bool],
) -> CodeEffects {
    let tables: Vec<walrus::TableId> = module.tables.iter().map(|t| t.id()).collect();
    let stubbed: Vec<bool> = if kept.is_empty() {
        Vec::new()
    } else {
        pre.reaches
            .iter()
            .zip(kept)
            .map(|(r, k)| *r && !*k)
            .collect()
    };
    CodeEffects {
        tables_changed: pre
            .code
            .tables_changed
            .iter()
            .filter_map(|t| tables.get(*t as usize).copied())
            .collect(),
        ref_funcs: pre
            .code
            .ref_funcs
            .iter()
            .chain(&pre.escaping)
            .filter_map(|f| index.id(*f))
            .collect(),
        reaching: pre.marked(&stubbed).filter_map(|f| index.id(f)).collect(),
    }
}

/// Checks that walrus's call graph found the fork path preflight found on
/// the raw bytes (the slim parse and the refusal screen rely on it).
fn agrees(graph: &CallGraph, index: &FunctionIndex, pre: &preflight::Preflight) -> Result<()> {
    let walrus: BTreeSet<u32> = graph
        .on_path
        .keys()
        .map(|f| index.of(*f))
        .chain(graph.reaching_elsewhere().map(|f| index.of(f)))
        .collect();
    let raw: BTreeSet<u32> = pre.marked(&pre.reaches).collect();
    match walrus.symmetric_difference(&raw).next() {
        None => Ok(()),
        Some(f) => Err(Error::internal(
            Stage::CallGraph,
            format!(
                "the fork path from the raw bytes ({} functions) and from walrus ({}) differ at func[{f}]",
                raw.len(),
                walrus.len()
            ),
        )),
    }
}

/// Plans every fork-path function, in parallel (`parallel::run`).
/// Planning reads the module; the only thing it adds is spill locals,
/// declared provisionally by each planner and then for real in plan order,
/// so the plans and the locals are the same at any thread count.
pub fn plan_all(
    module: &mut Module,
    graph: &CallGraph,
    facts: &OperandTypes,
    index: &FunctionIndex,
    targets: &[FunctionId],
) -> Result<Vec<FuncPlan>> {
    use rayon::prelude::*;
    let mut locals = std::mem::take(&mut module.locals);
    let arena = NewLocals::arena_of(&mut locals);
    let name = |id: FunctionId| index.name(id);
    let cx = Ctx {
        module,
        graph,
        facts,
        name: &name,
    };
    let planned: Vec<Result<(FuncPlan, NewLocals)>> = crate::parallel::run(|| {
        targets
            .par_iter()
            .enumerate()
            .map(|(ordinal, f)| plan_function(&cx, *f, ordinal as u32, &locals, arena))
            .collect()
    });
    // Every function is planned even after a refusal, so that the error
    // names all of them; the first other error, in plan order, wins.
    let mut plans = Vec::with_capacity(targets.len());
    let mut refused: Vec<(String, String)> = Vec::new();
    let mut failed = None;
    for p in planned {
        match p {
            Ok((mut plan, new)) => {
                new.declare(&mut plan, &mut locals);
                plans.push(plan);
            }
            Err(Error::Unsupported {
                function,
                reason,
                others,
            }) => {
                refused.push((function, reason));
                refused.extend(others);
            }
            Err(e) => {
                failed = Some(e);
                break;
            }
        }
    }
    module.locals = locals;
    if let Some(e) = failed {
        return Err(e);
    }
    if !refused.is_empty() {
        let (function, reason) = refused.remove(0);
        return Err(Error::Unsupported {
            function,
            reason,
            others: refused,
        });
    }
    Ok(plans)
}

/// Locals (parameters excluded) the function's body uses.
fn locals_used(module: &Module, id: FunctionId) -> u32 {
    let FunctionKind::Local(f) = &module.funcs.get(id).kind else {
        return 0;
    };
    let mut seen = BTreeSet::new();
    for seq in crate::tree::all_seqs(f) {
        for (instr, _) in f.block(seq).instrs.iter() {
            match instr {
                walrus::ir::Instr::LocalGet(g) => seen.insert(g.local),
                walrus::ir::Instr::LocalSet(s) => seen.insert(s.local),
                walrus::ir::Instr::LocalTee(t) => seen.insert(t.local),
                _ => false,
            };
        }
    }
    for a in &f.args {
        seen.remove(a);
    }
    seen.len() as u32
}
