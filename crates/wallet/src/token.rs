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
