//! Fork latency on the reference host (`cargo-forkify forkify run`, the
//! bundled wasmtime host) as memory and stack depth grow, beside a plain
//! copy of the same bytes.
//!
//! The guest (WAT generated here, instrumented with forkify) fills MEM MiB
//! of memory, recurses DEPTH frames, and at the bottom forks K times; each
//! child exits at once, the parent waits for it. One fork costs
//! (time(K forks) - time(0 forks)) / K, measured in pairs, median of the
//! pairs: process start, compilation, instantiation of the first process
//! and the fill cancel out. A fork here is the whole round trip: unwind DEPTH frames,
//! instantiate the child, copy memory, rewind the child, child exit, rewind
//! the parent, waitpid.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use serde::Serialize;

use crate::measure::median;

/// Forks per timed run.
pub const FORKS: u32 = 16;

/// One row.
#[derive(Debug, Clone, Serialize)]
pub struct LatencyResult {
    pub memory_mib: u32,
    pub depth: u32,
    /// Bytes of linear memory at the fork (the program's memory plus the
    /// host's 1 MiB save buffer): what the host copies.
    pub copied_bytes: u64,
    pub fork_median_ms: f64,
    pub fork_min_ms: f64,
    pub pairs: usize,
    /// Copying the same number of bytes into a fresh anonymous mapping
    /// (mmap + page faults + copy + munmap, as for the child's new memory).
    pub copy_cold_ms: f64,
    /// Copying them into memory already touched.
    pub copy_warm_ms: f64,
}

fn guest(memory_mib: u32, depth: u32, forks: u32) -> String {
    let pages = memory_mib * 16;
    let bytes = u64::from(memory_mib) << 20;
    format!(
        r#"(module
  (import "kernel" "kernel_fork" (func $fork (result i32)))
  (import "kernel" "kernel_exit" (func $exit (param i32)))
  (import "kernel" "kernel_waitpid" (func $waitpid (param i32) (result i32)))
  (memory (export "memory") {pages})
  (func $forks (result i64)
    (local $i i32) (local $pid i32)
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (i32.const {forks})))
        (local.set $pid (call $fork))
        (if (i32.eqz (local.get $pid)) (then (call $exit (i32.const 0))))
        (if (i32.lt_s (local.get $pid) (i32.const 0)) (then unreachable))
        (drop (call $waitpid (local.get $pid)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (i64.extend_i32_u (local.get $i)))
  (func $rec (param $d i32) (param $acc i64) (result i64)
    (local $x i64) (local $y f64)
    (if (result i64) (i32.eqz (local.get $d))
      (then (i64.add (call $forks) (local.get $acc)))
      (else
        (local.set $x (i64.add (i64.mul (local.get $acc) (i64.const 31))
                               (i64.extend_i32_u (local.get $d))))
        (local.set $y (f64.convert_i64_u (local.get $x)))
        (i64.add
          (i64.xor (call $rec (i32.sub (local.get $d) (i32.const 1)) (local.get $x))
                   (local.get $x))
          (i64.trunc_sat_f64_u (local.get $y))))))
  (func (export "_start")
    (memory.fill (i32.const 0) (i32.const 0x5a) (i32.const {bytes}))
    (drop (call $rec (i32.const {depth}) (i64.const 1)))))
"#
    )
}

