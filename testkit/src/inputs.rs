//! Inputs for the robustness property and the fuzz target: random bytes,
//! valid modules from the generators, and valid modules mangled by bit
//! flips, truncations, byte-range edits and section splices.

use forkify_instrument::ImportName;

use crate::rng::Rng;
use crate::smith;
use crate::wasm::sections;

/// A valid module: from the differential generator, or (`all_features`)
/// from wasm-smith's defaults, which include GC, exceptions, threads and
/// more that the instrumenter may refuse but must not panic on.
pub fn valid_module(rng: &mut Rng, all_features: bool) -> Option<(Vec<u8>, Vec<ImportName>)> {
    if !all_features {
        let g = smith::generate(rng.next_u64())?;
        return Some((g.bytes, g.fork.map(|f| vec![f.1]).unwrap_or_default()));
    }
    smith::any_features(&rng.bytes_in(1024, 8192))
}

/// Mangles `wasm` in one of several ways.
pub fn mutate(rng: &mut Rng, mut wasm: Vec<u8>, other: &[u8]) -> (Vec<u8>, &'static str) {
    let kind = rng.below(7);
    let len = wasm.len().max(1) as u64;
    match kind {
        0 => {
            for _ in 0..rng.range(1, 8) {
                let i = rng.below(len) as usize;
                if i < wasm.len() {
                    wasm[i] ^= 1 << rng.below(8);
                }
            }
            (wasm, "bit flips")
        }
        1 => {
            wasm.truncate(rng.below(len) as usize);
            (wasm, "truncation")
        }
        2 => {
            // Overwrite a range with random bytes.
            let i = rng.below(len) as usize;
            let n = rng.range(1, 16) as usize;
            for b in wasm.iter_mut().skip(i).take(n) {
                *b = rng.next_u64() as u8;
            }
            (wasm, "overwrite")
        }
        3 => {
            // Insert or delete a few bytes.
            let i = rng.below(len).min(wasm.len() as u64) as usize;
            if rng.chance(1, 2) {
                let ins = rng.bytes_in(1, 8);
                wasm.splice(i..i, ins);
                (wasm, "insertion")
            } else {
                let n = (rng.range(1, 8) as usize).min(wasm.len() - i);
                wasm.drain(i..i + n);
                (wasm, "deletion")
            }
        }
        4 => (splice_sections(rng, &wasm, other), "section splice"),
        5 => {
            // Interesting values at random spots (LEB edges, type codes).
            const INTERESTING: [u8; 10] =
                [0x00, 0x01, 0x7f, 0x80, 0xff, 0x40, 0x60, 0x70, 0x6f, 0x7b];
            for _ in 0..rng.range(1, 4) {
                let i = rng.below(len) as usize;
                if i < wasm.len() {
                    wasm[i] = INTERESTING[rng.below(10) as usize];
                }
            }
            (wasm, "interesting bytes")
        }
        _ => {
            // Mutate inside one section only (keeps the framing mostly valid).
            if let Some(secs) = sections(&wasm) {
                if !secs.is_empty() {
                    let (_, r) = secs[rng.below(secs.len() as u64) as usize].clone();
                    let i = r.start + 1 + rng.below((r.len() - 1).max(1) as u64) as usize;
                    if i < wasm.len() {
                        wasm[i] = rng.next_u64() as u8;
                    }
                }
            }
            (wasm, "in-section byte")
        }
    }
}

/// Rebuilds a module from the sections of `a` and `b`: duplicated, dropped,
/// swapped, or taken from the other module.
pub fn splice_sections(rng: &mut Rng, a: &[u8], b: &[u8]) -> Vec<u8> {
    let (Some(sa), Some(sb)) = (sections(a), sections(b)) else {
        return a.to_vec();
    };
    let mut parts: Vec<Vec<u8>> = sa.iter().map(|(_, r)| a[r.clone()].to_vec()).collect();
    let from_b: Vec<Vec<u8>> = sb.iter().map(|(_, r)| b[r.clone()].to_vec()).collect();
    for _ in 0..rng.range(1, 3) {
        let n = parts.len() as u64;
        match rng.below(4) {
            0 if n > 0 => {
                parts.remove(rng.below(n) as usize);
            }
            1 if n > 0 => {
                let s = parts[rng.below(n) as usize].clone();
                parts.insert(rng.below(n + 1) as usize, s);
            }
            2 if n > 1 => {
                let (i, j) = (rng.below(n) as usize, rng.below(n) as usize);
                parts.swap(i, j);
            }
            _ if !from_b.is_empty() => {
                let s = from_b[rng.below(from_b.len() as u64) as usize].clone();
                if n > 0 && rng.chance(1, 2) {
                    let i = rng.below(n) as usize;
                    parts[i] = s;
                } else {
                    parts.insert(rng.below(n + 1) as usize, s);
                }
            }
            _ => {}
        }
    }
    let mut out = a[..8].to_vec();
    for p in parts {
        out.extend(p);
    }
    out
}

/// The input of case `seed`, the fork imports to try besides the default,
/// and what kind of input it is.
pub fn case(seed: u64) -> (Vec<u8>, Vec<ImportName>, &'static str) {
    let mut rng = Rng::new(seed);
    match rng.below(10) {
        0 => (rng.bytes_in(0, 512), vec![], "random bytes"),
        1 => {
            let mut v = b"\0asm\x01\0\0\0".to_vec();
            v.extend(rng.bytes_in(0, 512));
            (v, vec![], "random bytes after a preamble")
        }
        2 => match valid_module(&mut rng, false) {
            Some((m, forks)) => (m, forks, "valid module"),
            None => (vec![], vec![], "empty"),
        },
        3 => match valid_module(&mut rng, true) {
            Some((m, forks)) => (m, forks, "valid module, all wasm-smith features"),
            None => (vec![], vec![], "empty"),
        },
        k => {
            let all = k == 9;
            let Some((m, forks)) = valid_module(&mut rng, all) else {
                return (vec![], vec![], "empty");
            };
            let all_other = rng.chance(1, 4);
            let other = valid_module(&mut rng, all_other)
                .map(|o| o.0)
                .unwrap_or_default();
            let (m, what) = mutate(&mut rng, m, &other);
            let m = if rng.chance(1, 3) {
                mutate(&mut rng, m, &other).0
            } else {
                m
            };
            (m, forks, what)
        }
    }
}
