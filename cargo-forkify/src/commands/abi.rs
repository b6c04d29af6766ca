//! `cargo forkify abi`: print the fork ABI as JSON.

use crate::errors::{print_stdout, ExpectedError};

/// Print the fork ABI this tool implements, as JSON.
///
/// The same document as `abi/snapshot.json`: states, control exports,
/// buffer and frame layout, the `forkify.abi` section.
#[derive(Debug, clap::Args)]
#[command(after_help = super::after_help(&["cargo forkify abi", "cargo forkify abi | jq '.exports[].name'"]))]
pub(crate) struct AbiOpts {}

impl AbiOpts {
    pub(crate) fn exec(&self) -> Result<(), ExpectedError> {
        print_stdout(&render())
    }
}

/// The ABI as pretty JSON with a trailing newline.
pub(crate) fn render() -> String {
    let json = forkify_abi::describe();
    // A `Value` always serializes.
    let mut s = serde_json::to_string_pretty(&json).unwrap_or_default();
    s.push('\n');
    s
}
