//! RESP framing for the hot path.
//!
//! A hand parser rather than `redis-protocol`'s decoder, on purpose: a proxy never needs the
//! decoded values, only (a) the byte ranges of a request's arguments (to read the command name and
//! keys) and (b) where each reply ends (to hand it back unchanged). Decoding into frames would
//! allocate per request and per reply and copy every value; these functions only scan and record
//! offsets into reusable buffers.

/// Why a request could not be parsed; the client gets `-ERR Protocol error: <reason>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProtoError {
    /// `*` count not a number or out of range.
    BadMultibulkLength,
    /// `$` length not a number or out of range.
    BadBulkLength,
    /// Something other than `$` where a bulk string was expected: the byte found.
    ExpectedBulk(u8),
    /// A bulk string not followed by CRLF.
    MissingCrlf,
    /// The request exceeds the configured size limit.
    TooLarge,
    /// An inline command line longer than the limit.
    InlineTooLong,
}

/// The text after `Protocol error: `, in redis-server's words where it has the same error.
impl std::fmt::Display for ProtoError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::BadMultibulkLength => "invalid multibulk length",
            Self::BadBulkLength => "invalid bulk length",
            Self::ExpectedBulk(b) => {
                // redis-server writes the byte as it came; a control or non-ASCII byte is
                // escaped here so the error line stays printable text.
                return if b.is_ascii_graphic() || *b == b' ' {
                    write!(f, "expected '$', got '{}'", char::from(*b))
                } else {
                    write!(f, "expected '$', got '\\x{b:02x}'")
                };
            }
            Self::MissingCrlf => "bulk string not terminated by CRLF",
            Self::TooLarge => "request exceeds the maximum request size",
            Self::InlineTooLong => "too big inline request",
        })
    }
}

/// Longest bulk string a request may announce before it is refused as an invalid length rather
/// than as too large: redis-server's default `proto-max-bulk-len` (512 MiB), so a length no Redis
/// would take gets Redis's own answer whatever `--max-request-bytes` is.
const PROTO_MAX_BULK_LEN: i64 = 512 * 1024 * 1024;

/// Longest inline command line accepted (as Redis).
const MAX_INLINE: usize = 64 * 1024;

/// Parses a decimal integer line ending at `\r\n` starting at `buf[pos]`. Returns (value, position
/// after the CRLF), `Ok(None)` when the line is incomplete.
fn int_line(buf: &[u8], pos: usize) -> Result<Option<(i64, usize)>, ()> {
    let Some(nl) = memchr::memchr(b'\n', &buf[pos..]) else {
        if buf.len() - pos > 32 {
            return Err(());
        }
        return Ok(None);
    };
    let end = pos + nl;
    if nl == 0 || buf[end - 1] != b'\r' {
        return Err(());
    }
    let digits = &buf[pos..end - 1];
    let (neg, digits) = match digits.first() {
        Some(b'-') => (true, &digits[1..]),
        _ => (false, digits),
    };
    if digits.is_empty() || digits.len() > 18 {
        return Err(());
    }
    let mut v: i64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return Err(());
        }
        v = v * 10 + i64::from(d - b'0');
    }
    Ok(Some((if neg { -v } else { v }, end + 1)))
}

/// Parses one request at the start of `buf`. On success returns the number of bytes it spans and
/// fills `args` with the byte range of each argument. `Ok(None)`: incomplete, read more.
pub fn parse_request(
    buf: &[u8],
    args: &mut Vec<(usize, usize)>,
    max_bytes: usize,
) -> Result<Option<usize>, ProtoError> {
    parse_request_resuming(buf, args, max_bytes, &mut Resume::default())
}

/// Where the parsing of an incomplete multibulk request stopped: the next call, given the same
/// request with more bytes after it, goes on from there instead of scanning it again from its
/// start. Without it a request of a million small arguments sent in 4 KiB pieces is scanned once
/// per piece, which makes one slow client cost the proxy seconds of CPU (redis-server, which
/// keeps the same state, a tenth of a second).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Resume {
    /// The multibulk count of the request in progress; 0: none.
    count: i64,
    /// Where its next argument starts.
    pos: usize,
}

