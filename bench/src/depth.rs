//! Recursion depth (issue 9): how deep each probe's `walk` can recurse
//! before V8's stack overflows, un-instrumented against each tool's output,
//! on Node (TurboFan only, Liftoff only) and in headless Chromium (default
//! flags, TurboFan only, Liftoff only, TurboFan without wasm inlining);
//! and, for the probes that ask for it (sites-1k), the smallest
//! `node --stack-size` at which fixed depths complete. The probes are
//! bench/guests/walk (when built) and those of depth_probes.rs; the drivers
//! are bench/js/depth.mjs (Node) and bench/js/depth-page.js (Chromium).
//!
//! `forkify-bench run` calls [`measure`] with [`Config::full`];
//! `forkify-bench depth` ([`cli`], run by bench/depth-quick.sh) compares
//! any number of forkify binaries against Asyncify -O, each Node search in
//! one process.

use std::io::Read as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde::Serialize;
use wasmparser::{ExternalKind, Operator, Parser, Payload, TypeRef};

use crate::depth_probes;
use crate::first_line;
use crate::tools::{Tool, Toolbox};

/// The V8 tiers of the Node runs.
pub const TIERS: [(&str, &[&str]); 2] = [
    ("TurboFan", &["--no-liftoff"]),
    ("Liftoff", &["--liftoff-only"]),
];

/// The Chromium runs: `--js-flags` of each. Chromium's V8 inlines wasm
/// calls in TurboFan (Node 20's does not); the last run shows frame size
/// without that.
pub const CHROMIUM_TIERS: [(&str, &[&str]); 4] = [
    ("default", &[]),
    ("TurboFan", &["--no-liftoff"]),
    ("Liftoff", &["--liftoff-only"]),
    (
        "TurboFan, no inlining",
        &["--no-liftoff", "--no-wasm-inlining"],
    ),
];

/// Depths at which the native stack is measured; the difference gives
/// bytes per frame, free of what Node itself uses below `walk`.
pub const STACK_DEPTHS: [u64; 2] = [500, 1000];

/// `--stack-size` values are searched up to this (KiB); the child's
/// RLIMIT_STACK is raised above it, so V8's limit is the one hit.
const STACK_CAP_KIB: u64 = 128 * 1024;

/// The fork import of every probe.
const FORK: &str = "kernel.kernel_fork";

/// Deepest `walk(depth)` that completes, per probe, variant, engine and tier.
#[derive(Debug, Clone, Serialize)]
pub struct DepthResult {
    pub probe: String,
    /// `Node` or `Chromium`.
    pub engine: String,
    pub tier: String,
    /// V8 flags (`node FLAGS` or `chromium --js-flags=FLAGS`).
    pub v8_flags: Vec<String>,
    pub variant: String,
    pub max_depth: Option<u64>,
    /// Attempts made (Node processes, or attempts in one process/page).
    pub probes: u32,
    /// Why there is no depth, or the warm-up result disagreed.
    pub error: Option<String>,
}

/// Smallest `node --stack-size` (KiB) at which `walk(depth)` completes.
#[derive(Debug, Clone, Serialize)]
pub struct StackResult {
    pub probe: String,
    pub tier: String,
    pub variant: String,
    pub depth: u64,
    /// None: not even at the cap.
    pub stack_kib: Option<u64>,
    pub cap_kib: u64,
    pub error: Option<String>,
}

/// One probe and its variants.
#[derive(Debug, Clone, Serialize)]
pub struct ProbeInfo {
    pub name: String,
    pub about: String,
    /// The ratio to un-instrumented depth asked for.
    pub target: f64,
    /// Fork-path call sites (direct calls of functions that reach the
    /// fork import, and of the import) in the recursive function.
    pub walk_sites: Option<usize>,
    pub variants: Vec<VariantInfo>,
}

/// One variant of a probe.
#[derive(Debug, Clone, Serialize)]
pub struct VariantInfo {
    /// `input`, `wasm-opt-O`, `forkify`, `asyncify-O`.
    pub tool: String,
    pub label: String,
    pub bytes: u64,
    /// Declared locals of the recursive function (the self-recursive one,
    /// the export `walk` preferred); None: not found.
    pub walk_locals: Option<u32>,
    /// The tool failed: its words.
    pub error: Option<String>,
}

/// Everything the depth benchmark wrote; flattened into results.json.
#[derive(Debug, Default, Serialize)]
pub struct Section {
    pub depth: Vec<DepthResult>,
    pub depth_stack: Vec<StackResult>,
    pub depth_probes: Vec<ProbeInfo>,
    /// Node: `fresh process per probe` or `one process per search`.
    pub depth_node_method: String,
    /// `node --version` and its V8.
    pub depth_node: String,
    /// `chromium --version`, or why Chromium was not run.
    pub depth_chromium: Option<String>,
    pub depth_seconds: f64,
}

