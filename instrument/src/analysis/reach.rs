//! Which functions reach a fork import, from the raw bytes, before
//! anything is parsed into walrus: the same set as the call graph proper
//! (`callgraph.rs`), by the same rules, so that walrus needs to be given
//! only those bodies and refusals can be looked for before anything is
//! parsed. Direct calls are edges; a `call_indirect` through a table whose
//! contents are known (not imported, exported or changed by code) reaches
//! the functions its active segments place there (in its constant slot, if
//! it has one), else, like a `call_ref`, every function of its signature
//! that can escape (imports, exports, element segment members, `ref.func`
//! targets). The pipeline checks that both sets agree. The code facts
//! gathered here ([`BodyFacts`]) also stand in for the bodies walrus is not
//! given.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

/// An indirect call: `call_indirect` through `table`, or `call_ref`
/// (`table` is `None`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Indirect {
    /// The call's type index.
    pub ty: u32,
    /// The table of a `call_indirect`.
    pub table: Option<u32>,
    /// The constant slot pushed right before a `call_indirect`.
    pub slot: Option<u64>,
}

/// What one function body contributes to the call graph.
#[derive(Debug, Default)]
pub struct BodyFacts {
    /// Functions it calls directly (calls and tail calls).
    pub direct: Vec<u32>,
    /// Its indirect calls and `call_ref`s.
    pub indirect: Vec<Indirect>,
    /// Tables its code can change (`table.set`/`fill`/`grow`/`copy`/`init`).
    pub tables_changed: Vec<u32>,
    /// Functions its code takes a reference to (`ref.func`).
    pub ref_funcs: Vec<u32>,
    /// Whether the function has anything ABI 1 §8 may refuse: a
    /// reference-typed parameter, local, result or block type, a reference
    /// on the operand stack at a call, or a call in a legacy handler. Only
    /// such functions are planned by the refusal screen.
    pub may_refuse: bool,
    /// The constant the previous operator pushed, if it was one.
    last_const: Option<u64>,
}

impl BodyFacts {
    /// Records what `op` contributes.
    pub fn note(&mut self, op: &wasmparser::Operator<'_>) {
        use wasmparser::Operator as O;
        let slot = self.last_const.take();
        match *op {
            O::Call { function_index } | O::ReturnCall { function_index } => {
                self.direct.push(function_index)
            }
            O::CallIndirect {
                type_index,
                table_index,
            }
            | O::ReturnCallIndirect {
                type_index,
                table_index,
            } => self.indirect.push(Indirect {
                ty: type_index,
                table: Some(table_index),
                slot,
            }),
            O::CallRef { type_index } | O::ReturnCallRef { type_index } => {
                self.indirect.push(Indirect {
                    ty: type_index,
                    table: None,
                    slot: None,
                })
            }
            O::TableSet { table }
            | O::TableFill { table }
            | O::TableGrow { table }
            | O::TableInit { table, .. } => self.tables_changed.push(table),
            O::TableCopy { dst_table, .. } => self.tables_changed.push(dst_table),
            O::RefFunc { function_index } => self.ref_funcs.push(function_index),
            O::I32Const { value } => self.last_const = Some(value as u32 as u64),
            O::I64Const { value } => self.last_const = Some(value as u64),
            _ => {}
        }
    }
}

/// An active element segment: where it puts which functions.
#[derive(Debug, Default)]
pub struct Segment {
    /// Its table.
    pub table: u32,
    /// Its offset, when it is a constant.
    pub offset: Option<u64>,
    /// Its items (`None` for an item that is not a `ref.func`).
    pub funcs: Vec<Option<u32>>,
}

/// What the module's sections (not its code) say about functions.
#[derive(Debug, Default)]
pub struct ModuleFacts {
    /// Per function index (imports first): its signature, as a number that
    /// is equal for equal parameter and result lists.
    pub signature: Vec<u32>,
    /// Per type index: its signature number.
    pub type_signature: Vec<u32>,
    /// Number of imported functions.
    pub imported: u32,
    /// Functions that escape through the sections: imports, exports,
    /// element segment members, `ref.func` in global initializers.
    pub escaping: Vec<u32>,
    /// The fork imports, by function index.
    pub forks: Vec<u32>,
    /// Per table: whether it is imported or exported (contents unknown).
    pub table_shared: Vec<bool>,
    /// Active element segments, in order.
    pub segments: Vec<Segment>,
}

/// What a table can hold.
#[derive(Default)]
struct Contents {
    slots: BTreeMap<u64, u32>,
    anywhere: BTreeSet<u32>,
    unknown: bool,
}

