//! The follower's line splitter (crates/follow/src/split.rs) over random bytes cut into random
//! chunks. Invariants: every line is the file's bytes at its offset, no line is longer than the
//! limit, lines come in file order, and with `split` (not truncate) the lines and their newlines
//! put back together are the input exactly; `consumed` never passes what was read.
#![no_main]

use libfuzzer_sys::fuzz_target;
use podmates_follow::fuzzing::split;
use podmates_follow::{LineKind, LongLines};

fuzz_target!(|data: &[u8]| {
    let Some((&head, rest)) = data.split_first() else {
        return;
    };
    let Some((&cuts, input)) = rest.split_first() else {
        return;
    };
    let max = usize::from(head >> 3) + 1; // 1..=32
    let policy = if head & 1 == 0 {
        LongLines::Split
    } else {
        LongLines::Truncate
    };
    let runs = head & 2 != 0;
    let flush = head & 4 != 0;
    // Chunk lengths from `cuts`: the input is read in pieces of 1..=8 bytes, in a pattern.
    let mut chunks = Vec::new();
    let mut pos = 0;
    let mut k = 0u32;
    while pos < input.len() {
        let len = (usize::from(cuts.rotate_left(k) & 7) + 1).min(input.len() - pos);
        chunks.push(&input[pos..pos + len]);
        pos += len;
        k += 1;
    }
    let (lines, consumed) = split(&chunks, max, policy, runs, flush);
    assert!(consumed <= input.len() as u64, "consumed past the input");
    let mut expect_at = 0u64;
    for l in &lines {
        let off = l.offset as usize;
        assert!(l.offset >= expect_at, "lines out of order");
        assert!(l.bytes.len() <= max, "line longer than the limit");
        assert_eq!(
            &input[off..off + l.bytes.len()],
            &l.bytes[..],
            "line is not the file's bytes"
        );
        let end = off + l.bytes.len();
        match l.kind {
            LineKind::Complete => {
                assert_eq!(
                    input.get(end),
                    Some(&b'\n'),
                    "complete line without its newline"
                );
                expect_at = end as u64 + 1;
            }
            LineKind::Split => expect_at = end as u64,
            LineKind::Truncated => {
                // The rest up to the newline is dropped: the next line starts after it.
                expect_at = input[end..]
                    .iter()
                    .position(|b| *b == b'\n')
                    .map_or(input.len(), |i| end + i + 1) as u64;
            }
            LineKind::Unterminated => {
                assert_eq!(end, input.len(), "unterminated line before the end");
                expect_at = end as u64;
            }
            _ => unreachable!("a kind the splitter does not make"),
        }
        // A piece cut from valid UTF-8 is valid UTF-8 when the limit holds a whole character.
        if max >= 4 && std::str::from_utf8(input).is_ok() {
            assert!(
                std::str::from_utf8(&l.bytes).is_ok(),
                "cut inside a UTF-8 sequence"
            );
        }
    }
    if policy == LongLines::Split {
        let mut joined = Vec::with_capacity(input.len());
        for l in &lines {
            joined.extend_from_slice(&l.bytes);
            if l.kind == LineKind::Complete {
                joined.push(b'\n');
            }
        }
        // What is not yet emitted is the unterminated tail held for the next read.
        assert!(input.starts_with(&joined), "lines do not rebuild the input");
        if flush {
            assert_eq!(
                joined.len(),
                input.len(),
                "flushed lines do not cover the input"
            );
            assert_eq!(consumed, input.len() as u64, "flushed but not consumed");
        } else {
            assert!(
                !input[joined.len()..].contains(&b'\n'),
                "a whole line was held back"
            );
        }
    }
});
