//! Writing JSON straight into a reused output buffer: no intermediate values, one pass over each
//! string. Nested ECS objects are produced from dotted paths by a small stack machine.

/// A mask of the 8 bytes in `x` (little-endian) that are control characters, `"` or `\\`, by
/// their high bits (SWAR: the classic has-zero-byte and has-less-than tricks). Bits above the
/// lowest may be false (a borrow runs on into the next byte), but the lowest set bit is always
/// exact: it gives the position of the first byte to escape without a byte loop.
#[inline]
fn escape_bits(x: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let has_zero = |v: u64| v.wrapping_sub(ONES) & !v & HIGH;
    let control = x.wrapping_sub(ONES * 0x20) & !x & HIGH;
    control | has_zero(x ^ (ONES * u64::from(b'"'))) | has_zero(x ^ (ONES * u64::from(b'\\')))
}

/// The offset of the first byte in a word with these [`escape_bits`] (which are not zero).
#[inline]
fn first(bits: u64) -> usize {
    (bits.trailing_zeros() / 8) as usize
}

/// The index of the first byte of `b[from..]` that needs escaping, or `b.len()`.
#[inline]
fn next_escape(b: &[u8], mut from: usize) -> usize {
    // Two words per step: independent, so the CPU checks them in parallel.
    while from + 16 <= b.len() {
        let x = escape_bits(u64::from_le_bytes(
            b[from..from + 8].try_into().expect("8 bytes"),
        ));
        let y = escape_bits(u64::from_le_bytes(
            b[from + 8..from + 16].try_into().expect("8 bytes"),
        ));
        if x != 0 {
            return from + first(x);
        }
        if y != 0 {
            return from + 8 + first(y);
        }
        from += 16;
    }
    if from + 8 <= b.len() {
        let x = escape_bits(u64::from_le_bytes(
            b[from..from + 8].try_into().expect("8 bytes"),
        ));
        if x != 0 {
            return from + first(x);
        }
        from += 8;
    }
    let rest = b.len() - from;
    if rest > 0 {
        // The last 1 to 7 bytes as one word, no byte loop: the string's last 8 bytes shifted
        // down when it has them, else assembled. The zero bytes shifted in above are masked off
        // (their borrows run upward only, so they never disturb the real bytes' bits).
        let shift = 8 * (8 - rest) as u32;
        let x = match b.len().checked_sub(8) {
            Some(s) => u64::from_le_bytes(b[s..].try_into().expect("8 bytes")) >> shift,
            None => b[from..]
                .iter()
                .enumerate()
                .fold(0u64, |w, (i, &c)| w | (u64::from(c) << (8 * i))),
        };
        let x = escape_bits(x) & (u64::MAX >> shift);
        if x != 0 {
            return from + first(x);
        }
    }
    b.len()
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
        /// Byte for byte as serde_json writes them, on strings dense in bytes to escape, at every
        /// length around the 8- and 16-byte steps and the tail word.
        #[test]
        fn escapes_byte_for_byte(s in "[a-z\"\\\\\n\t\u{1}\u{1f}\u{7f}\u{e9} ]{0,40}") {
            let mut out = Vec::new();
            string(&mut out, &s);
            proptest::prop_assert_eq!(out, serde_json::to_vec(&s).unwrap());
        }

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
