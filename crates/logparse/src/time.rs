//! Timestamps as logs write them, converted to UTC without a calendar library: the formats are few
//! and fixed, and a hand-written parser of `10/Oct/2000:13:55:36 -0700` costs a few nanoseconds.

use std::fmt;

/// A point in time: seconds since the Unix epoch (UTC) and a sub-second part.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp {
    /// Seconds since 1970-01-01T00:00:00Z.
    pub secs: i64,
    /// Nanoseconds within the second, `0..1_000_000_000`.
    pub nanos: u32,
}

impl Timestamp {
    /// A timestamp from whole seconds.
    pub const fn from_secs(secs: i64) -> Self {
        Self { secs, nanos: 0 }
    }

    /// Nanoseconds since the epoch (saturating outside ±292 years).
    pub fn unix_nanos(self) -> i64 {
        self.secs
            .saturating_mul(1_000_000_000)
            .saturating_add(i64::from(self.nanos))
    }

    /// The time now, from the system clock.
    pub fn now() -> Self {
        let d = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Self {
            secs: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
            nanos: d.subsec_nanos(),
        }
    }

    /// The UTC calendar fields of this timestamp.
    pub fn civil(self) -> Civil {
        let days = self.secs.div_euclid(86_400);
        let sod = self.secs.rem_euclid(86_400);
        let (year, month, day) = civil_from_days(days);
        Civil {
            year,
            month,
            day,
            hour: (sod / 3600) as u8,
            minute: (sod / 60 % 60) as u8,
            second: (sod % 60) as u8,
        }
    }

    /// Appends RFC 3339 in UTC: `2000-10-10T20:55:36Z`, with as many fraction digits as needed
    /// (3, 6 or 9) when the sub-second part is not zero.
    pub fn write_rfc3339(self, out: &mut Vec<u8>) {
        write_rfc3339_seconds(self.secs, out);
        write_fraction(self.nanos, out);
        out.push(b'Z');
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut v = Vec::with_capacity(32);
        self.write_rfc3339(&mut v);
        f.write_str(std::str::from_utf8(&v).unwrap_or("invalid"))
    }
}

/// Broken-down UTC time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Civil {
    /// Proleptic Gregorian year.
    pub year: i64,
    /// 1..=12.
    pub month: u8,
    /// 1..=31.
    pub day: u8,
    /// 0..=23.
    pub hour: u8,
    /// 0..=59.
    pub minute: u8,
    /// 0..=60 (a leap second is accepted on input and folded into the next minute).
    pub second: u8,
}

/// Appends `YYYY-MM-DDTHH:MM:SS` (no fraction, no zone) for `secs` since the epoch.
pub fn write_rfc3339_seconds(secs: i64, out: &mut Vec<u8>) {
    let c = Timestamp::from_secs(secs).civil();
    if (0..=9999).contains(&c.year) {
        let y = c.year as u32;
        out.extend_from_slice(&[
            b'0' + (y / 1000) as u8,
            b'0' + (y / 100 % 10) as u8,
            b'0' + (y / 10 % 10) as u8,
            b'0' + (y % 10) as u8,
        ]);
    } else {
        out.extend_from_slice(c.year.to_string().as_bytes());
    }
    let two = |out: &mut Vec<u8>, sep: u8, v: u8| {
        out.extend_from_slice(&[sep, b'0' + v / 10, b'0' + v % 10]);
    };
    two(out, b'-', c.month);
    two(out, b'-', c.day);
    two(out, b'T', c.hour);
    two(out, b':', c.minute);
    two(out, b':', c.second);
}

