//! Walks one function's instruction tree and fills in its plan: sites,
//! constructs, carryover layouts, argument tails and spills, buckets.

use super::arg_tail::tail_start;
use super::new_locals::NewLocals;
use super::{ConstructPlan, Ctx, Exit, Item, Kind, SeqPlan, SitePlan, BUCKET};
use crate::analysis::callgraph::Callees;
use crate::analysis::liveness::Liveness;
use crate::codegen::zero;
use crate::frame;
use crate::{Error, Stage};
use std::collections::{BTreeSet, HashMap, HashSet};
use walrus::ir::{Instr, InstrSeqId, InstrSeqType};
use walrus::{FunctionKind, LocalFunction, LocalId, ModuleLocals, ModuleTypes, ValType};

pub(super) struct Planner<'a, 'b> {
    pub(super) cx: &'a Ctx<'b>,
    pub(super) f: &'a LocalFunction,
    pub(super) fname: String,
    pub(super) calls: HashMap<(InstrSeqId, usize), &'a Callees>,
    /// The sequences that hold a fork-path call, themselves or below.
    pub(super) holding: HashSet<InstrSeqId>,
    pub(super) sites: Vec<SitePlan>,
    pub(super) seqs: HashMap<InstrSeqId, SeqPlan>,
    pub(super) constructs: HashMap<(InstrSeqId, usize), ConstructPlan>,
    /// Enclosing constructs, outermost first: (parent seq, pos, branch seq).
    pub(super) path: Vec<(InstrSeqId, usize, InstrSeqId)>,
    pub(super) live: Liveness,
    /// Locals a spill may reuse.
    pub(super) pool: Vec<LocalId>,
    pub(super) locals: &'a ModuleLocals,
    /// The spill locals it declares.
    pub(super) new: NewLocals,
}

fn seq_sig(types: &ModuleTypes, ty: InstrSeqType) -> (Vec<ValType>, Vec<ValType>) {
    match ty {
        InstrSeqType::Simple(None) => (vec![], vec![]),
        InstrSeqType::Simple(Some(t)) => (vec![], vec![t]),
        InstrSeqType::MultiValue(id) => (types.params(id).to_vec(), types.results(id).to_vec()),
    }
}

/// A walrus type for an operand-stack type. References only ever reach a
/// refusal message, which names them with the closest abstract type.
fn convert(t: wasmparser::ValType) -> ValType {
    use walrus::{AbstractHeapType as A, HeapType, RefType};
    match t {
        wasmparser::ValType::I32 => ValType::I32,
        wasmparser::ValType::I64 => ValType::I64,
        wasmparser::ValType::F32 => ValType::F32,
        wasmparser::ValType::F64 => ValType::F64,
        wasmparser::ValType::V128 => ValType::V128,
        wasmparser::ValType::Ref(r) => {
            let abs = match r.heap_type() {
                wasmparser::HeapType::Abstract {
                    ty: wasmparser::AbstractHeapType::Extern,
                    ..
                } => A::Extern,
                wasmparser::HeapType::Abstract {
                    ty: wasmparser::AbstractHeapType::Exn,
                    ..
                } => A::Exn,
                wasmparser::HeapType::Abstract {
                    ty: wasmparser::AbstractHeapType::Any,
                    ..
                } => A::Any,
                _ => A::Func,
            };
            ValType::Ref(RefType {
                nullable: r.is_nullable(),
                heap_type: HeapType::Abstract(abs),
            })
        }
    }
}

impl<'a, 'b> Planner<'a, 'b> {
    fn local_ty(&self, l: LocalId) -> ValType {
        match self.new.ty(l) {
            Some(t) => t,
            None => self.locals.get(l).ty(),
        }
    }

    fn local_name(&self, l: LocalId) -> String {
        match self.new.ty(l) {
            Some(_) => Some("added".into()),
            None => self.locals.get(l).name.clone(),
        }
        .unwrap_or_else(|| format!("{}", l.index()))
    }

    fn new_local(&mut self, t: ValType) -> LocalId {
        self.new.add(t)
    }

    /// A refusal (ABI §8) naming this function.
    fn err(&self, reason: impl Into<String>) -> Error {
        Error::Unsupported {
            function: self.fname.clone(),
            reason: reason.into(),
            others: Vec::new(),
        }
    }

    /// A broken invariant while planning this function: a bug.
    fn bug(&self, what: impl std::fmt::Display) -> Error {
        Error::internal(Stage::Plan, format!("function {}: {what}", self.fname))
    }

