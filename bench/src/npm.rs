//! Third-party inputs: modules no one here wrote, fetched from the npm
//! registry at run time with `npm pack` (pinned versions, listed in
//! bench/npm-inputs.json) into a cache under target/bench/npm.

use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context, Result};
use serde::Deserialize;

use crate::instr::Input;

#[derive(Deserialize)]
struct Entry {
    name: String,
    package: String,
    file: String,
    fork_imports: Vec<String>,
    why: String,
}

/// Fetches (when not cached) and lists the npm inputs.
pub fn fetch(repo: &Path, cache: &Path, log: &dyn Fn(&str)) -> Result<Vec<Input>> {
    let list = repo.join("bench/npm-inputs.json");
    let entries: Vec<Entry> = serde_json::from_slice(&std::fs::read(&list)?)
        .with_context(|| format!("cannot read {}", list.display()))?;
    let mut inputs = Vec::new();
    for e in entries {
        let dir = cache.join(e.package.trim_start_matches('@').replace(['/', '@'], "-"));
        let path = dir.join("package").join(&e.file);
        if !path.exists() {
            log(&format!("fetching {} from the npm registry", e.package));
            std::fs::create_dir_all(&dir)?;
            let out = Command::new("npm")
                .args(["pack", "--silent", &e.package, "--pack-destination"])
                .arg(&dir)
                .output()
                .context("cannot run npm")?;
            let tgz = String::from_utf8_lossy(&out.stdout).trim().to_string();
            if !out.status.success() || tgz.is_empty() {
                bail!(
                    "npm pack {} failed: {}",
                    e.package,
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            let status = Command::new("tar")
                .arg("xzf")
                .arg(dir.join(tgz.lines().last().unwrap_or(&tgz)))
                .arg("-C")
                .arg(&dir)
                .status()?;
            if !status.success() || !path.exists() {
                bail!("{} has no {}", e.package, e.file);
            }
        }
        inputs.push(Input {
            name: e.name,
            origin: format!("npm {} ({})", e.package, e.file),
            fork_imports: e.fork_imports,
            why: e.why,
            path,
        });
    }
    Ok(inputs)
}
