//! Where walrus's whole-module output puts each function: imports keep
//! their order, local functions are emitted largest first (by instruction
//! count, then id). Only the DWARF path uses walrus's output as it is, and
//! there the ordinals follow these indices (ABI §5: ordinals are in
//! function-index order of the module the host runs).

use std::collections::BTreeMap;

use walrus::{FunctionId, FunctionKind, Module};

/// The index each function will have when `module` is emitted by walrus.
pub fn output_indices(module: &Module) -> BTreeMap<FunctionId, u32> {
    let imports: Vec<FunctionId> = module
        .funcs
        .iter()
        .filter(|f| matches!(f.kind, FunctionKind::Import(_)))
        .map(|f| f.id())
        .collect();
    let mut locals: Vec<(std::cmp::Reverse<u64>, FunctionId)> = module
        .funcs
        .iter_local()
        .map(|(id, f)| (std::cmp::Reverse(f.size()), id))
        .collect();
    locals.sort();
    imports
        .into_iter()
        .chain(locals.into_iter().map(|(_, id)| id))
        .enumerate()
        .map(|(i, id)| (id, i as u32))
        .collect()
}
