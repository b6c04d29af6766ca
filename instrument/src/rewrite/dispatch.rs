//! One dispatch point: when replaying, read the call index of the active
//! frame and branch to where replay continues for it, with the values that
//! landing needs. One `br_table` selects the target; targets that take no
//! values are branched to directly, and targets whose values are pushed by
//! the same code (defaults for dead arguments and block parameters, an
//! `if`'s arm, the frame at the same offsets) share one stub that pushes
//! them and branches again; when every index goes to one place there is no
//! table. The function's own dispatch point also pops the frame and
//! restores the locals first, and traps on a call index it has no target
//! for (a corrupted frame); any other is guarded by a state check, the only
//! thing it costs normal execution, and sees only indices its chain routed
//! to it, so its last target doubles as the default.

use super::Rewriter;
use crate::codegen::{i, i32c, Loc};
use std::collections::{BTreeMap, HashMap};
use walrus::ir::{self, InstrSeqId};
use walrus::ValType;

/// Call indices below which a `br_table` is padded rather than offset.
const PAD: u32 = 3;

/// Where replay goes for one call index at a dispatch point.
#[derive(Debug, Clone)]
pub(crate) enum Target {
    /// Nothing to skip: continue after the dispatch point.
    Fall,
    /// Branch to `label` with the values `loads` pushes (of `types`).
    To {
        label: InstrSeqId,
        loads: Vec<Loc>,
        types: Vec<ValType>,
    },
}

/// How one call index is reached from the first `br_table`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    Label(InstrSeqId),
    Stub(usize),
    Fall,
    Trap,
}