/// Appends `.mmm`, `.uuuuuu` or `.nnnnnnnnn` (the shortest exact one), nothing for zero.
pub fn write_fraction(nanos: u32, out: &mut Vec<u8>) {
    if nanos == 0 {
        return;
    }
    let (v, digits) = if nanos.is_multiple_of(1_000_000) {
        (nanos / 1_000_000, 3)
    } else if nanos.is_multiple_of(1000) {
        (nanos / 1000, 6)
    } else {
        (nanos, 9)
    };
    out.push(b'.');
    let start = out.len();
    out.resize(start + digits, b'0');
    let mut v = v;
    for i in (0..digits).rev() {
        out[start + i] = b'0' + (v % 10) as u8;
        v /= 10;
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
pub fn days_from_civil(year: i64, month: u8, day: u8) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day count since 1970-01-01 (Howard Hinnant's `civil_from_days`).
pub fn civil_from_days(days: i64) -> (i64, u8, u8) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u8;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Seconds since the epoch of a UTC calendar time, validating ranges.
pub fn unix_from_civil(c: Civil) -> Option<i64> {
    if !(1..=12).contains(&c.month)
        || c.day == 0
        || c.day > days_in_month(c.year, c.month)
        || c.hour > 23
        || c.minute > 59
        || c.second > 60
    {
        return None;
    }
    Some(
        days_from_civil(c.year, c.month, c.day) * 86_400
            + i64::from(c.hour) * 3600
            + i64::from(c.minute) * 60
            + i64::from(c.second),
    )
}

fn days_in_month(year: i64, month: u8) -> u8 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ => {
            if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 {
                29
            } else {
                28
            }
        }
    }
}

/// What went wrong reading a timestamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeError;

impl fmt::Display for TimeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("invalid timestamp")
    }
}

impl std::error::Error for TimeError {}

/// `Jan`..`Dec` (case-sensitive, as every server writes it) to 1..=12.
pub fn month_from_abbr(b: &[u8]) -> Option<u8> {
    if b.len() != 3 {
        return None;
    }
    Some(match [b[0], b[1], b[2]] {
        [b'J', b'a', b'n'] => 1,
        [b'F', b'e', b'b'] => 2,
        [b'M', b'a', b'r'] => 3,
        [b'A', b'p', b'r'] => 4,
        [b'M', b'a', b'y'] => 5,
        [b'J', b'u', b'n'] => 6,
        [b'J', b'u', b'l'] => 7,
        [b'A', b'u', b'g'] => 8,
        [b'S', b'e', b'p'] => 9,
        [b'O', b'c', b't'] => 10,
        [b'N', b'o', b'v'] => 11,
        [b'D', b'e', b'c'] => 12,
        _ => return None,
    })
}

/// Reads exactly `n` ASCII digits at `b[at..]`.
pub(crate) fn digits(b: &[u8], at: usize, n: usize) -> Option<u32> {
    let s = b.get(at..at + n)?;
    let mut v = 0u32;
    for &c in s {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + u32::from(c - b'0');
    }
    Some(v)
}

/// Reads a space-padded or zero-padded two-character day (`" 5"`, `"05"`).
fn padded_day(b: &[u8], at: usize) -> Option<u8> {
    let s = b.get(at..at + 2)?;
    let tens = match s[0] {
        b' ' => 0,
        c if c.is_ascii_digit() => c - b'0',
        _ => return None,
    };
    if !s[1].is_ascii_digit() {
        return None;
    }
    Some(tens * 10 + (s[1] - b'0'))
}

/// `+hhmm`, `-hhmm`, `+hh:mm`, `Z`: the offset in seconds east of UTC and the bytes read.
fn zone(b: &[u8]) -> Option<(i64, usize)> {
    match b.first()? {
        b'Z' | b'z' => Some((0, 1)),
        c @ (b'+' | b'-') => {
            let sign = if *c == b'-' { -1 } else { 1 };
            let h = digits(b, 1, 2)?;
            let (m, len) = if b.get(3) == Some(&b':') {
                (digits(b, 4, 2)?, 6)
            } else {
                (digits(b, 3, 2)?, 5)
            };
            if h > 23 || m > 59 {
                return None;
            }
            Some((sign * i64::from(h * 3600 + m * 60), len))
        }
        _ => None,
    }
}

