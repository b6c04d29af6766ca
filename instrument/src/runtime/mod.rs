//! The runtime the transform adds to a module: the state and buffer globals,
//! the small helpers the rewritten functions call on their cold paths
//! (commit, pop, call index, and the savers and loaders of
//! runs of values; this file), the five control exports of ABI §3 with the
//! globals snapshot of §4 (`exports.rs`), and the `forkify.abi` section
//! (`section.rs`).
//!
//! A run is a few values stored next to each other in a frame (ABI §5):
//! one helper stores or loads all of them, so a site's frame write costs
//! one `call` per run rather than per value. Helpers are shared module-wide
//! by (offset, types). Savers take at most [`SAVE_RUN`] arguments and
//! loaders return at most [`LOAD_RUN`] results, which engines pass in
//! registers (V8 returns at most two values in registers; more would grow
//! the caller's frame).

mod exports;
mod section;

pub use section::section;

use crate::codegen::{Loc, Mem};
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
    /// `(idx i32, size ptr, ord i32) -> i32`: writes the header (ordinal,
    /// call index, the two zero words) of the frame just filled at the
    /// cursor, commits it (`cursor += size`) and returns whether
    /// `abort_reserve` bytes are still free before `end`; when they are
    /// not, sets ABORTING and returns 0 (ABI §6). Ordinal last, so the
    /// instruction before each call is the ordinal's constant (see
    /// `rewrite::renumber`).
    pub commit_fn: FunctionId,
    /// `(idx i32)`: writes the call index of the frame being filled.
    pub set_idx_fn: FunctionId,
    /// `(size ptr, ord i32)`: pops a frame (`cursor -= size`) and traps when
    /// its ordinal is not `ord`. Ordinal last, as for `commit_fn`.
    pub pop_fn: FunctionId,
    /// `() -> i32`: the call index of the active frame.
    pub idx_fn: FunctionId,
    /// Per run: `(v…) -> ()`, stores the values in the frame at the cursor.
    pub save_fns: BTreeMap<Run, FunctionId>,
    /// Per run: `() -> (v…)`, the values in the active frame.
    pub load_fns: BTreeMap<Run, FunctionId>,
}

impl Runtime {
    /// Whether calls to `f` take the caller's ordinal as their last argument.
    pub fn takes_ordinal(&self, f: FunctionId) -> bool {
        f == self.pop_fn || f == self.commit_fn
    }

    /// Stores `values` (type, frame offset), which are on the stack (the
    /// last on top), popping them.
    pub fn pop_into_frame(&self, values: &[(ValType, u32)]) -> Vec<Loc> {
        runs(values, SAVE_RUN, true)
            .into_iter()
            .rev()
            .map(|(run, _)| self.call(&self.save_fns, &run))
            .collect()
    }

    /// Stores locals (local, type, frame offset) into the frame: a run with
    /// a helper is one call, any other is written inline.
    pub fn locals_into_frame(&self, saved: &[crate::plan::Saved]) -> Vec<Loc> {
        let values: Vec<(ValType, u32)> = saved.iter().map(|(_, t, o)| (*t, *o)).collect();
        let get = |l| crate::codegen::i(walrus::ir::LocalGet { local: l });
        let mut out = Vec::new();
        for (run, range) in runs(&values, SAVE_RUN, false) {
            match self.save_fns.get(&run) {
                Some(f) => {
                    out.extend(saved[range].iter().map(|(l, _, _)| get(*l)));
                    out.push(crate::codegen::i(walrus::ir::Call { func: *f }));
                }
                None => {
                    for (l, t, o) in &saved[range] {
                        out.extend(self.mem.cursor());
                        out.push(get(*l));
                        out.push(self.mem.store(*t, u64::from(*o)));
                    }
                }
            }
        }
        out
    }

    /// Pushes `values` (type, frame offset) from the active frame.
    pub fn push_from_frame(&self, values: &[(ValType, u32)]) -> Vec<Loc> {
        let mut out = Vec::new();
        for (run, range) in runs(values, LOAD_RUN, false) {
            match self.load_fns.get(&run) {
                Some(f) => out.push(crate::codegen::i(walrus::ir::Call { func: *f })),
                None => {
                    for (t, o) in &values[range] {
                        out.extend(self.mem.cursor());
                        out.push(self.mem.load(*t, u64::from(*o)));
                    }
                }
            }
        }
        out
    }

