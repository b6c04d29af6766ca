//! End-to-end tests of `cargo forkify build` and `cargo forkify run`: the
//! real binary driving the real cargo on `examples/` (wasm32, and wasm64
//! when a nightly toolchain with rust-src is installed), every output run
//! on the reference host and compared with `examples/expected.json`, and
//! the error paths on small temporary workspaces.
//!
//! Builds go to target directories under `CARGO_TARGET_TMPDIR` that are
//! kept between runs, so cargo's cache makes reruns fast; each test first
//! removes the `forkify/` output directories it asserts on.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use cargo_forkify::host::{self, ExitStatus, RunOptions, RunReport};
use forkify_instrument::abi::AbiSection;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

const WASM32: &str = "wasm32-unknown-unknown";
const WASM64: &str = "wasm64-unknown-unknown";

/// Environment that would send the builds elsewhere or change their flags.
const BUILD_ENV: &[&str] = &[
    "CARGO_TARGET_DIR",
    "CARGO_BUILD_TARGET_DIR",
    "CARGO_BUILD_TARGET",
    "RUSTFLAGS",
    "CARGO_ENCODED_RUSTFLAGS",
    "CARGO_BUILD_RUSTFLAGS",
    "CARGO_TERM_VERBOSE",
    "CARGO_TERM_QUIET",
];

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("cargo-forkify/ has a parent")
        .to_path_buf()
}

fn examples_manifest() -> String {
    path_str(&repo_root().join("examples/Cargo.toml"))
}

fn path_str(p: &Path) -> String {
    p.to_str().expect("utf-8 path").to_string()
}

/// A directory under the test tmpdir, kept between runs (cargo's cache).
fn kept_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("forkify-build")
        .join(name);
    std::fs::create_dir_all(&dir).expect("create test dir");
    dir
}

