//! Orders the stages: preflight, parse, call graph, stack facts, plans,
//! runtime, rewrite, section, emit, validate. Catches panics from walrus at
//! the library edge so that bad input never takes the caller down.

use crate::callgraph::CallGraph;
use crate::plan::{plan_function, Ctx, FuncPlan};
use crate::stack::StackFacts;
use crate::{
    abi, preflight, runtime, Config, Error, Explanation, FunctionReport, Instrumented, Report,
    Result,
};
use std::collections::{BTreeMap, BTreeSet};
use walrus::{FunctionId, FunctionKind, Module, ModuleConfig, ValType};

/// Runs `f`, turning a panic into an error.
pub fn guarded<T>(f: impl FnOnce() -> Result<T>) -> Result<T> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(p) => {
            let msg = p
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            Err(Error::Module(format!(
                "internal error while reading or rewriting the module: {msg}"
            )))
        }
    }
}

fn parse(wasm: &[u8]) -> Result<Module> {
    let mut cfg = ModuleConfig::new();
    cfg.generate_name_section(true)
        .generate_producers_section(true)
        .generate_dwarf(true);
    cfg.parse(wasm)
        .map_err(|e| Error::InvalidWasm(format!("{e:#}")))
}

/// Function index (imports first, then definitions) by id.
fn indices(module: &Module) -> BTreeMap<FunctionId, u32> {
    let mut out = BTreeMap::new();
    let mut n = 0;
    for f in module
        .funcs
        .iter()
        .filter(|f| matches!(f.kind, FunctionKind::Import(_)))
    {
        out.insert(f.id(), n);
        n += 1;
    }
    for (id, _) in module.funcs.iter_local() {
        out.insert(id, n);
        n += 1;
    }
    out
}

fn display_name(module: &Module, idx: &BTreeMap<FunctionId, u32>, id: FunctionId) -> String {
    let f = module.funcs.get(id);
    if let FunctionKind::Import(imp) = &f.kind {
        let imp = module.imports.get(imp.import);
        return format!("{}.{}", imp.module, imp.name);
    }
    match &f.name {
        Some(n) => n.clone(),
        None => format!("func[{}]", idx.get(&id).copied().unwrap_or(u32::MAX)),
    }
}

fn fork_import_ids(module: &Module, config: &Config) -> Result<BTreeSet<FunctionId>> {
    let mut out = BTreeSet::new();
    for imp in module.imports.iter() {
        if let walrus::ImportKind::Function(fid) = imp.kind {
            let name = crate::ImportName::new(imp.module.clone(), imp.name.clone());
            if config.fork_imports.contains(&name) {
                let ty = module.types.get(module.funcs.get(fid).ty());
                if ty
                    .params()
                    .iter()
                    .chain(ty.results())
                    .any(|t| matches!(t, ValType::Ref(_)))
                {
                    return Err(Error::Module(format!(
                        "fork import `{name}` has reference-typed parameters or results; fork imports must be numeric"
                    )));
                }
                out.insert(fid);
            }
        }
    }
    Ok(out)
}

