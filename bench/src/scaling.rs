//! Scaling and refusal (issue 10, items 2 and 3).
//!
//! Scaling: the generated module (bench/src/gen_large.rs) at 12, 48 and
//! 96 MB of code in both shapes, each measured like any other input
//! ([`instr::bench_input_with`]: walrus round trip, forkify, Asyncify and
//! Asyncify -O, interleaved round by round, medians), with at most
//! [`MAX_RUNS_ABOVE_12`] runs above 12 MB, Asyncify run once when its first
//! run takes over [`ASYNCIFY_ONCE_OVER`] s, a time limit of its own
//! (`--scaling-timeout`), and an Asyncify variant not run at a size once it
//! was stopped, ran out of memory or failed at a smaller one of the same
//! shape. The report fits time and peak RSS against MB (least squares on
//! logarithms) and checks item 1's bounds.
//!
//! Refusal: the [`REFUSAL`] module with the three functions ABI 1 §8 refuses:
//! forkify's time and peak RSS until it refuses, its exit status and the
//! reasons it lists, against one wasmparser validation pass of the same
//! bytes (`forkify-bench validate`, a child process measured the same way).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result};
use serde::Serialize;
use serde_json::Value;

use crate::gen_large::{self, Params, Shape};
use crate::instr::{self, Budget, Input, InputResult, Limits};
use crate::measure::{self, median, median_u64};
use crate::report::thousands;
use crate::report::{self, dedup, f, s, secs, u};
use crate::tools::{Tool, Toolbox};
use crate::wasm_stats;

/// The sizes measured, MB of code.
pub const SIZES: [u32; 3] = [12, 48, 96];
/// The refused module: shape and size.
pub const REFUSAL: (Shape, u32) = (Shape::Indirect85, 48);
/// Runs per tool above 12 MB (fewer when `--runs` asks for fewer).
pub const MAX_RUNS_ABOVE_12: usize = 3;
/// Asyncify is run once on an input when its first run took longer.
pub const ASYNCIFY_ONCE_OVER: f64 = 30.0;
/// forkify and the walrus round trip are run once when their first run
/// took longer (they are repeated otherwise, up to the runs above).
pub const SINGLE_RUN_OVER: f64 = 120.0;
/// The functions gen_large plants in the refused module.
pub const PLANTED: usize = 3;

/// Everything the two measurements produced; `scaling` in results.json.
#[derive(Debug, Serialize)]
pub struct Section {
    /// The time limit of one run, seconds.
    pub timeout_s: f64,
    pub asyncify_once_over_s: f64,
    pub single_run_over_s: f64,
    pub inputs: Vec<ScalingInput>,
    pub refusal: Vec<Refusal>,
}

/// One generated module, all tools.
#[derive(Debug, Serialize)]
pub struct ScalingInput {
    pub shape: String,
    /// The requested size (the measured code size is `code_size`).
    pub mb: u32,
    /// Runs asked for per tool.
    pub runs: usize,
    #[serde(flatten)]
    pub result: InputResult,
}

/// Medians of one command's runs.
#[derive(Debug, Serialize, Default)]
pub struct Timed {
    pub runs: usize,
    pub wall_median_s: f64,
    pub wall_min_s: f64,
    pub cpu_median_s: f64,
    pub rss_median_kib: u64,
}

impl Timed {
    fn of(costs: &[measure::Cost]) -> Timed {
        let walls: Vec<f64> = costs.iter().map(|c| c.wall).collect();
        Timed {
            runs: costs.len(),
            wall_median_s: median(&walls),
            wall_min_s: walls.iter().copied().fold(f64::INFINITY, f64::min),
            cpu_median_s: median(&costs.iter().map(|c| c.cpu).collect::<Vec<_>>()),
            rss_median_kib: median_u64(&costs.iter().map(|c| c.max_rss_kib).collect::<Vec<_>>()),
        }
    }
}

