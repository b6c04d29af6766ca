//! One file per subcommand, each an `*Opts` struct (clap; its `///` is the
//! help text) with `exec`. This file holds what several of them share: the
//! `--fork-import` flag, reading inputs and writing outputs atomically. The
//! pipeline `build` and `run` share lives in `pipeline/`, not here.

pub(crate) mod abi;
pub(crate) mod build;
pub(crate) mod check;
pub(crate) mod explain;
pub(crate) mod instrument;
pub(crate) mod new;
pub(crate) mod run;

use std::fs;

use camino::Utf8Path;
use forkify_instrument::{Config, ImportName};

use crate::errors::ExpectedError;
use crate::exit_codes;

/// The `after_help` of a command: examples, then the exit codes.
pub(crate) fn after_help(examples: &[&str]) -> String {
    let mut s = String::from("Examples:\n");
    for e in examples {
        s.push_str("  ");
        s.push_str(e);
        s.push('\n');
    }
    s.push('\n');
    s.push_str(exit_codes::HELP);
    s
}

/// Which imports count as fork imports.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct ForkImportOpts {
    /// A function import that forks, as MODULE.NAME (repeatable; default
    /// kernel.kernel_fork).
    #[arg(long = "fork-import", value_name = "MODULE.NAME", value_parser = parse_import_name)]
    pub fork_imports: Vec<ImportName>,
}

impl ForkImportOpts {
    /// The instrumenter configuration for these imports.
    pub fn config(&self) -> Config {
        Config::with_fork_imports(self.fork_imports.clone())
    }
}

fn parse_import_name(s: &str) -> Result<ImportName, String> {
    s.parse()
}

/// Reads an input file.
pub(crate) fn read_input(path: &Utf8Path) -> Result<Vec<u8>, ExpectedError> {
    fs::read(path).map_err(|error| ExpectedError::ReadInput {
        path: path.to_owned(),
        error,
    })
}

/// Writes `bytes` to `path` atomically (see `atomic.rs`).
pub(crate) fn write_atomic(path: &Utf8Path, bytes: &[u8]) -> Result<(), ExpectedError> {
    crate::atomic::write_atomic(path, bytes).map_err(|error| ExpectedError::WriteOutput {
        path: path.to_owned(),
        error,
    })
}