/// The transform proper.
pub fn instrument(wasm: &[u8], config: &Config) -> Result<Instrumented> {
    let pre = preflight::check(wasm, config)?;
    if pre.fork_imports_found.is_empty() {
        return Ok(Instrumented {
            bytes: wasm.to_vec(),
            report: Report {
                passed_through: true,
                bytes_before: wasm.len(),
                bytes_after: wasm.len(),
                ..Default::default()
            },
        });
    }
    let mut module = parse(wasm)?;
    let idx = indices(&module);
    let forks = fork_import_ids(&module, config)?;
    let graph = CallGraph::build(&module, forks);
    for f in graph.on_path.keys() {
        if let FunctionKind::Local(lf) = &mut module.funcs.get_mut(*f).kind {
            crate::walk::truncate_dead_code(lf);
        }
    }
    let memory = module
        .memories
        .iter()
        .next()
        .map(|m| (m.id(), m.memory64))
        .ok_or_else(|| {
            Error::Module(
                "the module has no memory: fork needs memory 0 for the save buffer".into(),
            )
        })?;
    let (memory, is64) = memory;
    let p = if is64 { 8 } else { 4 };

    // Functions on a fork path, in function-index order (their ordinals).
    let targets: Vec<FunctionId> = graph
        .on_path
        .keys()
        .copied()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut targets = targets;
    targets.sort_by_key(|f| idx[f]);
    let code_pos: BTreeMap<FunctionId, usize> = module
        .funcs
        .iter_local()
        .enumerate()
        .map(|(i, (id, _))| (id, i))
        .collect();
    let wanted: BTreeSet<usize> = targets.iter().map(|f| code_pos[f]).collect();
    let facts =
        StackFacts::collect(wasm, preflight::features(), &wanted).map_err(Error::InvalidWasm)?;

    let names: BTreeMap<FunctionId, String> = module
        .funcs
        .iter()
        .map(|f| (f.id(), display_name(&module, &idx, f.id())))
        .collect();
    let name_fn = |id: FunctionId| names.get(&id).cloned().unwrap_or_default();
    let mut plans: Vec<FuncPlan> = Vec::new();
    {
        let mut locals = std::mem::take(&mut module.locals);
        let cx = Ctx {
            module: &module,
            graph: &graph,
            facts: &facts,
            name: &name_fn,
        };
        for (ordinal, f) in targets.iter().enumerate() {
            match plan_function(&cx, *f, ordinal as u32, &mut locals) {
                Ok(p) => plans.push(p),
                Err(e) => {
                    module.locals = locals;
                    return Err(e);
                }
            }
        }
        module.locals = locals;
    }

    let snap = runtime::snapshot(&module, p);
    let abort_reserve = plans
        .iter()
        .map(|p| p.carry_end)
        .max()
        .unwrap_or(abi::FRAME_HEADER_SIZE);
    let max_frame = plans.iter().map(|p| p.frame_size).max().unwrap_or(0);
    let mut carried: BTreeSet<u8> = BTreeSet::new();
    for pl in &plans {
        carried.extend(&pl.carried_types);
    }
    let scratch_types: Vec<ValType> = [
        ValType::I32,
        ValType::I64,
        ValType::F32,
        ValType::F64,
        ValType::V128,
    ]
    .into_iter()
    .filter(|t| carried.contains(&runtime::type_key(*t)))
    .collect();
    let mem = runtime::add_globals(&mut module, memory, is64);
    let rt = runtime::add_runtime(&mut module, mem, &scratch_types, &snap, abort_reserve);

    let mut functions = Vec::new();
    for pl in &plans {
        let locals_before = locals_used(&module, pl.id);
        if let FunctionKind::Local(f) = &mut module.funcs.get_mut(pl.id).kind {
            crate::rewrite::rewrite(f, &mut module.types, &rt, pl);
        }
        functions.push(FunctionReport {
            index: idx[&pl.id],
            name: name_fn(pl.id),
            ordinal: pl.ordinal,
            call_sites: pl.sites.len() as u32,
            locals_before: locals_before.saturating_sub(pl.locals_added),
            locals_added: pl.locals_added,
            frame_size: pl.frame_size,
        });
    }
    let fork_imports: Vec<String> = config
        .sorted_fork_imports()
        .iter()
        .map(|n| n.to_string())
        .collect();
    let data = runtime::section(
        p,
        snap.frames_offset,
        plans.len() as u32,
        max_frame,
        abort_reserve,
        &config.tool,
        fork_imports,
    );
    module.customs.add(walrus::RawCustomSection {
        name: abi::SECTION_NAME.to_string(),
        data,
    });
    module
        .producers
        .add_processed_by("cargo-forkify", env!("CARGO_PKG_VERSION"));
    let (bytes, info) = emit(&mut module, wasm, &idx, &plans, &rt)?;
    for f in &mut functions {
        if let Some((index, ordinal)) = info
            .iter()
            .find(|(id, _)| idx[id] == f.index)
            .map(|(_, v)| *v)
        {
            f.index = index;
            f.ordinal = ordinal;
        }
    }
    functions.sort_by_key(|f| f.ordinal);
    Ok(Instrumented {
        report: Report {
            passed_through: false,
            pointer_width: p as u8,
            bytes_before: wasm.len(),
            bytes_after: bytes.len(),
            frames_offset: snap.frames_offset,
            abort_reserve,
            max_frame_size: max_frame,
            fork_imports_found: pre.fork_imports_found,
            functions,
        },
        bytes,
    })
}

/// Per instrumented function: its index in the output and its ordinal.
type Placement = BTreeMap<FunctionId, (u32, u32)>;

