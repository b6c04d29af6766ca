//! Instruction snippets the rewrite and the runtime emit: loads and stores
//! through the buffer's cursor, default values, pointer constants. No
//! snippet declares a local: the cursor is re-read from the buffer. Offsets
//! come from `frame.rs`.

use walrus::ir::{self, BinaryOp, Instr, InstrLocId, LoadKind, MemArg, StoreKind, Value};
use walrus::{GlobalId, MemoryId, RefType, ValType};

/// An instruction with no source location.
pub type Loc = (Instr, InstrLocId);

/// Wraps an instruction.
pub fn i(instr: impl Into<Instr>) -> Loc {
    (instr.into(), InstrLocId::default())
}

/// How code reaches memory 0 and the state globals.
#[derive(Debug, Clone, Copy)]
pub struct Mem {
    /// Memory 0.
    pub memory: MemoryId,
    /// True for memory64.
    pub is64: bool,
    /// The buffer global.
    pub buf: GlobalId,
    /// The state global.
    pub state: GlobalId,
}

impl Mem {
    /// The pointer type.
    pub fn ptr(&self) -> ValType {
        if self.is64 {
            ValType::I64
        } else {
            ValType::I32
        }
    }

    /// Pointer width in bytes.
    pub fn p(&self) -> u32 {
        if self.is64 {
            8
        } else {
            4
        }
    }

    /// A pointer-typed constant.
    pub fn ptr_const(&self, v: u64) -> Loc {
        if self.is64 {
            i(ir::Const {
                value: Value::I64(v as i64),
            })
        } else {
            i(ir::Const {
                value: Value::I32(v as u32 as i32),
            })
        }
    }

    /// Pointer addition.
    pub fn ptr_add(&self) -> Loc {
        i(ir::Binop {
            op: if self.is64 {
                BinaryOp::I64Add
            } else {
                BinaryOp::I32Add
            },
        })
    }

    /// Pointer subtraction.
    pub fn ptr_sub(&self) -> Loc {
        i(ir::Binop {
            op: if self.is64 {
                BinaryOp::I64Sub
            } else {
                BinaryOp::I32Sub
            },
        })
    }

    /// A load of `t` at `offset` from the address on the stack.
    pub fn load(&self, t: ValType, offset: u64) -> Loc {
        let kind = match t {
            ValType::I32 => LoadKind::I32 { atomic: false },
            ValType::I64 => LoadKind::I64 { atomic: false },
            ValType::F32 => LoadKind::F32,
            ValType::F64 => LoadKind::F64,
            _ => LoadKind::V128,
        };
        let align = crate::frame::align_of(t);
        i(ir::Load {
            memory: self.memory,
            kind,
            arg: MemArg { align, offset },
        })
    }

    /// A store of `t` at `offset` (address below the value on the stack).
    pub fn store(&self, t: ValType, offset: u64) -> Loc {
        let kind = match t {
            ValType::I32 => StoreKind::I32 { atomic: false },
            ValType::I64 => StoreKind::I64 { atomic: false },
            ValType::F32 => StoreKind::F32,
            ValType::F64 => StoreKind::F64,
            _ => StoreKind::V128,
        };
        let align = crate::frame::align_of(t);
        i(ir::Store {
            memory: self.memory,
            kind,
            arg: MemArg { align, offset },
        })
    }

    /// Pushes the cursor (the buffer's first word).
    pub fn cursor(&self) -> [Loc; 2] {
        [
            i(ir::GlobalGet { global: self.buf }),
            self.load(self.ptr(), crate::frame::cursor_offset(self.p()).into()),
        ]
    }

    /// Stores the pointer on top of the stack as the cursor (`buf` below it).
    pub fn set_cursor(&self) -> Loc {
        self.store(self.ptr(), crate::frame::cursor_offset(self.p()).into())
    }

    /// Pushes `end` (the buffer's second word).
    pub fn end(&self) -> [Loc; 2] {
        [
            i(ir::GlobalGet { global: self.buf }),
            self.load(self.ptr(), crate::frame::end_offset(self.p()).into()),
        ]
    }
}

