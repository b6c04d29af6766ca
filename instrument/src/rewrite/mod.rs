//! Applies a [`FuncPlan`] to one function (switch dispatch, ABI §6): this
//! file builds the function's shell (replay preamble, body block, unwind
//! exit) and owns the ordinals in its code; `sequence.rs` rewrites each
//! sequence that holds fork-path calls (dispatch and landings);
//! `unwind.rs` emits what follows each call (the unwind check and the
//! frame write).
//!
//! Shape of a rewritten function:
//!
//! ```text
//! if state >= 2: pop frame (check ordinal), restore the live locals of the
//!                suspended call site
//! loop $top                      ;; an aborting activation re-enters here
//!   block $fin
//!     block $body <original body>  ;; branches to the body label still return
//!     return
//!   end
//!   ;; unwinding: abort? br $top : cursor += size; return defaults
//! end
//! ```
//!
//! In each sequence that contains fork-path calls, the code before each
//! call (or each construct holding calls) is wrapped in a landing block
//! whose results are the values the call keeps on the stack; the sequence
//! starts with a dispatch that, when replaying, loads them from the frame
//! and branches to the right landing. After each call, a state check writes
//! the frame on unwind. No local is declared for any of it.

mod sequence;
mod unwind;

use crate::codegen::{i, i32c, zeros, Loc};
use crate::plan::{FuncPlan, Kind, Saved};
use crate::runtime::Runtime;
use crate::{Error, Result, Stage};
use forkify_abi::State;
use std::collections::HashMap;
use walrus::ir::{self, BinaryOp, Instr, InstrSeqId, InstrSeqType, Value};
use walrus::{FunctionId, LocalFunction, ModuleTypes, ValType};

struct Rewriter<'a> {
    func: &'a mut LocalFunction,
    types: &'a mut ModuleTypes,
    rt: &'a Runtime,
    plan: &'a FuncPlan,
    wrappers: HashMap<InstrSeqId, InstrSeqId>,
    fin: InstrSeqId,
}

/// Rewrites `func` according to `plan`.
pub fn rewrite(func: &mut LocalFunction, types: &mut ModuleTypes, rt: &Runtime, plan: &FuncPlan) {
    let entry = func.entry_block();
    // The entry's own type is a function-entry type that walrus never
    // emits; blocks need a real block type.
    let entry_ty = InstrSeqType::new(types, &[], &plan.results);
    let fin = new_seq_ty(func, InstrSeqType::Simple(None));
    let mut rw = Rewriter {
        func,
        types,
        rt,
        plan,
        wrappers: HashMap::new(),
        fin,
    };
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
    let mut seqs: Vec<InstrSeqId> = plan.seqs.keys().copied().collect();
    seqs.sort();
    for s in seqs {
        rw.rewrite_seq(s);
    }
    // Move the (rewritten) body into its own block and build the frame.
    let body = new_seq_ty(rw.func, entry_ty);
    let instrs = std::mem::take(&mut rw.func.block_mut(entry).instrs);
    rw.func.block_mut(body).instrs = instrs;
    let top = new_seq_ty(rw.func, entry_ty);
    rw.func.block_mut(fin).instrs = vec![i(ir::Block { seq: body }), i(ir::Return {})];
    let m = rt.mem;
    let mut top_instrs = vec![i(ir::Block { seq: fin })];
    top_instrs.extend([
        i(ir::GlobalGet { global: m.state }),
        i32c(State::Aborting as i32),
        i(ir::Binop {
            op: BinaryOp::I32Eq,
        }),
        i(ir::BrIf { block: top }),
        i(ir::GlobalGet { global: m.buf }),
    ]);
    top_instrs.extend(m.cursor());
    top_instrs.extend([
        m.ptr_const(plan.frame_size as u64),
        m.ptr_add(),
        m.set_cursor(),
    ]);
    top_instrs.extend(zeros(&plan.results));
    rw.func.block_mut(top).instrs = top_instrs;
    let mut entry_instrs = rw.preamble();
    entry_instrs.push(i(ir::Loop { seq: top }));
    rw.func.block_mut(entry).instrs = entry_instrs;
}

fn new_seq_ty(func: &mut LocalFunction, ty: InstrSeqType) -> InstrSeqId {
    func.builder_mut().dangling_instr_seq(ty).id()
}

