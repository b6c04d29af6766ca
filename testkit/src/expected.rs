//! `examples/expected.json`: the exact run of every example program (its
//! process tree, each process's output and status, and the order of all
//! writes), read in one place for every test that runs the examples.
//!
//! The file writes a status as a bare number; [`report`] gives a program's
//! run in the JSON shape of `forkify_host::RunReport` (`{"exited": N}`), so
//! a test compares `serde_json::to_value(&report)` with it, and the
//! JavaScript host's report (the same shape) likewise.

use std::sync::OnceLock;

use serde_json::{json, Value};

use crate::paths::repo_root;

/// The whole file, parsed once per test binary.
pub fn all() -> &'static Value {
    static EXPECTED: OnceLock<Value> = OnceLock::new();
    EXPECTED.get_or_init(|| {
        let path = repo_root().join("examples/expected.json");
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{} is not valid JSON: {e}", path.display()))
    })
}

/// The programs the file lists, in its order.
pub fn programs() -> Vec<String> {
    all()
        .as_object()
        .expect("examples/expected.json is an object")
        .keys()
        .cloned()
        .collect()
}

/// The expected run of `program`, in the shape of a serialized `RunReport`.
pub fn report(program: &str) -> Value {
    let mut v = all()[program].clone();
    assert!(
        v.is_object(),
        "examples/expected.json has no entry for `{program}`"
    );
    if let Some(procs) = v["processes"].as_array_mut() {
        for p in procs {
            if !p["status"].is_object() {
                let code = p["status"].clone();
                p["status"] = json!({ "exited": code });
            }
        }
    }
    v
}

/// The differences between an expected and an actual run (both in the
/// `RunReport` shape), one per line; empty when they agree.
pub fn differences(expected: &Value, actual: &Value) -> String {
    let mut out = String::new();
    let procs = |v: &Value| v["processes"].as_array().cloned().unwrap_or_default();
    let (want, got) = (procs(expected), procs(actual));
    if want.len() != got.len() {
        out.push_str(&format!(
            "{} processes expected, {} ran\n",
            want.len(),
            got.len()
        ));
    }
    for (w, g) in want.iter().zip(&got) {
        for key in ["pid", "parent", "status", "stdout"] {
            if w[key] != g[key] {
                out.push_str(&format!(
                    "pid {}: {key}: expected {}, got {}\n",
                    w["pid"], w[key], g[key]
                ));
            }
        }
    }
    if expected["log"] != actual["log"] {
        out.push_str(&format!(
            "the order of writes differs:\n  expected {}\n  got      {}\n",
            expected["log"], actual["log"]
        ));
    }
    out
}
