//! The per-function plan: fork-path call sites in code order, what each
//! keeps on the operand stack (carryovers), which arguments it must
//! recompute or spill for replay, which locals its frame holds and where,
//! and the constructs that replay must enter on the way to it.
//!
//! Planning only reads the function (spill locals are the one thing it
//! creates, and only where no dead local of the type exists); the rewrite
//! applies the plan.

mod arg_tail;
pub mod new_locals;
mod planner;

use crate::analysis::callgraph::CallGraph;
use crate::analysis::liveness::Liveness;
use crate::codegen::zero;
use crate::frame::{self, size_of};
use crate::runtime::Run;
use crate::walrus_gaps::operand_types::OperandTypes;
use crate::{Error, Stage};
use new_locals::NewLocals;
use planner::Planner;
use std::collections::{BTreeSet, HashMap, HashSet};
use walrus::ir::InstrSeqId;
use walrus::{FunctionId, FunctionKind, LocalFunction, LocalId, Module, ModuleLocals, ValType};

/// Items (calls or constructs holding calls) per bucket of a sequence's
/// replay dispatch: each item adds one landing block, so this bounds the
/// nesting that dispatch adds per sequence; each later bucket costs normal
/// execution one state check where it starts.
pub const BUCKET: usize = 16;

/// Where an unwinding activation goes after storing one level's values.
#[derive(Debug, Clone)]
pub enum Exit {
    /// To the function's shared unwind exit.
    Fin,
    /// Out of an enclosing construct, whose own check stores the next level.
    Label {
        /// The label: the construct's sequence (for `if`, the branch we are in).
        seq: InstrSeqId,
        /// The label belongs to a loop: use the wrapper block around it.
        loop_wrapper: bool,
        /// Values the branch must carry (defaults).
        results: Vec<ValType>,
    },
}

/// One fork-path call site.
#[derive(Debug, Clone)]
pub struct SitePlan {
    /// Position of the call in its sequence.
    pub pos: usize,
    /// Where the recomputed argument tail starts (== `pos` when none).
    pub tail_start: usize,
    /// The call was a tail call; it becomes a call followed by `return`.
    pub return_call: bool,
    /// The instruction after the call (a `local.set` or `drop` of its one
    /// result) goes before the state check, which then has an empty type.
    pub absorbs_next: bool,
    /// Results of the call.
    pub results: Vec<ValType>,
    /// Every operand value below the arguments, bottom first, across all
    /// enclosing levels (the ABI's carryovers).
    pub carry: Vec<ValType>,
    /// Frame offsets of `carry`.
    pub carry_off: Vec<u32>,
    /// Index in `carry` where this sequence's own values start.
    pub level_start: usize,
    /// Arguments below the spilled/recomputed ones: dead on replay, pushed
    /// as defaults.
    pub dead_args: Vec<ValType>,
    /// Locals holding spilled arguments, bottom first.
    pub spills: Vec<(LocalId, ValType)>,
    /// Locals in the frame with their offsets.
    pub saved: Vec<Saved>,
    /// Where unwinding continues after this level.
    pub exit: Exit,
}

/// A local in a frame: the local, its type, its offset.
pub type Saved = (LocalId, ValType, u32);

/// The kind of a construct that contains sites.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `block`.
    Block,
    /// `loop`.
    Loop,
    /// `if`, with the first call index of its `else` arm.
    If {
        /// First call index in the else arm.
        split: u32,
        /// The then arm has sites.
        then_has: bool,
        /// The else arm has sites.
        else_has: bool,
    },
    /// `try_table` or a legacy `try` body.
    Try,
}

