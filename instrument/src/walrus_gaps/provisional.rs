//! Ids in a walrus arena for items that do not exist yet: walrus adds
//! locals and types only through `&mut` arenas, so stages that run per
//! function in parallel hand out these ids and the items are added (and
//! the ids replaced) afterwards, in an order that does not depend on the
//! threads (`plan/new_locals.rs`, `rewrite/new_types.rs`).
//!
//! A provisional id has the arena's own arena id and an index past any
//! real item, so it compares like an item added later: after every
//! existing one, and in the order it was handed out.

use id_arena::{ArenaBehavior, DefaultArenaBehavior, Id};

/// Index of the first provisional id: past any real arena.
const BASE: usize = usize::MAX / 2;

/// The arena id of the arena that `any` is from.
pub fn arena<T>(any: Id<T>) -> u32 {
    DefaultArenaBehavior::<T>::arena_id(any)
}

/// The `k`-th provisional id of the arena `arena`.
pub fn id<T>(arena: u32, k: usize) -> Id<T> {
    DefaultArenaBehavior::<T>::new_id(arena, BASE + k)
}

/// `k` when `id` is the `k`-th provisional id, `None` for a real one.
pub fn which<T>(id: Id<T>) -> Option<usize> {
    id.index().checked_sub(BASE)
}
