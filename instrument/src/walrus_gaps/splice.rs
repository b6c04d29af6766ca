//! Puts the original bytes back around the rewritten functions.
//!
//! walrus re-encodes every function it emits (compact LEBs, locals grouped
//! by type, an `else` for every `if`, which the re-encoding below drops
//! when it is empty), but ABI §1 says functions off the
//! fork path keep their exact bytes. This module builds the output from the
//! input's sections, copied as they are, plus what the transform added:
//! new types, globals, functions and exports appended after the original
//! ones, the rewritten bodies (re-encoded from walrus's output with type
//! indices mapped back), merged names, and the `forkify.abi` section.
//!
//! It declines (returns `None`, and the caller keeps walrus's output) when
//! the input carries DWARF, whose code addresses walrus rewrites and a
//! splice would leave stale, or when the input's shape is one it does not
//! map (GC or explicit recursion groups in the type section, index spaces
//! that walrus did not keep in order).

use std::collections::{BTreeSet, HashMap};
use std::ops::Range;
use wasm_encoder::reencode::{Reencode, RoundtripReencoder};
use wasm_encoder::Encode;
use wasmparser::{CompositeInnerType, FuncType, Parser, Payload};

/// Sections of one module, as byte ranges of the whole file.
#[derive(Default)]
struct Parsed<'a> {
    /// (id, payload range) in file order; custom sections carry their name.
    sections: Vec<(u8, Range<usize>, Option<&'a str>)>,
    types: Vec<FuncType>,
    simple_types: bool,
    func_imports: u32,
    global_imports: u32,
    funcs: Vec<u32>,
    globals: Vec<Range<usize>>,
    exports: Vec<(String, wasmparser::ExternalKind, u32)>,
    bodies: Vec<Range<usize>>,
    elements: u32,
}

fn parse(wasm: &[u8]) -> Option<Parsed<'_>> {
    let mut p = Parsed {
        simple_types: true,
        ..Default::default()
    };
    for payload in Parser::new(0).parse_all(wasm) {
        let payload = payload.ok()?;
        if let Some((id, range)) = payload.as_section() {
            let name = match &payload {
                Payload::CustomSection(c) => Some(c.name()),
                _ => None,
            };
            // Code section entries arrive one by one; record the section once.
            p.sections.push((id, range, name));
        }
        match payload {
            Payload::TypeSection(r) => {
                for rg in r {
                    let rg = rg.ok()?;
                    if rg.is_explicit_rec_group() {
                        p.simple_types = false;
                    }
                    for st in rg.into_types() {
                        match &st.composite_type.inner {
                            CompositeInnerType::Func(f)
                                if st.is_final
                                    && st.supertype_idx.is_none()
                                    && !st.composite_type.shared =>
                            {
                                if f.params().iter().chain(f.results()).any(|t| {
                                    matches!(t, wasmparser::ValType::Ref(r) if !matches!(r.heap_type(), wasmparser::HeapType::Abstract { .. }))
                                }) {
                                    p.simple_types = false;
                                }
                                p.types.push(f.clone());
                            }
                            _ => {
                                p.simple_types = false;
                                p.types.push(FuncType::new([], []));
                            }
                        }
                    }
                }
            }
            Payload::ImportSection(r) => {
                for imp in r.into_imports() {
                    match imp.ok()?.ty {
                        wasmparser::TypeRef::Func(_) | wasmparser::TypeRef::FuncExact(_) => {
                            p.func_imports += 1
                        }
                        wasmparser::TypeRef::Global(_) => p.global_imports += 1,
                        _ => {}
                    }
                }
            }
            Payload::FunctionSection(r) => {
                for t in r {
                    p.funcs.push(t.ok()?);
                }
            }
            Payload::GlobalSection(r) => {
                let mut reader = r.clone().into_iter_with_offsets();
                let mut starts = Vec::new();
                for g in reader.by_ref() {
                    starts.push(g.ok()?.0);
                }
                let end = r.range().end;
                for (i, s) in starts.iter().enumerate() {
                    p.globals
                        .push(*s..starts.get(i + 1).copied().unwrap_or(end));
                }
            }
            Payload::ExportSection(r) => {
                for e in r {
                    let e = e.ok()?;
                    p.exports.push((e.name.to_string(), e.kind, e.index));
                }
            }
            Payload::ElementSection(r) => p.elements = r.count(),
            Payload::CodeSectionEntry(body) => p.bodies.push(body.range()),
            _ => {}
        }
    }
    Some(p)
}

