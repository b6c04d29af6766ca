//! Verifying an instrumented artifact against the fork ABI without running
//! it: the `forkify.abi` section, the pointer width of memory 0 and the five
//! control exports (ABI §3, §7). Used by `cargo forkify check`, by `cargo
//! forkify build` on every output, and by the hosts before they instantiate;
//! it only reads bytes and never runs or prints anything.

use std::collections::BTreeMap;

use crate::layout::EXPORTS;
use crate::section::{AbiSection, SectionError, SECTION_NAME};
use wasmparser::{ExternalKind, Parser, Payload, TypeRef, ValType, Validator, WasmFeatures};

/// Why a module is not a valid fork-ABI artifact. `Display` is a one-line
/// reason meant to follow the file name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The bytes are not a valid WebAssembly module.
    #[error("not a valid WebAssembly module: {0}")]
    InvalidWasm(String),
    /// There is no `forkify.abi` section.
    #[error(
        "no `{SECTION_NAME}` section: not instrumented (run `cargo forkify instrument` first)"
    )]
    NotInstrumented,
    /// The section is present but cannot be decoded, or there are several.
    #[error("bad `{SECTION_NAME}` section: {0}")]
    BadSection(SectionError),
    /// The section's ABI version is not the expected one.
    #[error(
        "ABI version {found}, expected {expected} (re-instrument with a matching cargo-forkify)"
    )]
    VersionMismatch {
        /// Version found in the section.
        found: u32,
        /// Version required.
        expected: u32,
    },
    /// The module has no memory 0, so it has nowhere to put a save buffer.
    #[error("the module has no memory, so there is nowhere to put the save buffer")]
    NoMemory,
    /// The section's pointer width disagrees with memory 0.
    #[error("the section says pointer width {section} but memory 0 has {memory}-byte addresses ({})", if *memory == 8 { "memory64" } else { "memory32" })]
    PointerWidthMismatch {
        /// Pointer width recorded in the section.
        section: u8,
        /// Pointer width of memory 0: 8 for memory64, else 4.
        memory: u8,
    },
    /// A required export is missing or is not a function.
    #[error("missing function export `{0}`")]
    MissingExport(String),
    /// A required export has the wrong type.
    #[error("export `{name}` has type {found}, expected {expected}")]
    WrongSignature {
        /// The export.
        name: String,
        /// The type the ABI requires, e.g. `(i32) -> ()`.
        expected: String,
        /// The type found.
        found: String,
    },
}

/// What a verified artifact declares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The decoded `forkify.abi` section.
    pub section: AbiSection,
    /// Pointer width, 4 or 8 (agrees with memory 0).
    pub pointer_width: u8,
}

/// The facts about a module that verification and the host need, gathered
/// in one validating pass.
pub struct ModuleFacts {
    types: wasmparser::types::Types,
    exports: BTreeMap<String, (ExternalKind, u32)>,
    imports: Vec<(String, String)>,
    section: Result<Option<AbiSection>, SectionError>,
}

impl std::fmt::Debug for ModuleFacts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModuleFacts")
            .field("exports", &self.exports)
            .field("imports", &self.imports)
            .field("section", &self.section)
            .finish_non_exhaustive()
    }
}

impl ModuleFacts {
    /// Validates `wasm` (every feature wasmparser knows) and gathers its
    /// imports, exports and `forkify.abi` section.
    pub fn read(wasm: &[u8]) -> Result<ModuleFacts, VerifyError> {
        ModuleFacts::read_with_features(wasm, WasmFeatures::all())
    }

    /// [`ModuleFacts::read`], validating with `features` only (the
    /// instrumenter validates its output with the features it accepted the
    /// input with, and verifies it from the same pass).
    pub fn read_with_features(
        wasm: &[u8],
        features: WasmFeatures,
    ) -> Result<ModuleFacts, VerifyError> {
        let types = Validator::new_with_features(features)
            .validate_all(wasm)
            .map_err(|e| VerifyError::InvalidWasm(e.to_string()))?;
        let invalid = |e: wasmparser::BinaryReaderError| VerifyError::InvalidWasm(e.to_string());
        let mut exports = BTreeMap::new();
        let mut imports = Vec::new();
        for payload in Parser::new(0).parse_all(wasm) {
            match payload.map_err(invalid)? {
                Payload::ImportSection(reader) => {
                    for import in reader.into_imports() {
                        let import = import.map_err(invalid)?;
                        if matches!(import.ty, TypeRef::Func(_) | TypeRef::FuncExact(_)) {
                            imports.push((import.module.to_string(), import.name.to_string()));
                        }
                    }
                }
                Payload::ExportSection(reader) => {
                    for export in reader {
                        let export = export.map_err(invalid)?;
                        exports.insert(export.name.to_string(), (export.kind, export.index));
                    }
                }
                _ => {}
            }
        }
        Ok(ModuleFacts {
            types,
            exports,
            imports,
            section: AbiSection::find(wasm),
        })
    }

