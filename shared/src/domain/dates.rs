//! The dates and instants a client may hand us: those MySQL can hold.
//!
//! chrono reads years far outside MySQL's (`-1-01-01`, `99999-01-01`, a cursor's microseconds of
//! year −5000), and the driver then refuses them, or MySQL does: a 5xx for what is bad input. So
//! every date or instant that comes from a request is checked here before it goes near a query,
//! and one that MySQL cannot hold is a 422 naming its field.
//!
//! - A date (`DATE`: `effective_from`, settlement dates) has a year from 1 to 9999.
//! - An instant (`DATETIME(6)`, stored in UTC: a cursor's release time) lies from
//!   `1000-01-01 00:00:00` to `9999-12-31 23:59:59.999999`, MySQL's documented range.

use std::ops::RangeInclusive;

use chrono::{DateTime, Datelike, NaiveDate, Utc};

use crate::domain::FieldError;

/// Years of a date a client may name.
pub const DATE_YEARS: RangeInclusive<i32> = 1..=9999;
/// Years of an instant a client may name, in UTC: whole years, so the range is exactly MySQL's.
pub const INSTANT_YEARS: RangeInclusive<i32> = 1000..=9999;

/// The earliest date a client may name.
pub fn min_date() -> NaiveDate {
    NaiveDate::from_ymd_opt(*DATE_YEARS.start(), 1, 1).unwrap_or(NaiveDate::MIN)
}

/// Whether MySQL can hold `date` as a `DATE`.
pub fn is_storable_date(date: NaiveDate) -> bool {
    DATE_YEARS.contains(&date.year())
}

/// Whether MySQL can hold `instant` as a `DATETIME` (in UTC, as we store them).
pub fn is_storable_instant(instant: DateTime<Utc>) -> bool {
    INSTANT_YEARS.contains(&instant.year())
}

/// `date`, if MySQL can hold it; otherwise the 422 of `field`.
pub fn check_date(field: &str, date: NaiveDate) -> Result<NaiveDate, FieldError> {
    if is_storable_date(date) {
        Ok(date)
    } else {
        Err(FieldError::new(
            field,
            "must be a date from 0001-01-01 to 9999-12-31",
        ))
    }
}

/// A `YYYY-MM-DD` parameter (a query string's), checked as [`check_date`] does.
pub fn parse_date(field: &str, text: &str) -> Result<NaiveDate, FieldError> {
    let date = text
        .parse()
        .map_err(|_| FieldError::new(field, "must be a date, YYYY-MM-DD"))?;
    check_date(field, date)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(year: i32, month: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(year, month, day).unwrap()
    }

    #[test]
    fn dates_of_years_1_to_9999_are_storable() {
        assert!(is_storable_date(date(1, 1, 1)));
        assert!(is_storable_date(date(9999, 12, 31)));
        assert!(!is_storable_date(date(0, 12, 31)));
        assert!(!is_storable_date(date(-1, 1, 1)));
        assert!(!is_storable_date(date(10_000, 1, 1)));
        assert_eq!(min_date(), date(1, 1, 1));
    }

    #[test]
    fn instants_are_storable_within_mysqls_datetime_range() {
        let start = |year| date(year, 1, 1).and_hms_opt(0, 0, 0).unwrap().and_utc();
        let micro = chrono::Duration::microseconds(1);
        assert!(is_storable_instant(start(1000)));
        assert!(!is_storable_instant(start(1000) - micro));
        assert!(is_storable_instant(start(10_000) - micro));
        assert!(!is_storable_instant(start(10_000)));
        assert!(!is_storable_instant(start(-1)));
    }

    #[test]
    fn parameters_that_parse_but_cannot_be_stored_name_their_field() {
        assert_eq!(parse_date("from", "2026-03-15"), Ok(date(2026, 3, 15)));
        assert_eq!(parse_date("from", "0001-01-01"), Ok(date(1, 1, 1)));
        for text in [
            "-1-01-01",
            "-0001-01-01",
            "0000-12-31",
            "+10000-01-01",
            "+99999-01-01",
        ] {
            // chrono reads them all...
            assert!(text.parse::<NaiveDate>().is_ok(), "{text}");
            // ...and they are refused.
            let error = parse_date("from", text).unwrap_err();
            assert_eq!(error.field, "from", "{text}");
        }
        // A five-digit year without its sign does not even parse.
        assert_eq!(parse_date("from", "99999-01-01").unwrap_err().field, "from");
        assert_eq!(parse_date("to", "2026-02-30").unwrap_err().field, "to");
    }
}
