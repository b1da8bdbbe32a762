use yitong_profile::apdu::ApduError;
use yitong_profile::StatusWord;

/// Why the card refused a command. Each maps to one status word, in one place.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CardError {
    /// Lc, Le or the data length is wrong for the command (`6700`).
    WrongLength,
    /// The class byte is not `00` or `80` (`6E00`).
    UnknownClass,
    /// No such instruction (`6D00`).
    UnknownInstruction,
    /// P1/P2 outside what the command defines (`6A86`).
    WrongP1P2,
    /// READ BINARY offset beyond the file (`6B00`).
    WrongOffset,
    /// No such file or application (`6A82`).
    FileNotFound,
    /// No such record (`6A83`).
    RecordNotFound,
    /// READ RECORD on a binary file or the reverse (`6981`).
    IncompatibleFile,
    /// Out of order: no application selected, DEBIT without INITIALIZE, a load over the balance
    /// limit, APPLICATION BLOCK / UNBLOCK without GET CHALLENGE just before, UNBLOCK of an
    /// application blocked for good (`6985`).
    ConditionsNotSatisfied,
    /// The application is locked (`6283`).
    Locked,
    /// Key index other than the one the card holds (`9403`).
    KeyIndexNotSupported,
    /// The counter cannot count one more transaction (`9402`).
    CounterAtMaximum,
    /// Balance plus overdraft below the amount (`9401`).
    InsufficientBalance,
    /// MAC1 or MAC2 did not verify (`9302`).
    MacError,
    /// No proof for that transaction type and counter (`9406`).
    ProofUnavailable,
    /// The MAC of APPLICATION BLOCK / UNBLOCK did not verify (`6988`).
    SecureMessagingWrong,
}

impl From<CardError> for StatusWord {
    fn from(e: CardError) -> Self {
        match e {
            CardError::WrongLength => StatusWord::WRONG_LENGTH,
            CardError::UnknownClass => StatusWord::UNKNOWN_CLASS,
            CardError::UnknownInstruction => StatusWord::UNKNOWN_INSTRUCTION,
            CardError::WrongP1P2 => StatusWord::WRONG_P1_P2,
            CardError::WrongOffset => StatusWord::WRONG_OFFSET,
            CardError::FileNotFound => StatusWord::FILE_NOT_FOUND,
            CardError::RecordNotFound => StatusWord::RECORD_NOT_FOUND,
            CardError::IncompatibleFile => StatusWord::INCOMPATIBLE_FILE,
            CardError::ConditionsNotSatisfied => StatusWord::CONDITIONS_NOT_SATISFIED,
            CardError::Locked => StatusWord::APPLICATION_LOCKED,
            CardError::KeyIndexNotSupported => StatusWord::KEY_INDEX_NOT_SUPPORTED,
            CardError::CounterAtMaximum => StatusWord::COUNTER_AT_MAXIMUM,
            CardError::InsufficientBalance => StatusWord::INSUFFICIENT_BALANCE,
            CardError::MacError => StatusWord::MAC_ERROR,
            CardError::ProofUnavailable => StatusWord::PROOF_UNAVAILABLE,
            CardError::SecureMessagingWrong => StatusWord::SECURE_MESSAGING_WRONG,
        }
    }
}

impl From<ApduError> for CardError {
    fn from(e: ApduError) -> Self {
        match e {
            ApduError::WrongLength => CardError::WrongLength,
        }
    }
}
