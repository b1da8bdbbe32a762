//! The issuer key file: `yitong keys new` writes it, the other commands read it.

use std::path::Path;

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};
use yitong_card::CardSpec;
use yitong_crypto::{Algorithm, MasterKeys};
use yitong_profile::files::IssuerData;
use yitong_terminal::IssuerKeys;

/// The TOML file, as written.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyFile {
    issuer_id: String,
    algorithm: String,
    #[serde(default = "default_key_version")]
    key_version: u8,
    master: MasterFile,
}

fn default_key_version() -> u8 {
    1
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct MasterFile {
    dlk: String,
    dpk: String,
    dtk: String,
}

/// An issuer's key set, read from a key file.
#[derive(Debug, Clone, Copy)]
pub struct KeySet {
    pub issuer_id: [u8; 8],
    pub key_version: u8,
    pub master: MasterKeys,
}

impl KeySet {
    pub fn issuer_keys(&self) -> IssuerKeys {
        IssuerKeys { key_version: self.key_version, master: self.master }
    }

    /// A new random development key set.
    pub fn generate(issuer_id: [u8; 8], algorithm: Algorithm) -> anyhow::Result<Self> {
        let mut bytes = [0u8; 48];
        getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no system randomness: {e}"))?;
        let key = |i: usize| <[u8; 16]>::try_from(&bytes[i * 16..i * 16 + 16]).expect("16 bytes");
        Ok(KeySet {
            issuer_id,
            key_version: 1,
            master: MasterKeys { algorithm, dlk: key(0), dpk: key(1), dtk: key(2) },
        })
    }

    /// EF15 of an e-purse card of this issuer.
    pub fn issuer_data(&self, serial: [u8; 10], valid_from: [u8; 4], valid_to: [u8; 4]) -> IssuerData {
        IssuerData { issuer_id: self.issuer_id, app_type: 0x02, app_version: 0x01, serial, valid_from, valid_to }
    }

    /// A new card image of this issuer, anonymous, with the default limits.
    pub fn card_image(&self, serial: [u8; 10], valid_from: [u8; 4], valid_to: [u8; 4]) -> Vec<u8> {
        CardSpec::new(self.issuer_data(serial, valid_from, valid_to), self.master, self.key_version).personalize()
    }

    pub fn to_toml(self) -> String {
        let file = KeyFile {
            issuer_id: hex::encode_upper(self.issuer_id),
            algorithm: algorithm_name(self.master.algorithm).into(),
            key_version: self.key_version,
            master: MasterFile {
                dlk: hex::encode_upper(self.master.dlk),
                dpk: hex::encode_upper(self.master.dpk),
                dtk: hex::encode_upper(self.master.dtk),
            },
        };
        let body = toml::to_string(&file).expect("the key file serializes");
        format!(
            "# Yitong DEVELOPMENT key set: random master keys kept in clear text.\n\
             # For tests and demos only; production keys live in an HSM and never in a file.\n{body}"
        )
    }

    pub fn read(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read key file {}", path.display()))?;
        let file: KeyFile =
            toml::from_str(&text).with_context(|| format!("{}: not a Yitong key file", path.display()))?;
        let algorithm = match file.algorithm.as_str() {
            "des" => Algorithm::Des,
            "sm4" => Algorithm::Sm4,
            other => bail!("{}: algorithm: `{other}` is not des or sm4", path.display()),
        };
        let field = |name: &str, v: &str| -> anyhow::Result<[u8; 16]> {
            parse_hex(v, &format!("{}: master.{name}", path.display()))
        };
        Ok(KeySet {
            issuer_id: parse_hex(&file.issuer_id, &format!("{}: issuer_id", path.display()))?,
            key_version: file.key_version,
            master: MasterKeys {
                algorithm,
                dlk: field("dlk", &file.master.dlk)?,
                dpk: field("dpk", &file.master.dpk)?,
                dtk: field("dtk", &file.master.dtk)?,
            },
        })
    }
}

pub fn algorithm_name(a: Algorithm) -> &'static str {
    match a {
        Algorithm::Des => "des",
        Algorithm::Sm4 => "sm4",
    }
}

/// Parses exactly `N` bytes of hex; `field` names the input in errors.
pub fn parse_hex<const N: usize>(text: &str, field: &str) -> anyhow::Result<[u8; N]> {
    let bytes = hex::decode(text).ok().with_context(|| format!("{field}: `{text}` is not hexadecimal"))?;
    bytes.try_into().ok().with_context(|| format!("{field}: `{text}` must be {} hex digits", N * 2))
}
