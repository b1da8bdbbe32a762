//! Issuer key files (TOML), one piece of code for every reader and writer: `yitong keys new`
//! writes the full development set, `yitong keys export` the part one role needs, the CLI's other
//! commands read what they need from either, and `yitong serve` reads one full set per city
//! from its keys directory (or writes development sets once into its data directory).
//!
//! Who holds what (`docs/architecture.md`, "Keys by purpose"): a gate the purchase key and the
//! maintenance key (its PSAM blocks hotlisted cards); a top-up terminal (its load host) the load
//! key; the back office the TAC key and the unblock key (its service desk unblocks cards).
//! Only the full set, kept by the issuer, can issue cards.

use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};
use yitong_crypto::{
    Algorithm, LoadMasterKey, MaintenanceMasterKey, MasterKey, MasterKeys, PurchaseMasterKey, Purpose, TacMasterKey,
    UnblockMasterKey,
};
use yitong_issuer::{CardRequest, IssueError, IssuerIdentity, Serial};
use yitong_terminal::PsamKeys;

/// The role a key file is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Every key: the issuer's development set (issues cards).
    Full,
    /// A gate: purchase and maintenance keys.
    Gate,
    /// A top-up terminal's load host: the load key.
    Topup,
    /// The back office: TAC and unblock keys (TAC checks, the service desk's unblock).
    Backoffice,
}

impl Role {
    /// `full`, `gate`, `topup` or `backoffice`, as in the file.
    pub fn name(self) -> &'static str {
        match self {
            Role::Full => "full",
            Role::Gate => "gate",
            Role::Topup => "topup",
            Role::Backoffice => "backoffice",
        }
    }

    /// The roles whose files hold the key of `purpose`, for error messages.
    fn holders(purpose: &str) -> &'static str {
        match purpose {
            "load" => "a topup or full",
            "purchase" => "a gate or full",
            "TAC" => "a backoffice or full",
            "maintenance" => "a gate or full",
            "unblock" => "a backoffice or full",
            _ => "a full",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a key file cannot be read or used. Messages name the file and the field, never a key.
#[derive(Debug)]
#[non_exhaustive]
pub enum KeyFileError {
    /// The file cannot be read or written.
    Io {
        /// What was being done, naming the file.
        what: String,
        /// The operating system's error.
        error: std::io::Error,
    },
    /// The file is not a usable key file (syntax, a field, a key a role must or must not hold).
    Invalid(String),
    /// The file is of a role that lacks what the command needs.
    Lacks(String),
    /// No system randomness for new keys.
    Randomness(getrandom::Error),
    /// The card cannot be personalized.
    Issue(IssueError),
}

impl fmt::Display for KeyFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyFileError::Io { what, .. } => f.write_str(what),
            KeyFileError::Invalid(why) | KeyFileError::Lacks(why) => f.write_str(why),
            KeyFileError::Randomness(error) => write!(f, "no system randomness: {error}"),
            KeyFileError::Issue(error) => write!(f, "{error}"),
        }
    }
}

impl std::error::Error for KeyFileError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            KeyFileError::Io { error, .. } => Some(error),
            _ => None,
        }
    }
}

impl From<IssueError> for KeyFileError {
    fn from(error: IssueError) -> KeyFileError {
        KeyFileError::Issue(error)
    }
}

macro_rules! invalid {
    ($($arg:tt)*) => { return Err(KeyFileError::Invalid(format!($($arg)*))) };
}

/// The TOML file, as written.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyFile {
    /// Absent in files written before roles existed: those are full sets.
    #[serde(default = "default_role")]
    role: Role,
    issuer_id: String,
    algorithm: String,
    #[serde(default = "default_key_version")]
    key_version: u8,
    master: MasterFile,
}

fn default_role() -> Role {
    Role::Full
}

