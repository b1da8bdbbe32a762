//! Terminal IDs: 6 bytes, city code first, then the terminal's place (`docs/card-profile.md`,
//! terminal IDs; profile choice). Every terminal of a city gets its own ID, so that a terminal
//! ID and its transaction number identify a tap.

use crate::IssueError;

/// Top-up terminal number of the CLI's simulated top-up terminal (`yitong card load`).
pub const TOPUP_CLI: u16 = 0x0001;
/// Top-up terminal number of the wallet platform's over-the-air load host.
pub const TOPUP_OVER_THE_AIR: u16 = 0x0002;
/// Top-up terminal number of the wallet platform's service desk over the air: it empties and
/// blocks a phone card being transferred or deleted (a purchase of the whole balance).
pub const SERVICE_DESK_OVER_THE_AIR: u16 = 0x0003;

/// Station code reserved for top-up terminals: a metro gate's station code never takes it.
const TOPUP_STATION: u16 = 0xFFFF;
/// Byte 4 of a metro gate's ID.
const METRO_MARK: u8 = 0x00;
/// Byte 4 of a bus validator's ID.
const BUS_MARK: u8 = 0xB0;

/// Where a terminal stands, as far as its ID tells.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TerminalSite {
    /// A metro gate: its station's code (unique in the network) and its number there, from 1.
    MetroGate {
        /// The station code.
        station: u16,
        /// The gate's number at the station, from 1.
        gate: u8,
    },
    /// A bus validator: its route and its number on the route, from 1.
    BusValidator {
        /// The route number.
        route: u16,
        /// The validator's number, from 1.
        validator: u8,
    },
    /// A top-up terminal of the issuer ([`TOPUP_CLI`], [`TOPUP_OVER_THE_AIR`], …).
    TopUp {
        /// The top-up terminal's number.
        number: u16,
    },
}

impl TerminalSite {
    /// The terminal ID in `city_code`: a metro gate `city · station · 00 · gate`; a bus
    /// validator `city · route · B0 · validator`; a top-up terminal `city · FFFF · number`.
    pub fn terminal_id(&self, city_code: u16) -> Result<[u8; 6], IssueError> {
        let [c0, c1] = city_code.to_be_bytes();
        match *self {
            TerminalSite::MetroGate { gate: 0, .. } | TerminalSite::BusValidator { validator: 0, .. } => {
                Err(IssueError::InvalidTerminalSite { reason: "gates and validators are numbered from 1" })
            }
            TerminalSite::MetroGate { station: TOPUP_STATION, .. } => {
                Err(IssueError::InvalidTerminalSite { reason: "station code FFFF is reserved for top-up terminals" })
            }
            TerminalSite::MetroGate { station, gate } => {
                let [s0, s1] = station.to_be_bytes();
                Ok([c0, c1, s0, s1, METRO_MARK, gate])
            }
            TerminalSite::BusValidator { route, validator } => {
                let [r0, r1] = route.to_be_bytes();
                Ok([c0, c1, r0, r1, BUS_MARK, validator])
            }
            TerminalSite::TopUp { number } => {
                let [t0, t1] = TOPUP_STATION.to_be_bytes();
                let [n0, n1] = number.to_be_bytes();
                Ok([c0, c1, t0, t1, n0, n1])
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_of_terminal_has_its_layout() {
        let id = |site: TerminalSite| hex::encode_upper(site.terminal_id(0x1000).unwrap());
        assert_eq!(id(TerminalSite::MetroGate { station: 0x0004, gate: 2 }), "100000040002");
        assert_eq!(id(TerminalSite::BusValidator { route: 1, validator: 1 }), "10000001B001");
        assert_eq!(id(TerminalSite::TopUp { number: TOPUP_CLI }), "1000FFFF0001");
        assert_eq!(id(TerminalSite::TopUp { number: TOPUP_OVER_THE_AIR }), "1000FFFF0002");
    }

    #[test]
    fn ids_that_could_collide_are_refused() {
        let gate0 = TerminalSite::MetroGate { station: 4, gate: 0 };
        assert!(matches!(gate0.terminal_id(0x1000), Err(IssueError::InvalidTerminalSite { .. })));
        let validator0 = TerminalSite::BusValidator { route: 4, validator: 0 };
        assert!(matches!(validator0.terminal_id(0x1000), Err(IssueError::InvalidTerminalSite { .. })));
        // Station FFFF gate 1 would be the CLI's top-up terminal.
        let reserved = TerminalSite::MetroGate { station: 0xFFFF, gate: 1 };
        assert!(matches!(reserved.terminal_id(0x1000), Err(IssueError::InvalidTerminalSite { .. })));
    }
}
