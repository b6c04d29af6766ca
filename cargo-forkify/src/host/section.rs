//! Deciding, before anything is instantiated, whether the host may run a
//! module and with which layout: the `forkify.abi` section (ABI §7), the
//! pointer width, the control exports and the §9 entry points.

use forkify_instrument::abi::{self, ABI_VERSION};

use crate::verify::{self, ModuleFacts, VerifyError};

/// What the host needs to know about a module it accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Plan {
    /// 4 on wasm32, 8 on memory64 (4 for a module without memory).
    pub pointer_width: u8,
    /// The buffer layout; `None` for a module that was never instrumented
    /// (it imports no fork, so it cannot fork).
    pub layout: Option<Layout>,
}

/// The part of the `forkify.abi` section the host acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Layout {
    /// Where the frames start, from the buffer start.
    pub frames_offset: u32,
    /// Bytes every frame write leaves free for an abort record.
    pub abort_reserve: u32,
}

impl Layout {
    /// The smallest buffer the module may be given (ABI §7).
    pub fn min_buffer(&self) -> u64 {
        u64::from(self.frames_offset) + u64::from(self.abort_reserve)
    }
}

/// Checks `wasm` and returns how to run it, or why it cannot run.
pub(super) fn prepare(wasm: &[u8]) -> anyhow::Result<Plan> {
    let facts = ModuleFacts::read(wasm)?;
    let plan = match facts.section()? {
        Some(_) => {
            let verified = verify::verify_facts(&facts, ABI_VERSION)?;
            match facts.memory_export("memory") {
                Some(0) => {}
                Some(i) => anyhow::bail!(
                    "export `memory` is memory {i}; the save buffer lives in memory 0"
                ),
                None => return Err(VerifyError::MissingExport("memory".into()).into()),
            }
            Plan {
                pointer_width: verified.pointer_width,
                layout: Some(Layout {
                    frames_offset: verified.section.frames_offset,
                    abort_reserve: verified.section.abort_reserve,
                }),
            }
        }
        None => {
            let (m, n) = abi::DEFAULT_FORK_IMPORT;
            if facts.imports_func(m, n) {
                anyhow::bail!(
                    "not instrumented: it imports `{m}.{n}` but has no `{}` section; run `cargo forkify instrument` first",
                    abi::SECTION_NAME
                );
            }
            if let Some(name) = facts
                .export_names()
                .find(|e| e.starts_with(abi::EXPORT_PREFIX))
            {
                anyhow::bail!(
                    "it exports `{name}` but has no `{}` section: a damaged or foreign artifact",
                    abi::SECTION_NAME
                );
            }
            Plan {
                pointer_width: facts.memory0_width().unwrap_or(4),
                layout: None,
            }
        }
    };
    facts.expect_func("_start", &[], &[])?;
    Ok(plan)
}
