//! Pure argument tails: the instructions right before a call that push its
//! last arguments from constants, locals and non-trapping integer
//! operations only, so replay can run them again instead of saving values.

use walrus::ir::{BinaryOp, Instr, UnaryOp};
use walrus::Module;

/// Start of the shortest suffix of `instrs[..pos]` that pushes exactly the
/// top `want` values from constants, locals and non-trapping integer
/// operations, or `None`.
pub(super) fn tail_start(
    instrs: &[(Instr, walrus::InstrLocId)],
    pos: usize,
    want: usize,
    m: &Module,
) -> Option<usize> {
    let mut i = pos;
    for _ in 0..want {
        let mut need = 1usize;
        while need > 0 {
            i = i.checked_sub(1)?;
            let pops = pure_pops(&instrs[i].0, m)?;
            need = need - 1 + pops;
        }
    }
    Some(i)
}

/// Operands popped by a pure instruction that pushes one value.
fn pure_pops(instr: &Instr, m: &Module) -> Option<usize> {
    use BinaryOp::*;
    use UnaryOp::*;
    Some(match instr {
        Instr::Const(_) | Instr::LocalGet(_) | Instr::RefFunc(_) | Instr::RefNull(_) => 0,
        Instr::GlobalGet(g) if !m.globals.get(g.global).mutable => 0,
        Instr::Unop(u) => match u.op {
            I32Eqz | I32Clz | I32Ctz | I32Popcnt | I64Eqz | I64Clz | I64Ctz | I64Popcnt
            | I32WrapI64 | I64ExtendSI32 | I64ExtendUI32 | I32Extend8S | I32Extend16S
            | I64Extend8S | I64Extend16S | I64Extend32S => 1,
            _ => return None,
        },
        Instr::Binop(b) => match b.op {
            I32Eq | I32Ne | I32LtS | I32LtU | I32GtS | I32GtU | I32LeS | I32LeU | I32GeS
            | I32GeU | I64Eq | I64Ne | I64LtS | I64LtU | I64GtS | I64GtU | I64LeS | I64LeU
            | I64GeS | I64GeU | I32Add | I32Sub | I32Mul | I32And | I32Or | I32Xor | I32Shl
            | I32ShrS | I32ShrU | I32Rotl | I32Rotr | I64Add | I64Sub | I64Mul | I64And | I64Or
            | I64Xor | I64Shl | I64ShrS | I64ShrU | I64Rotl | I64Rotr => 2,
            _ => return None,
        },
        _ => return None,
    })
}
