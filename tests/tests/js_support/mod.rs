//! Shared by `engines.rs` and `browser.rs`: running modules through the
//! JavaScript host template (`templates/host/forkify-host.mjs`) under Node
//! and in headless Chromium, building a `cargo forkify new` project, and a
//! tiny static HTTP server on 127.0.0.1 for the pages. The Rust examples
//! are built by `forkify_testkit::examples`, as for `rust_programs.rs`.
//!
//! The JavaScript side lives in `tests/browser/`: `node-run.mjs` runs a job
//! list under Node, `engines.html` runs the same job list in a page,
//! `chromium.mjs` opens a page in Chromium (through `playwright-core`,
//! installed there by `npm ci`) and prints what it shows.
//!
//! `examples` builds the project and reads `examples/expected.json`,
//! `server` serves the pages.
//!
//! Missing tools (Node, Chromium, playwright-core) skip a test with a
//! `SKIPPED: ...` line locally, and fail it in CI (`CI=true`), where
//! `scripts/setup.sh` installs them.

#![allow(dead_code)] // each test binary uses a different part

pub mod examples;
pub mod server;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use forkify_host::{ExitStatus, ProcessReport, RunOptions, RunReport};
use forkify_testkit::{describe_output, repo_root, run_checked, say, target_dir};
use serde_json::{json, Value};

use server::StaticServer;

/// `tests/browser/`: the JavaScript drivers and their `node_modules`.
pub fn browser_dir() -> PathBuf {
    repo_root().join("tests/browser")
}

/// `templates/host/`: the JavaScript host template.
pub fn host_dir() -> PathBuf {
    repo_root().join("templates/host")
}

/// A fresh directory for one test's files under `target/js-host/`.
pub fn scratch_dir(test: &str) -> PathBuf {
    let dir = target_dir().join("js-host").join(test);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
    dir
}

/// True when running in CI (`CI=true`), where a missing tool is a failure.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// `Some(value)`, or, when a tool is missing, `None` after saying
/// `SKIPPED: ...` locally; in CI a missing tool fails the test.
pub fn require<T>(test: &str, what: Result<T, String>) -> Option<T> {
    match what {
        Ok(v) => Some(v),
        Err(why) if in_ci() => panic!(
            "{test}: {why}\n(CI=true: the JavaScript host tests must run; scripts/setup.sh installs what they need)"
        ),
        Err(why) => {
            say(&format!("SKIPPED: {test}: {why}"));
            None
        }
    }
}

/// The `node` on PATH and the flags it needs for memory64.
#[derive(Debug, Clone)]
pub struct Node {
    /// `node --version`.
    pub version: String,
    /// `--experimental-wasm-memory64` where this Node knows it.
    pub flags: Vec<String>,
}

impl Node {
    /// A `node` command with the memory64 flag, run from `tests/browser`.
    pub fn command(&self) -> Command {
        let mut cmd = Command::new("node");
        cmd.args(&self.flags).current_dir(browser_dir());
        cmd
    }
}

/// Finds `node` (probed once).
pub fn node() -> Result<Node, String> {
    static NODE: OnceLock<Result<Node, String>> = OnceLock::new();
    NODE.get_or_init(|| {
        let out = Command::new("node")
            .arg("--version")
            .output()
            .map_err(|e| format!("`node` is not on PATH ({e}); install Node.js 20 or later"))?;
        if !out.status.success() {
            return Err(format!(
                "`node --version` failed: {}",
                describe_output(&out)
            ));
        }
        let version = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let flag = "--experimental-wasm-memory64";
        let knows_flag = Command::new("node")
            .args([flag, "-e", ""])
            .output()
            .is_ok_and(|o| o.status.success());
        let flags = if knows_flag {
            vec![flag.to_string()]
        } else {
            Vec::new()
        };
        Ok(Node { version, flags })
    })
    .clone()
}

/// The Chromium executable the drivers use.
pub fn chromium_path() -> PathBuf {
    std::env::var_os("FORKIFY_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"))
}

