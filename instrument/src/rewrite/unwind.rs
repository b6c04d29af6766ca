//! What follows each fork-path call (and each construct that holds calls
//! with values below it): the state check that, when unwinding, writes the
//! frame header, the live locals and the carryovers (through the scratch
//! globals) and leaves for the next level out.

use super::Rewriter;
use crate::codegen::{drops, i, i32c, zeros, Loc};
use crate::plan::{Exit, Item, Kind};
use crate::runtime::type_key;
use walrus::ir::{self, Instr, InstrSeqId};
use walrus::ValType;

impl Rewriter<'_> {
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

    pub(super) fn post(&mut self, seq: InstrSeqId, orig: &[Loc], item: Item) -> Vec<Loc> {
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
                u.extend([i32c(k as i32), m.ptr_const(self.plan.frame_size as u64)]);
                u.extend(self.ordinal_call(self.rt.frame_fn));
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
