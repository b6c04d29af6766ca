//! Shared by `fixtures.rs` and `shape.rs`: reading the WAT fixtures in
//! `tests/fixtures/` and their directives, generating the one fixture that is
//! written by a program (`forty_sites.wat`), instrumenting and validating,
//! and looking inside modules with wasmparser. [`oracle`] runs an
//! *uninstrumented* fixture with real fork semantics by re-execution, so the
//! expectations can be checked without the instrumenter.
//!
//! Nothing here knows how the instrumenter works; it only uses the public
//! API of `forkify_instrument` and the ABI text.

#![allow(dead_code)] // each test binary uses a different part

pub mod oracle;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use cargo_forkify::host::{ExitStatus, RunOptions, RunReport};
use forkify_instrument::{Config, ImportName, Instrumented};
use wasmparser::{
    BlockType, CompositeInnerType, ElementItems, ExternalKind, KnownCustom, Name, Operator, Parser,
    Payload, TypeRef, ValType, Validator, WasmFeatures,
};

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

/// Validates with wasmparser, every feature on (the input decides which
/// features a fixture needs; the output must stay within them, which the
/// engine checks when it runs).
pub fn validate(bytes: &[u8]) -> Result<(), String> {
    Validator::new_with_features(WasmFeatures::all())
        .validate_all(bytes)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Instruments a fixture, validates the output and checks that it carries
/// exactly one `forkify.abi` section. Panics with the fixture's name.
pub fn instrument_fixture(f: &Fixture) -> (Vec<u8>, Instrumented) {
    let wasm = f.wasm();
    if let Err(e) = validate(&wasm) {
        panic!(
            "{}: the fixture itself does not validate: {e}",
            f.path.display()
        );
    }
    let out = forkify_instrument::instrument(&wasm, &f.config())
        .unwrap_or_else(|e| panic!("fixture `{}`: instrument() failed: {e}", f.name));
    if let Err(e) = validate(&out.bytes) {
        panic!(
            "fixture `{}`: the instrumented module does not validate: {e}",
            f.name
        );
    }
    let sections = custom_sections(&out.bytes, forkify_instrument::abi::SECTION_NAME);
    assert_eq!(
        sections.len(),
        1,
        "fixture `{}`: the instrumented module must carry exactly one `forkify.abi` section",
        f.name
    );
    (wasm, out)
}

/// The payloads of every custom section called `name`.
pub fn custom_sections(bytes: &[u8], name: &str) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for payload in Parser::new(0).parse_all(bytes) {
        if let Ok(Payload::CustomSection(c)) = payload {
            if c.name() == name {
                out.push(c.data().to_vec());
            }
        }
    }
    out
}

/// One defined function, as wasmparser sees it.
#[derive(Debug, Clone)]
pub struct FuncInfo {
    /// Index in the function index space.
    pub index: u32,
    /// From the name section, if any.
    pub name: Option<String>,
    /// Declared locals (parameters excluded), run-length as in the binary.
    pub locals: Vec<(u32, ValType)>,
    /// Operators, rendered so that type and function indices read as what
    /// they point to (the type section may be reordered or deduplicated).
    pub ops: Vec<String>,
    /// Raw operators for scans.
    pub raw_ops: Vec<RawOp>,
    /// The body's bytes (locals and code).
    pub body: Vec<u8>,
    /// Functions it calls directly (`call`, `return_call`).
    pub direct_calls: Vec<u32>,
    /// Types (rendered) it calls through a table or a reference
    /// (`call_indirect`, `call_ref` and their `return_` forms).
    pub indirect_calls: Vec<String>,
}

impl FuncInfo {
    /// Declared locals counted per type.
    pub fn locals_per_type(&self) -> BTreeMap<String, u32> {
        let mut m = BTreeMap::new();
        for (n, t) in &self.locals {
            *m.entry(format!("{t:?}")).or_insert(0) += n;
        }
        m
    }

    /// The deepest nesting of block, loop, if and try constructs.
    pub fn max_depth(&self) -> u32 {
        let (mut depth, mut max) = (0u32, 0u32);
        for op in &self.raw_ops {
            match op {
                RawOp::Open => {
                    depth += 1;
                    max = max.max(depth);
                }
                RawOp::End => depth = depth.saturating_sub(1),
                _ => {}
            }
        }
        max
    }
}

/// The few operator facts the shape tests scan for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RawOp {
    /// block, loop, if, try_table, try.
    Open,
    /// end.
    End,
    /// A store with its width in bytes and memarg offset.
    Store { bytes: u32, offset: u64, int: bool },
    /// Anything else.
    Other,
}

