//! Who owes whom: the participants of interoperability (T-Union style) and their names.
//!
//! An **issuer** sold the cards and holds the riders' prepaid money; an **operator** (a city's
//! metro or its buses) carried the rider and earned the fare. The caller names them in a
//! [`Participants`] table built from its cities; a city or issuer missing from the table still
//! settles, under a name that says it is missing.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Serialize, Serializer};

use super::SettleError;

/// Bytes 4-7 of a city's issuer ID by the profile's convention: `0000 · city code · 00000001`.
const ISSUER_ID_SUFFIX: [u8; 4] = [0, 0, 0, 1];

/// An operator's mode of transport.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// The city's metro: its gates are `city · station · 00 · gate`.
    Metro,
    /// The city's buses: their validators are `city · route · B0 · validator`.
    Bus,
}

impl Mode {
    /// `metro` or `bus`.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Metro => "metro",
            Mode::Bus => "bus",
        }
    }
}

/// A party to the day's obligations. Written `issuer:<issuer ID, 16 hex digits>`,
/// `metro:<city code, 4 hex digits>` or `bus:<city code>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Participant {
    /// A card issuer, by the issuer ID its cards carry.
    Issuer {
        /// The issuer ID.
        issuer_id: [u8; 8],
    },
    /// A city's metro or bus operator.
    Operator {
        /// The city code of its terminals (BCD, `0x1000` for Beijing).
        city_code: u16,
        /// Metro or bus.
        mode: Mode,
    },
}

impl fmt::Display for Participant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Participant::Issuer { issuer_id } => write!(f, "issuer:{}", hex::encode_upper(issuer_id)),
            Participant::Operator { city_code, mode } => write!(f, "{}:{city_code:04X}", mode.as_str()),
        }
    }
}

impl FromStr for Participant {
    type Err = SettleError;

    fn from_str(text: &str) -> Result<Self, SettleError> {
        let invalid = || SettleError::InvalidParticipant { text: text.to_owned() };
        let (kind, id) = text.split_once(':').ok_or_else(invalid)?;
        let bytes = |len: usize| -> Result<Vec<u8>, SettleError> {
            if id.len() == len * 2 {
                hex::decode(id).map_err(|_| invalid())
            } else {
                Err(invalid())
            }
        };
        let operator = |mode: Mode| -> Result<Participant, SettleError> {
            let code: [u8; 2] = bytes(2)?.try_into().map_err(|_| invalid())?;
            Ok(Participant::Operator { city_code: u16::from_be_bytes(code), mode })
        };
        match kind {
            "issuer" => Ok(Participant::Issuer { issuer_id: bytes(8)?.try_into().map_err(|_| invalid())? }),
            "metro" => operator(Mode::Metro),
            "bus" => operator(Mode::Bus),
            _ => Err(invalid()),
        }
    }
}

impl Serialize for Participant {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// A city's participants and their names: one row of the [`Participants`] table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CityParticipants {
    /// City code (BCD, as in terminal IDs).
    pub city_code: u16,
    /// The city's display name (`北京 Beijing`).
    pub city_name: String,
    /// The issuer ID of the city's cards (and of the issuer behind its top-up terminals).
    pub issuer_id: [u8; 8],
    /// The issuer's name.
    pub issuer_name: String,
    /// The metro operator's name.
    pub metro_operator_name: String,
    /// The bus operator's name.
    pub bus_operator_name: String,
}

impl CityParticipants {
    /// A city whose operators are named after it (`北京 Beijing metro`, `北京 Beijing bus`).
    pub fn new(city_code: u16, city_name: &str, issuer_id: [u8; 8], issuer_name: &str) -> Self {
        CityParticipants {
            city_code,
            city_name: city_name.to_owned(),
            issuer_id,
            issuer_name: issuer_name.to_owned(),
            metro_operator_name: format!("{city_name} metro"),
            bus_operator_name: format!("{city_name} bus"),
        }
    }
}

/// The issuer ID of `city_code`'s cards by the profile's convention, `0000 · city code ·
/// 00000001` (as the platform's `City::issuer_id` makes it).
pub fn conventional_issuer_id(city_code: u16) -> [u8; 8] {
    let [c0, c1] = city_code.to_be_bytes();
    let [s0, s1, s2, s3] = ISSUER_ID_SUFFIX;
    [0, 0, c0, c1, s0, s1, s2, s3]
}

/// The participant table: cities by code, with their issuers and operators' names.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Participants {
    by_city: BTreeMap<u16, CityParticipants>,
    city_of_issuer: BTreeMap<[u8; 8], u16>,
}

