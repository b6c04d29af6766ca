//! Generates the large synthetic input: >= 10 MB of code in many functions,
//! a deep fork path, a quarter of the functions on it, and indirect calls
//! through a table of callbacks that never reach fork. Deterministic (fixed
//! seed): the same bytes on every run, never checked in.
//!
//! Shape, chosen to look like compiled Rust/C rather than to favour a tool:
//! - `chain[0..DEPTH]`: each calls the next inside a loop and an `if`; the
//!   last calls the fork import. A fork from `_start` unwinds DEPTH frames.
//! - `general[0..GENERAL]`: arithmetic on i32/i64/f64 locals, loads and
//!   stores, nested `if`/`loop`, a shadow-stack prologue in some, and calls
//!   to later functions (a DAG). A quarter are "I/O" functions: they also
//!   call a later I/O function or a chain function, so they are on the fork
//!   path; the others only call non-I/O functions.
//! - `callback[0..CALLBACKS]`: small leaves of another type, in the table;
//!   6% of general functions `call_indirect` through it.

use std::borrow::Cow;

use wasm_encoder::{
    BlockType, CodeSection, ConstExpr, ElementSection, Elements, EntityType, ExportKind,
    ExportSection, Function, FunctionSection, GlobalSection, GlobalType, ImportSection,
    InstructionSink, MemArg, MemorySection, MemoryType, Module, RefType, TableSection, TableType,
    TypeSection, ValType,
};

const DEPTH: u32 = 1000;
const GENERAL: u32 = 16_000;
const CALLBACKS: u32 = 512;
const IO_PERCENT: u64 = 25;
const INDIRECT_PERCENT: u64 = 6;

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn percent(&mut self, p: u64) -> bool {
        self.below(100) < p
    }
}

// Types.
const T_FORK: u32 = 0; // () -> i32
const T_GEN: u32 = 1; // (i32, i32) -> i32
const T_CB: u32 = 2; // (i32) -> i32
const T_START: u32 = 3; // () -> ()

// Function indices: import 0, then _start, chain, general, callbacks.
const F_FORK: u32 = 0;
const F_START: u32 = 1;
const fn chain(k: u32) -> u32 {
    2 + k
}
const fn general(k: u32) -> u32 {
    2 + DEPTH + k
}
const fn callback(k: u32) -> u32 {
    2 + DEPTH + GENERAL + k
}

// Locals of general and chain functions: params 0, 1 (i32); 2..=7 i32;
// 8, 9 i64; 10, 11 f64.
const I32S: [u32; 8] = [0, 1, 2, 3, 4, 5, 6, 7];
const I64S: [u32; 2] = [8, 9];
const F64S: [u32; 2] = [10, 11];
const SP: u32 = 0; // global 0: the shadow-stack pointer

fn mem(offset: u64) -> MemArg {
    MemArg {
        offset,
        align: 2,
        memory_index: 0,
    }
}

/// Everything one body generator needs to know.
struct Ctx<'a> {
    rng: &'a mut Rng,
    me: u32,
    io: &'a [bool],
}