/// Name of the custom section that carries [`Placement`] in walrus's
/// output (the splice reads it and leaves it out).
pub const PLACEMENT: &str = "forkify.placement";

/// walrus's own record of where it put each local function (walrus
/// orders functions by size when it emits them): a custom section whose
/// data, written after the code section from walrus's index assignment,
/// is the output index of each of `funcs`, in order, as LEB128 `u32`s.
#[derive(Debug, Default)]
pub struct Placement {
    /// The functions whose output index is recorded.
    pub funcs: Vec<walrus::FunctionId>,
}

impl walrus::CustomSection for Placement {
    fn name(&self) -> &str {
        PLACEMENT
    }

    fn data(&self, ids: &walrus::IdsToIndices) -> std::borrow::Cow<'_, [u8]> {
        let mut out = Vec::with_capacity(self.funcs.len() * 3);
        for f in &self.funcs {
            leb(ids.get_func_index(*f), &mut out);
        }
        out.into()
    }
}

/// What the splice must know about the functions.
#[derive(Debug, Default)]
pub struct SpliceMap {
    /// Final index of the n-th function of the [`Placement`] record.
    pub final_index: Vec<u32>,
    /// Final indices of the rewritten functions.
    pub rewritten: BTreeSet<u32>,
    /// Names of the functions the transform added, by final index.
    pub new_names: Vec<(u32, String)>,
}

/// The range of the custom section `name`.
fn custom(p: &Parsed<'_>, name: &str) -> Option<Range<usize>> {
    p.sections
        .iter()
        .find(|s| s.2 == Some(name))
        .map(|s| s.1.clone())
}

/// Maps walrus's type and function indices back to the output's.
struct IndexMap {
    types: Vec<u32>,
    funcs: Vec<u32>,
}

impl Reencode for IndexMap {
    type Error = std::convert::Infallible;

    fn type_index(&mut self, ty: u32) -> Result<u32, wasm_encoder::reencode::Error<Self::Error>> {
        Ok(self.types.get(ty as usize).copied().unwrap_or(ty))
    }

    fn function_index(
        &mut self,
        f: u32,
    ) -> Result<u32, wasm_encoder::reencode::Error<Self::Error>> {
        Ok(self.funcs.get(f as usize).copied().unwrap_or(f))
    }

    /// As the default, but an `else` right before its `end` (walrus writes
    /// one for every `if`) is left out: an `if` without `else` means the same.
    fn parse_function_body(
        &mut self,
        code: &mut wasm_encoder::CodeSection,
        func: wasmparser::FunctionBody<'_>,
    ) -> Result<(), wasm_encoder::reencode::Error<Self::Error>> {
        let mut f = self.new_function_with_parsed_locals(&func)?;
        let mut reader = func.get_operators_reader()?;
        let mut held_else = false;
        while !reader.eof() {
            let op = reader.read()?;
            if std::mem::take(&mut held_else) && !matches!(op, wasmparser::Operator::End) {
                f.instruction(&wasm_encoder::Instruction::Else);
            }
            if matches!(op, wasmparser::Operator::Else) {
                held_else = true;
                continue;
            }
            f.instruction(&self.instruction(op)?);
        }
        code.function(&f);
        Ok(())
    }
}

fn leb(n: u32, out: &mut Vec<u8>) {
    n.encode(out);
}

