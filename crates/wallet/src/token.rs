//! The phone's bearer token: kept in the phone file (mode 0600), sent in `Authorization`, never
//! printed (its `Debug` is redacted) and zeroized when dropped.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use zeroize::Zeroizing;

/// A phone token as the service issued it.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(Zeroizing<String>);

impl Token {
    /// Wraps a token's text.
    pub fn new(text: String) -> Token {
        Token(Zeroizing::new(text))
    }

    /// A new phone token of this phone's own randomness (`ytp_` and 64 lower-case hex digits,
    /// the service's form), to propose to the service.
    pub fn generate() -> Result<Token, crate::WalletError> {
        let mut random = Zeroizing::new([0u8; 32]);
        getrandom::fill(random.as_mut_slice())
            .map_err(|e| crate::WalletError::Usage(format!("no system randomness: {e}")))?;
        Ok(Token::new(format!("ytp_{}", hex::encode(random.as_slice()))))
    }

    /// The text, for the `Authorization` header only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(redacted)")
    }
}

impl Serialize for Token {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Token {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Token, D::Error> {
        Ok(Token::new(String::deserialize(deserializer)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_never_shows_in_debug_output() {
        let token = Token::new("ytp_secret".into());
        assert_eq!(format!("{token:?}"), "Token(redacted)");
        assert_eq!(serde_json::to_string(&token).unwrap(), "\"ytp_secret\"");
    }
}
