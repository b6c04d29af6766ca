//! Module generation shared by the property tests (`differential.rs`,
//! `robustness.rs`) and the fuzz target: a swarm of wasm-smith
//! configurations restricted to what walrus 0.28 parses and wasmtime 48
//! runs, the exports the tests need, and wasm-smith's own defaults for
//! inputs the instrumenter may refuse but must not fail on.
//!
//! Everything here is deterministic: a case is fully described by its `u64`
//! seed, so a failure can be replayed with `FORKIFY_DIFF_SEED=<seed>
//! FORKIFY_DIFF_CASES=1`.

use arbitrary::Unstructured;
use forkify_instrument::ImportName;
use std::fmt::Write as _;

use crate::rng::Rng;
use crate::wasm::{numeric_func_imports, references_function, sections};

/// The name under which the generator exports memory 0 (added after
/// generation when wasm-smith did not export it): the host needs it to place
/// the save buffer, and the comparison reads it.
pub const MEMORY_EXPORT: &str = "forkify-test:memory0";

/// Swarm knobs of one case, for the failure report.
#[derive(Debug, Clone, Default)]
pub struct Knobs {
    pub reference_types: bool,
    pub simd: bool,
    pub relaxed_simd: bool,
    pub tail_call: bool,
    pub multi_value: bool,
    pub memory64: bool,
    pub multi_memory: bool,
    pub floats: bool,
    pub disallow_traps: bool,
    pub export_everything: bool,
    pub fuel: u32,
    pub exceptions: bool,
}

impl Knobs {
    pub fn describe(&self) -> String {
        let mut s = String::new();
        for (on, name) in [
            (self.reference_types, "reference-types"),
            (self.simd, "simd"),
            (self.relaxed_simd, "relaxed-simd"),
            (self.tail_call, "tail-call"),
            (self.multi_value, "multi-value"),
            (self.memory64, "memory64"),
            (self.multi_memory, "multi-memory"),
            (self.floats, "floats"),
            (self.disallow_traps, "disallow-traps"),
            (self.export_everything, "export-everything"),
            (self.exceptions, "exceptions"),
        ] {
            if on {
                let _ = write!(s, "{name} ");
            }
        }
        let _ = write!(s, "fuel={}", self.fuel);
        s
    }
}

/// One generated module.
#[derive(Debug, Clone)]
pub struct Generated {
    /// The module, with the exports of [`add_test_exports`].
    pub bytes: Vec<u8>,
    /// The exported defined functions, in export order: the entry points.
    pub entries: Vec<String>,
    /// The function imports with only numeric (i32/i64/f32/f64) params and
    /// results: candidates for the fork import.
    pub numeric_imports: Vec<(u32, ImportName)>,
    /// The chosen fork import and its function index, if any candidate.
    pub fork: Option<(u32, ImportName)>,
    pub knobs: Knobs,
}

/// The imports wasm-smith may pick from (`available_imports`): several
/// numeric signatures (fork import candidates), plus a few that are not.
fn candidate_imports(k: &Knobs) -> Vec<u8> {
    let mut wat = String::from(
        r#"(module
  (import "kernel" "kernel_fork" (func (result i32)))
  (import "env" "f_i32_i32" (func (param i32) (result i32)))
  (import "env" "f_void" (func))
  (import "env" "f_i64_i32__i64" (func (param i64 i32) (result i64)))
  (import "env" "f_ii__" (func (param i32 i32)))
  (import "env" "f_i64__i32" (func (param i64) (result i32)))
  (import "env" "g_i32" (global i32))
  (import "env" "g_mut_i64" (global (mut i64)))
"#,
    );
    if k.floats {
        wat.push_str(
            r#"  (import "env" "f_f32__f64" (func (param f32) (result f64)))
  (import "env" "f_i64__f32" (func (param i64) (result f32)))
  (import "env" "f_f64_i32__f64" (func (param f64 i32) (result f64)))
"#,
        );
    }
    if k.multi_value {
        wat.push_str(
            r#"  (import "env" "f_i32__i32_i64" (func (param i32) (result i32 i64)))
  (import "env" "f__i64_i32" (func (result i64 i32)))
"#,
        );
    }
    if k.simd {
        wat.push_str("  (import \"env\" \"f_v128__v128\" (func (param v128) (result v128)))\n");
    }
    if k.reference_types {
        wat.push_str("  (import \"env\" \"f_funcref__i32\" (func (param funcref) (result i32)))\n");
    }
    wat.push(')');
    wat::parse_str(&wat).expect("candidate imports parse")
}