impl Ctx<'_> {
    fn pick(&mut self, set: &[u32]) -> u32 {
        set[self.rng.below(set.len() as u64) as usize]
    }

    /// A later general function; I/O functions may call either kind,
    /// others only non-I/O ones. None when there is no candidate.
    fn callee(&mut self, want_io: bool) -> Option<u32> {
        for _ in 0..8 {
            let span = (GENERAL - self.me - 1).min(400);
            if span == 0 {
                return None;
            }
            let k = self.me + 1 + self.rng.below(u64::from(span)) as u32;
            if self.io[k as usize] == want_io {
                return Some(k);
            }
        }
        None
    }

    fn statement(&mut self, f: &mut InstructionSink<'_>, nesting: u32) {
        match self.rng.below(100) {
            0..=24 => {
                let (a, b, c) = (self.pick(&I32S), self.pick(&I32S), self.rng.next() as i32);
                f.local_get(b).i32_const(c);
                match self.rng.below(4) {
                    0 => f.i32_add(),
                    1 => f.i32_mul(),
                    2 => f.i32_xor(),
                    _ => f.i32_rotl(),
                };
                f.local_get(a).i32_add().local_set(a);
            }
            25..=34 => {
                let (x, a, c) = (self.pick(&I64S), self.pick(&I32S), self.rng.next() as i64);
                f.local_get(x)
                    .local_get(a)
                    .i64_extend_i32_u()
                    .i64_const(c)
                    .i64_mul()
                    .i64_add()
                    .local_set(x);
            }
            35..=42 => {
                let (y, a) = (self.pick(&F64S), self.pick(&I32S));
                let c = (self.rng.below(1000) as f64) / 7.0;
                f.local_get(y)
                    .f64_const(c.into())
                    .f64_mul()
                    .local_get(a)
                    .f64_convert_i32_s()
                    .f64_add()
                    .local_set(y);
            }
            43..=52 => {
                let (a, b) = (self.pick(&I32S), self.pick(&I32S));
                let off = self.rng.below(4096) * 4;
                f.local_get(a)
                    .i32_const(0xfffc)
                    .i32_and()
                    .local_get(b)
                    .i32_store(mem(off));
            }
            53..=62 => {
                let (a, b) = (self.pick(&I32S), self.pick(&I32S));
                let off = self.rng.below(4096) * 4;
                f.local_get(b)
                    .i32_const(0xfffc)
                    .i32_and()
                    .i32_load(mem(off))
                    .local_get(a)
                    .i32_xor()
                    .local_set(a);
            }
            63..=66 => {
                let (x, a) = (self.pick(&I64S), self.pick(&I32S));
                f.local_get(x)
                    .i32_wrap_i64()
                    .local_get(a)
                    .i32_add()
                    .local_set(a);
            }
            67..=72 => {
                // A call to a later function of the same side.
                let want_io = self.io[self.me as usize] && self.rng.percent(50);
                if let Some(k) = self.callee(want_io) {
                    let (a, b, c) = (self.pick(&I32S), self.pick(&I32S), self.pick(&I32S));
                    f.local_get(a)
                        .local_get(b)
                        .call(general(k))
                        .local_get(c)
                        .i32_add()
                        .local_set(c);
                }
            }
            73..=82 if nesting < 3 => {
                let c = self.pick(&I32S);
                f.local_get(c).i32_const(7).i32_and().if_(BlockType::Empty);
                for _ in 0..2 + self.rng.below(3) {
                    self.statement(f, nesting + 1);
                }
                f.else_();
                for _ in 0..1 + self.rng.below(3) {
                    self.statement(f, nesting + 1);
                }
                f.end();
            }
            83..=88 if nesting < 3 => {
                let n = self.pick(&I32S[2..]);
                f.block(BlockType::Empty).loop_(BlockType::Empty);
                for _ in 0..2 + self.rng.below(4) {
                    self.statement(f, nesting + 1);
                }
                f.local_get(n)
                    .i32_const(1)
                    .i32_sub()
                    .local_tee(n)
                    .i32_const(0)
                    .i32_gt_s()
                    .br_if(0)
                    .end()
                    .end();
            }
            _ => {
                let (a, b) = (self.pick(&I32S), self.pick(&I32S));
                f.local_get(a)
                    .local_get(b)
                    .i32_const(31)
                    .i32_shr_u()
                    .i32_sub()
                    .local_set(b);
            }
        }
    }
}

/// The general function `me`.
fn general_body(rng: &mut Rng, me: u32, io: &[bool]) -> Function {
    let mut func = Function::new([(6, ValType::I32), (2, ValType::I64), (2, ValType::F64)]);
    let shadow = rng.percent(30);
    let indirect = rng.percent(INDIRECT_PERCENT);
    let statements = 12 + rng.below(16);
    let mut ctx = Ctx { rng, me, io };
    let mut f = func.instructions();
    if shadow {
        f.global_get(SP)
            .i32_const(64)
            .i32_sub()
            .local_tee(7)
            .global_set(SP);
    }
    let io_call_at = if io[me as usize] {
        ctx.rng.below(statements)
    } else {
        u64::MAX
    };
    let indirect_at = if indirect {
        ctx.rng.below(statements)
    } else {
        u64::MAX
    };
    for s in 0..statements {
        if s == io_call_at {
            // The call that puts this function on the fork path.
            let (a, b) = (ctx.pick(&I32S), ctx.pick(&I32S));
            let target = match ctx.callee(true) {
                Some(k) if ctx.rng.percent(70) => general(k),
                _ => chain(ctx.rng.below(u64::from(DEPTH)) as u32),
            };
            f.local_get(a).local_get(b).call(target).local_set(a);
        }
        if s == indirect_at {
            let (a, b) = (ctx.pick(&I32S), ctx.pick(&I32S));
            f.local_get(a)
                .local_get(b)
                .i32_const(CALLBACKS as i32 - 1)
                .i32_and()
                .call_indirect(0, T_CB)
                .local_set(a);
        }
        ctx.statement(&mut f, 0);
    }
    if shadow {
        f.local_get(7).i32_const(64).i32_add().global_set(SP);
    }
    f.local_get(2)
        .local_get(0)
        .i32_add()
        .local_get(8)
        .i32_wrap_i64()
        .i32_xor()
        .local_get(10)
        .i32_trunc_sat_f64_s()
        .i32_add()
        .end();
    func
}

