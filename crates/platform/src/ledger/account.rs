//! Ledger accounts and their stored names.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::LedgerError;

/// Longest card ID: the card's application serial is 20 decimal digits; room for other schemes.
const CARD_ID_LENGTH_MAX: usize = 32;
/// Longest payment provider name.
const PROVIDER_LENGTH_MAX: usize = 32;

/// The platform's name for one issued card (its application serial, as decimal digits), parsed
/// once at the edge.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CardId(String);

impl CardId {
    /// A card ID of 1 to 32 ASCII letters or digits.
    pub fn parse(id: &str) -> Result<CardId, LedgerError> {
        let good = !id.is_empty() && id.len() <= CARD_ID_LENGTH_MAX && id.bytes().all(|b| b.is_ascii_alphanumeric());
        if good {
            Ok(CardId(id.to_owned()))
        } else {
            Err(LedgerError::BadCardId(id.to_owned()))
        }
    }

    /// The ID as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for CardId {
    type Error = LedgerError;

    fn try_from(id: String) -> Result<CardId, LedgerError> {
        CardId::parse(&id)
    }
}

impl From<CardId> for String {
    fn from(id: CardId) -> String {
        id.0
    }
}

impl fmt::Display for CardId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One ledger account. Stored by [`Account::name`], read back by [`Account::parse`].
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Account {
    /// Money a payment provider collected for us and has not refunded (asset).
    ProviderClearing(String),
    /// Paid by riders, neither loaded onto a card nor earned as a fee yet (liability).
    PaymentsUnapplied,
    /// The stored value one card holds, owed to its rider (liability).
    CardLiability(CardId),
    /// Sign-up fees earned (revenue).
    FeeRevenue,
    /// Refunds decided and not yet confirmed by the provider (liability).
    RefundsPayable,
    /// Balances of transferred cards waiting for (or being loaded onto) the new phone's card
    /// (liability).
    TransfersPayable,
    /// What closed cards' liability held beyond what the card proved it held: fares spent at
    /// gates that the gates' uploads will report (or, negative, loads the platform left
    /// unconfirmed that did land); the back office clears it.
    FaresUnsettled,
}

impl Account {
    /// The provider clearing account of `provider` (1 to 32 ASCII lower-case letters, digits, `_`).
    pub fn provider_clearing(provider: &str) -> Result<Account, LedgerError> {
        let good = !provider.is_empty()
            && provider.len() <= PROVIDER_LENGTH_MAX
            && provider.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if good {
            Ok(Account::ProviderClearing(provider.to_owned()))
        } else {
            Err(LedgerError::BadAccount(format!("provider_clearing/{provider}")))
        }
    }

    /// The stored name, e.g. `card_liability/10000000000000123456`.
    pub fn name(&self) -> String {
        match self {
            Account::ProviderClearing(provider) => format!("provider_clearing/{provider}"),
            Account::PaymentsUnapplied => "payments_unapplied".to_owned(),
            Account::CardLiability(card) => format!("card_liability/{card}"),
            Account::FeeRevenue => "fee_revenue".to_owned(),
            Account::RefundsPayable => "refunds_payable".to_owned(),
            Account::TransfersPayable => "transfers_payable".to_owned(),
            Account::FaresUnsettled => "fares_unsettled".to_owned(),
        }
    }

    /// Reads a stored name back.
    pub fn parse(name: &str) -> Result<Account, LedgerError> {
        match name.split_once('/') {
            None => match name {
                "payments_unapplied" => Ok(Account::PaymentsUnapplied),
                "fee_revenue" => Ok(Account::FeeRevenue),
                "refunds_payable" => Ok(Account::RefundsPayable),
                "transfers_payable" => Ok(Account::TransfersPayable),
                "fares_unsettled" => Ok(Account::FaresUnsettled),
                _ => Err(LedgerError::BadAccount(name.to_owned())),
            },
            Some(("provider_clearing", provider)) => Account::provider_clearing(provider),
            Some(("card_liability", card)) => Ok(Account::CardLiability(CardId::parse(card)?)),
            Some(_) => Err(LedgerError::BadAccount(name.to_owned())),
        }
    }
}

impl fmt::Display for Account {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        let card = CardId::parse("10000000000000123456").expect("digits");
        for account in [
            Account::provider_clearing("simulated").expect("lower case"),
            Account::PaymentsUnapplied,
            Account::CardLiability(card),
            Account::FeeRevenue,
            Account::RefundsPayable,
            Account::TransfersPayable,
            Account::FaresUnsettled,
        ] {
            assert_eq!(Account::parse(&account.name()), Ok(account));
        }
        assert_eq!(Account::CardLiability(CardId::parse("42").expect("digits")).name(), "card_liability/42");
    }

    #[test]
    fn bad_names_are_refused() {
        for name in ["", "cash", "card_liability/", "card_liability/1 2", "provider_clearing/WeChat", "x/y"] {
            assert!(Account::parse(name).is_err(), "{name:?}");
        }
        assert!(CardId::parse(&"1".repeat(33)).is_err());
        assert!(CardId::parse("１２").is_err(), "full-width digits are not ASCII");
    }
}
