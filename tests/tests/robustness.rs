//! Robustness property: `instrument` and `explain` never panic, whatever the
//! input: random bytes, and valid modules mangled by bit flips, truncations,
//! byte-range edits and section splices. Errors are fine; an `Ok` output must
//! validate.
//!
//! Environment: `FORKIFY_ROBUST_CASES` (default 3000), `FORKIFY_ROBUST_SEED`.
//! Failing inputs are saved to `target/robustness-failures/`.

mod smith;

use arbitrary::Unstructured;
use forkify_instrument::{Config, ImportName};
use smith::Rng;
use std::panic::{catch_unwind, AssertUnwindSafe};

const DEFAULT_CASES: u64 = 3000;
const DEFAULT_SEED: u64 = 0x0b57_0000;

/// A valid module: from the differential generator, or (`all_features`)
/// from wasm-smith's defaults, which include GC, exceptions, threads and
/// more that the instrumenter may refuse but must not panic on.
fn valid_module(rng: &mut Rng, all_features: bool) -> Option<(Vec<u8>, Vec<ImportName>)> {
    if !all_features {
        let g = smith::generate(rng.next_u64())?;
        return Some((g.bytes, g.fork.map(|f| vec![f.1]).unwrap_or_default()));
    }
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
    let data = rng.bytes_in(1024, 8192);
    let m = wasm_smith::Module::new(config, &mut Unstructured::new(&data)).ok()?;
    let bytes = m.to_bytes();
    let forks = smith::numeric_func_imports(&bytes)
        .into_iter()
        .map(|(_, n)| n)
        .collect();
    Some((bytes, forks))
}

/// Mangles `wasm` in one of several ways.
fn mutate(rng: &mut Rng, mut wasm: Vec<u8>, other: &[u8]) -> (Vec<u8>, &'static str) {
    let kind = rng.below(7);
    let len = wasm.len().max(1) as u64;
    match kind {
        0 => {
            for _ in 0..rng.range(1, 8) {
                let i = rng.below(len) as usize;
                if i < wasm.len() {
                    wasm[i] ^= 1 << rng.below(8);
                }
            }
            (wasm, "bit flips")
        }
        1 => {
            wasm.truncate(rng.below(len) as usize);
            (wasm, "truncation")
        }
        2 => {
            // Overwrite a range with random bytes.
            let i = rng.below(len) as usize;
            let n = rng.range(1, 16) as usize;
            for b in wasm.iter_mut().skip(i).take(n) {
                *b = rng.next_u64() as u8;
            }
            (wasm, "overwrite")
        }
        3 => {
            // Insert or delete a few bytes.
            let i = rng.below(len).min(wasm.len() as u64) as usize;
            if rng.chance(1, 2) {
                let ins = rng.bytes_in(1, 8);
                wasm.splice(i..i, ins);
                (wasm, "insertion")
            } else {
                let n = (rng.range(1, 8) as usize).min(wasm.len() - i);
                wasm.drain(i..i + n);
                (wasm, "deletion")
            }
        }
        4 => (splice_sections(rng, &wasm, other), "section splice"),
        5 => {
            // Interesting values at random spots (LEB edges, type codes).
            const INTERESTING: [u8; 10] =
                [0x00, 0x01, 0x7f, 0x80, 0xff, 0x40, 0x60, 0x70, 0x6f, 0x7b];
            for _ in 0..rng.range(1, 4) {
                let i = rng.below(len) as usize;
                if i < wasm.len() {
                    wasm[i] = INTERESTING[rng.below(10) as usize];
                }
            }
            (wasm, "interesting bytes")
        }
        _ => {
            // Mutate inside one section only (keeps the framing mostly valid).
            if let Some(secs) = smith::sections(&wasm) {
                if !secs.is_empty() {
                    let (_, r) = secs[rng.below(secs.len() as u64) as usize].clone();
                    let i = r.start + 1 + rng.below((r.len() - 1).max(1) as u64) as usize;
                    if i < wasm.len() {
                        wasm[i] = rng.next_u64() as u8;
                    }
                }
            }
            (wasm, "in-section byte")
        }
    }
}

/// Rebuilds a module from the sections of `a` and `b`: duplicated, dropped,
/// swapped, or taken from the other module.
fn splice_sections(rng: &mut Rng, a: &[u8], b: &[u8]) -> Vec<u8> {
    let (Some(sa), Some(sb)) = (smith::sections(a), smith::sections(b)) else {
        return a.to_vec();
    };
    let mut parts: Vec<Vec<u8>> = sa.iter().map(|(_, r)| a[r.clone()].to_vec()).collect();
    let from_b: Vec<Vec<u8>> = sb.iter().map(|(_, r)| b[r.clone()].to_vec()).collect();
    for _ in 0..rng.range(1, 3) {
        let n = parts.len() as u64;
        match rng.below(4) {
            0 if n > 0 => {
                parts.remove(rng.below(n) as usize);
            }
            1 if n > 0 => {
                let s = parts[rng.below(n) as usize].clone();
                parts.insert(rng.below(n + 1) as usize, s);
            }
            2 if n > 1 => {
                let (i, j) = (rng.below(n) as usize, rng.below(n) as usize);
                parts.swap(i, j);
            }
            _ if !from_b.is_empty() => {
                let s = from_b[rng.below(from_b.len() as u64) as usize].clone();
                if n > 0 && rng.chance(1, 2) {
                    let i = rng.below(n) as usize;
                    parts[i] = s;
                } else {
                    parts.insert(rng.below(n + 1) as usize, s);
                }
            }
            _ => {}
        }
    }
    let mut out = a[..8].to_vec();
    for p in parts {
        out.extend(p);
    }
    out
}

