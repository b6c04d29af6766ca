//! `cargo forkify check`: verify instrumented artifacts against the ABI.

use camino::Utf8PathBuf;
use forkify_abi::{verify, ABI_VERSION};

use crate::errors::{print_stderr, print_stdout, ExpectedError};

/// Verify instrumented artifacts against the fork ABI.
///
/// Each file must carry a readable `forkify.abi` section of the expected
/// ABI version, a pointer width that agrees with memory 0, and the five
/// control exports with the right signatures. Prints one line per file;
/// failures go to standard error. Meant for release pipelines.
#[derive(Debug, clap::Args)]
#[command(after_help = super::after_help(&[
    "cargo forkify check target/wasm32-unknown-unknown/release/forkify/*.wasm",
    "cargo forkify check app.forked.wasm --abi 1",
]))]
pub(crate) struct CheckOpts {
    /// The artifacts to verify.
    #[arg(value_name = "FILE.wasm", required = true)]
    files: Vec<Utf8PathBuf>,
    /// The ABI version they must have (default: the one this tool emits).
    #[arg(long = "abi", value_name = "N")]
    abi: Option<u32>,
}

impl CheckOpts {
    pub(crate) fn exec(&self) -> Result<(), ExpectedError> {
        let expected = self.abi.unwrap_or(ABI_VERSION);
        let mut failed = 0;
        for path in &self.files {
            let outcome = std::fs::read(path)
                .map_err(|e| format!("cannot read: {e}"))
                .and_then(|wasm| verify::verify(&wasm, expected).map_err(|e| e.to_string()));
            match outcome {
                Ok(v) => {
                    let width = if v.pointer_width == 8 {
                        "wasm64"
                    } else {
                        "wasm32"
                    };
                    print_stdout(&format!(
                        "{path}: ok (ABI {}, {width}, {} instrumented functions)\n",
                        v.section.version, v.section.instrumented_functions
                    ))?;
                }
                Err(reason) => {
                    failed += 1;
                    print_stderr(&format!("{path}: {reason}\n"));
                }
            }
        }
        if failed > 0 {
            return Err(ExpectedError::CheckFailed {
                failed,
                total: self.files.len(),
            });
        }
        Ok(())
    }
}
