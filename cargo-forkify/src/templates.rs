//! The files cargo-forkify writes for users, compiled into the binary so an
//! installed `cargo forkify` needs no source tree: the JavaScript host
//! (`templates/host/forkify-host.mjs`, for `build --emit-host js`) and the
//! project skeleton of `cargo forkify new` (`templates/project/`).
//!
//! This module only produces and writes files; parsing flags and printing
//! belong to the commands. Template files name the project `{{name}}`.

use std::path::Path;

use anyhow::{bail, Context as _};

/// The placeholder the project template uses for the package name.
const NAME_PLACEHOLDER: &str = "{{name}}";

/// The file name the JavaScript host is written as.
pub const HOST_JS_FILE: &str = "forkify-host.mjs";

/// The files of `templates/project/`: path relative to the project, contents.
const PROJECT_FILES: &[(&str, &str)] = &[
    (
        "Cargo.toml",
        include_str!("../../templates/project/Cargo.toml"),
    ),
    (
        "src/main.rs",
        include_str!("../../templates/project/src/main.rs"),
    ),
    (
        "README.md",
        include_str!("../../templates/project/README.md"),
    ),
    (
        ".gitignore",
        include_str!("../../templates/project/.gitignore"),
    ),
];

/// The JavaScript host for Node and browsers (fork ABI 1, with the
/// reference kernel): a dependency-free ES module.
pub fn host_js() -> &'static str {
    include_str!("../../templates/host/forkify-host.mjs")
}

/// Creates a userspace crate that forks at `path` (which must not exist, or
/// be an empty directory), with package name `name`: `Cargo.toml`,
/// `src/main.rs`, `README.md` and `.gitignore` from `templates/project/`.
pub fn new_project(path: impl AsRef<Path>, name: &str) -> anyhow::Result<()> {
    let path = path.as_ref();
    check_package_name(name)?;
    if path.exists() {
        let empty = path.is_dir()
            && path
                .read_dir()
                .with_context(|| format!("cannot read `{}`", path.display()))?
                .next()
                .is_none();
        if !empty {
            bail!(
                "`{}` already exists and is not an empty directory; choose a new path",
                path.display()
            );
        }
    }
    for (file, text) in PROJECT_FILES {
        let dest = path.join(file);
        if let Some(dir) = dest.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create `{}`", dir.display()))?;
        }
        std::fs::write(&dest, text.replace(NAME_PLACEHOLDER, name))
            .with_context(|| format!("cannot write `{}`", dest.display()))?;
    }
    Ok(())
}

/// Refuses names cargo would refuse for a new binary package.
fn check_package_name(name: &str) -> anyhow::Result<()> {
    let Some(first) = name.chars().next() else {
        bail!("the package name is empty");
    };
    if !first.is_ascii_alphabetic() {
        bail!("invalid package name `{name}`: it must start with a letter");
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
    {
        bail!("invalid package name `{name}`: `{c}` is not allowed (use letters, digits, `-` and `_`)");
    }
    const RESERVED: &[&str] = &["test", "core", "std", "alloc", "proc_macro", "build"];
    if RESERVED.contains(&name) {
        bail!("invalid package name `{name}`: it is reserved");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(tag: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "cargo-forkify-templates-{tag}-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn host_js_is_the_es_module() {
        let js = host_js();
        assert!(js.contains("export async function run("));
        assert!(js.contains("forkify.abi"));
    }

    #[test]
    fn new_project_substitutes_the_name() {
        let dir = scratch("new");
        new_project(&dir, "my-app").expect("creates the project");
        let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).expect("Cargo.toml");
        let parsed: toml::Table = manifest.parse().expect("Cargo.toml is TOML");
        assert_eq!(parsed["package"]["name"].as_str(), Some("my-app"));
        for (file, _) in PROJECT_FILES {
            let text = std::fs::read_to_string(dir.join(file)).expect("written");
            assert!(
                !text.contains(NAME_PLACEHOLDER),
                "{file} still has the placeholder"
            );
        }
        let main = std::fs::read_to_string(dir.join("src/main.rs")).expect("main.rs");
        assert!(main.contains("wasm_import_module = \"kernel\""));
        // A second time into the same, now non-empty, directory is refused.
        let err = new_project(&dir, "my-app").expect_err("refused");
        assert!(format!("{err}").contains("already exists"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn new_project_refuses_bad_names() {
        let dir = scratch("names");
        for bad in ["", "1app", "my app", "a/b", "test"] {
            assert!(new_project(&dir, bad).is_err(), "`{bad}` should be refused");
        }
        assert!(!dir.exists(), "nothing is written for a bad name");
    }
}