/// `chain[k]`: work, then a loop that calls `chain[k + 1]` (the fork import
/// for the last) under an `if`, with values live across the call.
fn chain_body(rng: &mut Rng, k: u32) -> Function {
    let mut func = Function::new([(6, ValType::I32), (2, ValType::I64), (2, ValType::F64)]);
    let none = [false; 0];
    let ctx = Ctx {
        rng,
        me: 0,
        io: &none,
    };
    let mut f = func.instructions();
    for _ in 0..6 {
        // Straight-line work only (no calls: `io` is empty).
        match ctx.rng.below(3) {
            0 => f
                .local_get(0)
                .i32_const(ctx.rng.next() as i32)
                .i32_mul()
                .local_set(2),
            1 => f
                .local_get(1)
                .i64_extend_i32_u()
                .i64_const(ctx.rng.next() as i64)
                .i64_mul()
                .local_set(8),
            _ => f
                .local_get(0)
                .f64_convert_i32_s()
                .f64_const(1.5.into())
                .f64_mul()
                .local_set(10),
        };
    }
    f.i32_const(2).local_set(3);
    f.block(BlockType::Empty).loop_(BlockType::Empty);
    f.local_get(0).i32_const(1).i32_and().if_(BlockType::Empty);
    if k + 1 < DEPTH {
        f.local_get(2).local_get(1).call(chain(k + 1));
    } else {
        f.call(F_FORK);
    }
    f.local_get(2).i32_add().local_set(2);
    f.end();
    f.local_get(3)
        .i32_const(1)
        .i32_sub()
        .local_tee(3)
        .br_if(0)
        .end()
        .end();
    f.local_get(2)
        .local_get(8)
        .i32_wrap_i64()
        .i32_add()
        .local_get(10)
        .i32_trunc_sat_f64_s()
        .i32_xor()
        .end();
    func
}

/// The module's bytes.
pub fn generate() -> Vec<u8> {
    let mut rng = Rng(0x5EED_F0F0_1234_ABCD);
    let io: Vec<bool> = (0..GENERAL).map(|_| rng.percent(IO_PERCENT)).collect();

    let mut types = TypeSection::new();
    types.ty().function([], [ValType::I32]);
    types
        .ty()
        .function([ValType::I32, ValType::I32], [ValType::I32]);
    types.ty().function([ValType::I32], [ValType::I32]);
    types.ty().function([], []);

    let mut imports = ImportSection::new();
    imports.import("kernel", "kernel_fork", EntityType::Function(T_FORK));

    let mut funcs = FunctionSection::new();
    funcs.function(T_START);
    for _ in 0..DEPTH + GENERAL {
        funcs.function(T_GEN);
    }
    for _ in 0..CALLBACKS {
        funcs.function(T_CB);
    }

    let mut tables = TableSection::new();
    tables.table(TableType {
        element_type: RefType::FUNCREF,
        table64: false,
        minimum: u64::from(CALLBACKS),
        maximum: Some(u64::from(CALLBACKS)),
        shared: false,
    });
    let mut memories = MemorySection::new();
    memories.memory(MemoryType {
        minimum: 32,
        maximum: None,
        memory64: false,
        shared: false,
        page_size_log2: None,
    });
    let mut globals = GlobalSection::new();
    globals.global(
        GlobalType {
            val_type: ValType::I32,
            mutable: true,
            shared: false,
        },
        &ConstExpr::i32_const(1 << 20),
    );

    let mut exports = ExportSection::new();
    exports.export("memory", ExportKind::Memory, 0);
    exports.export("_start", ExportKind::Func, F_START);
    for k in (0..GENERAL).step_by(400) {
        exports.export(&format!("api_{k}"), ExportKind::Func, general(k));
    }

    let mut elements = ElementSection::new();
    let table: Vec<u32> = (0..CALLBACKS).map(callback).collect();
    elements.active(
        None,
        &ConstExpr::i32_const(0),
        Elements::Functions(Cow::Owned(table)),
    );

    let mut code = CodeSection::new();
    let mut start = Function::new([]);
    {
        let mut f = start.instructions();
        f.i32_const(1).i32_const(2).call(chain(0)).drop();
        for k in (0..GENERAL).step_by(97) {
            f.i32_const(k as i32).i32_const(3).call(general(k)).drop();
        }
        f.end();
    }
    code.function(&start);
    for k in 0..DEPTH {
        code.function(&chain_body(&mut rng, k));
    }
    for k in 0..GENERAL {
        code.function(&general_body(&mut rng, k, &io));
    }
    for _ in 0..CALLBACKS {
        let mut func = Function::new([(1, ValType::I32)]);
        let c = rng.next() as i32;
        func.instructions()
            .local_get(0)
            .i32_const(c)
            .i32_mul()
            .local_tee(1)
            .local_get(1)
            .i32_const(15)
            .i32_shr_u()
            .i32_xor()
            .end();
        code.function(&func);
    }

    let mut module = Module::new();
    module
        .section(&types)
        .section(&imports)
        .section(&funcs)
        .section(&tables)
        .section(&memories)
        .section(&globals)
        .section(&exports)
        .section(&elements)
        .section(&code);
    module.finish()
}
