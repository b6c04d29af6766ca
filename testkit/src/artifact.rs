//! What every instrumented output must be, checked in one place: a valid
//! module that passes the ABI verifier (section, pointer width, the five
//! control exports with their types) and exports nothing else under the
//! ABI's prefix.

use forkify_abi::{ABI_VERSION, EXPORTS, EXPORT_PREFIX};

/// Checks `out` as an instrumented artifact of this ABI; the error says
/// what is wrong.
pub fn check(out: &[u8]) -> Result<forkify_abi::Verified, String> {
    crate::wasm::validate(out).map_err(|e| format!("the output does not validate: {e}"))?;
    let verified = forkify_abi::verify(out, ABI_VERSION).map_err(|e| e.to_string())?;
    let mut ours = Vec::new();
    for payload in wasmparser::Parser::new(0).parse_all(out) {
        if let Ok(wasmparser::Payload::ExportSection(r)) = payload {
            for e in r.into_iter().flatten() {
                if e.name.starts_with(EXPORT_PREFIX) {
                    ours.push(e.name.to_string());
                }
            }
        }
    }
    ours.sort();
    let mut want: Vec<String> = EXPORTS.iter().map(|(n, _, _)| n.to_string()).collect();
    want.sort();
    if ours != want {
        return Err(format!(
            "the `{EXPORT_PREFIX}*` exports are {ours:?}, expected exactly {want:?}"
        ));
    }
    Ok(verified)
}
