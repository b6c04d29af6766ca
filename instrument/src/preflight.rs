//! Checks on the raw bytes before anything is parsed into walrus: one
//! validation (which also records the operand types the transform needs,
//! see `walrus_gaps::operand_types`), earlier instrumentation (ours or
//! Asyncify's), proposals walrus cannot read, and which fork imports the
//! module really has.
//!
//! walrus 0.28 panics (`unimplemented!`) on the operators of a few
//! proposals and silently drops `shared` from types, so a module using one
//! of [`UNSUPPORTED`] is refused here with the proposal named, never handed
//! to walrus.

use crate::analysis::reach::{self, BodyFacts, ModuleFacts, Segment};
use crate::walrus_gaps::operand_types::{self, OperandTypes};
use crate::{Config, Error, ImportName, Result};
use forkify_abi::{ASYNCIFY_PREFIX, EXPORT_PREFIX, SECTION_NAME};
use rayon::prelude::*;
use std::collections::HashMap;
use wasmparser::{
    CompositeInnerType, ElementItems, ElementKind, ExternalKind, FunctionBody, Parser, Payload,
    TypeRef, ValType, ValidPayload, Validator, WasmFeatures,
};

/// Proposals the instrumenter refuses, with their names for messages.
pub const UNSUPPORTED: [(WasmFeatures, &str); 4] = [
    (WasmFeatures::STACK_SWITCHING, "stack switching"),
    (
        WasmFeatures::SHARED_EVERYTHING_THREADS,
        "shared-everything threads",
    ),
    (WasmFeatures::MEMORY_CONTROL, "memory control"),
    (WasmFeatures::CUSTOM_DESCRIPTORS, "custom descriptors"),
];

/// The features forkify accepts in input modules: everything walrus 0.28
/// can represent, i.e. every core-module feature but [`UNSUPPORTED`].
pub fn features() -> WasmFeatures {
    let mut f = WasmFeatures::all();
    for (feature, _) in UNSUPPORTED {
        f.remove(feature);
    }
    f.remove(WasmFeatures::COMPONENT_MODEL);
    f
}

/// What preflight learned.
pub struct Preflight {
    /// The configured fork imports that the module imports, as `module.name`.
    pub fork_imports_found: Vec<String>,
    /// Operand types of every function body that might reach a fork import,
    /// recorded on the validation pass when the module has a fork import
    /// and `operand_types` was asked for (empty otherwise).
    pub facts: OperandTypes,
    /// Recorded with the operand types (else empty): per defined function,
    /// whether it reaches a fork import (`analysis::reach`) ...
    pub reaches: Vec<bool>,
    /// ... whether it is one ABI 1 §8 may refuse (it reaches a fork import
    /// and has something §8 is about, [`BodyFacts::may_refuse`]) ...
    pub may_refuse: Vec<bool>,
    /// ... the byte range of each body (its size included) ...
    pub bodies: Vec<std::ops::Range<usize>>,
    /// ... and the code facts of all bodies together: the tables code can
    /// change and the functions it takes references to (by index).
    pub code: BodyFacts,
    /// Functions that escape through the sections (by index).
    pub escaping: Vec<u32>,
    /// Number of imported functions.
    pub imported: u32,
}

impl Preflight {
    /// The function indices of the defined functions `which` marks (one
    /// flag per defined function, as [`Preflight::reaches`]).
    pub fn marked<'a>(&self, which: &'a [bool]) -> impl Iterator<Item = u32> + 'a {
        let imported = self.imported;
        which
            .iter()
            .enumerate()
            .filter(|(_, m)| **m)
            .map(move |(i, _)| imported + i as u32)
    }
}