/// Appends a section with `id` and `payload`.
fn section(out: &mut Vec<u8>, id: u8, payload: &[u8]) {
    out.push(id);
    leb(payload.len() as u32, out);
    out.extend_from_slice(payload);
}

/// A vector section: the input's entries (after its count) plus `extra`.
fn extend_vec(
    wasm: &[u8],
    range: Option<&Range<usize>>,
    extra_count: u32,
    extra: &[u8],
) -> Vec<u8> {
    let (count, entries) = match range {
        Some(r) => {
            let mut reader = wasmparser::BinaryReader::new(&wasm[r.clone()], 0);
            let count = reader.read_var_u32().unwrap_or(0);
            (count, &wasm[r.start + reader.original_position()..r.end])
        }
        None => (0, &[][..]),
    };
    let mut payload = Vec::new();
    leb(count + extra_count, &mut payload);
    payload.extend_from_slice(entries);
    payload.extend_from_slice(extra);
    payload
}

/// Whether the input is one the splice handles: no DWARF, and a type
/// section of plain function types.
pub fn applies(orig: &[u8]) -> bool {
    parse(orig).is_some_and(|o| {
        o.simple_types
            && !o
                .sections
                .iter()
                .any(|(_, _, n)| n.is_some_and(|n| n.starts_with(".debug_")))
    })
}

/// Builds the spliced module, or `None` when it must not (see module docs).
pub fn splice(orig: &[u8], out: &[u8], fmap: &SpliceMap) -> Option<Vec<u8>> {
    match splice_inner(orig, out, fmap) {
        Ok(v) => Some(v),
        Err(line) => {
            if std::env::var_os("FORKIFY_DEBUG_SPLICE").is_some() {
                eprintln!("splice declined at splice.rs:{line}");
            }
            None
        }
    }
}