/// Per defined function (code-section order), whether it reaches a fork
/// import.
pub fn reaches(module: &ModuleFacts, bodies: &[&BodyFacts]) -> Vec<bool> {
    let n = module.signature.len();
    let imported = module.imported as usize;
    let sig = |ty: u32| module.type_signature.get(ty as usize).copied();
    let mut escapes = vec![false; n];
    for f in module
        .escaping
        .iter()
        .chain(bodies.iter().flat_map(|b| b.ref_funcs.iter()))
    {
        if let Some(e) = escapes.get_mut(*f as usize) {
            *e = true;
        }
    }
    let mut tables: Vec<Contents> = module
        .table_shared
        .iter()
        .map(|shared| Contents {
            unknown: *shared,
            ..Default::default()
        })
        .collect();
    for s in &module.segments {
        let Some(tc) = tables.get_mut(s.table as usize) else {
            continue;
        };
        match s.offset {
            Some(o) => {
                for (i, f) in s.funcs.iter().enumerate() {
                    if let Some(f) = f {
                        tc.slots.insert(o + i as u64, *f);
                    }
                }
            }
            None => tc.anywhere.extend(s.funcs.iter().flatten()),
        }
    }
    for t in bodies.iter().flat_map(|b| b.tables_changed.iter()) {
        if let Some(tc) = tables.get_mut(*t as usize) {
            tc.unknown = true;
        }
    }
    // Reverse edges: the direct callers of each function; the callers of
    // each signature's escaping functions (`call_ref`, and `call_indirect`
    // through a table of unknown contents); and, for tables whose contents
    // are known, the callers of each function placed there.
    let mut callers: Vec<Vec<u32>> = vec![Vec::new(); n];
    let mut sig_callers: HashMap<u32, Vec<u32>> = HashMap::new();
    let mut member_callers: HashMap<u32, Vec<u32>> = HashMap::new();
    let mut members: HashMap<(u32, u32, Option<u64>), Vec<u32>> = HashMap::new();
    for (i, b) in bodies.iter().enumerate() {
        let caller = (imported + i) as u32;
        for g in &b.direct {
            if let Some(c) = callers.get_mut(*g as usize) {
                c.push(caller);
            }
        }
        for call in &b.indirect {
            let Some(s) = sig(call.ty) else { continue };
            let known = call
                .table
                .and_then(|t| tables.get(t as usize).map(|tc| (t, tc)))
                .filter(|(_, tc)| !tc.unknown);
            let Some((t, tc)) = known else {
                sig_callers.entry(s).or_default().push(caller);
                continue;
            };
            let those = members.entry((s, t, call.slot)).or_insert_with(|| {
                let mut m: BTreeSet<u32> = tc.anywhere.clone();
                match call.slot {
                    Some(k) => m.extend(tc.slots.get(&k)),
                    None => m.extend(tc.slots.values()),
                }
                m.into_iter()
                    .filter(|g| module.signature.get(*g as usize) == Some(&s))
                    .collect()
            });
            for g in those.iter() {
                member_callers.entry(*g).or_default().push(caller);
            }
        }
    }
    let mut reached = vec![false; n];
    let mut queue: VecDeque<u32> = VecDeque::new();
    for f in &module.forks {
        if let Some(r) = reached.get_mut(*f as usize) {
            *r = true;
            queue.push_back(*f);
        }
    }
    while let Some(g) = queue.pop_front() {
        let mut next = std::mem::take(&mut callers[g as usize]);
        next.extend(member_callers.remove(&g).unwrap_or_default());
        // An escaping function is reached by every indirect call of its
        // signature whose callees are not known more closely.
        if escapes[g as usize] {
            if let Some(c) = sig_callers.remove(&module.signature[g as usize]) {
                next.extend(c);
            }
        }
        for f in next {
            if !reached[f as usize] {
                reached[f as usize] = true;
                queue.push_back(f);
            }
        }
    }
    reached.split_off(imported.min(n))
}

#[cfg(test)]
mod tests {
    use crate::{preflight, Config};

    fn reach(wat: &str) -> Vec<bool> {
        let wasm = wat::parse_str(wat).expect("wat");
        preflight::check(&wasm, &Config::default(), true)
            .expect("preflight")
            .reaches
    }

    #[test]
    fn direct_and_indirect_callers_by_signature() {
        let got = reach(
            r#"(module
                 (import "kernel" "kernel_fork" (func $fork (result i32)))
                 (type $t (func (result i32)))
                 (type $u (func (param i32)))
                 (table 2 funcref)
                 (elem (i32.const 0) $a)
                 (func $a (type $t) (call $fork))
                 (func $b (drop (call $a)))
                 (func $c (type $u))
                 (func $d (drop (call_indirect (type $t) (i32.const 0))))
                 (func $e (call_indirect (type $u) (i32.const 0) (i32.const 1)))
                 (func $f (call $d)))"#,
        );
        assert_eq!(got, [true, true, false, true, false, true]);
    }

    #[test]
    fn a_function_stored_at_run_time_escapes() {
        // $a is in no active segment and not exported: it reaches the table
        // only through $g's ref.func (declared, as validation requires).
        let got = reach(
            r#"(module
                 (import "kernel" "kernel_fork" (func $fork (result i32)))
                 (type $t (func (result i32)))
                 (table 1 funcref)
                 (elem declare func $a)
                 (func $a (type $t) (call $fork))
                 (func $g (table.set (i32.const 0) (ref.func $a)))
                 (func $h (drop (call_indirect (type $t) (i32.const 0)))))"#,
        );
        assert_eq!(got, [true, false, true]);
    }

    #[test]
    fn a_known_table_narrows_indirect_calls_to_its_slots() {
        // Slot 1 holds $b, which never forks; slot 0 holds $a, which does.
        // Through an exported table any function of the type may be there.
        let module = |export: &str| {
            format!(
                r#"(module
                 (import "kernel" "kernel_fork" (func $fork (result i32)))
                 (type $t (func (result i32)))
                 (table $tb 2 funcref) {export}
                 (elem (i32.const 0) $a $b)
                 (func $a (type $t) (call $fork))
                 (func $b (type $t) (i32.const 7))
                 (func $slot1 (drop (call_indirect (type $t) (i32.const 1))))
                 (func $slot0 (drop (call_indirect (type $t) (i32.const 0))))
                 (func $any (param i32) (drop (call_indirect (type $t) (local.get 0)))))"#
            )
        };
        assert_eq!(reach(&module("")), [true, false, false, true, true]);
        assert_eq!(
            reach(&module(r#"(export "t" (table $tb))"#)),
            [true, false, true, true, true]
        );
    }

    #[test]
    fn nothing_is_recorded_without_a_fork_import() {
        let got = reach(r#"(module (func $a) (func $b (call $a)))"#);
        assert!(got.is_empty());
    }
}
