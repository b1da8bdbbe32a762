//! Yitong's data files on disk — card images, terminal state, serial registers, phone files —
//! written so that a crash or a parallel process never sees half of one, and locked so that
//! parallel `yitong` processes take turns on a file for a whole transaction.
//!
//! The principal items are [`write_atomically`] (temporary file of a unique name, fsync, rename,
//! fsync of the directory) and [`FileLock`] (an exclusive advisory lock on the sidecar
//! `<file>.lock`). This crate knows nothing of what the files hold: formats and checksums are
//! their owners' (`yitong-cli`'s card image files, `yitong-wallet`'s phone files).
//!
//! ```
//! let dir = tempfile::tempdir().unwrap();
//! let path = dir.path().join("state.json");
//! let _lock = yitong_files::FileLock::acquire(&path).unwrap();
//! yitong_files::write_atomically(&path, b"{}").unwrap();
//! assert_eq!(std::fs::read(&path).unwrap(), b"{}");
//! ```
#![forbid(unsafe_code)]

mod atomic;
mod error;
mod lock;

pub use atomic::write_atomically;
pub use error::FileError;
pub use lock::{lock_path, FileLock, TIMEOUT_ENV, TIMEOUT_S_DEFAULT, TIMEOUT_S_MAX};
