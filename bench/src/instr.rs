//! The per-input benchmark: run every tool on every input, interleaved
//! round by round (so background load hits all tools alike), and measure
//! time, peak RSS, sizes and the locals each tool added.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Serialize;

use crate::measure::{self, median, median_u64};
use crate::tools::{Tool, Toolbox};
use crate::wasm_stats::{self, ModuleInfo};

/// One module to instrument.
#[derive(Debug, Clone, Serialize)]
pub struct Input {
    /// Short name used in tables and file names.
    pub name: String,
    /// Where it comes from (a path in the repository, or an npm package).
    pub origin: String,
    /// The imports named as fork imports, `module.name`.
    pub fork_imports: Vec<String>,
    /// Why those imports (for third-party modules).
    pub why: String,
    #[serde(skip)]
    pub path: PathBuf,
}

/// Measurements of one tool on one input.
#[derive(Debug, Clone, Serialize, Default)]
pub struct ToolResult {
    pub tool: String,
    pub ok: bool,
    /// The tool's own words when it refused or failed.
    pub error: Option<String>,
    pub runs: usize,
    pub wall_median_s: f64,
    pub wall_min_s: f64,
    pub wall_max_s: f64,
    pub cpu_median_s: f64,
    pub rss_median_kib: u64,
    pub size: u64,
    pub code_size: u64,
    pub custom_size: u64,
    /// Every run wrote the same bytes.
    pub deterministic: bool,
    /// Functions the tool instrumented (they use its state global).
    pub instrumented: Option<usize>,
    /// Net change in declared locals (output minus input) per instrumented
    /// function.
    pub locals_added_max: Option<i64>,
    pub locals_added_median: Option<f64>,
    pub locals_added_total: Option<i64>,
    /// How the instrumented functions were matched to the input's.
    pub locals_note: Option<String>,
    /// forkify only: fork-path call sites (the `--stats` table's sum).
    pub call_sites: Option<u64>,
    /// forkify only: bytes added to the instrumented functions, by
    /// category (`--stats`: dispatch, landing, unwind check, frame write,
    /// abort re-issue, restore, shell; estimates before re-encoding).
    pub added_bytes: Option<BTreeMap<String, u64>>,
}

/// All tools on one input.
#[derive(Debug, Clone, Serialize)]
pub struct InputResult {
    pub input: Input,
    pub size: u64,
    pub code_size: u64,
    pub custom_size: u64,
    pub functions: usize,
    pub tools: Vec<ToolResult>,
}

/// How many runs, and when to stop.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    /// Runs per tool (the median is taken over them).
    pub runs: usize,
    /// A tool whose first run takes longer than this many seconds is not
    /// run again on that input (its row then has one sample).
    pub single_run_over: f64,
    /// A run is stopped after this many seconds.
    pub timeout: f64,
}

/// Per-input exceptions to the budget (the scaling inputs use them).
#[derive(Debug, Clone, Default)]
pub struct Limits {
    /// Tools not run on this input, with the reason recorded as their error
    /// (it should start with "not run").
    pub skip: BTreeMap<Tool, String>,
    /// For Asyncify and Asyncify -O instead of `Budget::single_run_over`.
    pub asyncify_single_run_over: Option<f64>,
}

/// Runs all tools on `input`, round by round.
pub fn bench_input(
    tb: &Toolbox,
    input: &Input,
    out_dir: &Path,
    budget: Budget,
    log: &mut dyn FnMut(&str),
) -> Result<InputResult> {
    bench_input_with(tb, input, out_dir, budget, &Limits::default(), log)
}

