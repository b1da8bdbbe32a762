//! Service dates: `calendar.txt` (weekdays between two dates) and `calendar_dates.txt` (dates
//! added or removed), as the GTFS reference defines them. Timeframes use them to say on which
//! dates a fare applies.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use yitong_fare::LoadError;
use yitong_profile::DateTime;

use super::table::Table;

/// A `YYYYMMDD` date as days since 1970-01-01.
fn day_number(text: &str) -> Option<i64> {
    if text.len() != 8 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let year: u16 = text.get(0..4)?.parse().ok()?;
    let month: u8 = text.get(4..6)?.parse().ok()?;
    let day: u8 = text.get(6..8)?.parse().ok()?;
    DateTime::new(year, month, day, 0, 0, 0).ok().map(|d| d.days_since_epoch())
}

#[derive(Clone, Debug)]
struct Weekly {
    /// Monday first, as `calendar.txt` orders its columns.
    days: [bool; 7],
    start_day: i64,
    end_day: i64,
}

/// The feed's services and the dates each runs.
#[derive(Clone, Debug, Default)]
pub struct Services {
    weekly: HashMap<String, Weekly>,
    added: HashMap<String, BTreeSet<i64>>,
    removed: HashMap<String, BTreeSet<i64>>,
}

impl Services {
    pub fn load(dir: &Path) -> Result<Services, LoadError> {
        let mut services = Services::default();
        if let Some(t) = Table::read(dir, "calendar.txt", false)? {
            for (line, row) in &t.rows {
                let id = t.req(*line, row, "service_id")?;
                let mut days = [false; 7];
                for (i, column) in
                    ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"].iter().enumerate()
                {
                    days[i] = match t.req(*line, row, column)? {
                        "0" => false,
                        "1" => true,
                        v => return Err(t.err(*line, column, format!("`{v}` is neither 0 nor 1"))),
                    };
                }
                let date = |column: &str| -> Result<i64, LoadError> {
                    let v = t.req(*line, row, column)?;
                    day_number(v).ok_or_else(|| t.err(*line, column, format!("`{v}` is not a YYYYMMDD date")))
                };
                let (start_day, end_day) = (date("start_date")?, date("end_date")?);
                if end_day < start_day {
                    return Err(t.err(*line, "end_date", "is before start_date"));
                }
                if services.weekly.insert(id.to_string(), Weekly { days, start_day, end_day }).is_some() {
                    return Err(t.err(*line, "service_id", format!("`{id}` appears twice")));
                }
            }
        }
        if let Some(t) = Table::read(dir, "calendar_dates.txt", false)? {
            for (line, row) in &t.rows {
                let id = t.req(*line, row, "service_id")?.to_string();
                let v = t.req(*line, row, "date")?;
                let day = day_number(v).ok_or_else(|| t.err(*line, "date", format!("`{v}` is not a YYYYMMDD date")))?;
                match t.req(*line, row, "exception_type")? {
                    "1" => services.added.entry(id).or_default().insert(day),
                    "2" => services.removed.entry(id).or_default().insert(day),
                    v => {
                        return Err(t.err(
                            *line,
                            "exception_type",
                            format!("`{v}` is neither 1 (added) nor 2 (removed)"),
                        ))
                    }
                };
            }
        }
        Ok(services)
    }

    /// Whether `calendar.txt` or `calendar_dates.txt` defines the service.
    pub fn contains(&self, service_id: &str) -> bool {
        self.weekly.contains_key(service_id)
            || self.added.contains_key(service_id)
            || self.removed.contains_key(service_id)
    }

    /// Whether the service runs on the date of `at`.
    pub fn runs_on(&self, service_id: &str, at: &DateTime) -> bool {
        let day = at.days_since_epoch();
        let listed = |m: &HashMap<String, BTreeSet<i64>>| m.get(service_id).is_some_and(|d| d.contains(&day));
        if listed(&self.removed) {
            return false;
        }
        if listed(&self.added) {
            return true;
        }
        // `weekday()` counts from Monday = 0, as calendar.txt's columns do.
        self.weekly
            .get(service_id)
            .is_some_and(|w| (w.start_day..=w.end_day).contains(&day) && w.days[usize::from(at.weekday() % 7)])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_parse_and_exceptions_override_the_week() {
        assert_eq!(day_number("19700101"), Some(0));
        assert_eq!(day_number("20250230"), None);
        assert_eq!(day_number("2025-01-01"), None);
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("calendar.txt"),
            "service_id,monday,tuesday,wednesday,thursday,friday,saturday,sunday,start_date,end_date\r\n\
             wk,1,1,1,1,1,0,0,20251110,20251130\r\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("calendar_dates.txt"),
            "service_id,date,exception_type\nwk,20251111,2\nwk,20251122,1\nextra,20251123,1\n",
        )
        .unwrap();
        let s = Services::load(dir.path()).unwrap();
        let at = |d: &str| DateTime::parse(&format!("{d} 12:00")).unwrap();
        // 2025-11-10 is a Monday; the 11th is removed; Saturday the 22nd is added.
        assert!(s.runs_on("wk", &at("2025-11-10")));
        assert!(!s.runs_on("wk", &at("2025-11-11")));
        assert!(!s.runs_on("wk", &at("2025-11-15")));
        assert!(s.runs_on("wk", &at("2025-11-22")));
        assert!(!s.runs_on("wk", &at("2025-12-01")));
        assert!(s.runs_on("extra", &at("2025-11-23")) && s.contains("extra") && !s.contains("none"));
    }
}
