//! Reshapes a fork-path function before planning so that replay reaches
//! more of its call sites through one dispatch point (ABI §6 is unchanged:
//! the function computes exactly what it computed before).
//!
//! Replay enters a sequence at its start. A `block` at the start of a
//! sequence is entered by replay as by normal execution, so the dispatch
//! point of the sequence moves into it (`rewrite/sequence.rs`); anything
//! else that holds fork-path calls (an `if`, a block after other code)
//! gets a dispatch point of its own, which costs normal execution a state
//! check every time it is entered and costs bytes. Two rewrites remove
//! most of those:
//!
//! - **Sinking.** `code; block B { body }`, with the operand stack empty
//!   before `B`, becomes `block B { code; body }`: `B` now starts the
//!   sequence. Branches name their targets, so nothing in `code` changes
//!   meaning; nothing can branch to `B` from before it.
//! - **Lowering an `if`.** `code; cond; if A else B`, with only `cond` on
//!   the stack, becomes `block $end { block $else { code; cond; i32.eqz;
//!   br_if $else; A; br $end } B }` (one block when an arm is empty), the
//!   same control flow with both arms in blocks that start the sequence.
//!
//! Both apply only to sequences without parameters and to constructs that
//! hold fork-path calls whose own sequence would need a dispatch point.
//! Instructions keep their input offsets and their order; a block that
//! moves ahead of code loses its offset (DWARF line programs need offsets
//! in order), as do the blocks this adds.
//! Each adds nesting to the code it moves, so a chain of them is capped at
//! [`DEPTH`] added levels. Functions with legacy `delegate`/`rethrow`
//! (relative depths, which moving code would change) are left alone. Moved
//! instructions keep their `InstrLocId`, so the operand types recorded for
//! them stay valid: every block this adds starts at the height its code
//! started at.

use crate::walrus_gaps::dead_code;
use crate::walrus_gaps::operand_types::OperandTypes;
use std::collections::HashSet;
use walrus::ir::{self, Instr, InstrLocId, InstrSeqId, InstrSeqType, UnaryOp};
use walrus::{LocalFunction, ModuleTypes};

/// Nesting levels reshaping may add along one chain of sequences.
pub const DEPTH: u32 = 8;

type Loc = (Instr, InstrLocId);

struct Reshaper<'a> {
    func: &'a mut LocalFunction,
    types: &'a ModuleTypes,
    facts: &'a OperandTypes,
    /// Offsets of the function's fork-path call instructions.
    sites: &'a HashSet<u32>,
    /// The sequences that hold a fork-path call, themselves or below.
    holding: HashSet<InstrSeqId>,
}

/// Reshapes `func`, whose fork-path calls are the instructions at `sites`.
pub fn reshape(
    func: &mut LocalFunction,
    types: &ModuleTypes,
    facts: &OperandTypes,
    sites: &HashSet<u32>,
) {
    if has_relative_depths(func) {
        return;
    }
    let entry = func.entry_block();
    let mut r = Reshaper {
        func,
        types,
        facts,
        sites,
        holding: HashSet::new(),
    };
    // Children come after their parents in `all_seqs`: walk it backwards.
    for seq in crate::tree::all_seqs(r.func).into_iter().rev() {
        r.note_holding(seq);
    }
    r.seq(entry, DEPTH);
}

fn has_relative_depths(func: &LocalFunction) -> bool {
    crate::tree::all_seqs(func).into_iter().any(|s| {
        func.block(s).instrs.iter().any(|(i, _)| match i {
            Instr::Rethrow(_) => true,
            Instr::Try(t) => t
                .catches
                .iter()
                .any(|c| matches!(c, ir::LegacyCatch::Delegate { .. })),
            _ => false,
        })
    })
}

/// What a candidate construct is.
enum Candidate {
    Block(InstrSeqId),
    If {
        consequent: InstrSeqId,
        alternative: InstrSeqId,
    },
}

