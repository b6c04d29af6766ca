//! The fork ABI as data: names, states, layout constants and the
//! `forkify.abi` custom section (`shared/docs/ABI.md` is the normative text).
//!
//! Everything a host needs to agree on lives here so that the instrumenter,
//! the reference host and the checked-in snapshot (`abi/snapshot.json`) read
//! one definition. Changing anything here means bumping [`ABI_VERSION`].

use serde::{Deserialize, Serialize};

/// The ABI version this crate emits and understands.
pub const ABI_VERSION: u32 = 1;

/// Name of the custom section every instrumented module carries.
pub const SECTION_NAME: &str = "forkify.abi";

/// Magic bytes at the start of the section.
pub const SECTION_MAGIC: [u8; 4] = *b"FKAB";

/// Size of the fixed binary header of the section, before its JSON.
pub const SECTION_HEADER_SIZE: usize = 28;

/// Flag bit 0: abort on overflow (always set in version 1).
pub const FLAG_ABORT_ON_OVERFLOW: u8 = 1;

/// Size of a frame header (`func_ordinal`, `call_index`, `catch_region_id`, `exn_slot`).
pub const FRAME_HEADER_SIZE: u32 = 16;

/// The default fork import.
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

/// Prefix that marks a module as already instrumented.
pub const EXPORT_PREFIX: &str = "wpk_fork_";
/// Prefix of Binaryen Asyncify's exports.
pub const ASYNCIFY_PREFIX: &str = "asyncify_";

/// The states of the state global.
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
}

/// The five control exports with their parameter and result types, written
/// with `ptr` for the pointer-sized type.
pub const EXPORTS: [(&str, &[&str], &[&str]); 5] = [
    (EXPORT_UNWIND_BEGIN, &["ptr"], &[]),
    (EXPORT_UNWIND_END, &[], &[]),
    (EXPORT_REWIND_BEGIN, &["ptr"], &[]),
    (EXPORT_REWIND_END, &[], &[]),
    (EXPORT_STATE, &[], &["i32"]),
];

/// Rounds `n` up to a multiple of 8.
pub fn align8(n: u32) -> u32 {
    n.div_ceil(8) * 8
}

/// The alignment the ABI gives a value of `size` bytes: the smaller of its
/// size and 8.
pub fn value_align(size: u32) -> u32 {
    size.min(8)
}

/// The JSON part of the `forkify.abi` section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SectionInfo {
    /// Name and version of the tool that wrote the module.
    pub tool: String,
    /// The fork imports, as `"module.name"`.
    pub fork_imports: Vec<String>,
}

/// The decoded `forkify.abi` custom section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AbiSection {
    /// ABI version.
    pub version: u32,
    /// Pointer width: 4 or 8.
    pub pointer_width: u8,
    /// Flags; bit 0 is abort on overflow.
    pub flags: u8,
    /// Frame header size, 16.
    pub frame_header_size: u16,
    /// Offset of the first frame from the buffer start.
    pub frames_offset: u32,
    /// Number of instrumented functions.
    pub instrumented_functions: u32,
    /// Largest frame in bytes.
    pub max_frame_size: u32,
    /// Bytes every frame write leaves free for an abort record.
    pub abort_reserve: u32,
    /// Tool and fork imports.
    pub info: SectionInfo,
}

/// Why a `forkify.abi` section could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SectionError {
    /// Shorter than the fixed header.
    #[error("section is {0} bytes, shorter than its {SECTION_HEADER_SIZE}-byte header")]
    TooShort(usize),
    /// The magic is not `FKAB`.
    #[error("bad magic {0:02x?}, expected \"FKAB\"")]
    BadMagic([u8; 4]),
    /// The pointer width is neither 4 nor 8.
    #[error("pointer width {0} is neither 4 nor 8")]
    BadPointerWidth(u8),
    /// The JSON tail does not parse.
    #[error("section JSON is invalid: {0}")]
    BadJson(String),
}

