//! Generates the large synthetic inputs: many functions, a deep fork path,
//! in two shapes and any size. Deterministic (fixed seed): the same bytes
//! on every run, never checked in.
//!
//! - [`Shape::Today`] (the `large-synthetic` input, ~12 MB at the default
//!   size, byte for byte what this generator wrote before it took options):
//!   a quarter of the functions on the fork path, and indirect calls through
//!   a table of callbacks that never reach fork.
//! - [`Shape::Indirect85`]: like a C++ program whose I/O goes through
//!   function pointers. 87% of the general functions ("I/O" functions)
//!   each reach fork through a `call_indirect` into a vtable part of the
//!   table whose entries are chain and I/O functions (and by direct calls
//!   to other I/O functions), so about 85% of the defined functions are on
//!   the fork path.
//!
//! Size: the general functions scale with the requested MB of code (16,000
//! per 12 MB), each with the same statement mix, so cost per MB is
//! comparable across sizes; the chain depth and the table are fixed.
//! `refused` appends three fork-path functions that ABI 1 §8 refuses, of
//! three kinds (see [`refused_bodies`]).
//!
//! Shape, chosen to look like compiled Rust/C rather than to favour a tool:
//! - `chain[0..DEPTH]`: each calls the next inside a loop and an `if`; the
//!   last calls the fork import. A fork from `_start` unwinds DEPTH frames.
//! - `general[0..N]`: arithmetic on i32/i64/f64 locals, loads and
//!   stores, nested `if`/`loop`, a shadow-stack prologue in some, and calls
//!   to later functions (a DAG). A quarter are "I/O" functions: they also
//!   call a later I/O function or a chain function, so they are on the fork
//!   path; the others only call non-I/O functions.
//! - `callback[0..CALLBACKS]`: small leaves of another type, in the table;
//!   6% of general functions `call_indirect` through it.
//! - Indirect85 only: table slots `CALLBACKS..CALLBACKS + VTABLE` hold
//!   chain and I/O general functions; an I/O function's fork-path call is a
//!   `call_indirect` of the general type into them.

use std::borrow::Cow;

use anyhow::{bail, Result};
use wasm_encoder::{
    BlockType, CodeSection, ConstExpr, ElementSection, Elements, EntityType, ExportKind,
    ExportSection, Function, FunctionSection, GlobalSection, GlobalType, ImportSection,
    InstructionSink, MemArg, MemorySection, MemoryType, Module, RefType, TableSection, TableType,
    TypeSection, ValType,
};

const DEPTH: u32 = 1000;
/// General functions per 12 MB (the default size).
const GENERAL_PER_12MB: u64 = 16_000;
const CALLBACKS: u32 = 512;
/// Indirect85: table slots after the callbacks, of the general type.
const VTABLE: u32 = 256;
const IO_PERCENT: u64 = 25;
/// Indirect85: general functions that reach fork (through the vtable).
const REACH_PERCENT: u64 = 87;
const INDIRECT_PERCENT: u64 = 6;

/// Which functions reach fork, and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// A quarter, by direct calls (the original input).
    Today,
    /// About 85%, through `call_indirect`.
    Indirect85,
}

impl Shape {
    pub const ALL: [Shape; 2] = [Shape::Today, Shape::Indirect85];

    /// The name used on the command line and in input names.
    pub fn id(self) -> &'static str {
        match self {
            Shape::Today => "today",
            Shape::Indirect85 => "indirect85",
        }
    }

    pub fn parse(s: &str) -> Result<Shape> {
        match s {
            "today" => Ok(Shape::Today),
            "indirect85" => Ok(Shape::Indirect85),
            other => bail!("unknown shape `{other}` (today or indirect85)"),
        }
    }
}

/// What to generate.
#[derive(Debug, Clone, Copy)]
pub struct Params {
    /// Target size of the code section in MB (approximate).
    pub mb: u32,
    pub shape: Shape,
    /// Append the three functions ABI 1 §8 refuses.
    pub refused: bool,
}

impl Default for Params {
    fn default() -> Params {
        Params {
            mb: 12,
            shape: Shape::Today,
            refused: false,
        }
    }
}

