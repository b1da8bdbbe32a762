use std::fmt;

/// Why a card cannot be issued or a serial or terminal ID cannot be made.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum IssueError {
    /// The last valid day comes before the first.
    ExpiresBeforeValid,
    /// The overdraft limit does not fit the card's 3-byte field.
    OverdraftTooLarge {
        /// Largest overdraft limit, fen.
        max_fen: u32,
    },
    /// The balance limit does not fit the card's signed 4-byte balance.
    BalanceLimitTooLarge {
        /// Largest balance limit, fen.
        max_fen: u32,
    },
    /// A date is not 4 BCD bytes of a real day (`YYYYMMDD`).
    InvalidDate {
        /// Which date: `valid_from` or `valid_to`.
        field: &'static str,
    },
    /// The issuer ID's city code (bytes 2-3) is not 4 BCD digits.
    InvalidCityCode {
        /// The code as found.
        city_code: u16,
    },
    /// A serial's sequence part is not 16 BCD digits.
    InvalidSerial {
        /// The serial in hex.
        serial: String,
    },
    /// Sequence numbers count from 1; an allocator cannot resume at 0.
    SequenceZero,
    /// Every sequence number of this issuer has been handed out.
    SerialsExhausted {
        /// The issuer's city code.
        city_code: u16,
    },
    /// The terminal cannot be numbered by the scheme (gate 0, or a station code reserved for
    /// top-up terminals).
    InvalidTerminalSite {
        /// What is wrong.
        reason: &'static str,
    },
}

impl fmt::Display for IssueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IssueError::ExpiresBeforeValid => f.write_str("the card would expire before it becomes valid"),
            IssueError::OverdraftTooLarge { max_fen } => {
                write!(f, "the overdraft limit is more than the card's 3-byte field holds ({max_fen} fen)")
            }
            IssueError::BalanceLimitTooLarge { max_fen } => {
                write!(f, "the balance limit is more than the card's signed balance holds ({max_fen} fen)")
            }
            IssueError::InvalidDate { field } => write!(f, "{field}: not a day in BCD YYYYMMDD"),
            IssueError::InvalidCityCode { city_code } => {
                write!(f, "city code {city_code:04X} (issuer ID bytes 2-3) is not 4 BCD digits")
            }
            IssueError::InvalidSerial { serial } => {
                write!(f, "serial {serial}: not a city code and a 16-digit BCD sequence number")
            }
            IssueError::SequenceZero => f.write_str("sequence numbers of serials count from 1, not 0"),
            IssueError::SerialsExhausted { city_code } => {
                write!(f, "issuer of city {city_code:04X} has handed out every serial")
            }
            IssueError::InvalidTerminalSite { reason } => write!(f, "no terminal ID: {reason}"),
        }
    }
}

impl std::error::Error for IssueError {}