/// A module, as wasmparser sees it.
#[derive(Debug, Clone, Default)]
pub struct ModuleInfo {
    /// Imported functions.
    pub imported_funcs: u32,
    /// Imported functions as `module.name`, in index order.
    pub func_imports: Vec<String>,
    /// Functions named in element segments.
    pub elem_funcs: Vec<u32>,
    /// Defined functions in index order.
    pub funcs: Vec<FuncInfo>,
    /// Exports: name, kind, index.
    pub exports: Vec<(String, ExternalKind, u32)>,
    /// Types of every function (imported and defined), rendered.
    pub func_types: Vec<String>,
    /// Defined globals: (type, mutable).
    pub globals: Vec<(ValType, bool)>,
    /// Whether memory 0 is 64-bit.
    pub memory64: bool,
}

impl ModuleInfo {
    /// Parses `bytes` (which must be valid).
    pub fn parse(bytes: &[u8]) -> ModuleInfo {
        let mut m = ModuleInfo::default();
        let mut types: Vec<String> = Vec::new();
        let mut func_type_idx: Vec<u32> = Vec::new();
        let mut names: BTreeMap<u32, String> = BTreeMap::new();
        let mut bodies = Vec::new();
        let mut saw_memory = false;
        for payload in Parser::new(0).parse_all(bytes) {
            match payload.expect("parse") {
                Payload::TypeSection(r) => {
                    for group in r {
                        for sub in group.expect("type").into_types() {
                            types.push(match &sub.composite_type.inner {
                                CompositeInnerType::Func(ft) => {
                                    format!("{:?}->{:?}", ft.params(), ft.results())
                                }
                                other => format!("{other:?}"),
                            });
                        }
                    }
                }
                Payload::ImportSection(r) => {
                    for imp in r.into_imports() {
                        let imp = imp.expect("import");
                        match imp.ty {
                            TypeRef::Func(t) => {
                                m.imported_funcs += 1;
                                m.func_imports.push(format!("{}.{}", imp.module, imp.name));
                                func_type_idx.push(t);
                            }
                            TypeRef::Memory(mt) if !saw_memory => {
                                saw_memory = true;
                                m.memory64 = mt.memory64;
                            }
                            _ => {}
                        }
                    }
                }
                Payload::FunctionSection(r) => {
                    for t in r {
                        func_type_idx.push(t.expect("function"));
                    }
                }
                Payload::MemorySection(r) => {
                    for mt in r {
                        let mt = mt.expect("memory");
                        if !saw_memory {
                            saw_memory = true;
                            m.memory64 = mt.memory64;
                        }
                    }
                }
                Payload::GlobalSection(r) => {
                    for g in r {
                        let g = g.expect("global");
                        m.globals.push((g.ty.content_type, g.ty.mutable));
                    }
                }
                Payload::ExportSection(r) => {
                    for e in r {
                        let e = e.expect("export");
                        m.exports.push((e.name.to_string(), e.kind, e.index));
                    }
                }
                Payload::ElementSection(r) => {
                    for e in r {
                        if let ElementItems::Functions(fs) = e.expect("element").items {
                            m.elem_funcs
                                .extend(fs.into_iter().map(|f| f.expect("elem func")));
                        }
                    }
                }
                Payload::CodeSectionEntry(body) => bodies.push(body),
                Payload::CustomSection(c) => {
                    if let KnownCustom::Name(r) = c.as_known() {
                        for n in r.into_iter().flatten() {
                            if let Name::Function(map) = n {
                                for naming in map.into_iter().flatten() {
                                    names.insert(naming.index, naming.name.to_string());
                                }
                            }
                        }
                    }
                }
                _ => {}
            }
        }
        m.func_types = func_type_idx
            .iter()
            .map(|&t| types.get(t as usize).cloned().unwrap_or_default())
            .collect();
        let func_name = |i: u32| {
            names
                .get(&i)
                .cloned()
                .unwrap_or_else(|| format!("func[{i}]"))
        };
        for (n, body) in bodies.into_iter().enumerate() {
            let index = m.imported_funcs + n as u32;
            let mut locals = Vec::new();
            for l in body.get_locals_reader().expect("locals") {
                locals.push(l.expect("local"));
            }
            let mut ops = Vec::new();
            let mut raw_ops = Vec::new();
            let mut direct_calls = Vec::new();
            let mut indirect_calls = Vec::new();
            let mut r = body.get_operators_reader().expect("operators");
            while !r.eof() {
                let op = r.read().expect("operator");
                raw_ops.push(raw_op(&op));
                match &op {
                    Operator::Call { function_index } | Operator::ReturnCall { function_index } => {
                        direct_calls.push(*function_index)
                    }
                    Operator::CallIndirect { type_index, .. }
                    | Operator::ReturnCallIndirect { type_index, .. }
                    | Operator::CallRef { type_index }
                    | Operator::ReturnCallRef { type_index } => indirect_calls
                        .push(types.get(*type_index as usize).cloned().unwrap_or_default()),
                    _ => {}
                }
                ops.push(render_op(&op, &types, &func_name));
            }
            m.funcs.push(FuncInfo {
                index,
                name: names.get(&index).cloned(),
                locals,
                ops,
                raw_ops,
                body: bytes[body.range()].to_vec(),
                direct_calls,
                indirect_calls,
            });
        }
        m
    }

