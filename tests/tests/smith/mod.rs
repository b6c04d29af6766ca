//! Module generation shared by the property tests (`differential.rs`,
//! `robustness.rs`): a deterministic RNG, a swarm of wasm-smith
//! configurations restricted to what walrus 0.28 parses and wasmtime 48 runs,
//! and small binary helpers.
//!
//! Everything here is deterministic: a case is fully described by its `u64`
//! seed, so a failure can be replayed with `FORKIFY_DIFF_SEED=<seed>
//! FORKIFY_DIFF_CASES=1`.

#![allow(dead_code)] // each test binary uses a different subset

use arbitrary::Unstructured;
use forkify_instrument::ImportName;
use std::fmt::Write as _;

/// SplitMix64: tiny, fast and good enough to drive test generation.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x6a09_e667_f3bc_c909)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        mix64(self.0)
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    /// True with probability `num / den`.
    pub fn chance(&mut self, num: u64, den: u64) -> bool {
        self.below(den) < num
    }

    /// Between `lo` and `hi` random bytes.
    pub fn bytes_in(&mut self, lo: u64, hi: u64) -> Vec<u8> {
        let len = self.range(lo, hi) as usize;
        self.bytes(len)
    }

    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        let mut v = Vec::with_capacity(len + 8);
        while v.len() < len {
            v.extend_from_slice(&self.next_u64().to_le_bytes());
        }
        v.truncate(len);
        v
    }
}

/// The SplitMix64 finalizer.
pub fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

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

/// Function imports whose params and results are all i32/i64/f32/f64, with
/// their function indices.
pub fn numeric_func_imports(wasm: &[u8]) -> Vec<(u32, ImportName)> {
    use wasmparser::{CompositeInnerType, Payload, TypeRef, ValType};
    let mut func_types: Vec<Option<bool>> = Vec::new();
    let mut out = Vec::new();
    let mut func_index = 0u32;
    for payload in wasmparser::Parser::new(0).parse_all(wasm) {
        match payload {
            Ok(Payload::TypeSection(r)) => {
                for rg in r.into_iter().flatten() {
                    for st in rg.into_types() {
                        func_types.push(match &st.composite_type.inner {
                            CompositeInnerType::Func(f) => {
                                Some(f.params().iter().chain(f.results()).all(|t| {
                                    matches!(
                                        t,
                                        ValType::I32 | ValType::I64 | ValType::F32 | ValType::F64
                                    )
                                }))
                            }
                            _ => None,
                        });
                    }
                }
            }
            Ok(Payload::ImportSection(r)) => {
                for imp in r.into_imports().flatten() {
                    if let TypeRef::Func(t) = imp.ty {
                        if func_types.get(t as usize).copied().flatten() == Some(true) {
                            out.push((func_index, ImportName::new(imp.module, imp.name)));
                        }
                        func_index += 1;
                    }
                }
            }
            Ok(_) => {}
            Err(_) => return Vec::new(),
        }
    }
    out
}

/// Whether a defined function or an element segment refers to function
/// `index` directly (`call`, `return_call`, `ref.func`, element items):
/// the case then has at least one fork-path function.
pub fn references_function(wasm: &[u8], index: u32) -> bool {
    use wasmparser::{ElementItems, Operator, Payload};
    let ops_hit = |mut r: wasmparser::OperatorsReader<'_>| -> bool {
        while !r.eof() {
            match r.read() {
                Ok(Operator::Call { function_index })
                | Ok(Operator::ReturnCall { function_index })
                | Ok(Operator::RefFunc { function_index })
                    if function_index == index =>
                {
                    return true
                }
                Ok(_) => {}
                Err(_) => return false,
            }
        }
        false
    };
    for payload in wasmparser::Parser::new(0).parse_all(wasm) {
        match payload {
            Ok(Payload::ElementSection(r)) => {
                for e in r.into_iter().flatten() {
                    match e.items {
                        ElementItems::Functions(fs) => {
                            if fs.into_iter().flatten().any(|f| f == index) {
                                return true;
                            }
                        }
                        ElementItems::Expressions(_, es) => {
                            for ce in es.into_iter().flatten() {
                                if ops_hit(ce.get_operators_reader()) {
                                    return true;
                                }
                            }
                        }
                    }
                }
            }
            Ok(Payload::CodeSectionEntry(body)) => {
                if let Ok(r) = body.get_operators_reader() {
                    if ops_hit(r) {
                        return true;
                    }
                }
            }
            Ok(_) => {}
            Err(_) => return false,
        }
    }
    false
}

/// The module's sections as `(id, full byte range including the header)`,
/// after the 8-byte preamble. `None` if the framing is broken.
pub fn sections(wasm: &[u8]) -> Option<Vec<(u8, std::ops::Range<usize>)>> {
    if wasm.len() < 8 {
        return None;
    }
    let mut out = Vec::new();
    let mut pos = 8;
    while pos < wasm.len() {
        let id = wasm[pos];
        let (len, n) = read_leb_u32(&wasm[pos + 1..])?;
        let end = pos + 1 + n + len as usize;
        if end > wasm.len() {
            return None;
        }
        out.push((id, pos..end));
        pos = end;
    }
    Some(out)
}

pub fn read_leb_u32(b: &[u8]) -> Option<(u32, usize)> {
    let mut result = 0u64;
    for (i, &byte) in b.iter().enumerate().take(5) {
        result |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return u32::try_from(result).ok().map(|r| (r, i + 1));
        }
    }
    None
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

/// Validates with every feature wasmparser knows: the property checked is
/// "the output is a valid module", not "it uses only the input's features".
pub fn validate(wasm: &[u8]) -> Result<(), String> {
    wasmparser::Validator::new_with_features(wasmparser::WasmFeatures::all())
        .validate_all(wasm)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// `target/<sub>`: where failing inputs are saved for reproduction.
pub fn failure_dir(sub: &str) -> std::path::PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join(sub)
}

/// Reads a `u64` environment variable (decimal or `0x` hex).
pub fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    let v = v.trim().replace('_', "");
    match v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => v.parse().ok(),
    }
    .or_else(|| panic!("{name}={v} is not a number"))
}