/// Validates `wasm` (one pass over its bytes; function bodies validated in
/// parallel) and refuses modules forkify must not touch. With
/// `operand_types`, records them for a module that has a fork import.
pub fn check(wasm: &[u8], config: &Config, operand_types: bool) -> Result<Preflight> {
    let mut validator = Validator::new_with_features(features());
    let mut found = Vec::new();
    let mut bodies = Vec::new();
    let mut module = ModuleFacts::default();
    let mut signatures: HashMap<(Vec<ValType>, Vec<ValType>), u32> = HashMap::new();
    for payload in Parser::new(0).parse_all(wasm) {
        let payload = payload.map_err(|e| refusal(wasm, e))?;
        let valid = validator.payload(&payload).map_err(|e| refusal(wasm, e))?;
        if let ValidPayload::Func(func, body) = valid {
            bodies.push((func, body));
            continue;
        }
        let err = |e| refusal(wasm, e);
        match payload {
            Payload::CustomSection(c) if c.name() == SECTION_NAME => {
                return Err(Error::AlreadyInstrumented(format!(
                    "a `{SECTION_NAME}` custom section"
                )));
            }
            Payload::TypeSection(types) => {
                for group in types {
                    for sub in group.map_err(err)?.into_types() {
                        let sig = match &sub.composite_type.inner {
                            CompositeInnerType::Func(f) => {
                                let key = (f.params().to_vec(), f.results().to_vec());
                                let next = signatures.len() as u32;
                                *signatures.entry(key).or_insert(next)
                            }
                            // Never a function's type: a number of its own.
                            _ => u32::MAX - module.type_signature.len() as u32,
                        };
                        module.type_signature.push(sig);
                    }
                }
            }
            Payload::ExportSection(exports) => {
                for e in exports {
                    let e = e.map_err(err)?;
                    if e.name.starts_with(EXPORT_PREFIX) {
                        return Err(Error::AlreadyInstrumented(format!(
                            "an export `{}`",
                            e.name
                        )));
                    }
                    if e.name.starts_with(ASYNCIFY_PREFIX) {
                        return Err(Error::Asyncify(e.name.to_string()));
                    }
                    if e.kind == ExternalKind::Func || e.kind == ExternalKind::FuncExact {
                        module.escaping.push(e.index);
                    }
                    if e.kind == ExternalKind::Table {
                        if let Some(shared) = module.table_shared.get_mut(e.index as usize) {
                            *shared = true;
                        }
                    }
                }
            }
            Payload::ImportSection(imports) => {
                for imp in imports.into_imports() {
                    let imp = imp.map_err(err)?;
                    if let TypeRef::Table(_) = imp.ty {
                        module.table_shared.push(true);
                    }
                    let (TypeRef::Func(t) | TypeRef::FuncExact(t)) = imp.ty else {
                        continue;
                    };
                    let index = module.signature.len() as u32;
                    module.signature.push(module.type_signature[t as usize]);
                    module.escaping.push(index);
                    module.imported += 1;
                    let name = ImportName::new(imp.module, imp.name);
                    if config.fork_imports.contains(&name) {
                        module.forks.push(index);
                        if !found.contains(&name.to_string()) {
                            found.push(name.to_string());
                        }
                    }
                }
            }
            Payload::FunctionSection(funcs) => {
                for t in funcs {
                    module
                        .signature
                        .push(module.type_signature[t.map_err(err)? as usize]);
                }
            }
            Payload::TableSection(tables) => {
                for t in tables {
                    t.map_err(err)?;
                    module.table_shared.push(false);
                }
            }
            Payload::ElementSection(elements) => {
                for e in elements {
                    let e = e.map_err(err)?;
                    let mut items = Vec::new();
                    match e.items {
                        ElementItems::Functions(fs) => {
                            for f in fs {
                                let f = f.map_err(err)?;
                                module.escaping.push(f);
                                items.push(Some(f));
                            }
                        }
                        ElementItems::Expressions(_, exprs) => {
                            for expr in exprs {
                                let expr = expr.map_err(err)?;
                                ref_funcs(&expr, &mut module.escaping).map_err(err)?;
                                items.push(ref_func(&expr));
                            }
                        }
                    }
                    if let ElementKind::Active {
                        table_index,
                        offset_expr,
                    } = e.kind
                    {
                        module.segments.push(Segment {
                            table: table_index.unwrap_or(0),
                            offset: constant(&offset_expr),
                            funcs: items,
                        });
                    }
                }
            }
            Payload::GlobalSection(globals) => {
                for g in globals {
                    ref_funcs(&g.map_err(err)?.init_expr, &mut module.escaping).map_err(err)?;
                }
            }
            _ => {}
        }
    }
    let record = operand_types && !found.is_empty();
    let ranges: Vec<std::ops::Range<usize>> = if record {
        bodies.iter().map(|(_, b)| body_range(wasm, b)).collect()
    } else {
        Vec::new()
    };
    let parts = bodies
        .into_par_iter()
        .map(|(func, body)| operand_types::validate_body(func, &body, record))
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| refusal(wasm, e))?;
    found.sort();
    let (types, calls): (Vec<_>, Vec<_>) = parts.into_iter().unzip();
    let reaches = if record {
        reach::reaches(&module, &calls.iter().collect::<Vec<_>>())
    } else {
        Vec::new()
    };
    let may_refuse = calls
        .iter()
        .zip(&reaches)
        .map(|(c, r)| *r && c.may_refuse)
        .collect();
    let mut code = BodyFacts::default();
    for c in calls {
        code.tables_changed.extend(c.tables_changed);
        code.ref_funcs.extend(c.ref_funcs);
    }
    Ok(Preflight {
        fork_imports_found: found,
        // Operand types are asked only about fork-path functions.
        facts: OperandTypes::join(
            types
                .into_iter()
                .zip(&reaches)
                .filter_map(|(t, keep)| keep.then_some(t))
                .collect(),
        ),
        reaches,
        may_refuse,
        bodies: ranges,
        code,
        escaping: module.escaping,
        imported: module.imported,
    })
}

