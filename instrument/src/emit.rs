//! Writes the output module and validates it. When the input allows it,
//! the output is the input's own sections around the rewritten functions
//! (ABI §1: other functions keep their exact bytes and indices, see
//! `walrus_gaps::splice`). Otherwise (DWARF, which walrus rewrites for its
//! own code layout, or type sections the splice does not map) it is
//! walrus's whole-module output, where functions are ordered by size, so
//! the ordinals are renumbered to follow that order first.

use std::collections::BTreeMap;

use walrus::{FunctionId, FunctionKind, Module};

use crate::analysis::index::FunctionIndex;
use crate::runtime::Runtime;
use crate::walrus_gaps::{function_order, splice};
use crate::{preflight, Error, Result, Stage};

/// Per instrumented function: its index in the output and its ordinal.
pub type Placement = BTreeMap<FunctionId, (u32, u32)>;

/// What emission produced: the bytes, where each function went, and the
/// ABI check of the bytes from their one validation.
pub struct Emitted {
    /// The output module.
    pub bytes: Vec<u8>,
    /// Where each instrumented function went.
    pub placement: Placement,
    /// The output's fork ABI check.
    pub verified: forkify_abi::Verified,
}

/// Emits `module` (rewritten, with its runtime; dropped as soon as its bytes
/// are out, before the splice and the validation), spliced into the input
/// when one is given (the caller asked `splice::applies`). `plans` are the
/// instrumented functions with their ordinals. `progress` is told when
/// emission gives way to validation.
pub fn emit(
    mut module: Module,
    splice_into: Option<&[u8]>,
    index: &FunctionIndex,
    plans: &[(FunctionId, u32)],
    twins: &[(FunctionId, FunctionId)],
    rt: &Runtime,
    progress: &dyn Fn(Stage),
) -> Result<Emitted> {
    if let Some(wasm) = splice_into {
        let spliced = spliced(module, wasm, index, plans)?;
        progress(Stage::Validate);
        let verified = verified(&spliced)?;
        let placement = plans
            .iter()
            .map(|(id, ordinal)| (*id, (index.of(*id), *ordinal)))
            .collect();
        return Ok(Emitted {
            bytes: spliced,
            placement,
            verified,
        });
    }
    let placement = renumber_for_walrus_order(&mut module, plans, twins, rt)?;
    let emitted = module.emit_wasm();
    drop(module);
    progress(Stage::Validate);
    let verified = verified(&emitted).inspect_err(|_| {
        // Developer aid: keep the module that failed validation.
        if let Some(path) = std::env::var_os("FORKIFY_DUMP_INVALID") {
            let _ = std::fs::write(path, &emitted);
        }
    })?;
    Ok(Emitted {
        bytes: emitted,
        placement,
        verified,
    })
}

/// walrus's output, with walrus's own record of which function went where
/// (a [`splice::Placement`] section), spliced into the input's bytes.
fn spliced(
    mut module: Module,
    wasm: &[u8],
    index: &FunctionIndex,
    plans: &[(FunctionId, u32)],
) -> Result<Vec<u8>> {
    let base = index.len() as u32;
    let mut old: Vec<(u32, FunctionId)> = Vec::new();
    let mut new: Vec<FunctionId> = Vec::new();
    for (id, _) in module.funcs.iter_local() {
        if index.contains(id) {
            old.push((index.of(id), id));
        } else {
            new.push(id);
        }
    }
    old.sort();
    let mut map = splice::SpliceMap {
        rewritten: plans.iter().map(|(id, _)| index.of(*id)).collect(),
        ..Default::default()
    };
    let mut record = splice::Placement::default();
    let all = old
        .iter()
        .map(|(i, id)| (*i, *id))
        .chain(new.iter().enumerate().map(|(k, id)| (base + k as u32, *id)));
    for (final_idx, id) in all {
        if final_idx >= base {
            let name = module.funcs.get(id).name.clone().unwrap_or_default();
            map.new_names.push((final_idx, name));
        }
        record.funcs.push(id);
        map.final_index.push(final_idx);
    }
    module.customs.add(record);
    let emitted = module.emit_wasm();
    drop(module);
    splice::splice(wasm, &emitted, &map).ok_or_else(|| {
        Error::internal(
            Stage::Emit,
            "the rewritten functions could not be spliced into the input",
        )
    })
}

/// Gives the instrumented functions ordinals in walrus's output order and
/// rewrites the ordinals their code carries (instruction counts, hence that
/// order, do not change); a replay twin carries its function's.
fn renumber_for_walrus_order(
    module: &mut Module,
    plans: &[(FunctionId, u32)],
    twins: &[(FunctionId, FunctionId)],
    rt: &Runtime,
) -> Result<Placement> {
    let out_index = function_order::output_indices(module);
    let mut ours: Vec<(u32, FunctionId)> = plans
        .iter()
        .map(|(id, _)| (out_index.get(id).copied().unwrap_or(u32::MAX), *id))
        .collect();
    ours.sort();
    let mut placement = BTreeMap::new();
    for (ordinal, (index, id)) in ours.into_iter().enumerate() {
        let ordinal = ordinal as u32;
        placement.insert(id, (index, ordinal));
        if let FunctionKind::Local(f) = &mut module.funcs.get_mut(id).kind {
            crate::rewrite::renumber(f, rt, ordinal)?;
        }
    }
    for (id, twin) in twins {
        let ordinal = placement[id].1;
        if let FunctionKind::Local(f) = &mut module.funcs.get_mut(*twin).kind {
            crate::rewrite::renumber(f, rt, ordinal)?;
        }
    }
    Ok(placement)
}

/// Validates an output with the features inputs may use.
/// Validates an output (with the features the input was accepted with) and
/// gathers, in the same pass, what the fork ABI check needs.
pub fn facts(bytes: &[u8]) -> Result<forkify_abi::ModuleFacts> {
    forkify_abi::ModuleFacts::read_with_features(bytes, preflight::features()).map_err(|e| {
        Error::internal(
            Stage::Validate,
            format!("the instrumented module does not validate: {e}"),
        )
    })
}

/// The fork ABI check of an output (ABI §7), from its validation pass: an
/// output that fails it is a bug.
fn verified(bytes: &[u8]) -> Result<forkify_abi::Verified> {
    let facts = facts(bytes)?;
    forkify_abi::verify_facts(&facts, forkify_abi::ABI_VERSION).map_err(|e| {
        Error::internal(
            Stage::Validate,
            format!(
                "the instrumented module fails the fork ABI {} check: {e}",
                forkify_abi::ABI_VERSION
            ),
        )
    })
}
