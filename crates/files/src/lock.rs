//! Exclusive advisory locks on data files, so that parallel `yitong` processes take turns on a
//! card image, a terminal state file or a phone file for a whole transaction (read, run, write).
//!
//! The data files are replaced by rename, so the lock is taken on a sidecar `<file>.lock` that
//! is created once and never replaced or removed: a lock on the data file itself would stay on
//! the old inode. Callers take locks in one fixed order (phone file or card image, serial
//! register, terminal state, records) so that two processes never wait for each other. A process
//! that cannot get a lock within [`TIMEOUT_ENV`] seconds (default [`TIMEOUT_S_DEFAULT`]) gives up
//! with a message naming the file.

use std::ffi::OsString;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::FileError;

/// Environment variable: seconds to wait for another process's lock.
pub const TIMEOUT_ENV: &str = "YITONG_LOCK_TIMEOUT";
/// Seconds to wait for a lock unless [`TIMEOUT_ENV`] says otherwise.
pub const TIMEOUT_S_DEFAULT: u64 = 10;
/// The longest wait [`TIMEOUT_ENV`] may ask for (a day): a bound on every loop.
pub const TIMEOUT_S_MAX: u64 = 86_400;
/// How long to sleep between attempts; short against a transaction's few milliseconds.
const RETRY_INTERVAL: Duration = Duration::from_millis(5);

/// An exclusive lock on a data file, held until dropped (closing the lock file releases it, also
/// when the process dies).
#[derive(Debug)]
pub struct FileLock {
    _file: File,
}

impl FileLock {
    /// Locks `data` (through `<data>.lock`), waiting up to the configured timeout.
    pub fn acquire(data: &Path) -> Result<FileLock, FileError> {
        Self::acquire_within(data, timeout()?)
    }

    /// Locks `data`, waiting up to `timeout`.
    pub fn acquire_within(data: &Path, timeout: Duration) -> Result<FileLock, FileError> {
        let path = lock_path(data)?;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|source| FileError::Io { action: "cannot open the lock file", path: path.clone(), source })?;
        let start = Instant::now();
        loop {
            // Fully qualified: since Rust 1.89 `File` has an inherent `try_lock` of its own.
            match fs4::FileExt::try_lock(&file) {
                Ok(()) => return Ok(FileLock { _file: file }),
                Err(fs4::TryLockError::WouldBlock) if start.elapsed() < timeout => std::thread::sleep(RETRY_INTERVAL),
                Err(fs4::TryLockError::WouldBlock) => {
                    return Err(FileError::Busy { path: data.to_path_buf(), waited: timeout })
                }
                Err(fs4::TryLockError::Error(source)) => {
                    return Err(FileError::Io { action: "cannot lock", path, source })
                }
            }
        }
    }
}

/// The sidecar lock file of `data`: `card.se` → `card.se.lock`.
pub fn lock_path(data: &Path) -> Result<PathBuf, FileError> {
    let name = data.file_name().ok_or_else(|| FileError::NotAFilePath(data.to_path_buf()))?;
    let mut lock_name = OsString::from(name);
    lock_name.push(".lock");
    Ok(data.with_file_name(lock_name))
}

/// The wait for a lock: [`TIMEOUT_ENV`] in whole seconds, else [`TIMEOUT_S_DEFAULT`].
fn timeout() -> Result<Duration, FileError> {
    let Some(value) = std::env::var_os(TIMEOUT_ENV) else {
        return Ok(Duration::from_secs(TIMEOUT_S_DEFAULT));
    };
    let seconds = value
        .to_str()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .filter(|s| *s <= TIMEOUT_S_MAX)
        .ok_or_else(|| FileError::BadTimeout(value.to_string_lossy().into_owned()))?;
    Ok(Duration::from_secs(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_file_sits_beside_the_data_file() {
        assert_eq!(lock_path(Path::new("dir/card.se")).unwrap(), Path::new("dir/card.se.lock"));
        assert_eq!(lock_path(Path::new("card.se")).unwrap(), Path::new("card.se.lock"));
        assert!(lock_path(Path::new("/")).is_err());
    }

    #[test]
    fn a_held_lock_makes_the_next_wait_and_give_up_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("card.se");
        let held = FileLock::acquire_within(&data, Duration::ZERO).unwrap();
        // A second open file description conflicts with the first, as another process's would.
        let start = Instant::now();
        let err = FileLock::acquire_within(&data, Duration::from_millis(50)).unwrap_err();
        assert!(start.elapsed() >= Duration::from_millis(50));
        let message = err.to_string();
        assert!(message.contains("card.se: in use by another yitong process"), "{message}");
        assert!(message.contains(TIMEOUT_ENV), "{message}");
        drop(held);
        FileLock::acquire_within(&data, Duration::ZERO).unwrap();
        assert!(dir.path().join("card.se.lock").exists());
    }
}