fn hms(b: &[u8], at: usize) -> Option<(u8, u8, u8)> {
    if b.get(at + 2) != Some(&b':') || b.get(at + 5) != Some(&b':') {
        return None;
    }
    Some((
        digits(b, at, 2)? as u8,
        digits(b, at + 3, 2)? as u8,
        digits(b, at + 6, 2)? as u8,
    ))
}

/// A fraction `.ddd...` at `b[at..]`: nanoseconds and bytes read (0 if there is none).
fn fraction(b: &[u8], at: usize) -> (u32, usize) {
    if b.get(at) != Some(&b'.') && b.get(at) != Some(&b',') {
        return (0, 0);
    }
    let mut nanos = 0u32;
    let mut n = 0;
    let mut i = at + 1;
    while let Some(&c) = b.get(i) {
        if !c.is_ascii_digit() {
            break;
        }
        if n < 9 {
            nanos = nanos * 10 + u32::from(c - b'0');
            n += 1;
        }
        i += 1;
    }
    if i == at + 1 {
        return (0, 0);
    }
    for _ in n..9 {
        nanos *= 10;
    }
    (nanos, i - at)
}

/// nginx `$time_local` / Apache `%t` without brackets: `10/Oct/2000:13:55:36 -0700`.
pub fn parse_time_local(s: &str) -> Result<Timestamp, TimeError> {
    let b = s.as_bytes();
    if b.len() != 26 || b[2] != b'/' || b[6] != b'/' || b[11] != b':' || b[20] != b' ' {
        return Err(TimeError);
    }
    let day = digits(b, 0, 2).ok_or(TimeError)? as u8;
    let month = month_from_abbr(&b[3..6]).ok_or(TimeError)?;
    let year = i64::from(digits(b, 7, 4).ok_or(TimeError)?);
    let (hour, minute, second) = hms(b, 12).ok_or(TimeError)?;
    let (off, len) = zone(&b[21..]).ok_or(TimeError)?;
    if len != 5 {
        return Err(TimeError);
    }
    let local = unix_from_civil(Civil {
        year,
        month,
        day,
        hour,
        minute,
        second,
    })
    .ok_or(TimeError)?;
    Ok(Timestamp::from_secs(local - off))
}

/// RFC 3339 / ISO 8601 with a zone (nginx `$time_iso8601`, RFC 5424, CRI, rsyslog's file format):
/// `2000-10-10T13:55:36-07:00`, `2016-10-06T00:17:09.669794202Z`. Without a zone, the time is
/// taken as `default_offset` seconds east of UTC. Returns the timestamp and the bytes read.
pub fn parse_rfc3339_prefix(
    b: &[u8],
    default_offset: i64,
) -> Result<(Timestamp, usize), TimeError> {
    if b.len() < 19
        || b[4] != b'-'
        || b[7] != b'-'
        || !(b[10] == b'T' || b[10] == b't' || b[10] == b' ')
    {
        return Err(TimeError);
    }
    let year = i64::from(digits(b, 0, 4).ok_or(TimeError)?);
    let month = digits(b, 5, 2).ok_or(TimeError)? as u8;
    let day = digits(b, 8, 2).ok_or(TimeError)? as u8;
    let (hour, minute, second) = hms(b, 11).ok_or(TimeError)?;
    let (nanos, flen) = fraction(b, 19);
    let at = 19 + flen;
    let (off, zlen) = match zone(&b[at..]) {
        Some(z) => z,
        None => (default_offset, 0),
    };
    let local = unix_from_civil(Civil {
        year,
        month,
        day,
        hour,
        minute,
        second,
    })
    .ok_or(TimeError)?;
    Ok((
        Timestamp {
            secs: local - off,
            nanos,
        },
        at + zlen,
    ))
}

