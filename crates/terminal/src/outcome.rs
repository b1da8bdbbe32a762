//! How a tap or load ends: the outcome, and why a barrier stayed closed.

use yitong_profile::DateTime;

use crate::fare::MetroFare;
use crate::record::{TapKind, TapRecord};

/// Why a gate kept its barrier closed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The application is locked (`6283`).
    Locked,
    /// The card is on the hotlist.
    Hotlisted {
        /// Whether the gate blocked the application (APPLICATION BLOCK), so that every terminal
        /// refuses it until the service desk unblocks it.
        blocked: bool,
    },
    /// Past its last valid day.
    Expired,
    /// Before its first valid day.
    NotYetValid,
    /// Not enough balance for the fare (`9401`).
    InsufficientBalance,
    /// Below the minimum balance to enter.
    BelowMinimumBalance,
    /// The terminal holds no keys for the card's issuer.
    IssuerNotAccepted,
    /// The terminal holds the issuer's keys, but not of the key version or algorithm the card
    /// announces.
    KeyMismatch {
        /// The card's key version.
        key_version: u8,
        /// The card's algorithm ID.
        algorithm_id: u8,
    },
    /// No transit application answered.
    NotATransitCard,
    /// No fare could be computed for the trip.
    NoFare(String),
    /// The terminal's record store is full: upload before charging more.
    OutboxFull,
    /// The load would take the balance past the card's limit.
    BalanceLimit {
        /// The card's balance and its limit, in fen, when it told them.
        balance_and_limit_fen: Option<(i64, u32)>,
    },
    /// The card's balance is above any limit an issuer sets: a tampered card.
    Suspect {
        /// The balance the card reported, in fen.
        balance_fen: i64,
    },
    /// A second tap at an entry gate right after an entry at this station.
    AlreadyEntered {
        /// The station of the entry.
        station: String,
        /// When.
        at: DateTime,
    },
    /// An exit gate, and the card has no open entry: the rider goes to the service desk.
    NoEntry,
    /// An entry gate, and the card's last trip never exited: the service desk closes it.
    OpenTrip {
        /// City and station of the open entry.
        entry: String,
        /// When.
        at: DateTime,
    },
    /// The entry is of another city, or of a station this network does not know, and the city
    /// charges no fare for incomplete trips: the rider goes to the service desk.
    IncompleteTrip {
        /// City and station of the entry, as the card has them.
        entry: String,
    },
    /// The previous load here (the one paid for) could not be confirmed from the card: it is
    /// handed to the back office as unconfirmed, and nothing more is loaded.
    PreviousLoadUnconfirmed,
    /// The exit is earlier than the card's entry (a gate clock, or a card, is wrong).
    TimeBackwards {
        /// The entry time on the card.
        entry_at: DateTime,
    },
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Locked => f.write_str("card locked"),
            Refusal::Hotlisted { blocked: true } => f.write_str("card on the hotlist: application blocked"),
            Refusal::Hotlisted { blocked: false } => f.write_str("card on the hotlist"),
            Refusal::Expired => f.write_str("card expired"),
            Refusal::NotYetValid => f.write_str("card not yet valid"),
            Refusal::InsufficientBalance => f.write_str("insufficient balance"),
            Refusal::BelowMinimumBalance => f.write_str("balance below the minimum to enter"),
            Refusal::IssuerNotAccepted => f.write_str("card issuer not accepted here (no keys for it)"),
            Refusal::KeyMismatch { key_version, algorithm_id } => write!(
                f,
                "the card's keys (version {key_version}, algorithm {algorithm_id:02X}) are not held here: \
                 the key file is of another key version or algorithm"
            ),
            Refusal::NotATransitCard => f.write_str("not a transit card"),
            Refusal::NoFare(why) => write!(f, "no fare: {why}"),
            Refusal::OutboxFull => f.write_str("record store full: upload before charging more"),
            Refusal::BalanceLimit { balance_and_limit_fen: None } => {
                f.write_str("the load would pass the card's balance limit")
            }
            Refusal::BalanceLimit { balance_and_limit_fen: Some((balance, limit)) } => {
                let headroom = (i64::from(*limit) - balance).max(0);
                write!(
                    f,
                    "the load would pass the card's balance limit of {} yuan: balance {} yuan, at most {} yuan more",
                    crate::fare::yuan(i64::from(*limit)),
                    crate::fare::yuan(*balance),
                    crate::fare::yuan(headroom)
                )
            }
            Refusal::Suspect { balance_fen } => {
                write!(f, "suspect card: balance {balance_fen} fen is above any issuer's limit")
            }
            Refusal::AlreadyEntered { station, at } => {
                write!(f, "already entered at {station} {:02}:{:02}:{:02}", at.hour, at.minute, at.second)
            }
            Refusal::NoEntry => f.write_str("no entry on the card: see the service desk"),
            Refusal::OpenTrip { entry, at } => {
                write!(f, "the last trip (entered at {entry} on {at}) never exited: see the service desk")
            }
            Refusal::IncompleteTrip { entry } => {
                write!(f, "incomplete trip: entered at {entry}, not on this network; see the service desk")
            }
            Refusal::PreviousLoadUnconfirmed => {
                f.write_str("the previous load here could not be confirmed from the card; the back office settles it")
            }
            Refusal::TimeBackwards { entry_at } => {
                write!(f, "exit before the card's entry at {entry_at}: check the gate clock")
            }
        }
    }
}

