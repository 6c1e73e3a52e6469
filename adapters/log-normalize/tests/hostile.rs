//! Hostile lines through the real binary, in both schemas: NUL bytes, invalid UTF-8, ANSI
//! escapes, a line that is JSON itself, nginx access lines whose user agent carries `","evil":"`,
//! `\n` as text, escaped backslashes, CR and ESC (as nginx escapes them, and raw, as a server that
//! does not escape writes them), and a 10 MB line of all of these.
//!
//! Every output line is one valid JSON object; one per input line, or one per piece of at most
//! `--max-line-bytes` (1 MiB by default) of the 10 MB line, whose pieces put back together are the
//! line; no object or attribute anywhere is named `evil`; the user agent nginx escaped comes out
//! as it was sent. RSS grows by less than `RSS_BOUND_KIB` while the 10 MB line goes through.

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use podmates_testkit::Proc;
use serde_json::Value;

/// Most log-normalize's RSS may grow while a 10 MB line goes through in 1 MiB pieces: 32 MiB
/// (seen: 5 to 8 MiB; before `--max-line-bytes` the line was held whole and a 10 MB line of NULs
/// took 142 MiB, as each byte is written twice as `\u0000`).
const RSS_BOUND_KIB: u64 = 32 * 1024;

/// The user agent sent: JSON-closing quotes, `\n` as text, a backslash, CR, LF, ESC, non-ASCII.
const UA: &str =
    "Mozilla/5.0 \",\"evil\":\"x\" \\n \\\\n \r\n \u{1b}[31mred\u{1b}[0m caf\u{e9} \"}";

/// `s` as nginx writes a variable into an access log (`escape=default`): `"`, `\`, control
/// bytes and bytes from 0x7f as `\xHH`.
fn nginx_escape(s: &str) -> String {
    let mut o = String::new();
    for b in s.bytes() {
        if b < 0x20 || b == b'"' || b == b'\\' || b >= 0x7f {
            o.push_str(&format!("\\x{b:02X}"));
        } else {
            o.push(char::from(b));
        }
    }
    o
}

fn access_line(ua: &[u8]) -> Vec<u8> {
    let mut l =
        b"10.0.0.1 - - [22/Nov/2026:01:46:40 +0000] \"GET /x HTTP/1.1\" 200 5 \"-\" \"".to_vec();
    l.extend_from_slice(ua);
    l.push(b'"');
    l
}

/// The hostile lines (without newlines); the first is nginx's own escaping of [`UA`].
fn short_lines() -> Vec<Vec<u8>> {
    vec![
        access_line(nginx_escape(UA).as_bytes()),
        // Raw: a server that does not escape lets the quote close the field.
        access_line(b"Mozilla\",\"evil\":\"1 \\n \\\\n \\\" \r \x1b[31mred\x1b[0m \xff"),
        b"nul\0in\0\0the middle\0".to_vec(),
        b"invalid utf-8: \xff\xfe \xc3( \xed\xa0\x80 end".to_vec(),
        b"\x1b[2J\x1b[H\x1b]0;title\x07\x1b[31mred\x1b[0m\x08\x7f".to_vec(),
        // JSON and logfmt lines whose values try to close the string; their keys are the
        // line's own (under `json.` in ECS) and may not overwrite the event's.
        br#"{"message":"\",\"evil\":\"x","event":{"original":"forged"},"@timestamp":"forged"}"#
            .to_vec(),
        b"level=info msg=\"\\\",\\\"evil\\\":\\\"\" ts=\"\\\"}\"".to_vec(),
        b"<34>Oct 11 22:14:15 host su[1]: \",\"evil\":\"\r \x1b[0m".to_vec(),
        b"cr \r in the middle\r".to_vec(),
    ]
}

/// 10 MB of quotes, NULs, invalid bytes, two-byte characters, ANSI escapes and CRs.
fn long_line() -> Vec<u8> {
    let unit: &[u8] = b"\",\"evil\":\"\0\xff\xc3\xa9\x1b[0m\r\\n\xc3";
    let mut l = unit.repeat(10_000_000 / unit.len() + 1);
    l.truncate(10_000_000);
    l
}

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

/// Runs log-normalize on `input` given on stdin (after it has settled), returning its stdout and
/// how much its RSS grew.
fn normalize(args: &[&str], input: &[u8]) -> (Vec<u8>, u64) {
    let mut p = Proc::spawn(
        "log-normalize",
        Command::new(env!("CARGO_BIN_EXE_log-normalize"))
            .args(["--no-admin-server", "--log-level", "warn"])
            .args(["--year-reference", "2026-11-22T00:00:00Z"])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped()),
    );
    let pid = p.pid();
    std::thread::sleep(Duration::from_millis(200));
    let baseline = rss_kib(pid).expect("RSS of log-normalize");
    let stop = Arc::new(AtomicBool::new(false));
    let peak = Arc::new(AtomicU64::new(baseline));
    let sampler = {
        let (stop, peak) = (stop.clone(), peak.clone());
        std::thread::spawn(move || {
            while !stop.load(Relaxed) {
                if let Some(k) = rss_kib(pid) {
                    peak.fetch_max(k, Relaxed);
                }
                std::thread::sleep(Duration::from_millis(2));
            }
        })
    };
    let mut stdin = p.child().stdin.take().unwrap();
    let input = input.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let mut out = Vec::new();
    p.child()
        .stdout
        .take()
        .unwrap()
        .read_to_end(&mut out)
        .unwrap();
    writer.join().unwrap().expect("writing stdin");
    let code = p.wait_code(Duration::from_secs(30));
    stop.store(true, Relaxed);
    sampler.join().unwrap();
    assert_eq!(code, 0, "log-normalize failed: {}", p.stderr());
    (out, peak.load(Relaxed).saturating_sub(baseline))
}