/// Node, Chromium and playwright-core, or why not.
pub fn chromium() -> Result<Node, String> {
    let node = node()?;
    let exe = chromium_path();
    if !exe.exists() {
        return Err(format!(
            "{} does not exist; install Debian's chromium (`apt-get install -y chromium`, as scripts/setup.sh does)",
            exe.display()
        ));
    }
    let playwright = browser_dir().join("node_modules/playwright-core/package.json");
    if !playwright.exists() {
        return Err(format!(
            "{} is missing; run `npm ci` in tests/browser (as scripts/setup.sh does)",
            playwright.display()
        ));
    }
    Ok(node)
}

/// One module to run on both hosts.
#[derive(Debug, Clone)]
pub struct Job {
    /// What it is, for messages.
    pub name: String,
    /// The (instrumented) module.
    pub wasm: Vec<u8>,
    /// The host options (the same on both hosts).
    pub options: RunOptions,
}

impl Job {
    fn options_json(&self) -> Value {
        json!({
            "bufferSize": self.options.buffer_size,
            "maxProcesses": self.options.max_processes,
        })
    }
}

/// What the JavaScript host did with a job.
#[derive(Debug, Clone, PartialEq)]
pub enum JsOutcome {
    /// It ran: the RunReport as JSON.
    Report(Value),
    /// The host refused the module, saying why.
    Refused(String),
    /// The engine cannot compile the module (a proposal it lacks).
    Unsupported(String),
    /// The host failed (a bug).
    Error(String),
}

fn parse_results(jobs: &[Job], stdout: &[u8], what: &str) -> Vec<JsOutcome> {
    let results: Vec<Value> = serde_json::from_slice(stdout).unwrap_or_else(|e| {
        panic!(
            "{what}: the output is not a JSON array of results ({e}):\n{}",
            String::from_utf8_lossy(stdout)
        )
    });
    assert_eq!(
        results.len(),
        jobs.len(),
        "{what}: one result per job expected"
    );
    results
        .into_iter()
        .zip(jobs)
        .map(|(r, job)| {
            assert_eq!(r["name"], json!(job.name), "{what}: results out of order");
            let text = |k: &str| r[k].as_str().unwrap_or_default().to_string();
            if r.get("report").is_some() {
                JsOutcome::Report(r["report"].clone())
            } else if r.get("refused").is_some() {
                JsOutcome::Refused(text("refused"))
            } else if r.get("unsupported").is_some() {
                JsOutcome::Unsupported(text("unsupported"))
            } else {
                JsOutcome::Error(text("error"))
            }
        })
        .collect()
}

/// Runs every job under Node with the template, in one Node process.
pub fn run_in_node(node: &Node, jobs: &[Job], scratch: &Path) -> Vec<JsOutcome> {
    let mut list = Vec::new();
    for (i, job) in jobs.iter().enumerate() {
        let path = scratch.join(format!("job-{i}.wasm"));
        std::fs::write(&path, &job.wasm)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        list.push(json!({ "name": job.name, "wasm": path, "options": job.options_json() }));
    }
    let jobs_file = scratch.join("jobs.json");
    std::fs::write(&jobs_file, Value::Array(list).to_string())
        .unwrap_or_else(|e| panic!("cannot write {}: {e}", jobs_file.display()));
    let mut cmd = node.command();
    cmd.arg("node-run.mjs").arg(&jobs_file);
    let out = run_checked(&mut cmd, |shown| format!("{shown} failed: "));
    parse_results(jobs, &out.stdout, &format!("Node {}", node.version))
}

/// What a page showed, as `chromium.mjs` prints it.
#[derive(Debug, Clone)]
pub struct PageResult {
    /// `<body data-state>`: "done" or "error".
    pub state: String,
    /// The text of `#output`.
    pub output: String,
    /// The text of `#status`.
    pub status: String,
    /// `window.forkifyResult` or `window.forkifyReport`.
    pub result: Value,
    /// The page's console messages.
    pub console: Vec<String>,
}

