//! Timestamps in a layout given as strftime directives (`%a %b %e %H:%M:%S %Z %Y`), for
//! application logs whose time fits none of the built-in formats. Parsed by hand, directive by
//! directive; a missing year is inferred as for RFC 3164, a missing zone is `offset`.

use crate::time::{Civil, TimeError, Timestamp, infer_year, month_from_abbr, unix_from_civil};

/// The directives understood: `%Y %y %m %d %e %H %I %M %S %f %p %z %Z %b %h %B %a %A`, `%T`
/// (`%H:%M:%S`), `%F` (`%Y-%m-%d`), `%s` (epoch seconds) and `%%`. Whitespace in the layout
/// matches any run of whitespace (none included), as `strptime` does.
const DIRECTIVES: &[u8] = b"YymdeHIMSfpzZbhBaATFs%";

/// Checks a layout: every `%` starts a known directive. The error names the first unknown one.
pub fn validate(layout: &str) -> Result<(), String> {
    let b = layout.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            match b.get(i + 1) {
                Some(d) if DIRECTIVES.contains(d) => i += 2,
                Some(_) => {
                    let d = layout[i + 1..].chars().next().unwrap_or('?');
                    return Err(format!(
                        "`%{d}` is not a supported directive (supported: %Y %y %m %d %e %H %I %M %S %f %p %z %Z %b %h %B %a %A %T %F %s %%)"
                    ));
                }
                None => return Err("the layout ends with a lone `%`".to_owned()),
            }
        } else {
            i += 1;
        }
    }
    Ok(())
}

const MONTHS: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];
const DAYS: [&str; 7] = [
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];

/// Up to `max` digits (at least one) at `b[*i..]`, advancing `i`.
fn num(b: &[u8], i: &mut usize, max: usize) -> Result<u32, TimeError> {
    let start = *i;
    let mut v: u32 = 0;
    while *i < b.len() && *i - start < max && b[*i].is_ascii_digit() {
        v = v * 10 + u32::from(b[*i] - b'0');
        *i += 1;
    }
    if *i == start {
        return Err(TimeError);
    }
    Ok(v)
}

/// A name (`Dec`, `December`, `Wed`) at `b[*i..]` from `names` (full, lower case), matched
/// case-insensitively in full or as its three-letter abbreviation; returns its index.
fn name(b: &[u8], i: &mut usize, names: &[&str]) -> Result<usize, TimeError> {
    let rest = &b[*i..];
    for (k, n) in names.iter().enumerate() {
        let n = n.as_bytes();
        if rest.len() >= n.len() && rest[..n.len()].eq_ignore_ascii_case(n) {
            *i += n.len();
            return Ok(k);
        }
    }
    for (k, n) in names.iter().enumerate() {
        if rest.len() >= 3 && rest[..3].eq_ignore_ascii_case(&n.as_bytes()[..3]) {
            *i += 3;
            return Ok(k);
        }
    }
    Err(TimeError)
}

