use crate::{Reader, Truncated};

/// A local date and time as the card stores it: BCD `YYYYMMDD` and `hhmmss`.
///
/// The time zone is the city's (Asia/Shanghai, UTC+8 without daylight saving, for every city of
/// the profile); cards and gates never store an offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DateTime {
    /// Year, 2000 to 2099 on cards in service (any 4 BCD digits parse).
    pub year: u16,
    /// Month, 1 to 12.
    pub month: u8,
    /// Day of the month.
    pub day: u8,
    /// Hour, 0 to 23.
    pub hour: u8,
    /// Minute, 0 to 59.
    pub minute: u8,
    /// Second, 0 to 59.
    pub second: u8,
}

/// Bytes or text that do not make a valid date and time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InvalidDateTime;

impl core::fmt::Display for InvalidDateTime {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("not a valid date and time")
    }
}

impl core::error::Error for InvalidDateTime {}

impl From<Truncated> for InvalidDateTime {
    fn from(_: Truncated) -> Self {
        InvalidDateTime
    }
}

impl DateTime {
    /// A checked date and time.
    pub fn new(year: u16, month: u8, day: u8, hour: u8, minute: u8, second: u8) -> Result<Self, InvalidDateTime> {
        let valid = year <= 9999
            && (1..=12).contains(&month)
            && day >= 1
            && day <= days_in_month(year, month)
            && hour < 24
            && minute < 60
            && second < 60;
        if valid {
            Ok(DateTime { year, month, day, hour, minute, second })
        } else {
            Err(InvalidDateTime)
        }
    }

    /// Parses 4 BCD date bytes and 3 BCD time bytes.
    pub fn from_bcd(date: [u8; 4], time: [u8; 3]) -> Result<Self, InvalidDateTime> {
        let year = u16::from(bcd(date[0])?) * 100 + u16::from(bcd(date[1])?);
        Self::new(year, bcd(date[2])?, bcd(date[3])?, bcd(time[0])?, bcd(time[1])?, bcd(time[2])?)
    }

    /// Parses the 7 bytes date ‖ time.
    pub fn from_bcd7(bytes: &[u8]) -> Result<Self, InvalidDateTime> {
        let mut r = Reader::new(bytes);
        Self::from_bcd(r.array()?, r.array()?)
    }

    /// BCD `YYYYMMDD`.
    pub fn date_bcd(&self) -> [u8; 4] {
        [to_bcd((self.year / 100) as u8), to_bcd((self.year % 100) as u8), to_bcd(self.month), to_bcd(self.day)]
    }

    /// BCD `hhmmss`.
    pub fn time_bcd(&self) -> [u8; 3] {
        [to_bcd(self.hour), to_bcd(self.minute), to_bcd(self.second)]
    }

    /// BCD date ‖ time, 7 bytes.
    pub fn bcd7(&self) -> [u8; 7] {
        let mut b = [0u8; 7];
        b[..4].copy_from_slice(&self.date_bcd());
        b[4..].copy_from_slice(&self.time_bcd());
        b
    }

    /// Parses `YYYY-MM-DD HH:MM:SS` (or `YYYY-MM-DDTHH:MM:SS`; seconds may be left out).
    pub fn parse(text: &str) -> Result<Self, InvalidDateTime> {
        let b = text.as_bytes();
        let num = |range: core::ops::Range<usize>| -> Result<u16, InvalidDateTime> {
            let digits = b.get(range).ok_or(InvalidDateTime)?;
            digits.iter().try_fold(0u16, |acc, d| match d {
                b'0'..=b'9' => Ok(acc * 10 + u16::from(d - b'0')),
                _ => Err(InvalidDateTime),
            })
        };
        let sep =
            |i: usize, allowed: &[u8]| b.get(i).filter(|c| allowed.contains(c)).map(|_| ()).ok_or(InvalidDateTime);
        sep(4, b"-")?;
        sep(7, b"-")?;
        sep(10, b" T")?;
        sep(13, b":")?;
        let second = match b.len() {
            16 => 0,
            19 => {
                sep(16, b":")?;
                num(17..19)?
            }
            _ => return Err(InvalidDateTime),
        };
        let narrow = |v: u16| u8::try_from(v).map_err(|_| InvalidDateTime);
        Self::new(
            num(0..4)?,
            narrow(num(5..7)?)?,
            narrow(num(8..10)?)?,
            narrow(num(11..13)?)?,
            narrow(num(14..16)?)?,
            narrow(second)?,
        )
    }