/// [`bench_input`] with per-input [`Limits`].
pub fn bench_input_with(
    tb: &Toolbox,
    input: &Input,
    out_dir: &Path,
    budget: Budget,
    limits: &Limits,
    log: &mut dyn FnMut(&str),
) -> Result<InputResult> {
    let wasm = std::fs::read(&input.path)
        .with_context(|| format!("cannot read {}", input.path.display()))?;
    let before = wasm_stats::read(&wasm)?;
    let dir = out_dir.join(&input.name);
    std::fs::create_dir_all(&dir)?;
    let mut samples: BTreeMap<Tool, Vec<measure::Cost>> = BTreeMap::new();
    let mut failed: BTreeMap<Tool, String> = limits.skip.clone();
    let mut hashes: BTreeMap<Tool, Vec<u64>> = BTreeMap::new();
    for round in 0..budget.runs {
        for tool in Tool::ALL {
            if failed.contains_key(&tool) {
                continue;
            }
            let once_over = match tool {
                Tool::Asyncify | Tool::AsyncifyO => limits
                    .asyncify_single_run_over
                    .unwrap_or(budget.single_run_over),
                _ => budget.single_run_over,
            };
            if round > 0 && samples.get(&tool).is_some_and(|s| s[0].wall > once_over) {
                continue;
            }
            if tool == Tool::AsyncifyO && failed.contains_key(&Tool::Asyncify) && round == 0 {
                // -O runs Asyncify and then the optimiser: it cannot succeed
                // where Asyncify alone did not.
                failed.insert(
                    tool,
                    "not run: Asyncify without -O already failed or was stopped".into(),
                );
                continue;
            }
            let out = dir.join(format!("{}.wasm", tool.id()));
            let _ = std::fs::remove_file(&out);
            let cmd = tb.command(tool, &input.path, &out, &input.fork_imports, &[]);
            let o = measure::run(
                &cmd,
                &dir.join(format!("{}.stderr", tool.id())),
                budget.timeout,
            )?;
            if !o.success || !out.exists() {
                log(&format!("    {} failed: {}", tool.id(), o.stderr_tail));
                failed.insert(tool, o.stderr_tail);
                let _ = std::fs::remove_file(&out);
                continue;
            }
            samples.entry(tool).or_default().push(o.cost);
            hashes
                .entry(tool)
                .or_default()
                .push(fnv(&std::fs::read(&out)?));
            if round == 0 {
                log(&format!("    {} {:.2}s", tool.id(), o.cost.wall));
            }
        }
    }
    let mut tools = Vec::new();
    for tool in Tool::ALL {
        let mut r = ToolResult {
            tool: tool.id().into(),
            ..Default::default()
        };
        if let Some(e) = failed.get(&tool) {
            r.error = Some(e.clone());
        }
        if let Some(s) = samples.get(&tool) {
            let walls: Vec<f64> = s.iter().map(|c| c.wall).collect();
            r.ok = r.error.is_none();
            r.runs = s.len();
            r.wall_median_s = median(&walls);
            r.wall_min_s = walls.iter().copied().fold(f64::INFINITY, f64::min);
            r.wall_max_s = walls.iter().copied().fold(0.0, f64::max);
            r.cpu_median_s = median(&s.iter().map(|c| c.cpu).collect::<Vec<_>>());
            r.rss_median_kib = median_u64(&s.iter().map(|c| c.max_rss_kib).collect::<Vec<_>>());
            let h = &hashes[&tool];
            r.deterministic = h.iter().all(|x| *x == h[0]);
        }
        if r.ok {
            let out = std::fs::read(dir.join(format!("{}.wasm", tool.id())))?;
            let after = wasm_stats::read(&out)?;
            r.size = after.size;
            r.code_size = after.code_size;
            r.custom_size = after.custom_size;
            match tool {
                Tool::Forkify => forkify_locals(&before, &after, &dir, &mut r)?,
                Tool::Asyncify | Tool::AsyncifyO => asyncify_locals(
                    tb,
                    tool,
                    input,
                    &before,
                    &dir,
                    &after,
                    r.wall_median_s,
                    &mut r,
                    log,
                )?,
                Tool::Walrus => {}
            }
        }
        tools.push(r);
    }
    Ok(InputResult {
        input: input.clone(),
        size: before.size,
        code_size: before.code_size,
        custom_size: before.custom_size,
        functions: before.funcs.len(),
        tools,
    })
}

fn set_locals(r: &mut ToolResult, added: &[i64], note: String) {
    r.instrumented = Some(added.len());
    r.locals_added_max = Some(added.iter().copied().max().unwrap_or(0));
    r.locals_added_median = Some(if added.is_empty() {
        0.0
    } else {
        median(&added.iter().map(|&x| x as f64).collect::<Vec<_>>())
    });
    r.locals_added_total = Some(added.iter().sum());
    r.locals_note = Some(note);
}

