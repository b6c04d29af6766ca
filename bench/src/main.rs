//! `forkify-bench`: the benchmark harness of issue 5. `bash bench/run.sh`
//! builds everything and calls it; see BENCHMARKS.md for what it measures.
//!
//! ```text
//! forkify-bench run --repo DIR --out DIR [--runs N] [--only a,b]   measure, write OUT/results.json
//!                   [--single-run-over SECS] [--timeout SECS]
//!                   [--scaling-timeout SECS]
//! forkify-bench report RESULTS.json BENCHMARKS.md                  render the tables into the file
//! forkify-bench roundtrip IN.wasm OUT.wasm                         walrus parse + emit (the floor)
//! forkify-bench gen-large OUT.wasm [--mb N] [--shape today|indirect85] [--refused]
//!                                                                  write a synthetic large module
//!                                                                  (default: 12 MB, today: large-synthetic)
//! forkify-bench validate IN.wasm                                   one wasmparser validation pass
//! forkify-bench depth [--forkify [LABEL=]BIN]... [--no-chromium]    the depth probes alone (bench/depth-quick.sh)
//! ```
//!
//! `FORKIFY_BIN` overrides `target/release/cargo-forkify`.
//! `WORKLOAD_FORKIFY_EXTRA=LABEL=BIN[,LABEL=BIN]` adds forkify binaries to
//! the real-program workloads (`--only workload`; bench/src/workload.rs).

mod depth;
mod depth_probes;
mod gen_large;
mod instr;
mod latency;
mod measure;
mod npm;
mod report;
mod runtime;
mod scaling;
mod tools;
mod wasm_stats;
mod workload;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use serde::Serialize;

use instr::Input;
use runtime::Variant;
use tools::{Tool, Toolbox};

/// Everything one run measured; serialised to results.json.
#[derive(Debug, Serialize)]
pub struct Results {
    pub machine: Machine,
    pub runs: usize,
    pub single_run_over_s: f64,
    pub timeout_s: f64,
    pub inputs: Vec<instr::InputResult>,
    #[serde(flatten)]
    pub depth: depth::Section,
    pub overhead: Vec<runtime::OverheadResult>,
    pub spin_n: u32,
    pub latency: Vec<latency::LatencyResult>,
    pub latency_forks_per_run: u32,
    /// The real-program workloads (bench/src/workload.rs); null when
    /// `--only` left them out.
    pub workload: Option<workload::Section>,
    /// Scaling and refusal (issue 10; bench/src/scaling.rs); null when
    /// `--only` left them out.
    pub scaling: Option<scaling::Section>,
    pub harness_seconds: f64,
}

/// The machine and the versions of everything measured.
#[derive(Debug, Serialize)]
pub struct Machine {
    pub date: String,
    pub cpu: String,
    pub cores: usize,
    pub memory_gib: f64,
    pub kernel: String,
    pub rustc: String,
    pub node: String,
    pub wasm_opt: String,
    pub wasmtime_crate: String,
    pub walrus_crate: String,
    pub forkify: String,
}

fn main() {
    if let Err(e) = real_main() {
        eprintln!("forkify-bench: error: {e:#}");
        std::process::exit(1);
    }
}

fn real_main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("roundtrip") if args.len() == 3 => roundtrip(Path::new(&args[1]), Path::new(&args[2])),
        Some("gen-large") if args.len() >= 2 => {
            let p = gen_large::Params::from_args(&args[2..])?;
            std::fs::write(&args[1], gen_large::generate_with(p))
                .with_context(|| format!("cannot write {}", args[1]))
        }
        Some("validate") if args.len() == 2 => scaling::validate(Path::new(&args[1])),
        Some("report") if args.len() == 3 => {
            let results: serde_json::Value = serde_json::from_slice(&std::fs::read(&args[1])?)?;
            report::render_into(&results, Path::new(&args[2]))
        }
        Some("run") => run(&args[1..]),
        Some("depth") => depth::cli(&args[1..]),
        _ => bail!(
            "usage: forkify-bench run --repo DIR --out DIR [--runs N] [--only a,b] | report RESULTS.json BENCHMARKS.md | roundtrip IN OUT | gen-large OUT [--mb N] [--shape today|indirect85] [--refused] | validate IN | depth [--repo DIR] [--out DIR] [--forkify [LABEL=]BIN]... [--no-chromium] [--fresh-process]"
        ),
    }
}

