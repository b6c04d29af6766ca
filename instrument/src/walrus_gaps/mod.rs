//! What walrus 0.28 does not give the transform, worked around in one
//! place so the stages above read as if it did:
//!
//! - `operand_types`: walrus has no operand types; the validator's are
//!   recorded by instruction offset (walrus keeps the offset as each
//!   instruction's `InstrLocId`);
//! - `dead_code`: walrus keeps unreachable code after tail calls;
//! - `function_order`: walrus emits functions largest first, so in its
//!   whole-module output the function indices (and hence the ordinals) are
//!   not the input's;
//! - `splice`: walrus re-encodes every function it emits, but functions off
//!   the fork path must keep their exact bytes (ABI §1), so the output is
//!   built from the input's sections around walrus's rewritten bodies;
//! - `slim`: walrus builds IR for every function it parses, so it is given
//!   the input with the bodies off the fork path stubbed out;
//! - `provisional`: walrus adds locals and types only through `&mut`
//!   arenas, so parallel stages hand out ids for them first;
//! - `parse`: the walrus configuration the transform needs.

pub mod dead_code;
pub mod function_order;
pub mod operand_types;
pub mod provisional;
pub mod slim;
pub mod splice;

use crate::{Error, Result, Stage};
use walrus::{Module, ModuleConfig};

/// Parses a module that preflight validated (names, producers and DWARF
/// kept). walrus refusing it is a gap preflight should have caught: a bug.
pub fn parse(wasm: &[u8]) -> Result<Module> {
    parse_with(wasm, ModuleConfig::new())
}

/// Parses a slim module ([`slim::build`]), its instructions carrying the
/// input's offsets.
pub fn parse_slim(slim: slim::Slim) -> Result<Module> {
    let (bytes, to_input) = slim.into_parts();
    let mut cfg = ModuleConfig::new();
    cfg.on_instr_loc(move |pos| walrus::InstrLocId::new(to_input(pos) as u32));
    parse_with(&bytes, cfg)
}

fn parse_with(wasm: &[u8], mut cfg: ModuleConfig) -> Result<Module> {
    cfg.generate_name_section(true)
        .generate_producers_section(true)
        .generate_dwarf(true);
    cfg.parse(wasm).map_err(|e| {
        Error::internal(
            Stage::Parse,
            format!("walrus cannot read a valid module: {e:#}"),
        )
    })
}
