//! Cutting a byte stream into lines: partial lines held until their newline, over-long lines split
//! or truncated without cutting a UTF-8 sequence in two. Pure: no I/O, so every case is a unit test.

use std::path::Path;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};

use crate::{Line, LineKind, LongLines};

/// What the splitter produces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Item {
    /// One line (or piece of a line).
    Line(Line),
    /// Consecutive whole lines exactly as in the file, each with its newline, starting at file
    /// offset `offset`: produced instead of single lines when the splitter makes runs.
    Run {
        bytes: Bytes,
        offset: u64,
        lines: usize,
    },
}

impl Item {
    /// How many lines (or pieces) it holds.
    pub(crate) fn lines(&self) -> usize {
        match self {
            Item::Line(_) => 1,
            Item::Run { lines, .. } => *lines,
        }
    }
}

/// Appends the lines of `item` to `out`.
pub(crate) fn expand(item: Item, path: &Arc<Path>, out: &mut Vec<Line>) {
    match item {
        Item::Line(l) => out.push(l),
        Item::Run { bytes, offset, .. } => {
            let mut pos = 0;
            while pos < bytes.len() {
                let nl = memchr::memchr(b'\n', &bytes[pos..]).map_or(bytes.len(), |i| pos + i);
                out.push(Line {
                    path: path.clone(),
                    bytes: bytes.slice(pos..nl),
                    offset: offset + pos as u64,
                    kind: LineKind::Complete,
                });
                pos = nl + 1;
            }
        }
    }
}

/// Splits one file's bytes into [`Line`]s.
#[derive(Debug)]
pub(crate) struct Splitter {
    /// Longest line emitted in one piece.
    max: usize,
    /// What to do with longer lines.
    policy: LongLines,
    /// Bytes of the current line read so far, without a newline yet.
    partial: BytesMut,
    /// File offset of `partial[0]`.
    partial_start: u64,
    /// After a truncated line: dropping bytes until the next newline.
    skipping: bool,
    /// Whether consecutive whole lines are emitted as one [`Item::Run`].
    runs: bool,
    /// File offset just past the last byte that an emitted line accounts for: the resume point a
    /// checkpoint may record.
    consumed: u64,
}

impl Splitter {
    pub(crate) fn new(max: usize, policy: LongLines, start: u64, runs: bool) -> Self {
        Self {
            runs,
            max: max.max(1),
            policy,
            partial: BytesMut::new(),
            partial_start: start,
            skipping: false,
            consumed: start,
        }
    }

    /// Forgets everything held and restarts at `pos` (the file was truncated).
    pub(crate) fn reset(&mut self, pos: u64) {
        self.partial = BytesMut::new();
        self.partial_start = pos;
        self.skipping = false;
        self.consumed = pos;
    }

    /// The resume point: just past the last byte covered by an emitted line.
    pub(crate) fn consumed(&self) -> u64 {
        self.consumed
    }

    /// Bytes held in an unterminated line.
    #[cfg(test)]
    pub(crate) fn pending(&self) -> usize {
        self.partial.len()
    }

