//! Names, states and layouts of the fork ABI (ABI §2–§5): everything an
//! instrumenter and a host must agree on byte for byte. Offsets of the save
//! buffer and of a frame header live here and nowhere else; changing any of
//! them means bumping [`ABI_VERSION`] and `abi/snapshot.json`.

use serde::{Deserialize, Serialize};

/// The ABI version this crate describes.
pub const ABI_VERSION: u32 = 1;

/// The default fork import, `kernel.kernel_fork` (ABI §1, §9).
pub const DEFAULT_FORK_IMPORT: (&str, &str) = ("kernel", "kernel_fork");

/// Export: `(ptr) -> ()`, NORMAL -> UNWINDING.
pub const EXPORT_UNWIND_BEGIN: &str = "wpk_fork_unwind_begin";
/// Export: `() -> ()`, UNWINDING -> NORMAL.
pub const EXPORT_UNWIND_END: &str = "wpk_fork_unwind_end";
/// Export: `(ptr) -> ()`, NORMAL -> REWINDING.
pub const EXPORT_REWIND_BEGIN: &str = "wpk_fork_rewind_begin";
/// Export: `() -> ()`, REWINDING or ABORTING -> NORMAL.
pub const EXPORT_REWIND_END: &str = "wpk_fork_rewind_end";
/// Export: `() -> i32`, the state.
pub const EXPORT_STATE: &str = "wpk_fork_state";

/// Prefix that marks a module as already instrumented (ABI §1).
pub const EXPORT_PREFIX: &str = "wpk_fork_";
/// Prefix of Binaryen Asyncify's exports (refused, ABI §1).
pub const ASYNCIFY_PREFIX: &str = "asyncify_";

/// The five control exports with their parameter and result types, written
/// with `ptr` for the pointer-sized type (ABI §3).
pub const EXPORTS: [(&str, &[&str], &[&str]); 5] = [
    (EXPORT_UNWIND_BEGIN, &["ptr"], &[]),
    (EXPORT_UNWIND_END, &[], &[]),
    (EXPORT_REWIND_BEGIN, &["ptr"], &[]),
    (EXPORT_REWIND_END, &[], &[]),
    (EXPORT_STATE, &[], &["i32"]),
];

/// What a fork import returns in ABORTING for the reference kernel: -12,
/// ENOMEM (ABI §6, §9).
pub const ABORT_ERRNO: i32 = -12;

/// The states of the state global (ABI §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[repr(i32)]
pub enum State {
    /// Running normally.
    Normal = 0,
    /// Writing frames while returning to the host.
    Unwinding = 1,
    /// Replaying frames back to the fork call site.
    Rewinding = 2,
    /// A frame did not fit: replaying what was written, fork will fail.
    Aborting = 3,
}

impl State {
    /// The state for a raw value of the state global.
    pub fn from_i32(v: i32) -> Option<State> {
        Some(match v {
            0 => State::Normal,
            1 => State::Unwinding,
            2 => State::Rewinding,
            3 => State::Aborting,
            _ => return None,
        })
    }

    /// Replay code treats `state >= 2` alike (ABI §2): this is the bound.
    pub const REPLAY_MIN: i32 = State::Rewinding as i32;
}

/// The save buffer (ABI §4): offsets from `buf` for pointer width `p`.
pub mod buffer {
    /// Required alignment of `buf`.
    pub const ALIGN: u32 = 16;

    /// `cursor`: the next free byte while unwinding, the active frame while
    /// replaying.
    pub const fn cursor(_p: u32) -> u32 {
        0
    }

    /// `end`: one past the last usable byte, written by the host.
    pub const fn end(p: u32) -> u32 {
        p
    }

    /// Where the saved globals start.
    pub const fn globals(p: u32) -> u32 {
        2 * p
    }
}

/// The frame header (ABI §5): offsets from the start of a frame.
pub mod frame {
    /// `func_ordinal` (u32).
    pub const ORDINAL: u32 = 0;
    /// `call_index` (u32).
    pub const CALL_INDEX: u32 = 4;
    /// `catch_region_id` (u32), 0 in version 1.
    pub const CATCH_REGION: u32 = 8;
    /// `exn_slot` (u32), 0 in version 1.
    pub const EXN_SLOT: u32 = 12;
    /// Size of the header; saved values start here.
    pub const HEADER_SIZE: u32 = 16;
    /// Frames start 8-aligned and their sizes are multiples of 8.
    pub const ALIGN: u32 = 8;
}

/// Size of a frame header, [`frame::HEADER_SIZE`].
pub const FRAME_HEADER_SIZE: u32 = frame::HEADER_SIZE;

/// Rounds `n` up to a multiple of 8.
pub fn align8(n: u32) -> u32 {
    n.div_ceil(8) * 8
}

/// The alignment the ABI gives a value of `size` bytes: the smaller of its
/// size and 8 (ABI §4).
pub fn value_align(size: u32) -> u32 {
    size.min(8)
}