/// `cargo-forkify forkify ARGS…` in `cwd`, as cargo runs it, with `env`
/// set (`None`: removed).
fn forkify_in(cwd: &Path, args: &[&str], env: &[(&str, Option<&str>)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cargo-forkify"));
    cmd.arg("forkify").args(args).current_dir(cwd);
    for var in BUILD_ENV {
        cmd.env_remove(var);
    }
    cmd.env("CARGO_TERM_COLOR", "never");
    for (k, v) in env {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    cmd.output().expect("cargo-forkify runs")
}

fn forkify(args: &[&str]) -> Output {
    forkify_in(&repo_root(), args, &[])
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn show(o: &Output) -> String {
    format!(
        "{}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        o.status,
        stdout(o),
        stderr(o)
    )
}

fn sha256(path: &Path) -> String {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Every stdout line, parsed; panics on a line that is not JSON.
fn json_lines(o: &Output) -> Vec<Value> {
    stdout(o)
        .lines()
        .map(|l| {
            serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {l}\n{}", show(o)))
        })
        .collect()
}

fn records<'a>(lines: &'a [Value], reason: &str) -> Vec<&'a Value> {
    lines.iter().filter(|l| l["reason"] == reason).collect()
}

/// `examples/expected.json`.
fn expected() -> Value {
    let text = std::fs::read_to_string(repo_root().join("examples/expected.json"))
        .expect("read examples/expected.json");
    serde_json::from_str(&text).expect("parse examples/expected.json")
}

/// A run report in the shape of `expected.json`.
fn as_expected_shape(report: &RunReport) -> Value {
    let processes: Vec<Value> = report
        .processes
        .iter()
        .map(|p| {
            let status = match &p.status {
                ExitStatus::Exited(n) => json!(n),
                ExitStatus::Trapped(m) => json!(format!("trapped: {m}")),
            };
            json!({"pid": p.pid, "parent": p.parent, "stdout": p.stdout, "status": status})
        })
        .collect();
    let log: Vec<Value> = report.log.iter().map(|(pid, t)| json!([pid, t])).collect();
    json!({"processes": processes, "log": log})
}

/// Runs every program's output in `forkify_dir` and compares with
/// `expected.json`; checks the pointer width of each.
fn run_all_and_compare(forkify_dir: &Path, pointer_width: u8) {
    let expected = expected();
    let programs = expected.as_object().expect("expected.json is an object");
    assert!(programs.len() >= 4, "expected.json lists the programs");
    for (program, want) in programs {
        let path = forkify_dir.join(format!("{program}.wasm"));
        let wasm = std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        let section = AbiSection::find(&wasm)
            .expect("a readable forkify.abi section")
            .expect("a forkify.abi section");
        assert_eq!(section.pointer_width, pointer_width, "{program}");
        let report = host::run(&wasm, &RunOptions::default())
            .unwrap_or_else(|e| panic!("{program}: the host refused {}: {e:#}", path.display()));
        let got = as_expected_shape(&report);
        assert_eq!(
            &got,
            want,
            "{program} on {}: the run differs from expected.json\n{}",
            path.display(),
            report.render()
        );
    }
}

/// The scenario on one shared target directory: a JSON build, every output
/// run on the host, a rebuild that skips everything, a forced rebuild; and
/// cargo's own artifacts never change under forkify.
#[test]
fn examples_wasm32_build_run_skip_force() {
    let target_dir = kept_dir("examples-wasm32");
    let out_dir = target_dir.join(WASM32).join("release");
    let forkify_dir = out_dir.join("forkify");
    let _ = std::fs::remove_dir_all(&forkify_dir);
    let manifest = examples_manifest();
    let td = path_str(&target_dir);
    let base = [
        "build",
        "--manifest-path",
        &manifest,
        "--release",
        "--target",
        WASM32,
        "--target-dir",
        &td,
    ];

    // 1. JSON: cargo's lines, one record per artifact, finished last.
    let mut args = base.to_vec();
    args.extend(["--message-format", "json"]);
    let o = forkify(&args);
    assert!(o.status.success(), "{}", show(&o));
    let lines = json_lines(&o);
    assert!(
        lines.iter().all(|l| l["reason"].is_string()),
        "every line has a reason"
    );
    assert!(
        !records(&lines, "compiler-artifact").is_empty(),
        "cargo's messages are forwarded"
    );
    assert!(!records(&lines, "build-finished").is_empty());
    let last = lines.last().expect("some output");
    assert_eq!(last["reason"], "forkify-finished", "{}", show(&o));
    assert_eq!(last["success"], true);
    assert_eq!(last["exit_code"], 0);
    assert_eq!(records(&lines, "forkify-finished").len(), 1);
    let artifacts = records(&lines, "forkify-artifact");
    let programs: Vec<String> = expected()
        .as_object()
        .expect("object")
        .keys()
        .cloned()
        .collect();
    assert_eq!(artifacts.len(), programs.len(), "{}", show(&o));
    assert_eq!(last["artifacts"], programs.len());
    assert_eq!(last["instrumented"], programs.len());
    let mut cargo_hashes = BTreeMap::new();
    for a in &artifacts {
        assert_eq!(a["status"], "instrumented", "{a}");
        assert_eq!(a["triple"], WASM32);
        assert_eq!(a["profile"], "release");
        assert_eq!(a["kind"], "bin");
        assert_eq!(a["abi_version"], 1);
        assert_eq!(a["passed_through"], false);
        assert!(a["instrumented_functions"].as_u64().expect("count") > 0);
        assert_eq!(a["fork_imports"], json!(["kernel.kernel_fork"]));
        let input = PathBuf::from(a["input"]["path"].as_str().expect("input path"));
        let output = PathBuf::from(a["output"]["path"].as_str().expect("output path"));
        assert_eq!(input.parent(), Some(out_dir.as_path()));
        assert_eq!(output.parent(), Some(forkify_dir.as_path()));
        assert_eq!(input.file_name(), output.file_name());
        // What forkify hashed is what cargo left: the artifact is untouched.
        assert_eq!(a["input"]["sha256"], sha256(&input), "{}", input.display());
        assert_eq!(a["output"]["sha256"], sha256(&output));
        cargo_hashes.insert(input, sha256(&output));
    }

    // 2. Every output really forks and prints what expected.json says.
    run_all_and_compare(&forkify_dir, 4);

    // 3. The manifest records every artifact.
    let manifest_path = forkify_dir.join("forkify-manifest.json");
    let m: Value =
        serde_json::from_str(&std::fs::read_to_string(&manifest_path).expect("manifest"))
            .expect("manifest is JSON");
    assert_eq!(m["abi_version"], 1);
    let entries = m["artifacts"].as_array().expect("artifacts");
    assert_eq!(entries.len(), programs.len());
    for e in entries {
        for key in [
            "package",
            "target",
            "triple",
            "profile",
            "input",
            "output",
            "abi_version",
            "tool",
            "fork_imports",
            "instrumented_functions",
            "passed_through",
        ] {
            assert!(!e[key].is_null(), "manifest entry lacks {key}: {e}");
        }
        assert!(e["tool"]
            .as_str()
            .expect("tool")
            .starts_with("cargo-forkify "));
    }

    let input_hashes =
        |m: &BTreeMap<PathBuf, String>| -> Vec<String> { m.keys().map(|p| sha256(p)).collect() };
    let before: Vec<String> = input_hashes(&cargo_hashes);

    // 4. Nothing changed: everything is skipped, outputs are kept.
    let o = forkify(&base);
    assert!(o.status.success(), "{}", show(&o));
    assert!(
        stdout(&o).is_empty(),
        "human output stays off stdout: {}",
        show(&o)
    );
    let err = stderr(&o);
    for p in &programs {
        assert!(
            err.contains(&format!("Skipped {p} ({WASM32}) unchanged")),
            "{p} not skipped:\n{err}"
        );
    }
    assert!(
        err.contains(&format!("0 instrumented, {} unchanged", programs.len())),
        "{err}"
    );
    for (input, out_hash) in &cargo_hashes {
        let output = forkify_dir.join(input.file_name().expect("name"));
        assert_eq!(&sha256(&output), out_hash, "a skipped output was rewritten");
    }

    // 5. --force instruments again, to the same bytes; cargo's files stay.
    let mut args = base.to_vec();
    args.push("--force");
    let o = forkify(&args);
    assert!(o.status.success(), "{}", show(&o));
    let err = stderr(&o);
    assert!(
        err.contains(&format!("Instrumented hello-fork ({WASM32})")),
        "{err}"
    );
    assert!(
        err.contains(&format!("{} instrumented", programs.len())),
        "{err}"
    );
    for (input, out_hash) in &cargo_hashes {
        let output = forkify_dir.join(input.file_name().expect("name"));
        assert_eq!(&sha256(&output), out_hash, "instrumenting is deterministic");
    }
    assert_eq!(
        input_hashes(&cargo_hashes),
        before,
        "cargo's artifacts changed"
    );
    let leftovers: Vec<_> = std::fs::read_dir(&forkify_dir)
        .expect("ls forkify dir")
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
}

/// `rustup` with the running toolchain's choices removed.
fn rustup(args: &[&str]) -> Option<String> {
    let out = Command::new("rustup")
        .args(args)
        .env_remove("RUSTUP_TOOLCHAIN")
        .env_remove("RUSTC")
        .env_remove("CARGO")
        .env("RUSTUP_AUTO_INSTALL", "0")
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// The nightly cargo, when nightly with rust-src is installed; else why not.
fn nightly_cargo() -> Result<String, String> {
    let how = "install it with `rustup toolchain install nightly --component rust-src`";
    let cargo = rustup(&["which", "cargo", "--toolchain", "nightly"])
        .ok_or_else(|| format!("no nightly toolchain (or no rustup); {how}"))?;
    let sysroot = rustup(&["run", "nightly", "rustc", "--print", "sysroot"])
        .ok_or_else(|| format!("the nightly toolchain does not run; {how}"))?;
    if !Path::new(&sysroot)
        .join("lib/rustlib/src/rust/library")
        .is_dir()
    {
        return Err(format!("the nightly toolchain lacks rust-src; {how}"));
    }
    Ok(cargo)
}

/// wasm64 and wasm32 in one run of `cargo +nightly forkify build`:
/// build-std is added by forkify for wasm64 only, and every output forks
/// as expected on both.
#[test]
fn examples_wasm64_and_wasm32_on_nightly() {
    let cargo = match nightly_cargo() {
        Ok(c) => c,
        Err(why) => {
            eprintln!("SKIPPED: examples_wasm64_and_wasm32_on_nightly: {why}");
            return;
        }
    };
    let target_dir = kept_dir("examples-nightly");
    for triple in [WASM64, WASM32] {
        let _ = std::fs::remove_dir_all(target_dir.join(triple).join("release/forkify"));
    }
    let manifest = examples_manifest();
    let td = path_str(&target_dir);
    // What `cargo +nightly forkify` sets up: $CARGO and the rustup toolchain.
    let o = forkify_in(
        &repo_root(),
        &[
            "build",
            "--manifest-path",
            &manifest,
            "--release",
            "--target",
            WASM64,
            "--target",
            WASM32,
            "--target-dir",
            &td,
            "-v",
        ],
        &[
            ("CARGO", Some(&cargo)),
            ("RUSTUP_TOOLCHAIN", Some("nightly")),
            ("RUSTC", None),
        ],
    );
    assert!(o.status.success(), "{}", show(&o));
    let err = stderr(&o);
    for triple in [WASM64, WASM32] {
        assert!(
            err.contains(&format!("Instrumented hello-fork ({triple})")),
            "{err}"
        );
    }
    // -v shows the cargo command lines: build-std for wasm64 only.
    let commands: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("Running `cargo build"))
        .collect();
    assert_eq!(commands.len(), 2, "{err}");
    assert!(
        commands[0].contains(WASM64) && commands[0].contains("-Zbuild-std=std,panic_abort"),
        "{err}"
    );
    assert!(
        commands[1].contains(WASM32) && !commands[1].contains("build-std"),
        "{err}"
    );
    run_all_and_compare(&target_dir.join(WASM64).join("release/forkify"), 8);
    run_all_and_compare(&target_dir.join(WASM32).join("release/forkify"), 4);
}

/// On a stable toolchain wasm64 is refused with the command to use.
#[test]
fn wasm64_on_stable_names_the_nightly_command() {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let version = Command::new(&rustc)
        .arg("-vV")
        .output()
        .expect("rustc runs");
    if String::from_utf8_lossy(&version.stdout).contains("nightly") {
        eprintln!("SKIPPED: wasm64_on_stable_names_the_nightly_command: the tests run on nightly");
        return;
    }
    let dir = workspace("stable64", &[("app", BIN_TOML, HELLO_RS)], "");
    let o = forkify_in(
        &dir,
        &["build", "--target", WASM64],
        &[("RUSTC_BOOTSTRAP", None)],
    );
    assert_eq!(o.status.code(), Some(6), "{}", show(&o));
    let err = stderr(&o);
    assert!(
        err.contains("cargo +nightly forkify build --target wasm64-unknown-unknown"),
        "{err}"
    );
    assert!(
        !dir.join("target").join(WASM64).exists(),
        "nothing was built"
    );
}

/// `cargo forkify run` builds, instruments and runs a program.
#[test]
fn run_builds_instruments_and_forks() {
    let target_dir = kept_dir("examples-run");
    let manifest = examples_manifest();
    let td = path_str(&target_dir);
    let o = forkify(&[
        "run",
        "--bin",
        "hello-fork",
        "--manifest-path",
        &manifest,
        "--target-dir",
        &td,
    ]);
    assert!(o.status.success(), "{}", show(&o));
    assert_eq!(
        stdout(&o),
        "[2] hello from child (pid 2)\n[1] hello from parent (pid 1), child 2 exited with 7\n"
    );
    assert!(stderr(&o).contains("on the reference host"), "{}", show(&o));
    // Several bins and none chosen: cargo's rule, a usage error.
    let o = forkify(&["run", "--manifest-path", &manifest, "--target-dir", &td]);
    assert_eq!(o.status.code(), Some(2), "{}", show(&o));
    assert!(stderr(&o).contains("--bin NAME"), "{}", show(&o));
    // The guest's own failure is exit 5 (fork-tree's root exits with 10).
    let o = forkify(&[
        "run",
        "-p",
        "fork-tree",
        "--manifest-path",
        &manifest,
        "--target-dir",
        &td,
    ]);
    assert_eq!(o.status.code(), Some(5), "{}", show(&o));
    assert!(
        stdout(&o).contains("[7] pid 7 at depth 2: exiting with 12"),
        "{}",
        show(&o)
    );
}

// ---- small temporary workspaces for the error paths ----

const BIN_TOML: &str =
    "[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2021\"\n{extra}";
const CDYLIB_TOML: &str = "[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[lib]\ncrate-type = [\"cdylib\"]\n{extra}";
const LIB_TOML: &str =
    "[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[lib]\n{extra}";

/// A bin that forks through the reference kernel.
const HELLO_RS: &str = r#"#![no_main]
#[link(wasm_import_module = "kernel")]
extern "C" {
    fn kernel_fork() -> i32;
    fn kernel_exit(status: i32);
}
#[no_mangle]
pub extern "C" fn _start() {
    if unsafe { kernel_fork() } == 0 {
        unsafe { kernel_exit(3) };
    }
}
"#;

/// A crate that imports no fork import.
const PLAIN_RS: &str = "#[no_mangle]\npub extern \"C\" fn add(a: i32, b: i32) -> i32 { a + b }\n";

/// A crate whose output looks already instrumented (a `wpk_fork_*` export).
const FORKED_RS: &str = r#"#[link(wasm_import_module = "kernel")]
extern "C" { fn kernel_fork() -> i32; }
#[no_mangle]
pub extern "C" fn _start() { unsafe { kernel_fork(); } }
#[no_mangle]
pub extern "C" fn wpk_fork_state() -> i32 { 0 }
"#;

/// A crate carrying an Asyncify export.
const ASYNCIFY_RS: &str = r#"#[link(wasm_import_module = "kernel")]
extern "C" { fn kernel_fork() -> i32; }
#[no_mangle]
pub extern "C" fn _start() { unsafe { kernel_fork(); } }
#[no_mangle]
pub extern "C" fn asyncify_start_unwind(_p: i32) {}
"#;

/// Writes a workspace of `(name, Cargo.toml template, source)` packages
/// (source goes to src/main.rs for bins, src/lib.rs otherwise) with
/// `root_extra` appended to the root manifest. Keeps `target/`.
fn workspace(name: &str, packages: &[(&str, &str, &str)], root_extra: &str) -> PathBuf {
    workspace_with(name, packages, root_extra, "")
}

fn workspace_with(
    name: &str,
    packages: &[(&str, &str, &str)],
    root_extra: &str,
    package_extra: &str,
) -> PathBuf {
    let dir = kept_dir(&format!("ws-{name}"));
    let members: Vec<String> = packages
        .iter()
        .map(|(n, _, _)| format!("\"{n}\""))
        .collect();
    std::fs::write(
        dir.join("Cargo.toml"),
        format!(
            "[workspace]\nresolver = \"2\"\nmembers = [{}]\n{root_extra}\n[profile.dev]\npanic = \"abort\"\n",
            members.join(", ")
        ),
    )
    .expect("write root manifest");
    for (pkg, toml, src) in packages {
        let pdir = dir.join(pkg);
        let _ = std::fs::remove_dir_all(pdir.join("src"));
        std::fs::create_dir_all(pdir.join("src")).expect("mkdir src");
        std::fs::write(
            pdir.join("Cargo.toml"),
            toml.replace("{name}", pkg)
                .replace("{extra}", package_extra),
        )
        .expect("write package manifest");
        let file = if *toml == BIN_TOML {
            "main.rs"
        } else {
            "lib.rs"
        };
        std::fs::write(pdir.join("src").join(file), src).expect("write source");
    }
    dir
}

#[test]
fn abi_pin_mismatch_fails_before_building() {
    let dir = workspace(
        "pin",
        &[("app", BIN_TOML, HELLO_RS)],
        "\n[workspace.metadata.forkify]\nabi = 2\n",
    );
    let _ = std::fs::remove_dir_all(dir.join("target"));
    let o = forkify_in(&dir, &["build"], &[]);
    assert_eq!(o.status.code(), Some(4), "{}", show(&o));
    let err = stderr(&o);
    assert!(err.contains("pins fork ABI 2"), "{err}");
    assert!(err.contains("emits fork ABI 1"), "{err}");
    assert!(
        err.contains(&path_str(&dir.join("Cargo.toml"))),
        "names the manifest: {err}"
    );
    assert!(
        err.contains("help:") && err.contains("abi = 1"),
        "gives the fix: {err}"
    );
    assert!(!dir.join("target").exists(), "something was built");

    // JSON: the failure is the final record, and stdout holds only JSON.
    let o = forkify_in(&dir, &["build", "--message-format", "json"], &[]);
    assert_eq!(o.status.code(), Some(4), "{}", show(&o));
    let lines = json_lines(&o);
    assert_eq!(lines.len(), 1, "{}", show(&o));
    assert_eq!(lines[0]["reason"], "forkify-finished");
    assert_eq!(lines[0]["success"], false);
    assert_eq!(lines[0]["exit_code"], 4);
}

#[test]
fn already_instrumented_and_asyncify_inputs_are_refused() {
    let dir = workspace(
        "refused",
        &[
            ("pre-forked", CDYLIB_TOML, FORKED_RS),
            ("with-asyncify", CDYLIB_TOML, ASYNCIFY_RS),
        ],
        "",
    );
    let o = forkify_in(&dir, &["build", "--workspace"], &[]);
    assert_eq!(o.status.code(), Some(3), "{}", show(&o));
    let err = stderr(&o);
    let wasm = dir.join("target").join(WASM32).join("debug");
    assert!(
        err.contains(&path_str(&wasm.join("pre_forked.wasm"))),
        "names the file: {err}"
    );
    assert!(
        err.contains("package `pre-forked`") && err.contains("already instrumented"),
        "{err}"
    );
    assert!(
        err.contains("package `with-asyncify`") && err.contains("Asyncify"),
        "{err}"
    );
    assert!(
        err.contains("2 of 2 artifacts could not be instrumented"),
        "{err}"
    );
    assert!(
        !wasm.join("forkify/pre_forked.wasm").exists(),
        "no output for a refused input"
    );
}

#[test]
fn non_wasm_targets_and_packages_without_modules_are_refused() {
    let dir = workspace(
        "nonwasm",
        &[
            ("app", BIN_TOML, HELLO_RS),
            ("just-a-lib", LIB_TOML, PLAIN_RS),
        ],
        "",
    );
    let o = forkify_in(
        &dir,
        &["build", "--target", "x86_64-unknown-linux-gnu"],
        &[],
    );
    assert_eq!(o.status.code(), Some(2), "{}", show(&o));
    let err = stderr(&o);
    assert!(
        err.contains("`x86_64-unknown-linux-gnu` (from --target) is not a WebAssembly target"),
        "{err}"
    );

    let o = forkify_in(&dir, &["build", "-p", "just-a-lib"], &[]);
    assert_eq!(o.status.code(), Some(2), "{}", show(&o));
    let err = stderr(&o);
    assert!(
        err.contains("nothing to instrument") && err.contains("`just-a-lib`"),
        "{err}"
    );

    let o = forkify_in(&dir, &["build", "-p", "missing"], &[]);
    assert_eq!(o.status.code(), Some(2), "{}", show(&o));
    assert!(
        stderr(&o).contains("package `missing` is not a member"),
        "{}",
        show(&o)
    );

    // build.target from cargo's configuration is honoured, and checked.
    let o = forkify_in(
        &dir,
        &["build", "--config", "build.target=\"aarch64-apple-darwin\""],
        &[],
    );
    assert_eq!(o.status.code(), Some(2), "{}", show(&o));
    assert!(
        stderr(&o).contains("`build.target` in `--config"),
        "{}",
        show(&o)
    );
}

#[test]
fn cargo_failure_exit_code_passes_through() {
    let dir = workspace(
        "broken",
        &[("broken", BIN_TOML, "fn main() { let x: u32 = \"no\"; }\n")],
        "",
    );
    let o = forkify_in(&dir, &["build"], &[]);
    assert_eq!(o.status.code(), Some(101), "{}", show(&o));
    assert!(
        stderr(&o).contains("mismatched types"),
        "cargo's diagnostics are shown: {}",
        show(&o)
    );

    let o = forkify_in(&dir, &["build", "--message-format", "json"], &[]);
    assert_eq!(o.status.code(), Some(101), "{}", show(&o));
    let lines = json_lines(&o);
    assert!(
        !records(&lines, "compiler-message").is_empty(),
        "cargo's JSON diagnostics are forwarded"
    );
    let last = lines.last().expect("output");
    assert_eq!(last["reason"], "forkify-finished");
    assert_eq!(last["success"], false);
    assert_eq!(last["exit_code"], 101);
}

#[test]
fn configuration_is_merged_warned_about_and_type_checked() {
    // The package overrides the workspace's fork import; an unknown key warns.
    let dir = workspace_with(
        "config",
        &[("plain", CDYLIB_TOML, PLAIN_RS)],
        "\n[workspace.metadata.forkify]\nfork-imports = [\"kernel.kernel_fork\"]\n",
        "\n[package.metadata.forkify]\nfork-imports = [\"env.my_fork\"]\ntargets = [\"wasm32-unknown-unknown\"]\nfrok = 1\n",
    );
    let _ = std::fs::remove_dir_all(dir.join("target").join(WASM32).join("debug/forkify"));
    let o = forkify_in(&dir, &["build", "--message-format", "json"], &[]);
    assert!(o.status.success(), "{}", show(&o));
    assert!(
        stderr(&o).contains("warning: unused key `frok` in [package.metadata.forkify]"),
        "{}",
        show(&o)
    );
    let lines = json_lines(&o);
    let a = records(&lines, "forkify-artifact");
    assert_eq!(a.len(), 1, "{}", show(&o));
    assert_eq!(a[0]["status"], "passed-through");
    assert_eq!(a[0]["kind"], "cdylib");
    assert_eq!(a[0]["fork_imports"], json!(["env.my_fork"]));
    assert_eq!(
        a[0]["input"]["sha256"], a[0]["output"]["sha256"],
        "passed through byte-identical"
    );
    let o = forkify_in(&dir, &["build"], &[]);
    assert!(stderr(&o).contains("Skipped plain"), "{}", show(&o));

    // A wrong type is an error naming the key and the manifest.
    let dir = workspace_with(
        "config-bad",
        &[("plain", CDYLIB_TOML, PLAIN_RS)],
        "",
        "\n[package.metadata.forkify]\nabi = \"one\"\n",
    );
    let o = forkify_in(&dir, &["build"], &[]);
    assert_eq!(o.status.code(), Some(2), "{}", show(&o));
    let err = stderr(&o);
    assert!(
        err.contains("`abi` in [package.metadata.forkify] in"),
        "{err}"
    );
    assert!(
        err.contains(&path_str(&dir.join("plain/Cargo.toml"))),
        "{err}"
    );
}