    /// The defined functions that can reach one of `fork_imports`
    /// (`module.name`): direct calls, and table or reference calls of a type
    /// that a function in an element segment (active or declared) has (a
    /// superset of ABI §1's rule, exact for the fixtures: one table,
    /// constant segments).
    pub fn fork_path(&self, fork_imports: &[String]) -> BTreeSet<u32> {
        let mut on: BTreeSet<u32> = (0..self.imported_funcs)
            .filter(|&i| fork_imports.contains(&self.func_imports[i as usize]))
            .collect();
        let forks = on.clone();
        loop {
            let before = on.len();
            for f in &self.funcs {
                let reaches = f.direct_calls.iter().any(|c| on.contains(c))
                    || f.indirect_calls.iter().any(|ty| {
                        self.elem_funcs
                            .iter()
                            .any(|e| on.contains(e) && self.func_types[*e as usize] == *ty)
                    });
                if reaches {
                    on.insert(f.index);
                }
            }
            if on.len() == before {
                break;
            }
        }
        on.difference(&forks).copied().collect()
    }

    /// The defined function called `name` in the name section.
    pub fn func_named(&self, name: &str) -> Option<&FuncInfo> {
        self.funcs.iter().find(|f| f.name.as_deref() == Some(name))
    }

    /// The defined function with this index.
    pub fn func(&self, index: u32) -> Option<&FuncInfo> {
        index
            .checked_sub(self.imported_funcs)
            .and_then(|i| self.funcs.get(i as usize))
    }
}

fn block_type(bt: &BlockType, types: &[String]) -> String {
    match bt {
        BlockType::FuncType(i) => types.get(*i as usize).cloned().unwrap_or_default(),
        other => format!("{other:?}"),
    }
}

fn render_op(op: &Operator, types: &[String], func_name: &dyn Fn(u32) -> String) -> String {
    let ty = |i: &u32| types.get(*i as usize).cloned().unwrap_or_default();
    match op {
        Operator::Call { function_index } => format!("call {}", func_name(*function_index)),
        Operator::ReturnCall { function_index } => {
            format!("return_call {}", func_name(*function_index))
        }
        Operator::RefFunc { function_index } => format!("ref.func {}", func_name(*function_index)),
        Operator::CallIndirect {
            type_index,
            table_index,
        } => {
            format!("call_indirect {} table {table_index}", ty(type_index))
        }
        Operator::ReturnCallIndirect {
            type_index,
            table_index,
        } => {
            format!(
                "return_call_indirect {} table {table_index}",
                ty(type_index)
            )
        }
        Operator::CallRef { type_index } => format!("call_ref {}", ty(type_index)),
        Operator::ReturnCallRef { type_index } => format!("return_call_ref {}", ty(type_index)),
        Operator::Block { blockty } => format!("block {}", block_type(blockty, types)),
        Operator::Loop { blockty } => format!("loop {}", block_type(blockty, types)),
        Operator::If { blockty } => format!("if {}", block_type(blockty, types)),
        Operator::TryTable { try_table } => format!(
            "try_table {} {:?}",
            block_type(&try_table.ty, types),
            try_table.catches
        ),
        other => format!("{other:?}"),
    }
}

fn raw_op(op: &Operator) -> RawOp {
    use Operator as O;
    let store = |bytes: u32, offset: u64, int: bool| RawOp::Store { bytes, offset, int };
    match op {
        O::Block { .. } | O::Loop { .. } | O::If { .. } | O::TryTable { .. } | O::Try { .. } => {
            RawOp::Open
        }
        O::End => RawOp::End,
        O::I64Store { memarg } => store(8, memarg.offset, true),
        O::F64Store { memarg } => store(8, memarg.offset, false),
        O::I32Store { memarg } => store(4, memarg.offset, true),
        O::F32Store { memarg } => store(4, memarg.offset, false),
        O::V128Store { memarg } => store(16, memarg.offset, false),
        _ => RawOp::Other,
    }
}