impl Participants {
    /// The table of `cities`; city codes and issuer IDs must be unique.
    pub fn new(cities: impl IntoIterator<Item = CityParticipants>) -> Result<Self, SettleError> {
        let mut table = Participants::default();
        for city in cities {
            if table.by_city.contains_key(&city.city_code) {
                return Err(SettleError::DuplicateCity { city_code: city.city_code });
            }
            if table.city_of_issuer.insert(city.issuer_id, city.city_code).is_some() {
                return Err(SettleError::DuplicateIssuer { issuer_id: city.issuer_id });
            }
            table.by_city.insert(city.city_code, city);
        }
        Ok(table)
    }

    /// The issuer behind `city_code`'s top-up terminals: the table's, or for a city not in the
    /// table the conventional [`conventional_issuer_id`].
    pub fn issuer_of_city(&self, city_code: u16) -> [u8; 8] {
        self.by_city.get(&city_code).map_or_else(|| conventional_issuer_id(city_code), |c| c.issuer_id)
    }

    /// The participant's name; one missing from the table gets a name that says so.
    pub fn name(&self, participant: &Participant) -> String {
        match *participant {
            Participant::Issuer { issuer_id } => {
                match self.city_of_issuer.get(&issuer_id).and_then(|code| self.by_city.get(code)) {
                    Some(city) => city.issuer_name.clone(),
                    None => format!("issuer {} (not in the participant table)", hex::encode_upper(issuer_id)),
                }
            }
            Participant::Operator { city_code, mode } => match (self.by_city.get(&city_code), mode) {
                (Some(city), Mode::Metro) => city.metro_operator_name.clone(),
                (Some(city), Mode::Bus) => city.bus_operator_name.clone(),
                (None, mode) => format!("{} of city {city_code:04X} (not in the participant table)", mode.as_str()),
            },
        }
    }

    /// The cities of the table, by city code.
    pub fn cities(&self) -> impl Iterator<Item = &CityParticipants> {
        self.by_city.values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn beijing() -> CityParticipants {
        CityParticipants::new(0x1000, "北京 Beijing", conventional_issuer_id(0x1000), "Beijing Card Co.")
    }

    #[test]
    fn ids_print_and_parse() {
        let cases = [
            (Participant::Issuer { issuer_id: [0, 0, 0x10, 0, 0, 0, 0, 1] }, "issuer:0000100000000001"),
            (Participant::Operator { city_code: 0x2900, mode: Mode::Metro }, "metro:2900"),
            (Participant::Operator { city_code: 0x1000, mode: Mode::Bus }, "bus:1000"),
        ];
        for (participant, text) in cases {
            assert_eq!(participant.to_string(), text);
            assert_eq!(text.parse::<Participant>().unwrap(), participant);
        }
        for bad in ["issuer:00001000", "metro:29000", "tram:2900", "metro2900", "bus:29G0", ""] {
            assert_eq!(bad.parse::<Participant>(), Err(SettleError::InvalidParticipant { text: bad.to_owned() }));
        }
    }

    #[test]
    fn names_come_from_the_table_with_a_fallback() {
        let table = Participants::new([beijing()]).unwrap();
        let name = |text: &str| table.name(&text.parse().unwrap());
        assert_eq!(name("issuer:0000100000000001"), "Beijing Card Co.");
        assert_eq!(name("metro:1000"), "北京 Beijing metro");
        assert_eq!(name("bus:1000"), "北京 Beijing bus");
        assert_eq!(name("metro:7777"), "metro of city 7777 (not in the participant table)");
        assert_eq!(name("issuer:0000777700000001"), "issuer 0000777700000001 (not in the participant table)");
        assert_eq!(table.issuer_of_city(0x1000), [0, 0, 0x10, 0, 0, 0, 0, 1]);
        assert_eq!(table.issuer_of_city(0x7777), [0, 0, 0x77, 0x77, 0, 0, 0, 1]);
    }

    #[test]
    fn a_city_or_issuer_given_twice_is_refused() {
        assert_eq!(Participants::new([beijing(), beijing()]), Err(SettleError::DuplicateCity { city_code: 0x1000 }));
        let mut other = beijing();
        other.city_code = 0x2900;
        assert_eq!(
            Participants::new([beijing(), other]),
            Err(SettleError::DuplicateIssuer { issuer_id: conventional_issuer_id(0x1000) })
        );
    }
}
