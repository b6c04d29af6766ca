//! Third-party inputs: modules no one here wrote, fetched from the npm
//! registry at run time with `npm pack` (pinned versions, listed in
//! bench/npm-inputs.json) into a cache under target/bench/npm.

use std::path::{Path, PathBuf};
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
        let path = fetch_package(cache, &e.package, &e.file, log)?.join(&e.file);
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

/// Fetches `package` (`name@version`) into `cache` unless a previous
/// fetch left `file` in it; returns the unpacked package directory (the
/// tarball's `package/`).
pub fn fetch_package(
    cache: &Path,
    package: &str,
    file: &str,
    log: &dyn Fn(&str),
) -> Result<PathBuf> {
    let dir = cache.join(package.trim_start_matches('@').replace(['/', '@'], "-"));
    let pkg = dir.join("package");
    if pkg.join(file).exists() {
        return Ok(pkg);
    }
    log(&format!("fetching {package} from the npm registry"));
    std::fs::create_dir_all(&dir)?;
    let out = Command::new("npm")
        .args(["pack", "--silent", package, "--pack-destination"])
        .arg(&dir)
        .output()
        .context("cannot run npm")?;
    let tgz = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if !out.status.success() || tgz.is_empty() {
        bail!(
            "npm pack {package} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let status = Command::new("tar")
        .arg("xzf")
        .arg(dir.join(tgz.lines().last().unwrap_or(&tgz)))
        .arg("-C")
        .arg(&dir)
        .status()?;
    if !status.success() || !pkg.join(file).exists() {
        bail!("{package} has no {file}");
    }
    Ok(pkg)
}