fn splice_inner(orig: &[u8], out: &[u8], fmap: &SpliceMap) -> Result<Vec<u8>, u32> {
    let rewritten = &fmap.rewritten;
    let o = parse(orig).ok_or(line!())?;
    let w = parse(out).ok_or(line!())?;
    if o.sections
        .iter()
        .any(|(_, _, n)| n.is_some_and(|n| n.starts_with(".debug_")))
    {
        return Err(line!());
    }
    if !o.simple_types
        || !w.simple_types
        || o.func_imports != w.func_imports
        || o.global_imports != w.global_imports
    {
        return Err(line!());
    }
    if w.funcs.len() < o.funcs.len() || w.globals.len() < o.globals.len() || w.elements < o.elements
    {
        return Err(line!());
    }
    // Types: reuse an input type with the same signature, else append.
    let mut types = o.types.clone();
    let mut new_types = wasm_encoder::TypeSection::new();
    let mut map = Vec::with_capacity(w.types.len());
    for t in &w.types {
        let idx = match types.iter().position(|x| x == t) {
            Some(i) => i as u32,
            None => {
                let mut r = RoundtripReencoder;
                let params: Vec<_> = t
                    .params()
                    .iter()
                    .map(|v| r.val_type(*v))
                    .collect::<Result<_, _>>()
                    .map_err(|_| line!())?;
                let results: Vec<_> = t
                    .results()
                    .iter()
                    .map(|v| r.val_type(*v))
                    .collect::<Result<_, _>>()
                    .map_err(|_| line!())?;
                new_types.ty().function(params, results);
                types.push(t.clone());
                (types.len() - 1) as u32
            }
        };
        map.push(idx);
    }
    // Where walrus put each function: its placement record says.
    let n_old_funcs = o.funcs.len();
    let base = o.func_imports;
    let total = w.func_imports as usize + w.funcs.len();
    let mut out_to_final: Vec<u32> = (0..total as u32).collect();
    let mut final_to_out: Vec<u32> = (0..total as u32).collect();
    let record = custom(&w, PLACEMENT).ok_or(line!())?;
    let mut r = wasmparser::BinaryReader::new(skip_name(&out[record]).ok_or(line!())?, 0);
    for &f in &fmap.final_index {
        let out_idx = r.read_var_u32().map_err(|_| line!())?;
        *out_to_final.get_mut(out_idx as usize).ok_or(line!())? = f;
        *final_to_out.get_mut(f as usize).ok_or(line!())? = out_idx;
    }
    if !r.eof() || fmap.final_index.len() != w.funcs.len() {
        return Err(line!());
    }
    let out_type_of = |final_idx: u32| w.funcs[(final_to_out[final_idx as usize] - base) as usize];
    for (i, t) in o.funcs.iter().enumerate() {
        let wt = out_type_of(base + i as u32);
        if o.types.get(*t as usize) != w.types.get(wt as usize) {
            return Err(line!());
        }
    }
    let mut tm = IndexMap {
        types: map,
        funcs: out_to_final.clone(),
    };

    // Code: original bodies, rewritten ones from walrus, then the new ones.
    let mut code = wasm_encoder::CodeSection::new();
    let w_body = |final_idx: u32| {
        let r = w.bodies[(final_to_out[final_idx as usize] - base) as usize].clone();
        wasmparser::FunctionBody::new(wasmparser::BinaryReader::new(&out[r.clone()], r.start))
    };
    for (i, r) in o.bodies.iter().enumerate() {
        let f = base + i as u32;
        if rewritten.contains(&f) {
            tm.parse_function_body(&mut code, w_body(f))
                .map_err(|_| line!())?;
        } else {
            code.raw(&orig[r.clone()]);
        }
    }
    for f in (base + n_old_funcs as u32)..total as u32 {
        tm.parse_function_body(&mut code, w_body(f))
            .map_err(|_| line!())?;
    }
    let mut funcs_extra = Vec::new();
    for f in (base + n_old_funcs as u32)..total as u32 {
        leb(tm.types[out_type_of(f) as usize], &mut funcs_extra);
    }
    let mut globals_extra = Vec::new();
    for g in &w.globals[o.globals.len()..] {
        globals_extra.extend_from_slice(&out[g.clone()]);
    }
    let old_exports: BTreeSet<&str> = o.exports.iter().map(|e| e.0.as_str()).collect();
    let mut exports = wasm_encoder::ExportSection::new();
    let mut n_new_exports = 0;
    for (name, kind, idx) in &w.exports {
        if !old_exports.contains(name.as_str()) {
            let kind = match kind {
                wasmparser::ExternalKind::Func | wasmparser::ExternalKind::FuncExact => {
                    wasm_encoder::ExportKind::Func
                }
                wasmparser::ExternalKind::Global => wasm_encoder::ExportKind::Global,
                _ => return Err(line!()),
            };
            let idx = if kind == wasm_encoder::ExportKind::Func {
                out_to_final[*idx as usize]
            } else {
                *idx
            };
            exports.export(name, kind, idx);
            n_new_exports += 1;
        }
    }
    let mut export_bytes = Vec::new();
    exports.encode(&mut export_bytes);
    let export_entries = strip_section_and_count(&export_bytes).ok_or(line!())?;
    let mut type_bytes = Vec::new();
    new_types.encode(&mut type_bytes);
    let type_entries = if new_types.is_empty() {
        Vec::new()
    } else {
        strip_section_and_count(&type_bytes).ok_or(line!())?
    };

    let find = |id: u8| o.sections.iter().find(|s| s.0 == id).map(|s| s.1.clone());
    let w_names = custom(&w, "name").map(|wn| &out[wn]);
    let w_producers = custom(&w, "producers");
    let w_abi = custom(&w, forkify_abi::SECTION_NAME).ok_or(line!())?;

    // Payloads of the sections that change; each is emitted where the input
    // had it, or inserted at its place in the section order.
    let mut changed: HashMap<u8, Vec<u8>> = HashMap::new();
    changed.insert(
        1,
        extend_vec(orig, find(1).as_ref(), new_types.len(), &type_entries),
    );
    changed.insert(
        3,
        extend_vec(
            orig,
            find(3).as_ref(),
            (w.funcs.len() - n_old_funcs) as u32,
            &funcs_extra,
        ),
    );
    changed.insert(
        6,
        extend_vec(
            orig,
            find(6).as_ref(),
            (w.globals.len() - o.globals.len()) as u32,
            &globals_extra,
        ),
    );
    changed.insert(
        7,
        extend_vec(orig, find(7).as_ref(), n_new_exports, &export_entries),
    );
    let mut code_bytes = Vec::new();
    code.encode(&mut code_bytes);
    changed.insert(10, strip_section(&code_bytes).ok_or(line!())?.to_vec());

    // Standard order of the non-custom sections.
    const ORDER: [u8; 13] = [1, 2, 3, 4, 5, 13, 6, 7, 8, 9, 12, 10, 11];
    let rank = |id: u8| ORDER.iter().position(|x| *x == id).unwrap_or(usize::MAX);
    let mut result = orig[..8].to_vec();
    let mut emitted: BTreeSet<u8> = BTreeSet::new();
    let emit_missing_before =
        |result: &mut Vec<u8>, next: Option<u8>, emitted: &mut BTreeSet<u8>| {
            for id in ORDER {
                if next.is_some_and(|n| rank(id) >= rank(n)) {
                    break;
                }
                if !emitted.contains(&id) && changed.contains_key(&id) && find(id).is_none() {
                    section(result, id, &changed[&id]);
                    emitted.insert(id);
                }
            }
        };
    for (id, range, name) in &o.sections {
        match (*id, name) {
            (0, Some("name")) => section(
                &mut result,
                0,
                &merge_names(&orig[range.clone()], w_names, fmap, &out_to_final).ok_or(line!())?,
            ),
            (0, Some("producers")) => match &w_producers {
                Some(wp) => section(&mut result, 0, &out[wp.clone()]),
                None => section(&mut result, 0, &orig[range.clone()]),
            },
            (0, _) => section(&mut result, 0, &orig[range.clone()]),
            (id, _) => {
                emit_missing_before(&mut result, Some(id), &mut emitted);
                match changed.get(&id) {
                    Some(p) => section(&mut result, id, p),
                    None => section(&mut result, id, &orig[range.clone()]),
                }
                emitted.insert(id);
            }
        }
    }
    emit_missing_before(&mut result, None, &mut emitted);
    if !o.sections.iter().any(|s| s.2 == Some("producers")) {
        if let Some(wp) = &w_producers {
            section(&mut result, 0, &out[wp.clone()]);
        }
    }
    section(&mut result, 0, &out[w_abi.clone()]);
    Ok(result)
}