/// [`parse_request`] that keeps its place in an incomplete multibulk request in `resume`, with
/// the arguments parsed so far left in `args`. Between calls the request must stay at the start
/// of `buf` and `args` be left alone; `resume` is reset when a request is complete or refused.
pub fn parse_request_resuming(
    buf: &[u8],
    args: &mut Vec<(usize, usize)>,
    max_bytes: usize,
    resume: &mut Resume,
) -> Result<Option<usize>, ProtoError> {
    let r = parse_multibulk(buf, args, max_bytes, resume);
    if !matches!(r, Ok(None)) {
        *resume = Resume::default();
    }
    r
}

fn parse_multibulk(
    buf: &[u8],
    args: &mut Vec<(usize, usize)>,
    max_bytes: usize,
    resume: &mut Resume,
) -> Result<Option<usize>, ProtoError> {
    let (n, mut pos) = if resume.count > 0 {
        (resume.count, resume.pos)
    } else {
        args.clear();
        if buf.is_empty() {
            return Ok(None);
        }
        if buf[0] != b'*' {
            return parse_inline(buf, args);
        }
        match int_line(buf, 1) {
            Ok(Some(v)) => v,
            Ok(None) => return Ok(None),
            Err(()) => return Err(ProtoError::BadMultibulkLength),
        }
    };
    if n > 1024 * 1024 {
        return Err(ProtoError::BadMultibulkLength);
    }
    if n <= 0 {
        // Redis ignores empty multibulks; the caller skips them.
        return Ok(Some(pos));
    }
    while (args.len() as i64) < n {
        *resume = Resume { count: n, pos };
        if pos >= buf.len() {
            return Ok(None);
        }
        if buf[pos] != b'$' {
            return Err(ProtoError::ExpectedBulk(buf[pos]));
        }
        let (len, start) = match int_line(buf, pos + 1) {
            Ok(Some(v)) => v,
            Ok(None) => return Ok(None),
            Err(()) => return Err(ProtoError::BadBulkLength),
        };
        if !(0..=PROTO_MAX_BULK_LEN).contains(&len) {
            return Err(ProtoError::BadBulkLength);
        }
        if len as usize > max_bytes {
            return Err(ProtoError::TooLarge);
        }
        let end = start + len as usize;
        if end > max_bytes {
            return Err(ProtoError::TooLarge);
        }
        if buf.len() < end + 2 {
            return Ok(None);
        }
        if &buf[end..end + 2] != b"\r\n" {
            return Err(ProtoError::MissingCrlf);
        }
        args.push((start, end));
        pos = end + 2;
    }
    Ok(Some(pos))
}

fn parse_inline(buf: &[u8], args: &mut Vec<(usize, usize)>) -> Result<Option<usize>, ProtoError> {
    let Some(nl) = memchr::memchr(b'\n', buf) else {
        if buf.len() > MAX_INLINE {
            return Err(ProtoError::InlineTooLong);
        }
        return Ok(None);
    };
    let line_end = if nl > 0 && buf[nl - 1] == b'\r' {
        nl - 1
    } else {
        nl
    };
    let mut i = 0;
    while i < line_end {
        while i < line_end && (buf[i] == b' ' || buf[i] == b'\t') {
            i += 1;
        }
        let start = i;
        while i < line_end && buf[i] != b' ' && buf[i] != b'\t' {
            i += 1;
        }
        if i > start {
            args.push((start, i));
        }
    }
    Ok(Some(nl + 1))
}

/// Bytes from a server that are not RESP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotResp;

