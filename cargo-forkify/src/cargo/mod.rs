//! Everything that speaks to cargo: its command-line flags modelled as data
//! (`opts`), its configuration files and environment (`config`), the
//! workspace from `cargo metadata` and the `[*.metadata.forkify]` tables
//! (`workspace`, `project_config`), the toolchain and its targets
//! (`toolchain`), and `cargo build` with its JSON messages (`build`).

pub(crate) mod build;
pub(crate) mod config;
pub(crate) mod opts;
pub(crate) mod project_config;
pub(crate) mod toolchain;
pub(crate) mod workspace;