/// The payload of a section encoded by wasm-encoder's `Encode` (which
/// writes the size, not the id).
fn strip_section(bytes: &[u8]) -> Option<&[u8]> {
    let mut r = wasmparser::BinaryReader::new(bytes, 0);
    r.read_var_u32().ok()?;
    bytes.get(r.original_position()..)
}

/// The entries of an encoded vector section (drops size and count).
fn strip_section_and_count(bytes: &[u8]) -> Option<Vec<u8>> {
    let payload = strip_section(bytes)?;
    let mut r = wasmparser::BinaryReader::new(payload, 0);
    r.read_var_u32().ok()?;
    Some(payload[r.original_position()..].to_vec())
}

/// A custom section's data after its name.
fn skip_name(section: &[u8]) -> Option<&[u8]> {
    let mut r = wasmparser::BinaryReader::new(section, 0);
    r.read_string().ok()?;
    section.get(r.original_position()..)
}

/// Subsections of a `name` section payload (after the section's own name).
fn subsections(data: &[u8]) -> Option<Vec<(u8, &[u8])>> {
    let mut out = Vec::new();
    let mut r = wasmparser::BinaryReader::new(data, 0);
    while !r.eof() {
        let id = r.read_u8().ok()?;
        let len = r.read_var_u32().ok()? as usize;
        let start = r.original_position();
        out.push((id, data.get(start..start + len)?));
        r.read_bytes(len).ok()?;
    }
    Some(out)
}

