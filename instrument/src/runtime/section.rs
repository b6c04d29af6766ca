//! The `forkify.abi` section payload (ABI §7).

use forkify_abi::{AbiSection, SectionInfo};

/// Builds the `forkify.abi` section payload.
pub fn section(
    p: u32,
    frames_offset: u32,
    functions: u32,
    max_frame: u32,
    abort_reserve: u32,
    tool: &str,
    fork_imports: Vec<String>,
) -> Vec<u8> {
    AbiSection::new(
        p as u8,
        frames_offset,
        functions,
        max_frame,
        abort_reserve,
        SectionInfo {
            tool: tool.to_string(),
            fork_imports,
        },
    )
    .encode()
}
