//! The phone file: a simulated phone on disk — its identity, its registration with the service
//! (phone ID and token), its secure element (one card image per city) and the flows in flight.
//!
//! JSON, format `yitong-phone` version 1:
//!
//! ```json
//! {
//!   "format": "yitong-phone",
//!   "version": 1,
//!   "device": { "device_id": "…", "se_id": "…", "maker": "Xiaomi", "model": "Mi 6" },
//!   "server": "http://127.0.0.1:8080",
//!   "phone_id": "…",
//!   "token": "ytp_…",
//!   "cards": { "beijing": { "serial": "…", "card_number": "…", "channel": "maker-wallet", "image": "59545345…" } },
//!   "in_flight": { "beijing": { "kind": "top_up", "order_id": "TU-…", "amount_fen": 5000, "step": "credit_sent" } }
//! }
//! ```
//!
//! `retired` (absent when empty) keeps the cards closed for a transfer or a deletion, each as
//! `{ "city", "purpose", "card": {…} }`. `device.carrier` is present for NFC-SIM phones; `server`, `phone_id` and `token` once the
//! phone is registered; `image` is the card's memory as `yitong-card` keeps it (starting `YTSE`),
//! hex. `in_flight` holds at most one flow per city ([`InFlight`]), written *before* the step
//! that makes it uncertain (CREDIT FOR LOAD, a closure command), so that the next command on the
//! phone finds it and recovers it first.
//!
//! The file is locked for a whole command ([`PhoneFile::open`]: the sidecar `<file>.lock`) and
//! replaced atomically at every save (temporary file, fsync, rename: `yitong-files`), mode 0600
//! since it holds the token and the card's keys. A file that does not parse or does not hold
//! together is refused as damaged, naming what is wrong.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use yitong_files::FileLock;

use crate::api::{Device, Purpose};
use crate::error::WalletError;
use crate::token::Token;

/// The `format` field.
pub const FORMAT: &str = "yitong-phone";
/// The version this wallet writes and reads.
pub const VERSION: u32 = 1;
/// The largest phone file read: ten cities' images are about 40 KB.
const FILE_BYTES_MAX: u64 = 4 * 1024 * 1024;
/// Closed cards kept; the oldest are dropped past it.
pub const RETIRED_MAX: usize = 16;

/// The phone, as the file holds it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Phone {
    /// Always [`FORMAT`].
    pub format: String,
    /// Always [`VERSION`].
    pub version: u32,
    /// The device's identity.
    pub device: Device,
    /// The service the phone registered with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    /// The service's ID of the phone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone_id: Option<String>,
    /// The phone's token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<Token>,
    /// A new token the phone made and proposed to its service (`rotate-token`) without hearing
    /// that it was taken: the next command that talks to the service finds out which of the two
    /// is the phone's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_token: Option<Token>,
    /// The SE's cards, by city.
    #[serde(default)]
    pub cards: BTreeMap<String, PhoneCard>,
    /// Flows in flight, by city.
    #[serde(default)]
    pub in_flight: BTreeMap<String, InFlight>,
    /// Cards closed (emptied and blocked) for a transfer or a deletion, as the SE last held
    /// them, oldest first: kept so that the rider (and a test) can see the block.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retired: Vec<RetiredCard>,
}

/// A closed card.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetiredCard {
    /// Its city.
    pub city: String,
    /// Why it was closed.
    pub purpose: Purpose,
    /// The card as the SE held it after the closure.
    pub card: PhoneCard,
}

/// A card on the phone's SE.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PhoneCard {
    /// The application serial, 20 hex digits.
    pub serial: String,
    /// The printed card number.
    pub card_number: String,
    /// The channel it was signed up through.
    pub channel: String,
    /// The card's memory (`YTSE…`).
    #[serde(with = "crate::api::hex_bytes")]
    pub image: Vec<u8>,
}

/// Where a top-up (or the load of a transferred balance) is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TopUpStep {
    /// The order is opened (maybe paid); nothing was sent to the card that loads.
    Opened,
    /// CREDIT FOR LOAD is (about to be) sent: the card may have the money.
    CreditSent,
}