/// The whole of `s` as RFC 3339 (see [`parse_rfc3339_prefix`]).
pub fn parse_rfc3339(s: &str, default_offset: i64) -> Result<Timestamp, TimeError> {
    match parse_rfc3339_prefix(s.as_bytes(), default_offset)? {
        (t, n) if n == s.len() => Ok(t),
        _ => Err(TimeError),
    }
}

/// nginx `$msec`: seconds with a fraction, `1700000000.123`.
pub fn parse_epoch_seconds(s: &str) -> Result<Timestamp, TimeError> {
    let b = s.as_bytes();
    let int_end = b
        .iter()
        .position(|c| !c.is_ascii_digit())
        .unwrap_or(b.len());
    if int_end == 0 || int_end > 12 {
        return Err(TimeError);
    }
    let secs: i64 = s[..int_end].parse().map_err(|_| TimeError)?;
    let (nanos, flen) = fraction(b, int_end);
    if int_end + flen != b.len() {
        return Err(TimeError);
    }
    Ok(Timestamp { secs, nanos })
}

/// nginx error log: `2000/10/10 13:55:36` taken as `offset` seconds east of UTC (nginx writes
/// local time without a zone).
pub fn parse_slash_datetime(b: &[u8], offset: i64) -> Result<Timestamp, TimeError> {
    if b.len() < 19 || b[4] != b'/' || b[7] != b'/' || b[10] != b' ' {
        return Err(TimeError);
    }
    let year = i64::from(digits(b, 0, 4).ok_or(TimeError)?);
    let month = digits(b, 5, 2).ok_or(TimeError)? as u8;
    let day = digits(b, 8, 2).ok_or(TimeError)? as u8;
    let (hour, minute, second) = hms(b, 11).ok_or(TimeError)?;
    let local = unix_from_civil(Civil {
        year,
        month,
        day,
        hour,
        minute,
        second,
    })
    .ok_or(TimeError)?;
    Ok(Timestamp::from_secs(local - offset))
}

/// RFC 3164 `Mmm dd hh:mm:ss` (15 bytes, no year, no zone). The year is inferred from `reference`
/// (normally now): the year that puts the timestamp closest to, and not more than a month after,
/// the reference, so December lines read in January land in the previous year.
pub fn parse_rfc3164(b: &[u8], reference: Timestamp, offset: i64) -> Result<Timestamp, TimeError> {
    if b.len() < 15 || b[3] != b' ' || b[6] != b' ' {
        return Err(TimeError);
    }
    let month = month_from_abbr(&b[0..3]).ok_or(TimeError)?;
    let day = padded_day(b, 4).ok_or(TimeError)?;
    let (hour, minute, second) = hms(b, 7).ok_or(TimeError)?;
    infer_year(month, day, (hour, minute, second), reference, offset)
        .map(Timestamp::from_secs)
        .ok_or(TimeError)
}

/// Seconds since the epoch of a date without a year (RFC 3164, klog): the year that puts it at
/// most a month after `reference`; Feb 29 takes the last leap year.
pub fn infer_year(
    month: u8,
    day: u8,
    (hour, minute, second): (u8, u8, u8),
    reference: Timestamp,
    offset: i64,
) -> Option<i64> {
    let ref_year = reference.civil().year;
    let at = |year| {
        unix_from_civil(Civil {
            year,
            month,
            day,
            hour,
            minute,
            second,
        })
        .map(|t| t - offset)
    };
    match at(ref_year) {
        Some(t) if t <= reference.secs + 31 * 86_400 => Some(t),
        _ => (1..=8).find_map(|back| at(ref_year - back)),
    }
}