/// A body's bytes with the size in front of them.
fn body_range(wasm: &[u8], body: &FunctionBody<'_>) -> std::ops::Range<usize> {
    let r = body.range();
    // The size is a LEB128 of at most five bytes that ends right before.
    let mut start = r.start - 1;
    while start > r.start.saturating_sub(5) && wasm[start - 1] & 0x80 != 0 {
        start -= 1;
    }
    start..r.end
}

/// The function of a constant expression that is exactly `ref.func F`.
fn ref_func(expr: &wasmparser::ConstExpr<'_>) -> Option<u32> {
    let mut ops = expr.get_operators_reader();
    match (ops.read().ok()?, ops.read().ok()?) {
        (wasmparser::Operator::RefFunc { function_index }, wasmparser::Operator::End) => {
            Some(function_index)
        }
        _ => None,
    }
}

/// The value of a constant expression that is exactly one `i32.const` or
/// `i64.const`.
fn constant(expr: &wasmparser::ConstExpr<'_>) -> Option<u64> {
    let mut ops = expr.get_operators_reader();
    match (ops.read().ok()?, ops.read().ok()?) {
        (wasmparser::Operator::I32Const { value }, wasmparser::Operator::End) => {
            Some(value as u32 as u64)
        }
        (wasmparser::Operator::I64Const { value }, wasmparser::Operator::End) => Some(value as u64),
        _ => None,
    }
}

/// Appends the functions a constant expression takes a reference to.
fn ref_funcs(
    expr: &wasmparser::ConstExpr<'_>,
    out: &mut Vec<u32>,
) -> std::result::Result<(), wasmparser::BinaryReaderError> {
    let mut ops = expr.get_operators_reader();
    while !ops.eof() {
        if let wasmparser::Operator::RefFunc { function_index } = ops.read()? {
            out.push(function_index);
        }
    }
    Ok(())
}

/// Why a module failed validation with [`features`]: a proposal forkify
/// does not support (the module validates once it is enabled), or plain
/// invalidity. Runs only on the failure path, so the extra validations cost
/// nothing for modules that are accepted.
fn refusal(wasm: &[u8], first: wasmparser::BinaryReaderError) -> Error {
    if Parser::is_component(wasm) {
        return Error::InvalidWasm(
            "this is a WebAssembly component, not a core module; instrument its core modules"
                .into(),
        );
    }
    let all = features()
        | UNSUPPORTED
            .iter()
            .fold(WasmFeatures::empty(), |a, f| a | f.0);
    if Validator::new_with_features(all)
        .validate_all(wasm)
        .is_err()
    {
        return Error::InvalidWasm(first.to_string());
    }
    // Valid with everything: name each proposal the module cannot do without.
    let needed: Vec<&str> = UNSUPPORTED
        .iter()
        .filter(|(f, _)| {
            Validator::new_with_features(all - *f)
                .validate_all(wasm)
                .is_err()
        })
        .map(|(_, name)| *name)
        .collect();
    Error::UnsupportedProposal {
        proposal: needed.first().copied().unwrap_or("a post-MVP"),
        found: if needed.len() > 1 {
            format!("also {}; first use: {first}", needed[1..].join(", "))
        } else {
            format!("first use: {first}")
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wat(text: &str) -> Vec<u8> {
        wat::parse_str(text).expect("wat")
    }

    #[test]
    fn walrus_panicking_proposals_are_refused_by_name() {
        let m = wat(r#"(module (memory 1) (func (memory.discard (i32.const 0) (i32.const 0))))"#);
        match check(&m, &Config::default(), false) {
            Err(Error::UnsupportedProposal { proposal, found }) => {
                assert_eq!(proposal, "memory control");
                assert!(found.contains("offset"), "{found}");
            }
            Err(e) => panic!("wrong refusal: {e}"),
            Ok(_) => panic!("accepted"),
        }
        let invalid = wat(r#"(module (func (result i32)))"#);
        assert!(matches!(
            check(&invalid, &Config::default(), false),
            Err(Error::InvalidWasm(_))
        ));
    }
}
