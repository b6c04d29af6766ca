//! The fork-path call graph: which functions can reach a fork import, why,
//! and which call instructions are fork-path calls.
//!
//! Direct calls always count. `call_indirect` counts only through the table
//! slots that can hold a fork-path function of the same type: active element
//! segments with constant offsets give exact slots; anything that can change
//! a table (`table.set`/`fill`/`grow`/`copy`/`init`, an imported or exported
//! table) makes its contents "any function that escapes". `call_ref` counts
//! for every escaping function of its type. Tail calls count like calls.
//! This module only reads the module.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use walrus::ir::{Instr, InstrLocId, InstrSeqId, Value};
use walrus::{
    ConstExpr, ElementItems, ElementKind, FunctionId, FunctionKind, LocalFunction, Module, TableId,
    TypeId,
};

/// Who can be called by one call instruction.
#[derive(Debug, Clone)]
pub enum Callees {
    /// Exactly this function.
    Direct(FunctionId),
    /// Any of these.
    Set(CalleeSet),
}

/// The functions an indirect call or `call_ref` can reach. Calls through
/// the same table (and slot) with the same type share one set.
#[derive(Debug, Clone)]
pub struct CalleeSet {
    id: usize,
    members: Arc<BTreeSet<FunctionId>>,
}

impl CalleeSet {
    /// The members, in id order.
    pub fn iter(&self) -> impl Iterator<Item = &FunctionId> {
        self.members.iter()
    }
}

/// The closure of functions that can reach a fork import.
#[derive(Debug, Default)]
pub struct CallGraph {
    /// Fork imports present in the module.
    pub fork_imports: BTreeSet<FunctionId>,
    /// Functions known to reach a fork import without being on the path
    /// here ([`CodeEffects::reaching`]).
    reaching: BTreeSet<FunctionId>,
    /// Local functions on a fork path, with the next function on the way
    /// to a fork import.
    pub on_path: BTreeMap<FunctionId, FunctionId>,
    /// Per local function, its call instructions: (seq, position, callees).
    pub calls: BTreeMap<FunctionId, Vec<(InstrSeqId, usize, Callees)>>,
    /// Per callee set (by id), whether one of its members reaches a fork
    /// import.
    set_reaches: Vec<bool>,
}

/// An instruction's input offset (none for instructions forkify added).
pub fn offset(loc: InstrLocId) -> Option<u32> {
    (!loc.is_default()).then(|| loc.data())
}

/// What code outside walrus's module changes: tables and escaping
/// functions.
#[derive(Debug, Default)]
pub struct CodeEffects {
    /// Tables changed at run time.
    pub tables_changed: BTreeSet<TableId>,
    /// Functions `ref.func` takes.
    pub ref_funcs: BTreeSet<FunctionId>,
    /// Functions whose bodies walrus was not given but which reach a fork
    /// import (`analysis::reach`): they count as reaching, and are not
    /// themselves on the path (nothing of theirs is rewritten).
    pub reaching: BTreeSet<FunctionId>,
}

#[derive(Default)]
struct TableContents {
    /// Exact slots from active segments with constant offsets.
    slots: BTreeMap<u64, FunctionId>,
    /// Functions placed at positions not known statically.
    anywhere: BTreeSet<FunctionId>,
    /// Contents unknown: any escaping function can be there.
    unknown: bool,
}