impl AbiSection {
    /// Encodes the section's payload.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(SECTION_HEADER_SIZE + 64);
        out.extend_from_slice(&SECTION_MAGIC);
        out.extend_from_slice(&self.version.to_le_bytes());
        out.push(self.pointer_width);
        out.push(self.flags);
        out.extend_from_slice(&self.frame_header_size.to_le_bytes());
        out.extend_from_slice(&self.frames_offset.to_le_bytes());
        out.extend_from_slice(&self.instrumented_functions.to_le_bytes());
        out.extend_from_slice(&self.max_frame_size.to_le_bytes());
        out.extend_from_slice(&self.abort_reserve.to_le_bytes());
        // Serializing a struct of strings cannot fail.
        out.extend_from_slice(
            serde_json::to_string(&self.info)
                .unwrap_or_default()
                .as_bytes(),
        );
        out
    }

    /// Decodes a section payload. The version is returned as found: callers
    /// decide which versions they support.
    pub fn parse(data: &[u8]) -> Result<AbiSection, SectionError> {
        if data.len() < SECTION_HEADER_SIZE {
            return Err(SectionError::TooShort(data.len()));
        }
        let u32_at =
            |o: usize| u32::from_le_bytes([data[o], data[o + 1], data[o + 2], data[o + 3]]);
        let magic = [data[0], data[1], data[2], data[3]];
        if magic != SECTION_MAGIC {
            return Err(SectionError::BadMagic(magic));
        }
        let pointer_width = data[8];
        if pointer_width != 4 && pointer_width != 8 {
            return Err(SectionError::BadPointerWidth(pointer_width));
        }
        let info: SectionInfo = serde_json::from_slice(&data[SECTION_HEADER_SIZE..])
            .map_err(|e| SectionError::BadJson(e.to_string()))?;
        Ok(AbiSection {
            version: u32_at(4),
            pointer_width,
            flags: data[9],
            frame_header_size: u16::from_le_bytes([data[10], data[11]]),
            frames_offset: u32_at(12),
            instrumented_functions: u32_at(16),
            max_frame_size: u32_at(20),
            abort_reserve: u32_at(24),
            info,
        })
    }

    /// Finds and decodes the `forkify.abi` section of a module. `Ok(None)`
    /// when there is none; an error when there are several or one is bad.
    pub fn find(wasm: &[u8]) -> Result<Option<AbiSection>, String> {
        let mut found = None;
        for payload in wasmparser::Parser::new(0).parse_all(wasm) {
            let payload = payload.map_err(|e| format!("not a valid wasm module: {e}"))?;
            if let wasmparser::Payload::CustomSection(c) = payload {
                if c.name() == SECTION_NAME {
                    if found.is_some() {
                        return Err(format!("more than one `{SECTION_NAME}` section"));
                    }
                    found = Some(
                        AbiSection::parse(c.data())
                            .map_err(|e| format!("bad `{SECTION_NAME}` section: {e}"))?,
                    );
                }
            }
        }
        Ok(found)
    }
}

/// The ABI described as JSON: what `cargo forkify abi` prints and what
/// `abi/snapshot.json` pins.
pub fn describe() -> serde_json::Value {
    let exports: Vec<_> = EXPORTS
        .iter()
        .map(|(name, params, results)| {
            serde_json::json!({ "name": name, "params": params, "results": results })
        })
        .collect();
    serde_json::json!({
        "abi_version": ABI_VERSION,
        "pointer": { "wasm32": { "width": 4, "type": "i32" }, "wasm64": { "width": 8, "type": "i64" } },
        "fork_import_default": format!("{}.{}", DEFAULT_FORK_IMPORT.0, DEFAULT_FORK_IMPORT.1),
        "globals": [
            { "name": "state", "type": "i32", "exported": false },
            { "name": "buf", "type": "ptr", "exported": false }
        ],
        "states": { "NORMAL": 0, "UNWINDING": 1, "REWINDING": 2, "ABORTING": 3 },
        "replay_test": "state >= 2",
        "exports": exports,
        "buffer": {
            "alignment": 16,
            "fields": [
                { "offset": "0", "size": "P", "name": "cursor" },
                { "offset": "P", "size": "P", "name": "end", "written_by": "host" },
                { "offset": "2P", "size": "N", "name": "saved_globals", "order": "global index", "which": "defined mutable i32/i64/f32/f64/v128 globals, minus the instrumenter's own" }
            ],
            "frames_offset": "align8(2P + N)",
            "value_alignment": "min(size, 8)"
        },
        "frame": {
            "alignment": 8,
            "size_multiple": 8,
            "header_size": FRAME_HEADER_SIZE,
            "fields": [
                { "offset": 0, "size": 4, "name": "func_ordinal" },
                { "offset": 4, "size": 4, "name": "call_index" },
                { "offset": 8, "size": 4, "name": "catch_region_id" },
                { "offset": 12, "size": 4, "name": "exn_slot" },
                { "offset": 16, "size": "…", "name": "saved_values", "order": "carryovers bottom first, then live locals" }
            ]
        },
        "section": {
            "name": SECTION_NAME,
            "fields": [
                { "offset": 0, "size": 4, "name": "magic", "value": "FKAB" },
                { "offset": 4, "size": 4, "name": "abi_version" },
                { "offset": 8, "size": 1, "name": "pointer_width" },
                { "offset": 9, "size": 1, "name": "flags", "bits": { "0": "abort_on_overflow (always set)" } },
                { "offset": 10, "size": 2, "name": "frame_header_size", "value": FRAME_HEADER_SIZE },
                { "offset": 12, "size": 4, "name": "frames_offset" },
                { "offset": 16, "size": 4, "name": "instrumented_functions" },
                { "offset": 20, "size": 4, "name": "max_frame_size" },
                { "offset": 24, "size": 4, "name": "abort_reserve" },
                { "offset": 28, "size": "…", "name": "json", "required_keys": ["tool", "fork_imports"] }
            ]
        },
        "abort_errno": -12
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn section_round_trips() {
        let s = AbiSection {
            version: ABI_VERSION,
            pointer_width: 8,
            flags: FLAG_ABORT_ON_OVERFLOW,
            frame_header_size: 16,
            frames_offset: 40,
            instrumented_functions: 3,
            max_frame_size: 64,
            abort_reserve: 24,
            info: SectionInfo {
                tool: "cargo-forkify 0.1.0".into(),
                fork_imports: vec!["kernel.kernel_fork".into()],
            },
        };
        let bytes = s.encode();
        assert_eq!(&bytes[..4], b"FKAB");
        assert_eq!(bytes[8], 8);
        assert_eq!(AbiSection::parse(&bytes).unwrap(), s);
        assert!(matches!(
            AbiSection::parse(&bytes[..10]),
            Err(SectionError::TooShort(10))
        ));
    }
}
