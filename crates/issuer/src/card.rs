//! What a new card carries: EF15, EF16, EF17 and its limits, and its personalization.

use yitong_card::{CardSpec, MasterKeys, BALANCE_LIMIT_FEN_DEFAULT, OVERDRAFT_LIMIT_FEN_MAX};
use yitong_profile::files::{IssuerData, HOLDER_LEN, MANAGEMENT_LEN};
use yitong_profile::DateTime;

use crate::{IssueError, Serial};

/// EF15 application type: `02`, electronic purse (`docs/card-profile.md`, Files).
pub const APP_TYPE_EP: u8 = 0x02;
/// EF15 application version.
pub const APP_VERSION: u8 = 0x01;

/// Country code 156 (China) as EF17 carries it, 4 bytes BCD.
const COUNTRY_CHINA: [u8; 4] = [0x00, 0x00, 0x01, 0x56];
/// EF17 interoperability flag: `0001`, a T-Union card accepted across cities.
const INTEROPERABLE: [u8; 2] = [0x00, 0x01];
/// EF17 card type: `01`, adult.
const CARD_TYPE_ADULT: u8 = 0x01;

/// An issuer as its cards name it: the issuer ID of EF15 and the version of its keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IssuerIdentity {
    /// Issuer ID; the city code (BCD) is at bytes 2-3.
    pub issuer_id: [u8; 8],
    /// Version of the issuer's master keys, reported by INITIALIZE.
    pub key_version: u8,
}

impl IssuerIdentity {
    /// The city code at bytes 2-3 of the issuer ID (BCD, `1000` for Beijing).
    pub fn city_code(&self) -> u16 {
        u16::from_be_bytes([self.issuer_id[2], self.issuer_id[3]])
    }
}

/// One card to personalize: an anonymous adult e-purse card of an issuer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CardRequest {
    /// The issuer.
    pub issuer: IssuerIdentity,
    /// The application serial (its last 8 bytes diversify the card keys).
    pub serial: Serial,
    /// First valid day, BCD `YYYYMMDD`.
    pub valid_from: [u8; 4],
    /// Last valid day, BCD `YYYYMMDD`.
    pub valid_to: [u8; 4],
    /// Overdraft limit, fen (at most [`OVERDRAFT_LIMIT_FEN_MAX`]).
    pub overdraft_limit_fen: u32,
    /// Highest balance a load may reach, fen.
    pub balance_limit_fen: u32,
}

impl CardRequest {
    /// An anonymous card with no overdraft and the default balance limit (1,000 yuan).
    pub fn anonymous(issuer: IssuerIdentity, serial: Serial, valid_from: [u8; 4], valid_to: [u8; 4]) -> Self {
        CardRequest {
            issuer,
            serial,
            valid_from,
            valid_to,
            overdraft_limit_fen: 0,
            balance_limit_fen: BALANCE_LIMIT_FEN_DEFAULT,
        }
    }

    /// EF15: issuer ID, e-purse, version, serial, validity.
    pub fn issuer_data(&self) -> IssuerData {
        IssuerData {
            issuer_id: self.issuer.issuer_id,
            app_type: APP_TYPE_EP,
            app_version: APP_VERSION,
            serial: self.serial.0,
            valid_from: self.valid_from,
            valid_to: self.valid_to,
        }
    }

    /// Checks the request: real days in order, limits that fit the card's fields.
    pub fn validate(&self) -> Result<(), IssueError> {
        let day =
            |bcd: [u8; 4], field| DateTime::from_bcd(bcd, [0, 0, 0]).map_err(|_| IssueError::InvalidDate { field });
        let (from, to) = (day(self.valid_from, "valid_from")?, day(self.valid_to, "valid_to")?);
        if to < from {
            return Err(IssueError::ExpiresBeforeValid);
        }
        if self.overdraft_limit_fen > OVERDRAFT_LIMIT_FEN_MAX {
            return Err(IssueError::OverdraftTooLarge { max_fen: OVERDRAFT_LIMIT_FEN_MAX });
        }
        let balance_max_fen = i32::MAX.unsigned_abs();
        if self.balance_limit_fen > balance_max_fen {
            return Err(IssueError::BalanceLimitTooLarge { max_fen: balance_max_fen });
        }
        Ok(())
    }

    /// The personalization: these files and limits, and the card keys diversified from `master`.
    pub fn spec(&self, master: MasterKeys) -> Result<CardSpec, IssueError> {
        self.validate()?;
        Ok(CardSpec {
            holder: holder_file(),
            management: management_file(self.issuer.city_code()),
            overdraft_limit_fen: self.overdraft_limit_fen,
            balance_limit_fen: self.balance_limit_fen,
            ..CardSpec::new(self.issuer_data(), master, self.issuer.key_version)
        })
    }

    /// The new card's image, for a software secure element or a card image file.
    pub fn image(&self, master: MasterKeys) -> Result<Vec<u8>, IssueError> {
        Ok(self.spec(master)?.personalize())
    }
}