impl CallGraph {
    /// Builds the graph for `module` with `fork_imports` as seeds. `code`
    /// adds what function bodies walrus was not given (`walrus_gaps::slim`)
    /// do: the tables they change and the functions they take references to.
    pub fn build(
        module: &Module,
        fork_imports: BTreeSet<FunctionId>,
        code: &CodeEffects,
    ) -> CallGraph {
        let mut escaping = escaping_functions(module);
        escaping.extend(code.ref_funcs.iter().copied());
        let mut tables: BTreeMap<TableId, TableContents> = BTreeMap::new();
        for t in module.tables.iter() {
            let exported = module
                .exports
                .iter()
                .any(|e| matches!(e.item, walrus::ExportItem::Table(id) if id == t.id()));
            tables.insert(
                t.id(),
                TableContents {
                    unknown: t.import.is_some() || exported,
                    ..Default::default()
                },
            );
        }
        for e in module.elements.iter() {
            if let ElementKind::Active { table, offset } = &e.kind {
                let funcs = element_functions(&e.items);
                let Some(tc) = tables.get_mut(table) else {
                    continue;
                };
                match offset {
                    ConstExpr::Value(Value::I32(o)) => place(tc, *o as u32 as u64, &funcs),
                    ConstExpr::Value(Value::I64(o)) => place(tc, *o as u64, &funcs),
                    _ => tc.anywhere.extend(funcs.into_iter().flatten()),
                }
            }
        }
        // Instructions that change tables at run time.
        for t in &code.tables_changed {
            mark_unknown(&mut tables, *t);
        }
        let mut calls: BTreeMap<FunctionId, Vec<(InstrSeqId, usize, Callees)>> = BTreeMap::new();
        let mut raw: Vec<(FunctionId, InstrSeqId, usize, RawCall)> = Vec::new();
        for (fid, f) in module.funcs.iter_local() {
            for seq in crate::tree::all_seqs(f) {
                let instrs = &f.block(seq).instrs;
                for (pos, (instr, _)) in instrs.iter().enumerate() {
                    match instr {
                        Instr::Call(c) => raw.push((fid, seq, pos, RawCall::Direct(c.func))),
                        Instr::ReturnCall(c) => raw.push((fid, seq, pos, RawCall::Direct(c.func))),
                        Instr::CallIndirect(c) => {
                            let slot = const_slot(instrs, pos);
                            raw.push((fid, seq, pos, RawCall::Indirect(c.ty, c.table, slot)))
                        }
                        Instr::ReturnCallIndirect(c) => {
                            let slot = const_slot(instrs, pos);
                            raw.push((fid, seq, pos, RawCall::Indirect(c.ty, c.table, slot)))
                        }
                        Instr::CallRef(c) => raw.push((fid, seq, pos, RawCall::Ref(c.ty))),
                        Instr::ReturnCallRef(c) => raw.push((fid, seq, pos, RawCall::Ref(c.ty))),
                        Instr::TableSet(t) => mark_unknown(&mut tables, t.table),
                        Instr::TableFill(t) => mark_unknown(&mut tables, t.table),
                        Instr::TableGrow(t) => mark_unknown(&mut tables, t.table),
                        Instr::TableCopy(t) => mark_unknown(&mut tables, t.dst),
                        Instr::TableInit(t) => mark_unknown(&mut tables, t.table),
                        _ => {}
                    }
                }
            }
        }
        let same_type =
            |ty: TypeId, f: FunctionId| same_signature(module, ty, module.funcs.get(f).ty());
        // One set per distinct (type, table, slot) of `call_indirect` and per
        // type of `call_ref`.
        let mut sets: Vec<CalleeSet> = Vec::new();
        let mut interned: HashMap<SetKey, usize> = HashMap::new();
        let mut intern = |key, members: &mut dyn FnMut() -> BTreeSet<FunctionId>| {
            let id = *interned.entry(key).or_insert_with(|| {
                sets.push(CalleeSet {
                    id: sets.len(),
                    members: Arc::new(members()),
                });
                sets.len() - 1
            });
            Callees::Set(sets[id].clone())
        };
        for (fid, seq, pos, call) in raw {
            let callees = match call {
                RawCall::Direct(g) => Callees::Direct(g),
                RawCall::Indirect(ty, table, slot) => {
                    let tc = &tables[&table];
                    let slot = if tc.unknown { None } else { slot };
                    intern((ty, Some((table, slot))), &mut || {
                        if tc.unknown {
                            escaping
                                .iter()
                                .copied()
                                .filter(|g| same_type(ty, *g))
                                .collect()
                        } else {
                            let mut s: BTreeSet<FunctionId> = tc.anywhere.clone();
                            match slot {
                                Some(k) => s.extend(tc.slots.get(&k)),
                                None => s.extend(tc.slots.values()),
                            }
                            s.into_iter().filter(|g| same_type(ty, *g)).collect()
                        }
                    })
                }
                RawCall::Ref(ty) => intern((ty, None), &mut || {
                    escaping
                        .iter()
                        .copied()
                        .filter(|g| same_type(ty, *g))
                        .collect()
                }),
            };
            calls.entry(fid).or_default().push((seq, pos, callees));
        }
        // Reverse edges (a function's direct callers, and the sets it is in
        // with the callers of each set), then a breadth-first walk from the
        // fork imports so every member gets its shortest reason.
        let mut callers: BTreeMap<FunctionId, BTreeSet<FunctionId>> = BTreeMap::new();
        let mut set_callers: Vec<BTreeSet<FunctionId>> = vec![BTreeSet::new(); sets.len()];
        for (f, cs) in &calls {
            for (_, _, c) in cs {
                match c {
                    Callees::Direct(g) => {
                        callers.entry(*g).or_default().insert(*f);
                    }
                    Callees::Set(s) => {
                        set_callers[s.id].insert(*f);
                    }
                }
            }
        }
        let mut member_of: HashMap<FunctionId, Vec<usize>> = HashMap::new();
        for s in &sets {
            for g in s.iter() {
                member_of.entry(*g).or_default().push(s.id);
            }
        }
        let mut set_reaches = vec![false; sets.len()];
        let mut on_path = BTreeMap::new();
        let mut queue: VecDeque<FunctionId> =
            fork_imports.iter().chain(&code.reaching).copied().collect();
        while let Some(g) = queue.pop_front() {
            let mut next: BTreeSet<FunctionId> = callers.remove(&g).unwrap_or_default();
            for id in member_of.get(&g).into_iter().flatten() {
                if !set_reaches[*id] {
                    set_reaches[*id] = true;
                    next.extend(std::mem::take(&mut set_callers[*id]));
                }
            }
            for f in next {
                if !fork_imports.contains(&f)
                    && !code.reaching.contains(&f)
                    && !on_path.contains_key(&f)
                {
                    on_path.insert(f, g);
                    queue.push_back(f);
                }
            }
        }
        CallGraph {
            fork_imports,
            reaching: code.reaching.clone(),
            on_path,
            calls,
            set_reaches,
        }
    }

