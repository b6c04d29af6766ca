//! Small helpers to walk walrus's tree of instruction sequences: the
//! sequences an instruction owns, and every sequence of a function.

use walrus::ir::{Instr, InstrSeqId, LegacyCatch};
use walrus::LocalFunction;

/// The instruction sequences an instruction owns, in code order
/// (legacy catch handlers after the `try` body).
pub fn children(instr: &Instr) -> Vec<InstrSeqId> {
    match instr {
        Instr::Block(b) => vec![b.seq],
        Instr::Loop(l) => vec![l.seq],
        Instr::IfElse(i) => vec![i.consequent, i.alternative],
        Instr::TryTable(t) => vec![t.seq],
        Instr::Try(t) => {
            let mut v = vec![t.seq];
            v.extend(legacy_handlers(&t.catches));
            v
        }
        _ => Vec::new(),
    }
}

/// The handler sequences of a legacy `try`.
pub fn legacy_handlers(catches: &[LegacyCatch]) -> Vec<InstrSeqId> {
    catches
        .iter()
        .filter_map(|c| match c {
            LegacyCatch::Catch { handler, .. } | LegacyCatch::CatchAll { handler } => {
                Some(*handler)
            }
            LegacyCatch::Delegate { .. } => None,
        })
        .collect()
}

/// Every sequence of `f` reachable from its entry, parents before children.
pub fn all_seqs(f: &LocalFunction) -> Vec<InstrSeqId> {
    let mut out = Vec::new();
    let mut stack = vec![f.entry_block()];
    while let Some(seq) = stack.pop() {
        out.push(seq);
        for (instr, _) in f.block(seq).instrs.iter().rev() {
            for c in children(instr).into_iter().rev() {
                stack.push(c);
            }
        }
    }
    out
}
