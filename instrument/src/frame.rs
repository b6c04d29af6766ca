//! The frame layout (ABI §4, §5) as the instrumenter computes it: where the
//! header fields, the carryovers and the saved locals of a frame go, how
//! big a frame is, and where the saved globals sit in the buffer. Every
//! other module takes offsets from here; the numbers themselves come from
//! [`forkify_abi::layout`], the one definition hosts read too.

use forkify_abi::layout::{align8, buffer, frame, value_align};
use walrus::ValType;

/// `func_ordinal`, from the start of a frame.
pub const ORDINAL: u32 = frame::ORDINAL;
/// `call_index`, from the start of a frame.
pub const CALL_INDEX: u32 = frame::CALL_INDEX;
/// The header words version 1 always writes as zero.
pub const ZERO_WORDS: [u32; 2] = [frame::CATCH_REGION, frame::EXN_SLOT];
/// Size of the header: saved values start here.
pub const HEADER: u32 = frame::HEADER_SIZE;

/// `cursor`, from `buf`.
pub fn cursor_offset(p: u32) -> u32 {
    buffer::cursor(p)
}

/// `end`, from `buf`.
pub fn end_offset(p: u32) -> u32 {
    buffer::end(p)
}

/// Size in bytes of a numeric or vector value in a frame (references are
/// never saved in version 1: 0).
pub fn size_of(t: ValType) -> u32 {
    match t {
        ValType::I32 | ValType::F32 => 4,
        ValType::I64 | ValType::F64 => 8,
        ValType::V128 => 16,
        ValType::Ref(_) => 0,
    }
}

/// The alignment of a value of type `t` (ABI §4).
pub fn align_of(t: ValType) -> u32 {
    value_align(size_of(t)).max(1)
}

/// Lays values out one after another from `start`, each aligned to
/// min(size, 8) (ABI §4). Returns each offset and the end.
pub fn layout(types: &[ValType], start: u32) -> (Vec<u32>, u32) {
    let mut off = start;
    let mut out = Vec::with_capacity(types.len());
    for t in types {
        let a = align_of(*t);
        off = off.div_ceil(a) * a;
        out.push(off);
        off += size_of(*t);
    }
    (out, off)
}

/// Offsets of a call site's carryovers (right after the header) and where
/// they end.
pub fn carryovers(types: &[ValType]) -> (Vec<u32>, u32) {
    layout(types, HEADER)
}

/// Offsets of the saved locals, after the carryovers that end at `carry_end`.
pub fn saved_locals(types: &[ValType], carry_end: u32) -> (Vec<u32>, u32) {
    layout(types, carry_end)
}

/// The size of a frame whose contents end at `end`: a multiple of 8.
pub fn frame_size(end: u32) -> u32 {
    align8(end.max(HEADER))
}

/// The offsets of the saved globals from `buf` (after `cursor` and `end`)
/// and `frames_offset`, for globals of `types` in global-index order.
pub fn globals(types: &[ValType], p: u32) -> (Vec<u32>, u32) {
    let (offs, end) = layout(types, buffer::globals(p));
    (offs, align8(end))
}

/// `abort_reserve` (ABI §7) for a module whose largest frame is
/// `max_frame`: an aborting activation writes its whole frame into the
/// reserve before it re-enters itself (ABI §6), so the reserve holds the
/// largest frame (a multiple of 8, at least a header).
pub fn abort_reserve(max_frame: u32) -> u32 {
    align8(max_frame.max(HEADER))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_aligned_to_min_size_8() {
        let (offs, end) = carryovers(&[ValType::I32, ValType::I64, ValType::V128, ValType::F32]);
        assert_eq!(offs, vec![16, 24, 32, 48]);
        assert_eq!(end, 52);
        assert_eq!(frame_size(end), 56);
        let (g, frames) = globals(&[ValType::I32], 8);
        assert_eq!((g, frames), (vec![16], 24));
    }
}