/// An RFC 3164 timestamp as syslog daemons and devices write it: `Mmm dd hh:mm:ss` with the day
/// space-padded (`Jun  8`) or not (`Jun 8`), optionally a year before the time
/// (`Jun  8 2021 11:54:08`, Cisco and rsyslog's `date-rfc3164-year`) and a fraction
/// (`11:54:08.123`). Without a year it is inferred as in [`parse_rfc3164`]. Returns the
/// timestamp and the bytes read.
pub fn parse_rfc3164_prefix(
    b: &[u8],
    reference: Timestamp,
    offset: i64,
) -> Result<(Timestamp, usize), TimeError> {
    let (p, len) = rfc3164_shape(b).ok_or(TimeError)?;
    let secs = match p.year {
        Some(year) => unix_from_civil(Civil {
            year: i64::from(year),
            month: p.month,
            day: p.day,
            hour: p.hms.0,
            minute: p.hms.1,
            second: p.hms.2,
        })
        .map(|t| t - offset),
        None => infer_year(p.month, p.day, p.hms, reference, offset),
    }
    .ok_or(TimeError)?;
    Ok((
        Timestamp {
            secs,
            nanos: p.nanos,
        },
        len,
    ))
}

/// The parts of an RFC 3164 timestamp.
#[derive(Debug, Clone, Copy)]
pub struct Rfc3164Parts {
    month: u8,
    day: u8,
    year: Option<u32>,
    hms: (u8, u8, u8),
    nanos: u32,
}

/// Reads the shape of [`parse_rfc3164_prefix`]'s timestamps without converting them: the parts
/// and the bytes read. Cheap enough for format detection.
pub fn rfc3164_shape(b: &[u8]) -> Option<(Rfc3164Parts, usize)> {
    let month = month_from_abbr(b.get(0..3)?)?;
    let mut i = 3;
    if b.get(i) != Some(&b' ') {
        return None;
    }
    i += 1;
    if b.get(i) == Some(&b' ') {
        i += 1;
    }
    let d0 = *b.get(i)?;
    if !d0.is_ascii_digit() {
        return None;
    }
    let mut day = d0 - b'0';
    i += 1;
    if let Some(&d1) = b.get(i)
        && d1.is_ascii_digit()
    {
        day = day * 10 + (d1 - b'0');
        i += 1;
    }
    if b.get(i) != Some(&b' ') || day == 0 || day > 31 {
        return None;
    }
    i += 1;
    let mut year = None;
    if b.get(i + 4) == Some(&b' ') {
        year = Some(digits(b, i, 4)?);
        i += 5;
    }
    let hms = hms(b, i)?;
    i += 8;
    let (nanos, flen) = fraction(b, i);
    i += flen;
    // The timestamp ends at a space or the end of the line, not inside a word.
    if b.get(i).is_some_and(|c| *c != b' ') {
        return None;
    }
    Some((
        Rfc3164Parts {
            month,
            day,
            year,
            hms,
            nanos,
        },
        i,
    ))
}