    /// Sets locals (local, type, frame offset) from the active frame.
    pub fn locals_from_frame(&self, saved: &[crate::plan::Saved]) -> Vec<Loc> {
        let values: Vec<(ValType, u32)> = saved.iter().map(|(_, t, o)| (*t, *o)).collect();
        let set = |l| crate::codegen::i(walrus::ir::LocalSet { local: l });
        let mut out = Vec::new();
        for (run, range) in runs(&values, LOAD_RUN, false) {
            match self.load_fns.get(&run) {
                Some(f) => {
                    out.push(crate::codegen::i(walrus::ir::Call { func: *f }));
                    out.extend(saved[range].iter().rev().map(|(l, _, _)| set(*l)));
                }
                None => {
                    for (l, t, o) in &saved[range] {
                        out.extend(self.mem.cursor());
                        out.push(self.mem.load(*t, u64::from(*o)));
                        out.push(set(*l));
                    }
                }
            }
        }
        out
    }

    fn call(&self, fns: &BTreeMap<Run, FunctionId>, run: &Run) -> Loc {
        crate::codegen::i(walrus::ir::Call { func: fns[run] })
    }
}

/// Arguments of a saver at most (all passed in registers).
pub const SAVE_RUN: usize = 4;
/// Results of a loader at most (V8 returns two in registers).
pub const LOAD_RUN: usize = 2;

/// Values stored next to each other in a frame: the first one's offset and
/// the [`type_key`]s of all (each next offset follows from ABI §5's
/// alignment).
pub type Run = (u32, Vec<u8>);

/// Splits `values` (type, frame offset, in frame order) into runs of at
/// most `max`, cut from the end when `from_end` (values popped off the
/// stack), each with the range of `values` it covers.
pub fn runs(
    values: &[(ValType, u32)],
    max: usize,
    from_end: bool,
) -> Vec<(Run, std::ops::Range<usize>)> {
    // Runs of consecutive offsets first (a frame's values always are).
    let mut pieces: Vec<std::ops::Range<usize>> = Vec::new();
    let mut start = 0;
    for j in 1..=values.len() {
        let consecutive = j < values.len() && {
            let (_, next) = frame::layout(&[values[j - 1].0], values[j - 1].1);
            let (offs, _) = frame::layout(&[values[j].0], next);
            offs[0] == values[j].1
        };
        if !consecutive {
            pieces.push(start..j);
            start = j;
        }
    }
    let mut out = Vec::new();
    for p in pieces {
        let n = p.len();
        let first = if from_end && n % max != 0 {
            n % max
        } else {
            max.min(n)
        };
        let mut cuts = vec![p.start];
        let mut at = p.start + first;
        while at < p.end {
            cuts.push(at);
            at += max;
        }
        cuts.push(p.end);
        for w in cuts.windows(2) {
            if w[0] == w[1] {
                continue;
            }
            let r = w[0]..w[1];
            let run = (
                values[r.start].1,
                values[r.clone()]
                    .iter()
                    .map(|(t, _)| type_key(*t))
                    .collect(),
            );
            out.push((run, r));
        }
    }
    out
}

/// Which runs get a helper, given how often the rewrite stores (`saves`)
/// and loads (`loads`) each; `popped` are stored from the operand stack,
/// which only a helper can do. A helper costs its body, a function entry
/// and a name once, then a `call` per use; inline code costs a cursor load
/// and an access per value per use. Sizes are estimates in bytes.
pub fn helpers(
    popped: &BTreeMap<Run, u32>,
    saves: &BTreeMap<Run, u32>,
    loads: &BTreeMap<Run, u32>,
) -> (
    std::collections::BTreeSet<Run>,
    std::collections::BTreeSet<Run>,
) {
    const PER_VALUE_INLINE: u32 = 8;
    const PER_VALUE_BODY: u32 = 10;
    const FIXED: u32 = 30;
    const CALL: u32 = 3;
    let pays = |run: &Run, uses: u32| {
        let n = run.1.len() as u32;
        FIXED + PER_VALUE_BODY * n + CALL * uses < PER_VALUE_INLINE * n * uses
    };
    let mut save_set: std::collections::BTreeSet<Run> = popped.keys().cloned().collect();
    for (run, uses) in saves {
        let total = uses + popped.get(run).copied().unwrap_or(0);
        if pays(run, total) {
            save_set.insert(run.clone());
        }
    }
    let load_set = loads
        .iter()
        .filter(|(run, uses)| pays(run, **uses))
        .map(|(run, _)| run.clone())
        .collect();
    (save_set, load_set)
}

