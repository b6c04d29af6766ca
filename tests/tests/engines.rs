//! Engines agree: every fork fixture of `tests/fixtures/` and every program
//! of `examples/` runs on the wasmtime reference host
//! (`forkify_host::run`) and under V8 with the JavaScript host
//! template (`templates/host/forkify-host.mjs`), and the two runs must have
//! identical process trees, outputs, write logs and exit statuses (the
//! RunReports compared as JSON; trap messages are the engines' own, so only
//! the fact of a trap is compared).
//!
//! # Where the JavaScript runs
//!
//! All jobs of a test run in one Node process (`tests/browser/node-run.mjs`,
//! with `--experimental-wasm-memory64` on Node 20). A module Node cannot
//! compile because it uses a proposal Node 20's V8 lacks (64-bit tables in
//! Rust's wasm64 output, `try_table`/exnref, typed function references) runs
//! instead in headless Chromium (V8 too, newer), in one page for all such
//! jobs (`tests/browser/engines.html`, served from 127.0.0.1); the test
//! prints which ones did. Chromium must then compile it: a module neither
//! engine can compile fails the test.
//!
//! Without Node, Chromium (`/usr/bin/chromium`) or playwright-core
//! (`npm ci` in `tests/browser`) the tests say `SKIPPED: ...` locally and
//! fail in CI (`CI=true`); `scripts/setup.sh` installs them. wasm64
//! examples need a nightly toolchain with rust-src and are skipped without
//! one, as in `rust_programs.rs` (both build the examples with
//! `forkify_testkit::examples`, into the same directory).
//!
//! Also checked: modules both hosts must refuse (not instrumented, a wrong
//! ABI version, a wrong pointer width, missing control exports) are refused
//! by both, and the template's messages say why.

mod fixture_support;
mod js_support;

use fixture_support::{fixture_names, Fixture};
use forkify_host::RunOptions;
use forkify_instrument::Config;
use forkify_testkit::examples::{built, Target, PROGRAMS};
use forkify_testkit::say;
use js_support::examples::build_project;
use js_support::{
    chromium, node, normalize, report_from_json, require, run_in_chromium, run_in_node,
    scratch_dir, Job, JsOutcome,
};
use serde_json::Value;

/// A save buffer too small for deep-recursion's 1,000-frame unwind: the
/// guest aborts it (ABI §6) and fork fails with -12 on both hosts.
const SMALL_BUFFER: u32 = 16 << 10;

/// What the wasmtime host did with a job: the report as JSON, or its refusal.
fn run_wasmtime(job: &Job) -> Result<Value, String> {
    forkify_host::run(&job.wasm, &job.options)
        .map(|r| serde_json::to_value(&r).expect("a RunReport serializes"))
        .map_err(|e| format!("{e:#}"))
}

fn render(v: &Value) -> String {
    report_from_json(v)
        .map(|r| r.render())
        .unwrap_or_else(|| format!("(not a RunReport: {v})"))
}

/// Compares one job's runs; `Err` describes a disagreement.
fn agree(
    job: &Job,
    wasmtime: &Result<Value, String>,
    js: &JsOutcome,
    engine: &str,
) -> Result<(), String> {
    match (wasmtime, js) {
        (Ok(a), JsOutcome::Report(b)) => {
            let (a, b) = (normalize(a), normalize(b));
            if a == b {
                return Ok(());
            }
            Err(format!(
                "{}: the runs differ\n--- wasmtime (rendered) ---\n{}--- {engine} (rendered) ---\n{}\
                 --- wasmtime (JSON) ---\n{}\n--- {engine} (JSON) ---\n{}",
                job.name,
                render(&a),
                render(&b),
                serde_json::to_string_pretty(&a).unwrap_or_default(),
                serde_json::to_string_pretty(&b).unwrap_or_default(),
            ))
        }
        (Err(_), JsOutcome::Refused(_)) => Ok(()),
        (Ok(_), JsOutcome::Refused(why)) => Err(format!(
            "{}: wasmtime ran it but the JavaScript host ({engine}) refused it: {why}",
            job.name
        )),
        (Err(why), JsOutcome::Report(_)) => Err(format!(
            "{}: the JavaScript host ({engine}) ran it but wasmtime refused it: {why}",
            job.name
        )),
        (_, JsOutcome::Unsupported(why)) => {
            Err(format!("{}: {engine} cannot compile it: {why}", job.name))
        }
        (_, JsOutcome::Error(why)) => Err(format!(
            "{}: the JavaScript host failed under {engine}: {why}",
            job.name
        )),
    }
}

