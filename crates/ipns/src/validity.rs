//! The EOL time stamp of a record (`Validity` when `ValidityType` is 0), as Kubo writes and reads
//! it.
//!
//! Kubo (boxo `util.FormatRFC3339` / `util.ParseRFC3339`) uses Go's `time.RFC3339Nano` layout in
//! UTC: `2026-12-01T10:00:00.123456789Z`, the fraction's trailing zeros trimmed and the fraction
//! left out when it is zero (`2026-12-01T10:00:00Z`). The signature covers these exact bytes, so
//! the format matters: a record made here and one made by Kubo from the same time are identical.
//!
//! Parsing accepts what Go's `time.Parse(time.RFC3339Nano, s)` accepts: a four-digit year, an
//! upper-case `T`, seconds 00 to 59 (no leap second), an optional fraction of any length (digits
//! past the ninth ignored), and `Z` or a `+hh:mm`/`-hh:mm` offset. The calendar arithmetic is the
//! `time` crate's.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::IpnsError;

const NANOS_PER_SEC: i128 = 1_000_000_000;

/// Formats `t` as Kubo writes a record's validity: Go's `time.RFC3339Nano` in UTC.
///
/// # Errors
///
/// [`IpnsError::InvalidValidity`] when `t` is outside years 0000 to 9999 (RFC 3339's range; Go
/// would write a string no RFC 3339 parser reads).
pub fn format_validity(t: SystemTime) -> Result<String, IpnsError> {
    let nanos = match t.duration_since(UNIX_EPOCH) {
        Ok(after) => after.as_nanos() as i128,
        Err(before) => -(before.duration().as_nanos() as i128),
    };
    let utc = OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .map_err(|e| IpnsError::InvalidValidity(format!("EOL out of range: {e}")))?;
    utc.format(&Rfc3339)
        .map_err(|e| IpnsError::InvalidValidity(format!("EOL cannot be written as RFC 3339: {e}")))
}

/// Parses a record's validity string (RFC 3339, as Go's `time.RFC3339Nano` layout reads it).
///
/// # Errors
///
/// [`IpnsError::InvalidValidity`] when the bytes are not such a time stamp.
pub fn parse_validity(bytes: &[u8]) -> Result<SystemTime, IpnsError> {
    let invalid = |why: &str| {
        IpnsError::InvalidValidity(format!("{:?}: {why}", String::from_utf8_lossy(bytes)))
    };
    // Go's stricter points, which the `time` crate's RFC 3339 parser lets through: any date/time
    // separator, a lower-case `z`, and leap seconds.
    if bytes.len() < "2006-01-02T15:04:05Z".len() {
        return Err(invalid("too short"));
    }
    if bytes[10] != b'T' {
        return Err(invalid("the date and time must be separated by 'T'"));
    }
    if bytes.get(17..19) == Some(b"60") {
        return Err(invalid("second out of range"));
    }
    if bytes.last() == Some(&b'z') {
        return Err(invalid("the UTC designator must be 'Z'"));
    }
    let text = std::str::from_utf8(bytes).map_err(|_| invalid("not ASCII"))?;
    let parsed = OffsetDateTime::parse(text, &Rfc3339).map_err(|e| invalid(&e.to_string()))?;
    let nanos = parsed.unix_timestamp_nanos();
    let since = Duration::new(
        nanos.unsigned_abs().div_euclid(NANOS_PER_SEC as u128) as u64,
        nanos.unsigned_abs().rem_euclid(NANOS_PER_SEC as u128) as u32,
    );
    let t = if nanos >= 0 {
        UNIX_EPOCH.checked_add(since)
    } else {
        UNIX_EPOCH.checked_sub(since)
    };
    t.ok_or_else(|| invalid("not representable as a system time"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64, nanos: u32) -> SystemTime {
        UNIX_EPOCH + Duration::new(secs, nanos)
    }

    #[test]
    fn formats_as_go_rfc3339nano_in_utc() {
        // 2026-12-01T10:00:00Z = 1796119200.
        assert_eq!(
            format_validity(at(1_796_119_200, 123_456_789)).unwrap(),
            "2026-12-01T10:00:00.123456789Z"
        );
        assert_eq!(
            format_validity(at(1_796_119_200, 120_000_000)).unwrap(),
            "2026-12-01T10:00:00.12Z"
        );
        assert_eq!(
            format_validity(at(1_796_119_200, 0)).unwrap(),
            "2026-12-01T10:00:00Z"
        );
        assert_eq!(
            format_validity(at(0, 1)).unwrap(),
            "1970-01-01T00:00:00.000000001Z"
        );
        assert_eq!(
            format_validity(UNIX_EPOCH - Duration::from_secs(1)).unwrap(),
            "1969-12-31T23:59:59Z"
        );
    }

    #[test]
    fn parses_what_go_parses() {
        assert_eq!(
            parse_validity(b"2026-12-01T10:00:00.123456789Z").unwrap(),
            at(1_796_119_200, 123_456_789)
        );
        assert_eq!(
            parse_validity(b"2026-12-01T10:00:00Z").unwrap(),
            at(1_796_119_200, 0)
        );
        assert_eq!(
            parse_validity(b"2026-12-01T12:00:00+02:00").unwrap(),
            at(1_796_119_200, 0)
        );
        // Go truncates digits past the ninth.
        assert_eq!(
            parse_validity(b"2026-12-01T10:00:00.1234567891Z").unwrap(),
            at(1_796_119_200, 123_456_789)
        );
        // The spec's test vectors' EOL.
        let eol = parse_validity(b"2123-08-14T12:17:03.694052Z").unwrap();
        assert_eq!(format_validity(eol).unwrap(), "2123-08-14T12:17:03.694052Z");
    }

    #[test]
    fn refuses_what_go_refuses() {
        for bad in [
            &b""[..],
            b"2026-12-01 10:00:00Z",
            b"2026-12-01t10:00:00Z",
            b"2026-12-01T10:00:00z",
            b"2026-12-31T23:59:60Z",
            b"2026-12-01T10:00:00",
            b"2026-12-01T10:00:00.Z",
            b"2026-02-30T10:00:00Z",
            b"26-12-01T10:00:00Z",
            b"2026-12-01T10:00:00Zjunk",
            b"2026-12-01T10:00:00+24:00",
        ] {
            assert!(
                parse_validity(bad).is_err(),
                "{:?} parsed",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn refuses_to_write_years_rfc3339_cannot_hold() {
        let year_10000 = UNIX_EPOCH + Duration::from_secs(253_402_300_800);
        assert!(matches!(
            format_validity(year_10000),
            Err(IpnsError::InvalidValidity(_))
        ));
    }
}
