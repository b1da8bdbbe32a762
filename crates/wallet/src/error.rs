//! The wallet's one error type: the service's refusal with its HTTP status and message, the
//! secure element's status word by name, or the phone file's trouble.

use std::fmt;
use std::path::PathBuf;

use yitong_profile::StatusWord;
use yitong_terminal::ChannelError;

/// Why a wallet operation failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum WalletError {
    /// The service answered with an error status and its `{code, message}`.
    Service {
        /// The request, `POST /v1/topups`.
        request: String,
        /// The HTTP status.
        status: u16,
        /// The service's stable code (`order_not_paid`), or empty when the body had none.
        code: String,
        /// The service's message.
        message: String,
    },
    /// The service could not be reached (refused, timed out, DNS).
    Unreachable {
        /// The service's base URL.
        server: String,
        /// Why.
        why: String,
    },
    /// The service answered something this wallet cannot read.
    BadServiceAnswer {
        /// The request.
        request: String,
        /// Why.
        why: String,
    },
    /// The secure element answered a command with an error status word.
    Card {
        /// The command (`CREDIT FOR LOAD`).
        command: &'static str,
        /// Its status word.
        status: StatusWord,
    },
    /// The secure element's answer does not have the shape the command's answer has.
    BadCardAnswer {
        /// The command.
        command: &'static str,
        /// Why.
        why: String,
    },
    /// No answer from the secure element.
    Channel {
        /// The command.
        command: &'static str,
        /// The channel's error.
        error: ChannelError,
    },
    /// The phone file cannot be read, written or used.
    PhoneFile {
        /// The file.
        path: PathBuf,
        /// Why.
        why: String,
    },
    /// The phone has no card of this city.
    NoCard {
        /// The city.
        city: String,
    },
    /// The phone cannot carry a card of the city (the catalogue's reason).
    NotEligible {
        /// The service's reason, for the rider.
        reason: String,
    },
    /// A flow was cut short on purpose (a simulated tear) or by the SE going away at a money
    /// command: its state is in the phone file and the next command on the phone recovers it.
    Interrupted {
        /// What is in flight, for the rider.
        what: String,
    },
    /// A request that cannot be made as given (the caller's mistake), naming what is wrong.
    Usage(String),
}

impl WalletError {
    /// The service's error code, when the service refused.
    pub fn service_code(&self) -> Option<&str> {
        match self {
            WalletError::Service { code, .. } => Some(code),
            _ => None,
        }
    }

    /// The HTTP status, when the service refused.
    pub fn http_status(&self) -> Option<u16> {
        match self {
            WalletError::Service { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The service itself refused the request (a 4xx with one of its codes): the same request
    /// again is refused again. A 4xx without the service's code (a proxy's: too many requests, a
    /// time-out) is not: what it answered for is unknown.
    pub fn is_refusal(&self) -> bool {
        matches!(self, WalletError::Service { status, code, .. } if (400..500).contains(status) && !code.is_empty())
    }
}

impl fmt::Display for WalletError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WalletError::Service { request, status, code, message } if code.is_empty() => {
                write!(f, "{request}: the service answered {status}: {message}")
            }
            WalletError::Service { request, status, code, message } => {
                write!(f, "{request}: the service answered {status} {code}: {message}")
            }
            WalletError::Unreachable { server, why } => write!(f, "cannot reach the service at {server}: {why}"),
            WalletError::BadServiceAnswer { request, why } => write!(f, "{request}: unreadable answer: {why}"),
            WalletError::Card { command, status } => match status.meaning() {
                Some(meaning) => write!(f, "the card refused {command}: {status} ({meaning})"),
                None => write!(f, "the card refused {command}: {status}"),
            },
            WalletError::BadCardAnswer { command, why } => write!(f, "the card's answer to {command}: {why}"),
            WalletError::Channel { command, error } => write!(f, "{command}: {error}"),
            WalletError::PhoneFile { path, why } => write!(f, "{}: {why}", path.display()),
            WalletError::NoCard { city } => {
                write!(f, "this phone has no {city} card (`yitong phone enroll PHONE --city {city}` gets one)")
            }
            WalletError::NotEligible { reason } => write!(f, "not eligible: {reason}"),
            WalletError::Interrupted { what } => {
                write!(f, "interrupted: {what}; the next command on this phone recovers it")
            }
            WalletError::Usage(message) => f.write_str(message),
        }
    }
}

impl std::error::Error for WalletError {}

#[cfg(test)]
mod tests {
    use super::WalletError;

    fn answer(status: u16, code: &str) -> WalletError {
        WalletError::Service {
            request: "POST /v1/phones/me/token".into(),
            status,
            code: code.into(),
            message: String::new(),
        }
    }

    #[test]
    fn only_the_services_own_4xx_is_a_refusal() {
        assert!(answer(400, "bad_field").is_refusal());
        assert!(answer(409, "phone_registered").is_refusal());
        // A proxy's answer (no code of the service's): what it answered for is unknown.
        assert!(!answer(429, "").is_refusal());
        assert!(!answer(408, "").is_refusal());
        assert!(!answer(503, "unavailable").is_refusal());
    }
}
