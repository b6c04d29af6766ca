//! `cargo forkify instrument`: instrument one module and write it atomically.

use std::fmt::Write as _;

use camino::Utf8PathBuf;
use forkify_instrument::{ReplayTwins, Report};

use super::{read_input, write_atomic, ForkImportOpts};
use crate::errors::{print_stderr, ExpectedError};

/// Instrument one WebAssembly module so that fork() works in it.
///
/// Only the functions that can reach a fork import are rewritten; a module
/// that imports no fork import is written out byte-identical. The output is
/// written atomically: on any error no output file is created or changed.
#[derive(Debug, clap::Args)]
#[command(after_help = super::after_help(&[
    "cargo forkify instrument app.wasm -o app.forked.wasm",
    "cargo forkify instrument app.wasm -o app.forked.wasm --fork-import env.my_fork --stats",
]))]
pub(crate) struct InstrumentOpts {
    /// The module to instrument.
    #[arg(value_name = "IN.wasm")]
    input: Utf8PathBuf,
    /// Where to write the instrumented module.
    #[arg(short, long, value_name = "OUT.wasm")]
    output: Utf8PathBuf,
    #[command(flatten)]
    imports: ForkImportOpts,
    /// Print what was done to standard error: per instrumented function its
    /// call sites, locals added and frame size, then the sizes.
    #[arg(long)]
    stats: bool,
    /// Which fork-path functions get a replay twin (a copy that does the
    /// replaying, so that the function's normal execution meets no replay
    /// landing): `auto` those that landings would push past V8's TurboFan
    /// limit for its top-tier register allocator, `all`, or `none` (the
    /// smallest output).
    #[arg(long, value_enum, value_name = "WHICH", default_value_t = Twins::Auto)]
    replay_twins: Twins,
}

/// `--replay-twins` (see [`forkify_instrument::ReplayTwins`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Twins {
    Auto,
    All,
    None,
}

impl InstrumentOpts {
    pub(crate) fn exec(&self) -> Result<(), ExpectedError> {
        let wasm = read_input(&self.input)?;
        let mut config = self.imports.config();
        config.replay_twins = match self.replay_twins {
            Twins::Auto => ReplayTwins::Auto,
            Twins::All => ReplayTwins::All,
            Twins::None => ReplayTwins::None,
        };
        let done = forkify_instrument::instrument(&wasm, &config).map_err(|error| {
            ExpectedError::Instrument {
                path: self.input.clone(),
                error,
            }
        })?;
        write_atomic(&self.output, &done.bytes)?;
        if self.stats {
            let imports: Vec<String> = config
                .fork_imports
                .iter()
                .map(ToString::to_string)
                .collect();
            print_stderr(&stats(&self.input, &self.output, &done.report, &imports));
        }
        Ok(())
    }
}

/// The `--stats` text.
fn stats(input: &Utf8PathBuf, output: &Utf8PathBuf, report: &Report, imports: &[String]) -> String {
    let mut s = String::new();
    if report.passed_through {
        let _ = writeln!(
            s,
            "`{input}` imports no fork import ({}): passed through unchanged to `{output}`",
            imports.join(", ")
        );
    } else {
        let width = if report.pointer_width == 8 {
            "wasm64"
        } else {
            "wasm32"
        };
        let _ = writeln!(
            s,
            "instrumented `{input}` -> `{output}` ({width}, fork imports: {})",
            report.fork_imports_found.join(", ")
        );
        let name_width = report
            .functions
            .iter()
            .map(|f| f.name.len())
            .max()
            .unwrap_or(0)
            .max(8);
        let _ = writeln!(
            s,
            "  {:<name_width$}  call sites  locals added  frame size",
            "function"
        );
        for f in &report.functions {
            let _ = writeln!(
                s,
                "  {:<name_width$}  {:>10}  {:>12}  {:>10}",
                f.name, f.call_sites, f.locals_added, f.frame_size
            );
        }
        let _ = writeln!(
            s,
            "  {} functions, largest frame {} bytes, frames at buf+{}, abort reserve {} bytes",
            report.functions.len(),
            report.max_frame_size,
            report.frames_offset,
            report.abort_reserve
        );
        if !report.added_bytes.is_empty() {
            let parts: Vec<String> = report
                .added_bytes
                .iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect();
            let _ = writeln!(
                s,
                "  added to the instrumented functions (estimated bytes): {}",
                parts.join(", ")
            );
        }
    }
    let delta = report.bytes_after as i64 - report.bytes_before as i64;
    let _ = writeln!(
        s,
        "  bytes: {} -> {} ({delta:+})",
        report.bytes_before, report.bytes_after
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use forkify_instrument::FunctionReport;

    #[test]
    fn stats_lists_functions_and_sizes() {
        let report = Report {
            pointer_width: 4,
            bytes_before: 100,
            bytes_after: 180,
            fork_imports_found: vec!["kernel.kernel_fork".into()],
            functions: vec![FunctionReport {
                name: "main".into(),
                call_sites: 2,
                locals_added: 0,
                frame_size: 32,
                ..Default::default()
            }],
            ..Default::default()
        };
        let s = stats(
            &"in.wasm".into(),
            &"out.wasm".into(),
            &report,
            &["kernel.kernel_fork".into()],
        );
        assert!(s.contains("main"), "{s}");
        assert!(s.contains("bytes: 100 -> 180 (+80)"), "{s}");
        let pass = Report {
            passed_through: true,
            bytes_before: 5,
            bytes_after: 5,
            ..Default::default()
        };
        let s = stats(
            &"in.wasm".into(),
            &"out.wasm".into(),
            &pass,
            &["kernel.kernel_fork".into()],
        );
        assert!(s.contains("passed through unchanged"), "{s}");
    }
}