impl Rewriter<'_> {
    /// The dispatch point for call indices `lo..hi`: for the function's
    /// entry (`entry`), the whole replay entry; otherwise a state check
    /// around the dispatch, or nothing when no index needs a jump.
    pub(super) fn dispatch_point(
        &mut self,
        lo: u32,
        hi: u32,
        targets: &BTreeMap<u32, Target>,
        entry: bool,
    ) -> Vec<Loc> {
        let needed = (lo..hi).any(|k| matches!(targets.get(&k), Some(Target::To { .. })));
        if !entry && !needed {
            return Vec::new();
        }
        let arm = self.new_seq(&[], &[]);
        self.arms.push(super::DispatchArm { arm, entry });
        let mut body = if entry { self.restore() } else { Vec::new() };
        if needed {
            let d = self.dispatch(lo, hi, targets, arm, entry);
            body.extend(d);
        }
        let mut out = self.rt.mem.replaying_fast();
        let other = self.new_seq(&[], &[]);
        self.func.block_mut(arm).instrs = body;
        out.push(i(ir::IfElse {
            consequent: arm,
            alternative: other,
        }));
        self.bytes
            .add(if entry { "restore" } else { "dispatch" }, &out);
        out
    }

    /// `br_table` on the call index over `lo..hi`, inside the `if` arm
    /// `fall` (a branch to it continues after the dispatch point).
    fn dispatch(
        &mut self,
        lo: u32,
        hi: u32,
        targets: &BTreeMap<u32, Target>,
        fall: InstrSeqId,
        entry: bool,
    ) -> Vec<Loc> {
        // What a stub pushes never depends on the target (defaults,
        // constants, the frame at fixed offsets, a test of the call index),
        // so one stub serves every target whose values the same code
        // pushes: the code is the key.
        let mut stubs: Vec<(String, Vec<u32>)> = Vec::new();
        // The stub of each label seen (its key is computed once per label).
        let mut stub_of: HashMap<InstrSeqId, usize> = HashMap::new();
        let mut routes: Vec<Route> = Vec::with_capacity((hi - lo) as usize);
        for k in lo..hi {
            let route = match targets.get(&k) {
                None => Route::Trap,
                Some(Target::Fall) => Route::Fall,
                Some(Target::To { label, types, .. }) if types.is_empty() => Route::Label(*label),
                Some(Target::To {
                    label,
                    types,
                    loads,
                }) => {
                    let n = *stub_of.entry(*label).or_insert_with(|| {
                        let key = format!("{types:?} {loads:?}");
                        match stubs.iter().position(|s| s.0 == key) {
                            Some(n) => n,
                            None => {
                                stubs.push((key, Vec::new()));
                                stubs.len() - 1
                            }
                        }
                    });
                    stubs[n].1.push(k);
                    Route::Stub(n)
                }
            };
            routes.push(route);
        }
        // Only the replay entry can see a call index it has no target for
        // (a corrupted frame): it traps. Elsewhere the index was checked on
        // the way in, so the last target doubles as the default.
        // One target for every index (a function with one call site, a
        // sequence whose calls all land at the same place): no table.
        let single = routes.iter().all(|r| *r == routes[0])
            && routes.first().is_some_and(|r| *r != Route::Trap)
            && (!entry || hi - lo == 1);
        let trapping = !single && (entry || routes.contains(&Route::Trap));
        let trap = self.new_seq(&[], &[]);
        let stub_labels: Vec<InstrSeqId> = stubs.iter().map(|_| self.new_seq(&[], &[])).collect();
        let label = |r: &Route| match r {
            Route::Label(l) => *l,
            Route::Stub(n) => stub_labels[*n],
            Route::Fall => fall,
            Route::Trap => trap,
        };
        let mut table: Vec<InstrSeqId> = routes.iter().map(label).collect();
        let default = if trapping {
            trap
        } else {
            let d = table.pop().unwrap_or(fall);
            // Indices past the table's end take the default anyway.
            while table.last() == Some(&d) {
                table.pop();
            }
            d
        };
        // A few leading entries are cheaper than subtracting `lo`.
        let (mut cur, padded) = if single {
            (Vec::new(), Vec::new())
        } else if !trapping && lo <= PAD {
            let mut padded = vec![default; lo as usize];
            padded.extend(table);
            (vec![self.call(self.rt.idx_fn)], padded)
        } else {
            (self.index_from(lo), table)
        };
        cur.push(if single {
            i(ir::Br { block: default })
        } else {
            i(ir::BrTable {
                blocks: padded.into_boxed_slice(),
                default,
            })
        });
        for (n, (_, ks)) in stubs.iter().enumerate() {
            self.bytes.add("dispatch", &cur);
            self.func.block_mut(stub_labels[n]).instrs = cur;
            cur = vec![i(ir::Block {
                seq: stub_labels[n],
            })];
            let Some(Target::To { loads, .. }) = targets.get(&ks[0]) else {
                continue;
            };
            cur.extend(loads.iter().cloned());
            let labels: Vec<InstrSeqId> = ks
                .iter()
                .filter_map(|k| match targets.get(k) {
                    Some(Target::To { label, .. }) => Some(*label),
                    _ => None,
                })
                .collect();
            if labels.iter().all(|l| *l == labels[0]) {
                cur.push(i(ir::Br { block: labels[0] }));
            } else {
                // A second br_table over the group's own indices; the first
                // one only sends the group here.
                let (glo, ghi) = (ks[0], ks[ks.len() - 1] + 1);
                let first = labels[0];
                let mut table: Vec<InstrSeqId> = vec![first; (ghi - glo) as usize];
                for (k, l) in ks.iter().zip(&labels) {
                    table[(k - glo) as usize] = *l;
                }
                cur.extend(self.index_from(glo));
                cur.push(i(ir::BrTable {
                    blocks: table.into_boxed_slice(),
                    default: first,
                }));
            }
        }
        self.bytes.add("dispatch", &cur);
        if !trapping {
            return cur;
        }
        self.func.block_mut(trap).instrs = cur;
        let out = vec![i(ir::Block { seq: trap }), i(ir::Unreachable {})];
        self.bytes.add("dispatch", &out);
        out
    }

    /// Pushes the call index minus `lo`.
    fn index_from(&self, lo: u32) -> Vec<Loc> {
        let mut v = vec![self.call(self.rt.idx_fn)];
        if lo > 0 {
            v.extend([
                i32c(lo as i32),
                i(ir::Binop {
                    op: ir::BinaryOp::I32Sub,
                }),
            ]);
        }
        v
    }
}
