//! Byte arrays as upper-case hex strings in serde formats (IDs in stored state and JSON).

macro_rules! hex_array {
    ($module:ident, $n:literal) => {
        /// `[u8; N]` as hex.
        pub mod $module {
            use serde::{Deserialize, Deserializer, Serializer};

            /// Writes the bytes as upper-case hex.
            pub fn serialize<S: Serializer>(bytes: &[u8; $n], serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&hex::encode_upper(bytes))
            }

            /// Reads hex (either case) of exactly N bytes.
            pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<[u8; $n], D::Error> {
                let text = String::deserialize(deserializer)?;
                let bytes = hex::decode(&text).map_err(serde::de::Error::custom)?;
                <[u8; $n]>::try_from(bytes)
                    .map_err(|_| serde::de::Error::custom(concat!("expected ", stringify!($n), " bytes of hex")))
            }
        }
    };
}

hex_array!(bytes6, 6);
hex_array!(bytes8, 8);
hex_array!(bytes10, 10);