/// Writes the guest, instrumented by the CLI, to `dir`.
fn instrumented(
    forkify: &Path,
    dir: &Path,
    memory_mib: u32,
    depth: u32,
    forks: u32,
) -> Result<std::path::PathBuf> {
    let plain = dir.join(format!("latency-{memory_mib}mib-{depth}-{forks}.wasm"));
    let out = dir.join(format!(
        "latency-{memory_mib}mib-{depth}-{forks}.forked.wasm"
    ));
    std::fs::write(&plain, wat::parse_str(guest(memory_mib, depth, forks))?)?;
    let o = Command::new(forkify)
        .args(["forkify", "instrument"])
        .arg(&plain)
        .arg("-o")
        .arg(&out)
        .output()
        .context("cannot run cargo-forkify")?;
    if !o.status.success() {
        bail!(
            "cargo-forkify instrument failed on the latency guest: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    Ok(out)
}

/// Milliseconds for `cargo-forkify forkify run --json FILE`, checking that
/// it created `forks` children and exited 0.
fn time_run(forkify: &Path, wasm: &Path, forks: u32) -> Result<f64> {
    let t0 = Instant::now();
    let o = Command::new(forkify)
        .args(["forkify", "run", "--json"])
        .arg(wasm)
        .stdin(Stdio::null())
        .output()
        .context("cannot run cargo-forkify")?;
    let t = t0.elapsed().as_secs_f64() * 1e3;
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_default();
    let processes = report["processes"].as_array().map_or(0, |p| p.len());
    if !o.status.success() || processes != forks as usize + 1 {
        bail!(
            "the latency guest did not run as expected ({} processes): {}{}",
            processes,
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
    }
    Ok(t)
}

/// A fresh anonymous mapping of `len` bytes (untouched pages), as the
/// child's new linear memory is.
struct Fresh {
    ptr: *mut u8,
    len: usize,
}

impl Fresh {
    fn new(len: usize) -> Result<Fresh> {
        // SAFETY: an anonymous private mapping; checked for failure.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            bail!("mmap of {len} bytes failed");
        }
        Ok(Fresh {
            ptr: ptr.cast(),
            len,
        })
    }
    fn as_mut(&mut self) -> &mut [u8] {
        // SAFETY: the mapping is `len` bytes, readable and writable, ours.
        unsafe { std::slice::from_raw_parts_mut(self.ptr, self.len) }
    }
}

impl Drop for Fresh {
    fn drop(&mut self) {
        // SAFETY: unmapping exactly what `new` mapped.
        unsafe { libc::munmap(self.ptr.cast(), self.len) };
    }
}

/// Medians of copying `bytes` into fresh pages and into warm ones.
fn copies(bytes: usize, runs: usize) -> Result<(f64, f64)> {
    let src = vec![0x5au8; bytes];
    let mut dst = vec![1u8; bytes];
    let mut cold = Vec::new();
    let mut warm = Vec::new();
    for _ in 0..runs {
        let t0 = Instant::now();
        let mut fresh = Fresh::new(bytes)?;
        fresh.as_mut().copy_from_slice(&src);
        std::hint::black_box(fresh.as_mut());
        cold.push(t0.elapsed().as_secs_f64() * 1e3);
        drop(fresh);
        let t0 = Instant::now();
        dst.copy_from_slice(&src);
        std::hint::black_box(&mut dst);
        warm.push(t0.elapsed().as_secs_f64() * 1e3);
    }
    Ok((median(&cold), median(&warm)))
}

/// One configuration, `runs` pairs.
pub fn measure(
    forkify: &Path,
    dir: &Path,
    memory_mib: u32,
    depth: u32,
    runs: usize,
) -> Result<LatencyResult> {
    std::fs::create_dir_all(dir)?;
    let with = instrumented(forkify, dir, memory_mib, depth, FORKS)?;
    let without = instrumented(forkify, dir, memory_mib, depth, 0)?;
    // Warm up (page cache, allocator) once, untimed.
    time_run(forkify, &without, 0)?;
    let mut per_fork = Vec::new();
    for _ in 0..runs {
        let t0 = time_run(forkify, &without, 0)?;
        let tk = time_run(forkify, &with, FORKS)?;
        per_fork.push((tk - t0) / f64::from(FORKS));
    }
    let copied_bytes = (u64::from(memory_mib) + 1) << 20;
    let (copy_cold_ms, copy_warm_ms) = copies(copied_bytes as usize, runs.max(5))?;
    Ok(LatencyResult {
        memory_mib,
        depth,
        copied_bytes,
        fork_median_ms: median(&per_fork),
        fork_min_ms: per_fork.iter().copied().fold(f64::INFINITY, f64::min),
        pairs: per_fork.len(),
        copy_cold_ms,
        copy_warm_ms,
    })
}
