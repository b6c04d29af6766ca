//! `forkify-manifest.json`: the record beside the outputs of one
//! `<target-dir>/<triple>/<profile>/forkify/` directory. Per artifact: the
//! package, target, triple, profile, input and output (path, sha256, size),
//! ABI version, tool, fork imports, instrumented-function count, whether it
//! was passed through. It also decides when an input is unchanged and can
//! be skipped. Reading and writing only; no instrumenting, no printing.

use std::io;

use camino::{Utf8Path, Utf8PathBuf};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The manifest's file name.
pub(crate) const FILE_NAME: &str = "forkify-manifest.json";

/// The manifest format version.
pub(crate) const FORMAT: u32 = 1;

/// Which artifact this is.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub(crate) struct ArtifactId {
    /// The target triple.
    pub triple: String,
    /// The package name.
    pub package: String,
    /// The cargo target name (the bin, example or lib).
    pub target: String,
    /// `bin`, `cdylib` or `example`.
    pub kind: String,
    /// The profile directory: `debug`, `release` or a custom profile's name.
    pub profile: String,
    /// cargo's package id.
    pub package_id: String,
}

impl ArtifactId {
    /// `package` or `package (bin name)` when the target is named otherwise,
    /// for messages.
    pub fn label(&self) -> String {
        if self.target == self.package || self.target == self.package.replace('-', "_") {
            self.package.clone()
        } else {
            format!("{} ({} `{}`)", self.package, self.kind, self.target)
        }
    }
}

/// A file, by path, content hash and size.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct FileInfo {
    pub path: Utf8PathBuf,
    /// Lower-case hex sha256 of the contents.
    pub sha256: String,
    pub size: u64,
}

impl FileInfo {
    /// Describes `bytes` as the contents of `path`.
    pub fn of(path: &Utf8Path, bytes: &[u8]) -> FileInfo {
        FileInfo {
            path: path.to_owned(),
            sha256: sha256_hex(bytes),
            size: bytes.len() as u64,
        }
    }
}

/// One artifact in the manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ArtifactEntry {
    #[serde(flatten)]
    pub id: ArtifactId,
    /// cargo's artifact (never modified).
    pub input: FileInfo,
    /// forkify's output.
    pub output: FileInfo,
    /// The fork ABI of the output.
    pub abi_version: u32,
    /// The tool that wrote it, e.g. `cargo-forkify 0.1.0`.
    pub tool: String,
    /// The fork imports it was instrumented for, sorted, as `module.name`.
    pub fork_imports: Vec<String>,
    /// How many functions were rewritten.
    pub instrumented_functions: u32,
    /// True when the input imports no fork import and was copied unchanged.
    pub passed_through: bool,
    /// How long instrumenting took, in milliseconds.
    pub duration_ms: u64,
}

impl ArtifactEntry {
    /// Whether this entry was made from the same input with the same tool
    /// and options, so its output can be kept.
    pub fn is_up_to_date(
        &self,
        input_sha256: &str,
        tool: &str,
        fork_imports: &[String],
        abi: u32,
    ) -> bool {
        self.input.sha256 == input_sha256
            && self.tool == tool
            && self.fork_imports == fork_imports
            && self.abi_version == abi
    }
}

/// The whole file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Manifest {
    /// Format version of this file.
    pub format: u32,
    /// The tool that last wrote it.
    pub tool: String,
    /// The ABI version it emits.
    pub abi_version: u32,
    /// Every artifact, sorted by triple, package, target.
    pub artifacts: Vec<ArtifactEntry>,
}

impl Manifest {
    /// An empty manifest.
    pub fn new(tool: &str) -> Manifest {
        Manifest {
            format: FORMAT,
            tool: tool.to_string(),
            abi_version: forkify_abi::ABI_VERSION,
            artifacts: Vec::new(),
        }
    }

