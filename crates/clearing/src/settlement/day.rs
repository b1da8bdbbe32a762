//! The business day: 24 hours from a cut-over time (04:00 by default) to the same time the next
//! calendar day, named by the calendar date it starts on.
//!
//! Metro and buses run past midnight: a ride at 00:30 belongs with the evening before, so a day
//! closes when the network sleeps. Times are local (Asia/Shanghai, no daylight saving), so every
//! business day is exactly 86,400 seconds long.

use std::fmt;
use std::str::FromStr;

use serde::{Serialize, Serializer};
use yitong_profile::DateTime;

use super::SettleError;

const SECONDS_PER_DAY: i64 = 86_400;
const MINUTES_PER_DAY: u16 = 24 * 60;

/// When one business day ends and the next begins: a local time of day, to the minute.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CutOver {
    /// Minutes after midnight, below 1,440.
    minutes: u16,
}

impl CutOver {
    /// 04:00, after the last metro train and before the first.
    pub const DEFAULT: CutOver = CutOver { minutes: 4 * 60 };

    /// The cut-over at `hour:minute` (00:00 to 23:59).
    pub fn new(hour: u8, minute: u8) -> Result<Self, SettleError> {
        if hour >= 24 || minute >= 60 {
            return Err(SettleError::InvalidCutOver { text: format!("{hour:02}:{minute:02}") });
        }
        Ok(CutOver { minutes: u16::from(hour) * 60 + u16::from(minute) })
    }

    /// The hour, 0 to 23.
    pub fn hour(&self) -> u8 {
        // Below 24 by construction.
        (self.minutes / 60) as u8
    }

    /// The minute, 0 to 59.
    pub fn minute(&self) -> u8 {
        (self.minutes % 60) as u8
    }

    fn seconds(&self) -> i64 {
        i64::from(self.minutes) * 60
    }
}

const _: () = assert!(CutOver::DEFAULT.minutes < MINUTES_PER_DAY);

impl Default for CutOver {
    fn default() -> Self {
        CutOver::DEFAULT
    }
}

impl fmt::Display for CutOver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}:{:02}", self.hour(), self.minute())
    }
}

impl FromStr for CutOver {
    type Err = SettleError;

    /// Parses `HH:MM`.
    fn from_str(text: &str) -> Result<Self, SettleError> {
        let invalid = || SettleError::InvalidCutOver { text: text.to_owned() };
        let (hour, minute) = text.split_once(':').ok_or_else(invalid)?;
        let two_digits = |s: &str| -> Result<u8, SettleError> {
            if s.len() == 2 && s.bytes().all(|b| b.is_ascii_digit()) {
                s.parse().map_err(|_| invalid())
            } else {
                Err(invalid())
            }
        };
        CutOver::new(two_digits(hour)?, two_digits(minute)?).map_err(|_| invalid())
    }
}

impl Serialize for CutOver {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// One business day: from its date at the cut-over (included) to the next date at the cut-over
/// (excluded). Written `YYYY-MM-DD`, the date it starts on.
///
/// ```
/// use yitong_clearing::settlement::{BusinessDay, CutOver};
/// use yitong_profile::DateTime;
/// let at = DateTime::parse("2026-11-26 03:59:59").unwrap();
/// let day = BusinessDay::of(&at, CutOver::DEFAULT).unwrap();
/// assert_eq!(day.to_string(), "2026-11-25");
/// assert_eq!(day.end().to_string(), "2026-11-26 04:00:00");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BusinessDay {
    /// The date at the cut-over: the first second of the day.
    start: DateTime,
    /// The next date at the cut-over: the first second after the day.
    end: DateTime,
    cut_over: CutOver,
}

impl BusinessDay {
    /// The business day that starts on `year-month-day` at `cut_over`.
    pub fn new(year: u16, month: u8, day: u8, cut_over: CutOver) -> Result<Self, SettleError> {
        let date = DateTime::new(year, month, day, cut_over.hour(), cut_over.minute(), 0)
            .map_err(|_| SettleError::InvalidDay { text: format!("{year:04}-{month:02}-{day:02}") })?;
        let end = date
            .plus_seconds(SECONDS_PER_DAY)
            .map_err(|_| SettleError::DayOutOfRange { near: format!("{year:04}-{month:02}-{day:02}") })?;
        Ok(BusinessDay { start: date, end, cut_over })
    }

    /// Parses `YYYY-MM-DD` (exactly that: four, two and two digits).
    pub fn parse(text: &str, cut_over: CutOver) -> Result<Self, SettleError> {
        let invalid = || SettleError::InvalidDay { text: text.to_owned() };
        let well_formed = text.len() == 10
            && text.bytes().enumerate().all(|(i, b)| if i == 4 || i == 7 { b == b'-' } else { b.is_ascii_digit() });
        if !well_formed {
            return Err(invalid());
        }
        let midnight = DateTime::parse(&format!("{text} 00:00")).map_err(|_| invalid())?;
        BusinessDay::new(midnight.year, midnight.month, midnight.day, cut_over).map_err(|e| match e {
            SettleError::InvalidDay { .. } => invalid(),
            other => other,
        })
    }