/// How a tap ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TapResult {
    /// The transaction committed (or was found committed): the barrier opens.
    Completed(TapKind),
    /// The barrier stays closed; nothing was charged.
    Refused(Refusal),
}

/// The end of a tap.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TapOutcome {
    /// What happened.
    pub result: TapResult,
    /// Charged by this tap, in fen.
    pub amount_fen: u32,
    /// The card's balance afterwards, when the terminal learnt it.
    pub balance_fen: Option<i64>,
    /// The printed card number, when the card was read.
    pub card_number: Option<String>,
    /// Clearing records produced: this tap's, and any transaction in doubt settled on the way
    /// (recovered, or handed on unconfirmed).
    pub records: Vec<TapRecord>,
    /// Card APDUs exchanged.
    pub apdus: u32,
    /// How an exit's fare was made.
    pub fare: Option<MetroFare>,
    /// Something the operator must see though the tap completed (a MAC2 that did not verify).
    pub alarm: Option<String>,
}

/// The next thing to do in a tap.
#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    /// Send this APDU to the card; with `persist_first`, save the terminal's state before.
    Send {
        /// The command APDU.
        apdu: Vec<u8>,
        /// The command moves money: make the terminal's state durable first.
        persist_first: bool,
    },
    /// The tap is over.
    Done(TapOutcome),
}

pub(crate) fn send(apdu: Vec<u8>) -> Next {
    Next::Send { apdu, persist_first: false }
}

/// What a tap or load in progress has gathered for its outcome.
#[derive(Debug)]
pub(crate) struct Gathered {
    /// The printed card number, once SELECT showed it.
    pub card_number: Option<String>,
    /// Records made so far (a settled doubt, then the transaction's own).
    pub records: Vec<TapRecord>,
    /// Card APDUs exchanged.
    pub apdus: u32,
}

impl Gathered {
    /// The first command (SELECT) is out.
    pub fn new() -> Self {
        Gathered { card_number: None, records: Vec::new(), apdus: 1 }
    }

    /// The barrier stays closed; nothing was charged by this tap.
    pub fn refuse(&mut self, why: Refusal) -> Next {
        self.done(TapResult::Refused(why), 0, None, None, None)
    }

    /// `record` committed (now, or found committed).
    pub fn complete(&mut self, record: &TapRecord, fare: Option<MetroFare>, alarm: Option<String>) -> Next {
        let result = TapResult::Completed(record.kind);
        self.done(result, record.amount_fen, Some(record.balance_after_fen), fare, alarm)
    }

    fn done(
        &mut self,
        result: TapResult,
        amount_fen: u32,
        balance_fen: Option<i64>,
        fare: Option<MetroFare>,
        alarm: Option<String>,
    ) -> Next {
        Next::Done(TapOutcome {
            result,
            amount_fen,
            balance_fen,
            card_number: self.card_number.clone(),
            records: std::mem::take(&mut self.records),
            apdus: self.apdus,
            fare,
            alarm,
        })
    }
}
