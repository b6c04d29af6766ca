//! The runtime the transform adds to a module: the state and buffer globals,
//! one scratch global per carried value type, three small helpers the
//! rewritten functions call on their cold paths (this file), the five
//! control exports of ABI §3 with the globals snapshot of §4
//! (`exports.rs`), and the `forkify.abi` section (`section.rs`).

mod exports;
mod section;

pub use section::section;

use crate::codegen::Mem;
use crate::frame;
use forkify_abi::State;
use std::collections::BTreeMap;
use walrus::ir::{BinaryOp, Value};
use walrus::{ConstExpr, FunctionBuilder, FunctionId, GlobalId, InstrSeqBuilder, Module, ValType};

/// A key for value types that can be carried in a frame.
pub fn type_key(t: ValType) -> u8 {
    match t {
        ValType::I32 => 0,
        ValType::I64 => 1,
        ValType::F32 => 2,
        ValType::F64 => 3,
        _ => 4,
    }
}

/// Ids of everything the rewritten functions refer to.
#[derive(Debug)]
pub struct Runtime {
    /// Memory and the two state globals.
    pub mem: Mem,
    /// Scratch globals by [`type_key`], one per carried type.
    pub scratch: BTreeMap<u8, GlobalId>,
    /// `(idx i32, size ptr, ord i32) -> i32`: writes a frame header at the
    /// cursor and checks that the whole frame fits; when it does not, it
    /// sets ABORTING and returns 0. The ordinal is the last argument, so the
    /// instruction before each call is the ordinal's constant (see
    /// `rewrite::renumber`).
    pub frame_fn: FunctionId,
    /// `(size ptr, ord i32)`: pops a frame (`cursor -= size`) and traps when
    /// its ordinal is not `ord`. Ordinal last, as for `frame_fn`.
    pub pop_fn: FunctionId,
    /// `() -> i32`: the call index of the active frame.
    pub idx_fn: FunctionId,
}

/// Globals saved by `unwind_begin`, with their offsets from `buf`.
pub struct Snapshot {
    /// (global, type, offset).
    pub globals: Vec<(GlobalId, ValType, u32)>,
    /// `frames_offset`.
    pub frames_offset: u32,
}

/// Picks the globals of ABI §4: defined, mutable, numeric or vector. Call
/// before adding the runtime's own globals.
pub fn snapshot(module: &Module, p: u32) -> Snapshot {
    let globals: Vec<_> = module
        .globals
        .iter()
        .filter(|g| {
            g.mutable
                && matches!(g.kind, walrus::GlobalKind::Local(_))
                && !matches!(g.ty, ValType::Ref(_))
        })
        .map(|g| (g.id(), g.ty))
        .collect();
    let types: Vec<ValType> = globals.iter().map(|g| g.1).collect();
    let (offs, frames_offset) = frame::globals(&types, p);
    Snapshot {
        globals: globals
            .into_iter()
            .zip(offs)
            .map(|((g, t), o)| (g, t, o))
            .collect(),
        frames_offset,
    }
}

/// Adds the state and buffer globals.
pub fn add_globals(module: &mut Module, memory: walrus::MemoryId, is64: bool) -> Mem {
    let state =
        module
            .globals
            .add_local(ValType::I32, true, false, ConstExpr::Value(Value::I32(0)));
    let (ty, zero) = if is64 {
        (ValType::I64, Value::I64(0))
    } else {
        (ValType::I32, Value::I32(0))
    };
    let buf = module
        .globals
        .add_local(ty, true, false, ConstExpr::Value(zero));
    module.globals.get_mut(state).name = Some("__forkify_state".into());
    module.globals.get_mut(buf).name = Some("__forkify_buf".into());
    Mem {
        memory,
        is64,
        buf,
        state,
    }
}

