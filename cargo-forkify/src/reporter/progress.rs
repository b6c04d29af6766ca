//! The progress bar while artifacts are instrumented: the only user of
//! indicatif. Drawn on standard error, and only when that is a terminal
//! (the human reporter does not create one with `-q` or JSON output).

use std::io::{IsTerminal, Write};
use std::sync::Mutex;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A bar that may not exist; every method is a no-op then.
#[derive(Debug, Default)]
pub(crate) struct Progress {
    bar: Mutex<Option<ProgressBar>>,
}

impl Progress {
    /// Starts a bar of `total` steps when standard error is a terminal.
    pub fn start(&self, total: usize, color: bool) {
        if total == 0 || !std::io::stderr().is_terminal() {
            return;
        }
        let template = if color {
            "{prefix:>12.cyan.bold} [{bar:27}] {pos}/{len}: {wide_msg}"
        } else {
            "{prefix:>12} [{bar:27}] {pos}/{len}: {wide_msg}"
        };
        let style = ProgressStyle::with_template(template)
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
        let bar = ProgressBar::with_draw_target(Some(total as u64), ProgressDrawTarget::stderr())
            .with_style(style)
            .with_prefix("Instrumenting");
        if let Ok(mut slot) = self.bar.lock() {
            *slot = Some(bar);
        }
    }

    /// One step done, `name` the last one finished.
    pub fn inc(&self, name: &str) {
        if let Ok(slot) = self.bar.lock() {
            if let Some(bar) = slot.as_ref() {
                bar.set_message(name.to_string());
                bar.inc(1);
            }
        }
    }

    /// Prints `text` to standard error without tearing the bar.
    pub fn eprintln(&self, text: &str) {
        let slot = self.bar.lock();
        match slot.as_ref().ok().and_then(|s| s.as_ref()) {
            Some(bar) => bar.suspend(|| write_stderr(text)),
            None => write_stderr(text),
        }
    }

    /// Removes the bar.
    pub fn finish(&self) {
        if let Ok(mut slot) = self.bar.lock() {
            if let Some(bar) = slot.take() {
                bar.finish_and_clear();
            }
        }
    }
}

/// A line on standard error; a failure to write it has nowhere to go.
fn write_stderr(text: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{text}");
}
