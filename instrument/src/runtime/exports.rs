//! The five control exports of ABI §3 and the globals snapshot of §4 that
//! `unwind_begin` writes and `rewind_begin` restores.

use super::{push, Snapshot};
use crate::codegen::Mem;
use forkify_abi::{layout as abi, State};
use walrus::ir::BinaryOp;
use walrus::{FunctionBuilder, InstrSeqBuilder, Module, ValType};

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

/// Adds the control exports.
pub(super) fn add(module: &mut Module, mem: Mem, snap: &Snapshot) {
    let ptr = mem.ptr();
    let zero_ptr = mem.ptr_const(0).0;

    // unwind_begin(p): NORMAL -> UNWINDING
    let arg = module.locals.add(ptr);
    let mut b = FunctionBuilder::new(&mut module.types, &[ptr], &[]);
    b.name(abi::EXPORT_UNWIND_BEGIN.into());
    {
        let mut body = b.func_body();
        require_state(&mut body, mem, BinaryOp::I32Ne, State::Normal as i32);
        body.local_get(arg).global_set(mem.buf);
        body.local_get(arg).local_get(arg);
        push(
            &mut body,
            [
                mem.ptr_const(snap.frames_offset as u64),
                mem.ptr_add(),
                mem.set_cursor(),
            ],
        );
        for (g, t, off) in &snap.globals {
            body.local_get(arg).global_get(*g);
            push(&mut body, [mem.store(*t, *off as u64)]);
        }
        body.i32_const(State::Unwinding as i32)
            .global_set(mem.state);
    }
    let f = b.finish(vec![arg], &mut module.funcs);
    module.exports.add(abi::EXPORT_UNWIND_BEGIN, f);

    // unwind_end(): UNWINDING -> NORMAL; buf is cleared before NORMAL is published.
    let mut b = FunctionBuilder::new(&mut module.types, &[], &[]);
    b.name(abi::EXPORT_UNWIND_END.into());
    {
        let mut body = b.func_body();
        require_state(&mut body, mem, BinaryOp::I32Ne, State::Unwinding as i32);
        body.instr(zero_ptr.clone()).global_set(mem.buf);
        body.i32_const(State::Normal as i32).global_set(mem.state);
    }
    let f = b.finish(vec![], &mut module.funcs);
    module.exports.add(abi::EXPORT_UNWIND_END, f);

    // rewind_begin(p): NORMAL -> REWINDING, restores the snapshot.
    let arg = module.locals.add(ptr);
    let mut b = FunctionBuilder::new(&mut module.types, &[ptr], &[]);
    b.name(abi::EXPORT_REWIND_BEGIN.into());
    {
        let mut body = b.func_body();
        require_state(&mut body, mem, BinaryOp::I32Ne, State::Normal as i32);
        body.local_get(arg).global_set(mem.buf);
        for (g, t, off) in &snap.globals {
            body.local_get(arg);
            push(&mut body, [mem.load(*t, *off as u64)]);
            body.global_set(*g);
        }
        body.i32_const(State::Rewinding as i32)
            .global_set(mem.state);
    }
    let f = b.finish(vec![arg], &mut module.funcs);
    module.exports.add(abi::EXPORT_REWIND_BEGIN, f);

    // rewind_end(): REWINDING or ABORTING -> NORMAL.
    let mut b = FunctionBuilder::new(&mut module.types, &[], &[]);
    b.name(abi::EXPORT_REWIND_END.into());
    {
        let mut body = b.func_body();
        require_state(&mut body, mem, BinaryOp::I32LtU, State::Rewinding as i32);
        body.instr(zero_ptr).global_set(mem.buf);
        body.i32_const(State::Normal as i32).global_set(mem.state);
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
