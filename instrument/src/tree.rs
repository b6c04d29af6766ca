//! Small helpers to walk walrus's tree of instruction sequences: the
//! sequences an instruction owns, and every sequence of a function.

use walrus::ir::{Instr, InstrSeqId, LegacyCatch};
use walrus::LocalFunction;

/// Calls `f` with each sequence `instr` owns, in code order (legacy catch
/// handlers after the `try` body), without allocating: the walks over
/// every instruction of a module use this.
#[inline]
pub fn for_each_child(instr: &Instr, mut f: impl FnMut(InstrSeqId)) {
    match instr {
        Instr::Block(b) => f(b.seq),
        Instr::Loop(l) => f(l.seq),
        Instr::IfElse(i) => {
            f(i.consequent);
            f(i.alternative);
        }
        Instr::TryTable(t) => f(t.seq),
        Instr::Try(t) => {
            f(t.seq);
            for c in &t.catches {
                if let LegacyCatch::Catch { handler, .. } | LegacyCatch::CatchAll { handler } = c {
                    f(*handler);
                }
            }
        }
        _ => {}
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
        let mark = stack.len();
        for (instr, _) in f.block(seq).instrs.iter() {
            for_each_child(instr, |c| stack.push(c));
        }
        stack[mark..].reverse();
    }
    out
}