/// Apache error log `Wed Oct 11 14:32:52.123456 2000` (the fraction is optional), taken as
/// `offset` seconds east of UTC. Returns the timestamp and the bytes read.
pub fn parse_ctime_prefix(b: &[u8], offset: i64) -> Result<(Timestamp, usize), TimeError> {
    // Weekday, space, then an RFC 3164-like `Mmm dd hh:mm:ss`.
    if b.len() < 24 || b[3] != b' ' || b[7] != b' ' || b[10] != b' ' {
        return Err(TimeError);
    }
    let month = month_from_abbr(&b[4..7]).ok_or(TimeError)?;
    let day = padded_day(b, 8).ok_or(TimeError)?;
    let (hour, minute, second) = hms(b, 11).ok_or(TimeError)?;
    let (nanos, flen) = fraction(b, 19);
    let at = 19 + flen;
    if b.get(at) != Some(&b' ') {
        return Err(TimeError);
    }
    let year = i64::from(digits(b, at + 1, 4).ok_or(TimeError)?);
    let local = unix_from_civil(Civil {
        year,
        month,
        day,
        hour,
        minute,
        second,
    })
    .ok_or(TimeError)?;
    Ok((
        Timestamp {
            secs: local - offset,
            nanos,
        },
        at + 5,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_local_to_utc() {
        let t = parse_time_local("10/Oct/2000:13:55:36 -0700").unwrap();
        assert_eq!(t.to_string(), "2000-10-10T20:55:36Z");
        assert_eq!(t.secs, 971_211_336);
        assert!(parse_time_local("10/Oct/2000:13:55:36 -07000").is_err());
        assert!(parse_time_local("31/Feb/2000:13:55:36 +0000").is_err());
    }

    #[test]
    fn rfc3339_forms() {
        let t = parse_rfc3339("2016-10-06T00:17:09.669794202Z", 0).unwrap();
        assert_eq!(t.to_string(), "2016-10-06T00:17:09.669794202Z");
        let t = parse_rfc3339("2000-10-10T13:55:36-07:00", 0).unwrap();
        assert_eq!(t.to_string(), "2000-10-10T20:55:36Z");
        let t = parse_rfc3339("2026-11-22T01:47:31.123456+01:00", 0).unwrap();
        assert_eq!(t.to_string(), "2026-11-22T00:47:31.123456Z");
    }

    #[test]
    fn rfc3164_year_inference() {
        let jan = parse_rfc3339("2027-01-02T00:00:00Z", 0).unwrap();
        let t = parse_rfc3164(b"Dec 31 23:59:59", jan, 0).unwrap();
        assert_eq!(t.to_string(), "2026-12-31T23:59:59Z");
        let t = parse_rfc3164(b"Jan  1 00:00:01", jan, 0).unwrap();
        assert_eq!(t.to_string(), "2027-01-01T00:00:01Z");
        let t = parse_rfc3164(b"Feb 29 00:00:00", jan, 0).unwrap();
        assert_eq!(t.to_string(), "2024-02-29T00:00:00Z");
    }

    #[test]
    fn rfc3164_forms_in_the_wild() {
        let jan = parse_rfc3339("2027-01-02T00:00:00Z", 0).unwrap();
        for (text, want, len) in [
            ("Jun  8 11:54:08 h", "2026-06-08T11:54:08Z", 15),
            ("Jun 8 11:54:08 h", "2026-06-08T11:54:08Z", 14),
            ("Jun 18 11:54:08", "2026-06-18T11:54:08Z", 15),
            ("Jun  8 2021 11:54:08 h", "2021-06-08T11:54:08Z", 20),
            ("Jun 8 11:54:08.123 h", "2026-06-08T11:54:08.123Z", 18),
        ] {
            let (t, n) = parse_rfc3164_prefix(text.as_bytes(), jan, 0).unwrap();
            assert_eq!((t.to_string().as_str(), n), (want, len), "{text}");
        }
        for bad in [
            "Jun 0 11:54:08",
            "Jun 32 11:54:08",
            "Jun  8 11:54",
            "Jux 8 11:54:08",
            "Jun 8 11:54:08x",
        ] {
            assert!(
                parse_rfc3164_prefix(bad.as_bytes(), jan, 0).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn ctime_and_slash() {
        let (t, n) = parse_ctime_prefix(b"Wed Oct 11 14:32:52.123456 2000] x", 0).unwrap();
        assert_eq!(
            (t.to_string().as_str(), n),
            ("2000-10-11T14:32:52.123456Z", 31)
        );
        let t = parse_slash_datetime(b"2026/11/22 01:47:31", 3600).unwrap();
        assert_eq!(t.to_string(), "2026-11-22T00:47:31Z");
        let t = parse_epoch_seconds("1700000000.123").unwrap();
        assert_eq!(t.to_string(), "2023-11-14T22:13:20.123Z");
    }

    #[test]
    fn civil_roundtrip() {
        for d in [-800_000i64, -1, 0, 1, 11_016, 20_000, 2_000_000] {
            let (y, m, dd) = civil_from_days(d);
            assert_eq!(days_from_civil(y, m, dd), d);
        }
    }
}