/// What to measure.
pub struct Config {
    /// forkify binaries to compare: (label, path).
    pub forkify: Vec<(String, PathBuf)>,
    /// Also `wasm-opt -O` alone (what Asyncify -O should be read against).
    /// Asyncify without -O is left out: TurboFan takes 40 s to compile its
    /// sites-1k output.
    pub full: bool,
    /// Node: the answer checked with a fresh process per probe (the search
    /// in one process finds it; the fresh processes then walk from there).
    /// Else the search in one process is the answer.
    pub fresh_process: bool,
    pub chromium: Option<PathBuf>,
    /// bench/guests/walk's module, when built.
    pub guest_walk: Option<PathBuf>,
}

impl Config {
    /// What `forkify-bench run` measures.
    pub fn full(tb: &Toolbox, out: &Path) -> Config {
        Config {
            forkify: vec![(Tool::Forkify.label().into(), tb.forkify.clone())],
            full: true,
            fresh_process: true,
            chromium: find_chromium(),
            guest_walk: Some(out.join("guests/wasm32-unknown-unknown/release/bench_walk.wasm")),
        }
    }
}

/// `$CHROMIUM`, else the first of chromium, chromium-browser, google-chrome
/// on PATH.
pub fn find_chromium() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("CHROMIUM") {
        return (!p.is_empty()).then(|| PathBuf::from(p));
    }
    let path = std::env::var_os("PATH")?;
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .flat_map(|n| std::env::split_paths(&path).map(move |d| d.join(n)))
        .find(|p| p.is_file())
}

struct ProbeModule {
    name: String,
    about: String,
    target: f64,
    warm: u32,
    stack: bool,
    path: PathBuf,
}

struct Built {
    probe: usize,
    tool: &'static str,
    label: String,
    path: Option<PathBuf>,
    error: Option<String>,
}