/// The letters a helper's name gives its run's types.
fn run_letters(run: &Run) -> String {
    run.1
        .iter()
        .map(|k| match k {
            0 => 'i',
            1 => 'I',
            2 => 'f',
            3 => 'F',
            _ => 'v',
        })
        .collect()
}

/// The offsets of a run's values.
fn run_offsets(run: &Run) -> Vec<u32> {
    let types: Vec<ValType> = run.1.iter().map(|k| key_type(*k)).collect();
    frame::layout(&types, run.0).0
}

/// The value type of a [`type_key`].
fn key_type(k: u8) -> ValType {
    match k {
        0 => ValType::I32,
        1 => ValType::I64,
        2 => ValType::F32,
        3 => ValType::F64,
        _ => ValType::V128,
    }
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

/// Adds the helpers and the control exports; `saves` and `loads` are the
/// runs the rewritten functions store and load.
pub fn add_runtime(
    module: &mut Module,
    mem: Mem,
    snap: &Snapshot,
    abort_reserve: u32,
    saves: &std::collections::BTreeSet<Run>,
    loads: &std::collections::BTreeSet<Run>,
) -> Runtime {
    let ptr = mem.ptr();

    // commit(idx, size, ord) -> fits: writes the header of the frame the
    // site has filled, commits it, and checks the reserve.
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
    b.name("__forkify_commit".into());
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
        body.global_get(mem.buf);
        push(&mut body, mem.cursor());
        body.local_get(size);
        push(&mut body, [mem.ptr_add(), mem.set_cursor()]);
        // cursor + abort_reserve <= end
        push(&mut body, mem.cursor());
        push(
            &mut body,
            [mem.ptr_const(abort_reserve as u64), mem.ptr_add()],
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
    let commit_fn = b.finish(vec![idx, size, ord], &mut module.funcs);

    // set_idx(idx): the call index of the frame being written, for a site
    // whose unwinding leaves through a construct that stores more values.
    let idx = module.locals.add(ValType::I32);
    let mut b = FunctionBuilder::new(&mut module.types, &[ValType::I32], &[]);
    b.name("__forkify_set_idx".into());
    {
        let mut body = b.func_body();
        push(&mut body, mem.cursor());
        body.local_get(idx);
        push(
            &mut body,
            [mem.store(ValType::I32, frame::CALL_INDEX.into())],
        );
    }
    let set_idx_fn = b.finish(vec![idx], &mut module.funcs);

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

    let mut save_fns = BTreeMap::new();
    for run in saves {
        // save_OFF_TYPES(v…)
        let types: Vec<ValType> = run.1.iter().map(|k| key_type(*k)).collect();
        let args: Vec<_> = types.iter().map(|t| module.locals.add(*t)).collect();
        let mut b = FunctionBuilder::new(&mut module.types, &types, &[]);
        b.name(format!("__forkify_save_{}_{}", run.0, run_letters(run)));
        {
            let mut body = b.func_body();
            for ((a, t), off) in args.iter().zip(&types).zip(run_offsets(run)) {
                push(&mut body, mem.cursor());
                body.local_get(*a);
                push(&mut body, [mem.store(*t, u64::from(off))]);
            }
        }
        save_fns.insert(run.clone(), b.finish(args, &mut module.funcs));
    }
    let mut load_fns = BTreeMap::new();
    for run in loads {
        // load_OFF_TYPES() -> (v…)
        let types: Vec<ValType> = run.1.iter().map(|k| key_type(*k)).collect();
        let mut b = FunctionBuilder::new(&mut module.types, &[], &types);
        b.name(format!("__forkify_load_{}_{}", run.0, run_letters(run)));
        {
            let mut body = b.func_body();
            for (t, off) in types.iter().zip(run_offsets(run)) {
                push(&mut body, mem.cursor());
                push(&mut body, [mem.load(*t, u64::from(off))]);
            }
        }
        load_fns.insert(run.clone(), b.finish(vec![], &mut module.funcs));
    }

    exports::add(module, mem, snap);
    Runtime {
        mem,
        commit_fn,
        set_idx_fn,
        pop_fn,
        idx_fn,
        save_fns,
        load_fns,
    }
}

fn push<const N: usize>(b: &mut InstrSeqBuilder<'_>, instrs: [crate::codegen::Loc; N]) {
    for (instr, _) in instrs {
        b.instr(instr);
    }
}
