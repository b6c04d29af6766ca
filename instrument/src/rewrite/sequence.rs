//! One sequence that holds fork-path calls: the code before each call (or
//! construct holding calls) is wrapped in a landing block whose results are
//! the values the call keeps on the stack, so that replay can branch to it
//! from a dispatch point with those values loaded from the frame.
//!
//! Where the dispatch point goes. Replay enters a sequence at its start, as
//! normal execution does. When the sequence starts with a `block` or a
//! `try_table` (a legacy `try`) that holds calls, entering it executes
//! nothing, so replay enters it too and the dispatch point moves into it:
//! every landing of the outer sequence encloses that point. A chain of such
//! constructs (a `switch` lowered to nested blocks) therefore has one
//! dispatch point, at the end of the chain, that serves all of them; for the
//! function body it is the replay entry. Other sequences that replay must
//! enter past some code (a loop body; an `if` arm or a block after other
//! code that `reshape.rs` left in place) get their own dispatch point,
//! guarded by a state check.
//!
//! Buckets. The landings of one bucket nest; a sequence with more items than
//! `plan::BUCKET` is split at points where its stack is empty, and each
//! later bucket starts with its own dispatch point, reached through a block
//! that skips the earlier buckets. Nesting then stays bounded by the bucket
//! size while normal execution pays one check per bucket it passes.

use super::dispatch::Target;
use super::Rewriter;
use crate::codegen::{i, i32c, zeros, Loc};
use crate::plan::{ConstructPlan, Item, Kind, SitePlan};
use std::collections::BTreeMap;
use walrus::ir::{self, InstrSeqId};
use walrus::ValType;

/// A chain of sequences entered by replay without executing anything: the
/// targets decided so far for the call indices the chain's top holds.
#[derive(Debug, Clone)]
pub(super) struct Chain {
    /// Call indices under the chain's top: `lo..hi`.
    pub lo: u32,
    pub hi: u32,
    /// Where replay goes for each call index, as decided at outer levels.
    pub targets: BTreeMap<u32, Target>,
    /// The function body's chain: its dispatch point is the replay entry.
    pub entry: bool,
}

impl Chain {
    /// The function body's chain, over all `sites`.
    pub fn entry(sites: u32) -> Chain {
        Chain {
            lo: 0,
            hi: sites,
            targets: BTreeMap::new(),
            entry: true,
        }
    }
}

