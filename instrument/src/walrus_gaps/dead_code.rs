//! walrus drops the unreachable instructions after `br`, `return` and the
//! like, but keeps them after tail calls and throws; their operand stack is
//! polymorphic, so the planner and the rewrite must not see them.

use walrus::ir::Instr;
use walrus::LocalFunction;

/// Drops the instructions that follow an unconditional transfer in each
/// sequence. walrus already drops them after `br`, `return` and the like,
/// but keeps them after tail calls; their operand stack is polymorphic, so
/// the rewrite must not see them.
pub fn truncate(f: &mut LocalFunction) {
    for seq in crate::tree::all_seqs(f) {
        let instrs = &mut f.block_mut(seq).instrs;
        if let Some(end) = instrs.iter().position(|(instr, _)| transfers(instr)) {
            instrs.truncate(end + 1);
        }
    }
}

/// An unconditional transfer: after it, the rest of the sequence is
/// unreachable.
pub fn transfers(i: &Instr) -> bool {
    matches!(
        i,
        Instr::Return(_)
            | Instr::Unreachable(_)
            | Instr::Br(_)
            | Instr::BrTable(_)
            | Instr::ReturnCall(_)
            | Instr::ReturnCallIndirect(_)
            | Instr::ReturnCallRef(_)
            | Instr::Throw(_)
            | Instr::ThrowRef(_)
            | Instr::Rethrow(_)
    )
}