/// EF16: the holder file of an anonymous card, all zeros.
pub fn holder_file() -> [u8; HOLDER_LEN] {
    [0; HOLDER_LEN]
}

/// EF17: country 156 (China), province `0000`, city code, T-Union interoperability flag `0001`,
/// adult card type `01`, the rest zeros.
pub fn management_file(city_code: u16) -> [u8; MANAGEMENT_LEN] {
    let mut ef17 = [0u8; MANAGEMENT_LEN];
    ef17[..4].copy_from_slice(&COUNTRY_CHINA);
    ef17[6..8].copy_from_slice(&city_code.to_be_bytes());
    ef17[8..10].copy_from_slice(&INTEROPERABLE);
    ef17[10] = CARD_TYPE_ADULT;
    ef17
}

/// The default last valid day of a card issued on `today`: 31 December, ten years on.
pub fn default_valid_to(today: &DateTime) -> Result<[u8; 4], IssueError> {
    DateTime::new(today.year.saturating_add(10), 12, 31, 0, 0, 0)
        .map(|d| d.date_bcd())
        .map_err(|_| IssueError::InvalidDate { field: "valid_to" })
}

#[cfg(test)]
mod tests {
    use yitong_card::testing::CountingRng;
    use yitong_card::{Card, MemStore};
    use yitong_crypto::Algorithm;
    use yitong_profile::apdu;

    use super::*;

    const BEIJING: IssuerIdentity = IssuerIdentity { issuer_id: [0, 0, 0x10, 0, 0, 0, 0, 1], key_version: 1 };

    fn keys() -> MasterKeys {
        MasterKeys::new(Algorithm::Des, [1; 16], [2; 16], [3; 16], [4; 16], [5; 16])
    }

    fn request() -> CardRequest {
        let serial = Serial::from_parts(0x1000, 123_456).unwrap();
        CardRequest::anonymous(BEIJING, serial, [0x20, 0x26, 0x11, 0x25], [0x20, 0x36, 0x12, 0x31])
    }

    /// Sends `command` and returns the data of a `9000` answer.
    fn send(card: &mut Card<MemStore, CountingRng>, command: &[u8]) -> Vec<u8> {
        let answer = card.process(command).unwrap();
        let (data, sw) = answer.split_at(answer.len() - 2);
        assert_eq!(sw, [0x90, 0x00], "{}", hex::encode_upper(command));
        data.to_vec()
    }

    #[test]
    fn personalized_card_answers_its_files_byte_for_byte() {
        let image = request().image(keys()).unwrap();
        let mut card = Card::power_on(MemStore::new(image), CountingRng(0)).unwrap();
        send(&mut card, &apdu::select_by_name(&apdu::AID_TUNION));
        // EF15 as docs/card-profile.md lays it out: issuer ID, 02 EP, 01, serial, validity, RFU.
        assert_eq!(
            hex::encode_upper(send(&mut card, &[0x00, 0xB0, 0x95, 0x00, 0x00])),
            "0000100000000001\
             02\
             01\
             10000000000000123456\
             20261125\
             20361231\
             0000"
        );
        assert_eq!(send(&mut card, &[0x00, 0xB0, 0x96, 0x00, 0x00]), [0; HOLDER_LEN]);
        let ef17 = send(&mut card, &[0x00, 0xB0, 0x97, 0x00, 0x00]);
        assert_eq!(hex::encode_upper(&ef17[..12]), "000001560000100000010100");
        assert!(ef17[12..].iter().all(|&b| b == 0));
    }

    #[test]
    fn requests_that_the_card_cannot_carry_are_refused() {
        let mut r = request();
        r.valid_to = [0x20, 0x26, 0x11, 0x24];
        assert_eq!(r.image(keys()), Err(IssueError::ExpiresBeforeValid));
        let mut r = request();
        r.valid_from = [0x20, 0x26, 0x02, 0x30];
        assert_eq!(r.validate(), Err(IssueError::InvalidDate { field: "valid_from" }));
        let mut r = request();
        r.overdraft_limit_fen = OVERDRAFT_LIMIT_FEN_MAX + 1;
        assert_eq!(r.validate(), Err(IssueError::OverdraftTooLarge { max_fen: 0xFF_FFFF }));
        r.overdraft_limit_fen = OVERDRAFT_LIMIT_FEN_MAX;
        assert_eq!(r.validate(), Ok(()));
        r.balance_limit_fen = 1 << 31;
        assert_eq!(r.validate(), Err(IssueError::BalanceLimitTooLarge { max_fen: (1 << 31) - 1 }));
    }

    #[test]
    fn default_validity_ends_on_31_december_ten_years_on() {
        let today = DateTime::new(2026, 11, 25, 18, 0, 0).unwrap();
        assert_eq!(default_valid_to(&today), Ok([0x20, 0x36, 0x12, 0x31]));
    }
}
