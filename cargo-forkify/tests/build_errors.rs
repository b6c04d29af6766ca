//! The error paths of `cargo forkify build` on small temporary workspaces:
//! a pinned ABI that differs, inputs that are already instrumented or carry
//! Asyncify, targets that are not WebAssembly, cargo's own failures, and
//! configuration that is merged, warned about and type-checked; each with
//! its exit code and message.
//!
//! Builds go to target directories under `CARGO_TARGET_TMPDIR` that are
//! kept between runs, so cargo's cache makes reruns fast.

mod build_support;

use build_support::*;

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
