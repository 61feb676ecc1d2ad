//! How figures are written: the results file, numbers for people, and rounding for the file.

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Serialize;

/// Writes `value` as pretty JSON to `dir/name.json`, replacing an earlier run's file.
pub fn write_json<T: Serialize>(dir: &Path, name: &str, value: &T) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join(format!("{name}.json"));
    let mut text = serde_json::to_string_pretty(value)?;
    text.push('\n');
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// A latency for people: `812 µs`, `21.1 ms`, `5.02 s`.
pub fn latency(ms: f64) -> String {
    if ms < 1.0 {
        format!("{:.0} µs", ms * 1_000.0)
    } else if ms < 1_000.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{:.2} s", ms / 1_000.0)
    }
}

/// A rate with thousands separators: `46,996.7`.
pub fn rate(per_sec: f64) -> String {
    let tenths = (per_sec * 10.0).round();
    // Rates are far below 2^53; the cast only drops the fraction we just rounded away.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let tenths = tenths.max(0.0) as u64;
    format!("{}.{}", thousands(tenths / 10), tenths % 10)
}

/// `1234567` → `1,234,567`.
pub fn thousands(value: u64) -> String {
    let digits = value.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// Rounds for the results file, so it does not claim more precision than was measured.
pub fn round(value: f64, decimals: i32) -> f64 {
    let scale = 10_f64.powi(decimals);
    (value * scale).round() / scale
}

/// The median of `values` (the lower middle one for an even count); `None` when empty.
pub fn median(values: &[f64]) -> Option<f64> {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted.get(sorted.len().saturating_sub(1) / 2).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_print_for_people() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(rate(46_996.65), "46,996.7");
        assert_eq!(rate(98.9), "98.9");
        assert_eq!(latency(0.812), "812 µs");
        assert_eq!(latency(21.05), "21.1 ms");
        assert_eq!(latency(5_020.0), "5.02 s");
        assert!((round(0.123_456, 3) - 0.123).abs() < 1e-12);
    }

    #[test]
    fn the_median_is_the_middle_value() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(
            median(&[4.0, 1.0, 3.0, 2.0]),
            Some(2.0),
            "the lower middle of four"
        );
        assert_eq!(median(&[]), None);
    }
}