    /// The offsets of `f`'s fork-path call instructions.
    pub fn site_locs(&self, f: FunctionId, func: &LocalFunction) -> HashSet<u32> {
        self.calls
            .get(&f)
            .into_iter()
            .flatten()
            .filter(|(_, _, c)| self.is_fork_path_call(c))
            .filter_map(|(seq, pos, _)| offset(func.block(*seq).instrs.get(*pos)?.1))
            .collect()
    }

    /// Where a function's call instructions are after its code was
    /// reshaped (`reshape.rs` moves instructions, never adds calls): each
    /// keeps its input offset, which finds its callees in `before`
    /// ([`CallGraph::calls_by_loc`]). The new value of its `calls` entry.
    pub fn relocated(
        before: &HashMap<u32, Callees>,
        func: &LocalFunction,
    ) -> Vec<(InstrSeqId, usize, Callees)> {
        let mut now = Vec::new();
        for seq in crate::tree::all_seqs(func) {
            for (pos, (_, loc)) in func.block(seq).instrs.iter().enumerate() {
                if let Some(c) = offset(*loc).and_then(|o| before.get(&o)) {
                    now.push((seq, pos, c.clone()));
                }
            }
        }
        now
    }

    /// `f`'s call instructions by input offset.
    pub fn calls_by_loc(&self, f: FunctionId, func: &LocalFunction) -> HashMap<u32, Callees> {
        self.calls
            .get(&f)
            .into_iter()
            .flatten()
            .filter_map(|(seq, pos, c)| {
                // Calls in dead code that was truncated are gone.
                let loc = func.block(*seq).instrs.get(*pos)?.1;
                Some((offset(loc)?, c.clone()))
            })
            .collect()
    }

