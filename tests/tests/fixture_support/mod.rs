//! Shared by the fixture tests (`fixtures.rs`, `shape.rs`, `golden.rs`,
//! `engines.rs`): reading the WAT fixtures in `tests/fixtures/` and their
//! directives, comparing a run with them, and instrumenting one. The one
//! fixture written by a program is generated in [`forty_sites`]; [`oracle`]
//! runs an *uninstrumented* fixture with real fork semantics by
//! re-execution, so the expectations can be checked without the
//! instrumenter. Looking inside modules is `forkify_testkit::module_info`.
//!
//! Nothing here knows how the instrumenter works; it only uses the public
//! API of `forkify_instrument` and the ABI text.

#![allow(dead_code)] // each test binary uses a different part

pub mod forty_sites;
pub mod oracle;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use forkify_host::{ExitStatus, RunOptions, RunReport};
use forkify_instrument::{Config, ImportName, Instrumented};
use forkify_testkit::wasm::{custom_sections, validate};

/// The directory of the fixtures.
pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// The names (file stems) of every `*.wat` fixture, sorted.
pub fn fixture_names() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(fixtures_dir())
        .expect("read tests/fixtures")
        .filter_map(|e| {
            let path = e.ok()?.path();
            (path.extension()? == "wat").then(|| path.file_stem()?.to_str().map(str::to_string))?
        })
        .collect();
    names.sort();
    names
}

/// How a process is expected to end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExpectStatus {
    /// `status=N`: `kernel_exit(N)`, or 0 when `_start` returned.
    Exited(i32),
    /// `status=trap`.
    Trap,
}

impl ExpectStatus {
    /// Whether an actual status matches.
    pub fn matches(&self, actual: &ExitStatus) -> bool {
        match (self, actual) {
            (ExpectStatus::Exited(a), ExitStatus::Exited(b)) => a == b,
            (ExpectStatus::Trap, ExitStatus::Trapped(_)) => true,
            _ => false,
        }
    }
}

/// One `@expect` line: a process of the run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expect {
    /// Its pid.
    pub pid: i32,
    /// The pid that forked it, `None` (`parent=-`) for the first process.
    pub parent: Option<i32>,
    /// How it ends.
    pub status: ExpectStatus,
    /// Exactly what it writes.
    pub stdout: String,
}

/// A fixture file and its directives.
#[derive(Debug, Clone)]
pub struct Fixture {
    /// File stem.
    pub name: String,
    /// Path of the file.
    pub path: PathBuf,
    /// The whole WAT text.
    pub text: String,
    /// The `;; intent:` line.
    pub intent: String,
    /// The processes of the run, in pid order.
    pub expect: Vec<Expect>,
    /// `@options buffer-size=N`.
    pub buffer_size: Option<u32>,
    /// `@options max-processes=N`.
    pub max_processes: Option<u32>,
    /// `@fork-import module.name` lines (empty: the default).
    pub fork_imports: Vec<ImportName>,
    /// `@requires FEATURE` lines (`exceptions`).
    pub requires: Vec<String>,
    /// `@oracle fail-forks=N`: in the oracle, the first N forks of the run
    /// fail with -12 (what a too-small save buffer does on the real host).
    pub oracle_fail_forks: u32,
}

