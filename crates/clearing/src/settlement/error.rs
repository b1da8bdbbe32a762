//! What can stop a day's settlement: bad input, named.

use std::fmt;

use yitong_record::TapId;

/// Input that cannot be settled. Each variant names what is wrong, so that the caller can fix or
/// exclude it; nothing is settled from a call that returned an error.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SettleError {
    /// A tap ID given twice (among cleared and pending records alike): ingestion dedupes
    /// uploads, so a repeat here is the caller's bug and would count its money twice.
    RepeatedTap {
        /// The repeated tap.
        tap_id: TapId,
    },
    /// A terminal ID that is neither a metro gate (`city · station · 00 · gate`), a bus validator
    /// (`city · route · B0 · validator`) nor a top-up terminal (`city · FFFF · number`): no
    /// counterparty can be named for the money.
    UnknownTerminal {
        /// The tap.
        tap_id: TapId,
    },
    /// A load at a metro gate or bus validator: only the issuers' top-up terminals load cards.
    LoadAtGate {
        /// The tap.
        tap_id: TapId,
    },
    /// More records and entries than one settlement takes ([`INPUTS_MAX`](super::INPUTS_MAX)).
    TooManyInputs {
        /// The limit.
        max: u64,
    },
    /// Text that is not a business day `YYYY-MM-DD`.
    InvalidDay {
        /// The text.
        text: String,
    },
    /// A cut-over that is not a time of day `HH:MM` (00:00 to 23:59).
    InvalidCutOver {
        /// The text.
        text: String,
    },
    /// A business day whose hours fall outside the years 0000 to 9999.
    DayOutOfRange {
        /// The date or time it was asked for.
        near: String,
    },
    /// A city code given twice in the participant table.
    DuplicateCity {
        /// The city code.
        city_code: u16,
    },
    /// An issuer ID given to two cities of the participant table.
    DuplicateIssuer {
        /// The issuer ID.
        issuer_id: [u8; 8],
    },
    /// Text that is not a participant ID (`issuer:<16 hex digits>`, `metro:<4 hex digits>` or
    /// `bus:<4 hex digits>`).
    InvalidParticipant {
        /// The text.
        text: String,
    },
}

impl fmt::Display for SettleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SettleError::RepeatedTap { tap_id } => {
                write!(f, "tap {tap_id} is given twice; each tap is settled once (dedupe the input)")
            }
            SettleError::UnknownTerminal { tap_id } => write!(
                f,
                "tap {tap_id}: terminal ID {} is neither a metro gate, a bus validator nor a top-up terminal",
                hex::encode_upper(tap_id.terminal_id)
            ),
            SettleError::LoadAtGate { tap_id } => {
                write!(f, "tap {tap_id} is a load at a gate or validator; only top-up terminals load cards")
            }
            SettleError::TooManyInputs { max } => {
                write!(f, "more than {max} records and platform entries in one settlement")
            }
            SettleError::InvalidDay { text } => write!(f, "`{text}` is not a business day YYYY-MM-DD"),
            SettleError::InvalidCutOver { text } => {
                write!(f, "`{text}` is not a cut-over time HH:MM between 00:00 and 23:59")
            }
            SettleError::DayOutOfRange { near } => {
                write!(f, "the business day of {near} falls outside the years 0000 to 9999")
            }
            SettleError::DuplicateCity { city_code } => {
                write!(f, "city {city_code:04X} is given twice in the participant table")
            }
            SettleError::DuplicateIssuer { issuer_id } => {
                write!(f, "issuer {} is given to two cities in the participant table", hex::encode_upper(issuer_id))
            }
            SettleError::InvalidParticipant { text } => write!(
                f,
                "`{text}` is not a participant ID (issuer:<16 hex digits>, metro:<4 hex digits> or bus:<4 hex digits>)"
            ),
        }
    }
}

impl std::error::Error for SettleError {}