    /// Cuts `chunk`, read at file offset `chunk_off`, into lines appended to `out`.
    pub(crate) fn push(
        &mut self,
        chunk: &Bytes,
        chunk_off: u64,
        path: &Arc<Path>,
        out: &mut Vec<Item>,
    ) {
        let mut pos = 0;
        // The run being built: chunk range and line count.
        let mut run: Option<(usize, usize, usize)> = None;
        let flush_run = |run: &mut Option<(usize, usize, usize)>, out: &mut Vec<Item>| {
            if let Some((start, end, lines)) = run.take() {
                out.push(Item::Run {
                    bytes: chunk.slice(start..end),
                    offset: chunk_off + start as u64,
                    lines,
                });
            }
        };
        while pos < chunk.len() {
            match memchr::memchr(b'\n', &chunk[pos..]) {
                Some(i) => {
                    let nl = pos + i;
                    let next = chunk_off + nl as u64 + 1;
                    if self.skipping {
                        self.skipping = false;
                    } else if self.runs && self.partial.is_empty() && nl - pos <= self.max {
                        // Whole lines in a row are handed over as one slice, newlines included.
                        run = match run {
                            Some((start, end, n)) if end == pos => Some((start, nl + 1, n + 1)),
                            other => {
                                let mut other = other;
                                flush_run(&mut other, out);
                                Some((pos, nl + 1, 1))
                            }
                        };
                    } else if self.partial.is_empty() {
                        flush_run(&mut run, out);
                        // The common case: the whole line sits in this chunk, so it is a slice of
                        // the chunk and costs no copy.
                        self.emit(chunk.slice(pos..nl), chunk_off + pos as u64, path, out);
                    } else {
                        flush_run(&mut run, out);
                        self.partial.extend_from_slice(&chunk[pos..nl]);
                        let line = self.partial.split().freeze();
                        self.emit(line, self.partial_start, path, out);
                    }
                    self.consumed = next;
                    self.partial_start = next;
                    pos = nl + 1;
                }
                None => {
                    flush_run(&mut run, out);
                    if !self.skipping {
                        if self.partial.is_empty() {
                            self.partial_start = chunk_off + pos as u64;
                        }
                        self.partial.extend_from_slice(&chunk[pos..]);
                        self.limit_partial(path, out);
                    }
                    pos = chunk.len();
                }
            }
        }
        flush_run(&mut run, out);
    }

    /// Emits what is held as an [`LineKind::Unterminated`] line: at shutdown, or when a file is
    /// closed for good.
    pub(crate) fn flush(&mut self, path: &Arc<Path>, out: &mut Vec<Item>) {
        if self.partial.is_empty() {
            return;
        }
        let bytes = self.partial.split().freeze();
        let end = self.partial_start + bytes.len() as u64;
        out.push(Item::Line(Line {
            path: path.clone(),
            bytes,
            offset: self.partial_start,
            kind: LineKind::Unterminated,
        }));
        self.partial_start = end;
        self.consumed = end;
    }

    /// A complete line (its newline seen) at `offset`: emitted whole, or in pieces when too long.
    fn emit(&mut self, mut line: Bytes, mut offset: u64, path: &Arc<Path>, out: &mut Vec<Item>) {
        while line.len() > self.max {
            let cut = utf8_cut(&line, self.max);
            let head = line.split_to(cut);
            match self.policy {
                LongLines::Split => {
                    out.push(Item::Line(Line {
                        path: path.clone(),
                        bytes: head,
                        offset,
                        kind: LineKind::Split,
                    }));
                    offset += cut as u64;
                }
                LongLines::Truncate => {
                    out.push(Item::Line(Line {
                        path: path.clone(),
                        bytes: head,
                        offset,
                        kind: LineKind::Truncated,
                    }));
                    return;
                }
            }
        }
        out.push(Item::Line(Line {
            path: path.clone(),
            bytes: line,
            offset,
            kind: LineKind::Complete,
        }));
    }

    /// Keeps the held partial line within `max` bytes, emitting pieces as they fill up.
    fn limit_partial(&mut self, path: &Arc<Path>, out: &mut Vec<Item>) {
        while self.partial.len() > self.max {
            let cut = utf8_cut(&self.partial, self.max);
            let head = self.partial.split_to(cut).freeze();
            let offset = self.partial_start;
            self.partial_start += cut as u64;
            match self.policy {
                LongLines::Split => {
                    out.push(Item::Line(Line {
                        path: path.clone(),
                        bytes: head,
                        offset,
                        kind: LineKind::Split,
                    }));
                    self.consumed = self.partial_start;
                }
                LongLines::Truncate => {
                    out.push(Item::Line(Line {
                        path: path.clone(),
                        bytes: head,
                        offset,
                        kind: LineKind::Truncated,
                    }));
                    self.consumed = self.partial_start;
                    self.partial.clear();
                    self.skipping = true;
                    return;
                }
            }
        }
    }
}