/// Net change in declared locals of each `users` function against the
/// input function `orig` maps it to; `None` when it maps to nothing.
fn net_added<'a>(
    before: &ModuleInfo,
    users: &[&'a wasm_stats::Func],
    mut orig: impl FnMut(&'a wasm_stats::Func) -> Option<u32>,
) -> (Vec<i64>, usize) {
    let mut added = Vec::new();
    let mut unmatched = 0;
    for f in users {
        match orig(f).and_then(|i| before.func(i)) {
            Some(b) => added.push(i64::from(f.locals) - i64::from(b.locals)),
            None => unmatched += 1,
        }
    }
    (added, unmatched)
}

/// forkify: the instrumented functions are those that use the global
/// `wpk_fork_state` returns, except forkify's own runtime (past the
/// input's functions). forkify keeps function order, so each is compared
/// with the input function of the same index. The `--stats` table of the
/// timed runs is a cross-check (it counts the locals the transform
/// declared, which can differ from the net change where walrus drops an
/// unused local).
fn forkify_locals(
    before: &ModuleInfo,
    after: &ModuleInfo,
    dir: &Path,
    r: &mut ToolResult,
) -> Result<()> {
    let Some(state) = after.state_global("wpk_fork_state") else {
        set_locals(r, &[], "no `wpk_fork_state` export: passed through".into());
        return Ok(());
    };
    let input_funcs = before.imported_funcs + before.funcs.len() as u32;
    let users: Vec<_> = after
        .users_of(state, "wpk_fork_")
        .into_iter()
        .filter(|f| f.index < input_funcs)
        .collect();
    let (added, unmatched) = net_added(before, &users, |f| Some(f.index));
    let stats = std::fs::read_to_string(dir.join("forkify.stderr")).unwrap_or_default();
    // Rows: "  NAME  CALL_SITES  LOCALS_ADDED  FRAME_SIZE".
    let mut reported: Vec<i64> = stats
        .lines()
        .filter_map(|l| {
            let t: Vec<&str> = l.split_whitespace().collect();
            let n = t.len();
            (n >= 4 && t[n - 3..].iter().all(|x| x.parse::<u32>().is_ok()))
                .then(|| t[n - 2].parse().ok())
                .flatten()
        })
        .collect();
    let mut mine = added.clone();
    reported.sort_unstable();
    mine.sort_unstable();
    let note = if reported == mine && unmatched == 0 {
        "net change by index; `--stats` lists the same numbers".to_string()
    } else {
        let same = common(&reported, &mine);
        format!(
            "net change by index ({unmatched} unmatched); `--stats` lists {} functions and agrees on {same} (it counts declared locals; the net change is lower where an unused local was dropped)",
            reported.len()
        )
    };
    set_locals(r, &added, note);
    let (sites, parts) = stats_sites_and_bytes(&stats);
    r.call_sites = Some(sites);
    r.added_bytes = Some(parts);
    Ok(())
}

/// From `--stats` text: the sum of the call-sites column and the
/// "added to the instrumented functions (estimated bytes): k v, …" line.
fn stats_sites_and_bytes(stats: &str) -> (u64, BTreeMap<String, u64>) {
    let mut sites = 0;
    let mut parts = BTreeMap::new();
    for l in stats.lines() {
        if let Some(rest) = l
            .trim()
            .strip_prefix("added to the instrumented functions (estimated bytes):")
        {
            for part in rest.split(',') {
                let part = part.trim();
                if let Some((k, v)) = part.rsplit_once(' ') {
                    if let Ok(v) = v.parse() {
                        parts.insert(k.to_string(), v);
                    }
                }
            }
            continue;
        }
        let t: Vec<&str> = l.split_whitespace().collect();
        let n = t.len();
        if n >= 4 && t[n - 3..].iter().all(|x| x.parse::<u32>().is_ok()) {
            sites += t[n - 3].parse::<u64>().unwrap_or(0);
        }
    }
    (sites, parts)
}

/// How many elements two sorted lists share (as multisets).
fn common(a: &[i64], b: &[i64]) -> usize {
    let (mut i, mut j, mut n) = (0, 0, 0);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                n += 1;
                i += 1;
                j += 1;
            }
        }
    }
    n
}