    /// Days since 1970-01-01 (proleptic Gregorian calendar).
    pub fn days_since_epoch(&self) -> i64 {
        // Howard Hinnant's days_from_civil.
        let y = i64::from(self.year) - i64::from(self.month <= 2);
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let m = i64::from(self.month);
        let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(self.day) - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        era * 146_097 + doe - 719_468
    }

    /// Seconds since 1970-01-01 00:00:00 of the same local time zone.
    pub fn seconds_since_epoch(&self) -> i64 {
        self.days_since_epoch() * 86_400
            + i64::from(self.hour) * 3_600
            + i64::from(self.minute) * 60
            + i64::from(self.second)
    }

    /// The date and time `seconds` after 1970-01-01 00:00:00 (local), for years 0 to 9999.
    pub fn from_seconds_since_epoch(seconds: i64) -> Result<Self, InvalidDateTime> {
        let days = seconds.div_euclid(86_400);
        let secs = seconds.rem_euclid(86_400);
        // Howard Hinnant's civil_from_days.
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = yoe + era * 400 + i64::from(month <= 2);
        let narrow = |v: i64| u8::try_from(v).map_err(|_| InvalidDateTime);
        Self::new(
            u16::try_from(year).map_err(|_| InvalidDateTime)?,
            narrow(month)?,
            narrow(day)?,
            narrow(secs / 3_600)?,
            narrow(secs / 60 % 60)?,
            narrow(secs % 60)?,
        )
    }

    /// This time plus `seconds` (which may be negative); out of years 0 to 9999 an error.
    pub fn plus_seconds(&self, seconds: i64) -> Result<Self, InvalidDateTime> {
        Self::from_seconds_since_epoch(self.seconds_since_epoch().checked_add(seconds).ok_or(InvalidDateTime)?)
    }

    /// Day of the week, 0 = Monday … 6 = Sunday.
    pub fn weekday(&self) -> u8 {
        // 1970-01-01 was a Thursday (3).
        (self.days_since_epoch() + 3).rem_euclid(7) as u8
    }
}

impl core::fmt::Display for DateTime {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }
}

fn days_in_month(year: u16, month: u8) -> u8 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        _ => 0,
    }
}

fn bcd(b: u8) -> Result<u8, InvalidDateTime> {
    let (hi, lo) = (b >> 4, b & 0x0F);
    if hi > 9 || lo > 9 {
        return Err(InvalidDateTime);
    }
    Ok(hi * 10 + lo)
}

