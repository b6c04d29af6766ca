//! Benchmarks that run the outputs: run-time overhead when never forking
//! (`spin`, on wasmtime and on V8). Recursion depth is in depth.rs.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use serde::Serialize;

use crate::measure::median;

/// A module variant to run: the un-instrumented input or a tool's output.
#[derive(Debug, Clone, Serialize)]
pub struct Variant {
    pub label: String,
    #[serde(skip)]
    pub path: PathBuf,
}

/// Run-time overhead samples of one variant on one engine.
#[derive(Debug, Clone, Serialize)]
pub struct OverheadResult {
    pub engine: String,
    pub variant: String,
    pub median_ms: f64,
    pub min_ms: f64,
    pub samples: usize,
    /// spin()'s return value (all variants must agree).
    pub result: u32,
}

/// `spin(n, sentinel)` on wasmtime (Cranelift, default config), all
/// variants compiled first, then `rounds` rounds in turn.
pub fn spin_wasmtime(
    variants: &[Variant],
    n: u32,
    sentinel: u32,
    rounds: usize,
) -> Result<Vec<OverheadResult>> {
    use wasmtime::{Engine, Linker, Module, Store};
    let engine = Engine::default();
    let mut linker = Linker::new(&engine);
    linker
        .func_wrap("kernel", "kernel_fork", || -> i32 { 0 })
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut runs = Vec::new();
    for v in variants {
        let module =
            Module::from_file(&engine, &v.path).map_err(|e| anyhow::anyhow!("{}: {e}", v.label))?;
        let mut store = Store::new(&engine, ());
        let instance = linker
            .instantiate(&mut store, &module)
            .map_err(|e| anyhow::anyhow!("{}: {e}", v.label))?;
        let spin = instance
            .get_typed_func::<(u32, u32), u32>(&mut store, "spin")
            .map_err(|e| anyhow::anyhow!("{}: {e}", v.label))?;
        let result = spin
            .call(&mut store, (n, sentinel))
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        runs.push((store, spin, result, Vec::new()));
    }
    for _ in 0..rounds {
        for (store, spin, result, times) in runs.iter_mut() {
            let t0 = Instant::now();
            let h = spin
                .call(&mut *store, (n, sentinel))
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            times.push(t0.elapsed().as_secs_f64() * 1e3);
            if h != *result {
                bail!("spin result changed between runs");
            }
        }
    }
    Ok(variants
        .iter()
        .zip(runs)
        .map(|(v, (_, _, result, times))| OverheadResult {
            engine: "wasmtime".into(),
            variant: v.label.clone(),
            median_ms: median(&times),
            min_ms: times.iter().copied().fold(f64::INFINITY, f64::min),
            samples: times.len(),
            result,
        })
        .collect())
}

/// `spin(n, sentinel)` on V8 (Node, TurboFan only), one process running
/// all variants in turn.
pub fn spin_v8(
    node: &Path,
    js: &Path,
    variants: &[Variant],
    n: u32,
    sentinel: u32,
    rounds: usize,
) -> Result<Vec<OverheadResult>> {
    let out = Command::new(node)
        .arg("--no-liftoff")
        .arg(js)
        .arg(n.to_string())
        .arg(sentinel.to_string())
        .arg(rounds.to_string())
        .args(variants.iter().map(|v| &v.path))
        .stdin(Stdio::null())
        .output()
        .context("cannot run node")?;
    if !out.status.success() {
        bail!("spin.mjs failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    #[derive(serde::Deserialize)]
    struct Out {
        times_ms: Vec<Vec<f64>>,
        results: Vec<u32>,
    }
    let parsed: Out = serde_json::from_slice(&out.stdout).context("spin.mjs output")?;
    Ok(variants
        .iter()
        .zip(parsed.times_ms.iter().zip(&parsed.results))
        .map(|(v, (times, &result))| OverheadResult {
            engine: "V8".into(),
            variant: v.label.clone(),
            median_ms: median(times),
            min_ms: times.iter().copied().fold(f64::INFINITY, f64::min),
            samples: times.len(),
            result,
        })
        .collect())
}