/// forkify on a module it must refuse, against one validation pass.
#[derive(Debug, Serialize)]
pub struct Refusal {
    pub input: Input,
    pub size: u64,
    pub code_size: u64,
    pub functions: usize,
    /// Functions gen_large made refusable.
    pub planted: usize,
    /// forkify until it exits.
    pub forkify: Timed,
    /// Its exit code in the last run (None: killed or stopped).
    pub forkify_exit: Option<i32>,
    /// Every run exited non-zero and wrote no output.
    pub forkify_refused: bool,
    /// Lines of its stderr naming a function and ABI §8.
    pub reasons_listed: usize,
    /// Its stderr (last run, at most 4,000 characters).
    pub forkify_stderr: String,
    /// `forkify-bench validate`: wasmparser `Validator::validate_all`.
    pub validate: Timed,
    pub validate_ok: bool,
}

/// The name of the scaling input of `shape` at `mb`.
pub fn name(shape: Shape, mb: u32) -> String {
    format!("large-{}-{mb}", shape.id())
}

/// The name of the refused input.
pub fn refusal_name() -> String {
    format!("{}-refused", name(REFUSAL.0, REFUSAL.1))
}

/// Whether an `--only` name selects something of this module.
pub fn owns(only: &str) -> bool {
    only == "scaling"
        || only == "refusal"
        || only == refusal_name()
        || Shape::ALL
            .iter()
            .any(|&s| SIZES.iter().any(|&mb| name(s, mb) == only))
}

/// Whether `--only` asks for any of this module's measurements.
pub fn wanted(only: Option<&[String]>) -> bool {
    only.is_none_or(|o| o.iter().any(|s| owns(s)))
}

/// `forkify-bench validate IN`: one validation pass, with the features
/// forkify accepts (everything but the component model).
pub fn validate(input: &Path) -> Result<()> {
    let bytes = std::fs::read(input).with_context(|| format!("cannot read {}", input.display()))?;
    let mut features = wasmparser::WasmFeatures::all();
    features.remove(wasmparser::WasmFeatures::COMPONENT_MODEL);
    wasmparser::Validator::new_with_features(features)
        .validate_all(&bytes)
        .with_context(|| format!("{} does not validate", input.display()))?;
    Ok(())
}

/// Writes the module of `p` to `dir/NAME.wasm` and describes it.
fn write_input(dir: &Path, name: &str, p: Params, why: &str) -> Result<Input> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join(format!("{name}.wasm"));
    std::fs::write(&path, gen_large::generate_with(p))
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(Input {
        name: name.to_string(),
        origin: format!(
            "`forkify-bench gen-large OUT --mb {} --shape {}{}`",
            p.mb,
            p.shape.id(),
            if p.refused { " --refused" } else { "" }
        ),
        fork_imports: vec![Params::FORK_IMPORT.to_string()],
        why: why.to_string(),
        path,
    })
}

/// What an error from the harness means, for cells and for not running a
/// tool at a larger size.
pub fn failure_kind(e: &str) -> &'static str {
    let oom = ["OOM", "out of memory", "Cannot enlarge memory", "bad_alloc"];
    if e.starts_with("stopped") {
        "stopped (time limit)"
    } else if e.starts_with("not run") {
        "not run"
    } else if oom.iter().any(|k| e.contains(k)) || e.contains("signal: 9") {
        "out of memory"
    } else {
        "failed"
    }
}