impl Rewriter<'_> {
    pub(super) fn construct(&self, seq: InstrSeqId, pos: usize) -> &ConstructPlan {
        &self.plan.constructs[&(seq, pos)]
    }

    pub(super) fn site(&self, k: u32) -> &SitePlan {
        &self.plan.sites[k as usize]
    }

    /// Call indices under an item: `lo..hi`.
    fn item_range(&self, seq: InstrSeqId, item: Item) -> (u32, u32) {
        match item {
            Item::Site(k) => (k, k + 1),
            Item::Construct(pos) => {
                let c = self.construct(seq, pos);
                (c.lo, c.hi)
            }
        }
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
            Item::Site(k) => {
                let s = self.site(k);
                s.pos + 1 + usize::from(s.absorbs_next)
            }
            Item::Construct(pos) => pos + 1,
        }
    }

    /// Code that, on replay, pushes an item's landing values: carried
    /// values from the frame, defaults for dead arguments and block
    /// parameters, an `if`'s arm from the call index.
    fn landing_loads(&self, seq: InstrSeqId, item: Item) -> Vec<Loc> {
        let mut out = Vec::new();
        match item {
            Item::Site(k) => {
                let s = self.site(k);
                let level: Vec<(ValType, u32)> = s.carry[s.level_start..]
                    .iter()
                    .copied()
                    .zip(s.carry_off[s.level_start..].iter().copied())
                    .collect();
                out.extend(self.rt.push_from_frame(&level));
                out.extend(zeros(&s.dead_args));
            }
            Item::Construct(pos) => {
                let c = self.construct(seq, pos);
                let level: Vec<(ValType, u32)> = c
                    .level_vals
                    .iter()
                    .copied()
                    .zip(c.level_off.iter().copied())
                    .collect();
                out.extend(self.rt.push_from_frame(&level));
                out.extend(zeros(&c.params));
                if let Kind::If {
                    split,
                    then_has,
                    else_has,
                } = c.kind
                {
                    match (then_has, else_has) {
                        (true, true) => out.extend([
                            self.call(self.rt.idx_fn),
                            i32c(split as i32),
                            i(ir::Binop {
                                op: ir::BinaryOp::I32LtU,
                            }),
                        ]),
                        (true, false) => out.push(i32c(1)),
                        _ => out.push(i32c(0)),
                    }
                }
            }
        }
        out
    }

    fn spill_sets(&mut self, item: Item) -> Vec<Loc> {
        let v = self.spill_sets_of(item);
        self.bytes.add("landing", &v);
        v
    }

    fn spill_sets_of(&self, item: Item) -> Vec<Loc> {
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

    /// Whether replay can enter item 0 of a sequence the way normal
    /// execution does, and put the dispatch point inside it: a `block` or
    /// `try` at the very start with nothing of the sequence's below it.
    fn delegates(&self, seq: InstrSeqId, item: Item) -> bool {
        match item {
            Item::Construct(0) => {
                let c = self.construct(seq, 0);
                matches!(c.kind, Kind::Block | Kind::Try) && c.level_vals.is_empty()
            }
            _ => false,
        }
    }

    /// Rewrites `seq` (which has items) and, below it, the constructs it
    /// holds. `chain` is the chain `seq` continues (the body of a delegating
    /// construct, or the function body); `None` for a sequence replay
    /// enters past other code, which starts a chain of its own.
    pub(super) fn rewrite_seq(&mut self, seq: InstrSeqId, chain: Option<Chain>) {
        let Some(sp) = self.plan.seqs.get(&seq).cloned() else {
            return;
        };
        let orig = std::mem::take(&mut self.func.block_mut(seq).instrs);
        let n = sp.chunks.len();
        let (seq_lo, _) = self.item_range(seq, sp.items[0]);
        let (_, seq_hi) = self.item_range(seq, *sp.items.last().unwrap_or(&sp.items[0]));
        // A sequence replay enters past other code starts a chain of its own.
        let mut chain = chain.unwrap_or(Chain {
            lo: seq_lo,
            hi: seq_hi,
            targets: BTreeMap::new(),
            entry: false,
        });
        let mut out = Vec::new();
        let mut inner_chain: Option<(usize, Chain)> = None;
        for ci in 0..n {
            let (first, start) = sp.chunks[ci];
            let (end_item, end_pos) = if ci + 1 < n {
                sp.chunks[ci + 1]
            } else {
                (sp.items.len(), orig.len())
            };
            let items = &sp.items[first..end_item];
            let params_in: Vec<ValType> = if ci == 0 {
                sp.params.clone()
            } else {
                Vec::new()
            };
            let last = ci + 1 == n;
            // The block that skips to the next bucket.
            let skip = (!last).then(|| self.new_seq(&params_in, &[]));
            let delegated = ci == 0 && self.delegates(seq, items[0]);
            // Landings, and where replay goes for each call index.
            let mut labels: Vec<Option<InstrSeqId>> = Vec::new();
            // The chain's targets move down it (only item 0 continues it).
            let mut targets = if ci == 0 {
                std::mem::take(&mut chain.targets)
            } else {
                BTreeMap::new()
            };
            for (j, it) in items.iter().enumerate() {
                let (lo, hi) = self.item_range(seq, *it);
                if j == 0 && delegated {
                    labels.push(None);
                    continue;
                }
                let types = self.landing_types(seq, *it);
                let needs = self.landing_pos(*it) > start || !types.is_empty();
                let target = if needs {
                    let l = self.new_seq(&params_in, &types);
                    labels.push(Some(l));
                    let loads = self.landing_loads(seq, *it);
                    Target::To {
                        label: l,
                        loads,
                        types,
                    }
                } else {
                    labels.push(None);
                    Target::Fall
                };
                for k in lo..hi {
                    targets.insert(k, target.clone());
                }
            }
            let (bucket_lo, _) = self.item_range(seq, items[0]);
            // Indices of later buckets go to the block that skips this one.
            // Only the first bucket's dispatch point needs each of them (it
            // may be the replay entry, which traps on the rest, or move into
            // item 0); a later one is not the entry, so one entry for the
            // first later index, its last and therefore its default, serves
            // them all, and the table does not grow with the buckets after.
            let mut bucket_hi = seq_hi;
            if let Some(g) = skip {
                let (next_lo, _) = self.item_range(seq, sp.items[end_item]);
                let to_skip = Target::To {
                    label: g,
                    loads: Vec::new(),
                    types: Vec::new(),
                };
                if ci == 0 {
                    for k in next_lo..seq_hi {
                        targets.insert(k, to_skip.clone());
                    }
                } else {
                    targets.insert(next_lo, to_skip);
                    bucket_hi = next_lo + 1;
                }
            }
            // The dispatch point of this bucket, unless it moves into item 0.
            let mut cur = Vec::new();
            if delegated {
                inner_chain = Some((
                    items[0].construct_pos().unwrap_or(0),
                    Chain {
                        lo: chain.lo,
                        hi: chain.hi,
                        targets,
                        entry: chain.entry,
                    },
                ));
            } else {
                let (lo, hi, entry) = if ci == 0 {
                    (chain.lo, chain.hi, chain.entry)
                } else {
                    (bucket_lo, bucket_hi, false)
                };
                cur.extend(self.dispatch_point(lo, hi, &targets, entry));
            }
            cur.extend(orig[start..self.landing_pos(items[0])].iter().cloned());
            cur.extend(self.spill_sets(items[0]));
            for (t, it) in items.iter().enumerate() {
                if let Some(l) = labels[t] {
                    self.func.block_mut(l).instrs = cur;
                    cur = vec![i(ir::Block { seq: l })];
                    self.bytes.add("landing", &cur);
                }
                cur.extend(self.post(seq, &orig, *it));
                let next = items
                    .get(t + 1)
                    .map(|n| self.landing_pos(*n))
                    .unwrap_or(end_pos);
                cur.extend(orig[self.after_pos(*it)..next].iter().cloned());
                if let Some(nx) = items.get(t + 1) {
                    cur.extend(self.spill_sets(*nx));
                }
            }
            match skip {
                Some(g) => {
                    self.func.block_mut(g).instrs = cur;
                    let b = i(ir::Block { seq: g });
                    self.bytes.add("landing", std::slice::from_ref(&b));
                    out.push(b);
                }
                None => out.extend(cur),
            }
        }
        self.func.block_mut(seq).instrs = out;
        // The constructs below, each a chain top of its own except the one
        // the dispatch point moved into.
        for it in &sp.items {
            let Item::Construct(pos) = *it else {
                continue;
            };
            let c = self.construct(seq, pos).clone();
            let child = match inner_chain.take() {
                Some((p, ch)) if p == pos => Some(ch),
                other => {
                    inner_chain = other;
                    None
                }
            };
            let arms: Vec<InstrSeqId> = match c.kind {
                Kind::If { .. } => match &orig[pos].0 {
                    ir::Instr::IfElse(e) => vec![e.consequent, e.alternative],
                    _ => vec![c.seq],
                },
                _ => vec![c.seq],
            };
            // Only a `block` or `try` body continues a chain: one arm.
            let mut child = child;
            for arm in arms {
                self.rewrite_seq(arm, child.take());
            }
        }
    }
}

impl Item {
    /// The position of a construct item.
    fn construct_pos(self) -> Option<usize> {
        match self {
            Item::Construct(p) => Some(p),
            Item::Site(_) => None,
        }
    }
}