/// Runs the depth benchmark, writing modules under `dir`.
pub fn measure(
    tb: &Toolbox,
    repo: &Path,
    dir: &Path,
    cfg: &Config,
    log: &dyn Fn(&str),
) -> Result<Section> {
    let started = Instant::now();
    std::fs::create_dir_all(dir)?;
    let js = repo.join("bench/js/depth.mjs");
    let mut probes = Vec::new();
    match &cfg.guest_walk {
        Some(p) if p.exists() => probes.push(ProbeModule {
            name: "bench-walk".into(),
            about: "bench/guests/walk (Rust): i64/f64/i32 live across the recursive call".into(),
            target: 0.99,
            warm: 64,
            stack: false,
            path: p.clone(),
        }),
        Some(p) => log(&format!(
            "  depth: {} not built, probe bench-walk skipped",
            p.display()
        )),
        None => {}
    }
    for p in depth_probes::generated()? {
        let path = dir.join(p.name).join("input.wasm");
        std::fs::create_dir_all(dir.join(p.name))?;
        std::fs::write(&path, &p.wasm)?;
        probes.push(ProbeModule {
            name: p.name.into(),
            about: p.about,
            target: p.target,
            warm: p.warm,
            stack: p.stack,
            path,
        });
    }

    // Variants: the input, then each tool's output (the tools run in parallel).
    enum Job<'a> {
        WasmOptO,
        Tool(Tool),
        Forkify(&'a str, &'a Path),
    }
    let mut jobs = Vec::new();
    for (i, _) in probes.iter().enumerate() {
        if cfg.full {
            jobs.push((i, Job::WasmOptO));
        }
        for (label, bin) in &cfg.forkify {
            jobs.push((i, Job::Forkify(label, bin)));
        }
        jobs.push((i, Job::Tool(Tool::AsyncifyO)));
    }
    let built: Vec<Built> = par_map(&jobs, |(i, job)| {
        let p = &probes[*i];
        let input = std::fs::read(&p.path).unwrap_or_default();
        let out_dir = p.path.parent().unwrap_or(dir).to_path_buf();
        let (tool, label, cmd_out) = match job {
            Job::WasmOptO => {
                let out = out_dir.join(format!("wasm-opt-O-{:016x}.wasm", fnv(&input)));
                let mut c = tb.wasm_opt_command();
                c.arg(&p.path).arg("-O").arg("-o").arg(&out);
                (
                    "wasm-opt-O",
                    "wasm-opt -O only".to_string(),
                    run_tool(c, &out, true),
                )
            }
            Job::Tool(t) => {
                let out = out_dir.join(format!("{}-{:016x}.wasm", t.id(), fnv(&input)));
                let c = tb.command(*t, &p.path, &out, &[FORK.into()], &[]);
                (t.id(), t.label().to_string(), run_tool(c, &out, true))
            }
            Job::Forkify(label, bin) => {
                let out = out_dir.join(format!("forkify-{}.wasm", sanitize(label)));
                let mut t = tb.clone();
                t.forkify = bin.to_path_buf();
                let c = t.command(Tool::Forkify, &p.path, &out, &[FORK.into()], &[]);
                ("forkify", label.to_string(), run_tool(c, &out, false))
            }
        };
        match cmd_out {
            Ok(path) => Built {
                probe: *i,
                tool,
                label,
                path: Some(path),
                error: None,
            },
            Err(e) => Built {
                probe: *i,
                tool,
                label,
                path: None,
                error: Some(e),
            },
        }
    });

    let mut infos = Vec::new();
    // (probe index, label, path): every module that is measured
    let mut variants: Vec<(usize, String, PathBuf)> = Vec::new();
    for (i, p) in probes.iter().enumerate() {
        let mut vs = vec![(
            "input",
            "un-instrumented".to_string(),
            Some(p.path.clone()),
            None,
        )];
        for b in built.iter().filter(|b| b.probe == i) {
            if let Some(e) = &b.error {
                log(&format!("  depth {}: {} failed: {e}", p.name, b.label));
            }
            vs.push((b.tool, b.label.clone(), b.path.clone(), b.error.clone()));
        }
        let mut info = ProbeInfo {
            name: p.name.clone(),
            about: p.about.clone(),
            target: p.target,
            walk_sites: None,
            variants: Vec::new(),
        };
        for (tool, label, path, error) in vs {
            let (bytes, shape) = match &path {
                Some(path) => {
                    let wasm = std::fs::read(path)?;
                    (wasm.len() as u64, walk_shape(&wasm).ok())
                }
                None => (0, None),
            };
            if label == "un-instrumented" {
                info.walk_sites = shape.as_ref().and_then(|s| s.sites);
            }
            info.variants.push(VariantInfo {
                tool: tool.into(),
                label: label.clone(),
                bytes,
                walk_locals: shape.and_then(|s| s.locals),
                error,
            });
            if let Some(path) = path {
                variants.push((i, label, path));
            }
        }
        infos.push(info);
    }

    // Node: every variant under every tier.
    let mut node_jobs = Vec::new();
    for (v, _) in variants.iter().enumerate() {
        for (t, _) in TIERS.iter().enumerate() {
            node_jobs.push((v, t));
        }
    }
    log(&format!(
        "  depth: {} probes, {} modules, {} Node searches",
        probes.len(),
        variants.len(),
        node_jobs.len()
    ));
    let node = par_map(&node_jobs, |&(v, t)| {
        let (pi, label, path) = &variants[v];
        let p = &probes[*pi];
        let (tier, flags) = TIERS[t];
        let r = search_in_process(tb, &js, flags, path, p.warm);
        let r = match r {
            Ok((d, n, _)) if cfg.fresh_process => {
                search_fresh(tb, &js, flags, path, p.warm, Some(d)).map(|(d, m, w)| (d, n + m, w))
            }
            Err(_) if cfg.fresh_process => search_fresh(tb, &js, flags, path, p.warm, None),
            r => r,
        };
        let (max_depth, n, warm, error) = match r {
            Ok((d, n, w)) => (Some(d), n, w, None),
            Err(e) => (None, 0, None, Some(format!("{e:#}"))),
        };
        (
            DepthResult {
                probe: p.name.clone(),
                engine: "Node".into(),
                tier: tier.into(),
                v8_flags: flags.iter().map(|s| s.to_string()).collect(),
                variant: label.clone(),
                max_depth,
                probes: n,
                error,
            },
            warm,
        )
    });
    let mut depth = check_warm(node);
    for d in &depth {
        log(&format!(
            "  depth {} Node {} {}: {}",
            d.probe,
            d.tier,
            d.variant,
            d.max_depth
                .map_or_else(|| d.error.clone().unwrap_or_default(), |x| x.to_string())
        ));
    }

    // The native stack each variant of a `stack` probe needs.
    let mut stack_jobs = Vec::new();
    for (v, (pi, _, _)) in variants.iter().enumerate() {
        if probes[*pi].stack {
            for (t, _) in TIERS.iter().enumerate() {
                for d in STACK_DEPTHS {
                    stack_jobs.push((v, t, d));
                }
            }
        }
    }
    let cap = stack_cap_kib();
    let stack = par_map(&stack_jobs, |&(v, t, d)| {
        let (pi, label, path) = &variants[v];
        let p = &probes[*pi];
        let (tier, flags) = TIERS[t];
        // 984 KiB (V8's default) held `max_depth` frames.
        let guess = depth
            .iter()
            .find(|r| {
                r.engine == "Node" && r.tier == tier && r.probe == p.name && r.variant == *label
            })
            .and_then(|r| r.max_depth)
            .filter(|&m| m >= 8)
            .map(|m| 984 * d / m);
        let r = stack_need(tb, &js, flags, path, d, p.warm, guess, cap);
        StackResult {
            probe: p.name.clone(),
            tier: tier.into(),
            variant: label.clone(),
            depth: d,
            stack_kib: r.as_ref().ok().copied().flatten(),
            cap_kib: cap,
            error: r.err().map(|e| format!("{e:#}")),
        }
    });
    for s in &stack {
        log(&format!(
            "  stack {} {} {} depth {}: {:?} KiB",
            s.probe, s.tier, s.variant, s.depth, s.stack_kib
        ));
    }

    // Chromium: one page per tier, every variant in it.
    let chromium_version = match &cfg.chromium {
        Some(c) => {
            let v = first_line(Command::new(c).arg("--version"));
            let mut rows = Vec::new();
            for (tier, flags) in CHROMIUM_TIERS {
                let t0 = Instant::now();
                match chromium_search(repo, c, dir, tier, flags, &probes, &variants) {
                    Ok(r) => rows.extend(r),
                    Err(e) => {
                        log(&format!("  depth: Chromium {tier} failed: {e:#}"));
                        for (pi, label, _) in &variants {
                            rows.push((
                                DepthResult {
                                    probe: probes[*pi].name.clone(),
                                    engine: "Chromium".into(),
                                    tier: tier.into(),
                                    v8_flags: flags.iter().map(|s| s.to_string()).collect(),
                                    variant: label.clone(),
                                    max_depth: None,
                                    probes: 0,
                                    error: Some(format!("{e:#}")),
                                },
                                None,
                            ));
                        }
                    }
                }
                log(&format!(
                    "  depth: Chromium {tier} took {:.1} s",
                    t0.elapsed().as_secs_f64()
                ));
            }
            let rows = check_warm(rows);
            for d in &rows {
                log(&format!(
                    "  depth {} Chromium {} {}: {}",
                    d.probe,
                    d.tier,
                    d.variant,
                    d.max_depth
                        .map_or_else(|| d.error.clone().unwrap_or_default(), |x| x.to_string())
                ));
            }
            depth.extend(rows);
            Some(v)
        }
        None => {
            log("  depth: no Chromium found (set CHROMIUM), skipped");
            Some("not run: no chromium, chromium-browser or google-chrome on PATH, and CHROMIUM unset".into())
        }
    };

    Ok(Section {
        depth,
        depth_stack: stack,
        depth_probes: infos,
        depth_node_method: if cfg.fresh_process {
            "a fresh process per probe (starting from a search in one process)".into()
        } else {
            "one process per search, a fresh instance per attempt".into()
        },
        depth_node: format!(
            "{} (V8 {})",
            first_line(Command::new(&tb.node).arg("--version")),
            first_line(Command::new(&tb.node).args(["-p", "process.versions.v8"]))
        ),
        depth_chromium: chromium_version,
        depth_seconds: started.elapsed().as_secs_f64(),
    })
}