/// The default value of a type, or `None` for a non-nullable reference.
pub fn zero(t: ValType) -> Option<Loc> {
    Some(match t {
        ValType::I32 => i(ir::Const {
            value: Value::I32(0),
        }),
        ValType::I64 => i(ir::Const {
            value: Value::I64(0),
        }),
        ValType::F32 => i(ir::Const {
            value: Value::F32(0.0),
        }),
        ValType::F64 => i(ir::Const {
            value: Value::F64(0.0),
        }),
        ValType::V128 => i(ir::Const {
            value: Value::V128(0),
        }),
        ValType::Ref(r) if r.nullable => i(ir::RefNull {
            ty: RefType {
                nullable: true,
                heap_type: r.heap_type,
            },
        }),
        ValType::Ref(_) => return None,
    })
}

/// Default values for `types`; the caller checked they all have one.
pub fn zeros(types: &[ValType]) -> Vec<Loc> {
    types.iter().filter_map(|t| zero(*t)).collect()
}

/// `n` drops.
pub fn drops(n: usize) -> Vec<Loc> {
    (0..n).map(|_| i(ir::Drop {})).collect()
}

/// An i32 constant.
pub fn i32c(v: i32) -> Loc {
    i(ir::Const {
        value: Value::I32(v),
    })
}

impl Mem {
    /// Pushes the state (non-zero while unwinding or replaying): where only
    /// REWINDING or ABORTING can be non-zero (at a function entry or a
    /// dispatch point) or only UNWINDING (right after a call), the state
    /// itself is the test.
    pub fn replaying_fast(&self) -> Vec<Loc> {
        vec![i(ir::GlobalGet { global: self.state })]
    }
}

/// Estimated bytes of emitted code, by category (what the rewrite adds to a
/// function, for `--stats` and the benchmark's breakdown). Instructions are
/// counted as encoded with one-byte indices and immediates except where the
/// value is known; a block counts its opening, type and `end`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Bytes(pub std::collections::BTreeMap<&'static str, u64>);

impl Bytes {
    /// Adds the estimated size of the generated instructions of `instrs`
    /// (those with no source location; not the sequences they open).
    pub fn add(&mut self, category: &'static str, instrs: &[Loc]) {
        let n: u64 = instrs
            .iter()
            .filter(|(_, loc)| loc.is_default())
            .map(|(x, _)| estimate(x))
            .sum();
        *self.0.entry(category).or_default() += n;
    }

    /// Adds another estimate.
    pub fn merge(&mut self, other: &Bytes) {
        for (k, v) in &other.0 {
            *self.0.entry(k).or_default() += v;
        }
    }
}

fn leb_len(v: u64) -> u64 {
    (64 - v.leading_zeros() as u64).div_ceil(7).max(1)
}

fn sleb_len(v: i64) -> u64 {
    let mut n = 1;
    let mut v = v;
    while !(-64..64).contains(&v) {
        v >>= 7;
        n += 1;
    }
    n
}

/// Encoded size of one instruction, estimated (indices as one byte).
pub(crate) fn estimate(instr: &Instr) -> u64 {
    match instr {
        Instr::Const(c) => match c.value {
            Value::I32(v) => 1 + sleb_len(v.into()),
            Value::I64(v) => 1 + sleb_len(v),
            Value::F32(_) => 5,
            Value::F64(_) => 9,
            Value::V128(_) => 18,
        },
        Instr::Block(_) | Instr::Loop(_) => 3,
        Instr::IfElse(_) => 4,
        Instr::BrTable(t) => 2 + t.blocks.len() as u64,
        Instr::Load(l) => 2 + leb_len(l.arg.offset),
        Instr::Store(s) => 2 + leb_len(s.arg.offset),
        Instr::Call(_)
        | Instr::GlobalGet(_)
        | Instr::GlobalSet(_)
        | Instr::LocalGet(_)
        | Instr::LocalSet(_)
        | Instr::LocalTee(_)
        | Instr::Br(_)
        | Instr::BrIf(_) => 2,
        Instr::CallIndirect(_) => 3,
        _ => 1,
    }
}
