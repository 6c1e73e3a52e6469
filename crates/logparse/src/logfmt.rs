//! logfmt lines: `level=info msg="hello \"world\"" duration=12ms`.

use std::borrow::Cow;

/// Iterates over the `key=value` pairs of a logfmt line. Values are borrowed unless they were
/// quoted with escapes; a bare key (`debug`) has an empty value. Never fails: malformed input
/// yields what can be read (an unterminated quote runs to the end of the line).
#[derive(Debug, Clone)]
pub struct Logfmt<'a> {
    rest: &'a str,
}

/// Splits a logfmt line into its pairs.
pub fn parse_logfmt(line: &str) -> Logfmt<'_> {
    Logfmt { rest: line }
}

/// Whether `line` looks like logfmt: its first word is `key=...` with a plain key.
pub fn looks_like_logfmt(line: &[u8]) -> bool {
    let key_len = line
        .iter()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-' | b'@'))
        .count();
    key_len > 0 && line.get(key_len) == Some(&b'=')
}

impl<'a> Iterator for Logfmt<'a> {
    type Item = (&'a str, Cow<'a, str>);

    fn next(&mut self) -> Option<Self::Item> {
        let s = self.rest.trim_start_matches([' ', '\t']);
        if s.is_empty() {
            self.rest = s;
            return None;
        }
        let b = s.as_bytes();
        let key_end = b
            .iter()
            .position(|c| matches!(c, b'=' | b' ' | b'\t'))
            .unwrap_or(b.len());
        let key = &s[..key_end];
        if b.get(key_end) != Some(&b'=') {
            self.rest = &s[key_end..];
            return Some((key, Cow::Borrowed("")));
        }
        let v = &s[key_end + 1..];
        if let Some(q) = v.strip_prefix('"') {
            let qb = q.as_bytes();
            let mut i = 0;
            let mut escaped = false;
            while i < qb.len() {
                match qb[i] {
                    b'\\' => {
                        escaped = true;
                        i += 2;
                    }
                    b'"' => break,
                    _ => i += 1,
                }
            }
            let end = i.min(qb.len());
            let raw = &q[..end.min(q.len())];
            self.rest = q.get(end + 1..).unwrap_or("");
            let value = if escaped {
                Cow::Owned(unescape(raw))
            } else {
                Cow::Borrowed(raw)
            };
            Some((key, value))
        } else {
            let end = v
                .bytes()
                .position(|c| c == b' ' || c == b'\t')
                .unwrap_or(v.len());
            self.rest = &v[end..];
            Some((key, Cow::Borrowed(&v[..end])))
        }
    }
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs() {
        let v: Vec<_> =
            parse_logfmt(r#"level=info msg="hello \"world\"" flag dur=12ms x="#).collect();
        assert_eq!(
            v,
            [
                ("level", Cow::Borrowed("info")),
                ("msg", Cow::Owned(r#"hello "world""#.to_owned())),
                ("flag", Cow::Borrowed("")),
                ("dur", Cow::Borrowed("12ms")),
                ("x", Cow::Borrowed("")),
            ]
        );
        assert_eq!(parse_logfmt(r#"a="unterminated \"#).count(), 1);
        assert!(looks_like_logfmt(b"ts=1 level=info"));
        assert!(!looks_like_logfmt(b"hello world"));
    }
}
