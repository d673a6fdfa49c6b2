//! RFC 3339 times as Docker writes them (`2024-05-01T12:34:56.123456789Z`, in inspect
//! output and before each log line with `timestamps=true`) to [`UnixMillis`]. The node
//! carries no date library for this one format.

use qubix_protocol::time::UnixMillis;

/// Parses an RFC 3339 time. `None` for malformed text and for times before 1970, which
/// includes Docker's "never" (`0001-01-01T00:00:00Z`).
pub(crate) fn parse_rfc3339(text: &str) -> Option<UnixMillis> {
    let b = text.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let year = digits(b, 0, 4)?;
    let (month, day) = (digits(b, 5, 2)?, digits(b, 8, 2)?);
    let (hour, minute, second) = (digits(b, 11, 2)?, digits(b, 14, 2)?, digits(b, 17, 2)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return None;
    }
    if second > 60 {
        return None;
    }
    let (millis, rest) = fraction(&b[19..])?;
    let offset_secs = offset(rest)?;
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3_600 + minute * 60 + second - offset_secs;
    let ms = secs.checked_mul(1000)?.checked_add(millis)?;
    u64::try_from(ms).ok().map(UnixMillis)
}

/// `len` ASCII digits at `at`.
fn digits(b: &[u8], at: usize, len: usize) -> Option<i64> {
    let slice = b.get(at..at + len)?;
    slice.iter().try_fold(0i64, |acc, &c| {
        c.is_ascii_digit().then(|| acc * 10 + i64::from(c - b'0'))
    })
}

/// An optional `.digits` fraction: its milliseconds and what follows it.
fn fraction(b: &[u8]) -> Option<(i64, &[u8])> {
    let Some(rest) = b.strip_prefix(b".") else {
        return Some((0, b));
    };
    let len = rest.iter().take_while(|c| c.is_ascii_digit()).count();
    if len == 0 {
        return None;
    }
    let mut millis = 0;
    for i in 0..3 {
        let d = rest
            .get(i)
            .filter(|_| i < len)
            .map_or(0, |c| i64::from(c - b'0'));
        millis = millis * 10 + d;
    }
    Some((millis, &rest[len..]))
}

/// `Z` or `±HH:MM` as seconds east of UTC.
fn offset(b: &[u8]) -> Option<i64> {
    match b {
        [b'Z' | b'z'] => Some(0),
        [sign @ (b'+' | b'-'), _, _, b':', _, _] => {
            let secs = digits(b, 1, 2)? * 3_600 + digits(b, 4, 2)? * 60;
            Some(if *sign == b'-' { -secs } else { secs })
        }
        _ => None,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Splits a Docker log line `"<rfc3339> <text>"` into its time and text.
pub(crate) fn split_log_timestamp(line: &str) -> Option<(UnixMillis, &str)> {
    let (stamp, text) = line.split_once(' ').unwrap_or((line, ""));
    parse_rfc3339(stamp).map(|at| (at, text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_times_parse() {
        let cases = [
            ("1970-01-01T00:00:00Z", Some(0)),
            ("2024-05-01T12:34:56.123456789Z", Some(1_714_566_896_123)),
            ("2024-05-01T12:34:56.1Z", Some(1_714_566_896_100)),
            ("2024-05-01T14:34:56+02:00", Some(1_714_566_896_000)),
            ("2000-02-29T00:00:00Z", Some(951_782_400_000)),
            ("0001-01-01T00:00:00Z", None),
            ("2024-13-01T00:00:00Z", None),
            ("2024-05-01 nonsense", None),
            ("2024-05-01T12:34:56.Z", None),
            ("", None),
        ];
        for (text, want) in cases {
            assert_eq!(parse_rfc3339(text), want.map(UnixMillis), "{text}");
        }
    }

    #[test]
    fn log_lines_split() {
        let (at, text) = split_log_timestamp("2024-05-01T12:34:56.5Z hello world").unwrap();
        assert_eq!((at, text), (UnixMillis(1_714_566_896_500), "hello world"));
        assert_eq!(split_log_timestamp("no stamp here"), None);
    }
}
