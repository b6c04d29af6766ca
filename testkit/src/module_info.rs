//! A module as wasmparser sees it, for shape assertions: per function its
//! locals, operators (rendered so that type and function indices read as
//! what they point to), calls and nesting; imports, exports, globals; and
//! which functions can reach a fork import by the ABI's rule (a reference
//! for the call graph).

use std::collections::{BTreeMap, BTreeSet};

use wasmparser::{
    BlockType, CompositeInnerType, ElementItems, ExternalKind, KnownCustom, Name, Operator, Parser,
    Payload, TypeRef, ValType,
};

/// One defined function, as wasmparser sees it.
#[derive(Debug, Clone)]
pub struct FuncInfo {
    /// Index in the function index space.
    pub index: u32,
    /// From the name section, if any.
    pub name: Option<String>,
    /// Declared locals (parameters excluded), run-length as in the binary.
    pub locals: Vec<(u32, ValType)>,
    /// Operators, rendered so that type and function indices read as what
    /// they point to (the type section may be reordered or deduplicated).
    pub ops: Vec<String>,
    /// Raw operators for scans.
    pub raw_ops: Vec<RawOp>,
    /// The body's bytes (locals and code).
    pub body: Vec<u8>,
    /// Functions it calls directly (`call`, `return_call`).
    pub direct_calls: Vec<u32>,
    /// Types (rendered) it calls through a table or a reference
    /// (`call_indirect`, `call_ref` and their `return_` forms).
    pub indirect_calls: Vec<String>,
}

impl FuncInfo {
    /// Declared locals counted per type.
    pub fn locals_per_type(&self) -> BTreeMap<String, u32> {
        let mut m = BTreeMap::new();
        for (n, t) in &self.locals {
            *m.entry(format!("{t:?}")).or_insert(0) += n;
        }
        m
    }

    /// The deepest nesting of block, loop, if and try constructs.
    pub fn max_depth(&self) -> u32 {
        let (mut depth, mut max) = (0u32, 0u32);
        for op in &self.raw_ops {
            match op {
                RawOp::Open => {
                    depth += 1;
                    max = max.max(depth);
                }
                RawOp::End => depth = depth.saturating_sub(1),
                _ => {}
            }
        }
        max
    }
}

/// The few operator facts the shape tests scan for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RawOp {
    /// block, loop, if, try_table, try.
    Open,
    /// end.
    End,
    /// A store with its width in bytes and memarg offset.
    Store { bytes: u32, offset: u64, int: bool },
    /// Anything else.
    Other,
}

/// A module, as wasmparser sees it.
#[derive(Debug, Clone, Default)]
pub struct ModuleInfo {
    /// Imported functions.
    pub imported_funcs: u32,
    /// Imported functions as `module.name`, in index order.
    pub func_imports: Vec<String>,
    /// Functions named in element segments.
    pub elem_funcs: Vec<u32>,
    /// Defined functions in index order.
    pub funcs: Vec<FuncInfo>,
    /// Exports: name, kind, index.
    pub exports: Vec<(String, ExternalKind, u32)>,
    /// Types of every function (imported and defined), rendered.
    pub func_types: Vec<String>,
    /// Defined globals: (type, mutable).
    pub globals: Vec<(ValType, bool)>,
    /// Whether memory 0 is 64-bit.
    pub memory64: bool,
}