/// A block-like instruction on the way to some sites.
#[derive(Debug, Clone)]
pub struct ConstructPlan {
    /// Its kind.
    pub kind: Kind,
    /// Its inner sequence (the then arm for `if`).
    pub seq: InstrSeqId,
    /// Call indices inside: `lo..hi`.
    pub lo: u32,
    /// End of the call indices inside.
    pub hi: u32,
    /// Values on its sequence's stack below it.
    pub level_vals: Vec<ValType>,
    /// Frame offsets of `level_vals`.
    pub level_off: Vec<u32>,
    /// Its block parameters.
    pub params: Vec<ValType>,
    /// Its block results.
    pub results: Vec<ValType>,
    /// After it, an unwind check stores `level_vals` (they are not empty).
    pub post_check: bool,
    /// Where unwinding continues after that check.
    pub exit: Exit,
}

/// A sequence that contains sites.
#[derive(Debug, Clone)]
pub struct SeqPlan {
    /// Parameters of the sequence.
    pub params: Vec<ValType>,
    /// Items in code order.
    pub items: Vec<Item>,
    /// Buckets: (first item, position where the bucket starts).
    pub chunks: Vec<(usize, usize)>,
}

/// A site or a construct in a sequence.
#[derive(Debug, Clone, Copy)]
pub enum Item {
    /// Call index.
    Site(u32),
    /// Position of the construct.
    Construct(usize),
}

/// The plan for one function.
#[derive(Debug)]
pub struct FuncPlan {
    /// The function.
    pub id: FunctionId,
    /// `func_ordinal`.
    pub ordinal: u32,
    /// Frame size.
    pub frame_size: u32,
    /// Sites by call index.
    pub sites: Vec<SitePlan>,
    /// Sequences with sites.
    pub seqs: HashMap<InstrSeqId, SeqPlan>,
    /// Constructs with sites, by (parent sequence, position).
    pub constructs: HashMap<(InstrSeqId, usize), ConstructPlan>,
    /// Function results.
    pub results: Vec<ValType>,
    /// Locals the plan declared.
    pub locals_added: u32,
}

impl FuncPlan {
    /// Virtual registers an optimizing engine needs for what the rewrite
    /// adds, estimated: per call site, the values joined at its landing
    /// (the locals live across it, the values carried below it) and three
    /// for its unwind check (the state, the call index, the writer call).
    pub fn added_registers(&self) -> u64 {
        self.sites
            .iter()
            .map(|s| (s.saved.len() + s.carry.len()) as u64 + 3)
            .sum()
    }

    /// The runs its rewrite stores from the operand stack, stores from
    /// locals, and loads, once per use (`runtime::runs`, cut the way the
    /// `runtime` methods the rewrite calls cut them).
    pub fn runs(&self) -> RunUses {
        use crate::runtime::{runs, LOAD_RUN, SAVE_RUN};
        let mut u = RunUses::default();
        let count = |m: &mut Vec<Run>, vals: &[(ValType, u32)], max: usize, popped: bool| {
            m.extend(runs(vals, max, popped).into_iter().map(|r| r.0));
        };
        let level_of = |types: &[ValType], offs: &[u32]| -> Vec<(ValType, u32)> {
            types.iter().copied().zip(offs.iter().copied()).collect()
        };
        for s in &self.sites {
            let level = level_of(&s.carry[s.level_start..], &s.carry_off[s.level_start..]);
            count(&mut u.popped, &level, SAVE_RUN, true);
            count(&mut u.loads, &level, LOAD_RUN, false);
            let locals: Vec<(ValType, u32)> = s.saved.iter().map(|(_, t, o)| (*t, *o)).collect();
            count(&mut u.saves, &locals, SAVE_RUN, false);
            count(&mut u.loads, &locals, LOAD_RUN, false);
        }
        for c in self.constructs.values() {
            let level = level_of(&c.level_vals, &c.level_off);
            count(&mut u.popped, &level, SAVE_RUN, true);
            count(&mut u.loads, &level, LOAD_RUN, false);
        }
        u
    }
}

/// Runs a function's rewrite uses, once per use (see [`FuncPlan::runs`]).
#[derive(Debug, Default)]
pub struct RunUses {
    /// Stored from the operand stack.
    pub popped: Vec<Run>,
    /// Stored from locals.
    pub saves: Vec<Run>,
    /// Loaded.
    pub loads: Vec<Run>,
}