/// The wasm-smith configuration of a case: the features walrus 0.28 parses
/// and wasmtime 48 runs.
pub fn smith_config(rng: &mut Rng) -> (wasm_smith::Config, Knobs) {
    let mut k = Knobs {
        reference_types: rng.chance(1, 3),
        simd: rng.chance(1, 2),
        relaxed_simd: false,
        tail_call: rng.chance(1, 2),
        multi_value: rng.chance(3, 4),
        memory64: rng.chance(1, 4),
        multi_memory: rng.chance(1, 6),
        floats: rng.chance(4, 5),
        disallow_traps: rng.chance(1, 2),
        export_everything: rng.chance(1, 4),
        fuel: rng.range(100, 3_000) as u32,
        exceptions: false,
    };
    k.exceptions = rng.chance(1, 4);
    k.relaxed_simd = k.simd && rng.chance(1, 3);
    let mut c = wasm_smith::Config {
        available_imports: Some(candidate_imports(&k)),
        // Off: GC proposal types (walrus 0.28 does not parse all of them and
        // the ABI refuses them on fork paths anyway), threads and stack
        // switching (out of the ABI's scope), and proposals walrus lacks.
        gc_enabled: false,
        exceptions_enabled: k.exceptions,
        threads_enabled: false,
        shared_everything_threads_enabled: false,
        custom_page_sizes_enabled: false,
        wide_arithmetic_enabled: false,
        custom_descriptors_enabled: false,
        allow_invalid_funcs: false,
        // Swarm.
        reference_types_enabled: k.reference_types,
        simd_enabled: k.simd,
        relaxed_simd_enabled: k.relaxed_simd,
        tail_call_enabled: k.tail_call,
        multi_value_enabled: k.multi_value,
        memory64_enabled: k.memory64,
        allow_floats: k.floats,
        disallow_traps: k.disallow_traps,
        export_everything: k.export_everything,
        bulk_memory_enabled: true,
        saturating_float_to_int_enabled: true,
        sign_extension_ops_enabled: true,
        extended_const_enabled: true,
        // Shape: small modules, many calls.
        min_funcs: rng.range(2, 6) as usize,
        // Counts the (up to 16) imports too; `min_funcs` fails the module
        // when it cannot be met.
        max_funcs: rng.range(20, 36) as usize,
        max_instructions: rng.range(20, 120) as usize,
        max_nesting_depth: rng.range(3, 10) as usize,
        min_exports: 1,
        max_exports: rng.range(2, 12) as usize,
        max_globals: rng.range(0, 10) as usize,
        max_types: 30,
        // `export_everything` fails the whole module when the exports' type
        // sizes add up past this.
        max_type_size: 100_000,
        min_memories: if rng.chance(9, 10) { 1 } else { 0 },
        max_memories: if k.multi_memory { 2 } else { 1 },
        max_memory32_bytes: rng.range(1, 8) * 65536,
        max_memory64_bytes: u128::from(rng.range(1, 8) * 65536),
        max_tables: if k.reference_types { 2 } else { 1 },
        max_table_elements: 64,
        max_data_segments: 8,
        max_element_segments: 8,
        max_elements: 32,
        max_values: 8,
        ..wasm_smith::Config::default()
    };
    if !k.reference_types {
        c.max_tables = 1;
    }
    (c, k)
}

/// Generates the module of case `seed`. `None` when wasm-smith gives up.
pub fn generate(seed: u64) -> Option<Generated> {
    let mut rng = Rng::new(seed);
    let (config, knobs) = smith_config(&mut rng);
    let data = rng.bytes_in(2048, 12_288);
    let mut u = Unstructured::new(&data);
    let mut module = match wasm_smith::Module::new(config, &mut u) {
        Ok(m) => m,
        Err(e) => {
            if std::env::var_os("FORKIFY_DEBUG_GEN").is_some() {
                eprintln!("seed {seed:#x}: wasm-smith: {e} {knobs:?}");
            }
            return None;
        }
    };
    let fuel_global = match module.ensure_termination(knobs.fuel) {
        Ok(g) => g,
        Err(e) => {
            if std::env::var_os("FORKIFY_DEBUG_GEN").is_some() {
                eprintln!("seed {seed:#x}: ensure_termination: {e}");
            }
            return None;
        }
    };
    let (bytes, entries) = add_test_exports(&module.to_bytes(), Some(fuel_global))?;
    let numeric_imports = numeric_func_imports(&bytes);
    // Prefer an import the code refers to: then there are fork-path
    // functions to instrument.
    let referenced: Vec<_> = numeric_imports
        .iter()
        .filter(|(i, _)| references_function(&bytes, *i))
        .cloned()
        .collect();
    let pool = if referenced.is_empty() {
        &numeric_imports
    } else {
        &referenced
    };
    let fork = if pool.is_empty() {
        None
    } else {
        Some(pool[rng.below(pool.len() as u64) as usize].clone())
    };
    Some(Generated {
        bytes,
        entries,
        numeric_imports,
        fork,
        knobs,
    })
}

/// The export of wasm-smith's `ensure_termination` fuel global: the host
/// refills it before each export call, so that one long loop does not starve
/// every later call.
pub const FUEL_EXPORT: &str = "forkify-test:fuel";

