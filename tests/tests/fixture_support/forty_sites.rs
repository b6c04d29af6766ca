//! The one fixture written by a program (`forty_sites.wat`), and the
//! canonical prelude every fixture starts with.

use std::fmt::Write as _;

use super::fixtures_dir;

/// The one fixture written by a program: a function with 40 fork sites in
/// code order, site `k` forking only when it is one of the two it is asked
/// for, sites 3 and 38. Regenerate the file with
/// `BLESS=1 cargo test -p forkify-tests --test fixtures`.
pub fn forty_sites_wat() -> String {
    sites_wat(40, [3, 38])
}

/// A program like `forty_sites.wat` with `sites` fork sites, of which the
/// two in `forking` fork (in code order); its `@expect` lines say what each
/// process prints.
pub fn sites_wat(sites: u32, forking: [u32; 2]) -> String {
    let acc = |k: u32| k * (k + 1) / 2;
    let mut s = String::new();
    let _ = writeln!(
        s,
        ";; intent: one function with {sites} fork sites in code order (generated: fixture_support::forty_sites::sites_wat); site k forks only when it is one of the two sites asked for, {} and {}; each child reports the site it resumed at with the locals live there, and exits with the site number",
        forking[0], forking[1]
    );
    let _ = writeln!(
        s,
        ";; @expect pid=1 parent=- status=0 stdout=\"parent: child 2 exited {a}\\nparent: child 3 exited {b}\\nhits=2\\n\"",
        a = forking[0],
        b = forking[1]
    );
    for (i, k) in forking.iter().enumerate() {
        let _ = writeln!(
            s,
            ";; @expect pid={} parent=1 status={} stdout=\"child resumed at site {k} hits={i} acc={}\\n\"",
            i + 2,
            k,
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
  (func $sites (param $a i32) (param $b i32) (result i32)
    (local $pid i32) (local $hits i32) (local $acc i32)
"#,
    );
    for k in 0..sites {
        let _ = write!(
            s,
            r#"    ;; site {k}
    (local.set $acc (i32.add (local.get $acc) (i32.const {k})))
    (if (i32.or (i32.eq (local.get $a) (i32.const {k})) (i32.eq (local.get $b) (i32.const {k})))
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
"#
        );
    }
    let _ = write!(
        s,
        r#"    (local.get $hits))
  (func $_start (export "_start")
    (local $n i32) (local $i i32) (local $pid i32)
    (local.set $n (call $sites (i32.const {a}) (i32.const {b})))
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
"#,
        a = forking[0],
        b = forking[1]
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