/// Where to cut `buf` (longer than `max`) so that the head holds at most `max` bytes and no UTF-8
/// sequence is cut in two. Bytes that are not UTF-8 are cut at `max`.
pub fn utf8_cut(buf: &[u8], max: usize) -> usize {
    debug_assert!(buf.len() > max);
    let is_cont = |b: u8| b & 0xC0 == 0x80;
    let mut cut = max;
    // A UTF-8 sequence is at most 4 bytes: its lead byte is at most 3 places before `max`.
    while cut > 0 && max - cut < 3 && is_cont(buf[cut]) {
        cut -= 1;
    }
    if cut == 0 || is_cont(buf[cut]) {
        return max;
    }
    if cut < max {
        // buf[cut] is a lead byte: cut before it only if its sequence really reaches past `max`.
        let lead = buf[cut];
        let len = if lead >= 0xF0 {
            4
        } else if lead >= 0xE0 {
            3
        } else if lead >= 0xC0 {
            2
        } else {
            1
        };
        if cut + len <= max {
            return max;
        }
    }
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path() -> Arc<Path> {
        Arc::from(Path::new("/x.log"))
    }

    fn run(
        max: usize,
        policy: LongLines,
        chunks: &[&[u8]],
    ) -> (Vec<(Vec<u8>, u64, LineKind)>, Splitter) {
        run_with(max, policy, chunks, false)
    }

    fn run_with(
        max: usize,
        policy: LongLines,
        chunks: &[&[u8]],
        runs: bool,
    ) -> (Vec<(Vec<u8>, u64, LineKind)>, Splitter) {
        let p = path();
        let mut s = Splitter::new(max, policy, 0, runs);
        let mut out = Vec::new();
        let mut off = 0u64;
        for c in chunks {
            s.push(&Bytes::copy_from_slice(c), off, &p, &mut out);
            off += c.len() as u64;
        }
        let mut expanded = Vec::new();
        for item in out {
            expand(item, &p, &mut expanded);
        }
        let lines = expanded
            .into_iter()
            .map(|l| (l.bytes.to_vec(), l.offset, l.kind))
            .collect();
        (lines, s)
    }

    #[test]
    fn lines_across_chunks_with_offsets() {
        let (lines, s) = run(100, LongLines::Split, &[b"ab\ncd", b"e\nf", b"g"]);
        assert_eq!(
            lines,
            vec![
                (b"ab".to_vec(), 0, LineKind::Complete),
                (b"cde".to_vec(), 3, LineKind::Complete)
            ]
        );
        assert_eq!(s.pending(), 2);
        assert_eq!(s.consumed(), 7);
    }

    #[test]
    fn partial_flushed_as_unterminated() {
        let p = path();
        let mut s = Splitter::new(100, LongLines::Split, 10, false);
        let mut out = Vec::new();
        s.push(&Bytes::from_static(b"abc"), 10, &p, &mut out);
        assert!(out.is_empty());
        s.flush(&p, &mut out);
        let Item::Line(l) = &out[0] else {
            panic!("a line")
        };
        assert_eq!(l.bytes, Bytes::from_static(b"abc"));
        assert_eq!(l.offset, 10);
        assert_eq!(l.kind, LineKind::Unterminated);
        assert_eq!(s.consumed(), 13);
    }

    #[test]
    fn long_line_split_in_one_chunk_and_across_chunks() {
        let (lines, _) = run(4, LongLines::Split, &[b"abcdefghij\n"]);
        let texts: Vec<&[u8]> = lines.iter().map(|l| l.0.as_slice()).collect();
        assert_eq!(texts, vec![&b"abcd"[..], b"efgh", b"ij"]);
        assert_eq!(lines[2].2, LineKind::Complete);
        assert_eq!(lines[1].1, 4);

        let (lines, _) = run(4, LongLines::Split, &[b"abc", b"defg", b"hij\nk\n"]);
        let texts: Vec<&[u8]> = lines.iter().map(|l| l.0.as_slice()).collect();
        assert_eq!(texts, vec![&b"abcd"[..], b"efgh", b"ij", b"k"]);
        assert_eq!(
            lines.iter().map(|l| l.1).collect::<Vec<_>>(),
            vec![0, 4, 8, 11]
        );
    }

    #[test]
    fn long_line_truncated_then_following_continues() {
        let (lines, s) = run(4, LongLines::Truncate, &[b"abcdefghij\nxy\n"]);
        assert_eq!(
            lines,
            vec![
                (b"abcd".to_vec(), 0, LineKind::Truncated),
                (b"xy".to_vec(), 11, LineKind::Complete)
            ]
        );
        assert_eq!(s.consumed(), 14);
        let (lines, _) = run(4, LongLines::Truncate, &[b"abcdef", b"ghi", b"j\nxy\n"]);
        assert_eq!(
            lines,
            vec![
                (b"abcd".to_vec(), 0, LineKind::Truncated),
                (b"xy".to_vec(), 11, LineKind::Complete)
            ]
        );
    }

    #[test]
    fn utf8_never_cut() {
        // "aé€😀" = 61 | c3 a9 | e2 82 ac | f0 9f 98 80
        let s = "aé€😀b".as_bytes();
        for max in 1..s.len() {
            let cut = utf8_cut(s, max);
            assert!(cut <= max);
            assert!(
                std::str::from_utf8(&s[..cut]).is_ok(),
                "max {max} cut {cut}"
            );
            assert!(cut > 0);
        }
        assert_eq!(utf8_cut(s, 2), 1);
        assert_eq!(utf8_cut(s, 3), 3);
        assert_eq!(utf8_cut(s, 5), 3);
        // Not UTF-8: cut where asked.
        assert_eq!(utf8_cut(&[0x80, 0x80, 0x80, 0x80, 0x80, 0x80], 4), 4);
        assert_eq!(utf8_cut(&[0xff, 0xfe, 0xfd], 2), 2);
    }

    #[test]
    fn split_pieces_are_valid_utf8() {
        let text = "é".repeat(50) + "\n";
        let (lines, _) = run(7, LongLines::Split, &[text.as_bytes()]);
        let mut joined = Vec::new();
        for (b, _, _) in &lines {
            assert!(b.len() <= 7);
            assert!(std::str::from_utf8(b).is_ok());
            joined.extend_from_slice(b);
        }
        assert_eq!(joined, "é".repeat(50).as_bytes());
    }

    #[test]
    fn non_utf8_bytes_pass_unchanged() {
        let (lines, _) = run(100, LongLines::Split, &[b"\xff\xfe\x00abc\n"]);
        assert_eq!(lines[0].0, b"\xff\xfe\x00abc".to_vec());
    }

    #[test]
    fn runs_yield_the_same_lines_for_any_chunking() {
        let mut text = Vec::new();
        for n in 0..200u32 {
            let len = (n * 7) % 23;
            text.extend(std::iter::repeat_n(b'a' + (n % 26) as u8, len as usize));
            text.push(b'\n');
        }
        text.extend_from_slice(b"tail");
        for policy in [LongLines::Split, LongLines::Truncate] {
            for size in [1usize, 3, 16, 64, 1000, text.len()] {
                let chunks: Vec<&[u8]> = text.chunks(size).collect();
                let (single, s1) = run_with(10, policy, &chunks, false);
                let (runs, s2) = run_with(10, policy, &chunks, true);
                assert_eq!(single, runs, "chunks of {size}, {policy:?}");
                assert_eq!(s1.consumed(), s2.consumed());
            }
        }
    }

    #[test]
    fn runs_hand_over_whole_lines_in_one_slice() {
        let p = path();
        let mut s = Splitter::new(100, LongLines::Split, 0, true);
        let mut out = Vec::new();
        s.push(&Bytes::from_static(b"ab\ncd\nef"), 0, &p, &mut out);
        assert_eq!(
            out,
            vec![Item::Run {
                bytes: Bytes::from_static(b"ab\ncd\n"),
                offset: 0,
                lines: 2
            }]
        );
        out.clear();
        s.push(&Bytes::from_static(b"g\nhi\n"), 8, &p, &mut out);
        assert_eq!(out.len(), 2);
        assert_eq!(
            out[1],
            Item::Run {
                bytes: Bytes::from_static(b"hi\n"),
                offset: 10,
                lines: 1
            }
        );
    }
}
