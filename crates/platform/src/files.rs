//! Files replaced whole and atomically: a unique temporary file beside the target (created
//! readable and writable by its owner only), written and fsynced, renamed over the target, then
//! the directory fsynced. A reader sees the old file or the new one, never a part; a crash leaves
//! at most a stray `.NAME.*.tmp`. The CLI's card images, terminal state and key files and the
//! server's development keys are all written here.

use std::io::Write;
use std::path::Path;

/// Why a file could not be written.
#[derive(Debug)]
pub struct WriteError {
    /// What was being done, naming the file.
    pub what: String,
    /// The operating system's error.
    pub error: std::io::Error,
}

impl std::fmt::Display for WriteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.what)
    }
}

impl std::error::Error for WriteError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

/// Replaces `path` with `bytes` atomically; the new file is readable by its owner only (mode
/// 0600 on Unix).
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), WriteError> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let fail = |what: String| move |error| WriteError { what, error };
    let name = path.file_name().ok_or_else(|| WriteError {
        what: format!("{} is not a file path", path.display()),
        error: std::io::Error::from(std::io::ErrorKind::InvalidInput),
    })?;
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{}.", name.to_string_lossy()))
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(fail(format!("cannot write a temporary file in {}", dir.display())))?;
    tmp.write_all(bytes)
        .and_then(|()| tmp.as_file().sync_all())
        .map_err(fail(format!("cannot write {}", tmp.path().display())))?;
    tmp.persist(path).map_err(|e| e.error).map_err(fail(format!("cannot replace {}", path.display())))?;
    sync_dir(dir)
}

#[cfg(unix)]
fn sync_dir(dir: &Path) -> Result<(), WriteError> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|error| WriteError { what: format!("cannot sync {}", dir.display()), error })
}

/// Windows cannot open a directory as a file; NTFS journals the rename itself.
#[cfg(not(unix))]
fn sync_dir(_: &Path) -> Result<(), WriteError> {
    Ok(())
}
