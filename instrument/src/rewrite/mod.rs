//! Applies a [`FuncPlan`] to one function (ABI §6). This file builds the
//! function's shell and its replay entry, and owns the ordinals in its code;
//! `sequence.rs` rewrites each sequence that holds fork-path calls (landing
//! blocks, buckets, where dispatch happens); `dispatch.rs` emits one
//! dispatch point (a `br_table` on the call index); `unwind.rs` emits what
//! follows each call; `twin.rs` splits a rewritten function that landings
//! make too large for an engine's best register allocator into a function
//! without dispatch points and a twin that replays.
//!
//! Shape of a rewritten function:
//!
//! ```text
//! block $unwind (result i32)  ;; unwinding leaves with the call index
//!  block $w2 (result i32) block $w1 (result i32)   ;; shared frame writers
//!   block $body (result R)
//!     <body>        ;; with, at the end of its entry chain, the replay entry:
//!                   ;;   if state: pop frame (check ordinal); restore the
//!                   ;;   locals of the suspended call; br_table to its landing
//!   end
//!   return
//! end
//! commit(idx, size, ordinal)             ;; header written, cursor += size
//!   ? <zeros of R>                       ;; room left: return, unwinding
//!   : call $self(<zeros>)                ;; no room left: abort (ABI §6)
//! ```
//!
//! Normal execution pays one state check at entry and one after each
//! fork-path call; a dispatch point that is not the entry's (at the start
//! of a sequence that replay enters after skipping code: a loop body, a
//! later bucket, what `reshape.rs` could not move) adds one where it is
//! entered. Blocks at the start of a sequence are entered by replay as by
//! normal execution, so a nest of them (a `switch`) shares one dispatch
//! point. No loop is added anywhere (a loop header costs TurboFan a frame
//! slot for every value live across it): an activation whose frame does
//! not fit re-enters itself instead, and replays from the frame it wrote.
//!
//! Sites that save the same locals and leave through the function's exit
//! share a writer (`$w`): they branch to it with their call index, and it
//! stores the locals. A site's replay restore is shared the same way, more
//! widely: any sites whose frames never put one local at two offsets share
//! one restore of the union of their locals (a local restored where it is
//! dead is harmless).

mod dispatch;
pub mod new_types;
mod sequence;
pub mod twin;
mod unwind;

use crate::codegen::{i, i32c, zeros, Loc};
use crate::plan::{FuncPlan, Kind, Saved};
use crate::runtime::Runtime;
use crate::{Error, Result, Stage};
use std::collections::HashMap;
use walrus::ir::{self, Instr, InstrSeqId, InstrSeqType, Value};
use walrus::{FunctionId, LocalFunction, ModuleTypes, ValType};

pub use crate::codegen::Bytes;
use new_types::NewTypes;
pub use twin::DispatchArm;

struct Rewriter<'a> {
    func: &'a mut LocalFunction,
    types: &'a ModuleTypes,
    /// The multi-value block types it adds.
    new_types: NewTypes,
    rt: &'a Runtime,
    plan: &'a FuncPlan,
    /// Wrapper blocks around loops that store values below them on unwind
    /// (a branch to a loop's own label would re-enter it).
    wrappers: HashMap<InstrSeqId, InstrSeqId>,
    /// The function-level block an unwinding activation leaves through.
    unwind: InstrSeqId,
    /// Shared frame writers: for locals saved alike by two or more sites
    /// that leave through the function's exit, the block after which the
    /// writer for them runs (it receives the call index).
    writers: Vec<(Vec<Saved>, InstrSeqId)>,
    /// Estimated bytes of what was emitted, by category.
    bytes: Bytes,
    /// The dispatch points emitted (what a replay twin takes out).
    arms: Vec<DispatchArm>,
}

/// What rewriting one function produced besides its new body.
pub struct Rewritten {
    /// Estimated bytes added, by category.
    pub bytes: Bytes,
    /// Its dispatch points.
    pub arms: Vec<DispatchArm>,
    /// The block types its new blocks need, still to be declared
    /// ([`NewTypes::declare`]) before anything else reads its body.
    pub types: NewTypes,
}

