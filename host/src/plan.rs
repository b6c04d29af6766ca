//! Deciding, before anything is instantiated, whether the host may run a
//! module and how: the `forkify.abi` section (ABI §7) verified against the
//! module, the pointer width, the fork imports the section names (with the
//! types the module gives them), and the `memory` and `_start` exports.

use forkify_abi::{ModuleFacts, VerifyError, ABI_VERSION, DEFAULT_FORK_IMPORT, EXPORT_PREFIX};
use wasmparser::{Parser, Payload, TypeRef};

use crate::Error;

/// What the host needs to know about a module it accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ModulePlan {
    /// 4 on wasm32, 8 on memory64 (4 for a module without memory).
    pub pointer_width: u8,
    /// The buffer layout; `None` for a module that was never instrumented
    /// (it imports no fork, so it cannot fork).
    pub layout: Option<Layout>,
    /// The fork imports the module imports, with their types.
    pub fork_imports: Vec<ForkImport>,
}

/// One fork import of the module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ForkImport {
    pub module: String,
    pub name: String,
    pub params: Vec<wasmparser::ValType>,
    pub results: Vec<wasmparser::ValType>,
}

/// The part of the `forkify.abi` section the host acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Layout {
    /// The smallest buffer the module may be given (ABI §7).
    pub min_buffer: u64,
}

/// Checks `wasm` and returns how to run it, or why it cannot run.
pub(crate) fn prepare(wasm: &[u8]) -> Result<ModulePlan, Error> {
    let facts = ModuleFacts::read(wasm)?;
    let plan = match facts.section()? {
        Some(_) => {
            let verified = forkify_abi::verify::verify_facts(&facts, ABI_VERSION)?;
            match facts.memory_export("memory") {
                Some(0) => {}
                Some(i) => {
                    return Err(Error::Refused(format!(
                        "export `memory` is memory {i}; the save buffer lives in memory 0"
                    )))
                }
                None => return Err(VerifyError::MissingExport("memory".into()).into()),
            }
            let named = &verified.section.info.fork_imports;
            ModulePlan {
                pointer_width: verified.pointer_width,
                layout: Some(Layout {
                    min_buffer: verified.section.min_buffer(),
                }),
                fork_imports: func_imports(wasm)?
                    .into_iter()
                    .filter(|f| named.contains(&format!("{}.{}", f.module, f.name)))
                    .collect(),
            }
        }
        None => {
            let (m, n) = DEFAULT_FORK_IMPORT;
            if facts.imports_func(m, n) {
                return Err(Error::NotInstrumented(format!("{m}.{n}")));
            }
            if let Some(name) = facts.export_names().find(|e| e.starts_with(EXPORT_PREFIX)) {
                return Err(Error::Refused(format!(
                    "it exports `{name}` but has no `forkify.abi` section: a damaged or foreign artifact"
                )));
            }
            ModulePlan {
                pointer_width: facts.memory0_width().unwrap_or(4),
                layout: None,
                fork_imports: Vec::new(),
            }
        }
    };
    facts.expect_func("_start", &[], &[])?;
    Ok(plan)
}

/// Every function import with its type (the module is valid).
fn func_imports(wasm: &[u8]) -> Result<Vec<ForkImport>, Error> {
    let bad =
        |e: wasmparser::BinaryReaderError| Error::Refused(format!("cannot read the module: {e}"));
    let mut types = Vec::new();
    let mut out = Vec::new();
    for payload in Parser::new(0).parse_all(wasm) {
        match payload.map_err(bad)? {
            Payload::TypeSection(r) => {
                for group in r {
                    for sub in group.map_err(bad)?.into_types() {
                        types.push(match &sub.composite_type.inner {
                            wasmparser::CompositeInnerType::Func(f) => {
                                Some((f.params().to_vec(), f.results().to_vec()))
                            }
                            _ => None,
                        });
                    }
                }
            }
            Payload::ImportSection(r) => {
                for imp in r.into_imports() {
                    let imp = imp.map_err(bad)?;
                    if let TypeRef::Func(t) | TypeRef::FuncExact(t) = imp.ty {
                        if let Some(Some((params, results))) = types.get(t as usize) {
                            out.push(ForkImport {
                                module: imp.module.to_string(),
                                name: imp.name.to_string(),
                                params: params.clone(),
                                results: results.clone(),
                            });
                        }
                    }
                }
            }
            Payload::CodeSectionStart { .. } => break,
            _ => {}
        }
    }
    Ok(out)
}
