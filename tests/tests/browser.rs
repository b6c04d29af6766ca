//! A real browser: the example page of the JavaScript host template
//! (`templates/host/index.html` with `forkify-host.mjs`) is served from
//! 127.0.0.1 by a tiny static server, with an instrumented example program
//! beside it; headless Chromium (Debian's `/usr/bin/chromium`, driven by
//! `playwright-core` from `tests/browser/`) opens it, the program really
//! forks in the page, and the output the page shows must be exactly the
//! expected `[pid] line` output of `examples/expected.json` (and the page's
//! RunReport the expected one). A screenshot of each page is saved under
//! `target/js-host/browser/` as a test artifact.
//!
//! Without Node, Chromium or playwright-core (`npm ci` in tests/browser)
//! this test says `SKIPPED: ...` locally and fails in CI (`CI=true`), where
//! `scripts/setup.sh` installs them.

mod js_support;

use std::time::Duration;

use forkify_instrument::Config;
use forkify_testkit::examples::{built, Target};
use forkify_testkit::say;
use js_support::server::StaticServer;
use js_support::{
    chromium, host_dir, normalize, open_page, report_from_json, require, scratch_dir,
};

/// The programs shown in the page.
const PROGRAMS: &[&str] = &["hello-fork", "fork-tree"];

#[test]
fn example_page_runs_in_chromium() {
    let test = "example_page_runs_in_chromium";
    let Some(node) = require(test, chromium()) else {
        return;
    };
    let dir = built(Target::Wasm32).unwrap_or_else(|why| panic!("{test}: {why}"));
    let read = |path: std::path::PathBuf| {
        std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
    };
    let mut files = vec![
        (
            "/index.html".to_string(),
            read(host_dir().join("index.html")),
        ),
        (
            "/forkify-host.mjs".to_string(),
            read(host_dir().join("forkify-host.mjs")),
        ),
    ];
    for program in PROGRAMS {
        let wasm = read(dir.join(format!("{program}.wasm")));
        let out = forkify_instrument::instrument(&wasm, &Config::default())
            .unwrap_or_else(|e| panic!("{program}: instrument() failed: {e}"));
        files.push((format!("/{program}.wasm"), out.bytes));
    }
    let server = StaticServer::start(files, Duration::from_secs(120))
        .unwrap_or_else(|e| panic!("{test}: cannot start the static server: {e}"));
    let shots = scratch_dir("browser");
    for program in PROGRAMS {
        let shot = shots.join(format!("{program}.png"));
        let url = server.url(&format!("/index.html?wasm={program}.wasm"));
        let page = open_page(&node, &url, Some(&shot));
        let expected = forkify_testkit::expected::report(program);
        let want = report_from_json(&expected)
            .expect("expected.json is a RunReport")
            .render();
        assert_eq!(
            page.state, "done",
            "{program}: the page did not finish: status {:?}, output {:?}, console {:?}",
            page.status, page.output, page.console
        );
        assert_eq!(
            page.output, want,
            "{program}: the output the page shows differs from the expected output"
        );
        assert_eq!(
            normalize(&page.result),
            normalize(&expected),
            "{program}: the page's RunReport differs from examples/expected.json"
        );
        let root = &expected["processes"][0]["status"]["exited"];
        let status = format!(
            "{} processes; process 1 exited with status {root}",
            expected["processes"].as_array().map_or(0, Vec::len)
        );
        assert_eq!(page.status, status, "{program}: the page's status line");
        assert!(
            shot.metadata().is_ok_and(|m| m.len() > 1000),
            "{program}: no screenshot at {}",
            shot.display()
        );
        say(&format!(
            "{test}: {program}: the page showed the expected output; screenshot {}",
            shot.display()
        ));
    }
}
