//! Durations as Kubernetes writes them (`metav1.Duration`, i.e. Go's `time.ParseDuration`
//! syntax: `90s`, `1m30s`, `1.5h`, `300ms`).
//!
//! This module owns parsing only. Which durations are acceptable for a field (whole seconds,
//! at least 3 s, ...) is decided by the field's validation in `config`.

use std::time::Duration;

use thiserror::Error;

/// Why a string is not a duration.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{input:?} is not a duration ({reason}); write it like 90s, 1m30s or 500ms")]
pub struct DurationError {
    /// The text as written.
    pub input: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

const NANOS_PER_UNIT: &[(&str, u128)] = &[
    ("ns", 1),
    ("us", 1_000),
    ("µs", 1_000),
    ("μs", 1_000),
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60_000_000_000),
    ("h", 3_600_000_000_000),
];

/// Parses a Go-syntax duration. Negative durations are refused: no ferrolb setting has a use for
/// them, and accepting them would only move the error somewhere less clear.
pub fn parse_duration(input: &str) -> Result<Duration, DurationError> {
    let fail = |reason| DurationError {
        input: input.to_owned(),
        reason,
    };
    let mut rest = input;
    if let Some(unsigned) = rest.strip_prefix('+') {
        rest = unsigned;
    } else if rest.starts_with('-') {
        return Err(fail("durations cannot be negative"));
    }
    // Go accepts a bare "0" (and only that number) without a unit.
    if rest == "0" {
        return Ok(Duration::ZERO);
    }
    if rest.is_empty() {
        return Err(fail("it is empty"));
    }
    let mut total_nanos: u128 = 0;
    while !rest.is_empty() {
        let whole_len = rest.bytes().take_while(u8::is_ascii_digit).count();
        let (whole, after_whole) = rest.split_at(whole_len);
        let (fraction, after_number) = match after_whole.strip_prefix('.') {
            Some(after_dot) => {
                let fraction_len = after_dot.bytes().take_while(u8::is_ascii_digit).count();
                after_dot.split_at(fraction_len)
            }
            None => ("", after_whole),
        };
        if whole.is_empty() && fraction.is_empty() {
            return Err(fail("expected a number"));
        }
        let unit_len = after_number
            .char_indices()
            .find(|(_, c)| c.is_ascii_digit() || *c == '.')
            .map_or(after_number.len(), |(index, _)| index);
        let (unit, after_unit) = after_number.split_at(unit_len);
        if unit.is_empty() {
            return Err(fail("a unit is missing"));
        }
        let Some(&(_, unit_nanos)) = NANOS_PER_UNIT.iter().find(|(name, _)| *name == unit) else {
            return Err(fail("unknown unit; use h, m, s, ms, us or ns"));
        };
        let whole_value: u128 = if whole.is_empty() {
            0
        } else {
            whole.parse().map_err(|_| fail("the number is too large"))?
        };
        let mut nanos = whole_value
            .checked_mul(unit_nanos)
            .ok_or_else(|| fail("the number is too large"))?;
        // Digits beyond nanosecond precision cannot change the result; Go drops them as well.
        let mut scale = unit_nanos;
        for digit in fraction.bytes() {
            scale /= 10;
            if scale == 0 {
                break;
            }
            nanos += u128::from(digit - b'0') * scale;
        }
        total_nanos = total_nanos
            .checked_add(nanos)
            .ok_or_else(|| fail("the number is too large"))?;
        rest = after_unit;
    }
    let seconds =
        u64::try_from(total_nanos / 1_000_000_000).map_err(|_| fail("the number is too large"))?;
    // The remainder of a division by 10^9 always fits in u32.
    let subsec = (total_nanos % 1_000_000_000) as u32;
    Ok(Duration::new(seconds, subsec))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_minutes_and_hours_combine() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("2h45m10s"), Ok(Duration::from_secs(9910)));
    }

    #[test]
    fn fractions_and_small_units_are_exact() {
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("300ms"), Ok(Duration::from_millis(300)));
        assert_eq!(parse_duration(".5m"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("10us"), Ok(Duration::from_micros(10)));
        assert_eq!(parse_duration("10µs"), Ok(Duration::from_micros(10)));
        assert_eq!(parse_duration("7ns"), Ok(Duration::from_nanos(7)));
    }

    #[test]
    fn bare_zero_needs_no_unit() {
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
    }

    #[test]
    fn number_without_unit_is_rejected() {
        assert_eq!(
            parse_duration("90").unwrap_err().to_string(),
            "\"90\" is not a duration (a unit is missing); write it like 90s, 1m30s or 500ms"
        );
    }

    #[test]
    fn unknown_unit_is_rejected() {
        assert_eq!(
            parse_duration("3d").unwrap_err().reason,
            "unknown unit; use h, m, s, ms, us or ns"
        );
        assert_eq!(
            parse_duration("90 s").unwrap_err().reason,
            "unknown unit; use h, m, s, ms, us or ns"
        );
    }

    #[test]
    fn negative_and_empty_durations_are_rejected() {
        assert_eq!(
            parse_duration("-5s").unwrap_err().reason,
            "durations cannot be negative"
        );
        assert_eq!(parse_duration("").unwrap_err().reason, "it is empty");
        assert_eq!(parse_duration("s").unwrap_err().reason, "expected a number");
    }

    #[test]
    fn absurdly_large_durations_are_an_error_not_a_panic() {
        assert_eq!(
            parse_duration("99999999999999999999999999999999999999999h")
                .unwrap_err()
                .reason,
            "the number is too large"
        );
    }

    proptest::proptest! {
        #[test]
        fn any_input_is_an_answer_not_a_panic(text in "\\PC{0,20}") {
            let _ = parse_duration(&text);
        }

        #[test]
        fn whole_seconds_round_trip(seconds in 0u64..10_000_000) {
            proptest::prop_assert_eq!(
                parse_duration(&format!("{seconds}s")),
                Ok(Duration::from_secs(seconds))
            );
        }
    }
}