/// Runs `jobs` on wasmtime and under Node (falling back to Chromium for what
/// Node cannot compile) and fails on any disagreement.
fn check_jobs(test: &str, jobs: &[Job]) {
    let Some(node) = require(test, node()) else {
        return;
    };
    let scratch = scratch_dir(test);
    let wasmtime: Vec<Result<Value, String>> = jobs.iter().map(run_wasmtime).collect();
    let in_node = run_in_node(&node, jobs, &scratch);
    let mut failures = Vec::new();
    let mut for_chromium = Vec::new();
    for (i, (job, js)) in jobs.iter().zip(&in_node).enumerate() {
        match js {
            JsOutcome::Unsupported(why) => {
                say(&format!(
                    "{test}: {}: Node {} cannot compile it ({why}); running it in Chromium",
                    job.name, node.version
                ));
                for_chromium.push(i);
            }
            _ => {
                if let Err(e) = agree(job, &wasmtime[i], js, &format!("Node {}", node.version)) {
                    failures.push(e);
                }
            }
        }
    }
    let mut ran_in_chromium = 0;
    if !for_chromium.is_empty() {
        let why = format!(
            "{} job(s) need Chromium because Node cannot compile them",
            for_chromium.len()
        );
        if let Some(node) = require(test, chromium().map_err(|e| format!("{why}: {e}"))) {
            let subset: Vec<Job> = for_chromium.iter().map(|&i| jobs[i].clone()).collect();
            let results = run_in_chromium(&node, &subset);
            for (&i, js) in for_chromium.iter().zip(&results) {
                if let Err(e) = agree(&jobs[i], &wasmtime[i], js, "Chromium") {
                    failures.push(e);
                }
            }
            ran_in_chromium = subset.len();
        }
    }
    say(&format!(
        "{test}: {} module(s): {} under Node {}, {ran_in_chromium} in Chromium, {} disagreement(s)",
        jobs.len(),
        jobs.len() - for_chromium.len(),
        node.version,
        failures.len()
    ));
    assert!(
        failures.is_empty(),
        "{test}: the engines disagree on {} of {} module(s):\n\n{}",
        failures.len(),
        jobs.len(),
        failures.join("\n\n")
    );
}

/// Every fixture, instrumented as `fixtures.rs` does, with its `@options`.
#[test]
fn fixtures_agree() {
    let jobs: Vec<Job> = fixture_names()
        .iter()
        .map(|name| {
            let f = Fixture::load(name);
            let out = forkify_instrument::instrument(&f.wasm(), &f.config())
                .unwrap_or_else(|e| panic!("fixture `{name}`: instrument() failed: {e}"));
            Job {
                name: format!("fixture {name}"),
                wasm: out.bytes,
                options: f.run_options(),
            }
        })
        .collect();
    assert!(
        jobs.len() >= 20,
        "expected the fixture suite, found {} fixtures",
        jobs.len()
    );
    check_jobs("fixtures_agree", &jobs);
}

/// Every example program of `target`, plus deep-recursion with a save buffer
/// too small for its unwind (the ABORTING path).
fn check_examples(test: &str, target: Target) {
    let dir = match built(target) {
        Ok(dir) => dir,
        Err(why) => {
            say(&format!("SKIPPED: {test}: {why}"));
            return;
        }
    };
    let mut jobs = Vec::new();
    for program in PROGRAMS {
        let path = dir.join(format!("{program}.wasm"));
        let wasm =
            std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        let out = forkify_instrument::instrument(&wasm, &Config::default()).unwrap_or_else(|e| {
            panic!("{program} ({}): instrument() failed: {e}", target.triple())
        });
        jobs.push(Job {
            name: format!("{program} ({})", target.triple()),
            wasm: out.bytes.clone(),
            options: RunOptions::default(),
        });
        if *program == "deep-recursion" {
            jobs.push(Job {
                name: format!(
                    "{program} ({}, {SMALL_BUFFER}-byte buffer)",
                    target.triple()
                ),
                wasm: out.bytes,
                options: RunOptions {
                    buffer_size: SMALL_BUFFER,
                    ..RunOptions::default()
                },
            });
        }
    }
    check_jobs(test, &jobs);
}

