/// An ISO 7816-4 status word (SW1 SW2) as the profile uses it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct StatusWord(pub u16);

impl StatusWord {
    /// `9000`: success.
    pub const OK: Self = Self(0x9000);
    /// `9401`: insufficient balance.
    pub const INSUFFICIENT_BALANCE: Self = Self(0x9401);
    /// `9302`: MAC error.
    pub const MAC_ERROR: Self = Self(0x9302);
    /// `9402`: transaction counter at its maximum.
    pub const COUNTER_AT_MAXIMUM: Self = Self(0x9402);
    /// `9403`: key index not supported.
    pub const KEY_INDEX_NOT_SUPPORTED: Self = Self(0x9403);
    /// `9406`: the required MAC (transaction proof) is unavailable.
    pub const PROOF_UNAVAILABLE: Self = Self(0x9406);
    /// `6283`: application locked (blacklisted); the FCI is still returned.
    pub const APPLICATION_LOCKED: Self = Self(0x6283);
    /// `6A82`: file or application not found.
    pub const FILE_NOT_FOUND: Self = Self(0x6A82);
    /// `6A83`: record not found.
    pub const RECORD_NOT_FOUND: Self = Self(0x6A83);
    /// `6A86`: wrong P1/P2 (ISO 7816-4; not listed by the profile).
    pub const WRONG_P1_P2: Self = Self(0x6A86);
    /// `6B00`: offset outside the file (ISO 7816-4; not listed by the profile).
    pub const WRONG_OFFSET: Self = Self(0x6B00);
    /// `6981`: command incompatible with the file's structure (ISO 7816-4; not listed by the
    /// profile), e.g. READ RECORD on a binary file.
    pub const INCOMPATIBLE_FILE: Self = Self(0x6981);
    /// `6985`: conditions of use not satisfied (e.g. DEBIT without INITIALIZE).
    pub const CONDITIONS_NOT_SATISFIED: Self = Self(0x6985);
    /// `6988`: secure messaging data wrong — the MAC of APPLICATION BLOCK / UNBLOCK did not
    /// verify (ISO 7816-4, as PBOC secure messaging uses it).
    pub const SECURE_MESSAGING_WRONG: Self = Self(0x6988);
    /// `6700`: wrong length.
    pub const WRONG_LENGTH: Self = Self(0x6700);
    /// `6D00`: instruction not supported.
    pub const UNKNOWN_INSTRUCTION: Self = Self(0x6D00);
    /// `6E00`: class not supported.
    pub const UNKNOWN_CLASS: Self = Self(0x6E00);

    /// The two bytes as sent after the response data.
    pub const fn to_bytes(self) -> [u8; 2] {
        self.0.to_be_bytes()
    }

    /// Splits an R-APDU into its data and status word; `None` when it is shorter than 2 bytes.
    pub fn split(response: &[u8]) -> Option<(&[u8], StatusWord)> {
        let at = response.len().checked_sub(2)?;
        let (data, sw) = response.split_at(at);
        Some((data, StatusWord(u16::from_be_bytes([sw[0], sw[1]]))))
    }

    /// What the status word means, for messages (`9401` → "insufficient balance"); `None` for a
    /// status word the profile does not use.
    pub const fn meaning(self) -> Option<&'static str> {
        Some(match self {
            Self::OK => "success",
            Self::INSUFFICIENT_BALANCE => "insufficient balance",
            Self::MAC_ERROR => "MAC error",
            Self::COUNTER_AT_MAXIMUM => "transaction counter at its maximum",
            Self::KEY_INDEX_NOT_SUPPORTED => "key index not supported",
            Self::PROOF_UNAVAILABLE => "transaction proof unavailable",
            Self::APPLICATION_LOCKED => "application locked",
            Self::FILE_NOT_FOUND => "file or application not found",
            Self::RECORD_NOT_FOUND => "record not found",
            Self::WRONG_P1_P2 => "wrong P1/P2",
            Self::WRONG_OFFSET => "offset outside the file",
            Self::INCOMPATIBLE_FILE => "command incompatible with the file",
            Self::CONDITIONS_NOT_SATISFIED => "conditions of use not satisfied",
            Self::SECURE_MESSAGING_WRONG => "secure messaging MAC wrong",
            Self::WRONG_LENGTH => "wrong length",
            Self::UNKNOWN_INSTRUCTION => "instruction not supported",
            Self::UNKNOWN_CLASS => "class not supported",
            _ => return None,
        })
    }
}

impl core::fmt::Display for StatusWord {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{:04X}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_words_are_named_for_messages() {
        assert_eq!(StatusWord(0x9401).meaning(), Some("insufficient balance"));
        assert_eq!(StatusWord::MAC_ERROR.meaning(), Some("MAC error"));
        assert_eq!(StatusWord(0x6283).meaning(), Some("application locked"));
        assert_eq!(StatusWord(0x6F00).meaning(), None);
    }
}
