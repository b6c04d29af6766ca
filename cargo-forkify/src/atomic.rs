//! Writing a file atomically: a temporary file in the same directory, then a
//! rename. Readers never see a partial file, a failure leaves nothing behind,
//! and a hard link at the destination (cargo's uplifted artifacts are hard
//! links into `deps/`) is replaced, never written through.

use std::fs;
use std::io::{self, Write};

use camino::{Utf8Path, Utf8PathBuf};

/// Writes `bytes` to `path` atomically. The directory must exist.
pub(crate) fn write_atomic(path: &Utf8Path, bytes: &[u8]) -> io::Result<()> {
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "the path has no file name"))?;
    let dir = match path.parent() {
        Some(d) if !d.as_str().is_empty() => d.to_owned(),
        _ => Utf8PathBuf::from("."),
    };
    // The thread id keeps parallel writers in one process apart.
    let tmp = dir.join(format!(
        ".{name}.forkify-{}-{:?}.tmp",
        std::process::id(),
        std::thread::current().id()
    ));
    let result = (|| {
        let mut file = fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_a_hard_link_without_touching_its_twin() {
        let dir = std::env::temp_dir().join(format!("forkify-atomic-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("mkdir");
        let dir = Utf8PathBuf::from_path_buf(dir).expect("utf-8 temp dir");
        let original = dir.join("deps-x.wasm");
        let link = dir.join("x.wasm");
        fs::write(&original, b"cargo's bytes").expect("write");
        fs::hard_link(&original, &link).expect("link");
        write_atomic(&link, b"new bytes").expect("write atomically");
        assert_eq!(fs::read(&link).expect("read"), b"new bytes");
        assert_eq!(fs::read(&original).expect("read"), b"cargo's bytes");
        assert!(write_atomic(&dir.join("missing/y.wasm"), b"y").is_err());
        let leftovers: Vec<_> = fs::read_dir(&dir)
            .expect("ls")
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty());
        let _ = fs::remove_dir_all(&dir);
    }
}
