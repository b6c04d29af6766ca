//! Applies a [`FuncPlan`] to one function (switch dispatch, ABI §6).
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

use crate::gen::{drops, i, i32c, zeros, Loc};
use crate::plan::{ConstructPlan, Exit, FuncPlan, Item, Kind, Saved, SitePlan};
use crate::runtime::{type_key, Runtime};
use std::collections::HashMap;
use walrus::ir::{self, BinaryOp, Instr, InstrSeqId, InstrSeqType};
use walrus::{LocalFunction, ModuleTypes, ValType};

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
        i32c(crate::abi::State::Aborting as i32),
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
        m.store(m.ptr(), 0),
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
        let mut pre = vec![
            i32c(plan.ordinal as i32),
            m.ptr_const(plan.frame_size as u64),
            self.call(self.rt.pop_fn),
        ];
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

    fn rewrite_seq(&mut self, seq: InstrSeqId) {
        let sp = self.plan.seqs[&seq].clone();
        let orig = std::mem::take(&mut self.func.block_mut(seq).instrs);
        let mut out = Vec::new();
        let n = sp.chunks.len();
        for ci in 0..n {
            let (first, start) = sp.chunks[ci];
            let (end_item, end_pos) = if ci + 1 < n {
                sp.chunks[ci + 1]
            } else {
                (sp.items.len(), orig.len())
            };
            let params_in: Vec<ValType> = if ci == 0 {
                sp.params.clone()
            } else {
                Vec::new()
            };
            let last = ci + 1 == n;
            let g = (!last).then(|| self.new_seq(&params_in, &[]));
            let body = self.build_chunk(
                seq,
                &orig,
                &sp.items[first..end_item],
                start,
                end_pos,
                &params_in,
                g,
            );
            match g {
                Some(g) => {
                    self.func.block_mut(g).instrs = body;
                    out.push(i(ir::Block { seq: g }));
                }
                None => out.extend(body),
            }
        }
        self.func.block_mut(seq).instrs = out;
    }

    fn construct(&self, seq: InstrSeqId, pos: usize) -> &ConstructPlan {
        &self.plan.constructs[&(seq, pos)]
    }

    fn site(&self, k: u32) -> &SitePlan {
        &self.plan.sites[k as usize]
    }

    /// Values on the stack at an item's landing point.
    fn landing_types(&self, seq: InstrSeqId, item: Item) -> Vec<ValType> {
        match item {
            Item::Site(k) => {
                let s = self.site(k);
                let mut v = s.carry[s.level_start..].to_vec();
                v.extend(&s.dead_args);
                v
            }
            Item::Construct(pos) => {
                let c = self.construct(seq, pos);
                let mut v = c.level_vals.clone();
                v.extend(&c.params);
                if matches!(c.kind, Kind::If { .. }) {
                    v.push(ValType::I32);
                }
                v
            }
        }
    }

    fn landing_pos(&self, item: Item) -> usize {
        match item {
            Item::Site(k) => self.site(k).tail_start,
            Item::Construct(pos) => pos,
        }
    }

    fn after_pos(&self, item: Item) -> usize {
        match item {
            Item::Site(k) => self.site(k).pos + 1,
            Item::Construct(pos) => pos + 1,
        }
    }

    fn hi(&self, seq: InstrSeqId, item: Item) -> u32 {
        match item {
            Item::Site(k) => k + 1,
            Item::Construct(pos) => self.construct(seq, pos).hi,
        }
    }

    /// Code that, on replay, loads an item's landing values from the frame.
    fn landing_loads(&self, seq: InstrSeqId, item: Item) -> Vec<Loc> {
        let m = self.rt.mem;
        let mut out = Vec::new();
        match item {
            Item::Site(k) => {
                let s = self.site(k);
                for j in s.level_start..s.carry.len() {
                    out.extend(m.frame_load(s.carry[j], s.carry_off[j]));
                }
                out.extend(zeros(&s.dead_args));
            }
            Item::Construct(pos) => {
                let c = self.construct(seq, pos);
                for (t, o) in c.level_vals.iter().zip(&c.level_off) {
                    out.extend(m.frame_load(*t, *o));
                }
                out.extend(zeros(&c.params));
                if let Kind::If {
                    split,
                    then_has,
                    else_has,
                } = c.kind
                {
                    match (then_has, else_has) {
                        (true, true) => out.extend(self.idx_below(split)),
                        (true, false) => out.push(i32c(1)),
                        _ => out.push(i32c(0)),
                    }
                }
            }
        }
        out
    }

    fn spill_sets(&self, item: Item) -> Vec<Loc> {
        match item {
            Item::Site(k) => self
                .site(k)
                .spills
                .iter()
                .rev()
                .map(|(l, _)| i(ir::LocalSet { local: *l }))
                .collect(),
            Item::Construct(_) => Vec::new(),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn build_chunk(
        &mut self,
        seq_of_orig: InstrSeqId,
        orig: &[Loc],
        items: &[Item],
        start: usize,
        end: usize,
        params_in: &[ValType],
        skip: Option<InstrSeqId>,
    ) -> Vec<Loc> {
        let labels: Vec<InstrSeqId> = items
            .iter()
            .map(|it| {
                let v = self.landing_types(seq_of_orig, *it);
                self.new_seq(params_in, &v)
            })
            .collect();
        // The dispatch, first thing in the innermost landing.
        let mut d = drops(params_in.len());
        if let Some(g) = skip {
            let chunk_hi = self.hi(seq_of_orig, *items.last().expect("chunks are not empty"));
            d.push(self.call(self.rt.idx_fn));
            d.extend([
                i32c(chunk_hi as i32),
                i(ir::Binop {
                    op: BinaryOp::I32GeU,
                }),
            ]);
            let br = self.if_then(&[], vec![i(ir::Br { block: g })]);
            d.push(br);
        }
        for (j, it) in items.iter().enumerate() {
            d.extend(self.idx_below(self.hi(seq_of_orig, *it)));
            let mut then = self.landing_loads(seq_of_orig, *it);
            then.push(i(ir::Br { block: labels[j] }));
            let iff = self.if_then(&[], then);
            d.push(iff);
        }
        d.push(i(ir::Unreachable {}));
        let mut cur = self.rt.mem.replaying();
        let iff = self.if_then(params_in, d);
        cur.push(iff);
        cur.extend(orig[start..self.landing_pos(items[0])].iter().cloned());
        cur.extend(self.spill_sets(items[0]));
        for (t, it) in items.iter().enumerate() {
            self.func.block_mut(labels[t]).instrs = cur;
            cur = vec![i(ir::Block { seq: labels[t] })];
            cur.extend(self.post(seq_of_orig, orig, *it));
            let next = items
                .get(t + 1)
                .map(|n| self.landing_pos(*n))
                .unwrap_or(end);
            cur.extend(orig[self.after_pos(*it)..next].iter().cloned());
            if let Some(n) = items.get(t + 1) {
                cur.extend(self.spill_sets(*n));
            }
        }
        cur
    }

    /// Store `types` (on the stack, top last) into the frame at `offs`.
    fn store_values(&self, types: &[ValType], offs: &[u32]) -> Vec<Loc> {
        let m = self.rt.mem;
        let mut out = Vec::new();
        for (t, o) in types.iter().zip(offs).rev() {
            let g = self.rt.scratch[&type_key(*t)];
            out.push(i(ir::GlobalSet { global: g }));
            out.extend(m.cursor());
            out.push(i(ir::GlobalGet { global: g }));
            out.push(m.store(*t, *o as u64));
        }
        out
    }

    fn exit_br(&self, exit: &Exit) -> Vec<Loc> {
        match exit {
            Exit::Fin => vec![i(ir::Br { block: self.fin })],
            Exit::Label {
                seq,
                loop_wrapper,
                results,
            } => {
                let target = if *loop_wrapper {
                    self.wrappers[seq]
                } else {
                    *seq
                };
                let mut v = zeros(results);
                v.push(i(ir::Br { block: target }));
                v
            }
        }
    }

    fn post(&mut self, seq: InstrSeqId, orig: &[Loc], item: Item) -> Vec<Loc> {
        let m = self.rt.mem;
        match item {
            Item::Site(k) => {
                let s = self.site(k).clone();
                let mut out: Vec<Loc> = s
                    .spills
                    .iter()
                    .map(|(l, _)| i(ir::LocalGet { local: *l }))
                    .collect();
                out.extend(orig[s.tail_start..s.pos].iter().cloned());
                let call = match &orig[s.pos].0 {
                    Instr::ReturnCall(c) => Instr::Call(ir::Call { func: c.func }),
                    Instr::ReturnCallIndirect(c) => Instr::CallIndirect(ir::CallIndirect {
                        ty: c.ty,
                        table: c.table,
                    }),
                    Instr::ReturnCallRef(c) => Instr::CallRef(ir::CallRef { ty: c.ty }),
                    other => other.clone(),
                };
                out.push((call, orig[s.pos].1));
                // Unwind check.
                let level = s.carry[s.level_start..].to_vec();
                let level_off = s.carry_off[s.level_start..].to_vec();
                let mut stack_ty = level.clone();
                stack_ty.extend(&s.results);
                let mut u = drops(s.results.len());
                u.extend([
                    i32c(self.plan.ordinal as i32),
                    i32c(k as i32),
                    m.ptr_const(self.plan.frame_size as u64),
                ]);
                u.push(self.call(self.rt.frame_fn));
                if s.saved.is_empty() {
                    u.push(i(ir::Drop {}));
                } else {
                    let mut saves = Vec::new();
                    for (l, t, o) in &s.saved {
                        saves.extend(m.cursor());
                        saves.push(i(ir::LocalGet { local: *l }));
                        saves.push(m.store(*t, *o as u64));
                    }
                    let iff = self.if_then(&[], saves);
                    u.push(iff);
                }
                u.extend(self.store_values(&level, &level_off));
                u.extend(self.exit_br(&s.exit));
                out.push(i(ir::GlobalGet { global: m.state }));
                let iff = self.if_then(&stack_ty, u);
                out.push(iff);
                if s.return_call {
                    out.push(i(ir::Return {}));
                }
                out
            }
            Item::Construct(pos) => {
                let c = self.construct(seq, pos).clone();
                let mut out = vec![match self.wrappers.get(&c.seq) {
                    Some(w) if c.kind == Kind::Loop => i(ir::Block { seq: *w }),
                    _ => orig[pos].clone(),
                }];
                if c.post_check {
                    let mut stack_ty = c.level_vals.clone();
                    stack_ty.extend(&c.results);
                    let mut u = drops(c.results.len());
                    u.extend(self.store_values(&c.level_vals, &c.level_off));
                    u.extend(self.exit_br(&c.exit));
                    out.push(i(ir::GlobalGet { global: m.state }));
                    let iff = self.if_then(&stack_ty, u);
                    out.push(iff);
                }
                out
            }
        }
    }
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