/// A flow in flight for a city.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum InFlight {
    /// A sign-up: its fee order, so that a repeat pays nothing twice.
    Enroll {
        /// The fee order's ID.
        fee_order_id: String,
        /// The channel.
        channel: String,
    },
    /// A top-up, or the load of a transferred balance (`claim_code`).
    TopUp {
        /// The order.
        order_id: String,
        /// Fen.
        amount_fen: i64,
        /// Where it is.
        step: TopUpStep,
        /// The transfer code whose funded order this is (no payment step).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        claim_code: Option<String>,
    },
    /// The card's closure (emptied and blocked) for a transfer or a deletion.
    Closure {
        /// Why.
        purpose: Purpose,
        /// The card.
        serial: String,
    },
    /// A closed card's balance waiting for the new phone's claim.
    Transfer {
        /// The transfer code.
        code: String,
        /// The old card.
        serial: String,
        /// What moved, fen.
        moved_fen: i64,
    },
}

impl Phone {
    /// A new phone, not registered, with no cards.
    pub fn new(device: Device) -> Phone {
        Phone {
            format: FORMAT.into(),
            version: VERSION,
            device,
            server: None,
            phone_id: None,
            token: None,
            pending_token: None,
            cards: BTreeMap::new(),
            in_flight: BTreeMap::new(),
            retired: Vec::new(),
        }
    }

    /// Parses a phone file's bytes, checking that they hold together.
    pub fn decode(bytes: &[u8]) -> Result<Phone, String> {
        #[derive(Deserialize)]
        struct Header {
            format: Option<String>,
            version: Option<u32>,
        }
        let header: Header = serde_json::from_slice(bytes).map_err(|e| format!("damaged: not JSON ({e})"))?;
        if header.format.as_deref() != Some(FORMAT) {
            return Err(format!("not a phone file (no \"format\": \"{FORMAT}\")"));
        }
        match header.version {
            Some(VERSION) => {}
            Some(other) => return Err(format!("phone file version {other}; this yitong reads version {VERSION}")),
            None => return Err("damaged: no version".into()),
        }
        let phone: Phone = serde_json::from_slice(bytes).map_err(|e| format!("damaged: {e}"))?;
        phone.check().map_err(|why| format!("damaged: {why}"))?;
        Ok(phone)
    }

    /// The file's bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut text = serde_json::to_string_pretty(self).expect("a phone serializes");
        text.push('\n');
        text.into_bytes()
    }

    /// What ties the fields together.
    fn check(&self) -> Result<(), String> {
        if self.device.device_id.trim().is_empty() || self.device.se_id.trim().is_empty() {
            return Err("empty device_id or se_id".into());
        }
        if self.token.is_some() != self.phone_id.is_some() || (self.token.is_some() && self.server.is_none()) {
            return Err("a token needs its phone_id and server, and the other way round".into());
        }
        for (city, card) in &self.cards {
            if card.serial.len() != 20 || !card.serial.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(format!("cards.{city}.serial is not 20 hex digits"));
            }
            if !card.image.starts_with(b"YTSE") {
                return Err(format!("cards.{city}.image is not a card image (it starts YTSE)"));
            }
        }
        for (city, flow) in &self.in_flight {
            if let InFlight::TopUp { step: TopUpStep::CreditSent, .. } | InFlight::Closure { .. } = flow {
                if !self.cards.contains_key(city) {
                    return Err(format!("in_flight.{city} needs the city's card"));
                }
            }
        }
        Ok(())
    }

    /// The registration: (server, token), when registered.
    pub fn registration(&self) -> Option<(&str, &Token)> {
        Some((self.server.as_deref()?, self.token.as_ref()?))
    }
}

/// A phone file locked for one command: read at opening, written at each [`save`](Self::save).
#[derive(Debug)]
pub struct PhoneFile {
    path: PathBuf,
    /// The phone as last read or saved.
    pub phone: Phone,
    _lock: FileLock,
}

impl PhoneFile {
    /// Locks and reads the phone file at `path` (waiting for another process's command).
    pub fn open(path: &Path) -> Result<PhoneFile, WalletError> {
        let lock = FileLock::acquire(path).map_err(|e| file_error(path, e.to_string()))?;
        let bytes = read_bounded(path)?;
        let phone = Phone::decode(&bytes).map_err(|why| file_error(path, why))?;
        Ok(PhoneFile { path: path.to_path_buf(), phone, _lock: lock })
    }

