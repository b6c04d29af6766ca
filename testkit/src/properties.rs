//! The properties every input must satisfy, checked in one place for the
//! robustness test and the fuzz target: `instrument` and `explain` never
//! panic and never fail internally ([`forkify_instrument::Error::Internal`]
//! is a bug, whatever the input); a module `instrument` returns validates
//! and is a complete artifact, a passed-through one is byte-identical, and
//! an instrumented one cannot be instrumented again.

use std::panic::{catch_unwind, AssertUnwindSafe};

use forkify_instrument::{Config, Error};

fn panic_message(p: Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "(non-string panic)".into())
}

/// Checks `instrument(input, config)`; `Err` describes the violation.
pub fn check_instrument(input: &[u8], config: &Config) -> Result<(), String> {
    let r = catch_unwind(AssertUnwindSafe(|| {
        forkify_instrument::instrument(input, config)
    }));
    let out = match r {
        Err(p) => return Err(format!("instrument() panicked: {}", panic_message(p))),
        Ok(Err(e @ Error::Internal { .. })) => {
            return Err(format!("instrument() failed internally: {e}"))
        }
        Ok(Err(_)) => return Ok(()),
        Ok(Ok(out)) => out,
    };
    if out.report.passed_through {
        if out.bytes != input {
            return Err("a passed-through module is not byte-identical".into());
        }
        return Ok(());
    }
    crate::artifact::check(&out.bytes)
        .map_err(|e| format!("instrument() returned a bad artifact: {e}"))?;
    match forkify_instrument::instrument(&out.bytes, config) {
        Err(Error::AlreadyInstrumented(_)) => Ok(()),
        Err(e) => Err(format!(
            "instrumenting the output again must be refused as already instrumented, got: {e}"
        )),
        Ok(_) => Err("an instrumented module was instrumented again".into()),
    }
}

/// Checks `explain(input, config, name)`: no panic, no internal error.
pub fn check_explain(input: &[u8], config: &Config, name: &str) -> Result<(), String> {
    match catch_unwind(AssertUnwindSafe(|| {
        forkify_instrument::explain(input, config, name)
    })) {
        Err(p) => Err(format!(
            "explain(.., {name:?}) panicked: {}",
            panic_message(p)
        )),
        Ok(Err(e @ Error::Internal { .. })) => {
            Err(format!("explain(.., {name:?}) failed internally: {e}"))
        }
        Ok(_) => Ok(()),
    }
}

/// The fuzz target's body: the first byte picks the kind of input (raw
/// bytes, a generated module, a wasm-smith default-features module), the
/// rest drives it. Panics on a violation, which is what libFuzzer reports.
pub fn fuzz_one(data: &[u8]) {
    let Some((&kind, rest)) = data.split_first() else {
        return;
    };
    let (wasm, forks) = match kind % 4 {
        0 => (rest.to_vec(), Vec::new()),
        1 => match crate::smith::any_features(rest) {
            Some(m) => m,
            None => return,
        },
        _ => {
            let seed = rest
                .iter()
                .take(8)
                .fold(0u64, |h, b| crate::rng::mix64(h ^ u64::from(*b)));
            match crate::smith::generate(seed) {
                Some(g) => (g.bytes, g.fork.map(|f| vec![f.1]).unwrap_or_default()),
                None => return,
            }
        }
    };
    let mut configs = vec![Config::default()];
    if !forks.is_empty() {
        configs.push(Config::with_fork_imports(forks));
    }
    for config in &configs {
        if let Err(e) = check_instrument(&wasm, config) {
            panic!("{e}");
        }
        if let Err(e) = check_explain(&wasm, config, "func[0]") {
            panic!("{e}");
        }
    }
}
