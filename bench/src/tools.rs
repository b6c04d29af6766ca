//! The tools under test and how each is invoked as a child process, so that
//! every tool is timed and its memory measured the same way.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Features wasm-opt is told the inputs may use. Modules without a
/// `target_features` section (Emscripten and Go output) fail Binaryen's
/// validation otherwise; these are what LLVM and Go emit by default (plus
/// SIMD), and every engine measured here supports them. Enabling a feature
/// only lets the input use it: it does not change what Asyncify does.
pub const WASM_OPT_FEATURES: &[&str] = &[
    "--enable-bulk-memory",
    "--enable-bulk-memory-opt",
    "--enable-nontrapping-float-to-int",
    "--enable-sign-ext",
    "--enable-mutable-globals",
    "--enable-multivalue",
    "--enable-reference-types",
    "--enable-simd",
];

/// Where the harness finds its tools.
#[derive(Debug, Clone)]
pub struct Toolbox {
    /// `target/release/cargo-forkify`.
    pub forkify: PathBuf,
    /// Binaryen's `wasm-opt` from the npm package (a Node script).
    pub wasm_opt: PathBuf,
    /// `node`.
    pub node: PathBuf,
    /// This harness (its `roundtrip` subcommand is the walrus floor).
    pub harness: PathBuf,
}

/// One way of producing an output from an input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Tool {
    /// walrus parse + emit, no transform: the floor for a walrus-based tool.
    Walrus,
    /// `cargo-forkify forkify instrument --stats`.
    Forkify,
    /// `wasm-opt --asyncify`.
    Asyncify,
    /// `wasm-opt --asyncify -O`.
    AsyncifyO,
}

impl Tool {
    pub const ALL: [Tool; 4] = [Tool::Walrus, Tool::Forkify, Tool::Asyncify, Tool::AsyncifyO];

    /// Short id used in file names and JSON.
    pub fn id(self) -> &'static str {
        match self {
            Tool::Walrus => "walrus",
            Tool::Forkify => "forkify",
            Tool::Asyncify => "asyncify",
            Tool::AsyncifyO => "asyncify-O",
        }
    }

    /// How the tables name it.
    pub fn label(self) -> &'static str {
        match self {
            Tool::Walrus => "walrus round trip (floor)",
            Tool::Forkify => "forkify",
            Tool::Asyncify => "Asyncify",
            Tool::AsyncifyO => "Asyncify -O",
        }
    }
}

impl Toolbox {
    /// The command that runs `tool` on `input`, writing `output`.
    /// `extra` is appended (the harness uses it for `-g` in the locals run).
    pub fn command(
        &self,
        tool: Tool,
        input: &Path,
        output: &Path,
        fork_imports: &[String],
        extra: &[&str],
    ) -> Command {
        match tool {
            Tool::Walrus => {
                let mut c = Command::new(&self.harness);
                c.arg("roundtrip").arg(input).arg(output);
                c
            }
            Tool::Forkify => {
                let mut c = Command::new(&self.forkify);
                // --stats costs a table on stderr (milliseconds); the harness
                // reads it to cross-check the locals it counts itself.
                c.args(["forkify", "instrument", "--stats"])
                    .arg(input)
                    .arg("-o")
                    .arg(output);
                for i in fork_imports {
                    c.arg("--fork-import").arg(i);
                }
                c
            }
            Tool::Asyncify | Tool::AsyncifyO => {
                let mut c = self.wasm_opt_command();
                c.arg(input).arg("--asyncify").arg(format!(
                    "--pass-arg=asyncify-imports@{}",
                    fork_imports.join(",")
                ));
                if tool == Tool::AsyncifyO {
                    c.arg("-O");
                }
                c.args(extra).arg("-o").arg(output);
                c
            }
        }
    }

    /// `node wasm-opt` with the feature flags, no other arguments yet.
    pub fn wasm_opt_command(&self) -> Command {
        let mut c = Command::new(&self.node);
        c.arg(&self.wasm_opt).args(WASM_OPT_FEATURES);
        c
    }
}
