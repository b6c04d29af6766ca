//! The ABI described as JSON: what `cargo forkify abi` prints and what
//! `abi/snapshot.json` pins. Built from the constants of [`crate::layout`]
//! and [`crate::section`], so the snapshot test catches any change to them.

use serde_json::{json, Value};

use crate::layout::{buffer, frame, State, ABI_VERSION, ABORT_ERRNO, DEFAULT_FORK_IMPORT, EXPORTS};
use crate::section::{at, SECTION_NAME};

/// The ABI as a JSON document (see `abi/snapshot.json`).
pub fn describe() -> Value {
    let exports: Vec<_> = EXPORTS
        .iter()
        .map(
            |(name, params, results)| json!({ "name": name, "params": params, "results": results }),
        )
        .collect();
    // Offsets of the buffer are multiples of P; written symbolically.
    let p_offset = |f: fn(u32) -> u32| match f(1) {
        0 => "0".to_string(),
        1 => "P".to_string(),
        n => format!("{n}P"),
    };
    json!({
        "abi_version": ABI_VERSION,
        "pointer": { "wasm32": { "width": 4, "type": "i32" }, "wasm64": { "width": 8, "type": "i64" } },
        "fork_import_default": format!("{}.{}", DEFAULT_FORK_IMPORT.0, DEFAULT_FORK_IMPORT.1),
        "globals": [
            { "name": "state", "type": "i32", "exported": false },
            { "name": "buf", "type": "ptr", "exported": false }
        ],
        "states": {
            "NORMAL": State::Normal as i32,
            "UNWINDING": State::Unwinding as i32,
            "REWINDING": State::Rewinding as i32,
            "ABORTING": State::Aborting as i32,
        },
        "replay_test": format!("state >= {}", State::REPLAY_MIN),
        "exports": exports,
        "buffer": {
            "alignment": buffer::ALIGN,
            "fields": [
                { "offset": p_offset(buffer::cursor), "size": "P", "name": "cursor" },
                { "offset": p_offset(buffer::end), "size": "P", "name": "end", "written_by": "host" },
                { "offset": p_offset(buffer::globals), "size": "N", "name": "saved_globals", "order": "global index", "which": "defined mutable i32/i64/f32/f64/v128 globals, minus the instrumenter's own" }
            ],
            "frames_offset": "align8(2P + N)",
            "value_alignment": "min(size, 8)"
        },
        "frame": {
            "alignment": frame::ALIGN,
            "size_multiple": frame::ALIGN,
            "header_size": frame::HEADER_SIZE,
            "fields": [
                { "offset": frame::ORDINAL, "size": 4, "name": "func_ordinal" },
                { "offset": frame::CALL_INDEX, "size": 4, "name": "call_index" },
                { "offset": frame::CATCH_REGION, "size": 4, "name": "catch_region_id" },
                { "offset": frame::EXN_SLOT, "size": 4, "name": "exn_slot" },
                { "offset": frame::HEADER_SIZE, "size": "…", "name": "saved_values", "order": "carryovers bottom first, then live locals" }
            ]
        },
        "section": {
            "name": SECTION_NAME,
            "fields": [
                { "offset": at::MAGIC, "size": 4, "name": "magic", "value": "FKAB" },
                { "offset": at::VERSION, "size": 4, "name": "abi_version" },
                { "offset": at::POINTER_WIDTH, "size": 1, "name": "pointer_width" },
                { "offset": at::FLAGS, "size": 1, "name": "flags", "bits": { "0": "abort_on_overflow (always set)" } },
                { "offset": at::FRAME_HEADER_SIZE, "size": 2, "name": "frame_header_size", "value": frame::HEADER_SIZE },
                { "offset": at::FRAMES_OFFSET, "size": 4, "name": "frames_offset" },
                { "offset": at::FUNCTIONS, "size": 4, "name": "instrumented_functions" },
                { "offset": at::MAX_FRAME, "size": 4, "name": "max_frame_size" },
                { "offset": at::ABORT_RESERVE, "size": 4, "name": "abort_reserve" },
                { "offset": at::JSON, "size": "…", "name": "json", "required_keys": ["tool", "fork_imports"] }
            ]
        },
        "abort_errno": ABORT_ERRNO
    })
}