/// Finds the end of one complete reply at the start of `buf`: `Ok(Some(len))`, `Ok(None)` when
/// incomplete, `Err` when the bytes are not RESP.
pub fn scan_reply(buf: &[u8]) -> Result<Option<usize>, NotResp> {
    let mut pos = 0;
    // Elements still to read: 1 for the reply itself, plus the children of open arrays.
    let mut pending: u64 = 1;
    while pending > 0 {
        if pos >= buf.len() {
            return Ok(None);
        }
        let t = buf[pos];
        match t {
            b'+' | b'-' | b':' | b'_' | b',' | b'#' | b'(' => {
                let Some(nl) = memchr::memchr(b'\n', &buf[pos..]) else {
                    return Ok(None);
                };
                pos += nl + 1;
                pending -= 1;
            }
            b'$' | b'=' | b'!' => {
                let Some((len, start)) = int_line(buf, pos + 1).map_err(|()| NotResp)? else {
                    return Ok(None);
                };
                pending -= 1;
                if len < 0 {
                    pos = start;
                } else {
                    let end = start + len as usize + 2;
                    if buf.len() < end {
                        return Ok(None);
                    }
                    pos = end;
                }
            }
            b'*' | b'~' | b'>' | b'%' | b'|' => {
                let Some((n, next)) = int_line(buf, pos + 1).map_err(|()| NotResp)? else {
                    return Ok(None);
                };
                pending -= 1;
                if n > 0 {
                    let mult = if t == b'%' || t == b'|' { 2 } else { 1 };
                    pending += n as u64 * mult;
                }
                pos = next;
            }
            _ => return Err(NotResp),
        }
    }
    Ok(Some(pos))
}