/// Emits the module. When the input allows it, the output is the input's
/// bytes around the rewritten functions (ABI §1: other functions keep their
/// exact bytes and indices). Otherwise (DWARF, which walrus rewrites for
/// its own code layout, or type sections the splice does not map) it is
/// walrus's whole-module output, where functions are ordered by size: the
/// ordinals are renumbered to follow that order. Returns the bytes and,
/// per instrumented function, its index in the output and its ordinal.
fn emit(
    module: &mut Module,
    wasm: &[u8],
    idx: &BTreeMap<FunctionId, u32>,
    plans: &[FuncPlan],
    rt: &runtime::Runtime,
) -> Result<(Vec<u8>, Placement)> {
    if crate::splice::applies(wasm) {
        let base = idx.len() as u32;
        let mut old: Vec<(u32, FunctionId)> = Vec::new();
        let mut new: Vec<FunctionId> = Vec::new();
        for (id, _) in module.funcs.iter_local() {
            match idx.get(&id) {
                Some(i) => old.push((*i, id)),
                None => new.push(id),
            }
        }
        old.sort();
        let mut map = crate::splice::SpliceMap {
            rewritten: plans.iter().map(|pl| idx[&pl.id]).collect(),
            ..Default::default()
        };
        let mut saved = Vec::new();
        let all = old
            .iter()
            .map(|(i, id)| (*i, *id))
            .chain(new.iter().enumerate().map(|(k, id)| (base + k as u32, *id)));
        for (n, (final_idx, id)) in all.enumerate() {
            let f = module.funcs.get_mut(id);
            if final_idx >= base {
                map.new_names
                    .push((final_idx, f.name.clone().unwrap_or_default()));
            }
            saved.push((id, f.name.replace(format!("{}{n}", crate::splice::MARKER))));
            map.marker_final.push(final_idx);
        }
        let marked = module.emit_wasm();
        for (id, name) in saved {
            module.funcs.get_mut(id).name = name;
        }
        let spliced = crate::splice::splice(wasm, &marked, &map).ok_or_else(|| {
            Error::InvalidOutput(
                "the rewritten functions could not be spliced into the input".into(),
            )
        })?;
        validate(&spliced)?;
        let info = plans
            .iter()
            .map(|pl| (pl.id, (idx[&pl.id], pl.ordinal)))
            .collect();
        return Ok((spliced, info));
    }
    let info = renumber_for_walrus_order(module, plans, rt);
    let emitted = module.emit_wasm();
    validate(&emitted).inspect_err(|_| {
        // Developer aid: keep the module that failed validation.
        if let Some(path) = std::env::var_os("FORKIFY_DUMP_INVALID") {
            let _ = std::fs::write(path, &emitted);
        }
    })?;
    Ok((emitted, info))
}

/// walrus emits local functions largest first (by instruction count, then
/// id). Gives the instrumented functions ordinals in that output order and
/// patches the ordinal constants the rewrite wrote before each call to the
/// frame and pop helpers (instruction counts do not change).
fn renumber_for_walrus_order(
    module: &mut Module,
    plans: &[FuncPlan],
    rt: &runtime::Runtime,
) -> Placement {
    let imports = module
        .funcs
        .iter()
        .filter(|f| matches!(f.kind, FunctionKind::Import(_)))
        .count() as u32;
    let mut order: Vec<(std::cmp::Reverse<u64>, FunctionId)> = module
        .funcs
        .iter_local()
        .map(|(id, f)| (std::cmp::Reverse(f.size()), id))
        .collect();
    order.sort();
    let out_index: BTreeMap<FunctionId, u32> = order
        .iter()
        .enumerate()
        .map(|(i, (_, id))| (*id, imports + i as u32))
        .collect();
    let mut ours: Vec<(u32, FunctionId)> =
        plans.iter().map(|pl| (out_index[&pl.id], pl.id)).collect();
    ours.sort();
    let mut info = BTreeMap::new();
    for (ordinal, (index, id)) in ours.into_iter().enumerate() {
        info.insert(id, (index, ordinal as u32));
        let FunctionKind::Local(f) = &mut module.funcs.get_mut(id).kind else {
            continue;
        };
        for seq in crate::walk::all_seqs(f) {
            let instrs = &mut f.block_mut(seq).instrs;
            for pos in 0..instrs.len() {
                let back = match &instrs[pos].0 {
                    walrus::ir::Instr::Call(c) if c.func == rt.pop_fn => 2,
                    walrus::ir::Instr::Call(c) if c.func == rt.frame_fn => 3,
                    _ => continue,
                };
                if let Some((walrus::ir::Instr::Const(c), _)) =
                    pos.checked_sub(back).map(|p| &mut instrs[p])
                {
                    c.value = walrus::ir::Value::I32(ordinal as i32);
                }
            }
        }
    }
    info
}

fn validate(bytes: &[u8]) -> Result<()> {
    wasmparser::Validator::new_with_features(preflight::features())
        .validate_all(bytes)
        .map(|_| ())
        .map_err(|e| Error::InvalidOutput(e.to_string()))
}

/// Locals (parameters excluded) the function's body uses.
fn locals_used(module: &Module, id: FunctionId) -> u32 {
    let FunctionKind::Local(f) = &module.funcs.get(id).kind else {
        return 0;
    };
    let mut seen = BTreeSet::new();
    for seq in crate::walk::all_seqs(f) {
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

/// Why `function` is on a fork path.
pub fn explain(wasm: &[u8], config: &Config, function: &str) -> Result<Explanation> {
    preflight::check(wasm, config)?;
    let module = parse(wasm)?;
    let idx = indices(&module);
    let forks = fork_import_ids(&module, config)?;
    let graph = CallGraph::build(&module, forks);
    let id = module
        .funcs
        .iter()
        .map(|f| f.id())
        .find(|id| {
            display_name(&module, &idx, *id) == function || format!("func[{}]", idx[id]) == function
        })
        .ok_or_else(|| Error::NoSuchFunction(function.to_string()))?;
    let chain = graph
        .chain(id)
        .into_iter()
        .map(|f| display_name(&module, &idx, f))
        .collect();
    Ok(Explanation { chain })
}
