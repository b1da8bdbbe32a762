//! The one error type of file operations: what failed, on which file, and why.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// Why a file could not be locked or written.
#[derive(Debug)]
#[non_exhaustive]
pub enum FileError {
    /// The path names no file (`/`, `..`).
    NotAFilePath(PathBuf),
    /// An operating-system call failed.
    Io {
        /// What was being done (`cannot replace`, `cannot lock`).
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The system's error.
        source: std::io::Error,
    },
    /// Another process held the lock for longer than the wait.
    Busy {
        /// The data file (not its lock file).
        path: PathBuf,
        /// How long this process waited.
        waited: Duration,
    },
    /// [`crate::TIMEOUT_ENV`] is not a number of seconds in range.
    BadTimeout(String),
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FileError::NotAFilePath(path) => write!(f, "{} is not a file path", path.display()),
            FileError::Io { action, path, source } => write!(f, "{action} {}: {source}", path.display()),
            FileError::Busy { path, waited } => write!(
                f,
                "{}: in use by another yitong process; gave up after {} s (set {}=SECONDS to wait longer)",
                path.display(),
                waited.as_secs(),
                crate::TIMEOUT_ENV
            ),
            FileError::BadTimeout(value) => write!(
                f,
                "{}: expected whole seconds from 0 to {}, got {value:?}",
                crate::TIMEOUT_ENV,
                crate::TIMEOUT_S_MAX
            ),
        }
    }
}

/// The system's error is part of the message (not a `source`), so that chains print it once.
impl std::error::Error for FileError {}
