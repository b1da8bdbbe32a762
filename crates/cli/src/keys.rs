//! Issuer key files: the format, the roles and what each holds are `yitong_platform::keyfile`'s
//! (one piece of code for the CLI and the server); here only the command line's role argument.

use std::fmt;

pub use yitong_platform::keyfile::{algorithm_name, parse_hex, KeySet, Role};

/// `--for ROLE` of `yitong keys export`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum RoleArg {
    /// Every key: the issuer's development set (issues cards).
    Full,
    /// A gate: purchase and maintenance keys.
    Gate,
    /// A top-up terminal's load host: the load key.
    Topup,
    /// The back office: TAC and unblock keys (TAC checks, the service desk's unblock).
    Backoffice,
}

impl From<RoleArg> for Role {
    fn from(role: RoleArg) -> Role {
        match role {
            RoleArg::Full => Role::Full,
            RoleArg::Gate => Role::Gate,
            RoleArg::Topup => Role::Topup,
            RoleArg::Backoffice => Role::Backoffice,
        }
    }
}

impl fmt::Display for RoleArg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        Role::from(*self).fmt(f)
    }
}
