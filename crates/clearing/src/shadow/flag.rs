//! What does not add up on a card, and the policy that turns proven fraud into a hotlist reason.

use yitong_record::TapId;

use super::entry::Sequence;
use super::TAC_FAILURE_THRESHOLD;

/// A finding on a card. Flags are derived from the card's records: a flag is raised when a
/// record shows it and cleared when a record explains it (a missing record arriving).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Flag {
    /// Counters `first..=last` of a sequence were used (a record above shows the counter moved
    /// past them) but no record of them is held: a missing upload. Wait, then chase the gates
    /// that saw the card between the records around the gap.
    CounterGap {
        /// The sequence.
        sequence: Sequence,
        /// The first counter missing.
        first: u16,
        /// The last counter missing.
        last: u16,
    },
    /// A transaction's balance before does not follow from what the card's previous transaction
    /// left: the card's balance was changed outside a transaction (tampering), or a record's
    /// balances were altered.
    BalanceBreak {
        /// The sequence of the transaction.
        sequence: Sequence,
        /// Its counter (the previous transaction has the counter below).
        counter: u16,
        /// The transaction.
        tap_id: TapId,
        /// The balance the previous transaction of the sequence left, in fen.
        left_fen: i64,
        /// What the other sequence's transactions between them moved, when exactly known; `None`
        /// when unknown — then the break is that the balance moved in the direction the other
        /// sequence cannot move it (loads only add, purchases only take).
        between_fen: Option<i64>,
        /// The transaction's balance before, in fen.
        found_fen: i64,
    },
    /// Two different transactions, both with verified TACs, share one counter: two cards answer
    /// with this card's keys.
    Clone {
        /// The sequence.
        sequence: Sequence,
        /// The counter.
        counter: u16,
        /// The transaction kept in the card's sequence (the first).
        first: TapId,
        /// The other one.
        second: TapId,
    },
    /// Two different committed transactions share one counter, but not both are TAC-proven (one
    /// was recovered from the card's log on a gate's word): a clone or a gate's mistake, to be
    /// looked into; not proof.
    CounterConflict {
        /// The sequence.
        sequence: Sequence,
        /// The counter.
        counter: u16,
        /// The transaction kept in the card's sequence (the proven one, else the first).
        first: TapId,
        /// The other one.
        second: TapId,
    },
    /// [`TAC_FAILURE_THRESHOLD`] or more of the card's records failed their TAC check.
    TacFailures,
}

impl std::fmt::Display for Flag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Flag::CounterGap { sequence, first, last } if first == last => {
                write!(f, "counter gap: no record of {sequence} counter {first}")
            }
            Flag::CounterGap { sequence, first, last } => {
                write!(f, "counter gap: no record of {sequence} counters {first} to {last}")
            }
            Flag::BalanceBreak { sequence, counter, tap_id, left_fen, between_fen: Some(between), found_fen } => {
                write!(
                f,
                "balance break: {sequence} counter {counter} ({tap_id}) found {found_fen} fen, but the counter below \
                 left {left_fen} fen and the other counter's transactions between moved {between} fen"
            )
            }
            Flag::BalanceBreak { sequence, counter, tap_id, left_fen, between_fen: None, found_fen } => write!(
                f,
                "balance break: {sequence} counter {counter} ({tap_id}) found {found_fen} fen, but the counter below \
                 left {left_fen} fen and only {} could have come between",
                match sequence.other() {
                    Sequence::Online => "loads",
                    Sequence::Offline => "purchases",
                }
            ),
            Flag::Clone { sequence, counter, first, second } => {
                write!(f, "clone: {first} and {second}, both with verified TACs, share {sequence} counter {counter}")
            }
            Flag::CounterConflict { sequence, counter, first, second } => write!(
                f,
                "counter conflict: {first} and {second} share {sequence} counter {counter}, not both TAC-proven"
            ),
            Flag::TacFailures => write!(f, "{TAC_FAILURE_THRESHOLD} or more records failed their TAC check"),
        }
    }
}

/// The policy: the hotlist reason a flag calls for, or `None`. Proven fraud is hotlisted — a
/// clone, a balance break, repeated TAC failures; a counter gap is chased at the gates instead,
/// and a counter conflict (not TAC-proven) is looked into.
pub fn hotlist_reason(flag: &Flag) -> Option<String> {
    match flag {
        Flag::Clone { .. } | Flag::BalanceBreak { .. } | Flag::TacFailures => Some(flag.to_string()),
        Flag::CounterGap { .. } | Flag::CounterConflict { .. } => None,
    }
}
