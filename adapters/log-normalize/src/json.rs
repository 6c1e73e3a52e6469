//! Writing JSON straight into a reused output buffer: no intermediate values, one pass over each
//! string. Nested ECS objects are produced from dotted paths by a small stack machine.

/// Bytes that must be escaped inside a JSON string: control characters, `"` and `\`.
static NEEDS_ESCAPE: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = true;
        i += 1;
    }
    t[b'"' as usize] = true;
    t[b'\\' as usize] = true;
    t
};

/// Whether any of the 8 bytes in `x` is a control character, `"` or `\\` (SWAR: the classic
/// has-zero-byte and has-less-than tricks, eight bytes per step instead of one).
#[inline]
fn chunk_needs_escape(x: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let has_zero = |v: u64| v.wrapping_sub(ONES) & !v & HIGH;
    let control = x.wrapping_sub(ONES * 0x20) & !x & HIGH;
    (control | has_zero(x ^ (ONES * u64::from(b'"'))) | has_zero(x ^ (ONES * u64::from(b'\\'))))
        != 0
}

/// The index of the first byte of `b[from..]` that needs escaping, or `b.len()`.
#[inline]
fn next_escape(b: &[u8], mut from: usize) -> usize {
    // Two words per step: independent, so the CPU checks them in parallel.
    while from + 16 <= b.len() {
        let x = u64::from_le_bytes(b[from..from + 8].try_into().expect("8 bytes"));
        let y = u64::from_le_bytes(b[from + 8..from + 16].try_into().expect("8 bytes"));
        if chunk_needs_escape(x) | chunk_needs_escape(y) {
            break;
        }
        from += 16;
    }
    while from + 8 <= b.len() {
        let x = u64::from_le_bytes(b[from..from + 8].try_into().expect("8 bytes"));
        if chunk_needs_escape(x) {
            break;
        }
        from += 8;
    }
    while from < b.len() && !NEEDS_ESCAPE[b[from] as usize] {
        from += 1;
    }
    from
}

/// Appends `s` as a JSON string, quotes included. Inlined: it is called a dozen times per line,
/// mostly on short fields, where a call costs as much as the scan.
#[inline]
pub(crate) fn string(out: &mut Vec<u8>, s: &str) {
    let b = s.as_bytes();
    out.reserve(b.len() + 2);
    out.push(b'"');
    let mut start = 0;
    loop {
        let i = next_escape(b, start);
        if i == b.len() {
            break;
        }
        out.extend_from_slice(&b[start..i]);
        escape_byte(out, b[i]);
        start = i + 1;
    }
    out.extend_from_slice(&b[start..]);
    out.push(b'"');
}

/// Appends the escape sequence of one byte that needs it (in access lines: the quotes of
/// `event.original`).
fn escape_byte(out: &mut Vec<u8>, c: u8) {
    match c {
        b'"' => out.extend_from_slice(b"\\\""),
        b'\\' => out.extend_from_slice(b"\\\\"),
        b'\n' => out.extend_from_slice(b"\\n"),
        b'\r' => out.extend_from_slice(b"\\r"),
        b'\t' => out.extend_from_slice(b"\\t"),
        _ => {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.extend_from_slice(b"\\u00");
            out.push(HEX[(c >> 4) as usize]);
            out.push(HEX[(c & 15) as usize]);
        }
    }
}

/// Appends an unsigned integer.
pub(crate) fn uint(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
}

/// Appends a signed integer.
pub(crate) fn int(out: &mut Vec<u8>, v: i64) {
    out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
}

/// Writes one JSON object whose keys are dotted paths, as nested objects: `field(&["http",
/// "request", "method"])` opens `"http":{"request":{` unless already open. Fields that share a
/// prefix must be written one after another; the writer reuses its stack across lines.
#[derive(Debug, Default)]
pub(crate) struct Nested {
    stack: Vec<&'static str>,
    /// Per open object: whether a member was written (a comma is needed before the next).
    members: Vec<bool>,
}

impl Nested {
    /// Starts the object.
    #[cfg(test)]
    pub(crate) fn begin(&mut self, out: &mut Vec<u8>) {
        self.stack.clear();
        self.members.clear();
        self.members.push(false);
        out.push(b'{');
    }

