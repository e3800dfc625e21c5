//! `--expires` values: a duration from now (`30d`, `12h`, `90m`, `1d12h`) or an RFC 3339 time.

use std::time::Duration;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// What an invalid value is told, so the message names the accepted forms.
const EXPECTED: &str = "expected a duration such as 30d, 12h, 90m, 45s or 1d12h (units s, m, h, \
                        d, w), or an RFC 3339 time such as 2030-01-31T00:00:00Z";

/// The longest duration accepted: a hundred years.
const MAX_DURATION: Duration = Duration::from_secs(100 * 365 * 86_400);

/// Parses a duration: one or more `<number><unit>` groups, units `s`, `m`, `h`, `d` and `w`.
///
/// # Errors
/// A message naming the accepted forms.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let invalid = || format!("invalid duration {text:?}: {EXPECTED}");
    let mut total: u64 = 0;
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(invalid());
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(invalid());
        }
        let number: u64 = rest[..digits].parse().map_err(|_| invalid())?;
        let mut units = rest[digits..].chars();
        let unit_secs: u64 = match units.next() {
            Some('s') => 1,
            Some('m') => 60,
            Some('h') => 3_600,
            Some('d') => 86_400,
            Some('w') => 7 * 86_400,
            _ => return Err(invalid()),
        };
        total = number
            .checked_mul(unit_secs)
            .and_then(|secs| total.checked_add(secs))
            .ok_or_else(invalid)?;
        rest = units.as_str();
    }
    let duration = Duration::from_secs(total);
    if duration.is_zero() {
        return Err(format!(
            "invalid duration {text:?}: it must be longer than zero"
        ));
    }
    if duration > MAX_DURATION {
        return Err(format!("invalid duration {text:?}: at most 100 years"));
    }
    Ok(duration)
}

/// The expiry time `text` names, in milliseconds since the epoch: `now` plus a duration, or an
/// RFC 3339 time (which may be in the past; the node refuses those).
///
/// # Errors
/// A message naming the accepted forms.
pub fn expiry_at(text: &str, now: OffsetDateTime) -> Result<i64, String> {
    let at = match parse_duration(text) {
        Ok(duration) => now + duration,
        Err(duration_error) => match OffsetDateTime::parse(text.trim(), &Rfc3339) {
            Ok(at) => at,
            Err(_)
                if text.trim().starts_with(|c: char| c.is_ascii_digit()) && text.contains('-') =>
            {
                return Err(format!("invalid time {text:?}: {EXPECTED}"));
            }
            Err(_) => return Err(duration_error),
        },
    };
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000)
        .map_err(|_| format!("invalid time {text:?}: out of range"))
}

/// [`expiry_at`] from the current time, as clap's value parser for `--expires`.
///
/// # Errors
/// A message naming the accepted forms.
pub fn parse_expiry(text: &str) -> Result<i64, String> {
    expiry_at(text, OffsetDateTime::now_utc())
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    #[test]
    fn durations_in_every_unit_and_combined() {
        let secs = |text| parse_duration(text).map(|d| d.as_secs());
        assert_eq!(secs("45s"), Ok(45));
        assert_eq!(secs("90m"), Ok(5_400));
        assert_eq!(secs("12h"), Ok(43_200));
        assert_eq!(secs("30d"), Ok(2_592_000));
        assert_eq!(secs("2w"), Ok(1_209_600));
        assert_eq!(secs("1d12h"), Ok(129_600));
        assert_eq!(secs(" 1h30m "), Ok(5_400));
    }

    #[test]
    fn malformed_zero_and_huge_durations_are_refused_with_the_accepted_forms() {
        for bad in ["", "30", "d", "30x", "1.5h", "-1d", "1h 30m", "h1", "30D"] {
            let err = parse_duration(bad).expect_err(bad);
            assert!(err.contains("30d, 12h, 90m"), "{bad:?}: {err}");
        }
        assert!(
            parse_duration("0s")
                .unwrap_err()
                .contains("longer than zero")
        );
        assert!(parse_duration("101000d").unwrap_err().contains("100 years"));
        assert!(parse_duration("99999999999999999999d").is_err());
        assert!(parse_duration("9999999999999999w").is_err());
    }

    #[test]
    fn expiry_is_now_plus_a_duration_or_an_rfc3339_time() {
        let now = datetime!(2030-01-01 00:00:00 UTC);
        let now_ms = 1_893_456_000_000;
        assert_eq!(expiry_at("1s", now), Ok(now_ms + 1_000));
        assert_eq!(expiry_at("30d", now), Ok(now_ms + 30 * 86_400_000));
        assert_eq!(
            expiry_at("2030-01-02T00:00:00Z", now),
            Ok(now_ms + 86_400_000)
        );
        assert_eq!(
            expiry_at("2030-01-01T02:00:00+02:00", now),
            Ok(now_ms),
            "offsets are honoured"
        );
        assert_eq!(
            expiry_at("2020-01-01T00:00:00Z", now),
            Ok(1_577_836_800_000),
            "a past time parses; the node refuses it"
        );
        let err = expiry_at("2030-13-01T00:00:00Z", now).unwrap_err();
        assert!(err.contains("RFC 3339"), "{err}");
        let err = expiry_at("tomorrow", now).unwrap_err();
        assert!(err.contains("30d") && err.contains("RFC 3339"), "{err}");
    }
}
