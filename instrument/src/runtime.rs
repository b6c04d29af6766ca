//! The runtime the transform adds to a module: the state and buffer globals,
//! one scratch global per carried value type, three small helpers the
//! rewritten functions call on their cold paths, the five control exports of
//! ABI §3 with the globals snapshot of §4, and the `forkify.abi` section.

use crate::abi;
use crate::gen::Mem;
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
    /// `(ord i32, idx i32, size ptr) -> i32`: writes a frame header at the
    /// cursor and checks that the whole frame fits; when it does not, it
    /// sets ABORTING and returns 0.
    pub frame_fn: FunctionId,
    /// `(ord i32, size ptr)`: pops a frame (`cursor -= size`) and traps when
    /// its ordinal is not `ord`.
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
    let (offs, end) = crate::gen::layout(&types, 2 * p);
    Snapshot {
        globals: globals
            .into_iter()
            .zip(offs)
            .map(|((g, t), o)| (g, t, o))
            .collect(),
        frames_offset: abi::align8(end),
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
    let p = mem.p() as u64;

    // frame(ord, idx, size) -> fits
    let (ord, idx, size) = (
        module.locals.add(ValType::I32),
        module.locals.add(ValType::I32),
        module.locals.add(ptr),
    );
    let mut b = FunctionBuilder::new(
        &mut module.types,
        &[ValType::I32, ValType::I32, ptr],
        &[ValType::I32],
    );
    b.name("__forkify_frame".into());
    {
        let mut body = b.func_body();
        for (field, v) in [(0, Some(ord)), (4, Some(idx)), (8, None), (12, None)] {
            push(&mut body, mem.cursor());
            match v {
                Some(l) => body.local_get(l),
                None => body.i32_const(0),
            };
            push(&mut body, [mem.store(ValType::I32, field)]);
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
        body.global_get(mem.buf);
        push(&mut body, [mem.load(ptr, p)]);
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
        body.i32_const(abi::State::Aborting as i32)
            .global_set(mem.state)
            .i32_const(0);
    }
    let frame_fn = b.finish(vec![ord, idx, size], &mut module.funcs);

    // pop(ord, size)
    let (ord, size) = (module.locals.add(ValType::I32), module.locals.add(ptr));
    let mut b = FunctionBuilder::new(&mut module.types, &[ValType::I32, ptr], &[]);
    b.name("__forkify_pop".into());
    {
        let mut body = b.func_body();
        body.global_get(mem.buf);
        push(&mut body, mem.cursor());
        body.local_get(size);
        push(&mut body, [mem.ptr_sub(), mem.store(ptr, 0)]);
        push(&mut body, mem.cursor());
        push(&mut body, [mem.load(ValType::I32, 0)]);
        body.local_get(ord).binop(BinaryOp::I32Ne).if_else(
            None,
            |t| {
                t.unreachable();
            },
            |_| {},
        );
    }
    let pop_fn = b.finish(vec![ord, size], &mut module.funcs);

    // idx() -> i32
    let mut b = FunctionBuilder::new(&mut module.types, &[], &[ValType::I32]);
    b.name("__forkify_idx".into());
    {
        let mut body = b.func_body();
        push(&mut body, mem.cursor());
        push(&mut body, [mem.load(ValType::I32, 4)]);
    }
    let idx_fn = b.finish(vec![], &mut module.funcs);

    add_exports(module, mem, snap);
    Runtime {
        mem,
        scratch,
        frame_fn,
        pop_fn,
        idx_fn,
    }
}

fn push<const N: usize>(b: &mut InstrSeqBuilder<'_>, instrs: [crate::gen::Loc; N]) {
    for (instr, _) in instrs {
        b.instr(instr);
    }
}

/// Traps unless `state` satisfies `ok` (a comparison against `v`).
fn require_state(b: &mut InstrSeqBuilder<'_>, mem: Mem, op: BinaryOp, v: i32) {
    b.global_get(mem.state).i32_const(v).binop(op).if_else(
        None,
        |t| {
            t.unreachable();
        },
        |_| {},
    );
}

fn add_exports(module: &mut Module, mem: Mem, snap: &Snapshot) {
    let ptr = mem.ptr();
    let zero_ptr = mem.ptr_const(0).0;

    // unwind_begin(p): NORMAL -> UNWINDING
    let arg = module.locals.add(ptr);
    let mut b = FunctionBuilder::new(&mut module.types, &[ptr], &[]);
    b.name(abi::EXPORT_UNWIND_BEGIN.into());
    {
        let mut body = b.func_body();
        require_state(&mut body, mem, BinaryOp::I32Ne, abi::State::Normal as i32);
        body.local_get(arg).global_set(mem.buf);
        body.local_get(arg).local_get(arg);
        push(
            &mut body,
            [
                mem.ptr_const(snap.frames_offset as u64),
                mem.ptr_add(),
                mem.store(ptr, 0),
            ],
        );
        for (g, t, off) in &snap.globals {
            body.local_get(arg).global_get(*g);
            push(&mut body, [mem.store(*t, *off as u64)]);
        }
        body.i32_const(abi::State::Unwinding as i32)
            .global_set(mem.state);
    }
    let f = b.finish(vec![arg], &mut module.funcs);
    module.exports.add(abi::EXPORT_UNWIND_BEGIN, f);

    // unwind_end(): UNWINDING -> NORMAL; buf is cleared before NORMAL is published.
    let mut b = FunctionBuilder::new(&mut module.types, &[], &[]);
    b.name(abi::EXPORT_UNWIND_END.into());
    {
        let mut body = b.func_body();
        require_state(
            &mut body,
            mem,
            BinaryOp::I32Ne,
            abi::State::Unwinding as i32,
        );
        body.instr(zero_ptr.clone()).global_set(mem.buf);
        body.i32_const(abi::State::Normal as i32)
            .global_set(mem.state);
    }
    let f = b.finish(vec![], &mut module.funcs);
    module.exports.add(abi::EXPORT_UNWIND_END, f);

    // rewind_begin(p): NORMAL -> REWINDING, restores the snapshot.
    let arg = module.locals.add(ptr);
    let mut b = FunctionBuilder::new(&mut module.types, &[ptr], &[]);
    b.name(abi::EXPORT_REWIND_BEGIN.into());
    {
        let mut body = b.func_body();
        require_state(&mut body, mem, BinaryOp::I32Ne, abi::State::Normal as i32);
        body.local_get(arg).global_set(mem.buf);
        for (g, t, off) in &snap.globals {
            body.local_get(arg);
            push(&mut body, [mem.load(*t, *off as u64)]);
            body.global_set(*g);
        }
        body.i32_const(abi::State::Rewinding as i32)
            .global_set(mem.state);
    }
    let f = b.finish(vec![arg], &mut module.funcs);
    module.exports.add(abi::EXPORT_REWIND_BEGIN, f);

    // rewind_end(): REWINDING or ABORTING -> NORMAL.
    let mut b = FunctionBuilder::new(&mut module.types, &[], &[]);
    b.name(abi::EXPORT_REWIND_END.into());
    {
        let mut body = b.func_body();
        require_state(
            &mut body,
            mem,
            BinaryOp::I32LtU,
            abi::State::Rewinding as i32,
        );
        body.instr(zero_ptr).global_set(mem.buf);
        body.i32_const(abi::State::Normal as i32)
            .global_set(mem.state);
    }
    let f = b.finish(vec![], &mut module.funcs);
    module.exports.add(abi::EXPORT_REWIND_END, f);

    // state() -> i32
    let mut b = FunctionBuilder::new(&mut module.types, &[], &[ValType::I32]);
    b.name(abi::EXPORT_STATE.into());
    b.func_body().global_get(mem.state);
    let f = b.finish(vec![], &mut module.funcs);
    module.exports.add(abi::EXPORT_STATE, f);
}

/// Builds the `forkify.abi` section payload.
pub fn section(
    p: u32,
    frames_offset: u32,
    functions: u32,
    max_frame: u32,
    abort_reserve: u32,
    tool: &str,
    fork_imports: Vec<String>,
) -> Vec<u8> {
    abi::AbiSection {
        version: abi::ABI_VERSION,
        pointer_width: p as u8,
        flags: abi::FLAG_ABORT_ON_OVERFLOW,
        frame_header_size: abi::FRAME_HEADER_SIZE as u16,
        frames_offset,
        instrumented_functions: functions,
        max_frame_size: max_frame,
        abort_reserve,
        info: abi::SectionInfo {
            tool: tool.to_string(),
            fork_imports,
        },
    }
    .encode()
}
