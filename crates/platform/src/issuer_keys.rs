//! The issuers' master keys as the platform holds them: personalization of new cards (all five
//! keys), the over-the-air load host (load keys) and TAC verification (TAC keys). Loaded from a
//! directory of key files ([`IssuerKeyring::from_dir`]) or, for development, made once into the
//! data directory ([`IssuerKeyring::development`]); never returned, never logged (`MasterKeys`'
//! `Debug` shows no key material).

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use yitong_crypto::Algorithm;
use yitong_record::TacKeys;
use yitong_terminal::{IssuerKeys, SoftwareLoadHost, SoftwarePsam};

use crate::cities::{Cities, City};
use crate::keyfile::{KeyFileError, KeySet};
use yitong_files::{write_atomically, FileError};

/// Each city issuer's master keys, by city code; the newest version issues new cards.
#[derive(Clone, Debug, Default)]
pub struct IssuerKeyring {
    /// (city code, key version) → (issuer ID, keys).
    keys: BTreeMap<(u16, u8), ([u8; 8], IssuerKeys)>,
}

impl IssuerKeyring {
    /// No keys.
    pub fn new() -> IssuerKeyring {
        IssuerKeyring::default()
    }

    /// Adds (or replaces) the keys of `city`'s issuer of one version.
    pub fn add(&mut self, city: &City, keys: IssuerKeys) {
        self.keys.insert((city.city_code(), keys.key_version), (city.issuer_id(), keys));
    }

    /// The keys new cards of `city` are personalized with: its newest version.
    pub fn for_issuing(&self, city: &City) -> Option<&IssuerKeys> {
        let code = city.city_code();
        self.keys.range((code, 0)..=(code, u8::MAX)).next_back().map(|(_, (_, keys))| keys)
    }

    /// A load host with every issuer's load keys (and nothing else).
    pub fn load_host(&self) -> SoftwareLoadHost {
        let mut host = SoftwareLoadHost::new();
        for (issuer_id, keys) in self.keys.values() {
            host.add_keys(*issuer_id, keys.key_version, keys.master.load().clone());
        }
        host
    }

    /// The service desk's security module for closing cards: every issuer's purchase and
    /// maintenance keys (and nothing else), terminal `terminal_id`, numbering from
    /// `next_transaction_number` (the platform keeps the number in its database).
    pub fn service_desk_psam(&self, terminal_id: [u8; 6], next_transaction_number: u32) -> SoftwarePsam {
        let mut psam = SoftwarePsam::new(terminal_id, next_transaction_number);
        for (issuer_id, keys) in self.keys.values() {
            psam.add_issuer(*issuer_id, keys.clone());
        }
        psam
    }

    /// Every issuer's TAC keys, keeping [`CARD_KEYS_CACHED`](yitong_record::CARD_KEYS_CACHED)
    /// cards' keys (the service's back office keeps as many as its store keeps shadows of:
    /// [`IssuerKeyring::tac_keys_keeping`]).
    pub fn tac_keys(&self) -> TacKeys {
        self.add_tac_keys(TacKeys::new())
    }

    /// Every issuer's TAC keys, keeping `cards` cards' keys: the back office's checks, as many
    /// cards as its store keeps shadows of
    /// ([`Store::shadow_cache_cards`](crate::store::Store::shadow_cache_cards)),
    /// so that a card's later records of the day skip the key's diversification as they skip
    /// reading its shadow.
    pub fn tac_keys_keeping(&self, cards: usize) -> TacKeys {
        self.add_tac_keys(TacKeys::keeping(cards))
    }

    /// Every issuer's TAC keys, keeping [`FEW_CARD_KEYS`] cards' keys: for services that check a
    /// card's TAC once or twice (over-the-air loads, closures).
    pub fn tac_keys_of_few_cards(&self) -> TacKeys {
        self.add_tac_keys(TacKeys::keeping(FEW_CARD_KEYS))
    }

    fn add_tac_keys(&self, mut tac: TacKeys) -> TacKeys {
        for (issuer_id, keys) in self.keys.values() {
            tac.add(*issuer_id, keys.key_version, keys.master.tac().clone());
        }
        tac
    }
}

/// Card keys kept by [`IssuerKeyring::tac_keys_of_few_cards`]: a load's or a closure's retries.
pub const FEW_CARD_KEYS: usize = 4_096;

/// The directory of development keys inside a data directory.
pub const DEV_KEYS_DIR: &str = "dev-keys";

/// Why the issuers' keys could not be loaded.
#[derive(Debug)]
#[non_exhaustive]
pub enum KeyringError {
    /// A key file (named in the message).
    File(KeyFileError),
    /// The keys directory cannot be listed or created.
    Dir {
        /// The directory.
        dir: PathBuf,
        /// The operating system's error.
        error: std::io::Error,
    },
    /// A key file whose issuer ID is no city's (`City::issuer_id`).
    UnknownIssuer {
        /// The file (or the environment variable holding it).
        file: String,
        /// Its issuer ID, hex.
        issuer_id: String,
    },
    /// Two files with keys of one issuer and key version.
    Duplicate {
        /// The second file (or environment variable).
        file: String,
    },
    /// A development key file that cannot be written.
    Write(FileError),
}

impl fmt::Display for KeyringError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyringError::File(error) => write!(f, "{error}"),
            KeyringError::Dir { dir, error } => write!(f, "{}: {error}", dir.display()),
            KeyringError::UnknownIssuer { file, issuer_id } => {
                write!(f, "{file}: issuer {issuer_id} is no city's (a city's issuer ID is 0000 · city code · 00000001)")
            }
            KeyringError::Duplicate { file } => {
                write!(f, "{file}: another file holds keys of the same issuer and key version")
            }
            KeyringError::Write(error) => write!(f, "{error}"),
        }
    }
}