/// Rewrites `func` according to `plan`; returns an estimate of the bytes it
/// added, by category, where its dispatch points are, and the block types
/// it needs. Reads `types` only, so functions can be rewritten in parallel.
pub fn rewrite(
    func: &mut LocalFunction,
    types: &ModuleTypes,
    rt: &Runtime,
    plan: &FuncPlan,
) -> Rewritten {
    let entry = func.entry_block();
    let mut new_types = NewTypes::new(func.ty());
    // The entry's own type is a function-entry type that walrus never
    // emits; blocks need a real block type.
    let body_ty = new_types.seq_type(&[], &plan.results);
    // Unwinding leaves the body with the suspended call's index.
    let unwind = new_seq_ty(func, InstrSeqType::Simple(Some(ValType::I32)));
    let mut rw = Rewriter {
        func,
        types,
        new_types,
        rt,
        plan,
        wrappers: HashMap::new(),
        unwind,
        writers: Vec::new(),
        bytes: Bytes::default(),
        arms: Vec::new(),
    };
    // Sites that save the same locals share one writer (the sites then only
    // branch to it with their call index).
    let mut counts: Vec<(&Vec<Saved>, u32)> = Vec::new();
    for s in &plan.sites {
        if s.saved.is_empty() || !matches!(s.exit, crate::plan::Exit::Fin) {
            continue;
        }
        match counts.iter_mut().find(|c| c.0 == &s.saved) {
            Some(c) => c.1 += 1,
            None => counts.push((&s.saved, 1)),
        }
    }
    for (saved, n) in counts {
        if n >= 2 {
            let w = new_seq_ty(rw.func, InstrSeqType::Simple(Some(ValType::I32)));
            rw.writers.push((saved.clone(), w));
        }
    }
    let mut keys: Vec<_> = plan.constructs.keys().copied().collect();
    keys.sort();
    for (parent, pos) in keys {
        let c = &plan.constructs[&(parent, pos)];
        if c.kind == Kind::Loop && c.post_check {
            let ty = rw.func.block(c.seq).ty;
            let w = new_seq_ty(rw.func, ty);
            let loop_instr = rw.func.block(parent).instrs[pos].0.clone();
            rw.func.block_mut(w).instrs = vec![i(loop_instr)];
            rw.wrappers.insert(c.seq, w);
        }
    }
    let all = plan.sites.len() as u32;
    rw.rewrite_seq(entry, Some(sequence::Chain::entry(all)));
    // Move the (rewritten) body into the shell, inside the shared writers.
    let instrs = std::mem::take(&mut rw.func.block_mut(entry).instrs);
    let mut shell = Vec::new();
    let mut inner = if plan.results.is_empty() {
        let mut body = instrs;
        body.push(i(ir::Return {}));
        shell.push(i(ir::Return {}));
        body
    } else {
        let body = new_seq_ty(rw.func, body_ty);
        rw.func.block_mut(body).instrs = instrs;
        shell.push(i(ir::Block { seq: body }));
        shell.push(i(ir::Return {}));
        vec![i(ir::Block { seq: body }), i(ir::Return {})]
    };
    let writers = std::mem::take(&mut rw.writers);
    for (n, (saved, w)) in writers.iter().enumerate() {
        rw.func.block_mut(*w).instrs = inner;
        let mut next = vec![i(ir::Block { seq: *w })];
        // The call index stays on the stack under the locals.
        let mut write = rw.rt.locals_into_frame(saved);
        if n + 1 < writers.len() {
            write.push(i(ir::Br { block: unwind }));
        }
        rw.bytes.add("frame write", &write);
        rw.bytes.add("shell", &next);
        next.extend(write);
        inner = next;
    }
    rw.writers = writers;
    rw.func.block_mut(unwind).instrs = inner;
    // Unwinding: every level of the frame is written but the header; the
    // call index comes out of the body. Commit it; when the
    // reserve after it is gone, abort (ABI §6): the frame just written
    // stays as the record, and the function re-enters itself, which pops
    // it, restores the locals and re-issues the suspended call so that the
    // callees replay to the fork import (which fails with ENOMEM); that
    // activation then finishes the work and this one returns its results.
    let m = rt.mem;
    let params = rw.types.params(rw.func.ty()).to_vec();
    let mut abort = zeros(&params);
    abort.push(i(ir::Call { func: plan.id }));
    let fits = rw.seq_of(&[], &plan.results, zeros(&plan.results));
    let aborts = rw.seq_of(&[], &plan.results, abort.clone());
    let top = vec![
        i(ir::Block { seq: unwind }),
        m.ptr_const(plan.frame_size as u64),
        i32c(plan.ordinal as i32),
        i(ir::Call { func: rt.commit_fn }),
        i(ir::IfElse {
            consequent: fits,
            alternative: aborts,
        }),
    ];
    shell.extend(top.iter().cloned());
    shell.extend(zeros(&plan.results));
    shell.extend(abort);
    rw.bytes.add("shell", &shell);
    rw.func.block_mut(entry).instrs = top;
    Rewritten {
        bytes: rw.bytes,
        arms: rw.arms,
        types: rw.new_types,
    }
}

fn new_seq_ty(func: &mut LocalFunction, ty: InstrSeqType) -> InstrSeqId {
    func.builder_mut().dangling_instr_seq(ty).id()
}

