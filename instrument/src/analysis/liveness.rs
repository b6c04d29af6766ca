//! Which locals are live right after each fork-path call site.
//!
//! A backward dataflow over walrus's structured control flow: a branch
//! takes the live set of its label (the continuation after a block, the
//! start of a loop, found by iterating to a fixed point), calls inside a
//! `try_table` or legacy `try` may also continue at its handlers. A frame
//! then holds only the locals live across the call it was suspended at.

use std::collections::{BTreeSet, HashMap};
use walrus::ir::{Instr, InstrSeqId, TryTableCatch};
use walrus::{LocalFunction, LocalId};

/// A set of locals, by dense index.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Set(Vec<u64>);

impl Set {
    fn new(n: usize) -> Set {
        Set(vec![0; n.div_ceil(64)])
    }
    fn insert(&mut self, i: usize) {
        self.0[i / 64] |= 1 << (i % 64);
    }
    fn remove(&mut self, i: usize) {
        self.0[i / 64] &= !(1 << (i % 64));
    }
    fn union(&mut self, o: &Set) {
        for (a, b) in self.0.iter_mut().zip(&o.0) {
            *a |= *b;
        }
    }
    fn contains(&self, i: usize) -> bool {
        self.0[i / 64] & (1 << (i % 64)) != 0
    }
}

/// Live-after sets at the requested call sites.
pub struct Liveness {
    locals: Vec<LocalId>,
    at: HashMap<(InstrSeqId, usize), Set>,
}

impl Liveness {
    /// Runs the analysis on `f`, recording the live set after each
    /// instruction in `sites` (sequence, position).
    pub fn compute(f: &LocalFunction, sites: &BTreeSet<(InstrSeqId, usize)>) -> Liveness {
        let mut locals: Vec<LocalId> = f.args.clone();
        for seq in crate::tree::all_seqs(f) {
            for (instr, _) in f.block(seq).instrs.iter() {
                match instr {
                    Instr::LocalGet(g) => locals.push(g.local),
                    Instr::LocalSet(s) => locals.push(s.local),
                    Instr::LocalTee(t) => locals.push(t.local),
                    _ => {}
                }
            }
        }
        let mut seen = std::collections::HashSet::new();
        locals.retain(|l| seen.insert(*l));
        let index = locals.iter().enumerate().map(|(i, l)| (*l, i)).collect();
        let mut a = Analysis {
            f,
            n: locals.len(),
            index: &index,
            labels: HashMap::new(),
            handlers: Vec::new(),
            sites,
            at: HashMap::new(),
        };
        a.labels.insert(f.entry_block(), Set::new(a.n));
        let out = Set::new(a.n);
        a.seq(f.entry_block(), out);
        let at = a.at;
        Liveness { locals, at }
    }

    /// The locals live right after the call at (`seq`, `pos`), in
    /// ascending `LocalId` order.
    pub fn live_after(&self, seq: InstrSeqId, pos: usize) -> Vec<LocalId> {
        let Some(set) = self.at.get(&(seq, pos)) else {
            return Vec::new();
        };
        let mut v: Vec<LocalId> = self
            .locals
            .iter()
            .enumerate()
            .filter(|(i, _)| set.contains(*i))
            .map(|(_, l)| *l)
            .collect();
        v.sort();
        v
    }

    /// Parameters and every local the body uses.
    pub fn locals(&self) -> &[LocalId] {
        &self.locals
    }
}

struct Analysis<'a> {
    f: &'a LocalFunction,
    n: usize,
    index: &'a HashMap<LocalId, usize>,
    /// Live set at each label: after a block, at the start of a loop.
    labels: HashMap<InstrSeqId, Set>,
    /// Live sets where an exception thrown here may continue.
    handlers: Vec<Set>,
    sites: &'a BTreeSet<(InstrSeqId, usize)>,
    at: HashMap<(InstrSeqId, usize), Set>,
}