impl Rewriter<'_> {
    fn new_seq(&mut self, params: &[ValType], results: &[ValType]) -> InstrSeqId {
        let ty = InstrSeqType::new(self.types, params, results);
        new_seq_ty(self.func, ty)
    }

    /// `if <cond on stack> (param P)(result P) <then> end`.
    fn if_then(&mut self, params: &[ValType], then: Vec<Loc>) -> Loc {
        let c = self.new_seq(params, params);
        let a = self.new_seq(params, params);
        self.func.block_mut(c).instrs = then;
        i(ir::IfElse {
            consequent: c,
            alternative: a,
        })
    }

    fn call(&self, f: walrus::FunctionId) -> Loc {
        i(ir::Call { func: f })
    }

    /// Pushes `call_index < hi`.
    fn idx_below(&self, hi: u32) -> Vec<Loc> {
        vec![
            self.call(self.rt.idx_fn),
            i32c(hi as i32),
            i(ir::Binop {
                op: BinaryOp::I32LtU,
            }),
        ]
    }

    fn preamble(&mut self) -> Vec<Loc> {
        let plan = self.plan;
        let m = self.rt.mem;
        let mut pre = vec![m.ptr_const(plan.frame_size as u64)];
        pre.extend(self.ordinal_call(self.rt.pop_fn));
        // Group sites whose frames hold the same locals at the same offsets.
        let mut groups: Vec<(Vec<Saved>, Vec<u32>)> = Vec::new();
        for (k, s) in plan.sites.iter().enumerate() {
            if s.saved.is_empty() {
                continue;
            }
            match groups.iter_mut().find(|g| g.0 == s.saved) {
                Some(g) => g.1.push(k as u32),
                None => groups.push((s.saved.clone(), vec![k as u32])),
            }
        }
        let all = plan.sites.len();
        for (saved, ks) in groups {
            let mut restore = Vec::new();
            for (l, t, o) in &saved {
                restore.extend(m.frame_load(*t, *o));
                restore.push(i(ir::LocalSet { local: *l }));
            }
            if ks.len() == all {
                pre.extend(restore);
                continue;
            }
            let mut first = true;
            for (lo, hi) in runs(&ks) {
                pre.push(self.call(self.rt.idx_fn));
                if hi - lo == 1 {
                    pre.extend([
                        i32c(lo as i32),
                        i(ir::Binop {
                            op: BinaryOp::I32Eq,
                        }),
                    ]);
                } else {
                    pre.extend([
                        i32c(lo as i32),
                        i(ir::Binop {
                            op: BinaryOp::I32Sub,
                        }),
                        i32c((hi - lo) as i32),
                        i(ir::Binop {
                            op: BinaryOp::I32LtU,
                        }),
                    ]);
                }
                if !first {
                    pre.push(i(ir::Binop {
                        op: BinaryOp::I32Or,
                    }));
                }
                first = false;
            }
            let iff = self.if_then(&[], restore);
            pre.push(iff);
        }
        let mut out = m.replaying();
        let iff = self.if_then(&[], pre);
        out.push(iff);
        out
    }

    /// `i32.const ordinal; call helper`: the ordinal is always the last
    /// argument of the frame and pop helpers, written right before the call,
    /// which is what [`renumber`] relies on.
    fn ordinal_call(&self, helper: FunctionId) -> [Loc; 2] {
        [i32c(self.plan.ordinal as i32), self.call(helper)]
    }
}

/// Gives a rewritten function another ordinal: rewrites the constant before
/// every call to the frame and pop helpers (see `ordinal_call`). Used when
/// the output's function order is walrus's, not the input's.
pub fn renumber(func: &mut LocalFunction, rt: &Runtime, ordinal: u32) -> Result<()> {
    for seq in crate::tree::all_seqs(func) {
        let instrs = &mut func.block_mut(seq).instrs;
        for pos in 0..instrs.len() {
            let helper = matches!(&instrs[pos].0, Instr::Call(c) if c.func == rt.pop_fn || c.func == rt.frame_fn);
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

/// Consecutive runs `[lo, hi)` in a sorted list.
fn runs(ks: &[u32]) -> Vec<(u32, u32)> {
    let mut out: Vec<(u32, u32)> = Vec::new();
    for &k in ks {
        match out.last_mut() {
            Some((_, hi)) if *hi == k => *hi += 1,
            _ => out.push((k, k + 1)),
        }
    }
    out
}