/// The walrus floor: parse and emit with the options forkify uses.
fn roundtrip(input: &Path, output: &Path) -> Result<()> {
    let wasm = std::fs::read(input)?;
    let mut cfg = walrus::ModuleConfig::new();
    cfg.generate_name_section(true)
        .generate_producers_section(true)
        .generate_dwarf(true);
    let mut module = cfg.parse(&wasm)?;
    std::fs::write(output, module.emit_wasm())?;
    Ok(())
}

struct Opts {
    repo: PathBuf,
    out: PathBuf,
    budget: instr::Budget,
    only: Option<Vec<String>>,
    /// The time limit of one run on the scaling and refusal inputs.
    scaling_timeout: f64,
}

fn parse_opts(args: &[String]) -> Result<Opts> {
    let mut o = Opts {
        repo: PathBuf::from("."),
        out: PathBuf::from("target/bench"),
        budget: instr::Budget {
            runs: 5,
            single_run_over: 10.0,
            timeout: 100.0,
        },
        only: None,
        scaling_timeout: 600.0,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut val = || {
            it.next()
                .cloned()
                .with_context(|| format!("{a} needs a value"))
        };
        match a.as_str() {
            "--repo" => o.repo = PathBuf::from(val()?),
            "--out" => o.out = PathBuf::from(val()?),
            "--runs" => o.budget.runs = val()?.parse()?,
            "--single-run-over" => o.budget.single_run_over = val()?.parse()?,
            "--timeout" => o.budget.timeout = val()?.parse()?,
            "--only" => o.only = Some(val()?.split(',').map(String::from).collect()),
            "--scaling-timeout" => o.scaling_timeout = val()?.parse()?,
            other => bail!("unknown option {other}"),
        }
    }
    if o.budget.runs == 0 {
        bail!("--runs must be at least 1");
    }
    if o.scaling_timeout.is_nan() || o.scaling_timeout <= 0.0 {
        bail!("--scaling-timeout must be a positive number of seconds");
    }
    Ok(o)
}