/// Runs the scaling inputs and the refusal that `only` selects.
pub fn measure(
    tb: &Toolbox,
    out: &Path,
    only: Option<&[String]>,
    budget: Budget,
    timeout: f64,
    log: &dyn Fn(&str),
) -> Result<Section> {
    let all = only.is_none_or(|o| o.iter().any(|s| s == "scaling"));
    let picked = |n: &str| all || only.is_some_and(|o| o.iter().any(|s| s == n));
    let in_dir = out.join("inputs");
    let out_dir = out.join("out");
    let mut inputs = Vec::new();
    for shape in Shape::ALL {
        // Asyncify variants that did not finish at a smaller size.
        let mut skip: BTreeMap<Tool, String> = BTreeMap::new();
        for mb in SIZES {
            let n = name(shape, mb);
            if !picked(&n) {
                continue;
            }
            let why = match shape {
                Shape::Today => "the large-synthetic shape: a quarter of the functions reach fork",
                Shape::Indirect85 => "about 85% of the functions reach fork through call_indirect",
            };
            let input = write_input(
                &in_dir,
                &n,
                Params {
                    mb,
                    shape,
                    refused: false,
                },
                why,
            )?;
            let runs = if mb <= 12 {
                budget.runs
            } else {
                budget.runs.min(MAX_RUNS_ABOVE_12)
            };
            let b = Budget {
                runs,
                single_run_over: SINGLE_RUN_OVER,
                timeout,
            };
            let limits = Limits {
                skip: skip.clone(),
                asyncify_single_run_over: Some(ASYNCIFY_ONCE_OVER),
            };
            log(&format!("  {n} ({runs} runs)"));
            let mut l = |m: &str| log(m);
            let result = instr::bench_input_with(tb, &input, &out_dir, b, &limits, &mut l)?;
            for t in &result.tools {
                let (Some(e), false) = (&t.error, t.ok) else {
                    continue;
                };
                if t.tool == Tool::Asyncify.id() || t.tool == Tool::AsyncifyO.id() {
                    let tool = if t.tool == Tool::Asyncify.id() {
                        Tool::Asyncify
                    } else {
                        Tool::AsyncifyO
                    };
                    let reason = if e.starts_with("not run") {
                        e.clone()
                    } else {
                        let kind = match failure_kind(e) {
                            "stopped (time limit)" => "stopped",
                            k => k,
                        };
                        format!("not run: {kind} at {mb} MB")
                    };
                    skip.entry(tool).or_insert(reason);
                }
            }
            // The outputs are large and regenerable; the stderr files stay.
            for tool in Tool::ALL {
                let _ = std::fs::remove_file(out_dir.join(&n).join(format!("{}.wasm", tool.id())));
            }
            inputs.push(ScalingInput {
                shape: shape.id().to_string(),
                mb,
                runs,
                result,
            });
        }
    }

    let mut refusal = Vec::new();
    if only.is_none_or(|o| o.iter().any(|s| s == "refusal" || *s == refusal_name())) {
        let (shape, mb) = REFUSAL;
        let input = write_input(
            &in_dir,
            &refusal_name(),
            Params {
                mb,
                shape,
                refused: true,
            },
            "three fork-path functions ABI 1 §8 refuses, of three kinds",
        )?;
        log(&format!("  {} ({} runs)", input.name, budget.runs));
        refusal.push(refuse(tb, &input, &out_dir, budget.runs, timeout, log)?);
    }
    Ok(Section {
        timeout_s: timeout,
        asyncify_once_over_s: ASYNCIFY_ONCE_OVER,
        single_run_over_s: SINGLE_RUN_OVER,
        inputs,
        refusal,
    })
}

/// forkify and one validation pass on `input`, interleaved round by round.
fn refuse(
    tb: &Toolbox,
    input: &Input,
    out_dir: &Path,
    runs: usize,
    timeout: f64,
    log: &dyn Fn(&str),
) -> Result<Refusal> {
    let wasm = std::fs::read(&input.path)
        .with_context(|| format!("cannot read {}", input.path.display()))?;
    let info = wasm_stats::read(&wasm)?;
    drop(wasm);
    let dir = out_dir.join(&input.name);
    std::fs::create_dir_all(&dir)?;
    let (mut fk, mut va) = (Vec::new(), Vec::new());
    let (mut refused, mut exit, mut valid) = (true, None, true);
    let stderr = dir.join("forkify.stderr");
    let out = dir.join("forkify.wasm");
    for round in 0..runs {
        let _ = std::fs::remove_file(&out);
        let cmd = tb.command(Tool::Forkify, &input.path, &out, &input.fork_imports, &[]);
        let o = measure::run(&cmd, &stderr, timeout)?;
        refused &= !o.success && o.code.is_some() && !out.exists();
        exit = o.code;
        fk.push(o.cost);
        let mut v = Command::new(&tb.harness);
        v.arg("validate").arg(&input.path);
        let ov = measure::run(&v, &dir.join("validate.stderr"), timeout)?;
        valid &= ov.success;
        va.push(ov.cost);
        if round == 0 {
            log(&format!(
                "    forkify {:.2}s (exit {}), validate {:.2}s",
                o.cost.wall,
                o.code.map_or("none".into(), |c| c.to_string()),
                ov.cost.wall
            ));
        }
    }
    let _ = std::fs::remove_file(&out);
    let text = std::fs::read_to_string(&stderr).unwrap_or_default();
    let reasons_listed = text
        .lines()
        .filter(|l| l.contains("function ") && l.contains('§'))
        .count();
    let mut forkify_stderr = text.trim_end().to_string();
    measure::clip(&mut forkify_stderr, 4000);
    Ok(Refusal {
        input: input.clone(),
        size: info.size,
        code_size: info.code_size,
        functions: info.funcs.len(),
        planted: PLANTED,
        forkify: Timed::of(&fk),
        forkify_exit: exit,
        forkify_refused: refused,
        reasons_listed,
        forkify_stderr,
        validate: Timed::of(&va),
        validate_ok: valid,
    })
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// A tool's result on `input`, when it succeeded.
fn tool<'a>(input: &'a Value, id: &str) -> Option<&'a Value> {
    report::tool(input, id).filter(|t| t["ok"].as_bool() == Some(true))
}

