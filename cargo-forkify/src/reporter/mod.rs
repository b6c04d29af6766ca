//! Rendering events for people (`human`, with the `progress` bar) or
//! machines (`json`). This is the only place, besides `errors.rs` and the
//! commands' own output, that prints.

mod human;
mod json;
mod progress;

use std::io::IsTerminal;

use crate::cargo::config::CargoConfig;
use crate::cargo::opts::{ColorChoice, GlobalOpts, MessageFormat};
use crate::events::Reporter;

/// How much to say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Verbosity {
    /// `-q`: errors only.
    Quiet,
    /// The summary.
    Normal,
    /// `-v`: also commands and output paths.
    Verbose,
}

impl Verbosity {
    /// From the flags, then `term.quiet`/`term.verbose` (and their
    /// `CARGO_TERM_*` variables), as cargo decides.
    pub fn resolve(global: &GlobalOpts, config: &CargoConfig) -> Verbosity {
        if global.quiet {
            Verbosity::Quiet
        } else if global.verbose > 0 {
            Verbosity::Verbose
        } else if config.term_quiet == Some(true) {
            Verbosity::Quiet
        } else if config.term_verbose == Some(true) {
            Verbosity::Verbose
        } else {
            Verbosity::Normal
        }
    }
}

/// Whether standard error gets colours: `--color`, then `term.color`
/// (`CARGO_TERM_COLOR`), else when it is a terminal that is not dumb.
pub(crate) fn use_color(global: &GlobalOpts, config: &CargoConfig) -> bool {
    let choice = global
        .color
        .or_else(|| config.term_color.as_deref().and_then(ColorChoice::parse))
        .unwrap_or(ColorChoice::Auto);
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            std::io::stderr().is_terminal() && std::env::var("TERM").map_or(true, |t| t != "dumb")
        }
    }
}

/// Cargo-style status lines.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Style {
    pub color: bool,
}

impl Style {
    /// `verb` right-aligned in 12 columns, bold green, then the message.
    pub fn status(&self, verb: &str, message: &str) -> String {
        if self.color {
            format!("\x1b[1m\x1b[32m{verb:>12}\x1b[0m {message}")
        } else {
            format!("{verb:>12} {message}")
        }
    }

    /// `label: message` with the label bold in `code` (an ANSI colour).
    pub fn labelled(&self, label: &str, code: u8, message: &str) -> String {
        if self.color {
            format!("\x1b[1m\x1b[{code}m{label}\x1b[0m\x1b[1m:\x1b[0m {message}")
        } else {
            format!("{label}: {message}")
        }
    }

    /// `warning: …` in yellow.
    pub fn warning(&self, message: &str) -> String {
        self.labelled("warning", 33, message)
    }

    /// `error: …` in red.
    pub fn error(&self, message: &str) -> String {
        self.labelled("error", 31, message)
    }
}

/// The reporter for this output format.
pub(crate) fn new(format: MessageFormat, verbosity: Verbosity, style: Style) -> Box<dyn Reporter> {
    if format.is_json() {
        Box::new(json::JsonReporter::new(verbosity, style))
    } else {
        Box::new(human::HumanReporter::new(verbosity, style))
    }
}

/// A size as the summary shows it: `812 B`, `24.6 KB`, `1.2 MB`.
pub(crate) fn size(bytes: u64) -> String {
    match bytes {
        b if b < 1000 => format!("{b} B"),
        b if b < 1_000_000 => format!("{:.1} KB", b as f64 / 1000.0),
        b => format!("{:.1} MB", b as f64 / 1_000_000.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_status_lines_look_like_cargo() {
        assert_eq!(size(812), "812 B");
        assert_eq!(size(24_649), "24.6 KB");
        assert_eq!(size(1_234_567), "1.2 MB");
        let plain = Style { color: false };
        assert_eq!(plain.status("Skipped", "x"), "     Skipped x");
        assert_eq!(plain.status("Instrumented", "x"), "Instrumented x");
        assert_eq!(plain.warning("w"), "warning: w");
        assert!(Style { color: true }
            .status("Finished", "x")
            .contains("\x1b[32m"));
    }
}
