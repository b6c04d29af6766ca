//! `cargo forkify explain`: why a function is (or is not) on a fork path.

use camino::Utf8PathBuf;

use super::{read_input, ForkImportOpts};
use crate::errors::{print_stdout, ExpectedError};

/// Explain why a function is instrumented.
///
/// Prints the chain of calls from the function to a fork import, e.g.
/// `main -> spawn_workers -> kernel.kernel_fork`, or says that it is not on
/// a fork path (and so keeps its exact bytes).
#[derive(Debug, clap::Args)]
#[command(after_help = super::after_help(&[
    "cargo forkify explain app.wasm main",
    "cargo forkify explain app.wasm 'func[12]' --fork-import env.my_fork",
]))]
pub(crate) struct ExplainOpts {
    /// The module to inspect (not instrumented yet).
    #[arg(value_name = "IN.wasm")]
    input: Utf8PathBuf,
    /// The function: a name from the name section, or `func[INDEX]`.
    function: String,
    #[command(flatten)]
    imports: ForkImportOpts,
}

impl ExplainOpts {
    pub(crate) fn exec(&self) -> Result<(), ExpectedError> {
        let wasm = read_input(&self.input)?;
        let config = self.imports.config();
        let explanation =
            forkify_instrument::explain(&wasm, &config, &self.function).map_err(|error| {
                ExpectedError::Explain {
                    path: self.input.clone(),
                    error,
                }
            })?;
        let text = if explanation.chain.is_empty() {
            let imports: Vec<String> = config
                .fork_imports
                .iter()
                .map(ToString::to_string)
                .collect();
            format!(
                "`{}` is not on a fork path: it cannot reach {} and is not instrumented\n",
                self.function,
                imports.join(" or ")
            )
        } else {
            format!("{}\n", explanation.chain.join(" -> "))
        };
        print_stdout(&text)
    }
}