    fn stack_at(
        &self,
        seq: InstrSeqId,
        pos: usize,
        what: &str,
    ) -> Result<(Vec<ValType>, usize), Error> {
        let loc = self.f.block(seq).instrs[pos].1;
        let facts = (!loc.is_default())
            .then(|| self.cx.facts.at(loc.data()))
            .flatten();
        let Some(at) = facts else {
            return Err(self.bug(format!("no operand types for the {what} at position {pos}")));
        };
        let Some(stack) = at.stack else {
            return Err(self.bug(format!(
                "operand stack unknown at the {what} at offset {:#x}",
                loc.data()
            )));
        };
        let out = stack.iter().map(|t| convert(*t)).collect();
        Ok((out, at.frame_height as usize))
    }

    /// Where unwinding goes from inside the first `depth` enclosing
    /// constructs: out of the innermost one that stores values below it
    /// (constructs are planned before their children), else to the exit.
    fn exit_from(&self, depth: usize) -> Exit {
        for &(parent, pos, branch) in self.path[..depth].iter().rev() {
            match self.constructs.get(&(parent, pos)) {
                Some(c) if c.post_check => {
                    return Exit::Label {
                        seq: branch,
                        loop_wrapper: c.kind == Kind::Loop,
                        results: c.results.clone(),
                    };
                }
                _ => {}
            }
        }
        Exit::Fin
    }

    pub(super) fn plan_seq(&mut self, seq: InstrSeqId, params: Vec<ValType>) -> Result<(), Error> {
        let f = self.f;
        let mut items = Vec::new();
        for (pos, (instr, _)) in f.block(seq).instrs.iter().enumerate() {
            if let Some(callees) = self.calls.get(&(seq, pos)) {
                if self.cx.graph.is_fork_path_call(callees) {
                    let k = self.sites.len() as u32;
                    let site = self.plan_site(seq, pos, instr, callees)?;
                    self.sites.push(site);
                    items.push(Item::Site(k));
                }
                continue;
            }
            let mut holds = false;
            crate::tree::for_each_child(instr, |c| holds = holds || self.holding.contains(&c));
            if !holds {
                continue;
            }
            self.plan_construct(seq, pos, instr)?;
            items.push(Item::Construct(pos));
        }
        if !items.is_empty() {
            let chunks = self.chunks(seq, &items);
            self.seqs.insert(
                seq,
                SeqPlan {
                    params,
                    items,
                    chunks,
                },
            );
        }
        Ok(())
    }

    fn contains_site(&self, seqs: &[InstrSeqId]) -> bool {
        seqs.iter().any(|s| self.holding.contains(s))
    }

    fn plan_construct(&mut self, seq: InstrSeqId, pos: usize, instr: &Instr) -> Result<(), Error> {
        let types = &self.cx.module.types;
        let (kind0, inner, arms): (Kind, InstrSeqId, Vec<InstrSeqId>) = match instr {
            Instr::Block(b) => (Kind::Block, b.seq, vec![b.seq]),
            Instr::Loop(l) => (Kind::Loop, l.seq, vec![l.seq]),
            Instr::TryTable(t) => (Kind::Try, t.seq, vec![t.seq]),
            Instr::IfElse(i) => (
                Kind::If {
                    split: 0,
                    then_has: false,
                    else_has: false,
                },
                i.consequent,
                vec![i.consequent, i.alternative],
            ),
            Instr::Try(t) => {
                for h in crate::tree::legacy_handlers(&t.catches) {
                    if self.contains_site(&[h]) {
                        return Err(self.err("a fork-path call inside a legacy `catch`/`catch_all` handler (ABI 1 §8)"));
                    }
                }
                (Kind::Try, t.seq, vec![t.seq])
            }
            _ => return Ok(()),
        };
        let (params, results) = seq_sig(types, self.f.block(inner).ty);
        // A block the reshaping added (no input offset) starts a sequence
        // whose stack was empty there (`reshape.rs`).
        let added = kind0 == Kind::Block && self.f.block(seq).instrs[pos].1.is_default();
        let (stack, frame_height) = if added {
            (Vec::new(), 0)
        } else {
            self.stack_at(seq, pos, "block")?
        };
        let cond = usize::from(matches!(kind0, Kind::If { .. }));
        let below = stack.len().saturating_sub(params.len() + cond);
        let level_vals = stack[frame_height.min(below)..below].to_vec();
        if let Some(t) = level_vals.iter().find(|t| matches!(t, ValType::Ref(_))) {
            return Err(self.err(format!(
                "a reference-typed operand value ({t}) is live across a fork-path call (ABI 1 §8)"
            )));
        }
        let (offs, _) = frame::carryovers(&stack[..below]);
        let level_off = offs[frame_height.min(below)..].to_vec();
        if results.iter().chain(&params).any(|t| zero(*t).is_none()) {
            return Err(self.err("a block with non-nullable reference parameters or results contains a fork-path call"));
        }
        let post_check = !level_vals.is_empty();
        let depth = self.path.len();
        let exit = self.exit_from(depth);
        self.constructs.insert(
            (seq, pos),
            ConstructPlan {
                kind: kind0,
                seq: inner,
                lo: self.sites.len() as u32,
                hi: 0,
                level_vals,
                level_off,
                params: params.clone(),
                results,
                post_check,
                exit,
            },
        );
        let mut split = 0;
        let mut has = Vec::new();
        for arm in arms {
            let before = self.sites.len();
            split = before as u32;
            self.path.push((seq, pos, arm));
            self.plan_seq(arm, params.clone())?;
            self.path.pop();
            has.push(self.sites.len() > before);
        }
        let hi = self.sites.len() as u32;
        let missing = self.bug("construct plan vanished");
        let c = self.constructs.get_mut(&(seq, pos)).ok_or(missing)?;
        c.hi = hi;
        if let Kind::If { .. } = c.kind {
            c.kind = Kind::If {
                split,
                then_has: has[0],
                else_has: has[1],
            };
        }
        Ok(())
    }