/// Appends a RESP bulk string.
pub fn put_bulk(out: &mut bytes::BytesMut, data: &[u8]) {
    out.extend_from_slice(b"$");
    put_int_text(out, data.len() as i64);
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

/// Appends a RESP array header.
pub fn put_array_header(out: &mut bytes::BytesMut, n: usize) {
    out.extend_from_slice(b"*");
    put_int_text(out, n as i64);
    out.extend_from_slice(b"\r\n");
}

/// Appends a RESP integer.
pub fn put_int(out: &mut bytes::BytesMut, v: i64) {
    out.extend_from_slice(b":");
    put_int_text(out, v);
    out.extend_from_slice(b"\r\n");
}

fn put_int_text(out: &mut bytes::BytesMut, v: i64) {
    let mut b = itoa::Buffer::new();
    out.extend_from_slice(b.format(v).as_bytes());
}

/// Appends an error reply, with newlines removed so the reply stays one line.
pub fn put_error(out: &mut bytes::BytesMut, msg: &str) {
    out.extend_from_slice(b"-");
    for b in msg.bytes() {
        out.extend_from_slice(&[if b == b'\r' || b == b'\n' { b' ' } else { b }]);
    }
    out.extend_from_slice(b"\r\n");
}

/// Parses a RESP integer reply (`:n\r\n`).
pub fn parse_int_reply(r: &[u8]) -> Option<i64> {
    if r.first() != Some(&b':') {
        return None;
    }
    int_line(r, 1).ok().flatten().map(|(v, _)| v)
}

/// The value of a bulk (`$`) or verbatim (`=`) string reply; `None` for anything else.
pub fn bulk_value(r: &[u8]) -> Option<&[u8]> {
    if !matches!(r.first(), Some(b'$' | b'=')) {
        return None;
    }
    let (n, pos) = int_line(r, 1).ok().flatten()?;
    let n = usize::try_from(n).ok()?;
    r.get(pos..pos + n)
}

/// Splits an array reply into its element byte ranges. `None` if `r` is not an array.
pub fn array_elements(r: &[u8]) -> Option<Vec<(usize, usize)>> {
    if r.first() != Some(&b'*') {
        return None;
    }
    let (n, mut pos) = int_line(r, 1).ok().flatten()?;
    let mut v = Vec::with_capacity(n.max(0) as usize);
    for _ in 0..n.max(0) {
        let len = scan_reply(&r[pos..]).ok().flatten()?;
        v.push((pos, pos + len));
        pos += len;
    }
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_multibulk_and_reports_incomplete() {
        let mut args = Vec::new();
        let req = b"*2\r\n$3\r\nGET\r\n$3\r\nfoo\r\n";
        assert_eq!(parse_request(req, &mut args, 1 << 20), Ok(Some(req.len())));
        assert_eq!(args, vec![(8, 11), (17, 20)]);
        for cut in 0..req.len() {
            assert_eq!(
                parse_request(&req[..cut], &mut args, 1 << 20),
                Ok(None),
                "{cut}"
            );
        }
    }

    /// Fed in pieces of every size, the resuming parser gives what a parse of the whole gives,
    /// and scans each byte a bounded number of times.
    #[test]
    fn resuming_matches_parsing_the_whole() {
        let mut req = b"*4\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n$10\r\n0123456789\r\n".to_vec();
        let whole_len = req.len();
        req.extend_from_slice(b"*1\r\n$4\r\nPING\r\n");
        let mut want = Vec::new();
        assert_eq!(parse_request(&req, &mut want, 1 << 20), Ok(Some(whole_len)));
        for step in 1..=req.len() {
            let (mut args, mut resume) = (Vec::new(), Resume::default());
            let mut got = None;
            for end in (step..req.len() + step).step_by(step) {
                let end = end.min(req.len());
                let r = parse_request_resuming(&req[..end], &mut args, 1 << 20, &mut resume);
                if let Some(n) = r.unwrap() {
                    got = Some(n);
                    break;
                }
            }
            assert_eq!(got, Some(whole_len), "step {step}");
            assert_eq!(args, want, "step {step}");
            assert_eq!(resume, Resume::default());
        }
        // An error in a resumed request is reported and forgets the place.
        let (mut args, mut resume) = (Vec::new(), Resume::default());
        assert_eq!(
            parse_request_resuming(b"*2\r\n$1\r\na\r\n", &mut args, 100, &mut resume),
            Ok(None)
        );
        assert_eq!(
            parse_request_resuming(b"*2\r\n$1\r\na\r\n:1\r\n", &mut args, 100, &mut resume),
            Err(ProtoError::ExpectedBulk(b':'))
        );
        assert_eq!(resume, Resume::default());
    }

    #[test]
    fn rejects_malformed_and_oversized() {
        let mut a = Vec::new();
        assert_eq!(
            parse_request(b"*x\r\n", &mut a, 100),
            Err(ProtoError::BadMultibulkLength)
        );
        assert_eq!(
            parse_request(b"*1\r\n:3\r\n", &mut a, 100),
            Err(ProtoError::ExpectedBulk(b':'))
        );
        assert_eq!(
            ProtoError::ExpectedBulk(b'*').to_string(),
            "expected '$', got '*'"
        );
        assert_eq!(
            ProtoError::ExpectedBulk(b'\r').to_string(),
            "expected '$', got '\\x0d'"
        );
        // Beyond redis-server's proto-max-bulk-len: its own answer, not the size limit's.
        assert_eq!(
            parse_request(b"*1\r\n$536870913\r\n", &mut a, 100),
            Err(ProtoError::BadBulkLength)
        );
        assert_eq!(
            parse_request(b"*1\r\n$536870912\r\n", &mut a, 100),
            Err(ProtoError::TooLarge)
        );
        assert_eq!(
            parse_request(b"*1\r\n$3\r\nfooXX", &mut a, 100),
            Err(ProtoError::MissingCrlf)
        );
        assert_eq!(
            parse_request(b"*1\r\n$300\r\n", &mut a, 100),
            Err(ProtoError::TooLarge)
        );
    }

    #[test]
    fn parses_inline() {
        let mut a = Vec::new();
        let req = b"  PING  hello\r\n";
        assert_eq!(parse_request(req, &mut a, 100), Ok(Some(req.len())));
        assert_eq!(a, vec![(2, 6), (8, 13)]);
    }

    #[test]
    fn scans_nested_replies() {
        let r = b"*3\r\n$3\r\nfoo\r\n$-1\r\n*2\r\n:1\r\n+OK\r\n";
        assert_eq!(scan_reply(r), Ok(Some(r.len())));
        for cut in 0..r.len() {
            assert_eq!(scan_reply(&r[..cut]), Ok(None));
        }
        assert_eq!(scan_reply(b"*-1\r\n"), Ok(Some(5)));
        assert_eq!(scan_reply(b"-ERR x\r\n+OK\r\n"), Ok(Some(8)));
        assert_eq!(scan_reply(b"?"), Err(NotResp));
        let els = array_elements(r).unwrap();
        assert_eq!(&r[els[0].0..els[0].1], b"$3\r\nfoo\r\n");
        assert_eq!(parse_int_reply(b":42\r\n"), Some(42));
    }
}
