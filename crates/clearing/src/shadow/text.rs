//! How the stored shadow writes bytes and times: upper-case hex and `YYYY-MM-DD HH:MM:SS`, as
//! clearing records do, so that a stored card state reads like the records it came from.

/// Fixed-size byte arrays as upper-case hex.
pub(crate) mod hex_bytes {
    use serde::de::Error;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer, const N: usize>(bytes: &[u8; N], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode_upper(bytes))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>, const N: usize>(d: D) -> Result<[u8; N], D::Error> {
        let text = String::deserialize(d)?;
        let mut bytes = [0u8; N];
        hex::decode_to_slice(&text, &mut bytes)
            .map_err(|_| D::Error::custom(format!("`{text}` must be {} hex digits", 2 * N)))?;
        Ok(bytes)
    }
}

/// Local date-times as `YYYY-MM-DD HH:MM:SS`.
pub(crate) mod date_time {
    use serde::de::Error;
    use serde::{Deserialize, Deserializer, Serializer};
    use yitong_profile::DateTime;

    pub(crate) fn serialize<S: Serializer>(at: &DateTime, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(at)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime, D::Error> {
        let text = String::deserialize(d)?;
        DateTime::parse(&text).map_err(|_| D::Error::custom(format!("`{text}` is not a date and time")))
    }
}
