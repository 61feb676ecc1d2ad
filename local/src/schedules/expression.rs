//! EventBridge schedule expressions, `rate(...)` and `cron(...)`, and when they next fire.
//!
//! Supported, as EventBridge documents them:
//! - `rate(N minute|minutes|hour|hours|day|days)`: singular unit exactly when N is 1;
//! - `cron(minutes hours day-of-month month day-of-week year)` with `*`, `?`, numbers, names
//!   (`JAN`..`DEC`, `SUN`..`SAT`), lists `a,b`, ranges `a-b` and steps `*/n`, `a/n`, `a-b/n`.
//!   Day-of-week runs 1..7 from Sunday, and exactly one of day-of-month and day-of-week is `?`.
//!
//! Not supported (refused with an error rather than misread): `L`, `W` and `#`.

use std::{collections::BTreeSet, str::FromStr};

use chrono::{DateTime, Datelike, NaiveDate, TimeDelta, TimeZone, Utc};
use chrono_tz::Tz;

/// The first and last year EventBridge accepts in a cron expression.
const YEARS: (u32, u32) = (1970, 2199);
const MONTH_NAMES: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const WEEKDAY_NAMES: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

/// When a schedule fires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScheduleExpression {
    /// Every period, counted from when the runner started (EventBridge counts from when the
    /// rule was created).
    Rate(TimeDelta),
    Cron(Cron),
}

/// A parsed `cron(...)`; each field is the set of values it matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cron {
    minutes: BTreeSet<u32>,
    hours: BTreeSet<u32>,
    /// `None` for `?`.
    days_of_month: Option<BTreeSet<u32>>,
    months: BTreeSet<u32>,
    /// 1 = Sunday .. 7 = Saturday; `None` for `?`.
    days_of_week: Option<BTreeSet<u32>>,
    years: BTreeSet<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid schedule expression {expression:?}: {reason}")]
pub struct ExpressionError {
    pub expression: String,
    pub reason: String,
}

impl FromStr for ScheduleExpression {
    type Err = ExpressionError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let fail = |reason: String| ExpressionError {
            expression: text.to_owned(),
            reason,
        };
        let text = text.trim();
        if let Some(body) = text.strip_prefix("rate(").and_then(|t| t.strip_suffix(')')) {
            parse_rate(body).map(Self::Rate).map_err(fail)
        } else if let Some(body) = text.strip_prefix("cron(").and_then(|t| t.strip_suffix(')')) {
            parse_cron(body).map(Self::Cron).map_err(fail)
        } else {
            Err(fail("expected rate(...) or cron(...)".to_owned()))
        }
    }
}

impl ScheduleExpression {
    /// The first time strictly after `after` at which the schedule fires. A rate fires one
    /// period after `after`; a cron at the first matching minute in `timezone`. `None` when a
    /// cron's years are all in the past.
    pub fn next_after(&self, after: DateTime<Utc>, timezone: Tz) -> Option<DateTime<Utc>> {
        match self {
            Self::Rate(period) => after.checked_add_signed(*period),
            Self::Cron(cron) => cron.next_after(after, timezone),
        }
    }
}

fn parse_rate(body: &str) -> Result<TimeDelta, String> {
    let mut words = body.split_whitespace();
    let (Some(value), Some(unit), None) = (words.next(), words.next(), words.next()) else {
        return Err("expected rate(<value> <unit>)".to_owned());
    };
    let value: u32 = value
        .parse()
        .ok()
        .filter(|value| *value > 0)
        .ok_or_else(|| format!("{value:?} is not a positive whole number"))?;
    let (singular, per_unit) = match unit {
        "minute" | "minutes" => ("minute", TimeDelta::minutes(1)),
        "hour" | "hours" => ("hour", TimeDelta::hours(1)),
        "day" | "days" => ("day", TimeDelta::days(1)),
        other => return Err(format!("unknown unit {other:?}")),
    };
    // EventBridge insists on `1 minute` but `2 minutes`; so do we, so that what works here deploys.
    if (value == 1) != (unit == singular) {
        return Err(format!(
            "use `{singular}` for 1 and `{singular}s` otherwise"
        ));
    }
    Ok(per_unit * i32::try_from(value).map_err(|_| "rate too large".to_owned())?)
}

fn parse_cron(body: &str) -> Result<Cron, String> {
    let fields: Vec<&str> = body.split_whitespace().collect();
    let [minutes, hours, days_of_month, months, days_of_week, years] = fields[..] else {
        return Err(format!(
            "expected 6 fields (minutes hours day-of-month month day-of-week year), got {}",
            fields.len()
        ));
    };
    let cron = Cron {
        minutes: parse_field(minutes, (0, 59), &[]).map_err(|e| format!("minutes: {e}"))?,
        hours: parse_field(hours, (0, 23), &[]).map_err(|e| format!("hours: {e}"))?,
        days_of_month: parse_day_field(days_of_month, (1, 31), &[])
            .map_err(|e| format!("day-of-month: {e}"))?,
        months: parse_field(months, (1, 12), &MONTH_NAMES).map_err(|e| format!("month: {e}"))?,
        days_of_week: parse_day_field(days_of_week, (1, 7), &WEEKDAY_NAMES)
            .map_err(|e| format!("day-of-week: {e}"))?,
        years: parse_field(years, YEARS, &[]).map_err(|e| format!("year: {e}"))?,
    };
    if cron.days_of_month.is_some() == cron.days_of_week.is_some() {
        return Err("exactly one of day-of-month and day-of-week must be `?`".to_owned());
    }
    Ok(cron)
}

