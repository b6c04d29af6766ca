//! `cargo forkify run`: run an instrumented module on the reference host.

use camino::Utf8PathBuf;

use super::read_input;
use crate::errors::ExpectedError;

/// Run an instrumented module on the reference host, really forking it.
///
/// The host (wasmtime) provides the reference kernel: the module imports
/// `kernel.kernel_fork`, `kernel_exit`, `kernel_waitpid`, `kernel_write`,
/// `kernel_getpid` and exports `memory` and `_start`. At a fork the child
/// runs to completion first, then the parent resumes. Prints every line the
/// processes wrote, prefixed with `[pid] `; exits 5 unless process 1 exits
/// with status 0.
#[derive(Debug, clap::Args)]
#[command(after_help = super::after_help(&[
    "cargo forkify run app.forked.wasm",
    "cargo forkify run app.forked.wasm --json --buffer-size 4096",
]))]
pub(crate) struct RunOpts {
    /// The instrumented module.
    #[arg(value_name = "FILE.wasm")]
    file: Utf8PathBuf,
    /// Print a JSON summary (pid, parent, status, stdout of every process)
    /// instead of the output.
    #[arg(long)]
    json: bool,
    /// Size in bytes of the save buffer each process gets.
    #[arg(long, value_name = "N", default_value_t = 1 << 20)]
    buffer_size: u32,
    /// The most processes the run may create.
    #[arg(long, value_name = "N", default_value_t = 1024)]
    max_processes: u32,
}

impl RunOpts {
    #[cfg(feature = "run")]
    pub(crate) fn exec(&self) -> Result<(), ExpectedError> {
        use crate::errors::print_stdout;
        use crate::host;

        let wasm = read_input(&self.file)?;
        let opts = host::RunOptions {
            buffer_size: self.buffer_size,
            max_processes: self.max_processes,
        };
        let report = host::run(&wasm, &opts).map_err(|error| ExpectedError::RunRefused {
            path: self.file.clone(),
            error,
        })?;
        if self.json {
            let mut text = serde_json::to_string_pretty(&report.to_json())
                .map_err(|e| ExpectedError::Unexpected(e.into()))?;
            text.push('\n');
            print_stdout(&text)?;
        } else {
            print_stdout(&report.render())?;
        }
        match report.root_status() {
            Some(status) if status.success() => Ok(()),
            Some(status) => Err(ExpectedError::GuestFailed {
                path: self.file.clone(),
                status: status.to_string(),
            }),
            None => Err(ExpectedError::GuestFailed {
                path: self.file.clone(),
                status: "never ran".into(),
            }),
        }
    }

    #[cfg(not(feature = "run"))]
    pub(crate) fn exec(&self) -> Result<(), ExpectedError> {
        let _ = (
            read_input,
            &self.file,
            self.json,
            self.buffer_size,
            self.max_processes,
        );
        Err(ExpectedError::NotBuiltIn(
            "this cargo-forkify was built without the `run` feature (the reference host)",
        ))
    }
}
