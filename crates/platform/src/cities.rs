//! The regions the platform issues phone cards for: issuer, card AIDs, sign-up fee and fare
//! profile, read from the fare engine's own city files (`crates/fare/cities/*.toml`, their
//! `[platform]` table), so that a city's fares and fees change in one place.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use yitong_fare::{CityProfile, LoadError, BUILTIN_CITIES};
use yitong_issuer::{CardRequest, IssueError, IssuerIdentity, Serial};
use yitong_profile::DateTime;

/// Bytes 4-7 of the issuer ID the platform's development key sets use: `00000001` after `0000`
/// and the city code (`0000100000000001` for Beijing, as `yitong keys new` writes by default).
const ISSUER_ID_SUFFIX: [u8; 4] = [0, 0, 0, 1];

/// One region: its card issuer and the fare profile its gates apply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct City {
    profile: Arc<CityProfile>,
}

impl City {
    /// A city of this fare profile.
    pub fn new(profile: CityProfile) -> Self {
        City { profile: Arc::new(profile) }
    }

    /// Lower-case name (`beijing`), the platform's key for the city.
    pub fn name(&self) -> &str {
        &self.profile.name
    }

    /// Display name (`北京 Beijing`).
    pub fn display_name(&self) -> &str {
        &self.profile.display_name
    }

    /// City code (BCD, as on cards).
    pub fn city_code(&self) -> u16 {
        self.profile.city_code
    }

    /// The card issuer's name.
    pub fn issuer(&self) -> &str {
        &self.profile.issuer
    }

    /// The issuer ID of the city's cards: `0000`, city code, `00000001` (profile choice, the
    /// development convention of `yitong keys new`).
    pub fn issuer_id(&self) -> [u8; 8] {
        let [c0, c1] = self.city_code().to_be_bytes();
        let [s0, s1, s2, s3] = ISSUER_ID_SUFFIX;
        [0, 0, c0, c1, s0, s1, s2, s3]
    }

    /// The new phone card `serial` of this city's issuer (keys of `key_version`), valid from
    /// `today` to 31 December ten years on: anonymous, no overdraft, the default balance limit.
    /// The serial must be of this city (`SerialAllocator::new(city.city_code())`).
    pub fn card_request(&self, key_version: u8, serial: Serial, today: &DateTime) -> Result<CardRequest, IssueError> {
        if serial.city_code() != self.city_code() {
            return Err(IssueError::InvalidSerial { serial: serial.to_string() });
        }
        let issuer = IssuerIdentity { issuer_id: self.issuer_id(), key_version };
        let request = CardRequest::anonymous(issuer, serial, today.date_bcd(), yitong_issuer::default_valid_to(today)?);
        request.validate()?;
        Ok(request)
    }

    /// AIDs of the cards its gates accept.
    pub fn card_aids(&self) -> &[Vec<u8>] {
        &self.profile.card_aids
    }

    /// The standard fee for a phone card, fen, before promotions.
    pub fn signup_fee_fen(&self) -> u32 {
        self.profile.platform.signup_fee_fen
    }

    /// The city's own card app, if riders may sign up there too.
    pub fn card_app(&self) -> Option<&str> {
        self.profile.platform.card_app.as_deref()
    }

    /// The fare profile, as the fare engine reads it.
    pub fn fare_profile(&self) -> &Arc<CityProfile> {
        &self.profile
    }
}

/// A city file that cannot be used, or two cities that clash.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CityError {
    /// The file does not parse (its name, line and field are in the error).
    Load(LoadError),
    /// Two cities share a name.
    DuplicateName {
        /// The name.
        name: String,
    },
    /// Two cities share a city code, so their cards' serials and terminal IDs would clash.
    DuplicateCityCode {
        /// The code.
        city_code: u16,
        /// The two cities.
        names: [String; 2],
    },
}

impl fmt::Display for CityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CityError::Load(e) => e.fmt(f),
            CityError::DuplicateName { name } => write!(f, "city `{name}` is given twice"),
            CityError::DuplicateCityCode { city_code, names: [a, b] } => {
                write!(f, "cities `{a}` and `{b}` share city code {city_code:04X}")
            }
        }
    }
}

impl std::error::Error for CityError {}

impl From<LoadError> for CityError {
    fn from(e: LoadError) -> Self {
        CityError::Load(e)
    }
}

/// The cities the platform serves, by name.
#[derive(Clone, Debug, Default)]
pub struct Cities {
    by_name: BTreeMap<String, City>,
}

impl Cities {
    /// The ten regions of the built-in city files.
    pub fn builtin() -> Result<Self, CityError> {
        let profiles =
            BUILTIN_CITIES.iter().map(|(name, text)| CityProfile::parse(text, &format!("cities/{name}.toml")));
        Self::from_profiles(profiles.collect::<Result<Vec<_>, _>>()?)
    }