/// Adds scratch globals, helpers and the control exports.
pub fn add_runtime(
    module: &mut Module,
    mem: Mem,
    scratch_types: &[ValType],
    snap: &Snapshot,
    abort_reserve: u32,
) -> Runtime {
    let mut scratch = BTreeMap::new();
    for t in scratch_types {
        let init = match t {
            ValType::I32 => Value::I32(0),
            ValType::I64 => Value::I64(0),
            ValType::F32 => Value::F32(0.0),
            ValType::F64 => Value::F64(0.0),
            _ => Value::V128(0),
        };
        let g = module
            .globals
            .add_local(*t, true, false, ConstExpr::Value(init));
        module.globals.get_mut(g).name = Some(format!("__forkify_scratch_{t}"));
        scratch.insert(type_key(*t), g);
    }
    let ptr = mem.ptr();

    // frame(idx, size, ord) -> fits
    let (idx, size, ord) = (
        module.locals.add(ValType::I32),
        module.locals.add(ptr),
        module.locals.add(ValType::I32),
    );
    let mut b = FunctionBuilder::new(
        &mut module.types,
        &[ValType::I32, ptr, ValType::I32],
        &[ValType::I32],
    );
    b.name("__forkify_frame".into());
    {
        let mut body = b.func_body();
        let fields = [(frame::ORDINAL, Some(ord)), (frame::CALL_INDEX, Some(idx))]
            .into_iter()
            .chain(frame::ZERO_WORDS.map(|w| (w, None)));
        for (field, v) in fields {
            push(&mut body, mem.cursor());
            match v {
                Some(l) => body.local_get(l),
                None => body.i32_const(0),
            };
            push(&mut body, [mem.store(ValType::I32, field.into())]);
        }
        // cursor + size + abort_reserve <= end
        push(&mut body, mem.cursor());
        body.local_get(size);
        push(
            &mut body,
            [
                mem.ptr_add(),
                mem.ptr_const(abort_reserve as u64),
                mem.ptr_add(),
            ],
        );
        push(&mut body, mem.end());
        body.binop(if mem.is64 {
            BinaryOp::I64LeU
        } else {
            BinaryOp::I32LeU
        });
        body.if_else(
            None,
            |t| {
                t.i32_const(1).return_();
            },
            |_| {},
        );
        body.i32_const(State::Aborting as i32)
            .global_set(mem.state)
            .i32_const(0);
    }
    let frame_fn = b.finish(vec![idx, size, ord], &mut module.funcs);

    // pop(size, ord)
    let (size, ord) = (module.locals.add(ptr), module.locals.add(ValType::I32));
    let mut b = FunctionBuilder::new(&mut module.types, &[ptr, ValType::I32], &[]);
    b.name("__forkify_pop".into());
    {
        let mut body = b.func_body();
        body.global_get(mem.buf);
        push(&mut body, mem.cursor());
        body.local_get(size);
        push(&mut body, [mem.ptr_sub(), mem.set_cursor()]);
        push(&mut body, mem.cursor());
        push(&mut body, [mem.load(ValType::I32, frame::ORDINAL.into())]);
        body.local_get(ord).binop(BinaryOp::I32Ne).if_else(
            None,
            |t| {
                t.unreachable();
            },
            |_| {},
        );
    }
    let pop_fn = b.finish(vec![size, ord], &mut module.funcs);

    // idx() -> i32
    let mut b = FunctionBuilder::new(&mut module.types, &[], &[ValType::I32]);
    b.name("__forkify_idx".into());
    {
        let mut body = b.func_body();
        push(&mut body, mem.cursor());
        push(
            &mut body,
            [mem.load(ValType::I32, frame::CALL_INDEX.into())],
        );
    }
    let idx_fn = b.finish(vec![], &mut module.funcs);

    exports::add(module, mem, snap);
    Runtime {
        mem,
        scratch,
        frame_fn,
        pop_fn,
        idx_fn,
    }
}

fn push<const N: usize>(b: &mut InstrSeqBuilder<'_>, instrs: [crate::codegen::Loc; N]) {
    for (instr, _) in instrs {
        b.instr(instr);
    }
}
