use yitong_profile::StatusWord;

use crate::channel::ChannelError;
use crate::psam::SamError;

/// Why a tap could not complete. A refusal (locked card, low balance, …) is not an error: it is
/// a [`crate::TapOutcome`] whose result is `refused`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TapError {
    /// The card left before the transaction ended. With `debit_in_doubt`, DEBIT was sent and may
    /// have committed: the gate keeps the transaction and resolves it at the card's next tap.
    CardLost {
        /// Whether a DEBIT (or CREDIT) was sent without its answer.
        debit_in_doubt: bool,
    },
    /// DEBIT (or CREDIT) was answered with something other than a well-formed success. The card
    /// may have committed: the gate keeps the transaction in doubt and resolves it at the card's
    /// next tap, where GET TRANSACTION PROVE tells the truth.
    AnswerInDoubt {
        /// The command.
        command: &'static str,
        /// The status word received.
        status: StatusWord,
    },
    /// The card refused the terminal's MAC (`9302`) and committed nothing: the keys the
    /// terminal holds are not this card's. No doubt is kept.
    MacRejected {
        /// The command.
        command: &'static str,
    },
    /// The reader failed.
    Channel(ChannelError),
    /// The card answered a status word the flow does not expect.
    UnexpectedStatus {
        /// The command.
        command: &'static str,
        /// Its status word.
        status: StatusWord,
    },
    /// The card's answer has the wrong length or an undecodable field.
    BadResponse(&'static str),
    /// The security module failed.
    Sam(SamError),
    /// The gate's state could not be saved before the money command; nothing was debited.
    Persist(String),
}

impl std::fmt::Display for TapError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TapError::CardLost { debit_in_doubt: true } => {
                write!(f, "card removed after DEBIT was sent; the next tap of this card here resolves it")
            }
            TapError::CardLost { debit_in_doubt: false } => write!(f, "card removed; nothing was charged"),
            TapError::AnswerInDoubt { command, status } => {
                write!(
                    f,
                    "{command} answered {status} without a valid proof; the next tap of this card here resolves it"
                )
            }
            TapError::MacRejected { command } => write!(
                f,
                "{command} answered 9302: the card rejected the terminal's MAC, so the keys here do not \
                 match this card's issuer keys (nothing was charged)"
            ),
            TapError::Channel(e) => e.fmt(f),
            TapError::UnexpectedStatus { command, status } => write!(f, "{command} answered {status}"),
            TapError::BadResponse(what) => write!(f, "malformed card answer: {what}"),
            TapError::Sam(e) => write!(f, "security module: {e}"),
            TapError::Persist(e) => write!(f, "could not save the gate state, nothing charged: {e}"),
        }
    }
}

impl std::error::Error for TapError {}