    /// These cities; names and city codes must be unique.
    pub fn from_profiles(profiles: impl IntoIterator<Item = CityProfile>) -> Result<Self, CityError> {
        let mut by_name: BTreeMap<String, City> = BTreeMap::new();
        let mut by_code: BTreeMap<u16, String> = BTreeMap::new();
        for profile in profiles {
            let name = profile.name.to_ascii_lowercase();
            if by_name.contains_key(&name) {
                return Err(CityError::DuplicateName { name });
            }
            if let Some(other) = by_code.insert(profile.city_code, name.clone()) {
                return Err(CityError::DuplicateCityCode { city_code: profile.city_code, names: [other, name] });
            }
            by_name.insert(name, City::new(profile));
        }
        Ok(Cities { by_name })
    }

    /// The city named `name` (any case).
    pub fn get(&self, name: &str) -> Option<&City> {
        self.by_name.get(&name.trim().to_ascii_lowercase())
    }

    /// The city of a card's city code.
    pub fn by_city_code(&self, city_code: u16) -> Option<&City> {
        self.by_name.values().find(|c| c.city_code() == city_code)
    }

    /// Every city, by name.
    pub fn iter(&self) -> impl Iterator<Item = &City> {
        self.by_name.values()
    }

    /// The cities' names, in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.by_name.keys().map(String::as_str)
    }

    /// How many cities.
    pub fn len(&self) -> usize {
        self.by_name.len()
    }

    /// No city at all.
    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ten_regions_come_from_the_fare_engines_city_files() {
        let cities = Cities::builtin().unwrap();
        assert_eq!(
            cities.names().collect::<Vec<_>>(),
            [
                "beijing",
                "chengdu",
                "chongqing",
                "guangzhou",
                "hangzhou",
                "jilin",
                "shanghai",
                "shenzhen",
                "tianjin",
                "wuhan"
            ]
        );
        let beijing = cities.get("Beijing").unwrap();
        assert_eq!(beijing.city_code(), 0x1000);
        assert_eq!(beijing.issuer_id(), [0x00, 0x00, 0x10, 0x00, 0x00, 0x00, 0x00, 0x01]);
        assert!(beijing.issuer().starts_with("北京市政交通一卡通"));
        assert_eq!(beijing.card_aids()[0], [0xA0, 0x00, 0x00, 0x06, 0x32, 0x01, 0x01, 0x05]);
        assert_eq!(beijing.signup_fee_fen(), 2_900);
        assert_eq!(beijing.card_app(), Some("北京一卡通 (Beijing All-in-One Card)"));
        assert!(beijing.fare_profile().metro.is_some());
        // A city file without a [platform] table: the default fee, no city app.
        let jilin = cities.get("jilin").unwrap();
        assert_eq!((jilin.signup_fee_fen(), jilin.card_app()), (2_900, None));
        assert!(jilin.fare_profile().metro.is_none());
        assert_eq!(cities.by_city_code(0x5840).map(City::name), Some("shenzhen"));
        assert!(cities.get("atlantis").is_none());
    }

    #[test]
    fn a_citys_new_card_carries_its_issuer_and_a_serial_of_its_own() {
        let cities = Cities::builtin().unwrap();
        let shenzhen = cities.get("shenzhen").unwrap();
        let serial = yitong_issuer::SerialAllocator::new(shenzhen.city_code()).unwrap().allocate().unwrap();
        let today = DateTime::new(2026, 11, 25, 18, 30, 0).unwrap();
        let request = shenzhen.card_request(1, serial, &today).unwrap();
        let ef15 = request.issuer_data().encode();
        assert_eq!(
            ef15.iter().map(|b| format!("{b:02X}")).collect::<String>(),
            "0000584000000001\
             0201\
             58400000000000000001\
             20261125\
             20361231\
             0000"
        );
        // Another city's serial would give two cards one ASN8.
        let beijing_serial = Serial::from_parts(0x1000, 1).unwrap();
        assert!(matches!(shenzhen.card_request(1, beijing_serial, &today), Err(IssueError::InvalidSerial { .. })));
    }

    #[test]
    fn clashing_cities_are_refused() {
        let beijing = CityProfile::builtin("beijing").unwrap().unwrap();
        let err = Cities::from_profiles([beijing.clone(), beijing.clone()]).unwrap_err();
        assert_eq!(err, CityError::DuplicateName { name: "beijing".into() });
        let twin = CityProfile { name: "twin".into(), ..beijing.clone() };
        let err = Cities::from_profiles([beijing, twin]).unwrap_err();
        assert_eq!(err.to_string(), "cities `beijing` and `twin` share city code 1000");
    }
}
