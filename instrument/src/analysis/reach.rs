//! Which functions might reach a fork import, from the raw bytes, before
//! anything is parsed into walrus: a superset of the exact fork-path set
//! (`callgraph.rs`), cheap enough to decide which function bodies walrus
//! needs at all. Direct calls are edges; a `call_indirect` or `call_ref`
//! of a signature reaches every function of that signature that can
//! escape into a table or a reference (imports, exports, element segment
//! members, `ref.func` targets), whatever the table. The call graph
//! proper, on walrus's module, narrows indirect calls by table and slot;
//! the code facts gathered here ([`BodyFacts`]) stand in for the bodies
//! walrus is not given.

use std::collections::{HashMap, VecDeque};

/// What one function body contributes to the call graph.
#[derive(Debug, Default)]
pub struct BodyFacts {
    /// Functions it calls directly (calls and tail calls).
    pub direct: Vec<u32>,
    /// Type indices of its indirect calls and `call_ref`s.
    pub indirect: Vec<u32>,
    /// Tables its code can change (`table.set`/`fill`/`grow`/`copy`/`init`).
    pub tables_changed: Vec<u32>,
    /// Functions its code takes a reference to (`ref.func`).
    pub ref_funcs: Vec<u32>,
}

impl BodyFacts {
    /// Records what `op` contributes.
    pub fn note(&mut self, op: &wasmparser::Operator<'_>) {
        use wasmparser::Operator as O;
        match *op {
            O::Call { function_index } | O::ReturnCall { function_index } => {
                self.direct.push(function_index)
            }
            O::CallIndirect { type_index, .. }
            | O::ReturnCallIndirect { type_index, .. }
            | O::CallRef { type_index }
            | O::ReturnCallRef { type_index } => self.indirect.push(type_index),
            O::TableSet { table }
            | O::TableFill { table }
            | O::TableGrow { table }
            | O::TableInit { table, .. } => self.tables_changed.push(table),
            O::TableCopy { dst_table, .. } => self.tables_changed.push(dst_table),
            O::RefFunc { function_index } => self.ref_funcs.push(function_index),
            _ => {}
        }
    }
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
}

/// Per defined function (code-section order), whether it might reach a
/// fork import.
pub fn might_reach(module: &ModuleFacts, bodies: &[&BodyFacts]) -> Vec<bool> {
    let n = module.signature.len();
    let imported = module.imported as usize;
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
    // Reverse edges: the direct callers of each function, and the callers
    // by signature.
    let mut callers: Vec<Vec<u32>> = vec![Vec::new(); n];
    let mut sig_callers: HashMap<u32, Vec<u32>> = HashMap::new();
    for (i, b) in bodies.iter().enumerate() {
        let caller = (imported + i) as u32;
        for g in &b.direct {
            if let Some(c) = callers.get_mut(*g as usize) {
                c.push(caller);
            }
        }
        for t in &b.indirect {
            if let Some(sig) = module.type_signature.get(*t as usize) {
                sig_callers.entry(*sig).or_default().push(caller);
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
        // An escaping function is reached by every indirect call of its
        // signature.
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
            .might_reach
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
    fn nothing_is_recorded_without_a_fork_import() {
        let got = reach(r#"(module (func $a) (func $b (call $a)))"#);
        assert!(got.is_empty());
    }
}