impl ModuleInfo {
    /// Parses `bytes` (which must be valid).
    pub fn parse(bytes: &[u8]) -> ModuleInfo {
        let mut m = ModuleInfo::default();
        let mut types: Vec<String> = Vec::new();
        let mut func_type_idx: Vec<u32> = Vec::new();
        let mut names: BTreeMap<u32, String> = BTreeMap::new();
        let mut bodies = Vec::new();
        let mut saw_memory = false;
        for payload in Parser::new(0).parse_all(bytes) {
            match payload.expect("parse") {
                Payload::TypeSection(r) => {
                    for group in r {
                        for sub in group.expect("type").into_types() {
                            types.push(match &sub.composite_type.inner {
                                CompositeInnerType::Func(ft) => {
                                    format!("{:?}->{:?}", ft.params(), ft.results())
                                }
                                other => format!("{other:?}"),
                            });
                        }
                    }
                }
                Payload::ImportSection(r) => {
                    for imp in r.into_imports() {
                        let imp = imp.expect("import");
                        match imp.ty {
                            TypeRef::Func(t) => {
                                m.imported_funcs += 1;
                                m.func_imports.push(format!("{}.{}", imp.module, imp.name));
                                func_type_idx.push(t);
                            }
                            TypeRef::Memory(mt) if !saw_memory => {
                                saw_memory = true;
                                m.memory64 = mt.memory64;
                            }
                            _ => {}
                        }
                    }
                }
                Payload::FunctionSection(r) => {
                    for t in r {
                        func_type_idx.push(t.expect("function"));
                    }
                }
                Payload::MemorySection(r) => {
                    for mt in r {
                        let mt = mt.expect("memory");
                        if !saw_memory {
                            saw_memory = true;
                            m.memory64 = mt.memory64;
                        }
                    }
                }
                Payload::GlobalSection(r) => {
                    for g in r {
                        let g = g.expect("global");
                        m.globals.push((g.ty.content_type, g.ty.mutable));
                    }
                }
                Payload::ExportSection(r) => {
                    for e in r {
                        let e = e.expect("export");
                        m.exports.push((e.name.to_string(), e.kind, e.index));
                    }
                }
                Payload::ElementSection(r) => {
                    for e in r {
                        if let ElementItems::Functions(fs) = e.expect("element").items {
                            m.elem_funcs
                                .extend(fs.into_iter().map(|f| f.expect("elem func")));
                        }
                    }
                }
                Payload::CodeSectionEntry(body) => bodies.push(body),
                Payload::CustomSection(c) => {
                    if let KnownCustom::Name(r) = c.as_known() {
                        for n in r.into_iter().flatten() {
                            if let Name::Function(map) = n {
                                for naming in map.into_iter().flatten() {
                                    names.insert(naming.index, naming.name.to_string());
                                }
                            }
                        }
                    }
                }
                _ => {}
            }
        }
        m.func_types = func_type_idx
            .iter()
            .map(|&t| types.get(t as usize).cloned().unwrap_or_default())
            .collect();
        let func_name = |i: u32| {
            names
                .get(&i)
                .cloned()
                .unwrap_or_else(|| format!("func[{i}]"))
        };
        for (n, body) in bodies.into_iter().enumerate() {
            let index = m.imported_funcs + n as u32;
            let mut locals = Vec::new();
            for l in body.get_locals_reader().expect("locals") {
                locals.push(l.expect("local"));
            }
            let mut ops = Vec::new();
            let mut raw_ops = Vec::new();
            let mut direct_calls = Vec::new();
            let mut indirect_calls = Vec::new();
            let mut r = body.get_operators_reader().expect("operators");
            while !r.eof() {
                let op = r.read().expect("operator");
                raw_ops.push(raw_op(&op));
                match &op {
                    Operator::Call { function_index } | Operator::ReturnCall { function_index } => {
                        direct_calls.push(*function_index)
                    }
                    Operator::CallIndirect { type_index, .. }
                    | Operator::ReturnCallIndirect { type_index, .. }
                    | Operator::CallRef { type_index }
                    | Operator::ReturnCallRef { type_index } => indirect_calls
                        .push(types.get(*type_index as usize).cloned().unwrap_or_default()),
                    _ => {}
                }
                ops.push(render_op(&op, &types, &func_name));
            }
            m.funcs.push(FuncInfo {
                index,
                name: names.get(&index).cloned(),
                locals,
                ops,
                raw_ops,
                body: bytes[body.range()].to_vec(),
                direct_calls,
                indirect_calls,
            });
        }
        m
    }