impl std::error::Error for KeyringError {}

impl From<KeyFileError> for KeyringError {
    fn from(error: KeyFileError) -> KeyringError {
        KeyringError::File(error)
    }
}

impl IssuerKeyring {
    /// Every full key file (`*.toml`, as `yitong keys new` writes them) in `dir`, each mapped to
    /// its city by its issuer ID. Cities with no file have no keys: they cannot issue or load.
    /// Returns the keyring and the names of the cities it holds keys of.
    pub fn from_dir(dir: &Path, cities: &Cities) -> Result<(IssuerKeyring, Vec<String>), KeyringError> {
        let entries = std::fs::read_dir(dir).map_err(|error| KeyringError::Dir { dir: dir.to_owned(), error })?;
        let mut paths = Vec::new();
        for entry in entries {
            let path = entry.map_err(|error| KeyringError::Dir { dir: dir.to_owned(), error })?.path();
            if path.extension().is_some_and(|e| e == "toml") {
                paths.push(path);
            }
        }
        paths.sort();
        let sets = paths.iter().map(|path| KeySet::read(path)).collect::<Result<Vec<_>, _>>()?;
        Self::from_key_sets(sets, cities)
    }

    /// Full key files held in memory (environment variables): as [`from_dir`](Self::from_dir),
    /// errors naming the variable.
    pub fn from_texts(texts: &KeyTexts, cities: &Cities) -> Result<(IssuerKeyring, Vec<String>), KeyringError> {
        let sets = texts.0.iter().map(|(name, text)| KeySet::parse(text, name)).collect::<Result<Vec<_>, _>>()?;
        Self::from_key_sets(sets, cities)
    }

    /// The keyring of these full key sets, each mapped to its city by its issuer ID.
    fn from_key_sets(sets: Vec<KeySet>, cities: &Cities) -> Result<(IssuerKeyring, Vec<String>), KeyringError> {
        let mut keyring = IssuerKeyring::new();
        let mut held = Vec::new();
        for set in sets {
            let city =
                cities.iter().find(|c| c.issuer_id() == set.issuer_id).ok_or_else(|| KeyringError::UnknownIssuer {
                    file: set.origin().to_owned(),
                    issuer_id: hex::encode_upper(set.issuer_id),
                })?;
            if keyring.keys.contains_key(&(city.city_code(), set.key_version)) {
                return Err(KeyringError::Duplicate { file: set.origin().to_owned() });
            }
            let master = set.master_keys("serve --keys")?;
            keyring.add(city, IssuerKeys { key_version: set.key_version, master });
            if !held.iter().any(|name| name == city.name()) {
                held.push(city.name().to_owned());
            }
        }
        Ok((keyring, held))
    }

    /// DEVELOPMENT keys of every city, kept in `<data_dir>/dev-keys/<city>.toml`: read if there,
    /// else made from the system's randomness (DES, version 1) and written once (mode 0600,
    /// atomically), so that cards issued before a restart can still be loaded after it.
    pub fn development(data_dir: &Path, cities: &Cities) -> Result<IssuerKeyring, KeyringError> {
        let dir = data_dir.join(DEV_KEYS_DIR);
        std::fs::create_dir_all(&dir).map_err(|error| KeyringError::Dir { dir: dir.clone(), error })?;
        let mut keyring = IssuerKeyring::new();
        for city in cities.iter() {
            let path = dir.join(format!("{}.toml", city.name()));
            let set = if path.exists() {
                let set = KeySet::read(&path)?;
                if set.issuer_id != city.issuer_id() {
                    return Err(KeyringError::UnknownIssuer {
                        file: path.display().to_string(),
                        issuer_id: hex::encode_upper(set.issuer_id),
                    });
                }
                set
            } else {
                let set = KeySet::generate(city.issuer_id(), Algorithm::Des)?;
                write_atomically(&path, set.to_toml().as_bytes()).map_err(KeyringError::Write)?;
                set
            };
            let master = set.master_keys("serve")?;
            keyring.add(city, IssuerKeys { key_version: set.key_version, master });
        }
        Ok(keyring)
    }
}

/// The prefix of the environment variables that hold full key files, one per variable
/// (`YITONG_ISSUER_KEYS_BEIJING`; the rest of the name is free).
pub const KEYS_ENV_PREFIX: &str = "YITONG_ISSUER_KEYS_";

/// Key files held in memory by name — environment variables in a deployment whose secrets come
/// that way. Their texts are zeroized when dropped and never printed (`Debug` shows the names).
pub struct KeyTexts(Vec<(String, zeroize::Zeroizing<String>)>);

impl KeyTexts {
    /// The variables of `vars` whose names start with [`KEYS_ENV_PREFIX`], by name; a value that
    /// is not UTF-8 is refused, naming the variable.
    pub fn from_vars(
        vars: impl IntoIterator<Item = (std::ffi::OsString, std::ffi::OsString)>,
    ) -> Result<KeyTexts, KeyringError> {
        let mut texts = Vec::new();
        for (name, value) in vars {
            let Some(name) = name.to_str().filter(|n| n.starts_with(KEYS_ENV_PREFIX)).map(str::to_owned) else {
                continue;
            };
            let value = value.into_string().map_err(|_| {
                KeyringError::File(KeyFileError::Invalid(format!("{name}: not UTF-8 text (value not shown)")))
            })?;
            texts.push((name, zeroize::Zeroizing::new(value)));
        }
        texts.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(KeyTexts(texts))
    }

    /// No variable held a key file.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for KeyTexts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.0.iter().map(|(name, _)| name)).finish()
    }
}
