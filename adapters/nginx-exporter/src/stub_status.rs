//! The stub_status page of nginx (and Tengine), parsed by its labels rather than a fixed template.
//!
//! nginx writes (each of lines 1, 3 and 4 ends with a space):
//!
//! ```text
//! Active connections: 291
//! server accepts handled requests
//!  16630948 16630948 31070465
//! Reading: 6 Writing: 179 Waiting: 106
//! ```
//!
//! Tengine adds a fourth column (`request_time`) to lines 2 and 3. The parser accepts any amount of
//! whitespace, CRLF line ends and extra trailing columns, and when the page is not a stub_status page
//! it says which part was unexpected.

/// The numbers of one stub_status page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StubStatus {
    /// `Active connections`.
    pub active: u64,
    /// `accepts`.
    pub accepted: u64,
    /// `handled`.
    pub handled: u64,
    /// `requests`.
    pub requests: u64,
    /// `Reading`.
    pub reading: u64,
    /// `Writing`.
    pub writing: u64,
    /// `Waiting`.
    pub waiting: u64,
}

/// Why a body is not a stub_status page; the message names what was expected and what was found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a stub_status page: expected {expected}, found {found}")]
pub struct ParseError {
    /// What the parser was looking for, e.g. `the number after "Active connections:"`.
    pub expected: &'static str,
    /// What it found instead (shortened), or `end of body`.
    pub found: String,
}

/// Splits the body into whitespace-separated words and walks them with the page's labels as anchors.
struct Words<'a> {
    iter: std::str::SplitAsciiWhitespace<'a>,
}

impl<'a> Words<'a> {
    fn next_word(&mut self, expected: &'static str) -> Result<&'a str, ParseError> {
        self.iter.next().ok_or_else(|| ParseError {
            expected,
            found: "end of body".to_owned(),
        })
    }

    fn label(&mut self, want: &'static str, expected: &'static str) -> Result<(), ParseError> {
        let w = self.next_word(expected)?;
        if w == want {
            Ok(())
        } else {
            Err(unexpected(expected, w))
        }
    }

    fn number(&mut self, expected: &'static str) -> Result<u64, ParseError> {
        let w = self.next_word(expected)?;
        w.parse().map_err(|_| unexpected(expected, w))
    }
}

fn unexpected(expected: &'static str, found: &str) -> ParseError {
    const MAX: usize = 40;
    let mut s: String = found.chars().take(MAX).collect();
    if found.chars().count() > MAX {
        s.push_str("...");
    }
    ParseError {
        expected,
        found: format!("{s:?}"),
    }
}

/// Parses a stub_status body.
pub fn parse(body: &str) -> Result<StubStatus, ParseError> {
    let mut w = Words {
        iter: body.split_ascii_whitespace(),
    };
    w.label("Active", "\"Active connections:\" at the start")?;
    w.label("connections:", "\"Active connections:\" at the start")?;
    let active = w.number("the number after \"Active connections:\"")?;
    w.label(
        "server",
        "the header line \"server accepts handled requests\"",
    )?;
    w.label(
        "accepts",
        "the header line \"server accepts handled requests\"",
    )?;
    w.label(
        "handled",
        "the header line \"server accepts handled requests\"",
    )?;
    w.label(
        "requests",
        "the header line \"server accepts handled requests\"",
    )?;
    // Extra header columns (Tengine's `request_time`) come before the numbers; count them so the
    // same number of extra values can be skipped.
    let mut extra = 0usize;
    let first = loop {
        let word = w.next_word("the accepts/handled/requests numbers")?;
        if word.bytes().all(|b| b.is_ascii_digit()) {
            break word;
        }
        if word.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') && extra < 4 {
            extra += 1;
            continue;
        }
        return Err(unexpected("the accepts/handled/requests numbers", word));
    };
    let accepted = first
        .parse()
        .map_err(|_| unexpected("the accepts number", first))?;
    let handled = w.number("the handled number")?;
    let requests = w.number("the requests number")?;
    for _ in 0..extra {
        w.number("the extra column's number (e.g. Tengine's request_time)")?;
    }
    w.label("Reading:", "\"Reading:\"")?;
    let reading = w.number("the number after \"Reading:\"")?;
    w.label("Writing:", "\"Writing:\"")?;
    let writing = w.number("the number after \"Writing:\"")?;
    w.label("Waiting:", "\"Waiting:\"")?;
    let waiting = w.number("the number after \"Waiting:\"")?;
    if let Some(rest) = w.iter.next() {
        return Err(unexpected("end of body after \"Waiting:\"", rest));
    }
    Ok(StubStatus {
        active,
        accepted,
        handled,
        requests,
        reading,
        writing,
        waiting,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NGINX: &str = "Active connections: 291 \nserver accepts handled requests\n 16630948 16630948 31070465 \nReading: 6 Writing: 179 Waiting: 106 \n";

    fn expected() -> StubStatus {
        StubStatus {
            active: 291,
            accepted: 16_630_948,
            handled: 16_630_948,
            requests: 31_070_465,
            reading: 6,
            writing: 179,
            waiting: 106,
        }
    }

    #[test]
    fn nginx_page() {
        assert_eq!(parse(NGINX).unwrap(), expected());
    }

    #[test]
    fn extra_whitespace_and_crlf() {
        let body = "  Active   connections:\t291\r\n\r\nserver  accepts handled requests\r\n16630948   16630948 31070465\r\nReading: 6  Writing: 179\tWaiting: 106";
        assert_eq!(parse(body).unwrap(), expected());
    }

    #[test]
    fn tengine_extra_column() {
        let body = "Active connections: 291 \nserver accepts handled requests request_time\n 16630948 16630948 31070465 999 \nReading: 6 Writing: 179 Waiting: 106 \n";
        assert_eq!(parse(body).unwrap(), expected());
    }

    #[test]
    fn errors_name_what_was_unexpected() {
        let e = parse("<html>nope</html>").unwrap_err();
        assert!(e.to_string().contains("\"Active connections:\""), "{e}");
        assert!(e.to_string().contains("<html>nope</html>"), "{e}");

        let e = parse("Active connections: x\n").unwrap_err();
        assert!(
            e.to_string()
                .contains("the number after \"Active connections:\""),
            "{e}"
        );
        assert!(e.to_string().contains("\"x\""), "{e}");

        let e =
            parse("Active connections: 1 \nserver accepts handled requests\n 1 2 \n").unwrap_err();
        assert!(e.to_string().contains("the requests number"), "{e}");

        let e = parse(&NGINX.replace("Writing", "Writin")).unwrap_err();
        assert!(e.to_string().contains("\"Writing:\""), "{e}");

        let e = parse(&format!("{NGINX} trailing")).unwrap_err();
        assert!(e.to_string().contains("trailing"), "{e}");

        assert!(parse("").unwrap_err().to_string().contains("end of body"));
    }

    #[test]
    fn long_garbage_is_shortened() {
        let e = parse(&"x".repeat(10_000)).unwrap_err();
        assert!(e.to_string().len() < 200, "{e}");
    }
}