/// Each probe's `walk(warm)` must return the same in every variant (per
/// engine and tier): a variant that disagrees gets an error.
fn check_warm(rows: Vec<(DepthResult, Option<String>)>) -> Vec<DepthResult> {
    let base: Vec<(String, String, String, String)> = rows
        .iter()
        .filter(|(d, _)| d.variant == "un-instrumented")
        .filter_map(|(d, w)| {
            Some((
                d.probe.clone(),
                d.engine.clone(),
                d.tier.clone(),
                w.clone()?,
            ))
        })
        .collect();
    rows.into_iter()
        .map(|(mut d, w)| {
            let b = base
                .iter()
                .find(|(p, e, t, _)| *p == d.probe && *e == d.engine && *t == d.tier);
            if let (Some((_, _, _, b)), Some(w)) = (b, &w) {
                if b != w && d.error.is_none() {
                    d.error = Some(format!("walk(warm) returned {w}, un-instrumented {b}"));
                }
            }
            d
        })
        .collect()
}

/// Runs a tool, returns its output (reused when `cache` and it exists: the
/// name holds the input's hash).
fn run_tool(mut cmd: Command, out: &Path, cache: bool) -> std::result::Result<PathBuf, String> {
    if cache && out.exists() {
        return Ok(out.to_path_buf());
    }
    let _ = std::fs::remove_file(out);
    let o = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {cmd:?}: {e}"))?;
    if o.status.success() && out.exists() {
        Ok(out.to_path_buf())
    } else {
        let err = String::from_utf8_lossy(&o.stderr);
        let tail: Vec<&str> = err.lines().rev().take(3).collect();
        Err(format!(
            "{} ({})",
            tail.into_iter().rev().collect::<Vec<_>>().join(" / "),
            o.status
        ))
    }
}

fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn fnv(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100_0000_01b3);
    }
    h
}

/// `f` over `items` on as many threads as there are cores, in order.
fn par_map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(items.len().max(1));
    let next = AtomicUsize::new(0);
    let out: Mutex<Vec<Option<R>>> = Mutex::new((0..items.len()).map(|_| None).collect());
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= items.len() {
                    break;
                }
                let r = f(&items[i]);
                out.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(r);
            });
        }
    });
    out.into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .into_iter()
        .map(|r| r.expect("every item was mapped"))
        .collect()
}

/// `node [--stack-size=N] FLAGS js ARGS`, stdout.
fn node(
    tb: &Toolbox,
    stack_kib: Option<u64>,
    flags: &[&str],
    js: &Path,
    args: &[&str],
) -> Result<(String, String)> {
    let mut c = Command::new(&tb.node);
    if let Some(k) = stack_kib {
        c.arg(format!("--stack-size={k}"));
        // V8's limit must be the one hit, not the thread's: room above it.
        let want = ((k + 8 * 1024) * 1024) as libc::rlim_t;
        // SAFETY: getrlimit/setrlimit are async-signal-safe and only touch
        // the child between fork and exec.
        unsafe {
            c.pre_exec(move || {
                let mut lim = libc::rlimit {
                    rlim_cur: 0,
                    rlim_max: 0,
                };
                if libc::getrlimit(libc::RLIMIT_STACK, &mut lim) == 0 && lim.rlim_cur < want {
                    lim.rlim_cur = want.min(lim.rlim_max);
                    libc::setrlimit(libc::RLIMIT_STACK, &lim);
                }
                Ok(())
            });
        }
    }
    let out = c
        .args(flags)
        .arg(js)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .context("cannot run node")?;
    Ok((
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

/// The largest `--stack-size` (KiB) the children can use: the cap, or
/// less when the hard RLIMIT_STACK is lower.
fn stack_cap_kib() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes the struct it is given.
    let ok = unsafe { libc::getrlimit(libc::RLIMIT_STACK, &mut lim) } == 0;
    if !ok || lim.rlim_max == libc::RLIM_INFINITY {
        return STACK_CAP_KIB;
    }
    (lim.rlim_max / 1024)
        .saturating_sub(8 * 1024)
        .clamp(256, STACK_CAP_KIB)
}

/// One fresh-process probe: Ok(Some(warm result)) when `walk(depth)` completed.
fn probe_once(
    tb: &Toolbox,
    js: &Path,
    stack_kib: Option<u64>,
    flags: &[&str],
    wasm: &Path,
    depth: u64,
    warm: u32,
) -> Result<Option<String>> {
    let (out, err) = node(
        tb,
        stack_kib,
        flags,
        js,
        &[
            &wasm.to_string_lossy(),
            &depth.to_string(),
            &warm.to_string(),
        ],
    )?;
    let mut lines = out.lines();
    match lines.next().map(str::trim) {
        Some("ok") => Ok(Some(
            lines
                .next()
                .and_then(|l| l.strip_prefix("warm "))
                .unwrap_or("")
                .to_string(),
        )),
        Some("overflow") => Ok(None),
        other => bail!(
            "depth probe of {} at {depth} printed {other:?}: {}",
            wasm.display(),
            err.lines().rev().take(4).collect::<Vec<_>>().join(" / ")
        ),
    }
}

/// The deepest depth that completes, a fresh Node process per probe:
/// (depth, probes, warm result). `walk(warm)` first; when even that
/// overflows, the search goes below it (and there is no warm result to
/// compare). From `hint` (the in-process answer, usually off by a frame or
/// two) it gallops to a bracket; without one it doubles from 1024. Then
/// bisection.
fn search_fresh(
    tb: &Toolbox,
    js: &Path,
    flags: &[&str],
    wasm: &Path,
    warm: u32,
    hint: Option<u64>,
) -> Result<(u64, u32, Option<String>)> {
    let probes = std::cell::Cell::new(0u32);
    let ok = |d: u64| -> Result<bool> {
        probes.set(probes.get() + 1);
        Ok(probe_once(tb, js, None, flags, wasm, d, warm)?.is_some())
    };
    let warm = u64::from(warm);
    let warm_result = probe_once(tb, js, None, flags, wasm, warm, warm as u32)?;
    probes.set(1);
    // ok < bad, ok completes (0 trivially), bad overflows.
    let (mut good, mut bad) = match warm_result {
        Some(_) => (warm, None),
        None => (0, Some(warm)),
    };
    if let Some(h) = hint.filter(|&h| h > good && bad.is_none_or(|b| h < b)) {
        let mut step = 1;
        if ok(h)? {
            good = h;
            loop {
                let c = good + step;
                if ok(c)? {
                    good = c;
                    step *= 2;
                } else {
                    bad = Some(c);
                    break;
                }
            }
        } else {
            bad = Some(h);
            while let Some(c) = h.checked_sub(step).filter(|&c| c > good) {
                if ok(c)? {
                    good = c;
                    break;
                }
                bad = Some(c);
                step *= 2;
            }
        }
    }
    let mut bad = match bad {
        Some(b) => b,
        None => {
            let mut b = 1024.max(2 * good);
            while ok(b)? {
                good = b;
                b *= 2;
                if b > 1 << 26 {
                    bail!("{} never overflows", wasm.display());
                }
            }
            b
        }
    };
    while bad - good > 1 {
        let mid = good + (bad - good) / 2;
        if ok(mid)? {
            good = mid;
        } else {
            bad = mid;
        }
    }
    Ok((good, probes.get(), warm_result))
}

/// The whole search in one Node process (`depth.mjs --search`).
fn search_in_process(
    tb: &Toolbox,
    js: &Path,
    flags: &[&str],
    wasm: &Path,
    warm: u32,
) -> Result<(u64, u32, Option<String>)> {
    let (out, err) = node(
        tb,
        None,
        flags,
        js,
        &["--search", &wasm.to_string_lossy(), &warm.to_string()],
    )?;
    #[derive(serde::Deserialize)]
    struct Out {
        max_depth: u64,
        probes: u32,
        warm: Option<String>,
    }
    let o: Out = serde_json::from_str(out.trim()).with_context(|| {
        format!(
            "depth.mjs --search {} printed {:?}: {}",
            wasm.display(),
            out.trim(),
            err.lines().rev().take(4).collect::<Vec<_>>().join(" / ")
        )
    })?;
    Ok((o.max_depth, o.probes, o.warm))
}

/// Smallest `--stack-size` (KiB; to 1 KiB, or 0.2% above 512 KiB) at
/// which `walk(depth)` completes; None when it does not at `cap`. `guess`
/// (from the depth at the default stack) brackets the search. Anything but
/// "ok" (an overflow, or Node failing to start on a tiny stack) counts as
/// too small.
#[allow(clippy::too_many_arguments)]
fn stack_need(
    tb: &Toolbox,
    js: &Path,
    flags: &[&str],
    wasm: &Path,
    depth: u64,
    warm: u32,
    guess: Option<u64>,
    cap: u64,
) -> Result<Option<u64>> {
    let ok = |k: u64| -> bool {
        matches!(
            probe_once(tb, js, Some(k), flags, wasm, depth, warm),
            Ok(Some(_))
        )
    };
    const FLOOR: u64 = 16; // assumed too small
    let guess = guess.unwrap_or(1024).clamp(64, cap);
    let mut lo = FLOOR;
    let mut hi = (guess + guess / 4 + 16).min(cap);
    while !ok(hi) {
        if hi >= cap {
            // Tell an overflow from a broken module.
            probe_once(tb, js, Some(cap), flags, wasm, depth, warm)?;
            return Ok(None);
        }
        lo = hi;
        hi = (hi * 2).min(cap);
    }
    if lo == FLOOR {
        let mut l = (guess - guess / 4).max(FLOOR);
        while l > FLOOR {
            if ok(l) {
                hi = l;
                l = (l / 2).max(FLOOR);
            } else {
                lo = l;
                break;
            }
        }
    }
    while hi - lo > 1.max(hi / 512) {
        let mid = lo + (hi - lo) / 2;
        if ok(mid) {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    Ok(Some(hi))
}

/// One headless Chromium page per tier, every variant's search in it.
fn chromium_search(
    repo: &Path,
    chromium: &Path,
    dir: &Path,
    tier: &str,
    flags: &[&str],
    probes: &[ProbeModule],
    variants: &[(usize, String, PathBuf)],
) -> Result<Vec<(DepthResult, Option<String>)>> {
    let script = std::fs::read_to_string(repo.join("bench/js/depth-search.js"))?
        + &std::fs::read_to_string(repo.join("bench/js/depth-page.js"))?;
    let mut list = Vec::new();
    for (v, (pi, _, path)) in variants.iter().enumerate() {
        list.push(serde_json::json!({
            "id": v,
            "warm": probes[*pi].warm,
            "wasm": base64(&std::fs::read(path)?),
        }));
    }
    let page = dir.join(format!("chromium-{tier}.html"));
    std::fs::write(
        &page,
        format!(
            "<!doctype html><meta charset=\"utf-8\"><title>depth</title><pre id=\"out\">pending</pre>\n<script>\nconst PROBES = {};\nconst FRESH = {};\n{script}</script>\n",
            serde_json::Value::Array(list),
            flags.is_empty()
        ),
    )?;
    let profile = dir.join("chromium-profile");
    let mut c = Command::new(chromium);
    c.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-extensions",
    ])
    .arg(format!("--user-data-dir={}", profile.display()));
    if !flags.is_empty() {
        c.arg(format!("--js-flags={}", flags.join(" ")));
    }
    c.arg("--dump-dom")
        .arg(format!("file://{}", page.display()));
    let stdout = run_with_timeout(c, Duration::from_secs(600))?;
    let body = stdout
        .split_once("<pre id=\"out\">")
        .and_then(|(_, r)| r.split_once("</pre>"))
        .map(|(b, _)| {
            b.replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&quot;", "\"")
                .replace("&amp;", "&")
        })
        .with_context(|| {
            format!(
                "chromium printed no result: {}",
                stdout.chars().take(300).collect::<String>()
            )
        })?;
    #[derive(serde::Deserialize)]
    struct Row {
        id: usize,
        max_depth: Option<u64>,
        probes: Option<u32>,
        warm: Option<String>,
        error: Option<String>,
    }
    let rows: Vec<Row> =
        serde_json::from_str(&body).with_context(|| format!("page result {body:?}"))?;
    Ok(rows
        .into_iter()
        .filter_map(|r| {
            let (pi, label, _) = variants.get(r.id)?;
            Some((
                DepthResult {
                    probe: probes[*pi].name.clone(),
                    engine: "Chromium".into(),
                    tier: tier.into(),
                    v8_flags: flags.iter().map(|s| s.to_string()).collect(),
                    variant: label.clone(),
                    max_depth: r.max_depth,
                    probes: r.probes.unwrap_or(0),
                    error: r.error,
                },
                r.warm,
            ))
        })
        .collect())
}

/// Runs `c` in its own process group; kills the group after `limit`.
fn run_with_timeout(mut c: Command, limit: Duration) -> Result<String> {
    let mut child = c
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .with_context(|| format!("cannot run {c:?}"))?;
    let mut stdout = child.stdout.take().context("stdout")?;
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let t0 = Instant::now();
    loop {
        if let Some(status) = child.try_wait()? {
            let out = reader.join().unwrap_or_default();
            if !status.success() {
                bail!("{c:?} exited with {status}");
            }
            return Ok(out);
        }
        if t0.elapsed() > limit {
            // SAFETY: signals the process group of the child started above.
            unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
            let _ = child.wait();
            bail!("{c:?} still running after {} s: killed", limit.as_secs());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = (u32::from(chunk[0]) << 16)
            | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
            | u32::from(*chunk.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= chunk.len() {
                s.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                s.push('=');
            }
        }
    }
    s
}

/// What the harness reads from the recursive function.
struct WalkShape {
    locals: Option<u32>,
    sites: Option<usize>,
}

/// The recursive function (the one that calls itself most, the export
/// `walk` on a tie). Its declared locals, and its direct calls of
/// functions that reach `kernel.kernel_fork`.
fn walk_shape(wasm: &[u8]) -> Result<WalkShape> {
    let mut imported = 0u32;
    let mut fork = None;
    let mut walk_export = None;
    let mut bodies: Vec<(u32, Vec<u32>)> = Vec::new();
    for payload in Parser::new(0).parse_all(wasm) {
        match payload? {
            Payload::ImportSection(r) => {
                for i in r.into_imports() {
                    let i = i?;
                    if matches!(i.ty, TypeRef::Func(_) | TypeRef::FuncExact(_)) {
                        if format!("{}.{}", i.module, i.name) == FORK {
                            fork = Some(imported);
                        }
                        imported += 1;
                    }
                }
            }
            Payload::ExportSection(r) => {
                for e in r {
                    let e = e?;
                    if e.kind == ExternalKind::Func && e.name == "walk" {
                        walk_export = Some(e.index);
                    }
                }
            }
            Payload::CodeSectionEntry(body) => {
                let mut locals = 0;
                for g in body.get_locals_reader()? {
                    locals += g?.0;
                }
                let mut calls = Vec::new();
                let mut ops = body.get_operators_reader()?;
                while !ops.eof() {
                    if let Operator::Call { function_index } = ops.read()? {
                        calls.push(function_index);
                    }
                }
                bodies.push((locals, calls));
            }
            _ => {}
        }
    }
    let body = |f: u32| f.checked_sub(imported).and_then(|i| bodies.get(i as usize));
    // forkify's output calls every instrumented function from itself once
    // more (its abort path, ABI §6), so the recursive function is the one
    // with the most calls of itself, the export `walk` on a tie.
    let self_calls = |f: u32| body(f).map_or(0, |(_, c)| c.iter().filter(|&&g| g == f).count());
    let rec = (imported..imported + bodies.len() as u32)
        .filter(|&f| self_calls(f) > 0)
        .max_by_key(|&f| (self_calls(f), Some(f) == walk_export, std::cmp::Reverse(f)));
    let Some(rec) = rec else {
        return Ok(WalkShape {
            locals: None,
            sites: None,
        });
    };
    // Functions that reach the fork import through direct calls.
    let n = imported as usize + bodies.len();
    let mut reach = vec![false; n];
    if let Some(f) = fork {
        reach[f as usize] = true;
    }
    let mut changed = true;
    while changed {
        changed = false;
        for (i, (_, calls)) in bodies.iter().enumerate() {
            let f = imported as usize + i;
            if !reach[f] && calls.iter().any(|&c| reach.get(c as usize) == Some(&true)) {
                reach[f] = true;
                changed = true;
            }
        }
    }
    let (locals, calls) = body(rec).context("walk body")?;
    Ok(WalkShape {
        locals: Some(*locals),
        sites: Some(
            calls
                .iter()
                .filter(|&&c| reach.get(c as usize) == Some(&true))
                .count(),
        ),
    })
}

/// `forkify-bench depth`: the depth benchmark alone; prints the tables.
pub fn cli(args: &[String]) -> Result<()> {
    let mut repo = PathBuf::from(".");
    let mut out = PathBuf::from("target/bench/depth");
    let mut forkify: Vec<(String, PathBuf)> = Vec::new();
    let mut chromium = true;
    let mut fresh = false;
    let mut guests = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut val = || {
            it.next()
                .cloned()
                .with_context(|| format!("{a} needs a value"))
        };
        match a.as_str() {
            "--repo" => repo = PathBuf::from(val()?),
            "--out" => out = PathBuf::from(val()?),
            "--forkify" => {
                let v = val()?;
                forkify.push(match v.split_once('=') {
                    Some((l, p)) => (l.to_string(), PathBuf::from(p)),
                    None => (
                        Path::new(&v)
                            .file_name()
                            .map_or(v.clone(), |n| n.to_string_lossy().into_owned()),
                        PathBuf::from(&v),
                    ),
                });
            }
            "--guest-walk" => guests = Some(PathBuf::from(val()?)),
            "--no-chromium" => chromium = false,
            "--fresh-process" => fresh = true,
            other => bail!("unknown option {other}"),
        }
    }
    let repo = repo.canonicalize().context("--repo")?;
    std::fs::create_dir_all(&out)?;
    let out = out.canonicalize()?;
    let tb = Toolbox {
        forkify: std::env::var_os("FORKIFY_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|| repo.join("target/release/cargo-forkify")),
        wasm_opt: repo.join("bench/node_modules/binaryen/bin/wasm-opt"),
        node: PathBuf::from("node"),
        harness: std::env::current_exe()?,
    };
    if forkify.is_empty() {
        forkify.push((Tool::Forkify.label().into(), tb.forkify.clone()));
    }
    for p in forkify.iter().map(|(_, p)| p).chain([&tb.wasm_opt]) {
        if !p.exists() {
            bail!("{} is missing", p.display());
        }
    }
    let cfg = Config {
        forkify,
        full: false,
        fresh_process: fresh,
        chromium: if chromium { find_chromium() } else { None },
        guest_walk: Some(guests.unwrap_or_else(|| {
            repo.join("target/bench/guests/wasm32-unknown-unknown/release/bench_walk.wasm")
        })),
    };
    let started = Instant::now();
    let log = |m: &str| eprintln!("[{:5.1}s] {m}", started.elapsed().as_secs_f64());
    let mut section = measure(&tb, &repo, &out, &cfg, &log)?;
    if !chromium {
        section.depth_chromium = Some("not run: --no-chromium".into());
    }
    let value = serde_json::to_value(&section)?;
    std::fs::write(
        out.join("depth.json"),
        serde_json::to_string_pretty(&value)? + "\n",
    )?;
    print!("{}", crate::report::render_depth(&value)?);
    eprintln!("wrote {}", out.join("depth.json").display());
    Ok(())
}
