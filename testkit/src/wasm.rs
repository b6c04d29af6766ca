//! Byte-level helpers on WebAssembly modules for tests: LEB128, sections,
//! custom sections (read, add, replace), function bodies by index, the
//! imports a module has, and validation with every feature on.

use std::collections::BTreeMap;

use forkify_instrument::ImportName;

/// Unsigned LEB128.
pub fn leb(mut n: u64) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return out;
        }
        out.push(byte | 0x80);
    }
}

/// `wasm` with a custom section `name` appended.
pub fn with_custom_section(mut wasm: Vec<u8>, name: &str, payload: &[u8]) -> Vec<u8> {
    let mut body = leb(name.len() as u64);
    body.extend_from_slice(name.as_bytes());
    body.extend_from_slice(payload);
    wasm.push(0);
    wasm.extend(leb(body.len() as u64));
    wasm.extend(body);
    wasm
}

/// `wasm` with the payload of every custom section `name` changed by `edit`.
pub fn edit_custom_section(wasm: &[u8], name: &str, edit: impl Fn(&mut Vec<u8>)) -> Vec<u8> {
    let mut module = wasm_encoder::Module::new();
    for payload in wasmparser::Parser::new(0).parse_all(wasm) {
        let payload = payload.expect("a valid module");
        if let Some((id, range)) = payload.as_section() {
            if let wasmparser::Payload::CustomSection(c) = &payload {
                if c.name() == name {
                    let mut data = c.data().to_vec();
                    edit(&mut data);
                    module.section(&wasm_encoder::CustomSection {
                        name: c.name().into(),
                        data: data.into(),
                    });
                    continue;
                }
            }
            module.section(&wasm_encoder::RawSection {
                id,
                data: &wasm[range],
            });
        }
    }
    module.finish()
}

/// The payloads of every custom section called `name`.
pub fn custom_sections(wasm: &[u8], name: &str) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for payload in wasmparser::Parser::new(0).parse_all(wasm) {
        if let Ok(wasmparser::Payload::CustomSection(c)) = payload {
            if c.name() == name {
                out.push(c.data().to_vec());
            }
        }
    }
    out
}

/// The bodies of the defined functions (locals and code), by function index.
pub fn function_bodies(wasm: &[u8]) -> BTreeMap<u32, &[u8]> {
    use wasmparser::{Payload, TypeRef};
    let mut out = BTreeMap::new();
    let mut next = 0u32;
    for payload in wasmparser::Parser::new(0).parse_all(wasm).flatten() {
        match payload {
            Payload::ImportSection(r) => {
                next += r
                    .into_imports()
                    .flatten()
                    .filter(|i| matches!(i.ty, TypeRef::Func(_) | TypeRef::FuncExact(_)))
                    .count() as u32;
            }
            Payload::CodeSectionEntry(b) => {
                out.insert(next, &wasm[b.range()]);
                next += 1;
            }
            _ => {}
        }
    }
    out
}

/// Function imports whose params and results are all i32/i64/f32/f64, with
/// their function indices.
pub fn numeric_func_imports(wasm: &[u8]) -> Vec<(u32, ImportName)> {
    use wasmparser::{CompositeInnerType, Payload, TypeRef, ValType};
    let mut func_types: Vec<Option<bool>> = Vec::new();
    let mut out = Vec::new();
    let mut func_index = 0u32;
    for payload in wasmparser::Parser::new(0).parse_all(wasm) {
        match payload {
            Ok(Payload::TypeSection(r)) => {
                for rg in r.into_iter().flatten() {
                    for st in rg.into_types() {
                        func_types.push(match &st.composite_type.inner {
                            CompositeInnerType::Func(f) => {
                                Some(f.params().iter().chain(f.results()).all(|t| {
                                    matches!(
                                        t,
                                        ValType::I32 | ValType::I64 | ValType::F32 | ValType::F64
                                    )
                                }))
                            }
                            _ => None,
                        });
                    }
                }
            }
            Ok(Payload::ImportSection(r)) => {
                for imp in r.into_imports().flatten() {
                    if let TypeRef::Func(t) = imp.ty {
                        if func_types.get(t as usize).copied().flatten() == Some(true) {
                            out.push((func_index, ImportName::new(imp.module, imp.name)));
                        }
                        func_index += 1;
                    }
                }
            }
            Ok(_) => {}
            Err(_) => return Vec::new(),
        }
    }
    out
}

/// Whether a defined function or an element segment refers to function
/// `index` directly (`call`, `return_call`, `ref.func`, element items):
/// the case then has at least one fork-path function.
pub fn references_function(wasm: &[u8], index: u32) -> bool {
    use wasmparser::{ElementItems, Operator, Payload};
    let ops_hit = |mut r: wasmparser::OperatorsReader<'_>| -> bool {
        while !r.eof() {
            match r.read() {
                Ok(Operator::Call { function_index })
                | Ok(Operator::ReturnCall { function_index })
                | Ok(Operator::RefFunc { function_index })
                    if function_index == index =>
                {
                    return true
                }
                Ok(_) => {}
                Err(_) => return false,
            }
        }
        false
    };
    for payload in wasmparser::Parser::new(0).parse_all(wasm) {
        match payload {
            Ok(Payload::ElementSection(r)) => {
                for e in r.into_iter().flatten() {
                    match e.items {
                        ElementItems::Functions(fs) => {
                            if fs.into_iter().flatten().any(|f| f == index) {
                                return true;
                            }
                        }
                        ElementItems::Expressions(_, es) => {
                            for ce in es.into_iter().flatten() {
                                if ops_hit(ce.get_operators_reader()) {
                                    return true;
                                }
                            }
                        }
                    }
                }
            }
            Ok(Payload::CodeSectionEntry(body)) => {
                if let Ok(r) = body.get_operators_reader() {
                    if ops_hit(r) {
                        return true;
                    }
                }
            }
            Ok(_) => {}
            Err(_) => return false,
        }
    }
    false
}

/// The module's sections as `(id, full byte range including the header)`,
/// after the 8-byte preamble. `None` if the framing is broken.
pub fn sections(wasm: &[u8]) -> Option<Vec<(u8, std::ops::Range<usize>)>> {
    if wasm.len() < 8 {
        return None;
    }
    let mut out = Vec::new();
    let mut pos = 8;
    while pos < wasm.len() {
        let id = wasm[pos];
        let (len, n) = read_leb_u32(&wasm[pos + 1..])?;
        let end = pos + 1 + n + len as usize;
        if end > wasm.len() {
            return None;
        }
        out.push((id, pos..end));
        pos = end;
    }
    Some(out)
}

pub fn read_leb_u32(b: &[u8]) -> Option<(u32, usize)> {
    let mut result = 0u64;
    for (i, &byte) in b.iter().enumerate().take(5) {
        result |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return u32::try_from(result).ok().map(|r| (r, i + 1));
        }
    }
    None
}

/// Validates with every feature wasmparser knows: the property checked is
/// "the output is a valid module", not "it uses only the input's features".
pub fn validate(wasm: &[u8]) -> Result<(), String> {
    wasmparser::Validator::new_with_features(wasmparser::WasmFeatures::all())
        .validate_all(wasm)
        .map(|_| ())
        .map_err(|e| e.to_string())
}
