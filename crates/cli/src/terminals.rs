//! The state the CLI's simulated terminals keep between runs: per terminal ID, the security
//! module's next transaction number, transactions in doubt, and records not yet written out.
//!
//! The state file is read and written under its lock ([`TerminalsFile::read_locked`]) for a
//! whole transaction, so that two processes never hand out the same transaction number.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};
use yitong_clearing::hotlist::GateHotlist;
use yitong_terminal::{GateState, TapRecord};

use crate::cardfile::write_atomically;
use yitong_files::FileLock;

/// The state file's name in the data directory.
pub const STATE_FILE_NAME: &str = "yitong-terminals.json";
/// Environment variable: the data directory.
pub const DATA_DIR_ENV: &str = "YITONG_DATA_DIR";

/// The terminal state file to use: `--state` if given, else the one file of the data directory
/// (`$YITONG_DATA_DIR`, `$XDG_DATA_HOME/yitong` or `~/.local/share/yitong`, created if missing)
/// whatever card is tapped: a simulated terminal numbers its transactions in one place, so two
/// cards in two folders never get the same tap ID, and its doubts are in one table. Never the
/// current directory by accident.
pub fn state_path(state: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(state) = state {
        return Ok(state.to_path_buf());
    }
    let dir = data_dir(|name| std::env::var_os(name))?;
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create the data directory {}", dir.display()))?;
    let path = dir.join(STATE_FILE_NAME);
    // Earlier versions kept the file in the current directory. Starting afresh beside it would
    // number the same terminals' transactions from 1 again: duplicate tap IDs.
    if !path.exists() && Path::new(STATE_FILE_NAME).exists() {
        anyhow::bail!(
            "--state: {STATE_FILE_NAME} in the current directory was the default before; the default is now {}. \
             Move it there, or pass --state {STATE_FILE_NAME}",
            path.display()
        );
    }
    Ok(path)
}

/// The data directory from the environment `env`, following the XDG base directory rules
/// (relative values of its variables are ignored).
pub(crate) fn data_dir(env: impl Fn(&str) -> Option<std::ffi::OsString>) -> anyhow::Result<PathBuf> {
    let var = |name: &str| env(name).map(PathBuf::from).filter(|p| p.is_absolute());
    if let Some(dir) = env(DATA_DIR_ENV).filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir));
    }
    if let Some(xdg) = var("XDG_DATA_HOME") {
        return Ok(xdg.join("yitong"));
    }
    match var("HOME") {
        Some(home) => Ok(home.join(".local/share/yitong")),
        None => anyhow::bail!(
            "--state: no data directory to keep the terminal state in; pass --state FILE or set {DATA_DIR_ENV}"
        ),
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct TerminalsFile {
    pub terminals: BTreeMap<String, TerminalEntry>,
    /// The gates' copy of the back office's hotlist (`yitong gate sync`).
    #[serde(default, skip_serializing_if = "is_empty_hotlist")]
    pub hotlist: GateHotlist,
}

fn is_empty_hotlist(hotlist: &GateHotlist) -> bool {
    hotlist.version == 0
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TerminalEntry {
    pub next_transaction_number: u32,
    #[serde(default)]
    pub state: GateState,
}

impl Default for TerminalEntry {
    fn default() -> Self {
        TerminalEntry { next_transaction_number: 1, state: GateState::default() }
    }
}

impl TerminalsFile {
    pub fn read(path: &Path) -> anyhow::Result<Self> {
        match std::fs::read_to_string(path) {
            Ok(text) => {
                serde_json::from_str(&text).with_context(|| format!("{}: not a terminal state file", path.display()))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
    }

    /// Locks the state file at `path` and reads it; the lock is held until the returned
    /// [`FileLock`] is dropped. Take a card image's lock first, if any.
    pub fn read_locked(path: &Path) -> anyhow::Result<(FileLock, Self)> {
        let lock = FileLock::acquire(path)?;
        Ok((lock, Self::read(path)?))
    }

    pub fn write(&self, path: &Path) -> anyhow::Result<()> {
        Ok(write_atomically(path, serde_json::to_string_pretty(self).expect("state serializes").as_bytes())?)
    }

    pub fn entry(&self, terminal_id: &[u8; 6]) -> TerminalEntry {
        self.terminals.get(&hex::encode_upper(terminal_id)).cloned().unwrap_or_default()
    }

    pub fn set(&mut self, terminal_id: &[u8; 6], entry: TerminalEntry) {
        self.terminals.insert(hex::encode_upper(terminal_id), entry);
    }
}

/// Appends records as JSON lines and syncs the file, under the file's lock (the last in the
/// order) so that terminals of other state files sharing it never interleave their lines.
pub fn append_records(path: &Path, records: &[TapRecord]) -> anyhow::Result<()> {
    if records.is_empty() {
        return Ok(());
    }
    let mut lines = String::new();
    for r in records {
        lines.push_str(&serde_json::to_string(r).expect("records serialize"));
        lines.push('\n');
    }
    let _lock = FileLock::acquire(path)?;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    f.write_all(lines.as_bytes())
        .and_then(|()| f.sync_all())
        .with_context(|| format!("cannot append to {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<std::ffi::OsString> + 'a {
        move |name| vars.iter().find(|(n, _)| *n == name).map(|(_, v)| v.into())
    }

    #[test]
    fn state_file_is_the_data_directorys_unless_given() {
        assert_eq!(state_path(Some(Path::new("s.json"))).unwrap(), Path::new("s.json"));
        let all = [(DATA_DIR_ENV, "/data"), ("XDG_DATA_HOME", "/xdg"), ("HOME", "/home/a")];
        assert_eq!(data_dir(env(&all)).unwrap(), Path::new("/data"));
        assert_eq!(data_dir(env(&all[1..])).unwrap(), Path::new("/xdg/yitong"));
        assert_eq!(data_dir(env(&all[2..])).unwrap(), Path::new("/home/a/.local/share/yitong"));
        // XDG: a relative XDG_DATA_HOME is invalid and ignored.
        assert_eq!(
            data_dir(env(&[("XDG_DATA_HOME", "rel"), ("HOME", "/h")])).unwrap(),
            Path::new("/h/.local/share/yitong")
        );
        let err = data_dir(env(&[])).unwrap_err().to_string();
        assert!(err.contains("--state") && err.contains(DATA_DIR_ENV), "{err}");
    }
}
