//! What the `cargo forkify build`/`run` tests share: running the real
//! binary, reading its JSON lines, running every output of `examples/` on
//! the host against `examples/expected.json`, the nightly toolchain, and
//! small temporary workspaces for the error paths.

#![allow(dead_code)] // each test binary uses a part

pub use std::path::{Path, PathBuf};
pub use std::process::{Command, Output};

pub use forkify_abi::AbiSection;
pub use forkify_host::RunOptions;
pub use serde_json::{json, Value};
use sha2::{Digest, Sha256};

pub const WASM32: &str = "wasm32-unknown-unknown";
pub const WASM64: &str = "wasm64-unknown-unknown";

/// Environment that would make cargo print differently than the tests
/// expect (besides `forkify_testkit::examples::BUILD_ENV`, which would send
/// the builds elsewhere or change their flags).
pub const TERM_ENV: &[&str] = &["CARGO_TERM_VERBOSE", "CARGO_TERM_QUIET"];

pub use forkify_testkit::repo_root;

pub fn examples_manifest() -> String {
    path_str(&repo_root().join("examples/Cargo.toml"))
}

pub fn path_str(p: &Path) -> String {
    p.to_str().expect("utf-8 path").to_string()
}

/// A directory under the test tmpdir, kept between runs (cargo's cache).
pub fn kept_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("forkify-build")
        .join(name);
    std::fs::create_dir_all(&dir).expect("create test dir");
    dir
}

/// `cargo-forkify forkify ARGS…` in `cwd`, as cargo runs it, with `env`
/// set (`None`: removed).
pub fn forkify_in(cwd: &Path, args: &[&str], env: &[(&str, Option<&str>)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cargo-forkify"));
    cmd.arg("forkify").args(args).current_dir(cwd);
    for var in forkify_testkit::examples::BUILD_ENV.iter().chain(TERM_ENV) {
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

pub fn forkify(args: &[&str]) -> Output {
    forkify_in(&repo_root(), args, &[])
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn show(o: &Output) -> String {
    format!(
        "{}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        o.status,
        stdout(o),
        stderr(o)
    )
}

pub fn sha256(path: &Path) -> String {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Every stdout line, parsed; panics on a line that is not JSON.
pub fn json_lines(o: &Output) -> Vec<Value> {
    stdout(o)
        .lines()
        .map(|l| {
            serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {l}\n{}", show(o)))
        })
        .collect()
}

pub fn records<'a>(lines: &'a [Value], reason: &str) -> Vec<&'a Value> {
    lines.iter().filter(|l| l["reason"] == reason).collect()
}

/// Runs every program's output in `forkify_dir` and compares with
/// `expected.json`; checks the pointer width of each.
pub fn run_all_and_compare(forkify_dir: &Path, pointer_width: u8) {
    let programs = forkify_testkit::expected::programs();
    assert!(programs.len() >= 4, "expected.json lists the programs");
    for program in &programs {
        let want = forkify_testkit::expected::report(program);
        let path = forkify_dir.join(format!("{program}.wasm"));
        let wasm = std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        let section = AbiSection::find(&wasm)
            .expect("a readable forkify.abi section")
            .expect("a forkify.abi section");
        assert_eq!(section.pointer_width, pointer_width, "{program}");
        let report = forkify_host::run(&wasm, &RunOptions::default())
            .unwrap_or_else(|e| panic!("{program}: the host refused {}: {e:#}", path.display()));
        let got = serde_json::to_value(&report).expect("a report serializes");
        assert_eq!(
            got,
            want,
            "{program} on {}: the run differs from expected.json\n{}",
            path.display(),
            report.render()
        );
    }
}

/// `rustup` with the running toolchain's choices removed.
pub fn rustup(args: &[&str]) -> Option<String> {
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
pub fn nightly_cargo() -> Result<String, String> {
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

// ---- small temporary workspaces for the error paths ----

pub const BIN_TOML: &str =
    "[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2021\"\n{extra}";
pub const CDYLIB_TOML: &str = "[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[lib]\ncrate-type = [\"cdylib\"]\n{extra}";
pub const LIB_TOML: &str =
    "[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[lib]\n{extra}";

/// A bin that forks through the reference kernel.
pub const HELLO_RS: &str = r#"#![no_main]
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
pub const PLAIN_RS: &str =
    "#[no_mangle]\npub extern \"C\" fn add(a: i32, b: i32) -> i32 { a + b }\n";

/// A crate whose output looks already instrumented (a `wpk_fork_*` export).
pub const FORKED_RS: &str = r#"#[link(wasm_import_module = "kernel")]
extern "C" { fn kernel_fork() -> i32; }
#[no_mangle]
pub extern "C" fn _start() { unsafe { kernel_fork(); } }
#[no_mangle]
pub extern "C" fn wpk_fork_state() -> i32 { 0 }
"#;

/// A crate carrying an Asyncify export.
pub const ASYNCIFY_RS: &str = r#"#[link(wasm_import_module = "kernel")]
extern "C" { fn kernel_fork() -> i32; }
#[no_mangle]
pub extern "C" fn _start() { unsafe { kernel_fork(); } }
#[no_mangle]
pub extern "C" fn asyncify_start_unwind(_p: i32) {}
"#;

/// Writes a workspace of `(name, Cargo.toml template, source)` packages
/// (source goes to src/main.rs for bins, src/lib.rs otherwise) with
/// `root_extra` appended to the root manifest. Keeps `target/`.
pub fn workspace(name: &str, packages: &[(&str, &str, &str)], root_extra: &str) -> PathBuf {
    workspace_with(name, packages, root_extra, "")
}

pub fn workspace_with(
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
