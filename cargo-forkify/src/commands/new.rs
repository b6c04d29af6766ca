//! `cargo forkify new`: a userspace crate that forks, from `templates/project/`.

use camino::Utf8PathBuf;

use crate::errors::ExpectedError;

/// Create a new crate that forks, ready for `cargo forkify build`.
///
/// The crate imports the reference kernel (`kernel.kernel_fork`, …), forks
/// once in `_start`, and runs on both bundled hosts: `cargo forkify run`
/// (wasmtime) and the JavaScript host (`--emit-host js`).
#[derive(Debug, clap::Args)]
#[command(after_help = super::after_help(&[
    "cargo forkify new my-forker && cd my-forker && cargo forkify run",
    "cargo forkify new path/to/app --name app",
]))]
pub(crate) struct NewOpts {
    /// Directory to create (it must not exist, or be empty)
    #[arg(value_name = "PATH")]
    path: Utf8PathBuf,
    /// Package name (default: the directory's name)
    #[arg(long, value_name = "NAME")]
    name: Option<String>,
}

impl NewOpts {
    pub(crate) fn exec(&self) -> Result<(), ExpectedError> {
        let name = match &self.name {
            Some(n) => n.clone(),
            None => self.path.file_name().map(str::to_string).ok_or_else(|| {
                ExpectedError::Usage(format!(
                    "`{}` has no directory name; pass --name",
                    self.path
                ))
            })?,
        };
        crate::templates::new_project(&self.path, &name)
            .map_err(|e| ExpectedError::Usage(format!("{e:#}")))?;
        eprintln!("     Created `{name}` in `{}` (build it with `cargo forkify build`, run it with `cargo forkify run`)", self.path);
        Ok(())
    }
}
