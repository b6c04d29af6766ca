//! Robustness property: `instrument` and `explain` never panic and never
//! fail internally, whatever the input: random bytes, and valid modules
//! mangled by bit flips, truncations, byte-range edits and section splices
//! (`forkify_testkit::inputs`). Refusals are fine; an `Ok` output must be a
//! valid, complete artifact (`forkify_testkit::properties`).
//!
//! Environment: `FORKIFY_ROBUST_CASES` (default 3000), `FORKIFY_ROBUST_SEED`.
//! Failing inputs are saved to `target/robustness-failures/`.

use forkify_instrument::Config;
use forkify_testkit::inputs;
use forkify_testkit::properties::{check_explain, check_instrument};
use forkify_testkit::rng::{env_u64, failure_dir, Rng};

const DEFAULT_CASES: u64 = 3000;
const DEFAULT_SEED: u64 = 0x0b57_0000;

/// Runs one case; `Err` describes a property violation.
fn check_case(seed: u64) -> Result<(), (Vec<u8>, String)> {
    let (input, forks, what) = inputs::case(seed);
    let mut configs = vec![Config::default()];
    if !forks.is_empty() {
        configs.push(Config::with_fork_imports(forks.clone()));
    }
    let mut rng = Rng::new(seed ^ 0xe1);
    for config in &configs {
        check_instrument(&input, config).map_err(|e| (input.clone(), format!("{what}: {e}")))?;
        let mut names = vec![
            format!("func[{}]", rng.below(40)),
            "func[0]".to_string(),
            "func[4294967295]".into(),
        ];
        names.push(
            ["", "func[", "func[-1]", "$f", "main", "\u{0}"][rng.below(6) as usize].to_string(),
        );
        for name in names {
            check_explain(&input, config, &name)
                .map_err(|e| (input.clone(), format!("{what}: {e}")))?;
        }
    }
    Ok(())
}

#[test]
fn instrument_and_explain_never_panic_or_fail_internally() {
    let cases = env_u64("FORKIFY_ROBUST_CASES").unwrap_or(DEFAULT_CASES);
    let first = env_u64("FORKIFY_ROBUST_SEED").unwrap_or(DEFAULT_SEED);
    let mut failures = Vec::new();
    for i in 0..cases {
        let seed = first.wrapping_add(i);
        if let Err((input, msg)) = check_case(seed) {
            let dir = failure_dir("robustness-failures");
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

/// The fuzz target's body (`instrument/fuzz`), on inputs from the case
/// generator, so a plain `cargo test` exercises it.
#[test]
fn fuzz_target_smoke() {
    let mut rng = Rng::new(0xf022);
    for i in 0..200u64 {
        let mut data = vec![(i % 4) as u8];
        data.extend(rng.bytes_in(0, 4096));
        forkify_testkit::properties::fuzz_one(&data);
    }
}

/// The mutators really produce varied inputs (guards against a generator
/// that silently degenerates to empty inputs).
#[test]
fn mutators_produce_varied_inputs() {
    let mut kinds = std::collections::BTreeMap::new();
    let mut nonempty = 0;
    for i in 0..300 {
        let (input, _, what) = inputs::case(DEFAULT_SEED.wrapping_add(i));
        *kinds.entry(what).or_insert(0) += 1;
        nonempty += !input.is_empty() as u32;
    }
    assert!(kinds.len() >= 8, "{kinds:?}");
    assert!(
        nonempty >= 280,
        "{nonempty} of 300 inputs non-empty; {kinds:?}"
    );
}

/// The property really fails on what it must catch: an internal error is a
/// violation, not a refusal (`Error::Internal` comes from a panic anywhere
/// in the pipeline; here, a module of a proposal preflight refuses is a
/// refusal).
#[test]
fn a_refusal_is_not_a_violation() {
    let discard = wat::parse_str(
        r#"(module (import "kernel" "kernel_fork" (func (result i32))) (memory 1)
             (func (memory.discard (i32.const 0) (i32.const 0))))"#,
    )
    .expect("wat");
    match forkify_instrument::instrument(&discard, &Config::default()) {
        Err(forkify_instrument::Error::UnsupportedProposal { proposal, .. }) => {
            assert_eq!(proposal, "memory control")
        }
        other => panic!("expected a refusal naming the proposal, got {other:?}"),
    }
    assert!(check_instrument(&discard, &Config::default()).is_ok());
}