impl Reshaper<'_> {
    fn seq_has_params(&self, seq: InstrSeqId) -> bool {
        match self.func.block(seq).ty {
            InstrSeqType::Simple(_) => false,
            InstrSeqType::MultiValue(t) => !self.types.params(t).is_empty(),
        }
    }

    /// Whether `seq` (or a sequence below it) holds a fork-path call.
    fn holds_site(&self, seq: InstrSeqId) -> bool {
        self.holding.contains(&seq)
    }

    /// Records whether `seq` holds a fork-path call, from its own
    /// instructions and what is known of the sequences they own.
    fn note_holding(&mut self, seq: InstrSeqId) {
        let mut holds = false;
        for (instr, loc) in self.func.block(seq).instrs.iter() {
            holds = holds || is_site(self.sites, *loc);
            crate::tree::for_each_child(instr, |c| holds = holds || self.holding.contains(&c));
            if holds {
                break;
            }
        }
        if holds {
            self.holding.insert(seq);
        }
    }

    /// Whether replay would need a dispatch point inside `seq`: its first
    /// fork-path item is not a call at its very start.
    fn would_dispatch(&self, seq: InstrSeqId) -> bool {
        let instrs = &self.func.block(seq).instrs;
        for (pos, (instr, loc)) in instrs.iter().enumerate() {
            if is_site(self.sites, *loc) {
                return pos > 0;
            }
            let mut holds = false;
            crate::tree::for_each_child(instr, |k| holds = holds || self.holds_site(k));
            if holds {
                // A block at the start continues the chain; its own first
                // item decides.
                return match instr {
                    Instr::Block(b) if pos == 0 => self.would_dispatch(b.seq),
                    _ => true,
                };
            }
        }
        false
    }

    /// (height, frame height) before the instruction at `pos`, when known.
    fn heights(&self, seq: InstrSeqId, pos: usize) -> Option<(u32, u32)> {
        let loc = self.func.block(seq).instrs[pos].1;
        if loc.is_default() {
            return None;
        }
        self.facts
            .at(loc.data())
            .map(|a| (a.height, a.frame_height))
    }

    /// The last construct of `seq` that reshaping can move to its start.
    fn candidate(&self, seq: InstrSeqId) -> Option<(usize, Candidate)> {
        let instrs = &self.func.block(seq).instrs;
        for pos in (1..instrs.len()).rev() {
            match &instrs[pos].0 {
                Instr::Block(b) => {
                    let empty = matches!(self.heights(seq, pos), Some((h, fh)) if h == fh);
                    if empty
                        && !self.seq_has_params(b.seq)
                        && self.holds_site(b.seq)
                        && self.would_dispatch(b.seq)
                    {
                        return Some((pos, Candidate::Block(b.seq)));
                    }
                }
                Instr::IfElse(e) => {
                    let only_cond = matches!(self.heights(seq, pos), Some((h, fh)) if h == fh + 1);
                    let arm = |s: InstrSeqId| self.holds_site(s) && self.would_dispatch(s);
                    if only_cond
                        && !self.seq_has_params(e.consequent)
                        && (arm(e.consequent) || arm(e.alternative))
                    {
                        return Some((
                            pos,
                            Candidate::If {
                                consequent: e.consequent,
                                alternative: e.alternative,
                            },
                        ));
                    }
                }
                _ => {}
            }
        }
        None
    }

    /// Reshapes `seq` and the sequences below it; `budget` is the nesting
    /// this chain may still add.
    fn seq(&mut self, seq: InstrSeqId, budget: u32) {
        let mut budget = budget;
        let mut moved_into: Option<InstrSeqId> = None;
        if !self.seq_has_params(seq) && budget > 0 {
            if let Some((pos, c)) = self.candidate(seq) {
                let cost = match &c {
                    Candidate::Block(_) => 1,
                    Candidate::If {
                        consequent,
                        alternative,
                    } => {
                        let both = !self.func.block(*consequent).instrs.is_empty()
                            && !self.func.block(*alternative).instrs.is_empty();
                        if both {
                            2
                        } else {
                            1
                        }
                    }
                };
                if cost <= budget {
                    budget -= cost;
                    moved_into = self.apply(seq, pos, c);
                }
            }
        }
        // Below: the sequence that received the prefix continues this
        // chain's budget; every other sequence starts a chain of its own.
        let mut kids: Vec<InstrSeqId> = Vec::new();
        for (i, _) in self.func.block(seq).instrs.iter() {
            crate::tree::for_each_child(i, |c| kids.push(c));
        }
        for k in kids {
            if !self.holds_site(k) {
                continue;
            }
            let b = if Some(k) == moved_into || self.starts(seq, k) {
                budget
            } else {
                DEPTH
            };
            self.seq(k, b);
        }
    }

    /// Whether `kid` is the body of a block at the start of `seq`.
    fn starts(&self, seq: InstrSeqId, kid: InstrSeqId) -> bool {
        matches!(self.func.block(seq).instrs.first(), Some((Instr::Block(b), _)) if b.seq == kid)
    }

    /// Moves the construct at `pos` to the start of `seq` with everything
    /// before it inside; returns the sequence that received that prefix's
    /// chain (the block body, or for an `if` the block at the start).
    fn apply(&mut self, seq: InstrSeqId, pos: usize, c: Candidate) -> Option<InstrSeqId> {
        let mut prefix = std::mem::take(&mut self.func.block_mut(seq).instrs);
        let suffix = prefix.split_off((pos + 1).min(prefix.len()));
        let construct = prefix.pop()?;
        match c {
            Candidate::Block(body) => {
                let mut inner = prefix;
                inner.extend(std::mem::take(&mut self.func.block_mut(body).instrs));
                self.func.block_mut(body).instrs = inner;
                // The block now comes before code that was before it: it
                // loses its offset, so code offsets stay in order for DWARF
                // (and the planner knows it as a block with an empty stack
                // below, which it is).
                let mut out = vec![plain(construct.0)];
                out.extend(suffix);
                self.func.block_mut(seq).instrs = out;
                Some(body)
            }
            Candidate::If {
                consequent,
                alternative,
            } => {
                let end_ty = self.func.block(consequent).ty;
                let then_instrs = std::mem::take(&mut self.func.block_mut(consequent).instrs);
                let else_instrs = std::mem::take(&mut self.func.block_mut(alternative).instrs);
                let new = |f: &mut LocalFunction, ty: InstrSeqType| -> InstrSeqId {
                    f.builder_mut().dangling_instr_seq(ty).id()
                };
                // `end` takes the if's type; branches to either arm's label
                // leave the if, so they now name `end`.
                let end = new(self.func, end_ty);
                let retargeted_then = retarget(self.func, then_instrs, consequent, end);
                let retargeted_else = retarget(self.func, else_instrs, alternative, end);
                let falls = |v: &[Loc]| !v.last().is_some_and(|(i, _)| dead_code::transfers(i));
                let mut body = prefix;
                // Branching on "not cond": a condition that ends in
                // `i32.eqz` loses it (`br_if` on X is `br_if` on X != 0).
                let negate = |body: &mut Vec<Loc>| {
                    let eqz =
                        |i: &Instr| matches!(i, Instr::Unop(u) if matches!(u.op, UnaryOp::I32Eqz));
                    if body.last().is_some_and(|(i, _)| eqz(i)) {
                        body.pop();
                    } else {
                        body.push(plain(Instr::Unop(ir::Unop {
                            op: UnaryOp::I32Eqz,
                        })));
                    }
                };
                if retargeted_else.is_empty() {
                    // `cond; i32.eqz; br_if $end; A`
                    negate(&mut body);
                    body.push(plain(Instr::BrIf(ir::BrIf { block: end })));
                    body.extend(retargeted_then);
                    self.func.block_mut(end).instrs = body;
                } else if retargeted_then.is_empty() {
                    // `cond; br_if $end; B`
                    body.push(plain(Instr::BrIf(ir::BrIf { block: end })));
                    body.extend(retargeted_else);
                    self.func.block_mut(end).instrs = body;
                } else {
                    let els = new(self.func, InstrSeqType::Simple(None));
                    negate(&mut body);
                    body.push(plain(Instr::BrIf(ir::BrIf { block: els })));
                    let then_falls = falls(&retargeted_then);
                    body.extend(retargeted_then);
                    if then_falls {
                        body.push(plain(Instr::Br(ir::Br { block: end })));
                    }
                    self.func.block_mut(els).instrs = body;
                    self.note_holding(els);
                    let mut e = vec![plain(Instr::Block(ir::Block { seq: els }))];
                    e.extend(retargeted_else);
                    self.func.block_mut(end).instrs = e;
                }
                self.note_holding(end);
                let mut out = vec![plain(Instr::Block(ir::Block { seq: end }))];
                out.extend(suffix);
                self.func.block_mut(seq).instrs = out;
                Some(end)
            }
        }
    }
}

