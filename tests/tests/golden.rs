//! Golden files of a few instrumented functions (`tests/golden/*.wat`), so a
//! reviewer sees in a diff what a change does to the shape of one call site:
//! the replay preamble, the dispatch, the landings, the unwind check. They
//! complement the runs (`fixtures.rs` runs every fixture on the host and
//! compares the process tree); they assert nothing about behaviour.
//!
//! Each file is the instrumented function printed by wasmprinter, after a
//! `;;` line saying what it shows. `BLESS=1 cargo test -p forkify-tests
//! --test golden` rewrites them.

mod fixture_support;

use std::path::PathBuf;

use fixture_support::{instrument_fixture, Fixture};

/// (fixture, function, what the file shows).
const GOLDEN: &[(&str, &str, &str)] = &[
    ("fork_once", "_start", "one fork in the entry: preamble, one landing, one unwind check"),
    ("carryover_store", "_start", "an operand below the call (a carryover): the landing block's result, stored on unwind by a helper that pops it"),
    ("if_condition", "_start", "a fork inside an `if`: the `if` lowered to blocks (reshape), so the replay entry branches straight to the call and never evaluates the condition"),
    ("deep_recursion", "rec", "a recursive function: two fork-path calls, the frame's live locals, no local added"),
    ("tail_call", "tail", "a tail call on a fork path: a call followed by `return`"),
    ("fork_once", "__forkify_commit", "the runtime's commit: header write, cursor, and the abort check (ABI §6)"),
];

fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("golden")
}

/// The text of `(func $name …)` in wasmprinter's output: from its line to
/// the next module-level form.
fn function_text(printed: &str, name: &str) -> Option<String> {
    let head = format!("  (func ${name} ");
    let start = printed.find(&head)?;
    let rest = &printed[start..];
    let end = rest[1..].find("\n  (").map_or(rest.len(), |i| i + 2);
    Some(rest[..end].trim_end().to_string() + "\n")
}

#[test]
fn instrumented_functions_match_their_golden_files() {
    let bless = std::env::var_os("BLESS").is_some_and(|v| v == "1");
    let mut stale = Vec::new();
    for (fixture, func, intent) in GOLDEN {
        let f = Fixture::load(fixture);
        let (_, out) = instrument_fixture(&f);
        let printed = wasmprinter::print_bytes(&out.bytes).expect("the output prints");
        let text = function_text(&printed, func)
            .unwrap_or_else(|| panic!("{fixture}: no function `${func}` in the output"));
        let want = format!(";; {intent}\n;; (fixture {fixture}.wat, function ${func})\n{text}");
        let path = golden_dir().join(format!("{fixture}.{func}.wat"));
        if bless {
            std::fs::write(&path, &want)
                .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
            continue;
        }
        let have = std::fs::read_to_string(&path).unwrap_or_default();
        if have != want {
            stale.push(format!(
                "{} differs:\n--- golden\n{have}\n--- now\n{want}",
                path.display()
            ));
        }
    }
    assert!(
        stale.is_empty(),
        "{}\n(if the change is intended: BLESS=1 cargo test -p forkify-tests --test golden)",
        stale.join("\n")
    );
}

#[test]
fn every_golden_file_is_listed() {
    let mut on_disk: Vec<String> = std::fs::read_dir(golden_dir())
        .expect("read tests/golden")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".wat"))
        .collect();
    on_disk.sort();
    let mut listed: Vec<String> = GOLDEN
        .iter()
        .map(|(f, func, _)| format!("{f}.{func}.wat"))
        .collect();
    listed.sort();
    assert_eq!(on_disk, listed, "tests/golden and GOLDEN disagree");
}
