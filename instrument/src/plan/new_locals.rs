//! Spill locals that a plan declares before they exist, so functions can be
//! planned in parallel against a read-only module.
//!
//! A planner gets provisional ids in walrus's locals arena
//! (`walrus_gaps::provisional`: they sort after the function's own locals,
//! as locals added later do; frame layouts order saved locals by id). Once all functions are planned,
//! [`NewLocals::declare`] adds the real locals, function by function in plan
//! order and in the order each planner asked for them, which gives every
//! local the id a one-by-one planning would have given it, and puts those
//! ids into the plan.

use walrus::{LocalId, ModuleLocals, ValType};

use super::FuncPlan;
use crate::walrus_gaps::provisional;

/// One function's provisional locals, in the order they were asked for.
#[derive(Debug)]
pub struct NewLocals {
    arena: u32,
    types: Vec<ValType>,
}

impl NewLocals {
    /// The id of `locals`' arena. An arena is known by its locals: an
    /// empty one gets an `i32` local that nothing uses (walrus does not
    /// emit it).
    pub fn arena_of(locals: &mut ModuleLocals) -> u32 {
        let first = locals.iter().next().map(|l| l.id());
        let any = first.unwrap_or_else(|| locals.add(ValType::I32));
        provisional::arena(any)
    }

    /// No provisional locals yet, in the arena `arena`.
    pub fn new(arena: u32) -> NewLocals {
        NewLocals {
            arena,
            types: Vec::new(),
        }
    }

    /// How many there are.
    pub fn len(&self) -> u32 {
        self.types.len() as u32
    }

    /// A new provisional local of type `ty`.
    pub fn add(&mut self, ty: ValType) -> LocalId {
        self.types.push(ty);
        provisional::id(self.arena, self.types.len() - 1)
    }

    /// The type of `l`, when it is provisional.
    pub fn ty(&self, l: LocalId) -> Option<ValType> {
        provisional::which(l).and_then(|k| self.types.get(k).copied())
    }

    /// Adds the real locals to `locals` and puts them into `plan`.
    pub fn declare(self, plan: &mut FuncPlan, locals: &mut ModuleLocals) {
        if self.types.is_empty() {
            return;
        }
        let real: Vec<LocalId> = self.types.iter().map(|t| locals.add(*t)).collect();
        let map = |l: &mut LocalId| {
            if let Some(k) = provisional::which(*l) {
                *l = real[k];
            }
        };
        for s in &mut plan.sites {
            s.spills.iter_mut().for_each(|(l, _)| map(l));
            s.saved.iter_mut().for_each(|(l, _, _)| map(l));
        }
    }
}