fn default_key_version() -> u8 {
    1
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct MasterFile {
    #[serde(skip_serializing_if = "Option::is_none")]
    dlk: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dpk: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dtk: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    damk: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dauk: Option<String>,
}

/// An issuer's keys as one key file holds them: all of them, or one role's part.
#[derive(Debug, Clone)]
pub struct KeySet {
    /// The issuer.
    pub issuer_id: [u8; 8],
    /// The key version.
    pub key_version: u8,
    /// DES or SM4.
    pub algorithm: Algorithm,
    /// Whose part it is.
    pub role: Role,
    /// The file it came from, for messages (`generated` for in-memory sets).
    source: String,
    load: Option<LoadMasterKey>,
    purchase: Option<PurchaseMasterKey>,
    tac: Option<TacMasterKey>,
    maintenance: Option<MaintenanceMasterKey>,
    unblock: Option<UnblockMasterKey>,
}

impl KeySet {
    /// A new random development key set, all five master keys.
    pub fn generate(issuer_id: [u8; 8], algorithm: Algorithm) -> Result<Self, KeyFileError> {
        let mut bytes = yitong_crypto::Zeroizing::new([0u8; 80]);
        getrandom::fill(bytes.as_mut()).map_err(KeyFileError::Randomness)?;
        let key = |i: usize| <[u8; 16]>::try_from(&bytes[i * 16..i * 16 + 16]).expect("16 bytes");
        Ok(Self::from_master(issuer_id, 1, MasterKeys::new(algorithm, key(0), key(1), key(2), key(3), key(4))))
    }

    /// The full set of `master`.
    pub fn from_master(issuer_id: [u8; 8], key_version: u8, master: MasterKeys) -> Self {
        KeySet {
            issuer_id,
            key_version,
            algorithm: master.algorithm(),
            role: Role::Full,
            source: "generated key set".into(),
            load: Some(master.load().clone()),
            purchase: Some(master.purchase().clone()),
            tac: Some(master.tac().clone()),
            maintenance: Some(master.maintenance().clone()),
            unblock: Some(master.unblock().clone()),
        }
    }

    /// `key`, or the error a command gets when its key file lacks it.
    fn need<'a, P: Purpose>(
        &self,
        key: &'a Option<MasterKey<P>>,
        command: &str,
    ) -> Result<&'a MasterKey<P>, KeyFileError> {
        key.as_ref().ok_or_else(|| {
            KeyFileError::Lacks(format!(
                "{} is a {} key file: it has no {} key; `{command}` needs {} key file",
                self.source,
                self.role,
                P::NAME,
                Role::holders(P::NAME)
            ))
        })
    }

    /// The load key, for `command` (a top-up terminal's load host).
    pub fn load_key(&self, command: &str) -> Result<&LoadMasterKey, KeyFileError> {
        self.need(&self.load, command)
    }

    /// The maintenance key, for `command` (blocking).
    pub fn maintenance_key(&self, command: &str) -> Result<&MaintenanceMasterKey, KeyFileError> {
        self.need(&self.maintenance, command)
    }

    /// The unblock key, for `command` (the service desk).
    pub fn unblock_key(&self, command: &str) -> Result<&UnblockMasterKey, KeyFileError> {
        self.need(&self.unblock, command)
    }

    /// What a gate's PSAM holds: purchase and maintenance keys.
    pub fn psam_keys(&self, command: &str) -> Result<PsamKeys, KeyFileError> {
        Ok(PsamKeys {
            purchase: self.need(&self.purchase, command)?.clone(),
            maintenance: self.maintenance_key(command)?.clone(),
        })
    }

    /// The whole set, for `command` (issuing cards needs every key).
    pub fn master_keys(&self, command: &str) -> Result<MasterKeys, KeyFileError> {
        if self.role != Role::Full {
            return Err(KeyFileError::Lacks(format!(
                "{} is a {} key file: `{command}` needs the issuer's full key file (`yitong keys new`)",
                self.source, self.role
            )));
        }
        let (load, purchase) = (self.need(&self.load, command)?, self.need(&self.purchase, command)?);
        let (tac, maintenance) = (self.need(&self.tac, command)?, self.maintenance_key(command)?);
        let unblock = self.unblock_key(command)?;
        Ok(MasterKeys::new(
            self.algorithm,
            *load.expose_bytes(),
            *purchase.expose_bytes(),
            *tac.expose_bytes(),
            *maintenance.expose_bytes(),
            *unblock.expose_bytes(),
        ))
    }

    /// The part of this set that `role` needs; it must hold all of it.
    pub fn export(&self, role: Role) -> Result<KeySet, KeyFileError> {
        let command = format!("keys export --for {role}");
        if self.role != Role::Full {
            return Err(KeyFileError::Lacks(format!(
                "{} is a {} key file: `{command}` takes its part from the issuer's full key file",
                self.source, self.role
            )));
        }
        let mut part =
            KeySet { role, load: None, purchase: None, tac: None, maintenance: None, unblock: None, ..self.clone() };
        match role {
            Role::Full => {
                return self.master_keys(&command).map(|m| Self::from_master(self.issuer_id, self.key_version, m))
            }
            Role::Gate => {
                part.purchase = Some(self.need(&self.purchase, &command)?.clone());
                part.maintenance = Some(self.maintenance_key(&command)?.clone());
            }
            Role::Topup => part.load = Some(self.load_key(&command)?.clone()),
            Role::Backoffice => {
                part.tac = Some(self.need(&self.tac, &command)?.clone());
                part.unblock = Some(self.unblock_key(&command)?.clone());
            }
        }
        Ok(part)
    }

    /// The issuer as its cards name it.
    pub fn identity(&self) -> IssuerIdentity {
        IssuerIdentity { issuer_id: self.issuer_id, key_version: self.key_version }
    }

    /// An anonymous card of this issuer with the default limits (`yitong-issuer`'s rules).
    pub fn card_request(&self, serial: [u8; 10], valid_from: [u8; 4], valid_to: [u8; 4]) -> CardRequest {
        CardRequest::anonymous(self.identity(), Serial(serial), valid_from, valid_to)
    }

    /// A new card image of this issuer, anonymous, with the default limits. Needs the full set.
    pub fn card_image(
        &self,
        serial: [u8; 10],
        valid_from: [u8; 4],
        valid_to: [u8; 4],
    ) -> Result<Vec<u8>, KeyFileError> {
        let master = self.master_keys("card issue")?;
        Ok(self.card_request(serial, valid_from, valid_to).image(master)?)
    }

    /// The file's text: a header saying what it holds, then the TOML.
    pub fn to_toml(&self) -> String {
        let hex = |k: &[u8; 16]| hex::encode_upper(k);
        let file = KeyFile {
            role: self.role,
            issuer_id: hex::encode_upper(self.issuer_id),
            algorithm: algorithm_name(self.algorithm).into(),
            key_version: self.key_version,
            master: MasterFile {
                dlk: self.load.as_ref().map(|k| hex(k.expose_bytes())),
                dpk: self.purchase.as_ref().map(|k| hex(k.expose_bytes())),
                dtk: self.tac.as_ref().map(|k| hex(k.expose_bytes())),
                damk: self.maintenance.as_ref().map(|k| hex(k.expose_bytes())),
                dauk: self.unblock.as_ref().map(|k| hex(k.expose_bytes())),
            },
        };
        let body = toml::to_string(&file).expect("the key file serializes");
        let what = match self.role {
            Role::Full => ": all five master keys (load, purchase, TAC, maintenance, unblock); the issuer's alone",
            Role::Gate => ", gate part: the master purchase and maintenance keys",
            Role::Topup => ", topup part: the master load key",
            Role::Backoffice => ", backoffice part: the master TAC and unblock keys",
        };
        format!(
            "# Yitong DEVELOPMENT key set{what}, in clear text.\n\
             # For tests and demos only; production keys live in an HSM and never in a file.\n{body}"
        )
    }

    /// Where the set came from (a file's path, an environment variable's name), for messages.
    pub fn origin(&self) -> &str {
        &self.source
    }

    /// Reads and checks the key file at `path`.
    pub fn read(path: &Path) -> Result<Self, KeyFileError> {
        let text = std::fs::read_to_string(path)
            .map_err(|error| KeyFileError::Io { what: format!("cannot read key file {}", path.display()), error })?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Checks the key file `text`, read from `source` (a path, or an environment variable's
    /// name): errors name `source` and the field, never a key.
    pub fn parse(text: &str, source: &str) -> Result<Self, KeyFileError> {
        // toml's message quotes the offending line, which may hold a key: say where, not what.
        let file: KeyFile = toml::from_str(text).map_err(|e| {
            let at = e.span().map(|span| {
                let before = &text[..span.start.min(text.len())];
                let line = before.matches('\n').count() + 1;
                let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
                format!(" at line {line}, column {column}")
            });
            KeyFileError::Invalid(format!(
                "{}: not a Yitong key file ({}{})",
                source,
                e.message(),
                at.unwrap_or_default()
            ))
        })?;
        let algorithm = match file.algorithm.as_str() {
            "des" => Algorithm::Des,
            "sm4" => Algorithm::Sm4,
            other => invalid!("{}: algorithm: `{other}` is not des or sm4", source),
        };
        // A malformed key is named, never repeated: its digits are secret.
        let key = |name: &str, v: &Option<String>| -> Result<Option<[u8; 16]>, KeyFileError> {
            v.as_deref()
                .map(|v| {
                    let bytes = hex::decode(v).ok().filter(|b| b.len() == 16);
                    bytes.and_then(|b| <[u8; 16]>::try_from(b).ok()).ok_or_else(|| {
                        KeyFileError::Invalid(format!(
                            "{}: master.{name}: must be 32 hex digits (value not shown)",
                            source
                        ))
                    })
                })
                .transpose()
        };
        let m = &file.master;
        let (dlk, dpk, dtk, damk) =
            (key("dlk", &m.dlk)?, key("dpk", &m.dpk)?, key("dtk", &m.dtk)?, key("damk", &m.damk)?);
        let dauk = key("dauk", &m.dauk)?;
        // What each role's file must hold, and must not: a gate file with a load key is a mistake.
        let expected = match file.role {
            Role::Full => [true, true, true, true, true],
            Role::Gate => [false, true, false, true, false],
            Role::Topup => [true, false, false, false, false],
            Role::Backoffice => [false, false, true, false, true],
        };
        let present = [
            ("dlk", dlk.is_some()),
            ("dpk", dpk.is_some()),
            ("dtk", dtk.is_some()),
            ("damk", damk.is_some()),
            ("dauk", dauk.is_some()),
        ];
        for ((name, present), wanted) in present.into_iter().zip(expected) {
            match (present, wanted) {
                (false, true) if (name == "damk" || name == "dauk") && file.role == Role::Full => invalid!(
                    "{}: master.{name} is missing: key files written before the maintenance (damk) and unblock \
                     (dauk) keys cannot be used; write a new set with `yitong keys new` (or add the key, 32 hex \
                     digits, under [master])",
                    source
                ),
                (false, true) => invalid!("{}: master.{name} is missing from a {} key file", source, file.role),
                (true, false) => invalid!(
                    "{}: master.{name}: a {} key file must not hold this key (`yitong keys export` writes the right part)",
                    source,
                    file.role
                ),
                _ => {}
            }
        }
        Ok(KeySet {
            issuer_id: parse_hex(&file.issuer_id, &format!("{}: issuer_id", source))?,
            key_version: file.key_version,
            algorithm,
            role: file.role,
            source: source.to_owned(),
            load: dlk.map(|k| MasterKey::new(algorithm, k)),
            purchase: dpk.map(|k| MasterKey::new(algorithm, k)),
            tac: dtk.map(|k| MasterKey::new(algorithm, k)),
            maintenance: damk.map(|k| MasterKey::new(algorithm, k)),
            unblock: dauk.map(|k| MasterKey::new(algorithm, k)),
        })
    }
}

/// `des` or `sm4`, as in the file.
pub fn algorithm_name(a: Algorithm) -> &'static str {
    match a {
        Algorithm::Des => "des",
        Algorithm::Sm4 => "sm4",
    }
}

/// Parses exactly `N` bytes of hex; `field` names the input in errors.
pub fn parse_hex<const N: usize>(text: &str, field: &str) -> Result<[u8; N], KeyFileError> {
    let bytes =
        hex::decode(text).map_err(|_| KeyFileError::Invalid(format!("{field}: `{text}` is not hexadecimal")))?;
    bytes.try_into().map_err(|_| KeyFileError::Invalid(format!("{field}: `{text}` must be {} hex digits", N * 2)))
}
