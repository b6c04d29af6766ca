//! End-to-end tests of `cargo forkify build` and `cargo forkify run` on
//! `examples/`: the real binary driving the real cargo (wasm32, and wasm64
//! when a nightly toolchain with rust-src is installed), every output run
//! on the reference host and compared with `examples/expected.json`; skips,
//! forced rebuilds, cargo's artifacts left alone.
//!
//! Builds go to target directories under `CARGO_TARGET_TMPDIR` that are
//! kept between runs, so cargo's cache makes reruns fast; each test first
//! removes the `forkify/` output directories it asserts on.

mod build_support;

use std::collections::BTreeMap;

use build_support::*;

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
    let programs = forkify_testkit::expected::programs();
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