/// Inputs shared by all functions.
pub struct Ctx<'a> {
    /// The module (read only).
    pub module: &'a Module,
    /// Call graph.
    pub graph: &'a CallGraph,
    /// Operand types at the instructions of the fork-path functions.
    pub facts: &'a OperandTypes,
    /// Display name of a function.
    pub name: &'a (dyn Fn(FunctionId) -> String + Sync),
}

/// Plans one fork-path function; the spill locals it declares are
/// provisional ([`NewLocals`], in the arena `arena` of `locals`).
pub fn plan_function(
    cx: &Ctx<'_>,
    id: FunctionId,
    ordinal: u32,
    locals: &ModuleLocals,
    arena: u32,
) -> Result<(FuncPlan, NewLocals), Error> {
    let f = match &cx.module.funcs.get(id).kind {
        FunctionKind::Local(f) => f,
        _ => {
            return Err(Error::internal(
                Stage::Plan,
                "planning an imported function",
            ))
        }
    };
    let fname = (cx.name)(id);
    let mut calls = HashMap::new();
    for (seq, pos, c) in cx.graph.calls.get(&id).into_iter().flatten() {
        calls.insert((*seq, *pos), c);
    }
    let site_keys: BTreeSet<(InstrSeqId, usize)> = calls
        .iter()
        .filter(|(_, c)| cx.graph.is_fork_path_call(c))
        .map(|(k, _)| *k)
        .collect();
    let live = Liveness::compute(f, &site_keys);
    let results = cx.module.types.results(f.ty()).to_vec();
    if results.iter().any(|t| zero(*t).is_none()) {
        return Err(Error::Unsupported {
            function: fname,
            reason: "a non-nullable reference result has no default to return while unwinding"
                .into(),
            others: Vec::new(),
        });
    }
    let pool = live.locals().to_vec();
    let holding = holding(f, &site_keys);
    let mut planner = Planner {
        cx,
        f,
        fname,
        calls,
        holding,
        sites: Vec::new(),
        seqs: HashMap::new(),
        constructs: HashMap::new(),
        path: Vec::new(),
        live,
        pool,
        locals,
        new: NewLocals::new(arena),
    };
    planner.plan_seq(f.entry_block(), Vec::new())?;
    let Planner {
        sites,
        seqs,
        constructs,
        new,
        ..
    } = planner;
    let mut frame_end = frame::HEADER;
    for s in &sites {
        let end = s
            .carry
            .iter()
            .zip(&s.carry_off)
            .map(|(t, o)| o + size_of(*t))
            .max()
            .unwrap_or(frame::HEADER);
        let saved_end = s
            .saved
            .iter()
            .map(|(_, t, o)| o + size_of(*t))
            .max()
            .unwrap_or(end);
        frame_end = frame_end.max(saved_end.max(end));
    }
    let plan = FuncPlan {
        id,
        ordinal,
        frame_size: frame::frame_size(frame_end),
        sites,
        seqs,
        constructs,
        results,
        locals_added: new.len(),
    };
    Ok((plan, new))
}

/// The sequences of `f` that hold one of `sites` (as (sequence, position)),
/// themselves or in a sequence below them.
fn holding(f: &LocalFunction, sites: &BTreeSet<(InstrSeqId, usize)>) -> HashSet<InstrSeqId> {
    let mut out: HashSet<InstrSeqId> = sites.iter().map(|(s, _)| *s).collect();
    // Children come after their parents in `all_seqs`: walk it backwards.
    for seq in crate::tree::all_seqs(f).into_iter().rev() {
        if out.contains(&seq) {
            continue;
        }
        let mut holds = false;
        for (instr, _) in f.block(seq).instrs.iter() {
            crate::tree::for_each_child(instr, |c| holds = holds || out.contains(&c));
            if holds {
                out.insert(seq);
                break;
            }
        }
    }
    out
}