/// Parses `text` (all of it, surrounding whitespace aside) with `layout`.
pub fn parse(
    text: &str,
    layout: &str,
    reference: Timestamp,
    offset: i64,
) -> Result<Timestamp, TimeError> {
    let b = text.trim().as_bytes();
    let f = layout.trim().as_bytes();
    let (mut i, mut j) = (0, 0);
    let mut year: Option<i64> = None;
    let (mut month, mut day) = (None, None);
    let (mut hour, mut minute, mut second, mut nanos) = (0u32, 0u32, 0u32, 0u32);
    let mut pm: Option<bool> = None;
    let mut zone: Option<i64> = None;
    let mut epoch: Option<i64> = None;
    while j < f.len() {
        let c = f[j];
        if c.is_ascii_whitespace() {
            while j < f.len() && f[j].is_ascii_whitespace() {
                j += 1;
            }
            while i < b.len() && b[i].is_ascii_whitespace() {
                i += 1;
            }
            continue;
        }
        if c != b'%' {
            if b.get(i) != Some(&c) {
                return Err(TimeError);
            }
            i += 1;
            j += 1;
            continue;
        }
        let d = *f.get(j + 1).ok_or(TimeError)?;
        j += 2;
        match d {
            b'Y' => year = Some(i64::from(num(b, &mut i, 4)?)),
            b'y' => year = Some(2000 + i64::from(num(b, &mut i, 2)?)),
            b'm' => month = Some(num(b, &mut i, 2)?),
            b'd' | b'e' => {
                if b.get(i) == Some(&b' ') {
                    i += 1;
                }
                day = Some(num(b, &mut i, 2)?);
            }
            b'H' | b'I' => hour = num(b, &mut i, 2)?,
            b'M' => minute = num(b, &mut i, 2)?,
            b'S' => second = num(b, &mut i, 2)?,
            b'T' => {
                hour = num(b, &mut i, 2)?;
                if b.get(i) != Some(&b':') {
                    return Err(TimeError);
                }
                i += 1;
                minute = num(b, &mut i, 2)?;
                if b.get(i) != Some(&b':') {
                    return Err(TimeError);
                }
                i += 1;
                second = num(b, &mut i, 2)?;
            }
            b'F' => {
                year = Some(i64::from(num(b, &mut i, 4)?));
                if b.get(i) != Some(&b'-') {
                    return Err(TimeError);
                }
                i += 1;
                month = Some(num(b, &mut i, 2)?);
                if b.get(i) != Some(&b'-') {
                    return Err(TimeError);
                }
                i += 1;
                day = Some(num(b, &mut i, 2)?);
            }
            b'f' => {
                let start = i;
                let v = num(b, &mut i, 9)?;
                let digits = (i - start) as u32;
                nanos = v * 10u32.pow(9 - digits);
                while i < b.len() && b[i].is_ascii_digit() {
                    i += 1;
                }
            }
            b'p' => {
                let r = &b[i..];
                if r.len() >= 2 && r[..2].eq_ignore_ascii_case(b"AM") {
                    pm = Some(false);
                } else if r.len() >= 2 && r[..2].eq_ignore_ascii_case(b"PM") {
                    pm = Some(true);
                } else {
                    return Err(TimeError);
                }
                i += 2;
            }
            b'b' | b'h' | b'B' => {
                let m = match b.get(i..i + 3).and_then(month_from_abbr) {
                    Some(m) if d != b'B' => {
                        i += 3;
                        m as usize - 1
                    }
                    _ => name(b, &mut i, &MONTHS)?,
                };
                month = Some(m as u32 + 1);
            }
            b'a' | b'A' => {
                name(b, &mut i, &DAYS)?;
            }
            b'z' => {
                let (off, n) = zone_offset(&b[i..]).ok_or(TimeError)?;
                zone = Some(off);
                i += n;
            }
            b'Z' => {
                let r = &b[i..];
                let n = r.iter().take_while(|c| c.is_ascii_alphabetic()).count();
                match &r[..n] {
                    x if x.eq_ignore_ascii_case(b"UTC")
                        || x.eq_ignore_ascii_case(b"GMT")
                        || x.eq_ignore_ascii_case(b"Z") =>
                    {
                        zone = Some(0);
                    }
                    // Other zone names are ambiguous (CST, IST): an offset must say it.
                    _ => return Err(TimeError),
                }
                i += n;
            }
            b's' => {
                let neg = b.get(i) == Some(&b'-');
                if neg {
                    i += 1;
                }
                let start = i;
                while i < b.len() && b[i].is_ascii_digit() && i - start < 12 {
                    i += 1;
                }
                let v: i64 = std::str::from_utf8(&b[start..i])
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .ok_or(TimeError)?;
                epoch = Some(if neg { -v } else { v });
            }
            b'%' => {
                if b.get(i) != Some(&b'%') {
                    return Err(TimeError);
                }
                i += 1;
            }
            _ => return Err(TimeError),
        }
    }
    if i != b.len() {
        return Err(TimeError);
    }
    if let Some(e) = epoch {
        return Ok(Timestamp { secs: e, nanos });
    }
    if let Some(pm) = pm {
        if hour == 0 || hour > 12 {
            return Err(TimeError);
        }
        hour = hour % 12 + if pm { 12 } else { 0 };
    }
    let month = u8::try_from(month.ok_or(TimeError)?).map_err(|_| TimeError)?;
    let day = u8::try_from(day.ok_or(TimeError)?).map_err(|_| TimeError)?;
    if hour > 23 || minute > 59 || second > 60 {
        return Err(TimeError);
    }
    let (h, m, s) = (hour as u8, minute as u8, second.min(59) as u8);
    let offset = zone.unwrap_or(offset);
    let secs = match year {
        Some(year) => unix_from_civil(Civil {
            year,
            month,
            day,
            hour: h,
            minute: m,
            second: s,
        })
        .map(|t| t - offset),
        None => infer_year(month, day, (h, m, s), reference, offset),
    }
    .ok_or(TimeError)?;
    Ok(Timestamp { secs, nanos })
}