/// "time; RSS" of a tool, with its run count when below `runs`, or why
/// there is none.
fn cell(input: &Value, id: &str, runs: u64) -> String {
    match tool(input, id) {
        Some(t) => format!(
            "{}; {:.0} MiB{}",
            secs(f(t, "wall_median_s")),
            mib(u(t, "rss_median_kib")),
            if u(t, "runs") < runs {
                format!(" ({} run)", u(t, "runs"))
            } else {
                String::new()
            }
        ),
        None => {
            let e = input["tools"]
                .as_array()
                .and_then(|a| a.iter().find(|t| s(t, "tool") == id))
                .and_then(|t| t["error"].as_str())
                .unwrap_or("");
            match failure_kind(e) {
                // "not run: stopped at 12 MB" -> "not run (stopped at 12 MB)".
                "not run" => match e.strip_prefix("not run: ") {
                    Some(why) if why.contains(" MB") => format!("not run ({why})"),
                    _ => "not run".into(),
                },
                kind => kind.into(),
            }
        }
    }
}

/// The least-squares slope of ln(y) against ln(x); None with fewer than
/// two usable points.
pub fn exponent(points: &[(f64, f64)]) -> Option<f64> {
    let p: Vec<(f64, f64)> = points
        .iter()
        .filter(|(x, y)| *x > 0.0 && *y > 0.0 && x.is_finite() && y.is_finite())
        .map(|(x, y)| (x.ln(), y.ln()))
        .collect();
    if p.len() < 2 {
        return None;
    }
    let n = p.len() as f64;
    let mx = p.iter().map(|q| q.0).sum::<f64>() / n;
    let my = p.iter().map(|q| q.1).sum::<f64>() / n;
    let sxx: f64 = p.iter().map(|q| (q.0 - mx).powi(2)).sum();
    let sxy: f64 = p.iter().map(|q| (q.0 - mx) * (q.1 - my)).sum();
    (sxx > 0.0).then(|| sxy / sxx)
}

fn exp_text(e: Option<f64>) -> String {
    e.map_or("–".into(), |e| format!("{e:.2}"))
}

/// The two BENCHMARKS.md sections; empty when results.json has none of it
/// (runs before issue 10, or `--only` left it out).
pub fn render(r: &Value) -> Result<String> {
    let mut o = String::new();
    let sc = &r["scaling"];
    let inputs = sc["inputs"].as_array().cloned().unwrap_or_default();
    if !inputs.is_empty() {
        render_scaling(&mut o, sc, &inputs, u(r, "runs"))?;
    }
    let refusal = sc["refusal"].as_array().cloned().unwrap_or_default();
    if !refusal.is_empty() {
        render_refusal(&mut o, &refusal, &inputs)?;
    }
    Ok(o)
}

