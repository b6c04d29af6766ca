//! Block types a rewrite asks for before they exist, so functions can be
//! rewritten in parallel against read-only module types.
//!
//! A multi-value block type gets a provisional id in walrus's types arena
//! (`walrus_gaps::provisional`); [`NewTypes::declare`], called function by function in plan
//! order, adds the real types in the order the rewrite asked for them
//! (walrus's `ModuleTypes::add` reuses an equal type), which is the order a
//! one-by-one rewrite would have added them in, so every type gets the same
//! id, and puts the ids into the function's blocks.

use walrus::ir::InstrSeqType;
use walrus::{LocalFunction, ModuleTypes, TypeId, ValType};

use crate::walrus_gaps::provisional;

/// One function's provisional block types, in the order asked for.
#[derive(Debug)]
pub struct NewTypes {
    arena: u32,
    wanted: Vec<(Vec<ValType>, Vec<ValType>)>,
}

impl NewTypes {
    /// None yet, in the arena of `any` (a type of the module).
    pub fn new(any: TypeId) -> NewTypes {
        NewTypes {
            arena: provisional::arena(any),
            wanted: Vec::new(),
        }
    }

    /// The block type of `params -> results` (as `InstrSeqType::new`).
    pub fn seq_type(&mut self, params: &[ValType], results: &[ValType]) -> InstrSeqType {
        match (params, results) {
            ([], []) => InstrSeqType::Simple(None),
            ([], [t]) => InstrSeqType::Simple(Some(*t)),
            _ => {
                self.wanted.push((params.to_vec(), results.to_vec()));
                InstrSeqType::MultiValue(provisional::id(self.arena, self.wanted.len() - 1))
            }
        }
    }

    /// Adds the real types to `types` and puts them into `func`'s blocks.
    pub fn declare(self, func: &mut LocalFunction, types: &mut ModuleTypes) {
        if self.wanted.is_empty() {
            return;
        }
        let real: Vec<TypeId> = self.wanted.iter().map(|(p, r)| types.add(p, r)).collect();
        for seq in crate::tree::all_seqs(func) {
            let block = func.block_mut(seq);
            if let InstrSeqType::MultiValue(id) = block.ty {
                if let Some(k) = provisional::which(id) {
                    block.ty = InstrSeqType::MultiValue(real[k]);
                }
            }
        }
    }
}