/// Day-of-month and day-of-week may be `?` ("no condition").
fn parse_day_field(
    text: &str,
    bounds: (u32, u32),
    names: &[&str],
) -> Result<Option<BTreeSet<u32>>, String> {
    if text == "?" {
        return Ok(None);
    }
    parse_field(text, bounds, names).map(Some)
}

/// `names[i]` stands for the value `bounds.0 + i`.
fn parse_field(text: &str, bounds: (u32, u32), names: &[&str]) -> Result<BTreeSet<u32>, String> {
    let mut values = BTreeSet::new();
    for part in text.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((range, step)) => {
                let step: u32 = step
                    .parse()
                    .ok()
                    .filter(|step| *step > 0)
                    .ok_or_else(|| format!("{part:?}: bad step"))?;
                (range, step)
            }
            None => (part, 1),
        };
        let (first, last) = match range.split_once('-') {
            _ if range == "*" => bounds,
            Some((first, last)) => (
                parse_value(first, bounds, names)?,
                parse_value(last, bounds, names)?,
            ),
            // `5/15` means "from 5, every 15"; a lone `5` is just 5.
            None if part.contains('/') => (parse_value(range, bounds, names)?, bounds.1),
            None => {
                let value = parse_value(range, bounds, names)?;
                (value, value)
            }
        };
        if first > last {
            return Err(format!("{part:?}: range runs backwards"));
        }
        values.extend((first..=last).step_by(step as usize));
    }
    Ok(values)
}

fn parse_value(text: &str, (min, max): (u32, u32), names: &[&str]) -> Result<u32, String> {
    let by_name = names
        .iter()
        .zip(min..)
        .find(|(name, _)| name.eq_ignore_ascii_case(text))
        .map(|(_, value)| value);
    let value = match by_name {
        Some(value) => value,
        None if text.contains(['L', 'W', '#']) => {
            return Err(format!(
                "{text:?}: L, W and # are not supported by the local runner"
            ));
        }
        None => text
            .parse()
            .map_err(|_| format!("{text:?} is not a number"))?,
    };
    if (min..=max).contains(&value) {
        Ok(value)
    } else {
        Err(format!("{value} is outside {min}..={max}"))
    }
}

impl Cron {
    fn matches_date(&self, date: NaiveDate) -> bool {
        let year_ok = u32::try_from(date.year()).is_ok_and(|year| self.years.contains(&year));
        let day_of_week = date.weekday().num_days_from_sunday() + 1;
        year_ok
            && self.months.contains(&date.month())
            && self
                .days_of_month
                .as_ref()
                .is_none_or(|days| days.contains(&date.day()))
            && self
                .days_of_week
                .as_ref()
                .is_none_or(|days| days.contains(&day_of_week))
    }