/// Every key of every object, and every OTel attribute's `key`, at any depth.
fn names(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                out.push(k.clone());
                if k == "key"
                    && let Some(s) = v.as_str()
                {
                    out.push(s.to_owned());
                }
                names(v, out);
            }
        }
        Value::Array(a) => a.iter().for_each(|v| names(v, out)),
        _ => {}
    }
}

/// The output lines, each parsed and checked to be one object with nothing named `evil`.
fn objects(out: &[u8]) -> Vec<Value> {
    assert_eq!(out.last(), Some(&b'\n'), "output ends with a newline");
    out[..out.len() - 1]
        .split(|b| *b == b'\n')
        .enumerate()
        .map(|(i, l)| {
            let v: Value = serde_json::from_slice(l).unwrap_or_else(|e| {
                panic!(
                    "output line {i} is not JSON ({e}): {:?}",
                    String::from_utf8_lossy(&l[..l.len().min(300)])
                )
            });
            assert!(v.is_object(), "output line {i} is not an object");
            let mut n = Vec::new();
            names(&v, &mut n);
            assert!(
                !n.iter().any(|k| k.contains("evil")),
                "line {i}: injected name in {v}"
            );
            v
        })
        .collect()
}

/// The original line an event carries, in either schema (OTel: `log.record.original` where the
/// body is the line's message, else the body).
fn original(v: &Value) -> &str {
    if let Some(s) = v["event"]["original"].as_str() {
        return s;
    }
    let record = &v["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0];
    attribute(record, "log.record.original")
        .or_else(|| record["body"]["stringValue"].as_str())
        .unwrap_or_else(|| panic!("no original in {v}"))
}

/// The string attribute `key` of an OTel log record.
fn attribute<'a>(record: &'a Value, key: &str) -> Option<&'a str> {
    record["attributes"]
        .as_array()?
        .iter()
        .find(|a| a["key"] == key)?["value"]["stringValue"]
        .as_str()
}

/// The user agent an event carries, in either schema.
fn user_agent(v: &Value) -> Option<&str> {
    v["user_agent"]["original"].as_str().or_else(|| {
        attribute(
            &v["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0],
            "user_agent.original",
        )
    })
}

fn repaired(line: &[u8]) -> String {
    String::from_utf8_lossy(line.strip_suffix(b"\r").unwrap_or(line)).into_owned()
}

#[test]
fn short_hostile_lines_give_one_clean_object_each() {
    let lines = short_lines();
    let mut input = lines.join(&b'\n');
    input.push(b'\n');
    for schema in ["ecs", "otel"] {
        let (out, _) = normalize(&["--schema", schema], &input);
        let objs = objects(&out);
        assert_eq!(objs.len(), lines.len(), "{schema}: one object per line");
        for (i, (o, l)) in objs.iter().zip(&lines).enumerate() {
            assert_eq!(original(o), repaired(l), "{schema}: line {i}'s original");
        }
        // nginx's escaping undone: the user agent as the client sent it.
        assert_eq!(user_agent(&objs[0]), Some(UA), "{schema}: {}", objs[0]);
    }
}

#[test]
fn a_10_mb_line_comes_out_in_pieces_with_memory_bounded() {
    let long = long_line();
    let mut input = b"first\n".to_vec();
    input.extend_from_slice(&long);
    input.extend_from_slice(b"\nlast\n");
    for schema in ["ecs", "otel"] {
        let (out, grew) = normalize(&["--schema", schema], &input);
        eprintln!("{schema}: RSS grew by {grew} KiB with a 10 MB line in 1 MiB pieces");
        assert!(
            grew < RSS_BOUND_KIB,
            "{schema}: RSS grew by {grew} KiB (bound {RSS_BOUND_KIB} KiB)"
        );
        let objs = objects(&out);
        assert_eq!(original(&objs[0]), "first");
        assert_eq!(original(objs.last().unwrap()), "last");
        let pieces: Vec<&str> = objs[1..objs.len() - 1].iter().map(original).collect();
        // 10 MB in pieces of at most 1 MiB, each cut moved back at most 3 bytes to keep a
        // character whole.
        assert_eq!(pieces.len(), 10, "{schema}: pieces of the 10 MB line");
        assert!(
            pieces.concat() == String::from_utf8_lossy(&long),
            "{schema}: the pieces are not the line"
        );
    }
    // --max-line-bytes above the line: one event for it.
    let (out, _) = normalize(&["--max-line-bytes", "16777216"], &input);
    let objs = objects(&out);
    assert_eq!(objs.len(), 3);
    assert!(original(&objs[1]) == String::from_utf8_lossy(&long));
}
