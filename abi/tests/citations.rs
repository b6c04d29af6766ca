//! Every citation of the ABI text in the repository ("ABI §6", "ABI.md §4",
//! "ABI 1 §8", "ABI.md section 9") must name a section that `abi/ABI.md`
//! has, and nothing may point at a copy of the text outside the repository.

use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        if p.is_dir() {
            if !matches!(
                name.as_str(),
                "target" | "node_modules" | ".git" | "corpus" | "artifacts"
            ) {
                files(&p, out);
            }
        } else if [
            ".rs", ".md", ".mjs", ".wat", ".toml", ".sh", ".html", ".json",
        ]
        .iter()
        .any(|x| name.ends_with(x))
            && !name.ends_with(".lock")
        {
            out.push(p);
        }
    }
}

/// Section numbers cited in `text`.
fn citations(text: &str) -> Vec<u32> {
    let mut out = Vec::new();
    for marker in ["ABI §", "ABI.md §", "ABI 1 §", "ABI.md section "] {
        let mut rest = text;
        while let Some(i) = rest.find(marker) {
            rest = &rest[i + marker.len()..];
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            if let Ok(n) = digits.parse() {
                out.push(n);
            }
        }
    }
    out
}

#[test]
fn every_citation_names_a_section_of_abi_md() {
    let abi = std::fs::read_to_string(repo().join("abi/ABI.md")).expect("read abi/ABI.md");
    let sections: Vec<u32> = abi
        .lines()
        .filter_map(|l| l.strip_prefix("## "))
        .filter_map(|l| l.split('.').next()?.parse().ok())
        .collect();
    let mut list = Vec::new();
    files(&repo(), &mut list);
    let mut bad = Vec::new();
    let mut count = 0;
    for path in list {
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        let shown = path
            .strip_prefix(repo())
            .unwrap_or(&path)
            .display()
            .to_string();
        let outside = concat!("shared/docs/", "ABI.md");
        if text.contains(outside) {
            bad.push(format!("{shown}: points at {outside}, not abi/ABI.md"));
        }
        for n in citations(&text) {
            count += 1;
            if !sections.contains(&n) {
                bad.push(format!(
                    "{shown}: cites ABI §{n}, which abi/ABI.md does not have"
                ));
            }
        }
    }
    assert!(
        count > 50,
        "found only {count} citations: is the scan broken?"
    );
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}
