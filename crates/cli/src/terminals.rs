//! The state the CLI's simulated terminals keep between runs: per terminal ID, the security
//! module's next transaction number, transactions in doubt, and records not yet written out.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use anyhow::Context;
use serde::{Deserialize, Serialize};
use yitong_terminal::{GateState, TapRecord};

use crate::cardfile::write_atomically;

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct TerminalsFile {
    pub terminals: BTreeMap<String, TerminalEntry>,
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

    pub fn write(&self, path: &Path) -> anyhow::Result<()> {
        write_atomically(path, serde_json::to_string_pretty(self).expect("state serializes").as_bytes())
    }

    pub fn entry(&self, terminal_id: &[u8; 6]) -> TerminalEntry {
        self.terminals.get(&hex::encode_upper(terminal_id)).cloned().unwrap_or_default()
    }

    pub fn set(&mut self, terminal_id: &[u8; 6], entry: TerminalEntry) {
        self.terminals.insert(hex::encode_upper(terminal_id), entry);
    }
}

/// Appends records as JSON lines and syncs the file.
pub fn append_records(path: &Path, records: &[TapRecord]) -> anyhow::Result<()> {
    if records.is_empty() {
        return Ok(());
    }
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    for r in records {
        writeln!(f, "{}", serde_json::to_string(r).expect("records serialize"))?;
    }
    f.sync_all()?;
    Ok(())
}