/// Per-function entries of an indirect name map (local names): index and
/// the raw bytes of its name map.
fn indirect_entries(data: &[u8]) -> Option<Vec<(u32, &[u8])>> {
    let mut r = wasmparser::BinaryReader::new(data, 0);
    let n = r.read_var_u32().ok()?;
    let mut out = Vec::new();
    for _ in 0..n {
        let idx = r.read_var_u32().ok()?;
        let start = r.original_position();
        let m = r.read_var_u32().ok()?;
        for _ in 0..m {
            r.read_var_u32().ok()?;
            r.read_string().ok()?;
        }
        out.push((idx, &data[start..r.original_position()]));
    }
    Some(out)
}

/// Entries of a name map: index and name.
fn name_map(data: &[u8]) -> Option<Vec<(u32, String)>> {
    let mut r = wasmparser::BinaryReader::new(data, 0);
    let n = r.read_var_u32().ok()?;
    let mut out = Vec::with_capacity(n as usize);
    for _ in 0..n {
        out.push((r.read_var_u32().ok()?, r.read_string().ok()?.to_string()));
    }
    Some(out)
}

/// The input's names, plus the names of the functions the transform added
/// and, for the rewritten functions (whose locals walrus renumbered), the
/// local names from walrus's output.
fn merge_names(
    orig: &[u8],
    out: Option<&[u8]>,
    fmap: &SpliceMap,
    out_to_final: &[u32],
) -> Option<Vec<u8>> {
    let o = subsections(skip_name(orig)?)?;
    let w = match out {
        Some(out) => subsections(skip_name(out)?)?,
        None => Vec::new(),
    };
    fn get<'a>(v: &[(u8, &'a [u8])], id: u8) -> Option<&'a [u8]> {
        v.iter().find(|s| s.0 == id).map(|s| s.1)
    }
    let mut payload = Vec::new();
    "name".encode(&mut payload);
    let mut ids: Vec<u8> = o.iter().map(|s| s.0).collect();
    for id in [1u8, 2] {
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    ids.sort();
    for id in ids {
        let data: Vec<u8> = match id {
            1 => {
                let mut names = name_map(get(&o, 1).unwrap_or(&[0]))?;
                names.extend(fmap.new_names.iter().cloned());
                let mut d = Vec::new();
                leb(names.len() as u32, &mut d);
                for (i, n) in names {
                    leb(i, &mut d);
                    n.as_str().encode(&mut d);
                }
                d
            }
            2 => {
                let mut entries: Vec<(u32, Vec<u8>)> = Vec::new();
                for (idx, m) in indirect_entries(get(&o, 2).unwrap_or(&[0]))? {
                    if !fmap.rewritten.contains(&idx) {
                        entries.push((idx, m.to_vec()));
                    }
                }
                for (idx, m) in indirect_entries(get(&w, 2).unwrap_or(&[0]))? {
                    let f = *out_to_final.get(idx as usize)?;
                    if fmap.rewritten.contains(&f) {
                        entries.push((f, m.to_vec()));
                    }
                }
                entries.sort_by_key(|e| e.0);
                let mut d = Vec::new();
                leb(entries.len() as u32, &mut d);
                for (idx, m) in entries {
                    leb(idx, &mut d);
                    d.extend(m);
                }
                d
            }
            _ => get(&o, id)?.to_vec(),
        };
        if id == 2 && data == [0] {
            continue;
        }
        payload.push(id);
        leb(data.len() as u32, &mut payload);
        payload.extend(data);
    }
    Some(payload)
}