    /// Reads `path`. A missing file is an empty manifest; an unreadable or
    /// foreign one too (it is only a cache and is rewritten), with the
    /// reason returned so the caller can warn.
    pub fn load(path: &Utf8Path, tool: &str) -> (Manifest, Option<String>) {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return (Manifest::new(tool), None),
            Err(e) => {
                return (
                    Manifest::new(tool),
                    Some(format!("cannot read `{path}`: {e}")),
                )
            }
        };
        match serde_json::from_str::<Manifest>(&text) {
            Ok(m) if m.format == FORMAT => (m, None),
            Ok(m) => (
                Manifest::new(tool),
                Some(format!(
                    "`{path}` has format {} (expected {FORMAT}); it will be rewritten",
                    m.format
                )),
            ),
            Err(e) => (
                Manifest::new(tool),
                Some(format!(
                    "`{path}` is not a forkify manifest ({e}); it will be rewritten"
                )),
            ),
        }
    }

    /// The entry for this output file.
    pub fn find(&self, output: &Utf8Path) -> Option<&ArtifactEntry> {
        self.artifacts.iter().find(|a| a.output.path == output)
    }

    /// Adds or replaces the entry for `entry.output.path`.
    pub fn upsert(&mut self, entry: ArtifactEntry) {
        self.artifacts
            .retain(|a| a.output.path != entry.output.path);
        self.artifacts.push(entry);
        self.artifacts
            .sort_by(|a, b| (&a.id, &a.output.path).cmp(&(&b.id, &b.output.path)));
    }

    /// Pretty JSON with a trailing newline.
    pub fn to_json(&self) -> String {
        // A struct of strings and numbers always serializes.
        let mut s = serde_json::to_string_pretty(self).unwrap_or_default();
        s.push('\n');
        s
    }
}

/// Lower-case hex sha256.
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let mut s = String::with_capacity(64);
    for b in digest {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, sha: &str) -> ArtifactEntry {
        ArtifactEntry {
            id: ArtifactId {
                triple: "wasm32-unknown-unknown".into(),
                package: name.into(),
                target: name.into(),
                kind: "bin".into(),
                profile: "release".into(),
                package_id: format!("path+file:///w/{name}#0.1.0"),
            },
            input: FileInfo {
                path: format!("/t/{name}.wasm").into(),
                sha256: sha.into(),
                size: 3,
            },
            output: FileInfo::of(Utf8Path::new(&format!("/t/forkify/{name}.wasm")), b"out"),
            abi_version: 1,
            tool: "cargo-forkify 0.1.0".into(),
            fork_imports: vec!["kernel.kernel_fork".into()],
            instrumented_functions: 2,
            passed_through: false,
            duration_ms: 1,
        }
    }

    #[test]
    fn sha256_is_hex_of_the_digest() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn upsert_replaces_by_output_and_round_trips() {
        let mut m = Manifest::new("cargo-forkify 0.1.0");
        m.upsert(entry("b", "1"));
        m.upsert(entry("a", "1"));
        m.upsert(entry("b", "2"));
        assert_eq!(m.artifacts.len(), 2);
        assert_eq!(m.artifacts[0].id.package, "a");
        assert_eq!(m.artifacts[1].input.sha256, "2");
        let back: Manifest = serde_json::from_str(&m.to_json()).expect("parses");
        assert_eq!(back, m);
        let json: serde_json::Value = serde_json::from_str(&m.to_json()).expect("parses");
        assert_eq!(json["artifacts"][0]["package"], "a", "the id is flattened");
        let found = m.find(Utf8Path::new("/t/forkify/b.wasm")).expect("found");
        let imports = vec!["kernel.kernel_fork".to_string()];
        assert!(found.is_up_to_date("2", "cargo-forkify 0.1.0", &imports, 1));
        assert!(!found.is_up_to_date("1", "cargo-forkify 0.1.0", &imports, 1));
        assert!(!found.is_up_to_date("2", "cargo-forkify 0.2.0", &imports, 1));
        assert!(!found.is_up_to_date("2", "cargo-forkify 0.1.0", &[], 1));
    }

    #[test]
    fn a_foreign_file_is_an_empty_manifest_and_a_warning() {
        let dir = Utf8PathBuf::from_path_buf(std::env::temp_dir()).expect("utf-8 temp dir");
        let path = dir.join(format!("forkify-manifest-test-{}.json", std::process::id()));
        std::fs::write(&path, "{\"not\": 1}").expect("write");
        let (m, warning) = Manifest::load(&path, "t");
        assert!(m.artifacts.is_empty());
        assert!(warning.expect("warns").contains("not a forkify manifest"));
        let _ = std::fs::remove_file(&path);
        let (m, warning) = Manifest::load(&path, "t");
        assert!(m.artifacts.is_empty() && warning.is_none());
    }
}
