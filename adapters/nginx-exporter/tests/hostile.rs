//! Hostile targets the exporter scrapes, beyond the 100 MB body and malformed numbers of
//! `exporter.rs`: 100 MB of response headers, 100 MB of chunks, chunk sizes and Content-Lengths
//! that overflow 64 bits, a status line of NULs and control bytes, a response dripped one byte
//! every 100 ms. Each is a tiny std TcpListener server in the test (the hostile peer).
//!
//! For each, every scrape answers within `--nginx.timeout` plus `ANSWER_MARGIN` with
//! `nginx_up 0` for it (and 1 for a real stub_status page scraped alongside), no task panics and the
//! exporter keeps serving, and its RSS stays under `RSS_BOUND_KIB` after 10 scrapes of them all.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::{Duration, Instant};

use crate::common::Exporter;

/// Most the exporter's RSS may be after the scrapes: 30 MiB, as for the 100 MB body.
const RSS_BOUND_KIB: u64 = 30 * 1024;

/// How much longer than `--nginx.timeout` (500 ms here) a scrape may take.
const ANSWER_MARGIN: Duration = Duration::from_millis(1500);

/// A target that answers every connection by calling `serve` on it (on its own thread), until
/// the exporter goes away.
fn target(serve: fn(&mut std::net::TcpStream)) -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            std::thread::spawn(move || {
                let mut s = s;
                let mut req = [0u8; 4096];
                let _ = s.read(&mut req);
                serve(&mut s);
            });
        }
    });
    format!("http://127.0.0.1:{port}/stub_status")
}

/// Writes `head`, then `total` bytes made of `unit` repeated, stopping when the peer closes.
fn flood(s: &mut std::net::TcpStream, head: &[u8], unit: &[u8], total: usize) {
    if s.write_all(head).is_err() {
        return;
    }
    let chunk = unit.repeat((64 * 1024 / unit.len()).max(1));
    let mut sent = 0;
    while sent < total {
        if s.write_all(&chunk).is_err() {
            return;
        }
        sent += chunk.len();
    }
}

const GOOD: &[u8] = b"Active connections: 1 \nserver accepts handled requests\n 1 1 1 \nReading: 0 Writing: 1 Waiting: 0 \n";

#[test]
fn hostile_targets_get_nginx_up_0_quickly_with_memory_bounded() {
    let good = target(|s| {
        let _ = write!(
            s,
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            GOOD.len()
        );
        let _ = s.write_all(GOOD);
    });
    let hostile = [
        target(|s| {
            flood(
                s,
                b"HTTP/1.1 200 OK\r\n",
                b"X-Filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n",
                100 << 20,
            )
        }),
        target(|s| {
            let mut unit = b"8000\r\n".to_vec();
            unit.extend_from_slice(&[b'7'; 0x8000]);
            unit.extend_from_slice(b"\r\n");
            flood(
                s,
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
                &unit,
                100 << 20,
            )
        }),
        target(|s| {
            let _ = s.write_all(
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffffffffff\r\nActive",
            );
        }),
        target(|s| {
            let _ = s.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999999\r\n\r\nActive connections: 1",
            );
        }),
        target(|s| {
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: -5\r\n\r\nActive");
        }),
        target(|s| {
            let _ = s.write_all(b"\0\0\0\x1b[31m\xff\xfe HTTP/1.1 200\r\n\r\n");
        }),
        target(|s| {
            let mut page =
                format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", GOOD.len()).into_bytes();
            page.extend_from_slice(GOOD);
            // Bounded: the page is 150 bytes, 15 s at most.
            for b in page {
                if s.write_all(&[b]).is_err() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }),
    ];
    let mut args = vec!["--nginx.timeout=500ms", "--nginx.scrape-uri", &good];
    for h in &hostile {
        args.extend(["--nginx.scrape-uri", h.as_str()]);
    }
    let e = Exporter::ours(&args);
    for round in 0..10 {
        let t = Instant::now();
        let m = e.metrics();
        let took = t.elapsed();
        assert!(
            took < Duration::from_millis(500) + ANSWER_MARGIN,
            "round {round}: the scrape took {took:?}"
        );
        assert_eq!(m.get(&format!("nginx_up{{addr=\"{good}\"}}")), 1.0);
        for h in &hostile {
            assert_eq!(
                m.get(&format!("nginx_up{{addr=\"{h}\"}}")),
                0.0,
                "{h}, round {round}"
            );
        }
    }
    // Still serving, and no task panicked on the way (tokio prints a caught panic on stderr).
    e.get_ok("/healthz");
    let stderr = e.stderr();
    assert!(!stderr.contains("panicked"), "a panic: {stderr}");
    let rss = e.rss_kib();
    eprintln!("RSS after 10 scrapes of 7 hostile targets: {rss} KiB");
    assert!(
        rss < RSS_BOUND_KIB,
        "RSS {rss} KiB (bound {RSS_BOUND_KIB} KiB)"
    );
}
