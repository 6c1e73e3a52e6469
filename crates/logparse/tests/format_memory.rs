//! Compiled formats own their literals and names: compiling one many times (a fuzzer, a config
//! reload) must not grow the process. Formats used to leak them to get `&'static str`s.
//!
//! One test in its own binary, so no other test's allocations move the resident size it reads.

use podmates_logparse::AccessFormat;

/// Resident set size of this process in bytes, from /proc/self/statm (pages).
fn rss() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("Linux /proc");
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("statm's second field");
    pages * 4096
}

#[test]
fn compiling_a_format_many_times_does_not_grow_memory() {
    // 256 KiB of literal per format, three per round: 256 rounds would keep 192 MiB if the
    // literals leaked.
    let filler = "x".repeat(256 << 10);
    let nginx = format!("$remote_addr {filler} $status");
    let apache = format!("%h {filler} %>s %{{X-{filler}}}i");
    let line = format!("10.0.0.1 {filler} 200");
    let before = rss();
    for _ in 0..256 {
        let f = AccessFormat::nginx(&nginx).expect("compiles");
        assert_eq!(f.parse(&line).expect("parses").status(), Some(200));
        // An error borrows its literal from the format rather than from a leaked copy.
        let err = f.parse("10.0.0.1 y 200").expect_err("literal missing");
        assert!(err.to_string().contains("expected"));
        let a = AccessFormat::apache(&apache).expect("compiles");
        assert_eq!(a.variables().count(), 3);
    }
    let grown = rss().saturating_sub(before);
    assert!(
        grown < 32 << 20,
        "resident size grew by {} MiB over 256 rounds of 768 KiB of formats",
        grown >> 20
    );
}
