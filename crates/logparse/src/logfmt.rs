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

/// A quoted string at the start of `q` (after its opening quote): the value (unescaped when it
/// had escapes) and the rest after the closing quote. An unterminated quote runs to the end.
fn quoted(q: &str) -> (Cow<'_, str>, &str) {
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
    let raw = &q[..end];
    let rest = q.get(end + 1..).unwrap_or("");
    let value = if escaped {
        Cow::Owned(unescape(raw))
    } else {
        Cow::Borrowed(raw)
    };
    (value, rest)
}

impl<'a> Iterator for Logfmt<'a> {
    type Item = (Cow<'a, str>, Cow<'a, str>);

    fn next(&mut self) -> Option<Self::Item> {
        let s = self.rest.trim_start_matches([' ', '\t']);
        if s.is_empty() {
            self.rest = s;
            return None;
        }
        // A quoted key (`"user id"=7`), as go-logfmt and others write keys with spaces.
        let (key, after) = if let Some(q) = s.strip_prefix('"') {
            quoted(q)
        } else {
            let key_end = s
                .bytes()
                .position(|c| matches!(c, b'=' | b' ' | b'\t'))
                .unwrap_or(s.len());
            (Cow::Borrowed(&s[..key_end]), &s[key_end..])
        };
        let Some(v) = after.strip_prefix('=') else {
            self.rest = after;
            return Some((key, Cow::Borrowed("")));
        };
        if let Some(q) = v.strip_prefix('"') {
            let (value, rest) = quoted(q);
            self.rest = rest;
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
        let v: Vec<(&str, &str)> = v.iter().map(|(k, v)| (k.as_ref(), v.as_ref())).collect();
        assert_eq!(
            v,
            [
                ("level", "info"),
                ("msg", r#"hello "world""#),
                ("flag", ""),
                ("dur", "12ms"),
                ("x", ""),
            ]
        );
        let v: Vec<(String, String)> = parse_logfmt(r#""user id"=7 "say \"hi\""="a b" plain=1"#)
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        assert_eq!(
            v,
            [
                ("user id".to_owned(), "7".to_owned()),
                (r#"say "hi""#.to_owned(), "a b".to_owned()),
                ("plain".to_owned(), "1".to_owned()),
            ]
        );
        // vrl's parse_logfmt examples.
        let v: Vec<(String, String)> = parse_logfmt("zork=zook plonk zonk=nork")
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        assert_eq!(
            v,
            [
                ("zork".to_owned(), "zook".to_owned()),
                ("plonk".to_owned(), String::new()),
                ("zonk".to_owned(), "nork".to_owned()),
            ]
        );
        assert_eq!(parse_logfmt(r#"a="unterminated \"#).count(), 1);
        assert!(looks_like_logfmt(b"ts=1 level=info"));
        assert!(!looks_like_logfmt(b"hello world"));
    }
}
