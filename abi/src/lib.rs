//! `forkify-abi`: the contract between a module instrumented by `cargo
//! forkify` and the host that forks it, as code. The normative text is
//! `ABI.md` in this crate's directory (`abi/ABI.md` in the repository);
//! "ABI §N" in the sources means its section N.
//!
//! - [`layout`]: names, states, the control exports, and the offsets of the
//!   save buffer and of a frame header (ABI §2–§5);
//! - [`section`]: the `forkify.abi` custom section (ABI §7);
//! - [`mod@verify`]: checks that a module is an instrumented artifact of a given
//!   ABI version, without running it;
//! - [`describe`]: the ABI as JSON, as `abi/snapshot.json` pins it.
//!
//! This crate depends on neither the instrumenter nor any host; both depend
//! on it, so they read one definition.
//!
//! ```
//! use forkify_abi::{layout, section::AbiSection};
//! assert_eq!(layout::ABI_VERSION, 1);
//! assert_eq!(layout::frame::CALL_INDEX, 4);
//! // A module without the section is not instrumented.
//! let plain = [0, b'a', b's', b'm', 1, 0, 0, 0];
//! assert!(AbiSection::find(&plain).unwrap().is_none());
//! ```

#![deny(missing_docs)]

mod describe;
pub mod layout;
pub mod section;
pub mod verify;

pub use describe::describe;
pub use layout::*;
pub use section::{
    AbiSection, SectionError, SectionInfo, FLAG_ABORT_ON_OVERFLOW, SECTION_HEADER_SIZE,
    SECTION_MAGIC, SECTION_NAME,
};
pub use verify::{verify, verify_facts, ModuleFacts, Verified, VerifyError};
