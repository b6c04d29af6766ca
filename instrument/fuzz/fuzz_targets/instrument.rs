//! Fuzz target `instrument`: `forkify_instrument::instrument` (and `explain`)
//! must never panic, and every module it returns must validate.
//!
//! The input drives one of two generators: raw bytes (mostly rejected by the
//! parser: exercises error paths), or a wasm-smith module whose imports
//! include fork-import candidates, with a swarm configuration limited to the
//! features the instrumenter supports (plus, sometimes, everything
//! wasm-smith can generate, which it must refuse cleanly).

#![no_main]

use arbitrary::{Arbitrary, Result, Unstructured};
use forkify_instrument::{Config, ImportName};
use libfuzzer_sys::fuzz_target;

const IMPORTS: &str = r#"(module
  (import "kernel" "kernel_fork" (func (result i32)))
  (import "env" "f_i32_i32" (func (param i32) (result i32)))
  (import "env" "f_void" (func))
  (import "env" "f_i64_i32__i64" (func (param i64 i32) (result i64)))
  (import "env" "f_f32__f64" (func (param f32) (result f64)))
  (import "env" "f_i32__i32_i64" (func (param i32) (result i32 i64)))
  (import "env" "g" (global (mut i32)))
)"#;

/// The candidate fork imports, in the order of `IMPORTS`.
const FORKS: [(&str, &str); 6] = [
    ("kernel", "kernel_fork"),
    ("env", "f_i32_i32"),
    ("env", "f_void"),
    ("env", "f_i64_i32__i64"),
    ("env", "f_f32__f64"),
    ("env", "f_i32__i32_i64"),
];

fn smith_module(u: &mut Unstructured<'_>) -> Result<(Vec<u8>, Config)> {
    let all_features = u.ratio(1, 8)?;
    let mut config = if all_features {
        wasm_smith::Config::arbitrary(u)?
    } else {
        wasm_smith::Config {
            gc_enabled: false,
            exceptions_enabled: u.ratio(1, 4)?,
            threads_enabled: false,
            shared_everything_threads_enabled: false,
            custom_page_sizes_enabled: false,
            wide_arithmetic_enabled: false,
            reference_types_enabled: u.arbitrary()?,
            simd_enabled: u.arbitrary()?,
            tail_call_enabled: u.arbitrary()?,
            memory64_enabled: u.arbitrary()?,
            multi_value_enabled: u.arbitrary()?,
            min_memories: 1,
            max_memories: u.int_in_range(1..=2)?,
            max_funcs: 40,
            max_instructions: u.int_in_range(10..=200)?,
            max_type_size: 100_000,
            ..wasm_smith::Config::default()
        }
    };
    config.available_imports = Some(wat::parse_str(IMPORTS).expect("imports wat"));
    config.allow_invalid_funcs = false;
    let module = wasm_smith::Module::new(config, u)?;
    let n = u.int_in_range(1..=2)?;
    let mut forks = Vec::new();
    for _ in 0..n {
        let (m, f) = *u.choose(&FORKS)?;
        forks.push(ImportName::new(m, f));
    }
    Ok((module.to_bytes(), Config::with_fork_imports(forks)))
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let (wasm, config) = match u.arbitrary::<u8>() {
        Ok(b) if b % 4 == 0 => (u.take_rest().to_vec(), Config::default()),
        Ok(_) => match smith_module(&mut u) {
            Ok(x) => x,
            Err(_) => return,
        },
        Err(_) => return,
    };
    if let Ok(out) = forkify_instrument::instrument(&wasm, &config) {
        let mut validator =
            wasmparser::Validator::new_with_features(wasmparser::WasmFeatures::all());
        if let Err(e) = validator.validate_all(&out.bytes) {
            panic!("instrument() returned an invalid module: {e}");
        }
        if out.report.passed_through {
            assert!(
                out.bytes == wasm,
                "a passed-through module must be byte-identical"
            );
        } else {
            // Instrumenting the output again must be refused, not panic.
            let again = forkify_instrument::instrument(&out.bytes, &config);
            assert!(
                again.is_err(),
                "an instrumented module was instrumented again"
            );
        }
    }
    let _ = forkify_instrument::explain(&wasm, &config, "func[0]");
});
