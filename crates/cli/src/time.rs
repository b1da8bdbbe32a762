//! Local time for gates: Asia/Shanghai (UTC+8, no daylight saving) for every city of the profile.

use anyhow::Context;
use chrono::{Datelike, FixedOffset, Timelike, Utc};
use yitong_profile::DateTime;

/// Now in Asia/Shanghai.
pub fn now_shanghai() -> DateTime {
    let offset = FixedOffset::east_opt(8 * 3_600).expect("UTC+8 is a valid offset");
    let t = Utc::now().with_timezone(&offset);
    DateTime::new(t.year() as u16, t.month() as u8, t.day() as u8, t.hour() as u8, t.minute() as u8, t.second() as u8)
        .expect("the clock gives a valid date")
}

/// `--at` if given (local time), else now.
pub fn at_or_now(at: Option<&str>) -> anyhow::Result<DateTime> {
    match at {
        Some(text) => DateTime::parse(text)
            .ok()
            .with_context(|| format!("--at: `{text}` is not a local time like \"2026-11-25 08:30:00\"")),
        None => Ok(now_shanghai()),
    }
}

/// `--valid-from` / `--valid-to`: a calendar day as BCD `YYYYMMDD`.
pub fn parse_day(text: &str, field: &str) -> anyhow::Result<[u8; 4]> {
    DateTime::parse(&format!("{text} 00:00"))
        .map(|d| d.date_bcd())
        .ok()
        .with_context(|| format!("{field}: `{text}` is not a date like 2026-01-01"))
}
