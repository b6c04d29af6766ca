//! Replay twins: a rewritten function split in two so that normal
//! execution never meets a replay landing.
//!
//! Every landing is a join of the path normal execution takes and the one
//! replay takes from a dispatch point; an optimizing engine gives each join
//! a phi for every value live there. In a function with hundreds of sites
//! those phis outnumber the function's own values: V8's TurboFan switches a
//! function with more than a few thousand virtual registers to its mid-tier
//! register allocator, whose frames are a hundred times larger (the
//! `sites-1k` depth probe; a 31 MB C++ program that overflowed Node's
//! stack). For such a function (`Config::replay_twins`):
//!
//! * the **twin** is an exact copy of the rewritten function (dispatch,
//!   landings, unwind, frame writers), added to the module;
//! * the **function** itself keeps its unwind code and frame layout but
//!   loses every dispatch point: its replay entry becomes "when replaying,
//!   call the twin with the arguments and return its results", so its
//!   landings are reached only by falling into them.
//!
//! Both write and read the same frames (same call indices, same layout, the
//! function's ordinal), so a frame written by either replays in the twin,
//! and an activation that aborts (ABI §6) re-enters the function, which
//! hands over to the twin. Nothing a host sees changes.

use crate::codegen::{i, Loc};
use crate::tree;
use std::collections::{HashMap, HashSet};
use walrus::ir::{self, Instr, InstrSeqId, LegacyCatch, TryTableCatch};
use walrus::{FunctionBuilder, FunctionId, FunctionKind, GlobalId, Module};

/// A dispatch point of a rewritten function: the `if` arm that runs when
/// replaying, and whether it is the function's replay entry.
#[derive(Debug, Clone, Copy)]
pub struct DispatchArm {
    /// The arm's sequence.
    pub arm: InstrSeqId,
    /// The replay entry (pops the frame) rather than a nested point.
    pub entry: bool,
}

/// Adds a copy of local function `id` to the module, named `name`; returns
/// its id. The copy shares the original's locals; its instructions carry no
/// input offsets.
pub fn copy(module: &mut Module, id: FunctionId, name: String) -> FunctionId {
    let FunctionKind::Local(f) = &module.funcs.get(id).kind else {
        unreachable!("only local functions are rewritten")
    };
    let ty = f.ty();
    let args = f.args.clone();
    let entry = f.entry_block();
    let seqs: Vec<(InstrSeqId, ir::InstrSeqType, Vec<Loc>)> = tree::all_seqs(f)
        .into_iter()
        .map(|s| (s, f.block(s).ty, f.block(s).instrs.clone()))
        .collect();
    let params = module.types.params(ty).to_vec();
    let results = module.types.results(ty).to_vec();
    let mut b = FunctionBuilder::new(&mut module.types, &params, &results);
    let mut map: HashMap<InstrSeqId, InstrSeqId> = HashMap::with_capacity(seqs.len());
    for (s, t, _) in &seqs {
        let n = if *s == entry {
            b.func_body_id()
        } else {
            b.dangling_instr_seq(*t).id()
        };
        map.insert(*s, n);
    }
    // The copy has no input offsets: the input's instructions map to the
    // function's code, once (walrus's code transform, DWARF).
    for (s, _, instrs) in seqs {
        let copied: Vec<Loc> = instrs
            .into_iter()
            .map(|(mut x, _)| {
                remap(&mut x, &map);
                (x, ir::InstrLocId::default())
            })
            .collect();
        *b.instr_seq(map[&s]).instrs_mut() = copied;
    }
    let twin = b.finish(args, &mut module.funcs);
    module.funcs.get_mut(twin).name = Some(name);
    twin
}