    /// Walks the local calendar day by day from `after`'s date; within a matching day, tries
    /// its hours and minutes in order. Local times that do not exist (a DST gap) are skipped;
    /// ambiguous ones (a DST overlap) fire at their first occurrence.
    fn next_after(&self, after: DateTime<Utc>, timezone: Tz) -> Option<DateTime<Utc>> {
        let last_year = i32::try_from(*self.years.last()?).ok()?;
        let mut date = after.with_timezone(&timezone).date_naive();
        while date.year() <= last_year {
            if self.matches_date(date) {
                for &hour in &self.hours {
                    for &minute in &self.minutes {
                        let local = date.and_hms_opt(hour, minute, 0)?;
                        let Some(instant) = timezone.from_local_datetime(&local).earliest() else {
                            continue;
                        };
                        let instant = instant.with_timezone(&Utc);
                        if instant > after {
                            return Some(instant);
                        }
                    }
                }
            }
            date = date.succ_opt()?;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    fn next(expression: &str, timezone: &str, after: &str) -> DateTime<Utc> {
        let expression: ScheduleExpression = expression.parse().unwrap();
        expression
            .next_after(at(after), timezone.parse().unwrap())
            .unwrap()
    }

    fn error(expression: &str) -> String {
        expression
            .parse::<ScheduleExpression>()
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn rates_parse_with_eventbridge_units() {
        assert_eq!(
            "rate(1 minute)".parse::<ScheduleExpression>().unwrap(),
            ScheduleExpression::Rate(TimeDelta::minutes(1))
        );
        assert_eq!(
            "rate(5 minutes)".parse::<ScheduleExpression>().unwrap(),
            ScheduleExpression::Rate(TimeDelta::minutes(5))
        );
        assert_eq!(
            "rate(2 hours)".parse::<ScheduleExpression>().unwrap(),
            ScheduleExpression::Rate(TimeDelta::hours(2))
        );
        assert_eq!(
            "rate(1 day)".parse::<ScheduleExpression>().unwrap(),
            ScheduleExpression::Rate(TimeDelta::days(1))
        );
    }

    #[test]
    fn rates_that_eventbridge_refuses_are_refused() {
        assert!(error("rate(1 minutes)").contains("use `minute`"));
        assert!(error("rate(2 minute)").contains("use `minute`"));
        assert!(error("rate(0 minutes)").contains("positive"));
        assert!(error("rate(5 seconds)").contains("unknown unit"));
        assert!(error("rate(5)").contains("expected rate"));
        assert!(error("every 5 minutes").contains("expected rate(...) or cron(...)"));
    }

    #[test]
    fn a_rate_fires_one_period_later() {
        assert_eq!(
            next("rate(1 minute)", "UTC", "2026-11-24T10:00:30Z"),
            at("2026-11-24T10:01:30Z")
        );
    }

    #[test]
    fn the_settlement_cron_fires_at_four_in_seoul() {
        // 04:00 in Seoul (UTC+9, no DST) is 19:00 UTC the day before.
        assert_eq!(
            next("cron(0 4 * * ? *)", "Asia/Seoul", "2026-11-24T18:59:00Z"),
            at("2026-11-24T19:00:00Z")
        );
        // Exactly at the fire time, the next one is a day later.
        assert_eq!(
            next("cron(0 4 * * ? *)", "Asia/Seoul", "2026-11-24T19:00:00Z"),
            at("2026-11-25T19:00:00Z")
        );
        // Late in the Seoul day: tomorrow's 04:00.
        assert_eq!(
            next("cron(0 4 * * ? *)", "Asia/Seoul", "2026-11-24T20:00:00Z"),
            at("2026-11-25T19:00:00Z")
        );
    }

    #[test]
    fn cron_fields_support_lists_ranges_steps_and_names() {
        assert_eq!(
            next("cron(*/15 * * * ? *)", "UTC", "2026-11-24T10:07:00Z"),
            at("2026-11-24T10:15:00Z")
        );
        assert_eq!(
            next("cron(5/20 * * * ? *)", "UTC", "2026-11-24T10:26:00Z"),
            at("2026-11-24T10:45:00Z")
        );
        assert_eq!(
            next("cron(0 9,18 * * ? *)", "UTC", "2026-11-24T10:00:00Z"),
            at("2026-11-24T18:00:00Z")
        );
        // 2026-11-24 is a Tuesday; MON-FRI at 08:00 and then Saturday's skipped.
        assert_eq!(
            next("cron(0 8 ? * MON-FRI *)", "UTC", "2026-11-27T09:00:00Z"),
            at("2026-11-30T08:00:00Z")
        );
        // Day-of-week 1 is Sunday.
        assert_eq!(
            next("cron(30 12 ? * 1 *)", "UTC", "2026-11-24T00:00:00Z"),
            at("2026-11-29T12:30:00Z")
        );
        assert_eq!(
            next(
                "cron(0 0 1 JAN,JUL ? 2027-2030)",
                "UTC",
                "2026-11-24T00:00:00Z"
            ),
            at("2027-01-01T00:00:00Z")
        );
        assert_eq!(
            next("cron(0 10-12/2 31 * ? *)", "UTC", "2026-11-24T00:00:00Z"),
            at("2026-12-31T10:00:00Z")
        );
    }

    #[test]
    fn cron_skips_local_times_that_do_not_exist() {
        // 2026-03-08 02:30 does not exist in New York (clocks jump from 02:00 to 03:00).
        assert_eq!(
            next(
                "cron(30 2 * * ? *)",
                "America/New_York",
                "2026-03-08T05:00:00Z"
            ),
            at("2026-03-09T06:30:00Z")
        );
    }

    #[test]
    fn a_cron_whose_years_are_over_never_fires() {
        let expression: ScheduleExpression = "cron(0 0 1 1 ? 2020)".parse().unwrap();
        assert_eq!(
            expression.next_after(at("2026-01-01T00:00:00Z"), chrono_tz::UTC),
            None
        );
    }

    #[test]
    fn malformed_crons_are_refused() {
        assert!(error("cron(0 4 * * * *)").contains("exactly one"));
        assert!(error("cron(0 4 ? * ? *)").contains("exactly one"));
        assert!(error("cron(0 4 * *)").contains("expected 6 fields"));
        assert!(error("cron(60 4 * * ? *)").contains("minutes"));
        assert!(error("cron(0 4 L * ? *)").contains("not supported"));
        assert!(error("cron(0 4 ? * 6#3 *)").contains("not supported"));
        assert!(error("cron(0 4 * * ? 1969)").contains("outside"));
        assert!(error("cron(0 12-10 * * ? *)").contains("backwards"));
        assert!(error("cron(*/0 4 * * ? *)").contains("bad step"));
    }
}
