//! The input with the bodies of functions off the fork path replaced by
//! `unreachable`, for walrus to parse: walrus IR is built only for the
//! functions the transform can touch, and the splice (`splice.rs`) puts
//! every other function's own bytes back. Instruction offsets in the IR
//! are the input's (walrus's `on_instr_loc` maps each slim position back),
//! so the operand types recorded on the input stay valid.

use std::ops::Range;
use wasmparser::{Parser, Payload};

/// A stub body: no locals, `unreachable`, `end` (valid for any type).
const STUB: [u8; 4] = [0x03, 0x00, 0x00, 0x0b];

/// The slim module and where its bodies came from.
pub struct Slim {
    /// The module walrus parses.
    pub bytes: Vec<u8>,
    /// Per body kept or stubbed, in order: (start in `bytes`, start in the
    /// input), each range starting at the body's size.
    starts: Vec<(usize, usize)>,
}

impl Slim {
    /// The input offset of the slim module's byte at `pos` (a position
    /// inside a body).
    #[cfg(test)]
    fn input_offset(&self, pos: usize) -> usize {
        input_offset(&self.starts, pos)
    }

    /// Splits into the bytes and the offset map.
    pub fn into_parts(self) -> (Vec<u8>, impl Fn(&usize) -> usize + Send + Sync + 'static) {
        let starts = self.starts;
        (self.bytes, move |pos: &usize| input_offset(&starts, *pos))
    }
}

fn input_offset(starts: &[(usize, usize)], pos: usize) -> usize {
    let i = starts.partition_point(|(s, _)| *s <= pos);
    match i.checked_sub(1) {
        Some(i) => pos - starts[i].0 + starts[i].1,
        None => pos,
    }
}

/// Builds the slim module: `bodies` are the input's function bodies (each
/// with its size in front), `keep[i]` says whether body `i` stays.
/// `None` when the input does not have the shape expected (then the caller
/// parses the whole input).
pub fn build(wasm: &[u8], bodies: &[Range<usize>], keep: &[bool]) -> Option<Slim> {
    if bodies.len() != keep.len() {
        return None;
    }
    let mut section = None;
    let mut prev_end = 8;
    for payload in Parser::new(0).parse_all(wasm) {
        let payload = payload.ok()?;
        if let Payload::CodeSectionStart { count, range, .. } = &payload {
            section = Some((prev_end, *count, range.clone()));
            break;
        }
        if let Some((_, range)) = payload.as_section() {
            prev_end = range.end;
        }
    }
    let (header, count, range) = section?;
    if count as usize != bodies.len() {
        return None;
    }
    let mut content = Vec::new();
    leb(&mut content, count);
    let mut local_starts = Vec::with_capacity(bodies.len());
    for (body, keep) in bodies.iter().zip(keep) {
        local_starts.push((content.len(), body.start));
        if *keep {
            content.extend_from_slice(wasm.get(body.clone())?);
        } else {
            content.extend_from_slice(&STUB);
        }
    }
    let mut bytes = Vec::with_capacity(header + content.len() + wasm.len() - range.end + 6);
    bytes.extend_from_slice(&wasm[..header]);
    bytes.push(10);
    leb(&mut bytes, content.len() as u32);
    let base = bytes.len();
    bytes.extend_from_slice(&content);
    bytes.extend_from_slice(&wasm[range.end..]);
    let starts = local_starts
        .into_iter()
        .map(|(slim, input)| (base + slim, input))
        .collect();
    Some(Slim { bytes, starts })
}

fn leb(out: &mut Vec<u8>, mut v: u32) {
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stubbed_bodies_validate_and_kept_ones_map_back() {
        let wasm = wat::parse_str(
            r#"(module
                 (func $a (result i32) (local i64) i32.const 1)
                 (func $b (param i32) (result i32) local.get 0 i32.const 2 i32.add)
                 (func $c (result f64) f64.const 3))"#,
        )
        .unwrap();
        let mut bodies = Vec::new();
        for p in Parser::new(0).parse_all(&wasm) {
            if let Payload::CodeSectionEntry(b) = p.unwrap() {
                let r = b.range();
                bodies.push(r.start - 1..r.end);
            }
        }
        let slim = build(&wasm, &bodies, &[false, true, false]).unwrap();
        wasmparser::Validator::new()
            .validate_all(&slim.bytes)
            .unwrap();
        assert!(slim.bytes.len() < wasm.len());
        // $b's first instruction sits right after its size and locals.
        let mut seen = Vec::new();
        for p in Parser::new(0).parse_all(&slim.bytes) {
            if let Payload::CodeSectionEntry(b) = p.unwrap() {
                let mut ops = b.get_operators_reader().unwrap();
                seen.push(slim.input_offset(ops.original_position()));
                ops.read().unwrap();
            }
        }
        let mut want = Vec::new();
        for p in Parser::new(0).parse_all(&wasm) {
            if let Payload::CodeSectionEntry(b) = p.unwrap() {
                want.push(b.get_operators_reader().unwrap().original_position());
            }
        }
        assert_eq!(seen[1], want[1]);
    }
}