fn run(args: &[String]) -> Result<()> {
    let started = Instant::now();
    let o = parse_opts(args)?;
    let repo = o.repo.canonicalize().context("--repo")?;
    std::fs::create_dir_all(&o.out)?;
    let out = o.out.canonicalize()?;
    let log = |msg: &str| eprintln!("[{:6.1}s] {msg}", started.elapsed().as_secs_f64());
    let tb = Toolbox {
        forkify: std::env::var_os("FORKIFY_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|| repo.join("target/release/cargo-forkify")),
        wasm_opt: repo.join("bench/node_modules/binaryen/bin/wasm-opt"),
        node: PathBuf::from("node"),
        harness: std::env::current_exe()?,
    };
    for p in [&tb.forkify, &tb.wasm_opt] {
        if !p.exists() {
            bail!(
                "{} is missing: run bench/run.sh, which builds and installs it",
                p.display()
            );
        }
    }

    // `--only workload` (and `--only depth`, `--only scaling,refusal`)
    // needs none of the instrumentation inputs.
    let workload_only = o.only.as_ref().is_some_and(|v| {
        v.iter().all(|s| {
            s == "workload" || s.starts_with("workload-") || s == "depth" || scaling::owns(s)
        })
    });
    let mut inputs = if workload_only {
        Vec::new()
    } else {
        collect_inputs(&repo, &out, &log)?
    };
    if let Some(only) = &o.only {
        inputs.retain(|i| only.contains(&i.name));
    }

    log(&format!(
        "instrumentation: {} inputs x {} tools x {} runs",
        inputs.len(),
        Tool::ALL.len(),
        o.budget.runs
    ));
    let mut results = Vec::new();
    let out_dir = out.join("out");
    for input in &inputs {
        log(&format!("  {}", input.name));
        let mut l = |m: &str| log(m);
        results.push(instr::bench_input(&tb, input, &out_dir, o.budget, &mut l)?);
    }

    let mut overhead = Vec::new();
    let spin_n = 20_000_000;
    let depth = if o
        .only
        .as_ref()
        .is_none_or(|v| v.iter().any(|s| s == "depth" || s == "bench-walk"))
    {
        depth::measure(
            &tb,
            &repo,
            &out.join("depth"),
            &depth::Config::full(&tb, &out),
            &log,
        )?
    } else {
        depth::Section::default()
    };
    if inputs.iter().any(|i| i.name == "bench-spin") {
        let variants = variants(&tb, &out_dir, &inputs, "bench-spin")?;
        let rounds = o.budget.runs.max(5) * 4 + 1;
        log("  overhead on wasmtime");
        overhead.extend(runtime::spin_wasmtime(&variants, spin_n, 1, rounds)?);
        log("  overhead on V8");
        overhead.extend(runtime::spin_v8(
            &tb.node,
            &repo.join("bench/js/spin.mjs"),
            &variants,
            spin_n,
            1,
            rounds,
        )?);
        let first = overhead[0].result;
        if overhead.iter().any(|r| r.result != first) {
            bail!("spin variants disagree on the result: {overhead:?}");
        }
    }

    let mut lat = Vec::new();
    if o.only
        .as_ref()
        .is_none_or(|v| v.iter().any(|s| s == "latency"))
    {
        for (mem, d) in [(1, 10), (16, 10), (64, 10), (256, 10), (1, 100), (1, 1000)] {
            let r = latency::measure(&tb.forkify, &out.join("latency"), mem, d, o.budget.runs)?;
            log(&format!(
                "  fork latency {mem} MiB depth {d}: {:.3} ms",
                r.fork_median_ms
            ));
            lat.push(r);
        }
    }

    let workload = if workload::wanted(o.only.as_deref()) {
        Some(workload::measure(
            &tb,
            &repo,
            &out,
            o.only.as_deref(),
            o.budget.runs,
            &log,
        )?)
    } else {
        None
    };

    let scaling = if scaling::wanted(o.only.as_deref()) {
        log("scaling and refusal (issue 10)");
        Some(scaling::measure(
            &tb,
            &out,
            o.only.as_deref(),
            o.budget,
            o.scaling_timeout,
            &log,
        )?)
    } else {
        None
    };

    let results = Results {
        machine: machine(&tb, &repo)?,
        runs: o.budget.runs,
        single_run_over_s: o.budget.single_run_over,
        timeout_s: o.budget.timeout,
        inputs: results,
        depth,
        overhead,
        spin_n,
        latency: lat,
        latency_forks_per_run: latency::FORKS,
        workload,
        scaling,
        harness_seconds: started.elapsed().as_secs_f64(),
    };
    let path = out.join("results.json");
    std::fs::write(&path, serde_json::to_string_pretty(&results)? + "\n")?;
    log(&format!("wrote {}", path.display()));
    Ok(())
}

/// The un-instrumented module, `wasm-opt -O` alone (the baseline Asyncify
/// -O should be read against), and each tool's output.
fn variants(tb: &Toolbox, out_dir: &Path, inputs: &[Input], name: &str) -> Result<Vec<Variant>> {
    let input = inputs
        .iter()
        .find(|i| i.name == name)
        .context(name.to_string())?;
    let dir = out_dir.join(name);
    let opt = dir.join("wasm-opt-O.wasm");
    let status = tb
        .wasm_opt_command()
        .arg(&input.path)
        .arg("-O")
        .arg("-o")
        .arg(&opt)
        .status()?;
    if !status.success() {
        bail!("wasm-opt -O failed on {}", input.path.display());
    }
    let mut v = vec![
        Variant {
            label: "un-instrumented".into(),
            path: input.path.clone(),
        },
        Variant {
            label: "wasm-opt -O only".into(),
            path: opt,
        },
    ];
    for tool in [Tool::Forkify, Tool::Asyncify, Tool::AsyncifyO] {
        let p = dir.join(format!("{}.wasm", tool.id()));
        if p.exists() {
            v.push(Variant {
                label: tool.label().into(),
                path: p,
            });
        }
    }
    Ok(v)
}

fn collect_inputs(repo: &Path, out: &Path, log: &dyn Fn(&str)) -> Result<Vec<Input>> {
    let mut inputs = Vec::new();
    let fork = vec!["kernel.kernel_fork".to_string()];
    let examples = repo.join("examples/target/wasm32-unknown-unknown/release");
    let mut found: Vec<PathBuf> = std::fs::read_dir(&examples)
        .with_context(|| format!("{} (build examples/ first)", examples.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "wasm"))
        .collect();
    found.sort();
    for p in found {
        let name = p
            .file_stem()
            .unwrap_or_default()
            .to_string_lossy()
            .to_string();
        inputs.push(Input {
            origin: format!("examples/{name}"),
            name,
            fork_imports: fork.clone(),
            why: "the reference kernel's fork import".into(),
            path: p,
        });
    }
    let guests = out.join("guests/wasm32-unknown-unknown/release");
    for (name, file) in [
        ("bench-walk", "bench_walk.wasm"),
        ("bench-spin", "bench_spin.wasm"),
    ] {
        inputs.push(Input {
            name: name.into(),
            origin: format!("bench/guests/{}", name.trim_start_matches("bench-")),
            fork_imports: fork.clone(),
            why: "the reference kernel's fork import".into(),
            path: guests.join(file),
        });
    }
    let large = out.join("inputs/large-synthetic.wasm");
    std::fs::create_dir_all(large.parent().unwrap_or(out))?;
    std::fs::write(&large, gen_large::generate())?;
    inputs.push(Input {
        name: "large-synthetic".into(),
        origin: "generated by bench/src/gen_large.rs".into(),
        fork_imports: fork,
        why: "a 1,000-deep fork chain; a quarter of the functions reach it".into(),
        path: large,
    });
    inputs.extend(npm::fetch(repo, &out.join("npm"), log)?);
    for i in &inputs {
        if !i.path.exists() {
            bail!("input {} is missing: {}", i.name, i.path.display());
        }
    }
    Ok(inputs)
}

/// The first line of a command's standard output (a version string), or
/// "" when it cannot run.
pub(crate) fn first_line(cmd: &mut Command) -> String {
    cmd.output()
        .ok()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .unwrap_or("")
                .trim()
                .to_string()
        })
        .unwrap_or_default()
}

