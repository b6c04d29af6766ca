//! What follows each fork-path call, and each construct that holds calls
//! with values below it.
//!
//! After a call:
//!
//! ```text
//! global.get $state
//! if                              ;; unwinding (a call returns in NORMAL or UNWINDING)
//!   drop the results
//!   call $save_OFF_TYPES …        ;; the values carried below the call (they are on the stack)
//!   local.get l …; call $save_OFF_TYPES …   ;; the locals live across the call, by runs
//!   i32.const k; br $unwind       ;; (or out of the construct that stores the next level)
//! end
//! ```
//!
//! Values go through helpers that store a run of a few of them (`runtime`),
//! shared module-wide: a site uses exactly the locals live across it, no
//! call takes more arguments than registers hold, and the operand stack
//! stays shallow (Liftoff sizes frames by it). The header is written, and
//! whether the frame fits decided, once per function at its exit
//! (`mod.rs`). A construct with values below it gets a check after it that
//! stores them when an inner call unwinds through it.

use super::Rewriter;
use crate::codegen::{drops, i, zeros, Loc};
use crate::plan::{Exit, Item, Kind, SitePlan};
use walrus::ir::{self, Instr, InstrSeqId};
use walrus::ValType;

impl Rewriter<'_> {
    /// Stores `types` (on the stack, top last) into the frame at `offs`.
    fn store_values(&self, types: &[ValType], offs: &[u32]) -> Vec<Loc> {
        let values: Vec<(ValType, u32)> = types.iter().copied().zip(offs.iter().copied()).collect();
        self.rt.pop_into_frame(&values)
    }

    /// Leaves for the next level out (default results for a label), with
    /// the call index pushed by `idx` when that is the function's exit.
    fn exit_br(&self, exit: &Exit, idx: Loc) -> Vec<Loc> {
        match exit {
            Exit::Fin => vec![idx, i(ir::Br { block: self.unwind })],
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

    /// The call instruction of a site, a tail call turned into a call (its
    /// frame must exist to be unwound).
    fn site_call(orig: &[Loc], s: &SitePlan) -> Loc {
        let call = match &orig[s.pos].0 {
            Instr::ReturnCall(c) => Instr::Call(ir::Call { func: c.func }),
            Instr::ReturnCallIndirect(c) => Instr::CallIndirect(ir::CallIndirect {
                ty: c.ty,
                table: c.table,
            }),
            Instr::ReturnCallRef(c) => Instr::CallRef(ir::CallRef { ty: c.ty }),
            other => other.clone(),
        };
        (call, orig[s.pos].1)
    }

    pub(super) fn post(&mut self, seq: InstrSeqId, orig: &[Loc], item: Item) -> Vec<Loc> {
        match item {
            Item::Site(k) => self.post_site(orig, k),
            Item::Construct(pos) => self.post_construct(seq, orig, pos),
        }
    }

    fn post_site(&mut self, orig: &[Loc], k: u32) -> Vec<Loc> {
        let s = self.site(k).clone();
        let mut out: Vec<Loc> = s
            .spills
            .iter()
            .map(|(l, _)| i(ir::LocalGet { local: *l }))
            .collect();
        self.bytes.add("landing", &out);
        out.extend(orig[s.tail_start..s.pos].iter().cloned());
        out.push(Self::site_call(orig, &s));
        let level = s.carry[s.level_start..].to_vec();
        let level_off = s.carry_off[s.level_start..].to_vec();
        let mut stack_ty = level.clone();
        let mut write = Vec::new();
        if s.absorbs_next {
            out.push(orig[s.pos + 1].clone());
        } else {
            stack_ty.extend(&s.results);
            write = drops(s.results.len());
        }
        // Unwinding: this level's part of the frame, then out.
        write.extend(self.store_values(&level, &level_off));
        let k_const = crate::codegen::i32c(k as i32);
        let shared = match s.exit {
            Exit::Fin => self.writers.iter().find(|w| w.0 == s.saved).map(|w| w.1),
            _ => None,
        };
        if let Some(w) = shared {
            // The locals are written by the writer these sites share.
            write.push(k_const);
            write.push(i(ir::Br { block: w }));
        } else {
            write.extend(self.rt.locals_into_frame(&s.saved));
            if !matches!(s.exit, Exit::Fin) {
                // The construct this leaves through exits later, without k.
                write.push(k_const.clone());
                write.push(self.call(self.rt.set_idx_fn));
            }
            write.extend(self.exit_br(&s.exit, k_const));
        }
        self.bytes.add("frame write", &write);
        out.extend(self.unwind_check(&stack_ty, write));
        if s.return_call {
            out.push(i(ir::Return {}));
        }
        out
    }

    fn post_construct(&mut self, seq: InstrSeqId, orig: &[Loc], pos: usize) -> Vec<Loc> {
        let c = self.construct(seq, pos).clone();
        let mut out = vec![match self.wrappers.get(&c.seq) {
            Some(w) if c.kind == Kind::Loop => i(ir::Block { seq: *w }),
            _ => orig[pos].clone(),
        }];
        self.bytes.add("unwind check", &out);
        if c.post_check {
            let mut stack_ty = c.level_vals.clone();
            stack_ty.extend(&c.results);
            let mut u = drops(c.results.len());
            u.extend(self.store_values(&c.level_vals, &c.level_off));
            // An inner site wrote its call index (`set_idx`).
            let idx = self.call(self.rt.idx_fn);
            u.extend(self.exit_br(&c.exit, idx));
            self.bytes.add("frame write", &u);
            out.extend(self.unwind_check(&stack_ty, u));
        }
        out
    }

    /// `if` the state says unwinding, run `write` (which leaves through a
    /// branch); `stack_ty` is what is on the stack, kept on both arms.
    fn unwind_check(&mut self, stack_ty: &[ValType], write: Vec<Loc>) -> Vec<Loc> {
        let arm = self.seq_of(stack_ty, stack_ty, write);
        let other = self.new_seq(stack_ty, stack_ty);
        let mut check = self.rt.mem.replaying_fast();
        check.push(i(ir::IfElse {
            consequent: arm,
            alternative: other,
        }));
        self.bytes.add("unwind check", &check);
        check
    }
}