    /// The business day `at` belongs to: its own date from the cut-over on, the date before
    /// until then (with a 04:00 cut-over, 03:59:59 is the day before's, 04:00:00 the day's).
    pub fn of(at: &DateTime, cut_over: CutOver) -> Result<Self, SettleError> {
        let out_of_range = || SettleError::DayOutOfRange { near: at.to_string() };
        let shifted = at.plus_seconds(-cut_over.seconds()).map_err(|_| out_of_range())?;
        let day = BusinessDay::new(shifted.year, shifted.month, shifted.day, cut_over).map_err(|_| out_of_range())?;
        assert!(day.contains(at), "{at} must fall in its business day {day}");
        Ok(day)
    }

    /// Whether `at` falls in this day: from [`start`](Self::start) on, before [`end`](Self::end).
    pub fn contains(&self, at: &DateTime) -> bool {
        self.start <= *at && *at < self.end
    }

    /// The first second of the day (its date at the cut-over).
    pub fn start(&self) -> DateTime {
        self.start
    }

    /// The first second after the day (the next date at the cut-over), which belongs to the next
    /// day.
    pub fn end(&self) -> DateTime {
        self.end
    }

    /// The cut-over the day was cut at.
    pub fn cut_over(&self) -> CutOver {
        self.cut_over
    }

    /// The day after.
    pub fn next(&self) -> Result<Self, SettleError> {
        BusinessDay::new(self.end.year, self.end.month, self.end.day, self.cut_over)
    }

    /// The day before.
    pub fn previous(&self) -> Result<Self, SettleError> {
        let before = self
            .start
            .plus_seconds(-SECONDS_PER_DAY)
            .map_err(|_| SettleError::DayOutOfRange { near: self.to_string() })?;
        BusinessDay::new(before.year, before.month, before.day, self.cut_over)
    }
}

impl fmt::Display for BusinessDay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.start.year, self.start.month, self.start.day)
    }
}

impl Serialize for BusinessDay {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime {
        DateTime::parse(text).unwrap()
    }

    #[test]
    fn a_day_runs_from_cut_over_to_cut_over() {
        let day = BusinessDay::parse("2026-11-25", CutOver::DEFAULT).unwrap();
        assert_eq!(day.start(), at("2026-11-25 04:00:00"));
        assert_eq!(day.end(), at("2026-11-26 04:00:00"));
        assert!(day.contains(&at("2026-11-25 04:00:00")));
        assert!(day.contains(&at("2026-11-26 03:59:59")));
        assert!(!day.contains(&at("2026-11-25 03:59:59")));
        assert!(!day.contains(&at("2026-11-26 04:00:00")));
        assert_eq!(day.to_string(), "2026-11-25");
        assert_eq!(day.next().unwrap().to_string(), "2026-11-26");
        assert_eq!(day.previous().unwrap().to_string(), "2026-11-24");
    }

    #[test]
    fn the_cut_over_decides_the_day() {
        let day = |text: &str, cut_over: CutOver| BusinessDay::of(&at(text), cut_over).unwrap().to_string();
        assert_eq!(day("2026-11-26 03:59:59", CutOver::DEFAULT), "2026-11-25");
        assert_eq!(day("2026-11-26 04:00:00", CutOver::DEFAULT), "2026-11-26");
        assert_eq!(day("2026-03-01 00:30:00", CutOver::DEFAULT), "2026-02-28");
        assert_eq!(day("2028-03-01 00:30:00", CutOver::DEFAULT), "2028-02-29");
        assert_eq!(day("2027-01-01 02:00:00", CutOver::DEFAULT), "2026-12-31");
        let midnight = CutOver::new(0, 0).unwrap();
        assert_eq!(day("2026-11-26 00:00:00", midnight), "2026-11-26");
        assert_eq!(day("2026-11-25 23:59:59", midnight), "2026-11-25");
        let late = "02:30".parse::<CutOver>().unwrap();
        assert_eq!(day("2026-11-26 02:29:59", late), "2026-11-25");
        assert_eq!(day("2026-11-26 02:30:00", late), "2026-11-26");
    }

    #[test]
    fn bad_text_is_named() {
        for text in ["2026-11-5", "2026/11/25", "2026-13-01", "2026-02-29", "2026-11-25 ", "２０２６-11-25", ""] {
            assert_eq!(
                BusinessDay::parse(text, CutOver::DEFAULT),
                Err(SettleError::InvalidDay { text: text.to_owned() }),
                "{text}"
            );
        }
        for text in ["4:00", "24:00", "04:60", "0400", "04:00:00", "-1:00", ""] {
            assert_eq!(text.parse::<CutOver>(), Err(SettleError::InvalidCutOver { text: text.to_owned() }), "{text}");
        }
        assert_eq!(CutOver::DEFAULT.to_string(), "04:00");
        assert_eq!("23:59".parse::<CutOver>().unwrap().to_string(), "23:59");
    }

    #[test]
    fn the_ends_of_the_calendar_are_errors_not_panics() {
        assert!(matches!(BusinessDay::parse("9999-12-31", CutOver::DEFAULT), Err(SettleError::DayOutOfRange { .. })));
        assert!(matches!(
            BusinessDay::of(&at("0000-01-01 03:00:00"), CutOver::DEFAULT),
            Err(SettleError::DayOutOfRange { .. })
        ));
        let first = BusinessDay::parse("0000-01-01", CutOver::DEFAULT).unwrap();
        assert!(first.previous().is_err());
    }
}