    /// Creates the phone file at `path` for `phone`; an existing file is replaced only with
    /// `replace`.
    pub fn create(path: &Path, phone: Phone, replace: bool) -> Result<PhoneFile, WalletError> {
        let lock = FileLock::acquire(path).map_err(|e| file_error(path, e.to_string()))?;
        if !replace && path.exists() {
            return Err(file_error(path, "exists already (--force replaces it)".into()));
        }
        let file = PhoneFile { path: path.to_path_buf(), phone, _lock: lock };
        file.save()?;
        Ok(file)
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes the phone atomically.
    pub fn save(&self) -> Result<(), WalletError> {
        yitong_files::write_atomically(&self.path, &self.phone.encode())
            .map_err(|e| file_error(&self.path, e.to_string()))
    }
}

/// Reads a phone file without locking it (files are replaced whole, so a read is consistent):
/// for commands that only read, like a gate's view of the card.
pub fn read(path: &Path) -> Result<Phone, WalletError> {
    Phone::decode(&read_bounded(path)?).map_err(|why| file_error(path, why))
}

fn read_bounded(path: &Path) -> Result<Vec<u8>, WalletError> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|e| file_error(path, format!("cannot read: {e}")))?;
    let mut bytes = Vec::new();
    file.take(FILE_BYTES_MAX + 1).read_to_end(&mut bytes).map_err(|e| file_error(path, format!("cannot read: {e}")))?;
    if bytes.len() as u64 > FILE_BYTES_MAX {
        return Err(file_error(path, format!("larger than {FILE_BYTES_MAX} bytes: not a phone file")));
    }
    Ok(bytes)
}

fn file_error(path: &Path, why: String) -> WalletError {
    WalletError::PhoneFile { path: path.to_path_buf(), why }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device() -> Device {
        Device {
            device_id: "d-1".into(),
            se_id: "SE-1".into(),
            maker: "Xiaomi".into(),
            model: "Mi 6".into(),
            carrier: None,
        }
    }

    #[test]
    fn a_phone_round_trips_and_its_file_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("phone.json");
        let mut phone = Phone::new(device());
        phone.server = Some("http://127.0.0.1:8080".into());
        phone.phone_id = Some("p-1".into());
        phone.token = Some(Token::new("ytp_x".into()));
        phone.cards.insert(
            "beijing".into(),
            PhoneCard {
                serial: "10000000000000000001".into(),
                card_number: "1".into(),
                channel: "maker-wallet".into(),
                image: b"YTSE\x01".to_vec(),
            },
        );
        phone.in_flight.insert(
            "beijing".into(),
            InFlight::TopUp {
                order_id: "TU-1".into(),
                amount_fen: 5_000,
                step: TopUpStep::CreditSent,
                claim_code: None,
            },
        );
        let file = PhoneFile::create(&path, phone, false).unwrap();
        drop(file);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("\"image\": \"5954534501\""), "{text}");
        assert!(text.contains("\"kind\": \"top_up\""), "{text}");
        let again = PhoneFile::open(&path).unwrap();
        assert_eq!(again.phone.in_flight["beijing"], {
            InFlight::TopUp {
                order_id: "TU-1".into(),
                amount_fen: 5_000,
                step: TopUpStep::CreditSent,
                claim_code: None,
            }
        });
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        drop(again);
        let error = PhoneFile::create(&path, Phone::new(device()), false).unwrap_err().to_string();
        assert!(error.ends_with("exists already (--force replaces it)"), "{error}");
    }

    #[test]
    fn damaged_and_foreign_files_say_what_they_are() {
        let good = String::from_utf8(Phone::new(device()).encode()).unwrap();
        let cases = [
            (good[..good.len() / 2].to_owned(), "damaged: not JSON"),
            ("{}".to_owned(), "not a phone file"),
            (good.replace("\"version\": 1", "\"version\": 2"), "phone file version 2; this yitong reads version 1"),
            (good.replace("\"d-1\"", "\"\""), "damaged: empty device_id"),
            (good.replace("\"cards\": {}", "\"cards\": {\"beijing\": {}}"), "damaged: missing field"),
            (good.replace("\"cards\": {}", "\"cards\": {}, \"extra\": 1"), "damaged: unknown field `extra`"),
            (
                good.replace(
                    "\"in_flight\": {}",
                    "\"in_flight\": {\"beijing\": {\"kind\": \"closure\", \"purpose\": \"delete\", \"serial\": \"x\"}}",
                ),
                "damaged: in_flight.beijing needs the city's card",
            ),
        ];
        for (text, expected) in cases {
            let error = Phone::decode(text.as_bytes()).unwrap_err();
            assert!(error.starts_with(expected), "{expected}: got {error}");
        }
        let error = Phone::decode(&good.replace("\"cards\": {}", r#""cards": {"beijing": {"serial": "10000000000000000001", "card_number": "1", "channel": "c", "image": "00"}}"#).into_bytes()).unwrap_err();
        assert_eq!(error, "damaged: cards.beijing.image is not a card image (it starts YTSE)");
    }
}