fn is_site(sites: &HashSet<u32>, loc: InstrLocId) -> bool {
    crate::analysis::callgraph::offset(loc).is_some_and(|o| sites.contains(&o))
}

/// An instruction the reshaping adds (no input offset).
fn plain(i: Instr) -> Loc {
    (i, InstrLocId::default())
}

/// `instrs`, and the sequences below them, with branches to `from`
/// renamed `to`.
fn retarget(
    func: &mut LocalFunction,
    mut instrs: Vec<Loc>,
    from: InstrSeqId,
    to: InstrSeqId,
) -> Vec<Loc> {
    let mut stack = Vec::new();
    for (i, _) in instrs.iter_mut() {
        rename(i, from, to);
        crate::tree::for_each_child(i, |c| stack.push(c));
    }
    while let Some(s) = stack.pop() {
        for (i, _) in func.block_mut(s).instrs.iter_mut() {
            rename(i, from, to);
            crate::tree::for_each_child(i, |c| stack.push(c));
        }
    }
    instrs
}

fn rename(i: &mut Instr, from: InstrSeqId, to: InstrSeqId) {
    let fix = |b: &mut InstrSeqId| {
        if *b == from {
            *b = to;
        }
    };
    match i {
        Instr::Br(b) => fix(&mut b.block),
        Instr::BrIf(b) => fix(&mut b.block),
        Instr::BrTable(t) => {
            t.blocks.iter_mut().for_each(fix);
            fix(&mut t.default);
        }
        Instr::BrOnNull(b) => fix(&mut b.block),
        Instr::BrOnNonNull(b) => fix(&mut b.block),
        Instr::BrOnCast(b) => fix(&mut b.block),
        Instr::BrOnCastFail(b) => fix(&mut b.block),
        Instr::TryTable(t) => {
            for c in t.catches.iter_mut() {
                match c {
                    ir::TryTableCatch::Catch { label, .. }
                    | ir::TryTableCatch::CatchRef { label, .. }
                    | ir::TryTableCatch::CatchAll { label }
                    | ir::TryTableCatch::CatchAllRef { label } => fix(label),
                }
            }
        }
        _ => {}
    }
}
