//! Options of the transform and the tool string it records. No I/O here.

use std::fmt;
use std::str::FromStr;

/// A function import named by module and field, written `module.name`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ImportName {
    /// The import's module.
    pub module: String,
    /// The import's field name.
    pub name: String,
}

impl ImportName {
    /// An import name from its two parts.
    pub fn new(module: impl Into<String>, name: impl Into<String>) -> ImportName {
        ImportName {
            module: module.into(),
            name: name.into(),
        }
    }
}

impl fmt::Display for ImportName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.module, self.name)
    }
}

impl FromStr for ImportName {
    type Err = String;

    /// Splits at the first `.`: module names rarely contain dots, field
    /// names (`kernel_fork`, `__wasi_proc_fork`) sometimes do.
    fn from_str(s: &str) -> Result<ImportName, String> {
        match s.split_once('.') {
            Some((m, n)) if !m.is_empty() && !n.is_empty() => Ok(ImportName::new(m, n)),
            _ => Err(format!("`{s}` is not of the form `module.name`")),
        }
    }
}

/// Name, version and source fingerprint of this instrumenter, as written
/// into the `forkify.abi` section, e.g. `cargo-forkify 0.1.0 (1f0c…)`.
pub const TOOL: &str = concat!(
    "cargo-forkify ",
    env!("CARGO_PKG_VERSION"),
    " (",
    env!("FORKIFY_SOURCE_HASH"),
    ")"
);

/// What to instrument and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The fork imports (default `kernel.kernel_fork`). Order does not matter.
    pub fork_imports: Vec<ImportName>,
    /// The name and version written into the `forkify.abi` section.
    pub tool: String,
}

impl Default for Config {
    fn default() -> Config {
        let (m, n) = forkify_abi::DEFAULT_FORK_IMPORT;
        Config {
            fork_imports: vec![ImportName::new(m, n)],
            tool: TOOL.to_string(),
        }
    }
}

impl Config {
    /// A config with these fork imports (the default when empty).
    pub fn with_fork_imports(imports: Vec<ImportName>) -> Config {
        let mut c = Config::default();
        if !imports.is_empty() {
            c.fork_imports = imports;
        }
        c
    }

    /// The fork imports, sorted and deduplicated (what the section records).
    pub fn sorted_fork_imports(&self) -> Vec<ImportName> {
        let mut v = self.fork_imports.clone();
        v.sort();
        v.dedup();
        v
    }
}
