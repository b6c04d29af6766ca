//! The `forkify.abi` custom section (ABI §7): its fixed 28-byte header and
//! JSON tail, encoded and decoded. Reading a section never decides which
//! versions are acceptable; callers do ([`crate::verify()`]).

use serde::{Deserialize, Serialize};

use crate::layout::FRAME_HEADER_SIZE;

/// Name of the custom section every instrumented module carries.
pub const SECTION_NAME: &str = "forkify.abi";

/// Magic bytes at the start of the section.
pub const SECTION_MAGIC: [u8; 4] = *b"FKAB";

/// Size of the fixed binary header of the section, before its JSON.
pub const SECTION_HEADER_SIZE: usize = 28;

/// Flag bit 0: abort on overflow (always set in version 1).
pub const FLAG_ABORT_ON_OVERFLOW: u8 = 1;

/// Offsets of the header's fields in the section's payload.
pub mod at {
    /// `FKAB`, 4 bytes.
    pub const MAGIC: usize = 0;
    /// ABI version, u32.
    pub const VERSION: usize = 4;
    /// Pointer width, u8.
    pub const POINTER_WIDTH: usize = 8;
    /// Flags, u8.
    pub const FLAGS: usize = 9;
    /// Frame header size, u16.
    pub const FRAME_HEADER_SIZE: usize = 10;
    /// `frames_offset`, u32.
    pub const FRAMES_OFFSET: usize = 12;
    /// Number of instrumented functions, u32.
    pub const FUNCTIONS: usize = 16;
    /// Largest frame, u32.
    pub const MAX_FRAME: usize = 20;
    /// `abort_reserve`, u32.
    pub const ABORT_RESERVE: usize = 24;
    /// The JSON tail.
    pub const JSON: usize = super::SECTION_HEADER_SIZE;
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
    /// The module carries the section more than once.
    #[error("more than one `{SECTION_NAME}` section")]
    Duplicate,
    /// The module's bytes could not be parsed while looking for it.
    #[error("not a valid wasm module: {0}")]
    InvalidWasm(String),
}

impl AbiSection {
    /// The section of a version-1 module with these facts.
    pub fn new(
        pointer_width: u8,
        frames_offset: u32,
        instrumented_functions: u32,
        max_frame_size: u32,
        abort_reserve: u32,
        info: SectionInfo,
    ) -> AbiSection {
        AbiSection {
            version: crate::ABI_VERSION,
            pointer_width,
            flags: FLAG_ABORT_ON_OVERFLOW,
            frame_header_size: FRAME_HEADER_SIZE as u16,
            frames_offset,
            instrumented_functions,
            max_frame_size,
            abort_reserve,
            info,
        }
    }

    /// The smallest buffer a host may give the module (ABI §7).
    pub fn min_buffer(&self) -> u64 {
        u64::from(self.frames_offset) + u64::from(self.abort_reserve)
    }

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
        debug_assert_eq!(out.len(), SECTION_HEADER_SIZE);
        // A struct of strings always serializes.
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
        let m = at::MAGIC;
        let magic = [data[m], data[m + 1], data[m + 2], data[m + 3]];
        if magic != SECTION_MAGIC {
            return Err(SectionError::BadMagic(magic));
        }
        let pointer_width = data[at::POINTER_WIDTH];
        if pointer_width != 4 && pointer_width != 8 {
            return Err(SectionError::BadPointerWidth(pointer_width));
        }
        let info: SectionInfo = serde_json::from_slice(&data[at::JSON..])
            .map_err(|e| SectionError::BadJson(e.to_string()))?;
        Ok(AbiSection {
            version: u32_at(at::VERSION),
            pointer_width,
            flags: data[at::FLAGS],
            frame_header_size: u16::from_le_bytes([
                data[at::FRAME_HEADER_SIZE],
                data[at::FRAME_HEADER_SIZE + 1],
            ]),
            frames_offset: u32_at(at::FRAMES_OFFSET),
            instrumented_functions: u32_at(at::FUNCTIONS),
            max_frame_size: u32_at(at::MAX_FRAME),
            abort_reserve: u32_at(at::ABORT_RESERVE),
            info,
        })
    }

    /// Finds and decodes the `forkify.abi` section of a module. `Ok(None)`
    /// when there is none; an error when there are several or one is bad.
    pub fn find(wasm: &[u8]) -> Result<Option<AbiSection>, SectionError> {
        let mut found = None;
        for payload in wasmparser::Parser::new(0).parse_all(wasm) {
            let payload = payload.map_err(|e| SectionError::InvalidWasm(e.to_string()))?;
            if let wasmparser::Payload::CustomSection(c) = payload {
                if c.name() == SECTION_NAME {
                    if found.is_some() {
                        return Err(SectionError::Duplicate);
                    }
                    found = Some(AbiSection::parse(c.data())?);
                }
            }
        }
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn section_round_trips() {
        let s = AbiSection::new(
            8,
            40,
            3,
            64,
            24,
            SectionInfo {
                tool: "cargo-forkify 0.1.0".into(),
                fork_imports: vec!["kernel.kernel_fork".into()],
            },
        );
        let bytes = s.encode();
        assert_eq!(&bytes[..4], b"FKAB");
        assert_eq!(bytes[at::POINTER_WIDTH], 8);
        assert_eq!(AbiSection::parse(&bytes).unwrap(), s);
        assert!(matches!(
            AbiSection::parse(&bytes[..10]),
            Err(SectionError::TooShort(10))
        ));
        let mut bad = bytes.clone();
        bad[0] = b'X';
        assert!(matches!(
            AbiSection::parse(&bad),
            Err(SectionError::BadMagic(_))
        ));
    }
}