/// Prefix of the function exports added by [`add_test_exports`].
pub const FUNC_EXPORT_PREFIX: &str = "forkify-test:func";

/// Adds the exports the tests need: memory 0 as [`MEMORY_EXPORT`] (the host
/// places the save buffer there and the comparison reads it), and every
/// defined function that is not exported yet as `forkify-test:funcN` (more
/// entry points), and the fuel global as [`FUEL_EXPORT`]. Returns the module and the names of the function exports
/// that are defined functions (calling an exported import from the host
/// runs no wasm), in export order. `None` if the module cannot be parsed.
pub fn add_test_exports(wasm: &[u8], fuel_global: Option<u32>) -> Option<(Vec<u8>, Vec<String>)> {
    use wasm_encoder::{Encode, ExportKind, ExportSection};
    use wasmparser::{ExternalKind, Payload, TypeRef};
    let mut has_memory = false;
    let mut imported_funcs = 0u32;
    let mut defined_funcs = 0u32;
    let mut exported_funcs = std::collections::BTreeSet::new();
    let mut exports = ExportSection::new();
    let mut entries = Vec::new();
    for payload in wasmparser::Parser::new(0).parse_all(wasm) {
        match payload.ok()? {
            Payload::ImportSection(r) => {
                for imp in r.into_imports() {
                    match imp.ok()?.ty {
                        TypeRef::Memory(_) => has_memory = true,
                        TypeRef::Func(_) | TypeRef::FuncExact(_) => imported_funcs += 1,
                        _ => {}
                    }
                }
            }
            Payload::FunctionSection(r) => defined_funcs = r.count(),
            Payload::MemorySection(r) => has_memory |= r.count() > 0,
            Payload::ExportSection(r) => {
                for e in r {
                    let e = e.ok()?;
                    if e.name == MEMORY_EXPORT
                        || e.name == FUEL_EXPORT
                        || e.name.starts_with(FUNC_EXPORT_PREFIX)
                    {
                        return None;
                    }
                    let kind = match e.kind {
                        ExternalKind::Func | ExternalKind::FuncExact => {
                            if e.index >= imported_funcs {
                                entries.push(e.name.to_string());
                            }
                            exported_funcs.insert(e.index);
                            ExportKind::Func
                        }
                        ExternalKind::Table => ExportKind::Table,
                        ExternalKind::Memory => ExportKind::Memory,
                        ExternalKind::Global => ExportKind::Global,
                        ExternalKind::Tag => ExportKind::Tag,
                    };
                    exports.export(e.name, kind, e.index);
                }
            }
            _ => {}
        }
    }
    for f in imported_funcs..imported_funcs + defined_funcs {
        if !exported_funcs.contains(&f) {
            let name = format!("{FUNC_EXPORT_PREFIX}{f}");
            exports.export(&name, ExportKind::Func, f);
            entries.push(name);
        }
    }
    if has_memory {
        exports.export(MEMORY_EXPORT, ExportKind::Memory, 0);
    }
    if let Some(g) = fuel_global {
        exports.export(FUEL_EXPORT, ExportKind::Global, g);
    }
    let mut section = vec![7u8];
    exports.encode(&mut section);
    // Replace the export section, or insert one before the first section
    // that must follow it (start 8, element 9, data count 12, code 10, data 11).
    let secs = sections(wasm)?;
    let mut out = wasm[..8].to_vec();
    let mut placed = false;
    for (id, range) in secs {
        if id == 7 {
            out.extend_from_slice(&section);
            placed = true;
            continue;
        }
        if !placed && matches!(id, 8..=12) {
            out.extend_from_slice(&section);
            placed = true;
        }
        out.extend_from_slice(&wasm[range]);
    }
    if !placed {
        out.extend_from_slice(&section);
    }
    Some((out, entries))
}

/// A module from wasm-smith's default configuration (GC, exceptions,
/// threads and more: what the instrumenter may refuse, cleanly), driven by
/// `data`, with the fork-import candidates `kernel.kernel_fork` and a
/// numeric `env.f`. Returns it with every numeric function import (to try
/// as fork imports).
pub fn any_features(data: &[u8]) -> Option<(Vec<u8>, Vec<ImportName>)> {
    let config = wasm_smith::Config {
        available_imports: Some(
            wat::parse_str(
                r#"(module
                  (import "kernel" "kernel_fork" (func (result i32)))
                  (import "env" "f" (func (param i32 i64) (result f64)))
                  (import "env" "t" (tag (param i32))))"#,
            )
            .expect("wat"),
        ),
        max_type_size: 100_000,
        max_funcs: 30,
        ..wasm_smith::Config::default()
    };
    let m = wasm_smith::Module::new(config, &mut Unstructured::new(data)).ok()?;
    let bytes = m.to_bytes();
    let forks = numeric_func_imports(&bytes)
        .into_iter()
        .map(|(_, n)| n)
        .collect();
    Some((bytes, forks))
}