impl Fixture {
    /// Reads and parses `tests/fixtures/<name>.wat`. Panics with the file
    /// name on a malformed directive.
    pub fn load(name: &str) -> Fixture {
        let path = fixtures_dir().join(format!("{name}.wat"));
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: cannot read: {e}", path.display()));
        Fixture::parse(name, &path, text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    /// Parses the leading `;;` lines of `text`.
    pub fn parse(name: &str, path: &Path, text: String) -> Result<Fixture, String> {
        let mut f = Fixture {
            name: name.to_string(),
            path: path.to_path_buf(),
            text: String::new(),
            intent: String::new(),
            expect: Vec::new(),
            buffer_size: None,
            max_processes: None,
            fork_imports: Vec::new(),
            requires: Vec::new(),
            oracle_fail_forks: 0,
        };
        for (n, line) in text.lines().enumerate() {
            let Some(comment) = line.strip_prefix(";;") else {
                break;
            };
            let comment = comment.trim();
            let at = |e: String| format!("line {}: {e}", n + 1);
            if let Some(intent) = comment.strip_prefix("intent:") {
                f.intent = intent.trim().to_string();
            } else if let Some(rest) = comment.strip_prefix("@expect") {
                f.expect.push(parse_expect(rest).map_err(at)?);
            } else if let Some(rest) = comment.strip_prefix("@options") {
                for (k, v) in tokens(rest).map_err(at)? {
                    let num = || v.parse::<u32>().map_err(|e| at(format!("{k}={v}: {e}")));
                    match k.as_str() {
                        "buffer-size" => f.buffer_size = Some(num()?),
                        "max-processes" => f.max_processes = Some(num()?),
                        _ => return Err(at(format!("unknown option `{k}`"))),
                    }
                }
            } else if let Some(rest) = comment.strip_prefix("@fork-import") {
                f.fork_imports.push(rest.trim().parse().map_err(at)?);
            } else if let Some(rest) = comment.strip_prefix("@requires") {
                f.requires.push(rest.trim().to_string());
            } else if let Some(rest) = comment.strip_prefix("@oracle") {
                for (k, v) in tokens(rest).map_err(at)? {
                    match k.as_str() {
                        "fail-forks" => {
                            f.oracle_fail_forks =
                                v.parse().map_err(|e| at(format!("{k}={v}: {e}")))?
                        }
                        _ => return Err(at(format!("unknown oracle option `{k}`"))),
                    }
                }
            } else if comment.starts_with('@') {
                return Err(at(format!("unknown directive `{comment}`")));
            }
        }
        if f.intent.is_empty() {
            return Err("no `;; intent:` line at the top".into());
        }
        if f.expect.is_empty() {
            return Err("no `;; @expect` line at the top".into());
        }
        f.expect.sort_by_key(|e| e.pid);
        f.text = text;
        Ok(f)
    }

    /// The instrumenter's configuration.
    pub fn config(&self) -> Config {
        Config::with_fork_imports(self.fork_imports.clone())
    }

    /// The host's options.
    pub fn run_options(&self) -> RunOptions {
        let mut o = RunOptions::default();
        if let Some(n) = self.buffer_size {
            o.buffer_size = n;
        }
        if let Some(n) = self.max_processes {
            o.max_processes = n;
        }
        o
    }

    /// The module, compiled from the text.
    pub fn wasm(&self) -> Vec<u8> {
        wat::parse_str(&self.text)
            .unwrap_or_else(|e| panic!("{}: does not compile:\n{e}", self.path.display()))
    }

    /// True when every `@requires` feature is available in this build's
    /// wasmtime (the host and the oracle share it).
    pub fn runnable(&self) -> Result<(), String> {
        for feature in &self.requires {
            match feature.as_str() {
                "exceptions" => oracle::engine_supports(
                    "exceptions",
                    "(module (tag $t) (func (block $h (try_table (catch_all $h) (throw $t)))))",
                )?,
                "function-references" => oracle::engine_supports(
                    "function-references",
                    "(module (type $t (func)) (elem declare func $f)
                       (func $f (type $t)) (func (call_ref $t (ref.func $f))))",
                )?,
                other => return Err(format!("unknown @requires `{other}`")),
            }
        }
        Ok(())
    }
}

/// Splits `k=v k="quoted \"value\""` into pairs.
fn tokens(s: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.peek().is_none() {
            return Ok(out);
        }
        let mut key = String::new();
        loop {
            match chars.next() {
                Some('=') => break,
                Some(c) if !c.is_whitespace() => key.push(c),
                _ => return Err(format!("expected `key=value` after `{key}`")),
            }
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    None => return Err(format!("unterminated string for `{key}`")),
                    Some('"') => break,
                    Some('\\') => match chars.next() {
                        Some('n') => value.push('\n'),
                        Some('t') => value.push('\t'),
                        Some('"') => value.push('"'),
                        Some('\\') => value.push('\\'),
                        other => return Err(format!("bad escape \\{other:?} in `{key}`")),
                    },
                    Some(c) => value.push(c),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                value.push(c);
                chars.next();
            }
        }
        out.push((key, value));
    }
}

