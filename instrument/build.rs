//! Fingerprints the transform's sources so that outputs record exactly which
//! instrumenter wrote them: `cargo forkify build` skips an unchanged input
//! only when the tool string (version and this fingerprint) matches, so a
//! changed instrumenter with the same version number redoes its outputs.

use std::path::{Path, PathBuf};

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

fn main() {
    println!("cargo:rerun-if-changed=src");
    let mut list = Vec::new();
    files(Path::new("src"), &mut list);
    list.sort();
    // FNV-1a, 64 bits: stable across platforms and needs no dependency.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in &list {
        let bytes = std::fs::read(p).unwrap_or_default();
        for b in p
            .to_string_lossy()
            .replace('\\', "/")
            .bytes()
            .chain([0])
            .chain(bytes)
        {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    println!("cargo:rustc-env=FORKIFY_SOURCE_HASH={h:016x}");
}