/// Asyncify: the instrumented functions are those that use the global
/// `asyncify_get_state` returns, except the runtime Binaryen appends.
/// Without -O Binaryen keeps function order, so they are compared by
/// index (checked: the output has the input's functions plus Asyncify's
/// own after them). -O inlines, merges and reorders, so the locals of the
/// -O output come from one more, untimed run with `-g` (names kept) on a
/// copy of the input that names every function `f<index>` when the input
/// has no names; it is skipped when the timed run took over a minute.
#[allow(clippy::too_many_arguments)]
fn asyncify_locals(
    tb: &Toolbox,
    tool: Tool,
    input: &Input,
    before: &ModuleInfo,
    dir: &Path,
    timed: &ModuleInfo,
    timed_wall: f64,
    r: &mut ToolResult,
    log: &mut dyn FnMut(&str),
) -> Result<()> {
    let input_funcs = before.imported_funcs + before.funcs.len() as u32;
    if tool == Tool::Asyncify {
        let Some(state) = timed.state_global("asyncify_get_state") else {
            r.locals_note = Some("no `asyncify_get_state` export".into());
            return Ok(());
        };
        if timed.imported_funcs != before.imported_funcs
            || (timed.funcs.len() as u32) < input_funcs - before.imported_funcs
        {
            r.locals_note = Some("function counts differ from the input's: not matched".into());
            return Ok(());
        }
        let users: Vec<_> = timed
            .users_of(state, "asyncify_")
            .into_iter()
            .filter(|f| f.index < input_funcs)
            .collect();
        let (added, _) = net_added(before, &users, |f| Some(f.index));
        set_locals(r, &added, "net change by index".into());
        return Ok(());
    }
    if timed_wall > 60.0 {
        r.locals_note = Some("not measured: the -O run took over a minute".into());
        return Ok(());
    }
    let named_input = if before.names.is_empty() {
        let p = dir.join("input.named.wasm");
        let mut bytes = std::fs::read(&input.path)?;
        let mut map = wasm_encoder::NameMap::new();
        for i in 0..input_funcs {
            map.append(i, &format!("f{i}"));
        }
        let mut names = wasm_encoder::NameSection::new();
        names.functions(&map);
        wasm_encoder::Section::append_to(&names, &mut bytes);
        std::fs::write(&p, bytes)?;
        p
    } else {
        input.path.clone()
    };
    let out = dir.join(format!("{}.g.wasm", tool.id()));
    let cmd = tb.command(tool, &named_input, &out, &input.fork_imports, &["-g"]);
    let o = measure::run(
        &cmd,
        &dir.join(format!("{}.g.stderr", tool.id())),
        (timed_wall * 3.0).max(60.0),
    )?;
    if !o.success {
        log(&format!("    {} -g failed: {}", tool.id(), o.stderr_tail));
        r.locals_note = Some(format!("the -g run failed: {}", o.stderr_tail));
        return Ok(());
    }
    let after = wasm_stats::read(&std::fs::read(&out)?)?;
    let _ = std::fs::remove_file(&out);
    let Some(state) = after.state_global("asyncify_get_state") else {
        r.locals_note = Some("no `asyncify_get_state` export".into());
        return Ok(());
    };
    let by_name: BTreeMap<&str, u32> = before.names.iter().map(|(i, n)| (n.as_str(), *i)).collect();
    let named = before.names.is_empty();
    let orig = |name: &str| -> Option<u32> {
        if named {
            name.strip_prefix('f')?.parse().ok()
        } else {
            by_name.get(name).copied()
        }
    };
    // Binaryen gives the functions it adds (and any it cannot name) a
    // number; those are its runtime, not instrumented input functions.
    let users: Vec<_> = after
        .users_of(state, "asyncify_")
        .into_iter()
        .filter(|f| {
            let name = after.names.get(&f.index).map(String::as_str).unwrap_or("");
            orig(name).is_some() || name.parse::<u32>().is_err()
        })
        .collect();
    let mut missing = Vec::new();
    let (added, unmatched) = net_added(before, &users, |f| {
        let name = after.names.get(&f.index).map(String::as_str).unwrap_or("");
        let i = orig(name);
        if i.is_none() && missing.len() < 3 {
            missing.push(name.to_string());
        }
        i
    });
    let same = after.code_size == timed.code_size;
    let mut note = format!(
        "net change by name, from a -g run{}",
        if same {
            ""
        } else {
            " (its code size differs from the timed run's)"
        }
    );
    if unmatched > 0 {
        note.push_str(&format!(
            "; {unmatched} of {} not found in the input by name ({}), left out",
            users.len(),
            missing.join(", ")
        ));
    }
    set_locals(r, &added, note);
    Ok(())
}

/// FNV-1a, to compare outputs across runs without keeping them.
fn fnv(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100_0000_01b3);
    }
    h
}