    /// The defined functions that can reach one of `fork_imports`
    /// (`module.name`): direct calls, and table or reference calls of a type
    /// that a function in an element segment (active or declared) has (a
    /// superset of ABI §1's rule, exact for the fixtures: one table,
    /// constant segments).
    pub fn fork_path(&self, fork_imports: &[String]) -> BTreeSet<u32> {
        let mut on: BTreeSet<u32> = (0..self.imported_funcs)
            .filter(|&i| fork_imports.contains(&self.func_imports[i as usize]))
            .collect();
        let forks = on.clone();
        loop {
            let before = on.len();
            for f in &self.funcs {
                let reaches = f.direct_calls.iter().any(|c| on.contains(c))
                    || f.indirect_calls.iter().any(|ty| {
                        self.elem_funcs
                            .iter()
                            .any(|e| on.contains(e) && self.func_types[*e as usize] == *ty)
                    });
                if reaches {
                    on.insert(f.index);
                }
            }
            if on.len() == before {
                break;
            }
        }
        on.difference(&forks).copied().collect()
    }

    /// The defined function called `name` in the name section.
    pub fn func_named(&self, name: &str) -> Option<&FuncInfo> {
        self.funcs.iter().find(|f| f.name.as_deref() == Some(name))
    }

    /// The defined function with this index.
    pub fn func(&self, index: u32) -> Option<&FuncInfo> {
        index
            .checked_sub(self.imported_funcs)
            .and_then(|i| self.funcs.get(i as usize))
    }
}

fn block_type(bt: &BlockType, types: &[String]) -> String {
    match bt {
        BlockType::FuncType(i) => types.get(*i as usize).cloned().unwrap_or_default(),
        other => format!("{other:?}"),
    }
}

fn render_op(op: &Operator, types: &[String], func_name: &dyn Fn(u32) -> String) -> String {
    let ty = |i: &u32| types.get(*i as usize).cloned().unwrap_or_default();
    match op {
        Operator::Call { function_index } => format!("call {}", func_name(*function_index)),
        Operator::ReturnCall { function_index } => {
            format!("return_call {}", func_name(*function_index))
        }
        Operator::RefFunc { function_index } => format!("ref.func {}", func_name(*function_index)),
        Operator::CallIndirect {
            type_index,
            table_index,
        } => {
            format!("call_indirect {} table {table_index}", ty(type_index))
        }
        Operator::ReturnCallIndirect {
            type_index,
            table_index,
        } => {
            format!(
                "return_call_indirect {} table {table_index}",
                ty(type_index)
            )
        }
        Operator::CallRef { type_index } => format!("call_ref {}", ty(type_index)),
        Operator::ReturnCallRef { type_index } => format!("return_call_ref {}", ty(type_index)),
        Operator::Block { blockty } => format!("block {}", block_type(blockty, types)),
        Operator::Loop { blockty } => format!("loop {}", block_type(blockty, types)),
        Operator::If { blockty } => format!("if {}", block_type(blockty, types)),
        Operator::TryTable { try_table } => format!(
            "try_table {} {:?}",
            block_type(&try_table.ty, types),
            try_table.catches
        ),
        other => format!("{other:?}"),
    }
}

fn raw_op(op: &Operator) -> RawOp {
    use Operator as O;
    let store = |bytes: u32, offset: u64, int: bool| RawOp::Store { bytes, offset, int };
    match op {
        O::Block { .. } | O::Loop { .. } | O::If { .. } | O::TryTable { .. } | O::Try { .. } => {
            RawOp::Open
        }
        O::End => RawOp::End,
        O::I64Store { memarg } => store(8, memarg.offset, true),
        O::F64Store { memarg } => store(8, memarg.offset, false),
        O::I32Store { memarg } => store(4, memarg.offset, true),
        O::F32Store { memarg } => store(4, memarg.offset, false),
        O::V128Store { memarg } => store(16, memarg.offset, false),
        _ => RawOp::Other,
    }
}
