//! Counting the cases and their outcomes, and keeping the failures (with
//! their inputs saved for replay).

use super::*;

#[derive(Debug, Default)]
pub struct Tally {
    pub cases: u64,
    pub not_generated: u64,
    pub no_fork_import: u64,
    pub fork_referenced: u64,
    pub instrumented: u64,
    pub instrumented_fork_referenced: u64,
    pub refused_unsupported: u64,
    pub refused_module: u64,
    pub refused_fork_referenced: u64,
    pub engine_rejected: u64,
    pub resource_skipped: u64,
    pub compared_a: u64,
    pub compared_b: u64,
    pub skipped_b: u64,
    pub cases_with_forks: u64,
    /// Of the original runs: export calls, those that trapped, import calls,
    /// cases whose exports called the fork import.
    pub fork_called: u64,
    pub uncaught: u64,
    pub corruption_detected: u64,
    pub calls: u64,
    pub traps: u64,
    pub import_calls: u64,
    pub stats: ForkStats,
    pub reasons: BTreeMap<String, u64>,
    pub failures: Vec<String>,
}

impl Tally {
    pub fn merge(&mut self, o: Tally) {
        self.cases += o.cases;
        self.not_generated += o.not_generated;
        self.no_fork_import += o.no_fork_import;
        self.fork_referenced += o.fork_referenced;
        self.instrumented += o.instrumented;
        self.instrumented_fork_referenced += o.instrumented_fork_referenced;
        self.refused_unsupported += o.refused_unsupported;
        self.refused_module += o.refused_module;
        self.refused_fork_referenced += o.refused_fork_referenced;
        self.engine_rejected += o.engine_rejected;
        self.resource_skipped += o.resource_skipped;
        self.compared_a += o.compared_a;
        self.compared_b += o.compared_b;
        self.skipped_b += o.skipped_b;
        self.cases_with_forks += o.cases_with_forks;
        self.calls += o.calls;
        self.fork_called += o.fork_called;
        self.uncaught += o.uncaught;
        self.corruption_detected += o.corruption_detected;
        self.traps += o.traps;
        self.import_calls += o.import_calls;
        self.stats += o.stats;
        for (k, v) in o.reasons {
            *self.reasons.entry(k).or_default() += v;
        }
        self.failures.extend(o.failures);
    }

    pub fn summary(&self) -> String {
        let mut s = format!(
            "differential: cases={} instrumented={} refused={} (unsupported={} module={}) compared: A={} B={} (with forks={}) \
             skipped: not-generated={} no-fork-import={} engine-rejected={} resource={} B-only={} \
             forks={} aborts={} no-room={} capped={} fork-referenced={} (instrumented {}, refused {}) \
             original runs: calls={} traps={} (uncaught exceptions {}) import-calls={} fork-called={} failures={}",
            self.cases,
            self.instrumented,
            self.refused_unsupported + self.refused_module,
            self.refused_unsupported,
            self.refused_module,
            self.compared_a,
            self.compared_b,
            self.cases_with_forks,
            self.not_generated,
            self.no_fork_import,
            self.engine_rejected,
            self.resource_skipped,
            self.skipped_b,
            self.stats.forks,
            self.stats.aborts,
            self.stats.no_room,
            self.stats.capped,
            self.fork_referenced,
            self.instrumented_fork_referenced,
            self.refused_fork_referenced,
            self.calls,
            self.traps,
            self.uncaught,
            self.import_calls,
            self.fork_called,
            self.failures.len(),
        );
        let mut reasons: Vec<_> = self.reasons.iter().collect();
        reasons.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        for (r, n) in reasons.into_iter().take(8) {
            let _ = write!(s, "\n  refused {n:>5}x: {r}");
        }
        let mut kinds: BTreeMap<String, u64> = BTreeMap::new();
        for f in &self.failures {
            *kinds.entry(failure_kind(f)).or_default() += 1;
        }
        let mut kinds: Vec<_> = kinds.into_iter().collect();
        kinds.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        for (k, n) in kinds.into_iter().take(12) {
            let _ = write!(s, "\n  FAILED  {n:>5}x: {k}");
        }
        s
    }
}

/// A failure message without its seed, numbers and values: groups failures
/// by kind in the summary.
pub fn failure_kind(f: &str) -> String {
    let first = f.lines().next().unwrap_or("");
    let msg = first.split_once(": ").map_or(first, |(_, m)| m);
    let mut out = String::new();
    let mut depth = 0;
    for c in msg.chars() {
        match c {
            '(' | '[' | '{' => {
                if depth == 0 {
                    out.push_str("(..)");
                }
                depth += 1;
            }
            ')' | ']' | '}' => depth -= 1,
            c if depth == 0 && !c.is_ascii_digit() => out.push(c),
            _ => {}
        }
    }
    out.chars().take(110).collect()
}

/// Shortens a refusal message to its reason (function names vary).
pub fn reason_key(e: &Error) -> String {
    let s = match e {
        Error::Unsupported { reason, .. } => format!("unsupported: {reason}"),
        other => other.to_string(),
    };
    let s: String = s
        .chars()
        .map(|c| if c.is_ascii_digit() { '#' } else { c })
        .collect();
    s.chars().take(120).collect()
}

pub fn save_failure(seed: u64, input: &[u8], output: Option<&[u8]>, msg: &str) -> String {
    let dir = failure_dir("differential-failures");
    let _ = std::fs::create_dir_all(&dir);
    let base = dir.join(format!("{seed:016x}"));
    let _ = std::fs::write(base.with_extension("wasm"), input);
    if let Some(out) = output {
        let _ = std::fs::write(base.with_extension("out.wasm"), out);
    }
    let _ = std::fs::write(base.with_extension("txt"), msg);
    format!("seed {seed:#x}: {msg}\n    saved to {}.wasm (replay: FORKIFY_DIFF_SEED={seed:#x} FORKIFY_DIFF_CASES=1)", base.display())
}