fn lock_version(repo: &Path, krate: &str) -> String {
    let lock = std::fs::read_to_string(repo.join("bench/Cargo.lock")).unwrap_or_default();
    let mut lines = lock.lines();
    while let Some(l) = lines.next() {
        if l == format!("name = \"{krate}\"") {
            if let Some(v) = lines.next() {
                return v
                    .trim_start_matches("version = ")
                    .trim_matches('"')
                    .to_string();
            }
        }
    }
    "?".into()
}

fn machine(tb: &Toolbox, repo: &Path) -> Result<Machine> {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .unwrap_or("?")
        .trim()
        .to_string();
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_kib: f64 = meminfo
        .lines()
        .find(|l| l.starts_with("MemTotal"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0.0);
    let node = first_line(Command::new(&tb.node).arg("--version"));
    let v8 = first_line(Command::new(&tb.node).args(["-p", "process.versions.v8"]));
    Ok(Machine {
        date: first_line(Command::new("date").args(["-u", "+%Y-%m-%d"])),
        cpu,
        cores: std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0),
        memory_gib: (mem_kib / 1048576.0 * 10.0).round() / 10.0,
        kernel: first_line(Command::new("uname").args(["-sr"])),
        rustc: first_line(Command::new("rustc").arg("--version")),
        node: format!("{node} (V8 {v8})"),
        wasm_opt: first_line(tb.wasm_opt_command().arg("--version")),
        wasmtime_crate: lock_version(repo, "wasmtime"),
        walrus_crate: lock_version(repo, "walrus"),
        forkify: format!(
            "{} (built from commit {} plus any uncommitted changes in the tree)",
            first_line(Command::new(&tb.forkify).args(["forkify", "--version"])),
            first_line(Command::new("git").arg("-C").arg(repo).args([
                "rev-parse",
                "--short",
                "HEAD"
            ]))
        ),
    })
}