/// One input and the configs to try it with.
fn input_of_case(seed: u64) -> (Vec<u8>, Vec<ImportName>, &'static str) {
    let mut rng = Rng::new(seed);
    match rng.below(10) {
        0 => (rng.bytes_in(0, 512), vec![], "random bytes"),
        1 => {
            let mut v = b"\0asm\x01\0\0\0".to_vec();
            v.extend(rng.bytes_in(0, 512));
            (v, vec![], "random bytes after a preamble")
        }
        2 => match valid_module(&mut rng, false) {
            Some((m, forks)) => (m, forks, "valid module"),
            None => (vec![], vec![], "empty"),
        },
        3 => match valid_module(&mut rng, true) {
            Some((m, forks)) => (m, forks, "valid module, all wasm-smith features"),
            None => (vec![], vec![], "empty"),
        },
        k => {
            let all = k == 9;
            let Some((m, forks)) = valid_module(&mut rng, all) else {
                return (vec![], vec![], "empty");
            };
            let all_other = rng.chance(1, 4);
            let other = valid_module(&mut rng, all_other)
                .map(|o| o.0)
                .unwrap_or_default();
            let (m, what) = mutate(&mut rng, m, &other);
            let m = if rng.chance(1, 3) {
                mutate(&mut rng, m, &other).0
            } else {
                m
            };
            (m, forks, what)
        }
    }
}

fn panic_message(p: Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "(non-string panic)".into())
}

/// Runs one case; `Err` describes a property violation.
fn check_case(seed: u64) -> Result<(), (Vec<u8>, String)> {
    let (input, forks, what) = input_of_case(seed);
    let mut configs = vec![Config::default()];
    if !forks.is_empty() {
        configs.push(Config::with_fork_imports(forks.clone()));
    }
    let mut rng = Rng::new(seed ^ 0xe1);
    for config in &configs {
        let r = catch_unwind(AssertUnwindSafe(|| {
            forkify_instrument::instrument(&input, config)
        }));
        match r {
            Err(p) => {
                return Err((
                    input,
                    format!("{what}: instrument() panicked: {}", panic_message(p)),
                ))
            }
            Ok(Ok(out)) => {
                if let Err(e) = smith::validate(&out.bytes) {
                    return Err((
                        input,
                        format!("{what}: instrument() returned an invalid module: {e}"),
                    ));
                }
            }
            Ok(Err(_)) => {}
        }
        let mut names = vec![
            format!("func[{}]", rng.below(40)),
            "func[0]".to_string(),
            "func[4294967295]".into(),
        ];
        names.push(
            ["", "func[", "func[-1]", "$f", "main", "\u{0}"][rng.below(6) as usize].to_string(),
        );
        for name in names {
            let r = catch_unwind(AssertUnwindSafe(|| {
                forkify_instrument::explain(&input, config, &name)
            }));
            if let Err(p) = r {
                return Err((
                    input,
                    format!(
                        "{what}: explain(.., {name:?}) panicked: {}",
                        panic_message(p)
                    ),
                ));
            }
        }
    }
    Ok(())
}

#[test]
fn instrument_and_explain_never_panic() {
    let cases = smith::env_u64("FORKIFY_ROBUST_CASES").unwrap_or(DEFAULT_CASES);
    let first = smith::env_u64("FORKIFY_ROBUST_SEED").unwrap_or(DEFAULT_SEED);
    let mut failures = Vec::new();
    for i in 0..cases {
        let seed = first.wrapping_add(i);
        if let Err((input, msg)) = check_case(seed) {
            let dir = smith::failure_dir("robustness-failures");
            let _ = std::fs::create_dir_all(&dir);
            let path = dir.join(format!("{seed:016x}.wasm"));
            let _ = std::fs::write(&path, &input);
            failures.push(format!(
                "seed {seed:#x}: {msg}\n    saved to {} (replay: FORKIFY_ROBUST_SEED={seed:#x} FORKIFY_ROBUST_CASES=1)",
                path.display()
            ));
        }
    }
    eprintln!("robustness: cases={cases} failures={}", failures.len());
    assert!(
        failures.is_empty(),
        "{} failing case(s):\n{}",
        failures.len(),
        failures[..failures.len().min(20)].join("\n")
    );
}

/// The mutators really produce varied inputs (guards against a generator
/// that silently degenerates to empty inputs).
#[test]
fn mutators_produce_varied_inputs() {
    let mut kinds = std::collections::BTreeMap::new();
    let mut nonempty = 0;
    for i in 0..300 {
        let (input, _, what) = input_of_case(DEFAULT_SEED.wrapping_add(i));
        *kinds.entry(what).or_insert(0) += 1;
        nonempty += !input.is_empty() as u32;
    }
    assert!(kinds.len() >= 8, "{kinds:?}");
    assert!(
        nonempty >= 280,
        "{nonempty} of 300 inputs non-empty; {kinds:?}"
    );
}
