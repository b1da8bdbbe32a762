//! The first answer of every tap: SELECT of the T-Union application, whose FCI carries EF15.

use yitong_profile::files::IssuerData;
use yitong_profile::{tlv, DateTime, StatusWord};

use crate::error::TapError;
use crate::outcome::Refusal;

/// The card as SELECT showed it, or why the terminal stops there.
pub(crate) fn read(data: &[u8], sw: StatusWord) -> Result<Result<IssuerData, Refusal>, TapError> {
    if sw == StatusWord::APPLICATION_LOCKED {
        return Ok(Err(Refusal::Locked));
    }
    if sw != StatusWord::OK {
        return Ok(Err(Refusal::NotATransitCard));
    }
    let ef15 = tlv::find(data, &[&[0x6F], &[0xA5], &[0x9F, 0x0C]]).ok_or(TapError::BadResponse("FCI without 9F0C"))?;
    IssuerData::decode(ef15).map(Ok).map_err(|_| TapError::BadResponse("EF15 in the FCI"))
}

/// Whether the card may be used at `now`: listed serials and dates.
pub(crate) fn check(
    issuer: &IssuerData,
    hotlist: &std::collections::BTreeSet<[u8; 10]>,
    now: &DateTime,
) -> Result<(), Refusal> {
    if hotlist.contains(&issuer.serial) {
        return Err(Refusal::Hotlisted { blocked: false });
    }
    let today = now.date_bcd();
    if today < issuer.valid_from {
        return Err(Refusal::NotYetValid);
    }
    if today > issuer.valid_to {
        return Err(Refusal::Expired);
    }
    Ok(())
}
