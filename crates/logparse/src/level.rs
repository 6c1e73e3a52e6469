//! Log levels of every format mapped onto the OpenTelemetry severity scale.

/// An OpenTelemetry severity: number 1-24 and its short name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Severity {
    /// 1-4 TRACE, 5-8 DEBUG, 9-12 INFO, 13-16 WARN, 17-20 ERROR, 21-24 FATAL.
    pub number: u8,
    /// `TRACE`, `DEBUG`, `INFO`, `WARN`, `ERROR`, `FATAL`.
    pub text: &'static str,
}

const fn sev(number: u8, text: &'static str) -> Severity {
    Severity { number, text }
}

/// The severity of a level word as servers and libraries write it (case-insensitive): `trace`,
/// `debug`, `info`, `notice`, `warn`/`warning`, `error`/`err`, `crit`/`critical`, `alert`,
/// `emerg`/`emergency`/`fatal`/`panic`, Apache's `trace1`..`trace8`, single letters `D I W E F`;
/// syslog's `informational`, .NET's `verbose`, java.util.logging's `severe`/`fine`/`finer`/
/// `finest`/`config`, zap's `dpanic`; and numbers: pino/bunyan's 10..60 and syslog codes 0..7.
pub fn severity_of(level: &str) -> Option<Severity> {
    let b = level.as_bytes();
    if b.len() > 13 {
        return None;
    }
    if !b.is_empty() && b.iter().all(u8::is_ascii_digit) {
        return severity_of_number(level.parse().ok()?);
    }
    let mut low = [0u8; 13];
    for (d, s) in low.iter_mut().zip(b) {
        *d = s.to_ascii_lowercase();
    }
    Some(match &low[..b.len()] {
        b"trace" | b"t" | b"trc" | b"finest" | b"verbose" | b"v" => sev(1, "TRACE"),
        b"finer" => sev(2, "TRACE"),
        b"fine" | b"config" => sev(5, "DEBUG"),
        [b't', b'r', b'a', b'c', b'e', b'1'..=b'8'] => sev(1, "TRACE"),
        b"debug" | b"d" | b"dbg" => sev(5, "DEBUG"),
        b"info" | b"i" | b"inf" | b"information" | b"informational" => sev(9, "INFO"),
        b"notice" => sev(10, "INFO"),
        b"warn" | b"warning" | b"w" | b"wrn" => sev(13, "WARN"),
        b"error" | b"err" | b"e" | b"eror" | b"severe" => sev(17, "ERROR"),
        b"crit" | b"critical" => sev(18, "ERROR"),
        b"alert" => sev(19, "ERROR"),
        b"dpanic" => sev(20, "ERROR"),
        b"emerg" | b"emergency" | b"fatal" | b"f" | b"panic" => sev(21, "FATAL"),
        _ => return None,
    })
}

/// A numeric level: pino and bunyan's 10 (trace) .. 60 (fatal), or a syslog severity code 0..7.
pub fn severity_of_number(n: u64) -> Option<Severity> {
    Some(match n {
        0..=7 => severity_of_syslog(n as u8),
        10 => sev(1, "TRACE"),
        20 => sev(5, "DEBUG"),
        30 => sev(9, "INFO"),
        40 => sev(13, "WARN"),
        50 => sev(17, "ERROR"),
        60 => sev(21, "FATAL"),
        _ => return None,
    })
}

/// The severity of a syslog severity code (0 emergency .. 7 debug).
pub fn severity_of_syslog(code: u8) -> Severity {
    match code {
        0 => sev(21, "FATAL"),
        1 => sev(19, "ERROR"),
        2 => sev(18, "ERROR"),
        3 => sev(17, "ERROR"),
        4 => sev(13, "WARN"),
        5 => sev(10, "INFO"),
        6 => sev(9, "INFO"),
        _ => sev(5, "DEBUG"),
    }
}

/// The severity of an HTTP status in an access log: 5xx ERROR, 4xx WARN, else INFO.
pub fn severity_of_status(status: u16) -> Severity {
    match status {
        500.. => sev(17, "ERROR"),
        400..=499 => sev(13, "WARN"),
        _ => sev(9, "INFO"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels() {
        assert_eq!(severity_of("WARNING").unwrap().number, 13);
        assert_eq!(severity_of("emerg").unwrap().text, "FATAL");
        assert_eq!(severity_of("trace5").unwrap().number, 1);
        assert_eq!(severity_of("verbose").unwrap().text, "TRACE");
        assert_eq!(severity_of("Informational").unwrap().number, 9);
        assert_eq!(severity_of("SEVERE").unwrap().text, "ERROR");
        assert_eq!(severity_of("30").unwrap().text, "INFO");
        assert_eq!(severity_of("3").unwrap().text, "ERROR");
        assert_eq!(severity_of("35"), None);
        assert_eq!(severity_of("whatever"), None);
        assert_eq!(severity_of_syslog(3).number, 17);
        assert_eq!(severity_of_status(503).text, "ERROR");
    }
}
