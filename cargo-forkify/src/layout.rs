//! Where forkify's outputs go, written once: for cargo's artifact
//! `<target-dir>/<triple>/<profile>/[examples/]<name>.wasm`, the output is
//! `<target-dir>/<triple>/<profile>/forkify/[examples/]<name>.wasm`, and the
//! manifest that records it is `<target-dir>/<triple>/<profile>/forkify/
//! forkify-manifest.json`. Custom profiles get their own directory, as cargo
//! gives them.

use camino::{Utf8Path, Utf8PathBuf};

use crate::manifest;

/// The directory forkify writes into, beside cargo's own outputs.
pub(crate) const DIR: &str = "forkify";

/// Where the output of one cargo artifact goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OutputLayout {
    /// `<target-dir>/<triple>/<profile>/forkify`.
    pub dir: Utf8PathBuf,
    /// The output file.
    pub output: Utf8PathBuf,
    /// The profile directory's name: `debug`, `release`, or a custom one.
    pub profile: String,
}

impl OutputLayout {
    /// The layout for cargo's artifact at `artifact`.
    pub fn for_artifact(artifact: &Utf8Path) -> OutputLayout {
        let name = artifact.file_name().unwrap_or("out.wasm");
        let parent = artifact.parent().unwrap_or(Utf8Path::new("."));
        let (profile_dir, sub) = match parent.file_name() {
            Some("examples") => (parent.parent().unwrap_or(parent), Some("examples")),
            _ => (parent, None),
        };
        let dir = profile_dir.join(DIR);
        let mut output = dir.clone();
        if let Some(sub) = sub {
            output.push(sub);
        }
        output.push(name);
        OutputLayout {
            dir,
            output,
            profile: profile_dir.file_name().unwrap_or("").to_string(),
        }
    }

    /// The manifest that records the output.
    pub fn manifest(&self) -> Utf8PathBuf {
        self.dir.join(manifest::FILE_NAME)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_are_re_rooted_under_forkify() {
        let l = OutputLayout::for_artifact(Utf8Path::new(
            "/t/wasm32-unknown-unknown/release/hello.wasm",
        ));
        assert_eq!(
            l.output,
            "/t/wasm32-unknown-unknown/release/forkify/hello.wasm"
        );
        assert_eq!(l.profile, "release");
        assert_eq!(
            l.manifest(),
            "/t/wasm32-unknown-unknown/release/forkify/forkify-manifest.json"
        );
        let l = OutputLayout::for_artifact(Utf8Path::new(
            "/t/wasm64-unknown-unknown/dist/examples/demo.wasm",
        ));
        assert_eq!(
            l.output,
            "/t/wasm64-unknown-unknown/dist/forkify/examples/demo.wasm"
        );
        assert_eq!(l.profile, "dist");
        assert_eq!(
            l.manifest(),
            "/t/wasm64-unknown-unknown/dist/forkify/forkify-manifest.json"
        );
    }
}