/// Opens `url` in headless Chromium and returns what the page showed,
/// saving a screenshot when asked.
pub fn open_page(node: &Node, url: &str, screenshot: Option<&Path>) -> PageResult {
    let mut cmd = node.command();
    cmd.arg("chromium.mjs")
        .arg(url)
        .arg("--timeout")
        .arg("60000")
        .env("FORKIFY_CHROMIUM", chromium_path());
    if let Some(path) = screenshot {
        cmd.arg("--screenshot").arg(path);
    }
    let shown = format!("{cmd:?}");
    let out = run_checked(&mut cmd, |shown| format!("{shown} failed: "));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{shown}: the output is not JSON ({e}): {}",
            describe_output(&out)
        )
    });
    let text = |k: &str| v[k].as_str().unwrap_or_default().to_string();
    PageResult {
        state: text("state"),
        output: text("output"),
        status: text("status"),
        result: v["result"].clone(),
        console: v["console"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|m| m.as_str().unwrap_or_default().to_string())
                    .collect()
            })
            .unwrap_or_default(),
    }
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// The files every page needs: the host template and the jobs driver.
pub fn host_files() -> Vec<(String, Vec<u8>)> {
    vec![
        (
            "/forkify-host.mjs".into(),
            read(&host_dir().join("forkify-host.mjs")),
        ),
        ("/jobs.mjs".into(), read(&browser_dir().join("jobs.mjs"))),
    ]
}

/// Runs every job in one Chromium page (`engines.html`), served from
/// 127.0.0.1.
pub fn run_in_chromium(node: &Node, jobs: &[Job]) -> Vec<JsOutcome> {
    let mut files = host_files();
    files.push((
        "/index.html".into(),
        read(&browser_dir().join("engines.html")),
    ));
    let mut list = Vec::new();
    for (i, job) in jobs.iter().enumerate() {
        let url = format!("/wasm/job-{i}.wasm");
        list.push(json!({ "name": job.name, "wasm": url, "options": job.options_json() }));
        files.push((url, job.wasm.clone()));
    }
    files.push((
        "/jobs.json".into(),
        Value::Array(list).to_string().into_bytes(),
    ));
    let server = StaticServer::start(files, Duration::from_secs(120))
        .unwrap_or_else(|e| panic!("cannot start the static server: {e}"));
    let page = open_page(node, &server.url("/index.html"), None);
    assert_eq!(
        page.state, "done",
        "the engines page failed: {}\nconsole: {:?}",
        page.output, page.console
    );
    let stdout = serde_json::to_vec(&page.result).expect("a JSON value serializes");
    parse_results(jobs, &stdout, "Chromium")
}

/// A report as JSON with every trap message replaced by `"<trap>"`: engines
/// word traps differently, and only the fact of a trap is compared.
pub fn normalize(report: &Value) -> Value {
    let mut v = report.clone();
    if let Some(procs) = v.get_mut("processes").and_then(Value::as_array_mut) {
        for p in procs {
            if let Some(status) = p.get_mut("status") {
                if status.get("trapped").is_some() {
                    *status = json!({ "trapped": "<trap>" });
                }
            }
        }
    }
    v
}

/// A JSON RunReport back as a [`RunReport`] (for rendering).
pub fn report_from_json(v: &Value) -> Option<RunReport> {
    let processes = v["processes"]
        .as_array()?
        .iter()
        .map(|p| {
            let status = match (&p["status"]["exited"], &p["status"]["trapped"]) {
                (Value::Number(n), _) => ExitStatus::Exited(i32::try_from(n.as_i64()?).ok()?),
                (_, Value::String(s)) => ExitStatus::Trapped(s.clone()),
                _ => return None,
            };
            Some(ProcessReport {
                pid: i32::try_from(p["pid"].as_i64()?).ok()?,
                parent: match &p["parent"] {
                    Value::Null => None,
                    n => Some(i32::try_from(n.as_i64()?).ok()?),
                },
                stdout: p["stdout"].as_str()?.to_string(),
                status,
            })
        })
        .collect::<Option<Vec<_>>>()?;
    let log = v["log"]
        .as_array()?
        .iter()
        .map(|e| {
            Some((
                i32::try_from(e[0].as_i64()?).ok()?,
                e[1].as_str()?.to_string(),
            ))
        })
        .collect::<Option<Vec<_>>>()?;
    Some(RunReport { processes, log })
}
