//! Fixed-size byte arrays (IDs) as upper-case hex strings in serde formats, as clearing records
//! write them, so that stored state reads like the records it came from.

use serde::de::Error;
use serde::{Deserialize, Deserializer, Serializer};

/// Writes the bytes as upper-case hex.
pub(crate) fn serialize<S: Serializer, const N: usize>(bytes: &[u8; N], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&hex::encode_upper(bytes))
}

/// Reads exactly `2 N` hex digits (either case).
pub(crate) fn deserialize<'de, D: Deserializer<'de>, const N: usize>(d: D) -> Result<[u8; N], D::Error> {
    let text = String::deserialize(d)?;
    let mut bytes = [0u8; N];
    hex::decode_to_slice(&text, &mut bytes)
        .map_err(|_| D::Error::custom(format!("`{text}` must be {} hex digits", 2 * N)))?;
    Ok(bytes)
}