fn render_scaling(o: &mut String, sc: &Value, inputs: &[Value], runs: u64) -> Result<()> {
    writeln!(o, "\n### Scaling (issue 10 item 2)\n")?;
    writeln!(
        o,
        "The generated module (`forkify-bench gen-large OUT --mb N --shape S`) at three sizes: the same per-function shape, the general functions scaled with the size. **today**: the `large-synthetic` shape (a quarter of the functions reach fork by direct calls). **indirect85**: about 85% of the functions reach fork, each through a `call_indirect` into a vtable part of the table, like a C++ program whose I/O goes through function pointers. MB = 10⁶ bytes of code section. Each cell: median wall time; median peak RSS (process start included) of {runs} runs at 12 MB and {} above (fewer where marked), the tools interleaved; Asyncify runs once when its first run takes over {:.0} s, and a variant that was stopped (at {:.0} s) or ran out of memory at one size is not run at the larger ones. Bounds (item 1): forkify's peak RSS below Asyncify's (the better of with and without -O, where one finished) and below 1.5× the walrus round trip's, and its time at most 2× the walrus round trip's.\n",
        runs.min(MAX_RUNS_ABOVE_12 as u64),
        f(sc, "asyncify_once_over_s"),
        f(sc, "timeout_s"),
    )?;
    for shape in dedup(inputs.iter().map(|i| s(i, "shape").to_string())) {
        let rows: Vec<&Value> = inputs.iter().filter(|i| s(i, "shape") == shape).collect();
        writeln!(o, "#### {shape}\n")?;
        writeln!(o, "| MB (code) | functions (instrumented by forkify) | forkify | forkify s/MB | forkify MiB/MB | walrus round trip | forkify / walrus (time; RSS) | Asyncify | Asyncify -O | bounds |")?;
        writeln!(o, "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")?;
        let (mut fk_t, mut fk_m, mut wa_t, mut wa_m) = (vec![], vec![], vec![], vec![]);
        for i in &rows {
            let runs = u(i, "runs");
            let mb = u(i, "code_size") as f64 / 1e6;
            let fk = tool(i, "forkify");
            let wa = tool(i, "walrus");
            let instrumented =
                fk.and_then(|t| t["instrumented"].as_u64())
                    .map_or("–".into(), |n| {
                        format!(
                            "{} ({:.0}%)",
                            thousands(n),
                            n as f64 * 100.0 / u(i, "functions").max(1) as f64
                        )
                    });
            let per = |t: Option<&Value>, k: &str, scale: f64| {
                t.map_or("–".into(), |t| format!("{:.3}", f(t, k) * scale / mb))
            };
            if let Some(t) = fk {
                fk_t.push((mb, f(t, "wall_median_s")));
                fk_m.push((mb, u(t, "rss_median_kib") as f64));
            }
            if let Some(t) = wa {
                wa_t.push((mb, f(t, "wall_median_s")));
                wa_m.push((mb, u(t, "rss_median_kib") as f64));
            }
            let ratio = match (fk, wa) {
                (Some(a), Some(b)) => format!(
                    "{:.2}×; {:.2}×",
                    f(a, "wall_median_s") / f(b, "wall_median_s"),
                    u(a, "rss_median_kib") as f64 / u(b, "rss_median_kib").max(1) as f64
                ),
                _ => "–".into(),
            };
            writeln!(
                o,
                "| {:.1} | {} ({}) | {} | {} | {} | {} | {} | {} | {} | {} |",
                mb,
                thousands(u(i, "functions")),
                instrumented,
                cell(i, "forkify", runs),
                per(fk, "wall_median_s", 1.0),
                fk.map_or("–".into(), |t| format!(
                    "{:.1}",
                    mib(u(t, "rss_median_kib")) / mb
                )),
                cell(i, "walrus", runs),
                ratio,
                cell(i, "asyncify", runs),
                cell(i, "asyncify-O", runs),
                bounds(i),
            )?;
        }
        writeln!(
            o,
            "\n{shape}: forkify's time grows as MB^{} and its peak RSS as MB^{} (least-squares slope of log against log over the {} sizes); the walrus round trip's as MB^{} and MB^{}.\n",
            exp_text(exponent(&fk_t)),
            exp_text(exponent(&fk_m)),
            fk_t.len(),
            exp_text(exponent(&wa_t)),
            exp_text(exponent(&wa_m)),
        )?;
    }
    Ok(())
}

