//! Replacing a file whole.

use std::io::Write;
use std::path::Path;

use crate::FileError;

/// Writes `bytes` to `path` so that a crash or a parallel reader sees the old file or the new
/// one, never half of one: a temporary file of a unique name in the same directory, fsync,
/// rename over `path`, fsync of the directory (which makes the rename itself durable). The new
/// file has mode 0600 on Unix (the temporary file's), whatever the old one had.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), FileError> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().ok_or_else(|| FileError::NotAFilePath(path.to_path_buf()))?;
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{}.", name.to_string_lossy()))
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(|source| FileError::Io {
            action: "cannot write a temporary file in",
            path: dir.to_path_buf(),
            source,
        })?;
    tmp.write_all(bytes).and_then(|()| tmp.as_file().sync_all()).map_err(|source| FileError::Io {
        action: "cannot write",
        path: tmp.path().to_path_buf(),
        source,
    })?;
    tmp.persist(path).map_err(|e| FileError::Io {
        action: "cannot replace",
        path: path.to_path_buf(),
        source: e.error,
    })?;
    sync_dir(dir)
}

#[cfg(unix)]
fn sync_dir(dir: &Path) -> Result<(), FileError> {
    std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(|source| FileError::Io {
        action: "cannot sync",
        path: dir.to_path_buf(),
        source,
    })
}

/// Windows cannot open a directory as a file; NTFS journals the rename itself.
#[cfg(not(unix))]
fn sync_dir(_: &Path) -> Result<(), FileError> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replacing_leaves_no_temporary_files_and_only_the_owner_may_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("phone.json");
        write_atomically(&path, b"one").unwrap();
        write_atomically(&path, b"two").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, ["phone.json"]);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
    }

    #[test]
    fn a_path_that_names_no_file_is_refused() {
        assert!(matches!(write_atomically(Path::new("/"), b"x"), Err(FileError::NotAFilePath(_))));
        let missing = Path::new("/nonexistent-yitong-dir/phone.json");
        let message = write_atomically(missing, b"x").unwrap_err().to_string();
        assert!(message.starts_with("cannot write a temporary file in /nonexistent-yitong-dir"), "{message}");
    }
}
