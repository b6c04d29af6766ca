//! What the harness reads from a module with wasmparser: sizes, declared
//! locals per function, names, and which functions touch an instrumenter's
//! state global (that is how both tools' instrumented functions are found,
//! with one rule for both).

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use wasmparser::{ExternalKind, KnownCustom, Name, Operator, Parser, Payload, TypeRef};

/// One defined function.
#[derive(Debug, Clone)]
pub struct Func {
    /// Index in the function index space (imports first).
    pub index: u32,
    /// Declared locals (parameters excluded).
    pub locals: u32,
    /// Distinct globals read or written by the body, sorted.
    pub globals: Vec<u32>,
}

/// A module's shape.
#[derive(Debug, Clone, Default)]
pub struct ModuleInfo {
    /// Whole-module bytes.
    pub size: u64,
    /// Bytes of the code section's payload.
    pub code_size: u64,
    /// Bytes of all custom sections (names, producers, debug info, …).
    pub custom_size: u64,
    /// Imported functions (they come first in the index space).
    pub imported_funcs: u32,
    /// Defined functions, in index order.
    pub funcs: Vec<Func>,
    /// Function names from the name section, by index.
    pub names: BTreeMap<u32, String>,
    /// Exported functions: name → index.
    pub func_exports: BTreeMap<String, u32>,
}

impl ModuleInfo {
    /// The defined function with this index.
    pub fn func(&self, index: u32) -> Option<&Func> {
        index
            .checked_sub(self.imported_funcs)
            .and_then(|i| self.funcs.get(i as usize))
    }

    /// The global that the body of the exported getter `export` reads
    /// (`wpk_fork_state` or `asyncify_get_state`).
    pub fn state_global(&self, export: &str) -> Option<u32> {
        let f = self.func(*self.func_exports.get(export)?)?;
        (f.globals.len() == 1).then(|| f.globals[0])
    }

    /// Defined functions that use `global`, except the exported control
    /// functions whose names start with `control_prefix`.
    pub fn users_of(&self, global: u32, control_prefix: &str) -> Vec<&Func> {
        let control: Vec<u32> = self
            .func_exports
            .iter()
            .filter(|(name, _)| name.starts_with(control_prefix))
            .map(|(_, &i)| i)
            .collect();
        self.funcs
            .iter()
            .filter(|f| f.globals.binary_search(&global).is_ok() && !control.contains(&f.index))
            .collect()
    }
}

/// Reads `wasm`.
pub fn read(wasm: &[u8]) -> Result<ModuleInfo> {
    let mut m = ModuleInfo {
        size: wasm.len() as u64,
        ..Default::default()
    };
    for payload in Parser::new(0).parse_all(wasm) {
        match payload.context("cannot parse the module")? {
            Payload::ImportSection(reader) => {
                for import in reader.into_imports() {
                    if matches!(import?.ty, TypeRef::Func(_) | TypeRef::FuncExact(_)) {
                        m.imported_funcs += 1;
                    }
                }
            }
            Payload::ExportSection(reader) => {
                for export in reader {
                    let export = export?;
                    if export.kind == ExternalKind::Func {
                        m.func_exports.insert(export.name.to_string(), export.index);
                    }
                }
            }
            Payload::CodeSectionStart { size, .. } => m.code_size = u64::from(size),
            Payload::CodeSectionEntry(body) => {
                let mut locals = 0u32;
                for group in body.get_locals_reader()? {
                    locals += group?.0;
                }
                let mut globals = Vec::new();
                let mut ops = body.get_operators_reader()?;
                while !ops.eof() {
                    match ops.read()? {
                        Operator::GlobalGet { global_index }
                        | Operator::GlobalSet { global_index } => globals.push(global_index),
                        _ => {}
                    }
                }
                globals.sort_unstable();
                globals.dedup();
                let index = m.imported_funcs + m.funcs.len() as u32;
                m.funcs.push(Func {
                    index,
                    locals,
                    globals,
                });
            }
            Payload::CustomSection(reader) => {
                m.custom_size += reader.data().len() as u64;
                if let KnownCustom::Name(names) = reader.as_known() {
                    for sub in names {
                        // A malformed name section only costs us the names.
                        let Ok(Name::Function(map)) = sub else {
                            continue;
                        };
                        for naming in map.into_iter().flatten() {
                            m.names.insert(naming.index, naming.name.to_string());
                        }
                    }
                }
            }
            _ => {}
        }
    }
    Ok(m)
}
