//! INTERNALDATE (`17-Jul-1996 02:44:25 -0700`): parsing to a UTC timestamp and formatting;
//! SEARCH dates (`1-Feb-2024`).

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// An INTERNALDATE as the server sent it, and parsed when it is well-formed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InternalDate {
    /// The text between the quotes, exactly as sent.
    pub raw: String,
    /// Seconds since the Unix epoch (UTC), when `raw` parses.
    pub unix: Option<i64>,
    /// The zone offset in minutes east of UTC, when `raw` parses.
    pub offset_minutes: Option<i16>,
}

impl InternalDate {
    /// Keeps `raw` and parses it when possible.
    pub fn new(raw: &str) -> Self {
        let parsed = parse(raw);
        Self {
            raw: raw.to_string(),
            unix: parsed.map(|p| p.0),
            offset_minutes: parsed.map(|p| p.1),
        }
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The proleptic Gregorian (year, month, day) of a count of days since 1970-01-01.
pub fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Seconds since the epoch as RFC 3339 in UTC (`2027-01-31T23:59:59Z`).
pub fn rfc3339_utc(unix: i64) -> String {
    let (y, m, d) = civil_from_days(unix.div_euclid(86_400));
    let s = unix.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        s / 3600,
        s % 3600 / 60,
        s % 60
    )
}

fn num(s: &str, min: i64, max: i64) -> Option<i64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) || s.len() > 4 {
        return None;
    }
    let v: i64 = s.parse().ok()?;
    (min..=max).contains(&v).then_some(v)
}

/// Two ASCII digits within `min..=max`.
fn digits([a, b]: [u8; 2], min: i64, max: i64) -> Option<i64> {
    if !a.is_ascii_digit() || !b.is_ascii_digit() {
        return None;
    }
    let v = i64::from(a - b'0') * 10 + i64::from(b - b'0');
    (min..=max).contains(&v).then_some(v)
}

/// Days in a month of the proleptic Gregorian calendar.
fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Parses `dd-Mon-yyyy hh:mm:ss +zzzz` (day may be space-padded or one digit) into
/// (Unix seconds UTC, offset minutes).
pub fn parse(raw: &str) -> Option<(i64, i16)> {
    let mut parts = raw.trim_start().split(' ').filter(|p| !p.is_empty());
    let (date, time, zone) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let mut d = date.split('-');
    let (day, mon, year) = (d.next()?, d.next()?, d.next()?);
    let month = MONTHS.iter().position(|m| m.eq_ignore_ascii_case(mon))? as i64 + 1;
    let (day, year) = (num(day, 1, 31)?, num(year, 1, 9999)?);
    let mut t = time.split(':');
    let (h, mi, s) = (
        num(t.next()?, 0, 23)?,
        num(t.next()?, 0, 59)?,
        num(t.next()?, 0, 60)?,
    );
    // Byte-wise from here: a zone may hold any bytes (`+1é2`), and `str` slicing inside
    // a character would panic.
    let (sign, hhmm) = match zone.as_bytes() {
        [b'+', rest @ ..] => (1, rest),
        [b'-', rest @ ..] => (-1, rest),
        _ => return None,
    };
    let [h1, h2, m1, m2] = *hhmm else {
        return None;
    };
    let offset = sign * (digits([h1, h2], 0, 23)? * 60 + digits([m1, m2], 0, 59)?);
    if day > days_in_month(year, month) {
        return None;
    }
    let local = days_from_civil(year, month, day) * 86_400 + h * 3600 + mi * 60 + s;
    // A leap second ending 9999 falls in year 10000, which `format` cannot write back.
    if civil_from_days(local.div_euclid(86_400)).0 > 9999 {
        return None;
    }
    Some((local - offset * 60, offset as i16))
}

/// Formats a timestamp in a zone as an INTERNALDATE for APPEND (without quotes).
pub fn format(unix: i64, offset_minutes: i16) -> String {
    let local = unix + i64::from(offset_minutes) * 60;
    let (y, m, d) = civil_from_days(local.div_euclid(86_400));
    let secs = local.rem_euclid(86_400);
    let sign = if offset_minutes < 0 { '-' } else { '+' };
    let off = i64::from(offset_minutes).abs();
    format!(
        "{d:02}-{}-{y:04} {:02}:{:02}:{:02} {sign}{:02}{:02}",
        MONTHS[(m - 1) as usize],
        secs / 3600,
        secs % 3600 / 60,
        secs % 60,
        off / 60,
        off % 60
    )
}