fn parse_expect(s: &str) -> Result<Expect, String> {
    let mut pid = None;
    let mut parent = None;
    let mut status = None;
    let mut stdout = None;
    for (k, v) in tokens(s)? {
        let int = || v.parse::<i32>().map_err(|e| format!("{k}={v}: {e}"));
        match k.as_str() {
            "pid" => pid = Some(int()?),
            "parent" => parent = Some(if v == "-" { None } else { Some(int()?) }),
            "status" => {
                status = Some(if v == "trap" {
                    ExpectStatus::Trap
                } else {
                    ExpectStatus::Exited(int()?)
                })
            }
            "stdout" => stdout = Some(v),
            _ => return Err(format!("unknown @expect key `{k}`")),
        }
    }
    let missing = |what: &str| format!("@expect without `{what}=`");
    Ok(Expect {
        pid: pid.ok_or_else(|| missing("pid"))?,
        parent: parent.ok_or_else(|| missing("parent"))?,
        status: status.ok_or_else(|| missing("status"))?,
        stdout: stdout.ok_or_else(|| missing("stdout"))?,
    })
}

/// Compares a run with the `@expect` lines; on a mismatch returns a message
/// with both trees and the whole report.
pub fn check_tree(f: &Fixture, report: &RunReport, who: &str) -> Result<(), String> {
    let same = report.processes.len() == f.expect.len()
        && report.processes.iter().zip(&f.expect).all(|(p, e)| {
            p.pid == e.pid
                && p.parent == e.parent
                && p.stdout == e.stdout
                && e.status.matches(&p.status)
        });
    if same {
        return Ok(());
    }
    let mut msg = format!("fixture `{}` ({who}): the process tree differs\n", f.name);
    let _ = writeln!(msg, "intent: {}", f.intent);
    let _ = writeln!(msg, "expected:");
    for e in &f.expect {
        let _ = writeln!(
            msg,
            "  pid={} parent={} status={} stdout={:?}",
            e.pid,
            e.parent.map_or("-".to_string(), |p| p.to_string()),
            match &e.status {
                ExpectStatus::Exited(n) => n.to_string(),
                ExpectStatus::Trap => "trap".into(),
            },
            e.stdout
        );
    }
    let _ = writeln!(msg, "actual:");
    for p in &report.processes {
        let _ = writeln!(
            msg,
            "  pid={} parent={} status={} stdout={:?}",
            p.pid,
            p.parent.map_or("-".to_string(), |p| p.to_string()),
            match &p.status {
                ExitStatus::Exited(n) => n.to_string(),
                ExitStatus::Trapped(t) => format!("trap ({t})"),
            },
            p.stdout
        );
    }
    let _ = writeln!(
        msg,
        "whole report (chronological output):\n{}",
        report.render()
    );
    let json = serde_json::to_string_pretty(&report.to_json()).unwrap_or_default();
    let _ = writeln!(msg, "as JSON:\n{json}");
    Err(msg)
}

/// Instruments a fixture, validates the output and checks that it carries
/// exactly one `forkify.abi` section. Panics with the fixture's name.
pub fn instrument_fixture(f: &Fixture) -> (Vec<u8>, Instrumented) {
    instrument_fixture_with(f, &f.config())
}

/// [`instrument_fixture`] with another configuration.
pub fn instrument_fixture_with(f: &Fixture, config: &Config) -> (Vec<u8>, Instrumented) {
    let wasm = f.wasm();
    if let Err(e) = validate(&wasm) {
        panic!(
            "{}: the fixture itself does not validate: {e}",
            f.path.display()
        );
    }
    let out = forkify_instrument::instrument(&wasm, config)
        .unwrap_or_else(|e| panic!("fixture `{}`: instrument() failed: {e}", f.name));
    if let Err(e) = validate(&out.bytes) {
        panic!(
            "fixture `{}`: the instrumented module does not validate: {e}",
            f.name
        );
    }
    let sections = custom_sections(&out.bytes, forkify_abi::SECTION_NAME);
    if let Err(e) = forkify_testkit::artifact::check(&out.bytes) {
        panic!("fixture `{}`: {e}", f.name);
    }
    assert_eq!(
        sections.len(),
        1,
        "fixture `{}`: the instrumented module must carry exactly one `forkify.abi` section",
        f.name
    );
    (wasm, out)
}
