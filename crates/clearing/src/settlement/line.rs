//! Where a record's money goes: the terminal ID names the site (`yitong-issuer`'s terminal-ID
//! scheme), the site names the counterparty, and the record's kind the direction.
//!
//! | record | at | payer | payee | line |
//! |---|---|---|---|---|
//! | purchase (entry, exit, single) | metro gate `city · station · 00 · gate` | card's issuer | `metro:city` | `purchase` |
//! | purchase | bus validator `city · route · B0 · validator` | card's issuer | `bus:city` | `purchase` |
//! | purchase | top-up terminal `city · FFFF · number` (the service desk, 0003, empties closed cards) | card's issuer | the city's issuer | `service_desk` |
//! | load | top-up terminal `city · FFFF · number` | the city's issuer (it took the rider's money) | card's issuer (it owes the stored value) | `load` |
//!
//! The terminal ID decides, not the record's `city_code` text: the TAC covers the terminal ID.

use serde::Serialize;
use yitong_record::TapRecord;

use super::{Mode, Participant, Participants, SettleError};

/// Bytes 2-3 of a top-up terminal's ID (a metro gate's station code never takes it).
const TOPUP_STATION: [u8; 2] = [0xFF, 0xFF];
/// Byte 4 of a metro gate's ID.
const METRO_MARK: u8 = 0x00;
/// Byte 4 of a bus validator's ID.
const BUS_MARK: u8 = 0xB0;
/// Top-up terminal number of the wallet platform's over-the-air load host
/// (`yitong_issuer::TOPUP_OVER_THE_AIR`): its loads are the ones the platform's ledger shows.
pub const TOPUP_OVER_THE_AIR: u16 = 0x0002;

/// What a terminal is, as far as its ID tells.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Site {
    /// A metro gate of the city.
    MetroGate {
        /// City code.
        city_code: u16,
    },
    /// A bus validator of the city.
    BusValidator {
        /// City code.
        city_code: u16,
    },
    /// A top-up terminal of the city's issuer.
    TopUp {
        /// City code.
        city_code: u16,
        /// The terminal's number ([`TOPUP_OVER_THE_AIR`] for the platform's load host).
        number: u16,
    },
}

impl Site {
    /// The site of `terminal_id`, or `None` for an ID of no known layout.
    pub fn of(terminal_id: [u8; 6]) -> Option<Site> {
        let [c0, c1, s0, s1, mark, last] = terminal_id;
        let city_code = u16::from_be_bytes([c0, c1]);
        if [s0, s1] == TOPUP_STATION {
            return Some(Site::TopUp { city_code, number: u16::from_be_bytes([mark, last]) });
        }
        match mark {
            METRO_MARK => Some(Site::MetroGate { city_code }),
            BUS_MARK => Some(Site::BusValidator { city_code }),
            _ => None,
        }
    }
}

/// The kind of an obligation line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LineKind {
    /// Fares: a card's issuer owes the operator that carried the rider.
    Purchase,
    /// Debits at an issuer's top-up terminal (the platform's service desk emptying a closed
    /// card): the card's issuer owes the terminal's issuer, which pays the rider back.
    ServiceDesk,
    /// Loads: the terminal's issuer took the rider's money and owes it to the card's issuer,
    /// which now owes the stored value.
    Load,
}

impl LineKind {
    /// `purchase`, `service_desk` or `load`.
    pub fn as_str(self) -> &'static str {
        match self {
            LineKind::Purchase => "purchase",
            LineKind::ServiceDesk => "service_desk",
            LineKind::Load => "load",
        }
    }
}

/// The obligation line a record's money is on: exactly one per record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LineKey {
    /// Purchase, service desk or load.
    pub kind: LineKind,
    /// Who owes.
    pub payer: Participant,
    /// Who is owed.
    pub payee: Participant,
}

impl LineKey {
    /// The line of `record` (see the module's table); a terminal of no known layout, or a load
    /// at a gate, is an error naming the tap.
    pub fn of(record: &TapRecord, participants: &Participants) -> Result<LineKey, SettleError> {
        let tap_id = record.tap_id();
        let card_issuer = Participant::Issuer { issuer_id: record.issuer_id };
        let site = Site::of(record.terminal_id).ok_or(SettleError::UnknownTerminal { tap_id })?;
        let key = match (record.kind.is_load(), site) {
            (false, Site::MetroGate { city_code }) => LineKey {
                kind: LineKind::Purchase,
                payer: card_issuer,
                payee: Participant::Operator { city_code, mode: Mode::Metro },
            },
            (false, Site::BusValidator { city_code }) => LineKey {
                kind: LineKind::Purchase,
                payer: card_issuer,
                payee: Participant::Operator { city_code, mode: Mode::Bus },
            },
            (false, Site::TopUp { city_code, .. }) => LineKey {
                kind: LineKind::ServiceDesk,
                payer: card_issuer,
                payee: Participant::Issuer { issuer_id: participants.issuer_of_city(city_code) },
            },
            (true, Site::TopUp { city_code, .. }) => LineKey {
                kind: LineKind::Load,
                payer: Participant::Issuer { issuer_id: participants.issuer_of_city(city_code) },
                payee: card_issuer,
            },
            (true, Site::MetroGate { .. } | Site::BusValidator { .. }) => {
                return Err(SettleError::LoadAtGate { tap_id });
            }
        };
        Ok(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sites_follow_the_terminal_id_scheme() {
        let site = |text: &str| Site::of(hex::decode(text).unwrap().try_into().unwrap());
        assert_eq!(site("100000040002"), Some(Site::MetroGate { city_code: 0x1000 }));
        assert_eq!(site("29000001B001"), Some(Site::BusValidator { city_code: 0x2900 }));
        assert_eq!(site("1000FFFF0002"), Some(Site::TopUp { city_code: 0x1000, number: TOPUP_OVER_THE_AIR }));
        // A bus mark after FFFF is still a top-up terminal (FFFF is reserved for them).
        assert_eq!(site("1000FFFFB001"), Some(Site::TopUp { city_code: 0x1000, number: 0xB001 }));
        assert_eq!(site("100000047701"), None);
    }
}
