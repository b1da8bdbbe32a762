//! Money: integer fen (1/100 yuan), never floats.

use std::fmt;

use serde::{Deserialize, Serialize};

/// An amount of money in fen, never negative. Direction lives in the ledger line's [`super::Side`],
/// so an amount itself has no sign to get wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[serde(try_from = "i64", into = "i64")]
pub struct Fen(i64);

impl Fen {
    /// Zero fen.
    pub const ZERO: Fen = Fen(0);

    /// `fen` if it is not negative.
    pub const fn new(fen: i64) -> Option<Fen> {
        if fen >= 0 {
            Some(Fen(fen))
        } else {
            None
        }
    }

    /// The amount in fen.
    pub const fn get(self) -> i64 {
        self.0
    }

    /// `self + other`, `None` on overflow.
    pub fn checked_add(self, other: Fen) -> Option<Fen> {
        self.0.checked_add(other.0).map(Fen)
    }

    /// `self - other`, `None` if it would be negative.
    pub fn checked_sub(self, other: Fen) -> Option<Fen> {
        self.0.checked_sub(other.0).and_then(Fen::new)
    }
}

impl TryFrom<i64> for Fen {
    type Error = String;

    fn try_from(fen: i64) -> Result<Fen, String> {
        Fen::new(fen).ok_or_else(|| format!("negative amount: {fen} fen"))
    }
}

impl From<Fen> for i64 {
    fn from(fen: Fen) -> i64 {
        fen.0
    }
}

impl fmt::Display for Fen {
    /// `12.30 yuan`: fen shown as yuan with two decimals, by integer arithmetic.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:02} yuan", self.0 / 100, self.0 % 100)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negative_amounts_are_refused() {
        assert_eq!(Fen::new(-1), None);
        assert_eq!(serde_json::from_str::<Fen>("-5").ok(), None);
        assert_eq!(serde_json::from_str::<Fen>("2900").ok(), Fen::new(2900));
    }

    #[test]
    fn arithmetic_is_checked() {
        let a = Fen::new(100).expect("positive");
        let b = Fen::new(30).expect("positive");
        assert_eq!(a.checked_sub(b), Fen::new(70));
        assert_eq!(b.checked_sub(a), None);
        assert_eq!(Fen::new(i64::MAX).expect("positive").checked_add(b), None);
        assert_eq!(Fen::new(2_905).expect("positive").to_string(), "29.05 yuan");
    }
}