    /// The functions counted as reaching a fork import whose bodies walrus
    /// was not given ([`CodeEffects::reaching`]).
    pub fn reaching_elsewhere(&self) -> impl Iterator<Item = FunctionId> + '_ {
        self.reaching.iter().copied()
    }

    /// True when `f` is a fork import or a fork-path function.
    pub fn reaches_fork(&self, f: FunctionId) -> bool {
        self.fork_imports.contains(&f)
            || self.reaching.contains(&f)
            || self.on_path.contains_key(&f)
    }

    /// True when a call with these callees is a fork-path call.
    pub fn is_fork_path_call(&self, c: &Callees) -> bool {
        match c {
            Callees::Direct(g) => self.reaches_fork(*g),
            Callees::Set(s) => self.set_reaches[s.id],
        }
    }

    /// The chain from `f` to a fork import (empty when `f` is not on a path).
    pub fn chain(&self, f: FunctionId) -> Vec<FunctionId> {
        let mut out = Vec::new();
        let mut cur = f;
        while let Some(next) = self.on_path.get(&cur) {
            out.push(cur);
            cur = *next;
        }
        if !out.is_empty() {
            out.push(cur);
        }
        out
    }
}

/// What makes two indirect calls reach the same functions: the type, and
/// for `call_indirect` the table and the constant slot (when it matters).
type SetKey = (TypeId, Option<(TableId, Option<u64>)>);

enum RawCall {
    Direct(FunctionId),
    Indirect(TypeId, TableId, Option<u64>),
    Ref(TypeId),
}

fn place(tc: &mut TableContents, offset: u64, funcs: &[Option<FunctionId>]) {
    for (i, f) in funcs.iter().enumerate() {
        if let Some(f) = f {
            tc.slots.insert(offset + i as u64, *f);
        }
    }
}

fn mark_unknown(tables: &mut BTreeMap<TableId, TableContents>, t: TableId) {
    if let Some(tc) = tables.get_mut(&t) {
        tc.unknown = true;
    }
}

fn element_functions(items: &ElementItems) -> Vec<Option<FunctionId>> {
    match items {
        ElementItems::Functions(v) => v.iter().copied().map(Some).collect(),
        ElementItems::Expressions(_, v) => v
            .iter()
            .map(|e| match e {
                ConstExpr::RefFunc(f) => Some(*f),
                _ => None,
            })
            .collect(),
    }
}

/// A constant table index pushed right before the call.
fn const_slot(instrs: &[(Instr, walrus::InstrLocId)], pos: usize) -> Option<u64> {
    match instrs.get(pos.checked_sub(1)?)?.0 {
        Instr::Const(walrus::ir::Const {
            value: Value::I32(k),
        }) => Some(k as u32 as u64),
        Instr::Const(walrus::ir::Const {
            value: Value::I64(k),
        }) => Some(k as u64),
        _ => None,
    }
}

/// Functions that can end up in a table or a typed reference: imports,
/// exports, element-segment members and `ref.func` targets.
fn escaping_functions(module: &Module) -> BTreeSet<FunctionId> {
    let mut s = BTreeSet::new();
    for f in module.funcs.iter() {
        if matches!(f.kind, FunctionKind::Import(_)) {
            s.insert(f.id());
        }
    }
    for e in module.exports.iter() {
        if let walrus::ExportItem::Function(f) = e.item {
            s.insert(f);
        }
    }
    for e in module.elements.iter() {
        s.extend(element_functions(&e.items).into_iter().flatten());
    }
    for g in module.globals.iter() {
        if let walrus::GlobalKind::Local(ConstExpr::RefFunc(f)) = g.kind {
            s.insert(f);
        }
    }
    for (_, f) in module.funcs.iter_local() {
        for seq in crate::tree::all_seqs(f) {
            for (instr, _) in f.block(seq).instrs.iter() {
                if let Instr::RefFunc(r) = instr {
                    s.insert(r.func);
                }
            }
        }
    }
    s
}

fn same_signature(module: &Module, a: TypeId, b: TypeId) -> bool {
    let (ta, tb) = (module.types.get(a), module.types.get(b));
    ta.params() == tb.params() && ta.results() == tb.results()
}