impl Params {
    /// `[--mb N] [--shape today|indirect85] [--refused]`.
    pub fn from_args(args: &[String]) -> Result<Params> {
        let mut p = Params::default();
        let mut it = args.iter();
        while let Some(a) = it.next() {
            match a.as_str() {
                "--mb" => {
                    let v = it.next().map(String::as_str).unwrap_or("");
                    p.mb = match v.parse::<u32>() {
                        Ok(n) if (1..=1024).contains(&n) => n,
                        _ => bail!("--mb needs a whole number of MB from 1 to 1024, not `{v}`"),
                    };
                }
                "--shape" => p.shape = Shape::parse(it.next().map(String::as_str).unwrap_or(""))?,
                "--refused" => p.refused = true,
                other => bail!("unknown gen-large option `{other}`"),
            }
        }
        Ok(p)
    }

    /// The fork import, `module.name`.
    pub const FORK_IMPORT: &'static str = "kernel.kernel_fork";
}

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

// Function indices: import 0, then _start, chain, general, callbacks,
// then (refused only) the refused functions.
const F_FORK: u32 = 0;
const F_START: u32 = 1;
const fn chain(k: u32) -> u32 {
    2 + k
}

/// Index arithmetic that depends on the number of general functions.
#[derive(Clone, Copy)]
struct Layout {
    general: u32,
    shape: Shape,
}

impl Layout {
    fn general(self, k: u32) -> u32 {
        2 + DEPTH + k
    }
    fn callback(self, k: u32) -> u32 {
        2 + DEPTH + self.general + k
    }
    fn refused(self, k: u32) -> u32 {
        2 + DEPTH + self.general + CALLBACKS + k
    }
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
    lay: Layout,
}