    fn plan_site(
        &mut self,
        seq: InstrSeqId,
        pos: usize,
        instr: &Instr,
        callees: &Callees,
    ) -> Result<SitePlan, Error> {
        let m = self.cx.module;
        let (ty, extra, return_call) = match instr {
            Instr::Call(c) => (m.funcs.get(c.func).ty(), 0, false),
            Instr::ReturnCall(c) => (m.funcs.get(c.func).ty(), 0, true),
            Instr::CallIndirect(c) => (c.ty, 1, false),
            Instr::ReturnCallIndirect(c) => (c.ty, 1, true),
            Instr::CallRef(c) => (c.ty, 1, false),
            Instr::ReturnCallRef(c) => (c.ty, 1, true),
            _ => return Err(self.bug("a fork-path call site is not a call")),
        };
        let params = m.types.params(ty).to_vec();
        let results = m.types.results(ty).to_vec();
        let nargs = params.len() + extra;
        // Which arguments replay needs for real: a fork import's, and the
        // table index / function reference of an indirect call.
        let any_import = match callees {
            Callees::Direct(g) => matches!(m.funcs.get(*g).kind, FunctionKind::Import(_)),
            Callees::Set(s) => s
                .iter()
                .any(|g| matches!(m.funcs.get(*g).kind, FunctionKind::Import(_))),
        };
        let need_from = if any_import { 0 } else { params.len() };
        let (stack, frame_height) = self.stack_at(seq, pos, "call")?;
        if stack.len() < nargs {
            return Err(self.bug("operand stack shorter than the call's arguments"));
        }
        let carry = stack[..stack.len() - nargs].to_vec();
        if let Some(t) = carry.iter().find(|t| matches!(t, ValType::Ref(_))) {
            return Err(self.err(format!(
                "a reference-typed operand value ({t}) is live across a fork-path call (ABI 1 §8)"
            )));
        }
        let instrs = &self.f.block(seq).instrs;
        let needed = nargs - need_from;
        let covered_max = (1..=nargs)
            .take_while(|w| tail_start(instrs, pos, *w, m).is_some())
            .last()
            .unwrap_or(0);
        // When the needed arguments are a pure tail, replay also runs the
        // pure code of the dead arguments below them rather than pushing
        // defaults (fewer values for the landing to carry); what those
        // read need not be saved, since the callee ignores them on replay.
        let (tail_args, spill_count) = if covered_max >= needed {
            (covered_max, 0)
        } else {
            (covered_max, needed - covered_max)
        };
        let tail_start_pos = tail_start(instrs, pos, tail_args, m).unwrap_or(pos);
        let needed_start = if spill_count == 0 {
            tail_start(instrs, pos, needed, m).unwrap_or(pos)
        } else {
            tail_start_pos
        };
        let arg_types: Vec<ValType> = {
            let mut v = params.clone();
            if extra == 1 {
                // The table index or function reference; its exact type
                // comes from the operand stack facts of the call.
                let top = self.stack_at(seq, pos, "call")?.0;
                v.push(*top.last().unwrap_or(&ValType::I32));
            }
            v
        };
        let dead_args = arg_types[..need_from.min(nargs - tail_args)].to_vec();
        if dead_args.iter().any(|t| zero(*t).is_none()) {
            return Err(self.err(
                "a non-nullable reference argument of a fork-path call has no default for replay",
            ));
        }
        let spill_types = arg_types[need_from..need_from + spill_count].to_vec();
        let tail_reads: Vec<LocalId> = instrs[needed_start..pos]
            .iter()
            .filter_map(|(i, _)| match i {
                Instr::LocalGet(g) => Some(g.local),
                _ => None,
            })
            .collect();
        let live = self.live.live_after(seq, pos);
        // Spills reuse a dead local of the same type before declaring one.
        let mut spills = Vec::new();
        for t in &spill_types {
            if matches!(t, ValType::Ref(_)) {
                return Err(self.err(format!("a reference-typed argument ({t}) of a fork-path call would have to be saved (ABI 1 §8)")));
            }
            let taken: Vec<LocalId> = spills.iter().map(|(l, _)| *l).collect();
            let reuse = self.pool.iter().copied().find(|l: &LocalId| {
                self.local_ty(*l) == *t
                    && !live.contains(l)
                    && !tail_reads.contains(l)
                    && !taken.contains(l)
            });
            let l = match reuse {
                Some(l) => l,
                None => {
                    let l = self.new_local(*t);
                    self.pool.push(l);
                    l
                }
            };
            spills.push((l, *t));
        }
        let mut saved_ids: BTreeSet<LocalId> = live.iter().copied().collect();
        saved_ids.extend(tail_reads);
        saved_ids.extend(spills.iter().map(|(l, _)| *l));
        let mut saved_types = Vec::new();
        for l in &saved_ids {
            let t = self.local_ty(*l);
            if let ValType::Ref(_) = t {
                return Err(self.err(format!(
                    "a reference-typed local ({t}, local {}) is live across a fork-path call (ABI 1 §8)",
                    self.local_name(*l)
                )));
            }
            saved_types.push(t);
        }
        let (carry_off, carry_end) = frame::carryovers(&carry);
        let (saved_off, _) = frame::saved_locals(&saved_types, carry_end);
        let saved: Vec<super::Saved> = saved_ids
            .into_iter()
            .zip(saved_types)
            .zip(saved_off)
            .map(|((l, t), o)| (l, t, o))
            .collect();
        let exit = self.exit_from(self.path.len());
        // `call; local.set x` (x not in the frame: the check then runs after
        // x holds the unwinding call's default result) or `call; drop`.
        let absorbs_next = !return_call
            && results.len() == 1
            && match instrs.get(pos + 1).map(|(i, _)| i) {
                Some(Instr::Drop(_)) => true,
                Some(Instr::LocalSet(set)) => !saved.iter().any(|(l, _, _)| *l == set.local),
                _ => false,
            };
        Ok(SitePlan {
            pos,
            tail_start: tail_start_pos,
            return_call,
            absorbs_next,
            results,
            carry,
            carry_off,
            level_start: frame_height.min(stack.len() - nargs),
            dead_args,
            spills,
            saved,
            exit,
        })
    }

    /// Buckets of at most [`BUCKET`] items, split where the sequence's own
    /// stack is empty.
    fn chunks(&self, seq: InstrSeqId, items: &[Item]) -> Vec<(usize, usize)> {
        let mut chunks = vec![(0, 0)];
        let instrs = &self.f.block(seq).instrs;
        let mut count = 0;
        for j in 0..items.len() {
            if count >= BUCKET {
                let prev = self.item_pos(items[j - 1]);
                let lp = self.item_landing(items[j]);
                let boundary = (prev + 1..=lp).find(|p| {
                    let loc = instrs[*p].1;
                    !loc.is_default() && self.cx.facts.at_frame_base(loc.data())
                });
                if let Some(p) = boundary {
                    chunks.push((j, p));
                    count = 0;
                }
            }
            count += 1;
        }
        chunks
    }

    fn item_pos(&self, item: Item) -> usize {
        match item {
            Item::Site(k) => self.sites[k as usize].pos,
            Item::Construct(p) => p,
        }
    }

    fn item_landing(&self, item: Item) -> usize {
        match item {
            Item::Site(k) => self.sites[k as usize].tail_start,
            Item::Construct(p) => p,
        }
    }
}