/// `+hhmm`, `-hh:mm`, `Z`: seconds east of UTC and bytes read.
fn zone_offset(b: &[u8]) -> Option<(i64, usize)> {
    match b.first()? {
        b'Z' | b'z' => Some((0, 1)),
        c @ (b'+' | b'-') => {
            let sign = if *c == b'-' { -1 } else { 1 };
            let d = |k: usize| {
                b.get(k)
                    .filter(|c| c.is_ascii_digit())
                    .map(|c| i64::from(c - b'0'))
            };
            let h = d(1)? * 10 + d(2)?;
            let (m, n) = if b.get(3) == Some(&b':') {
                (d(4)? * 10 + d(5)?, 6)
            } else {
                (d(3)? * 10 + d(4)?, 5)
            };
            (h < 24 && m < 60).then_some((sign * (h * 3600 + m * 60), n))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r() -> Timestamp {
        crate::time::parse_rfc3339("2026-12-02T12:00:00Z", 0).unwrap()
    }

    #[test]
    fn layouts() {
        for (text, layout, want) in [
            // `date`'s default output (C locale).
            (
                "Wed Dec  2 07:27:33 UTC 2026",
                "%a %b %e %H:%M:%S %Z %Y",
                "2026-12-02T07:27:33Z",
            ),
            (
                "Wed Dec 12 07:27:33 UTC 2026",
                "%a %b %e %H:%M:%S %Z %Y",
                "2026-12-12T07:27:33Z",
            ),
            (
                "2026-12-02 07:27:33,123",
                "%F %T,%f",
                "2026-12-02T07:27:33.123Z",
            ),
            (
                "02/12/26 7:27:33 PM +0100",
                "%d/%m/%y %I:%M:%S %p %z",
                "2026-12-02T18:27:33Z",
            ),
            (
                "December 2, 2026 07:27",
                "%B %e, %Y %H:%M",
                "2026-12-02T07:27:00Z",
            ),
            ("Dec 2 07:27:33", "%b %e %T", "2026-12-02T07:27:33Z"),
            ("1764660453", "%s", "2025-12-02T07:27:33Z"),
        ] {
            let t = parse(text, layout, r(), 0).unwrap_or_else(|_| panic!("{text} / {layout}"));
            assert_eq!(t.to_string(), want, "{text} / {layout}");
        }
        assert!(
            parse(
                "Wed Dec  2 07:27:33 CET 2026",
                "%a %b %e %H:%M:%S %Z %Y",
                r(),
                0
            )
            .is_err()
        );
        assert!(parse("2026-12-02 07:27:33 tail", "%F %T", r(), 0).is_err());
        assert!(parse("2026-13-02 07:27:33", "%F %T", r(), 0).is_err());
        assert!(validate("%Y-%m-%d %H:%M:%S").is_ok());
        assert!(validate("%Q").unwrap_err().contains("%Q"));
        assert!(validate("%").is_err());
    }
}