fn to_bcd(v: u8) -> u8 {
    debug_assert!(v < 100);
    ((v / 10) << 4) | (v % 10)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn bcd_round_trip_matches_profile_example() {
        let t = DateTime::from_bcd([0x20, 0x11, 0x12, 0x21], [0x21, 0x48, 0x22]).unwrap();
        assert_eq!(t, DateTime::new(2011, 12, 21, 21, 48, 22).unwrap());
        assert_eq!(t.date_bcd(), [0x20, 0x11, 0x12, 0x21]);
        assert_eq!(t.time_bcd(), [0x21, 0x48, 0x22]);
    }

    #[test]
    fn rejects_invalid_dates_and_nibbles() {
        assert!(DateTime::from_bcd([0x20, 0x23, 0x02, 0x29], [0, 0, 0]).is_err());
        assert!(DateTime::from_bcd([0x20, 0x24, 0x02, 0x29], [0, 0, 0]).is_ok());
        assert!(DateTime::from_bcd([0x20, 0x24, 0x1A, 0x01], [0, 0, 0]).is_err());
        assert!(DateTime::from_bcd([0x20, 0x24, 0x01, 0x01], [0x24, 0, 0]).is_err());
        assert!(DateTime::parse("2026-13-01 08:00").is_err());
        assert!(DateTime::parse("2026-11-25 8:00").is_err());
    }

    #[test]
    fn parses_text() {
        let t = DateTime::parse("2026-11-25 08:01:02").unwrap();
        assert_eq!(t.to_string(), "2026-11-25 08:01:02");
        assert_eq!(DateTime::parse("2026-11-25T08:01").unwrap().second, 0);
    }

    #[test]
    fn epoch_arithmetic_and_weekdays() {
        assert_eq!(DateTime::new(1970, 1, 1, 0, 0, 0).unwrap().days_since_epoch(), 0);
        // 2000-03-01 is day 11017 of the Unix epoch.
        assert_eq!(DateTime::new(2000, 3, 1, 0, 0, 0).unwrap().days_since_epoch(), 11_017);
        let t = DateTime::new(2028, 2, 28, 23, 59, 30).unwrap();
        assert_eq!(t.plus_seconds(31).unwrap(), DateTime::new(2028, 2, 29, 0, 0, 1).unwrap());
        assert_eq!(t.plus_seconds(86_400 + 30).unwrap(), DateTime::new(2028, 3, 1, 0, 0, 0).unwrap());
        // Beyond the years a time can hold, however far (no overflow on the way).
        assert_eq!(t.plus_seconds(i64::MAX), Err(InvalidDateTime));
        assert_eq!(t.plus_seconds(i64::MIN), Err(InvalidDateTime));
        assert_eq!(t.plus_seconds(8_000 * 366 * 86_400), Err(InvalidDateTime));
        for s in [0, 951_782_400, 1_795_000_000, -86_400] {
            assert_eq!(DateTime::from_seconds_since_epoch(s).unwrap().seconds_since_epoch(), s);
        }
        // 2026-11-25 is a Wednesday.
        assert_eq!(DateTime::new(2026, 11, 25, 0, 0, 0).unwrap().weekday(), 2);
    }
}

/// `YYYY-MM-DD HH:MM:SS`, as [`Display`](core::fmt::Display) writes it and [`DateTime::parse`]
/// reads it.
#[cfg(feature = "serde")]
impl serde::Serialize for DateTime {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

#[cfg(feature = "serde")]
impl<'de> serde::Deserialize<'de> for DateTime {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Text;
        impl serde::de::Visitor<'_> for Text {
            type Value = DateTime;
            fn expecting(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                f.write_str("a local time YYYY-MM-DD HH:MM:SS")
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<DateTime, E> {
                DateTime::parse(text).map_err(|_| E::invalid_value(serde::de::Unexpected::Str(text), &self))
            }
        }
        deserializer.deserialize_str(Text)
    }
}

#[cfg(all(test, feature = "serde"))]
mod serde_tests {
    use super::DateTime;
    use alloc::string::ToString;

    #[test]
    fn a_date_time_is_its_text_in_json() {
        let at = DateTime::new(2026, 12, 6, 4, 0, 0).expect("valid");
        assert_eq!(serde_json::to_string(&at).expect("serializes"), "\"2026-12-06 04:00:00\"");
        assert_eq!(serde_json::from_str::<DateTime>("\"2026-12-06 04:00:00\"").expect("parses"), at);
        let error = serde_json::from_str::<DateTime>("\"2026-13-06 04:00:00\"").expect_err("no month 13");
        assert!(error.to_string().contains("YYYY-MM-DD HH:MM:SS"), "{error}");
    }
}
