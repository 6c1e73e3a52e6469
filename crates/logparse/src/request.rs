//! The HTTP request line as access logs write it (`$request`, Apache `%r`).

/// A request line split into its parts, borrowing from the log line.
///
/// Real logs hold more than `METHOD TARGET HTTP/x.y`: HTTP/0.9 requests have no protocol, scanners
/// send garbage, and a request cut by a timeout may be logged as just its method. Whatever is
/// missing is `None`; nothing here fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request<'a> {
    /// `GET`, `POST`, ... as logged (not validated).
    pub method: &'a str,
    /// The request target as sent: `/a/b?c=d` (Elastic's `url.original`).
    pub target: Option<&'a str>,
    /// The target before `?`.
    pub path: Option<&'a str>,
    /// The target after `?` (without it); `None` without `?`.
    pub query: Option<&'a str>,
    /// `HTTP/1.1` as logged, when present.
    pub protocol: Option<&'a str>,
}

impl<'a> Request<'a> {
    /// Splits a request line. Returns `None` for an empty line, `-`, or a line whose first
    /// word is not an HTTP token (RFC 9110 `tchar`s): bytes that are no request at all, such
    /// as a TLS handshake sent to a plain-HTTP port, which nginx logs as `\x16\x03\x01...`.
    pub fn parse(line: &'a str) -> Option<Self> {
        let line = line.trim_matches(' ');
        if line.is_empty() || line == "-" {
            return None;
        }
        let (method, rest) = match memchr::memchr(b' ', line.as_bytes()) {
            Some(i) => (&line[..i], line[i + 1..].trim_start_matches(' ')),
            None => (line, ""),
        };
        if !method.bytes().all(is_tchar) {
            return None;
        }
        if rest.is_empty() {
            return Some(Self {
                method,
                target: None,
                path: None,
                query: None,
                protocol: None,
            });
        }
        // The protocol is the last word when it looks like one; targets can hold spaces when a
        // client sent them raw, so split from the right.
        let (target, protocol) = match memchr::memrchr(b' ', rest.as_bytes()) {
            Some(i) if rest[i + 1..].starts_with("HTTP/") => {
                (rest[..i].trim_end_matches(' '), Some(&rest[i + 1..]))
            }
            _ if rest.starts_with("HTTP/") && !rest.contains(' ') => ("", Some(rest)),
            _ => (rest, None),
        };
        let (target, path, query) = if target.is_empty() {
            (None, None, None)
        } else {
            match memchr::memchr(b'?', target.as_bytes()) {
                Some(i) => (Some(target), Some(&target[..i]), Some(&target[i + 1..])),
                None => (Some(target), Some(target), None),
            }
        };
        Some(Self {
            method,
            target,
            path,
            query,
            protocol,
        })
    }

    /// The protocol version without `HTTP/`: `1.1`, `2.0`.
    pub fn version(&self) -> Option<&'a str> {
        self.protocol.and_then(|p| p.strip_prefix("HTTP/"))
    }
}

/// RFC 9110 `tchar`: the characters of a method.
fn is_tchar(c: u8) -> bool {
    c.is_ascii_alphanumeric()
        || matches!(
            c,
            b'!' | b'#'
                | b'$'
                | b'%'
                | b'&'
                | b'\''
                | b'*'
                | b'+'
                | b'-'
                | b'.'
                | b'^'
                | b'_'
                | b'`'
                | b'|'
                | b'~'
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits() {
        let r = Request::parse("GET /a/b?c=d&e HTTP/1.1").unwrap();
        assert_eq!(r.method, "GET");
        assert_eq!(r.target, Some("/a/b?c=d&e"));
        assert_eq!(r.path, Some("/a/b"));
        assert_eq!(r.query, Some("c=d&e"));
        assert_eq!(r.version(), Some("1.1"));
        let r = Request::parse("GET /").unwrap();
        assert_eq!((r.path, r.protocol), (Some("/"), None));
        // A TLS ClientHello on a plain port, and vrl's parse_nginx_log bot request.
        assert_eq!(Request::parse("\\x16\\x03\\x01"), None);
        assert_eq!(
            Request::parse(r"\x16\x03\x01\x02\x00\x01\x00\x01\xFC\x03\x03"),
            None
        );
        assert_eq!(
            Request::parse(r"]&\xDF\xBDV\xE7\xBB<\x10;\xA2b}\xDFM\x1D"),
            None
        );
        assert_eq!(
            Request::parse("PROPFIND /dav HTTP/1.1").unwrap().method,
            "PROPFIND"
        );
        assert_eq!(Request::parse("-"), None);
        let r = Request::parse("PRI * HTTP/2.0").unwrap();
        assert_eq!((r.path, r.version()), (Some("*"), Some("2.0")));
    }
}