/// Formats a day (days since 1970-01-01) as an RFC 3501 `date` for `SEARCH SINCE`/`BEFORE`:
/// `d-Mon-yyyy`, e.g. `1-Feb-2024`.
pub fn search_date(days: i64) -> String {
    let (y, m, d) = civil_from_days(days);
    format!("{d}-{}-{y:04}", MONTHS[(m - 1) as usize])
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rfc3339_in_utc() {
        assert_eq!(rfc3339_utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339_utc(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339_utc(1_801_439_999), "2027-01-31T23:59:59Z");
        assert_eq!(rfc3339_utc(-1), "1969-12-31T23:59:59Z");
    }

    /// Found by the `internaldate` fuzz target (seed `fuzz/seeds/internaldate/year_10000`):
    /// what parses must format back to the same instant and zone.
    #[test]
    fn a_leap_second_ending_9999_is_refused() {
        assert_eq!(parse("31-Dec-9999 23:59:60 +2359"), None);
        let last = parse("31-Dec-9999 23:59:59 -2359").unwrap();
        assert_eq!(parse(&format(last.0, last.1)), Some(last));
    }

    #[test]
    fn parses_rfc_example() {
        // 1996-07-17 09:44:25 UTC
        assert_eq!(
            parse("17-Jul-1996 02:44:25 -0700"),
            Some((837_596_665, -420))
        );
        assert_eq!(
            parse(" 7-Jul-1996 02:44:25 +0000"),
            parse("07-Jul-1996 02:44:25 +0000")
        );
        assert_eq!(parse("01-Jan-1970 00:00:00 +0000"), Some((0, 0)));
        let d = InternalDate::new("17-Jul-1996 02:44:25 -0700");
        assert_eq!(d.offset_minutes, Some(-420));
        assert_eq!(d.raw, "17-Jul-1996 02:44:25 -0700");
    }

    #[test]
    fn rejects_garbage() {
        for bad in [
            "",
            "17-Jux-1996 02:44:25 -0700",
            "32-Jul-1996 02:44:25 -0700",
            "17-Jul-1996 24:44:25 -0700",
            "17-Jul-1996 02:44:25 0700",
            "17-Jul-1996 02:44:25 -07000",
            "17-Jul-1996 02:44:25",
            "17-Jul-1996 02:44:25 -0700 x",
            // Non-ASCII zones and fields, out-of-range fields, days a month does not have.
            "17-Jul-1996 02:44:25 +1é2",
            "17-Jul-1996 02:44:25 +éé",
            "17-Jul-1996 02:44:25 é0700",
            "1é-Jul-1996 02:44:25 +0000",
            "17-Jül-1996 02:44:25 +0000",
            "17-Jul-1996 0é:44:25 +0000",
            "17-Jul-1996 02:44:25 +2400",
            "17-Jul-1996 02:44:25 +0060",
            "17-Jul-1996 02:60:25 +0000",
            "17-Jul-1996 02:44:61 +0000",
            "00-Jul-1996 02:44:25 +0000",
            "31-Apr-2024 02:44:25 +0000",
            "30-Feb-2024 02:44:25 +0000",
            "29-Feb-2023 02:44:25 +0000",
            "17-Jul-0000 02:44:25 +0000",
            "17-Jul-99999 02:44:25 +0000",
            "99999999999999999999-Jul-1996 02:44:25 +0000",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
            assert_eq!(InternalDate::new(bad).unix, None);
        }
    }

    #[test]
    fn search_dates() {
        assert_eq!(search_date(0), "1-Jan-1970");
        assert_eq!(search_date(-1), "31-Dec-1969");
        // 2024-02-29 (a leap day) and the day after.
        let leap = 1_709_164_800 / 86_400;
        assert_eq!(search_date(leap), "29-Feb-2024");
        assert_eq!(search_date(leap + 1), "1-Mar-2024");
    }

    #[test]
    fn accepts_leap_days_and_edges() {
        assert!(parse("29-Feb-2024 00:00:00 +0000").is_some());
        assert!(parse("29-Feb-2000 00:00:00 +0000").is_some());
        assert_eq!(parse("29-Feb-1900 00:00:00 +0000"), None);
        assert!(parse("31-Dec-9999 23:59:59 -2359").is_some());
        assert!(parse("01-Jan-0001 00:00:00 +2359").is_some());
    }

    proptest! {
        #[test]
        fn parse_is_total_over_any_text(raw in "\\PC{0,40}") {
            let _ = parse(&raw);
            let _ = InternalDate::new(&raw);
        }

        #[test]
        fn parse_is_total_near_valid_dates(
            day in "[0-9 é]{1,3}",
            mon in "(Jan|Feb|Apr|éé|Jül)",
            year in "[0-9é]{1,5}",
            time in "[0-9:é]{0,9}",
            zone in "[+\\-][0-9éü]{0,5}",
        ) {
            let raw = format!("{day}-{mon}-{year} {time} {zone}");
            if let Some((unix, off)) = parse(&raw) {
                prop_assert_eq!(parse(&format(unix, off)), Some((unix, off)));
            }
        }

        #[test]
        fn format_parse_roundtrip(unix in -2_000_000_000i64..8_000_000_000, off in -720i16..840) {
            let text = format(unix, off);
            prop_assert_eq!(parse(&text), Some((unix, off)));
        }
    }
}