impl Analysis<'_> {
    fn label(&self, id: InstrSeqId) -> Set {
        self.labels
            .get(&id)
            .cloned()
            .unwrap_or_else(|| Set::new(self.n))
    }

    fn throw_live(&self) -> Set {
        let mut s = Set::new(self.n);
        for h in &self.handlers {
            s.union(h);
        }
        s
    }

    /// Live set at the start of `seq` given the live set at its end.
    fn seq(&mut self, seq: InstrSeqId, mut live: Set) -> Set {
        let f = self.f;
        let instrs = &f.block(seq).instrs;
        for pos in (0..instrs.len()).rev() {
            if self.sites.contains(&(seq, pos)) {
                self.at.insert((seq, pos), live.clone());
            }
            live = self.instr(&instrs[pos].0, live);
        }
        live
    }

    fn instr(&mut self, instr: &Instr, mut live: Set) -> Set {
        match instr {
            Instr::LocalGet(g) => live.insert(self.index[&g.local]),
            Instr::LocalSet(s) => live.remove(self.index[&s.local]),
            Instr::LocalTee(t) => live.remove(self.index[&t.local]),
            Instr::Br(b) => live = self.label(b.block),
            Instr::BrIf(b) => live.union(&self.label(b.block)),
            Instr::BrOnNull(b) => live.union(&self.label(b.block)),
            Instr::BrOnNonNull(b) => live.union(&self.label(b.block)),
            Instr::BrOnCast(b) => live.union(&self.label(b.block)),
            Instr::BrOnCastFail(b) => live.union(&self.label(b.block)),
            Instr::BrTable(t) => {
                live = self.label(t.default);
                for b in t.blocks.iter() {
                    live.union(&self.label(*b));
                }
            }
            Instr::Return(_)
            | Instr::Unreachable(_)
            | Instr::ReturnCall(_)
            | Instr::ReturnCallIndirect(_)
            | Instr::ReturnCallRef(_) => {
                live = Set::new(self.n);
            }
            Instr::Throw(_) | Instr::ThrowRef(_) | Instr::Rethrow(_) => live = self.throw_live(),
            Instr::Call(_) | Instr::CallIndirect(_) | Instr::CallRef(_) => {
                live.union(&self.throw_live())
            }
            Instr::Block(b) => {
                self.labels.insert(b.seq, live.clone());
                live = self.seq(b.seq, live);
            }
            Instr::Loop(l) => {
                let mut head = Set::new(self.n);
                loop {
                    self.labels.insert(l.seq, head.clone());
                    let start = self.seq(l.seq, live.clone());
                    if start == head {
                        break;
                    }
                    head = start;
                }
                live = head;
            }
            Instr::IfElse(i) => {
                self.labels.insert(i.consequent, live.clone());
                self.labels.insert(i.alternative, live.clone());
                let mut a = self.seq(i.consequent, live.clone());
                let b = self.seq(i.alternative, live);
                a.union(&b);
                live = a;
            }
            Instr::TryTable(t) => {
                self.labels.insert(t.seq, live.clone());
                let mut h = Set::new(self.n);
                for c in &t.catches {
                    let (TryTableCatch::Catch { label, .. }
                    | TryTableCatch::CatchRef { label, .. }
                    | TryTableCatch::CatchAll { label }
                    | TryTableCatch::CatchAllRef { label }) = c;
                    h.union(&self.label(*label));
                }
                self.handlers.push(h);
                live = self.seq(t.seq, live);
                self.handlers.pop();
            }
            Instr::Try(t) => {
                self.labels.insert(t.seq, live.clone());
                let mut h = Set::new(self.n);
                for handler in crate::tree::legacy_handlers(&t.catches) {
                    self.labels.insert(handler, live.clone());
                    let s = self.seq(handler, live.clone());
                    h.union(&s);
                }
                // A `delegate` sends exceptions to an outer handler, which
                // the enclosing handler sets already cover.
                self.handlers.push(h);
                live = self.seq(t.seq, live);
                self.handlers.pop();
            }
            _ => {}
        }
        live
    }
}
