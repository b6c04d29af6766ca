//! The dispatch and landings of one sequence that holds fork-path calls:
//! the code before each call (or construct holding calls) is wrapped in a
//! landing block whose results are the values the call keeps on the stack,
//! and the sequence starts with a dispatch that, when replaying, loads them
//! from the frame and branches to the right landing. Calls of one sequence
//! are bucketed (`plan::BUCKET`) so nesting stays shallow.

use super::Rewriter;
use crate::codegen::{drops, i, i32c, zeros, Loc};
use crate::plan::{ConstructPlan, Item, Kind, SitePlan};
use walrus::ir::{self, BinaryOp, InstrSeqId};
use walrus::ValType;

impl Rewriter<'_> {
    pub(super) fn rewrite_seq(&mut self, seq: InstrSeqId) {
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

    pub(super) fn construct(&self, seq: InstrSeqId, pos: usize) -> &ConstructPlan {
        &self.plan.constructs[&(seq, pos)]
    }

    pub(super) fn site(&self, k: u32) -> &SitePlan {
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
}