/// Replaces every sequence `instr` names through `map` (a branch only names
/// enclosing sequences, all of which are in it).
fn remap(instr: &mut Instr, map: &HashMap<InstrSeqId, InstrSeqId>) {
    let m = |s: &mut InstrSeqId| *s = map[s];
    match instr {
        Instr::Block(ir::Block { seq })
        | Instr::Loop(ir::Loop { seq })
        | Instr::Br(ir::Br { block: seq })
        | Instr::BrIf(ir::BrIf { block: seq })
        | Instr::BrOnNull(ir::BrOnNull { block: seq })
        | Instr::BrOnNonNull(ir::BrOnNonNull { block: seq }) => m(seq),
        Instr::BrOnCast(b) => m(&mut b.block),
        Instr::BrOnCastFail(b) => m(&mut b.block),
        Instr::IfElse(e) => {
            m(&mut e.consequent);
            m(&mut e.alternative);
        }
        Instr::BrTable(t) => {
            t.blocks.iter_mut().for_each(m);
            m(&mut t.default);
        }
        Instr::TryTable(t) => {
            m(&mut t.seq);
            for c in &mut t.catches {
                match c {
                    TryTableCatch::Catch { label, .. }
                    | TryTableCatch::CatchRef { label, .. }
                    | TryTableCatch::CatchAll { label }
                    | TryTableCatch::CatchAllRef { label } => m(label),
                }
            }
        }
        Instr::Try(t) => {
            m(&mut t.seq);
            for c in &mut t.catches {
                match c {
                    LegacyCatch::Catch { handler, .. } | LegacyCatch::CatchAll { handler } => {
                        m(handler)
                    }
                    LegacyCatch::Delegate { .. } => {}
                }
            }
        }
        _ => {}
    }
}

/// Turns rewritten function `id` into the normal-execution half of a twin
/// pair: its replay entry calls `twin` with the arguments and returns what
/// it returns; every other dispatch point (a state check and its arm) goes.
pub fn hand_over(
    module: &mut Module,
    id: FunctionId,
    twin: FunctionId,
    state: GlobalId,
    arms: &[DispatchArm],
) {
    let FunctionKind::Local(f) = &mut module.funcs.get_mut(id).kind else {
        unreachable!("only local functions are rewritten")
    };
    let nested: HashSet<InstrSeqId> = arms.iter().filter(|a| !a.entry).map(|a| a.arm).collect();
    for a in arms.iter().filter(|a| a.entry) {
        let mut delegate: Vec<Loc> = f
            .args
            .iter()
            .map(|l| i(ir::LocalGet { local: *l }))
            .collect();
        delegate.push(i(ir::Call { func: twin }));
        delegate.push(i(ir::Return {}));
        f.block_mut(a.arm).instrs = delegate;
    }
    if nested.is_empty() {
        return;
    }
    for seq in tree::all_seqs(f) {
        let instrs = &mut f.block_mut(seq).instrs;
        let mut pos = 0;
        while pos < instrs.len() {
            let point =
                matches!(&instrs[pos].0, Instr::IfElse(e) if nested.contains(&e.consequent));
            let checked =
                pos > 0 && matches!(&instrs[pos - 1].0, Instr::GlobalGet(g) if g.global == state);
            if point && checked {
                instrs.drain(pos - 1..=pos);
                pos -= 1;
            } else {
                pos += 1;
            }
        }
    }
}

/// Virtual registers an optimizing engine needs for a function's own code,
/// estimated: its instructions that produce a value in a register (not
/// local accesses, constants, control or stores).
pub fn own_registers(module: &Module, id: FunctionId) -> u64 {
    let FunctionKind::Local(f) = &module.funcs.get(id).kind else {
        return 0;
    };
    let producing = |x: &Instr| {
        !matches!(
            x,
            Instr::LocalGet(_)
                | Instr::LocalSet(_)
                | Instr::LocalTee(_)
                | Instr::Const(_)
                | Instr::Block(_)
                | Instr::Loop(_)
                | Instr::IfElse(_)
                | Instr::Br(_)
                | Instr::BrIf(_)
                | Instr::BrTable(_)
                | Instr::Drop(_)
                | Instr::Return(_)
                | Instr::Unreachable(_)
                | Instr::Store(_)
                | Instr::GlobalSet(_)
        )
    };
    sum_over_instrs(f, |x| producing(x) as u64)
}

/// Estimated encoded size of a whole function body (for the report).
pub fn body_bytes(module: &Module, id: FunctionId) -> u64 {
    let FunctionKind::Local(f) = &module.funcs.get(id).kind else {
        return 0;
    };
    sum_over_instrs(f, crate::codegen::estimate)
}

/// `per` summed over every instruction of `f`.
fn sum_over_instrs(f: &walrus::LocalFunction, per: impl Fn(&Instr) -> u64) -> u64 {
    tree::all_seqs(f)
        .into_iter()
        .map(|s| f.block(s).instrs.iter().map(|(x, _)| per(x)).sum::<u64>())
        .sum()
}