#[test]
fn examples_wasm32_agree() {
    check_examples("examples_wasm32_agree", Target::Wasm32);
}

#[test]
fn examples_wasm64_agree() {
    check_examples("examples_wasm64_agree", Target::Wasm64);
}

/// An instrumented `fork_once` with its `forkify.abi` payload changed by `edit`.
fn edited_section(edit: impl Fn(&mut Vec<u8>)) -> Vec<u8> {
    let f = Fixture::load("fork_once");
    let out =
        forkify_instrument::instrument(&f.wasm(), &f.config()).expect("fork_once instruments");
    forkify_testkit::wasm::edit_custom_section(&out.bytes, forkify_abi::SECTION_NAME, edit)
}

/// Modules both hosts refuse before running anything; the template's
/// message must name the problem.
#[test]
fn refusals_agree() {
    let test = "refusals_agree";
    let Some(node) = require(test, node()) else {
        return;
    };
    let uninstrumented = Fixture::load("fork_once").wasm();
    let wrong_version = edited_section(|d| d[4] = 2);
    let wrong_width = edited_section(|d| d[8] = 8);
    // A section but none of the control exports.
    let no_controls = wat::parse_str(
        r#"(module
             (@custom "forkify.abi" "FKAB\01\00\00\00\04\01\10\00\08\00\00\00\00\00\00\00\00\00\00\00\10\00\00\00{\"tool\":\"t\",\"fork_imports\":[\"kernel.kernel_fork\"]}")
             (memory (export "memory") 1)
             (func (export "_start")))"#,
    )
    .expect("the WAT compiles");
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("not instrumented", uninstrumented, "not instrumented"),
        ("ABI version 2", wrong_version, "ABI version 2, expected 1"),
        (
            "pointer width 8 on memory32",
            wrong_width,
            "pointer width 8",
        ),
        (
            "no control exports",
            no_controls,
            "missing function export `wpk_fork_unwind_begin`",
        ),
    ];
    let jobs: Vec<Job> = cases
        .iter()
        .map(|(name, wasm, _)| Job {
            name: name.to_string(),
            wasm: wasm.clone(),
            options: RunOptions::default(),
        })
        .collect();
    let results = run_in_node(&node, &jobs, &scratch_dir(test));
    for ((job, (_, _, needle)), js) in jobs.iter().zip(&cases).zip(&results) {
        let wasmtime = run_wasmtime(job);
        assert!(
            wasmtime.is_err(),
            "{}: wasmtime should refuse it but ran it",
            job.name
        );
        match js {
            JsOutcome::Refused(why) => assert!(
                why.contains(needle),
                "{}: the template's refusal should say `{needle}`: {why}",
                job.name
            ),
            other => panic!("{}: the template should refuse it, got {other:?}", job.name),
        }
    }
}

/// `cargo forkify new`'s project (`templates/project/`, written by
/// `cargo_forkify::templates::new_project`) builds for wasm32 as a debug
/// build (what `cargo forkify build` does by default), forks, and runs the
/// same on both hosts with the output its README shows.
#[test]
fn project_template_agrees() {
    let test = "project_template_agrees";
    let dir = scratch_dir(test).join("forkify-template-check");
    cargo_forkify::templates::new_project(&dir, "forkify-template-check")
        .unwrap_or_else(|e| panic!("{test}: new_project failed: {e:#}"));
    let wasm = build_project(&dir, "forkify-template-check");
    let out = forkify_instrument::instrument(&wasm, &Config::default())
        .unwrap_or_else(|e| panic!("{test}: instrument() failed: {e}"));
    let job = Job {
        name: "the cargo forkify new project (wasm32, debug)".into(),
        wasm: out.bytes,
        options: RunOptions::default(),
    };
    let report = run_wasmtime(&job).unwrap_or_else(|e| panic!("{test}: wasmtime refused it: {e}"));
    assert_eq!(
        render(&report),
        "[2] child: pid 2, greeting \"hello from the child\"\n\
         [1] parent: pid 1, child 2 exited with 3, greeting \"hello\"\n",
        "{test}: the output on wasmtime (templates/project/README.md shows it)"
    );
    check_jobs(test, &[job]);
}