/// The one fixture written by a program: a function with 40 fork sites in
/// code order, site `k` forking only when bit `k` of its mask is set; the
/// mask has bits 3 and 38, so exactly two sites fork. Regenerate the file
/// with `FORKIFY_BLESS=1 cargo test -p forkify-tests --test fixtures`.
pub fn forty_sites_wat() -> String {
    const SITES: u32 = 40;
    const FORKING: [u32; 2] = [3, 38];
    let mask: u64 = FORKING.iter().map(|k| 1u64 << k).sum();
    let acc = |k: u32| k * (k + 1) / 2;
    let mut s = String::new();
    let _ = writeln!(
        s,
        ";; intent: one function with {SITES} fork sites in code order (generated: fixture_support::forty_sites_wat); site k forks only when bit k of the mask is set, and the mask selects sites {} and {}; each child reports the site it resumed at with the locals live there, and exits with the site number",
        FORKING[0], FORKING[1]
    );
    let _ = writeln!(
        s,
        ";; @expect pid=1 parent=- status=0 stdout=\"parent: child 2 exited {a}\\nparent: child 3 exited {b}\\nhits=2\\n\"",
        a = FORKING[0],
        b = FORKING[1]
    );
    for (i, k) in FORKING.iter().enumerate() {
        let _ = writeln!(
            s,
            ";; @expect pid={} parent=1 status={k} stdout=\"child resumed at site {k} hits={i} acc={}\\n\"",
            i + 2,
            acc(*k)
        );
    }
    s.push_str("(module\n");
    s.push_str(&prelude(false));
    s.push('\n');
    s.push_str(
        r#"  (data (i32.const 128) "child resumed at site \00")
  (data (i32.const 160) " hits=\00")
  (data (i32.const 192) " acc=\00")
  (data (i32.const 224) "parent: child \00")
  (data (i32.const 256) " exited \00")
  (data (i32.const 288) "hits=\00")
  ;; Returns how many sites forked; the child pids are stored at 4096.
  (func $sites (param $mask i64) (result i32)
    (local $pid i32) (local $hits i32) (local $acc i32)
"#,
    );
    for k in 0..SITES {
        let _ = write!(
            s,
            r#"    ;; site {k}
    (local.set $acc (i32.add (local.get $acc) (i32.const {k})))
    (if (i64.ne (i64.and (local.get $mask) (i64.const {bit})) (i64.const 0))
      (then
        (local.set $pid (call $fork))
        (if (i32.eqz (local.get $pid))
          (then
            (call $puts (i32.const 128))
            (call $put_num (i32.const {k}))
            (call $puts (i32.const 160))
            (call $put_num (local.get $hits))
            (call $puts (i32.const 192))
            (call $put_num (local.get $acc))
            (call $nl)
            (call $exit (i32.const {k}))
            (unreachable)))
        (i32.store (i32.add (i32.const 4096) (i32.shl (local.get $hits) (i32.const 2)))
          (local.get $pid))
        (local.set $hits (i32.add (local.get $hits) (i32.const 1)))))
"#,
            bit = 1u64 << k
        );
    }
    let _ = write!(
        s,
        r#"    (local.get $hits))
  (func $_start (export "_start")
    (local $n i32) (local $i i32) (local $pid i32)
    (local.set $n (call $sites (i64.const {mask})))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (local.set $pid (i32.load (i32.add (i32.const 4096) (i32.shl (local.get $i) (i32.const 2)))))
        (call $puts (i32.const 224))
        (call $put_num (local.get $pid))
        (call $puts (i32.const 256))
        (call $put_num (call $waitpid (local.get $pid)))
        (call $nl)
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (call $puts (i32.const 288))
    (call $put_num (local.get $n))
    (call $nl))
)
"#
    );
    s
}

/// The canonical prelude (see the top of `fixtures.rs`), taken from
/// `fork_once.wat` (wasm32) or `memory64_fork_once.wat` (memory64).
pub fn prelude(memory64: bool) -> String {
    let file = if memory64 {
        "memory64_fork_once"
    } else {
        "fork_once"
    };
    let text = std::fs::read_to_string(fixtures_dir().join(format!("{file}.wat")))
        .expect("read the prelude's fixture");
    extract_prelude(&text).unwrap_or_else(|| panic!("{file}.wat has no prelude markers"))
}

/// The lines from `;; ---- prelude` to `;; ---- end of prelude`, inclusive.
pub fn extract_prelude(text: &str) -> Option<String> {
    let start = text.find("  ;; ---- prelude")?;
    let end_marker = ";; ---- end of prelude";
    let end = start + text[start..].find(end_marker)?;
    let line_end = end + text[end..].find('\n').map_or(text.len() - end, |n| n + 1);
    Some(text[start..line_end].to_string())
}