/// Item 1's bounds for one input: ✓ or ✗ per bound, "?" where the
/// comparison tool has no number.
fn bounds(i: &Value) -> String {
    let (Some(fk), Some(wa)) = (tool(i, "forkify"), tool(i, "walrus")) else {
        return "–".into();
    };
    let mark = |ok: bool| if ok { "✓" } else { "✗" };
    let rss = u(fk, "rss_median_kib") as f64;
    let time = mark(f(fk, "wall_median_s") <= 2.0 * f(wa, "wall_median_s"));
    let floor = mark(rss < 1.5 * u(wa, "rss_median_kib") as f64);
    let best = ["asyncify", "asyncify-O"]
        .iter()
        .filter_map(|id| tool(i, id))
        .map(|t| u(t, "rss_median_kib"))
        .min();
    let asy = match best {
        Some(b) => mark(rss < b as f64).to_string(),
        None => "? (Asyncify did not finish)".into(),
    };
    format!("time ≤ 2× walrus {time}; RSS < 1.5× walrus {floor}; RSS < Asyncify {asy}")
}

fn render_refusal(o: &mut String, refusal: &[Value], inputs: &[Value]) -> Result<()> {
    writeln!(o, "\n### Refusal (issue 10 item 3)\n")?;
    writeln!(o, "A module forkify must refuse: the indirect85 module with three fork-path functions ABI 1 §8 refuses, of three kinds (a fork-path call in a legacy `catch_all` handler, an `externref` local live across a fork-path call, a `funcref` operand value live across one). forkify until it exits, against one validation pass of the same bytes (wasmparser `Validator::validate_all`, every feature forkify accepts, in a child process of the harness measured the same way); medians, the two interleaved. Reasons listed: lines of forkify's error naming a function and ABI §8. The last column is forkify instrumenting the same module without the three functions (the scaling table above), for scale.\n")?;
    writeln!(o, "| input | code bytes | forkify to refusal | exit | reasons listed (planted) | validation pass | forkify / validation (time; RSS) | forkify accepting it |")?;
    writeln!(o, "|---|---:|---:|---:|---:|---:|---:|---:|")?;
    for x in refusal {
        let fk = &x["forkify"];
        let va = &x["validate"];
        let name = s(&x["input"], "name");
        let accepted = inputs
            .iter()
            .find(|i| name.strip_suffix("-refused") == Some(s(&i["input"], "name")))
            .map_or("–".into(), |i| cell(i, "forkify", u(i, "runs")));
        writeln!(
            o,
            "| {} | {} | {}; {:.0} MiB | {}{} | {} ({}) | {}; {:.0} MiB{} | {:.2}×; {:.2}× | {} |",
            name,
            thousands(u(x, "code_size")),
            secs(f(fk, "wall_median_s")),
            mib(u(fk, "rss_median_kib")),
            x["forkify_exit"]
                .as_i64()
                .map_or("killed".into(), |c| c.to_string()),
            if x["forkify_refused"].as_bool() == Some(true) {
                ""
            } else {
                " (not refused)"
            },
            u(x, "reasons_listed"),
            u(x, "planted"),
            secs(f(va, "wall_median_s")),
            mib(u(va, "rss_median_kib")),
            if x["validate_ok"].as_bool() == Some(true) {
                ""
            } else {
                " (invalid)"
            },
            f(fk, "wall_median_s") / f(va, "wall_median_s"),
            u(fk, "rss_median_kib") as f64 / u(va, "rss_median_kib").max(1) as f64,
            accepted,
        )?;
    }
    for x in refusal {
        writeln!(
            o,
            "\nforkify's standard error on {}:\n\n```text\n{}\n```",
            s(&x["input"], "name"),
            s(x, "forkify_stderr")
        )?;
    }
    Ok(())
}