impl Ctx<'_> {
    fn pick(&mut self, set: &[u32]) -> u32 {
        set[self.rng.below(set.len() as u64) as usize]
    }

    /// A later general function; I/O functions may call either kind,
    /// others only non-I/O ones. None when there is no candidate.
    fn callee(&mut self, want_io: bool) -> Option<u32> {
        for _ in 0..8 {
            let span = (self.lay.general - self.me - 1).min(400);
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
                        .call(self.lay.general(k))
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
fn general_body(rng: &mut Rng, me: u32, io: &[bool], lay: Layout) -> Function {
    let mut func = Function::new([(6, ValType::I32), (2, ValType::I64), (2, ValType::F64)]);
    let shadow = rng.percent(30);
    let indirect = rng.percent(INDIRECT_PERCENT);
    let statements = 12 + rng.below(16);
    let mut ctx = Ctx { rng, me, io, lay };
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
        if s == io_call_at && lay.shape == Shape::Indirect85 {
            // Through the vtable: every entry reaches fork.
            let (a, b) = (ctx.pick(&I32S), ctx.pick(&I32S));
            let slot = ctx.rng.below(u64::from(VTABLE)) as i32;
            f.local_get(a)
                .local_get(b)
                .local_get(b)
                .i32_const(slot)
                .i32_add()
                .i32_const(VTABLE as i32 - 1)
                .i32_and()
                .i32_const(CALLBACKS as i32)
                .i32_add()
                .call_indirect(0, T_GEN)
                .local_set(a);
        } else if s == io_call_at {
            // The call that puts this function on the fork path.
            let (a, b) = (ctx.pick(&I32S), ctx.pick(&I32S));
            let target = match ctx.callee(true) {
                Some(k) if ctx.rng.percent(70) => lay.general(k),
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
fn chain_body(rng: &mut Rng, k: u32, lay: Layout) -> Function {
    let mut func = Function::new([(6, ValType::I32), (2, ValType::I64), (2, ValType::F64)]);
    let none = [false; 0];
    let ctx = Ctx {
        rng,
        me: 0,
        io: &none,
        lay,
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

/// The three refused fork-path functions (type `T_GEN`), each refused for
/// a different ABI 1 §8 reason: a fork-path call in a legacy `catch_all`
/// handler; an `externref` local live across a fork-path call; a `funcref`
/// operand value live across one. Each calls a different chain function,
/// so each is on the fork path.
fn refused_bodies() -> [(&'static str, Function); 3] {
    let mut handler = Function::new([]);
    handler
        .instructions()
        .try_(BlockType::Empty)
        .nop()
        .catch_all()
        .local_get(0)
        .local_get(1)
        .call(chain(1))
        .local_set(0)
        .end()
        .local_get(0)
        .end();
    let mut local = Function::new([(1, ValType::EXTERNREF)]);
    local
        .instructions()
        .ref_null(wasm_encoder::HeapType::EXTERN)
        .local_set(2)
        .local_get(0)
        .local_get(1)
        .call(chain(2))
        .local_set(0)
        .local_get(2)
        .ref_is_null()
        .local_get(0)
        .i32_add()
        .end();
    let mut operand = Function::new([]);
    operand
        .instructions()
        .ref_null(wasm_encoder::HeapType::FUNC)
        .local_get(0)
        .local_get(1)
        .call(chain(3))
        .local_set(0)
        .ref_is_null()
        .local_get(0)
        .i32_add()
        .end();
    [
        ("refused_catch_all_handler", handler),
        ("refused_externref_local", local),
        ("refused_funcref_operand", operand),
    ]
}

/// The module's bytes for the default parameters (`large-synthetic`).
pub fn generate() -> Vec<u8> {
    generate_with(Params::default())
}

/// The module's bytes.
pub fn generate_with(p: Params) -> Vec<u8> {
    let general = (GENERAL_PER_12MB * u64::from(p.mb) / 12).max(1) as u32;
    let lay = Layout {
        general,
        shape: p.shape,
    };
    let mut rng = Rng(0x5EED_F0F0_1234_ABCD);
    let io_percent = match p.shape {
        Shape::Today => IO_PERCENT,
        Shape::Indirect85 => REACH_PERCENT,
    };
    let io: Vec<bool> = (0..general).map(|_| rng.percent(io_percent)).collect();
    // The vtable (Indirect85): chain functions and late I/O functions, from
    // a second generator so the first one's sequence is the same.
    let vtable: Vec<u32> = if p.shape == Shape::Indirect85 {
        let mut vr = Rng(0x7AB1_E5EE_D000_0001);
        let late: Vec<u32> = (general - general.min(2000)..general)
            .filter(|&k| io[k as usize])
            .collect();
        (0..VTABLE)
            .map(|slot| {
                if slot % 2 == 0 || late.is_empty() {
                    chain(vr.below(u64::from(DEPTH)) as u32)
                } else {
                    lay.general(late[vr.below(late.len() as u64) as usize])
                }
            })
            .collect()
    } else {
        Vec::new()
    };
    let table_size = CALLBACKS + vtable.len() as u32;
    let refused = if p.refused {
        Vec::from(refused_bodies())
    } else {
        Vec::new()
    };

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
    for _ in 0..DEPTH + general {
        funcs.function(T_GEN);
    }
    for _ in 0..CALLBACKS {
        funcs.function(T_CB);
    }
    for _ in &refused {
        funcs.function(T_GEN);
    }

    let mut tables = TableSection::new();
    tables.table(TableType {
        element_type: RefType::FUNCREF,
        table64: false,
        minimum: u64::from(table_size),
        maximum: Some(u64::from(table_size)),
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
    for k in (0..general).step_by(400) {
        exports.export(&format!("api_{k}"), ExportKind::Func, lay.general(k));
    }
    for (k, (name, _)) in refused.iter().enumerate() {
        exports.export(name, ExportKind::Func, lay.refused(k as u32));
    }

    let mut elements = ElementSection::new();
    let mut table: Vec<u32> = (0..CALLBACKS).map(|k| lay.callback(k)).collect();
    table.extend(&vtable);
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
        for k in (0..general).step_by(97) {
            f.i32_const(k as i32)
                .i32_const(3)
                .call(lay.general(k))
                .drop();
        }
        f.end();
    }
    code.function(&start);
    for k in 0..DEPTH {
        code.function(&chain_body(&mut rng, k, lay));
    }
    for k in 0..general {
        code.function(&general_body(&mut rng, k, &io, lay));
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
    for (_, func) in &refused {
        code.function(func);
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