impl Rewriter<'_> {
    fn new_seq(&mut self, params: &[ValType], results: &[ValType]) -> InstrSeqId {
        let ty = self.new_types.seq_type(params, results);
        new_seq_ty(self.func, ty)
    }

    /// A new sequence holding `instrs`.
    fn seq_of(&mut self, params: &[ValType], results: &[ValType], instrs: Vec<Loc>) -> InstrSeqId {
        let s = self.new_seq(params, results);
        self.func.block_mut(s).instrs = instrs;
        s
    }

    fn call(&self, f: FunctionId) -> Loc {
        i(ir::Call { func: f })
    }

    /// `i32.const ordinal; call helper`: the ordinal is always the last
    /// argument of the pop and unwind helpers, written right before the
    /// call, which is what [`renumber`] relies on.
    fn ordinal_call(&self, helper: FunctionId) -> [Loc; 2] {
        [i32c(self.plan.ordinal as i32), self.call(helper)]
    }

    /// What replay does at the function's dispatch point before it jumps:
    /// pop the frame (the helper traps on a wrong ordinal) and restore the
    /// locals saved for the suspended call, grouped by layout.
    fn restore(&mut self) -> Vec<Loc> {
        let plan = self.plan;
        let m = self.rt.mem;
        let mut out = vec![m.ptr_const(plan.frame_size as u64)];
        out.extend(self.ordinal_call(self.rt.pop_fn));
        // Sites share restores. Restoring a local that is dead where a
        // site's replay lands is harmless (a site's frame holds every local
        // live there), so one restore can serve any sites whose frames
        // never put the same local at two offsets: it sets the union of
        // their locals. Longest lists first, each joins the compatible group
        // it adds fewest locals to (else starts one).
        let mut order: Vec<u32> = (0..plan.sites.len() as u32)
            .filter(|k| !plan.sites[*k as usize].saved.is_empty())
            .collect();
        order.sort_by_key(|k| std::cmp::Reverse(plan.sites[*k as usize].saved.len()));
        // (locals with their offsets, the union's values, the sites)
        type Group = (HashMap<walrus::LocalId, u32>, Vec<Saved>, Vec<u32>);
        let mut built: Vec<Group> = Vec::new();
        for k in order {
            let saved = &plan.sites[k as usize].saved;
            let mut best: Option<(usize, usize)> = None;
            for (n, g) in built.iter().enumerate() {
                let mut added = 0;
                let fits = saved.iter().all(|(l, _, o)| match g.0.get(l) {
                    Some(go) => go == o,
                    None => {
                        added += 1;
                        true
                    }
                });
                if fits && best.is_none_or(|(a, _)| added < a) {
                    best = Some((added, n));
                }
            }
            match best {
                Some((_, n)) => {
                    let g = &mut built[n];
                    for v in saved {
                        if g.0.insert(v.0, v.2).is_none() {
                            g.1.push(*v);
                        }
                    }
                    g.2.push(k);
                }
                None => built.push((
                    saved.iter().map(|(l, _, o)| (*l, *o)).collect(),
                    saved.clone(),
                    vec![k],
                )),
            }
        }
        let mut groups: Vec<(Vec<Saved>, Vec<u32>)> =
            built.into_iter().map(|(_, v, ks)| (v, ks)).collect();
        for g in &mut groups {
            g.0.sort_by_key(|(l, _, o)| (*o, *l));
            g.1.sort_unstable();
        }
        groups.sort_by_key(|g| g.1[0]);
        let load = |rw: &Self, saved: &[Saved]| -> Vec<Loc> { rw.rt.locals_from_frame(saved) };
        if groups.len() == 1 && groups[0].1.len() == plan.sites.len() {
            out.extend(load(self, &groups[0].0));
        } else if !groups.is_empty() {
            let restored = self.new_seq(&[], &[]);
            let mut labels: Vec<InstrSeqId> = Vec::new();
            let mut table: Vec<InstrSeqId> = vec![restored; plan.sites.len()];
            for (_, ks) in &groups {
                let s = self.new_seq(&[], &[]);
                labels.push(s);
                for k in ks {
                    table[*k as usize] = s;
                }
            }
            // Innermost: the br_table; each group's code follows its block.
            let mut cur = vec![
                self.call(self.rt.idx_fn),
                i(ir::BrTable {
                    blocks: table.into_boxed_slice(),
                    default: restored,
                }),
            ];
            for (g, (saved, _)) in labels.iter().zip(&groups) {
                self.bytes.add("restore", &cur);
                self.func.block_mut(*g).instrs = cur;
                cur = vec![i(ir::Block { seq: *g })];
                cur.extend(load(self, saved));
                cur.push(i(ir::Br { block: restored }));
            }
            self.bytes.add("restore", &cur);
            self.func.block_mut(restored).instrs = cur;
            out.push(i(ir::Block { seq: restored }));
        }
        self.bytes.add("restore", &out);
        out
    }
}

/// Gives a rewritten function another ordinal: rewrites the constant before
/// every call to the pop and unwind helpers (see `ordinal_call`). Used when
/// the output's function order is walrus's, not the input's.
pub fn renumber(func: &mut LocalFunction, rt: &Runtime, ordinal: u32) -> Result<()> {
    for seq in crate::tree::all_seqs(func) {
        let instrs = &mut func.block_mut(seq).instrs;
        for pos in 0..instrs.len() {
            let helper = matches!(&instrs[pos].0, Instr::Call(c) if rt.takes_ordinal(c.func));
            if !helper {
                continue;
            }
            match pos.checked_sub(1).map(|p| &mut instrs[p].0) {
                Some(Instr::Const(c)) if matches!(c.value, Value::I32(_)) => {
                    c.value = Value::I32(ordinal as i32);
                }
                _ => {
                    return Err(Error::internal(
                        Stage::Emit,
                        "a frame helper call is not preceded by its ordinal constant",
                    ))
                }
            }
        }
    }
    Ok(())
}