    fn comma(&mut self, out: &mut Vec<u8>) {
        if let Some(m) = self.members.last_mut() {
            if *m {
                out.push(b',');
            }
            *m = true;
        }
    }

    /// Positions the writer at `path` and writes its key and colon; the caller writes the value.
    /// Keys are written as given: they are field names from this program or validated flags.
    pub(crate) fn key(&mut self, out: &mut Vec<u8>, path: &[&'static str]) {
        let (leaf, parent) = path.split_last().expect("a field path is never empty");
        let common = self
            .stack
            .iter()
            .zip(parent)
            .take_while(|(a, b)| same(a, b))
            .count();
        while self.stack.len() > common {
            self.stack.pop();
            self.members.pop();
            out.push(b'}');
        }
        for seg in &parent[common..] {
            self.comma(out);
            raw_key(out, seg);
            out.push(b'{');
            self.stack.push(seg);
            self.members.push(false);
        }
        self.comma(out);
        raw_key(out, leaf);
    }

    /// A string field.
    pub(crate) fn str(&mut self, out: &mut Vec<u8>, path: &[&'static str], v: &str) {
        self.key(out, path);
        string(out, v);
    }

    /// An unsigned integer field.
    #[cfg(test)]
    pub(crate) fn uint(&mut self, out: &mut Vec<u8>, path: &[&'static str], v: u64) {
        self.key(out, path);
        uint(out, v);
    }

    /// Continues an object already opened by the caller (`has_members`: whether a member was
    /// written), so that [`key`](Self::key) writes into it.
    pub(crate) fn resume(&mut self, has_members: bool) {
        self.stack.clear();
        self.members.clear();
        self.members.push(has_members);
    }

    /// Closes the objects opened since [`resume`](Self::resume), not the caller's.
    pub(crate) fn close_inner(&mut self, out: &mut Vec<u8>) {
        for _ in 0..self.stack.len() {
            out.push(b'}');
        }
        self.stack.clear();
    }

    /// Closes every open object and the top-level one.
    #[cfg(test)]
    pub(crate) fn end(&mut self, out: &mut Vec<u8>) {
        for _ in 0..self.stack.len() {
            out.push(b'}');
        }
        self.stack.clear();
        out.push(b'}');
    }
}

/// Segment equality, cheap in the common case: the same literal (one address after the
/// compiler merged identical constants) or different lengths.
#[inline]
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && (std::ptr::eq(a.as_ptr(), b.as_ptr()) || a == b)
}

#[inline]
fn raw_key(out: &mut Vec<u8>, k: &str) {
    out.reserve(k.len() + 3);
    out.push(b'"');
    out.extend_from_slice(k.as_bytes());
    out.extend_from_slice(b"\":");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nesting() {
        let mut out = Vec::new();
        let mut n = Nested::default();
        n.begin(&mut out);
        n.str(&mut out, &["@timestamp"], "t");
        n.str(&mut out, &["http", "request", "method"], "GET");
        n.uint(&mut out, &["http", "response", "status_code"], 200);
        n.uint(&mut out, &["http", "response", "body", "bytes"], 5);
        n.str(&mut out, &["http", "version"], "1.1");
        n.str(&mut out, &["url", "path"], "/\"\n\u{1}");
        n.end(&mut out);
        let s = String::from_utf8(out).unwrap();
        assert_eq!(
            s,
            r#"{"@timestamp":"t","http":{"request":{"method":"GET"},"response":{"status_code":200,"body":{"bytes":5}},"version":"1.1"},"url":{"path":"/\"\n\u0001"}}"#
        );
        let v: serde_json::Value = serde_json::from_str(&s).unwrap();
        assert_eq!(v["url"]["path"], "/\"\n\u{1}");
    }

    proptest::proptest! {
        /// The escaper agrees with serde_json on every string (round trip through its parser).
        #[test]
        fn escapes_like_serde(s in proptest::prelude::any::<String>(), pad in 0usize..9) {
            let s = format!("{}{s}", "x".repeat(pad));
            let mut out = Vec::new();
            string(&mut out, &s);
            let back: String = serde_json::from_slice(&out).unwrap();
            proptest::prop_assert_eq!(back, s);
        }
    }
}
