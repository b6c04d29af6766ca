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
    /// Which functions get a replay twin (see [`ReplayTwins`]).
    pub replay_twins: ReplayTwins,
}

/// Which fork-path functions are emitted as a pair: the function, whose
/// normal execution meets no replay landing, and a twin that does the
/// replaying. A twin costs the function's instrumented size again and
/// saves an optimizing engine the joins that replay landings add.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReplayTwins {
    /// Functions that their landings would push past
    /// [`ReplayTwins::V8_TOP_TIER_LIMIT`] (see [`ReplayTwins::wants`]).
    #[default]
    Auto,
    /// Every fork-path function (tests use it to run twins everywhere).
    All,
    /// No function.
    None,
}

impl ReplayTwins {
    /// V8 (Node 20) gives a TurboFan function with more virtual registers
    /// than this to its mid-tier register allocator, whose code is slower
    /// and whose frames grow with the function (measured with
    /// `--trace-turbo` and `--print-wasm-code`: a generated function's
    /// frame changes between 8,102 and 8,402 virtual registers; the
    /// `sites-1k` depth probe's instrumented `walk`, at 10,190 against the
    /// original's 3,632, needed 110 times the original's stack, and
    /// QuickJS's interpreter loop made the whole engine twice as slow).
    pub const V8_TOP_TIER_LIMIT: u64 = 8192;

    /// Whether a function gets a twin, from estimates of its virtual
    /// registers: `own` for the original (its value-producing
    /// instructions), `added` for what the rewrite adds (per call site, the
    /// values joined at its landing and three for its unwind check). Under
    /// `Auto`, a function that stays below the limit does not need a twin,
    /// and one already above it gains nothing from one.
    pub fn wants(self, own: u64, added: u64) -> bool {
        match self {
            ReplayTwins::Auto => {
                own < Self::V8_TOP_TIER_LIMIT && own + added >= Self::V8_TOP_TIER_LIMIT
            }
            ReplayTwins::All => true,
            ReplayTwins::None => false,
        }
    }
}

impl Default for Config {
    fn default() -> Config {
        let (m, n) = forkify_abi::DEFAULT_FORK_IMPORT;
        Config {
            fork_imports: vec![ImportName::new(m, n)],
            tool: TOOL.to_string(),
            replay_twins: ReplayTwins::Auto,
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
