//! Checks on the raw bytes before anything is parsed into walrus: validity,
//! earlier instrumentation (ours or Asyncify's), proposals walrus cannot
//! read, and which fork imports the module really has.

use crate::{abi, Config, Error, ImportName, Result};
use wasmparser::{Parser, Payload, TypeRef, Validator, WasmFeatures};

/// The features forkify accepts in input modules: everything walrus 0.28
/// can represent. Stack switching, shared-everything threads and
/// `memory.discard` make walrus panic, so they are off here and a module
/// using them fails validation with wasmparser's message.
pub fn features() -> WasmFeatures {
    let mut f = WasmFeatures::all();
    f.remove(WasmFeatures::STACK_SWITCHING);
    f.remove(WasmFeatures::SHARED_EVERYTHING_THREADS);
    f.remove(WasmFeatures::MEMORY_CONTROL);
    f.remove(WasmFeatures::COMPONENT_MODEL);
    f
}

/// What preflight learned.
pub struct Preflight {
    /// The configured fork imports that the module imports, as `module.name`.
    pub fork_imports_found: Vec<String>,
}

/// Validates `wasm` and refuses modules forkify must not touch.
pub fn check(wasm: &[u8], config: &Config) -> Result<Preflight> {
    Validator::new_with_features(features())
        .validate_all(wasm)
        .map_err(|e| Error::InvalidWasm(e.to_string()))?;
    let mut found = Vec::new();
    for payload in Parser::new(0).parse_all(wasm) {
        let payload = payload.map_err(|e| Error::InvalidWasm(e.to_string()))?;
        match payload {
            Payload::CustomSection(c) if c.name() == abi::SECTION_NAME => {
                return Err(Error::AlreadyInstrumented(format!(
                    "a `{}` custom section",
                    abi::SECTION_NAME
                )));
            }
            Payload::ExportSection(exports) => {
                for e in exports {
                    let e = e.map_err(|e| Error::InvalidWasm(e.to_string()))?;
                    if e.name.starts_with(abi::EXPORT_PREFIX) {
                        return Err(Error::AlreadyInstrumented(format!(
                            "an export `{}`",
                            e.name
                        )));
                    }
                    if e.name.starts_with(abi::ASYNCIFY_PREFIX) {
                        return Err(Error::Asyncify(e.name.to_string()));
                    }
                }
            }
            Payload::ImportSection(imports) => {
                for imp in imports.into_imports() {
                    let imp = imp.map_err(|e| Error::InvalidWasm(e.to_string()))?;
                    if !matches!(imp.ty, TypeRef::Func(_) | TypeRef::FuncExact(_)) {
                        continue;
                    }
                    let name = ImportName::new(imp.module, imp.name);
                    if config.fork_imports.contains(&name) && !found.contains(&name.to_string()) {
                        found.push(name.to_string());
                    }
                }
            }
            _ => {}
        }
    }
    found.sort();
    Ok(Preflight {
        fork_imports_found: found,
    })
}