    /// The `forkify.abi` section: `Ok(None)` when absent.
    pub fn section(&self) -> Result<Option<&AbiSection>, VerifyError> {
        match &self.section {
            Ok(s) => Ok(s.as_ref()),
            Err(e) => Err(VerifyError::BadSection(e.clone())),
        }
    }

    /// Pointer width of memory 0 (8 for memory64), `None` without memory.
    pub fn memory0_width(&self) -> Option<u8> {
        let types = self.types.as_ref();
        (types.memory_count() > 0).then(|| if types.memory_at(0).memory64 { 8 } else { 4 })
    }

    /// Whether the module imports the function `module.name`.
    pub fn imports_func(&self, module: &str, name: &str) -> bool {
        self.imports.iter().any(|(m, n)| m == module && n == name)
    }

    /// The names of all exports.
    pub fn export_names(&self) -> impl Iterator<Item = &str> {
        self.exports.keys().map(String::as_str)
    }

    /// The index of memory export `name`, if it is a memory.
    pub fn memory_export(&self, name: &str) -> Option<u32> {
        match self.exports.get(name) {
            Some((ExternalKind::Memory, idx)) => Some(*idx),
            _ => None,
        }
    }

    /// Checks that `name` is an exported function of type `params -> results`.
    pub fn expect_func(
        &self,
        name: &str,
        params: &[ValType],
        results: &[ValType],
    ) -> Result<(), VerifyError> {
        let Some((ExternalKind::Func | ExternalKind::FuncExact, idx)) = self.exports.get(name)
        else {
            return Err(VerifyError::MissingExport(name.to_string()));
        };
        let sub = &self.types[self.types.as_ref().core_function_at(*idx)];
        let found = match &sub.composite_type.inner {
            wasmparser::CompositeInnerType::Func(f) => f,
            _ => return Err(VerifyError::MissingExport(name.to_string())),
        };
        if found.params() != params || found.results() != results {
            return Err(VerifyError::WrongSignature {
                name: name.to_string(),
                expected: signature(params, results),
                found: signature(found.params(), found.results()),
            });
        }
        Ok(())
    }
}

/// Writes a function type as `(i32, i64) -> (i32)`.
pub fn signature(params: &[ValType], results: &[ValType]) -> String {
    let list = |v: &[ValType]| {
        v.iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!("({}) -> ({})", list(params), list(results))
}

/// The pointer type for a pointer width.
pub fn ptr_type(width: u8) -> ValType {
    if width == 8 {
        ValType::I64
    } else {
        ValType::I32
    }
}

/// A type as [`EXPORTS`] writes it.
fn abi_type(t: &str, ptr: ValType) -> ValType {
    match t {
        "ptr" => ptr,
        "i64" => ValType::I64,
        "f32" => ValType::F32,
        "f64" => ValType::F64,
        _ => ValType::I32,
    }
}

/// Verifies a module as an instrumented artifact of ABI `expected_version`.
pub fn verify(wasm: &[u8], expected_version: u32) -> Result<Verified, VerifyError> {
    verify_facts(&ModuleFacts::read(wasm)?, expected_version)
}

/// [`verify`] on facts already read.
pub fn verify_facts(facts: &ModuleFacts, expected_version: u32) -> Result<Verified, VerifyError> {
    let section = facts
        .section()?
        .ok_or(VerifyError::NotInstrumented)?
        .clone();
    if section.version != expected_version {
        return Err(VerifyError::VersionMismatch {
            found: section.version,
            expected: expected_version,
        });
    }
    let width = facts.memory0_width().ok_or(VerifyError::NoMemory)?;
    if width != section.pointer_width {
        return Err(VerifyError::PointerWidthMismatch {
            section: section.pointer_width,
            memory: width,
        });
    }
    let ptr = ptr_type(width);
    for (name, params, results) in EXPORTS {
        let map = |v: &[&str]| -> Vec<ValType> { v.iter().map(|t| abi_type(t, ptr)).collect() };
        facts.expect_func(name, &map(params), &map(results))?;
    }
    Ok(Verified {
        section,
        pointer_width: width,
    })
}
