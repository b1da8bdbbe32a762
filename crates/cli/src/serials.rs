//! The serial register: per issuer, the next sequence number `yitong card issue` hands out when
//! no `--serial` is given (`yitong-issuer`'s `SerialAllocator`: city code · 16-digit sequence).
//!
//! The register is a JSON file beside the key file (`yitong-serials.json`, or `--serials`),
//! read and written under its lock, and advanced before the card image is written: a crash
//! between the two skips a serial, never hands one out twice.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};
use yitong_issuer::{Serial, SerialAllocator};

use crate::cardfile::write_atomically;
use yitong_files::FileLock;

/// The register's name beside the key file.
pub const REGISTER_FILE_NAME: &str = "yitong-serials.json";

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Register {
    /// Issuer ID (hex) → the next sequence number.
    next_sequence: BTreeMap<String, u64>,
}

/// The register to use: `--serials`, else beside the key file.
pub fn register_path(serials: Option<&Path>, keys: &Path) -> PathBuf {
    match serials {
        Some(path) => path.to_path_buf(),
        None => keys.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new(".")).join(REGISTER_FILE_NAME),
    }
}

/// Takes the next serial of the issuer `issuer_id` from the register at `path`, under its lock,
/// and saves the register before returning it.
pub fn allocate(path: &Path, issuer_id: [u8; 8]) -> anyhow::Result<Serial> {
    let _lock = FileLock::acquire(path)?;
    let mut register: Register = match std::fs::read_to_string(path) {
        Ok(text) => {
            serde_json::from_str(&text).with_context(|| format!("{}: not a serial register", path.display()))?
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Register::default(),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let issuer = hex::encode_upper(issuer_id);
    let city_code = u16::from_be_bytes([issuer_id[2], issuer_id[3]]);
    let mut allocator = match register.next_sequence.get(&issuer) {
        Some(&next) => SerialAllocator::resume(city_code, next),
        None => SerialAllocator::new(city_code),
    }
    .with_context(|| format!("issuer {issuer}"))?;
    let serial = allocator.allocate().with_context(|| format!("{}: issuer {issuer}", path.display()))?;
    register.next_sequence.insert(issuer, allocator.next_sequence());
    let text = serde_json::to_string_pretty(&register).expect("the register serializes");
    write_atomically(path, text.as_bytes())?;
    Ok(serial)
}
