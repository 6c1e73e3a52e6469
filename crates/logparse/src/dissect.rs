//! Dissect patterns (Elastic's dissect processor): `%{@timestamp}#%{level} %{message}` splits a
//! line at the literal text between the keys, with no regular expressions. Supported:
//! `%{name}`, `%{name:type}` (`int`, `float`, `bool`, `string`), `%{name->}` (skip repeats of the
//! delimiter that follows, for padded columns), `%{}` and `%{?name}` (skip the value). The last
//! key takes the rest of the line.

use std::fmt;

/// A value's conversion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conversion {
    /// Kept as text.
    Text,
    /// A 64-bit integer.
    Int,
    /// A floating-point number.
    Float,
    /// `true`/`false`.
    Bool,
}

#[derive(Debug, Clone)]
struct Key {
    /// `None` for a skipped value.
    name: Option<String>,
    conversion: Conversion,
    /// `->`: skip repeats of the delimiter after the value.
    pad: bool,
    /// The literal text after the key (empty for the last key).
    delimiter: String,
}

/// A compiled pattern.
#[derive(Debug, Clone)]
pub struct Dissect {
    prefix: String,
    keys: Vec<Key>,
}

/// Why a pattern does not compile, or a line does not match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DissectError {
    /// The pattern is invalid.
    Pattern(String),
    /// The line does not match: what was expected.
    NoMatch(String),
}

impl fmt::Display for DissectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Pattern(e) => write!(f, "pattern: {e}"),
            Self::NoMatch(e) => write!(f, "pattern: {e}"),
        }
    }
}

impl std::error::Error for DissectError {}

impl Dissect {
    /// Compiles a pattern.
    pub fn new(pattern: &str) -> Result<Self, DissectError> {
        let bad = |m: String| Err(DissectError::Pattern(m));
        let mut prefix = String::new();
        let mut keys: Vec<Key> = Vec::new();
        let mut rest = pattern;
        loop {
            let (lit, after) = match rest.find("%{") {
                Some(i) => (&rest[..i], Some(&rest[i + 2..])),
                None => (rest, None),
            };
            match keys.last_mut() {
                Some(k) => k.delimiter = lit.to_owned(),
                None => prefix = lit.to_owned(),
            }
            if let Some(last) = keys.last()
                && last.delimiter.is_empty()
                && after.is_some()
            {
                return bad(format!(
                    "two keys with nothing between them (after `{}`)",
                    last.name.as_deref().unwrap_or("%{}")
                ));
            }
            let Some(after) = after else { break };
            let Some(close) = after.find('}') else {
                return bad("`%{` without its `}`".to_owned());
            };
            let mut spec = &after[..close];
            rest = &after[close + 1..];
            let pad = spec.ends_with("->");
            if pad {
                spec = &spec[..spec.len() - 2];
            }
            let (mut name, conversion) = match spec.rsplit_once(':') {
                Some((n, t)) => {
                    let c = match t {
                        "int" | "long" | "integer" => Conversion::Int,
                        "float" | "double" => Conversion::Float,
                        "bool" | "boolean" => Conversion::Bool,
                        "string" | "text" | "keyword" => Conversion::Text,
                        other => {
                            return bad(format!(
                                "`{other}` is not a type (int, float, bool, string)"
                            ));
                        }
                    };
                    (n, c)
                }
                None => (spec, Conversion::Text),
            };
            if name.starts_with(['+', '*', '&']) {
                return bad(format!(
                    "`%{{{spec}}}`: append and reference keys are not supported"
                ));
            }
            let skip = name.is_empty() || name.starts_with('?');
            if let Some(n) = name.strip_prefix('?') {
                name = n;
            }
            keys.push(Key {
                name: (!skip).then(|| name.to_owned()),
                conversion,
                pad,
                delimiter: String::new(),
            });
        }
        if keys.is_empty() {
            return bad("no `%{key}` in the pattern".to_owned());
        }
        Ok(Self { prefix, keys })
    }

    /// The names of the keys (skipped ones excluded), in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.keys.iter().filter_map(|k| k.name.as_deref())
    }

    /// Splits a line: `(name, value, conversion)` for every named key.
    pub fn parse<'p, 'l>(
        &'p self,
        line: &'l str,
    ) -> Result<Vec<(&'p str, &'l str, Conversion)>, DissectError> {
        let mut rest = line.strip_prefix(self.prefix.as_str()).ok_or_else(|| {
            DissectError::NoMatch(format!("the line does not start with {:?}", self.prefix))
        })?;
        let mut out = Vec::with_capacity(self.keys.len());
        for k in &self.keys {
            let value = if k.delimiter.is_empty() {
                std::mem::take(&mut rest)
            } else {
                let at = rest.find(k.delimiter.as_str()).ok_or_else(|| {
                    DissectError::NoMatch(format!(
                        "no {:?} after `{}`",
                        k.delimiter,
                        k.name.as_deref().unwrap_or("%{}")
                    ))
                })?;
                let v = &rest[..at];
                rest = &rest[at + k.delimiter.len()..];
                if k.pad {
                    while let Some(r) = rest.strip_prefix(k.delimiter.as_str()) {
                        rest = r;
                    }
                }
                v
            };
            if let Some(n) = &k.name {
                out.push((n.as_str(), value, k.conversion));
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits() {
        let d = Dissect::new("%{@timestamp}#%{message}").unwrap();
        assert_eq!(
            d.parse("Wed Dec  2 07:27:33 UTC 2026#This is log").unwrap(),
            [
                (
                    "@timestamp",
                    "Wed Dec  2 07:27:33 UTC 2026",
                    Conversion::Text
                ),
                ("message", "This is log", Conversion::Text),
            ]
        );
        let d = Dissect::new("[%{ts}] %{level->} %{?pid} %{ms:int}ms %{msg}").unwrap();
        assert_eq!(
            d.parse("[t1] INFO    42 17ms done").unwrap(),
            [
                ("ts", "t1", Conversion::Text),
                ("level", "INFO", Conversion::Text),
                ("ms", "17", Conversion::Int),
                ("msg", "done", Conversion::Text),
            ]
        );
        assert!(d.parse("t1 INFO").is_err());
        assert!(Dissect::new("%{a}%{b}").is_err());
        assert!(Dissect::new("%{a:uuid}").is_err());
        assert!(Dissect::new("%{+a} %{b}").is_err());
        assert!(Dissect::new("no keys").is_err());
        assert!(Dissect::new("%{a").is_err());
    }
}
