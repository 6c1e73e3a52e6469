//! log-normalize: the adapter container that reads the logs of nginx, Apache, syslog daemons and
//! applications (files in a shared volume, or stdin) and writes them to stdout as JSON lines in one
//! schema, Elastic Common Schema or OpenTelemetry, so the log pipeline parses one thing.
//!
//! - [`parse`]: chooses the parser for each line (fixed by `--format`, or detected from the
//!   line's first bytes) and maps its record onto an [`event::Event`];
//! - [`output`]: writes an event as ECS (nested objects) or as an OTLP JSON log record;
//! - [`json`]: the JSON writing both share, straight into a reused buffer;
//! - this module: the input loop (64 KiB reads validated as UTF-8 at once, lines split with
//!   `memchr`, one output buffer written per read), metrics, and `--follow` through
//!   `podmates-follow`.
//!
//! No line is ever dropped: one that does not parse is written with `event.original`, what time
//! could be read, and `error.message`; invalid UTF-8 is repaired lossily and tagged.

pub mod ecs_fields;
pub mod event;
pub mod json;
pub mod output;
pub mod parse;
pub mod syslog_sink;

use std::io::{self, Read, Write};
use std::path::PathBuf;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use tokio_util::sync::CancellationToken;

use podmates_logparse::Timestamp;
use podmates_runtime::Context;

use crate::event::{Event, Kind};
use crate::output::Writer;
use crate::parse::{Parsers, TimeCache};

pub use crate::output::{AddField, Schema};
pub use crate::parse::{Access, Format, Pattern};

/// Where lines come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// Standard input, read to its end.
    Stdin,
    /// A file read to its end (without `--follow`), or a path or glob to follow.
    Path(String),
}

/// The validated configuration.
#[derive(Debug)]
pub struct Config {
    /// Inputs, in order.
    pub inputs: Vec<Input>,
    /// Follow the paths (globs, rotation, checkpoints) instead of reading them once.
    pub follow: bool,
    /// With `--follow`: where offsets are kept across restarts.
    pub checkpoint_file: Option<PathBuf>,
    /// The parsers.
    pub parsers: Parsers,
    /// Output schema.
    pub schema: Schema,
    /// `--add-field`s.
    pub add_fields: Vec<AddField>,
    /// `--add-resource`s (OTel Resource attributes).
    pub add_resource: Vec<AddField>,
    /// `--syslog-tcp`: ship to a syslog receiver instead of stdout.
    pub syslog_tcp: Option<String>,
    /// `--max-line-bytes`: longer lines are normalized in pieces of at most this many bytes.
    pub max_line_bytes: usize,
}

/// What stops a run; each keeps its cause as its `source`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An input could not be opened or read.
    #[error("cannot read {path}: {source}")]
    Input {
        /// The input.
        path: String,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// stdout could not be written (closed pipe, full disk).
    #[error("cannot write the output: {0}")]
    Output(#[source] io::Error),
    /// The follower failed.
    #[error("--follow: {0}")]
    Follow(#[source] podmates_follow::Error),
    /// The blocking reader task died.
    #[error("reader task failed: {0}")]
    Task(String),
}

/// Labels of `log_normalize_lines_total`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LineLabels {
    format: &'static str,
    result: &'static str,
}

/// The counters on `/metrics`. Counted per line into plain integers and added to the shared
/// counters once per read, so the hot loop touches no atomics.
#[derive(Debug, Clone)]
pub struct Metrics {
    parsed: Vec<Counter>,
    failed: Vec<Counter>,
    invalid_utf8: Counter,
    bytes: Counter,
}

impl Metrics {
    /// Registers the counters (every format's, at zero, so dashboards see them from the start).
    pub fn register(registry: &mut Registry) -> Self {
        let lines = Family::<LineLabels, Counter>::default();
        let get = |result| {
            Kind::ALL
                .iter()
                .map(|k| {
                    lines
                        .get_or_create(&LineLabels {
                            format: k.label(),
                            result,
                        })
                        .clone()
                })
                .collect::<Vec<_>>()
        };
        let parsed = get("parsed");
        let failed = get("failed");
        let invalid_utf8 = Counter::default();
        let bytes = Counter::default();
        registry.register(
            "log_normalize_lines",
            "Lines read, by the format that read them and whether they parsed",
            lines,
        );
        registry.register(
            "log_normalize_invalid_utf8_lines",
            "Lines that were not valid UTF-8 and were repaired",
            invalid_utf8.clone(),
        );
        registry.register(
            "log_normalize_input_bytes",
            "Bytes read, newlines included",
            bytes.clone(),
        );
        Self {
            parsed,
            failed,
            invalid_utf8,
            bytes,
        }
    }

    fn add(&self, c: &mut Counts) {
        for (i, k) in Kind::ALL.iter().enumerate() {
            let _ = k;
            if c.parsed[i] > 0 {
                self.parsed[i].inc_by(c.parsed[i]);
            }
            if c.failed[i] > 0 {
                self.failed[i].inc_by(c.failed[i]);
            }
        }
        if c.invalid_utf8 > 0 {
            self.invalid_utf8.inc_by(c.invalid_utf8);
        }
        if c.bytes > 0 {
            self.bytes.inc_by(c.bytes);
        }
        *c = Counts::default();
    }
}

#[derive(Debug, Default)]
struct Counts {
    parsed: [u64; Kind::ALL.len()],
    failed: [u64; Kind::ALL.len()],
    invalid_utf8: u64,
    bytes: u64,
}

/// Lines in, JSON lines out: the parsers and writer with their per-line caches.
#[derive(Debug)]
pub struct Normalizer {
    parsers: Parsers,
    times: TimeCache,
    writer: Writer,
    counts: Counts,
    /// `--syslog-tcp`: this host's name and the JSON of the line being framed.
    framing: Option<(String, Vec<u8>)>,
    /// Longest piece of a line normalized as one event (`--max-line-bytes`).
    max_line: usize,
}

/// Default of `--max-line-bytes`: the follower's default, so that a long line gives the same
/// events read once or followed.
pub const DEFAULT_MAX_LINE_BYTES: usize = 1024 * 1024;

impl Normalizer {
    /// A normalizer for the given parsers, schema and added fields.
    pub fn new(parsers: Parsers, schema: Schema, add_fields: Vec<AddField>) -> Self {
        Self {
            parsers,
            times: TimeCache::default(),
            writer: Writer::new(schema, add_fields),
            counts: Counts::default(),
            framing: None,
            max_line: DEFAULT_MAX_LINE_BYTES,
        }
    }

    /// Lines longer than `max` bytes (at least 1) are normalized in pieces of at most `max`
    /// bytes, each its own event, cut where no UTF-8 sequence is cut in two: memory stays
    /// bounded whatever the input (a file without a newline, a runaway logger).
    pub fn with_max_line_bytes(mut self, max: usize) -> Self {
        self.max_line = max.max(1);
        self
    }

    /// The `--max-line-bytes` in force.
    pub fn max_line_bytes(&self) -> usize {
        self.max_line
    }

    /// Frames each line as an RFC 5424 message with octet counting (`--syslog-tcp`), with
    /// `hostname` for events that carry no host of their own.
    pub fn with_syslog_framing(mut self, hostname: String) -> Self {
        self.framing = Some((hostname, Vec::new()));
        self
    }

    /// Appends the JSON line for one input line (without its newline). `observed` is when it was
    /// read (OTel's `observedTimeUnixNano`).
    pub fn line(&mut self, raw: &[u8], observed: Timestamp, out: &mut Vec<u8>) {
        let mut raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        while raw.len() > self.max_line {
            let cut = podmates_follow::utf8_cut(raw, self.max_line);
            self.piece(&raw[..cut], observed, out);
            raw = &raw[cut..];
        }
        self.piece(raw, observed, out);
    }

    /// Appends the JSON line for a piece of a line that is not its end (nothing is stripped).
    pub fn piece(&mut self, raw: &[u8], observed: Timestamp, out: &mut Vec<u8>) {
        match std::str::from_utf8(raw) {
            Ok(s) => self.text(s, false, observed, out),
            Err(_) => {
                let repaired = String::from_utf8_lossy(raw);
                self.counts.invalid_utf8 += 1;
                self.text(&repaired, true, observed, out);
            }
        }
    }

    /// [`line`](Self::line) for a line already known to be UTF-8 (a `\r` before its newline is
    /// dropped here).
    fn valid_line(&mut self, line: &str, observed: Timestamp, out: &mut Vec<u8>) {
        if line.len() > self.max_line {
            return self.line(line.as_bytes(), observed, out);
        }
        let line = line.strip_suffix('\r').unwrap_or(line);
        self.text(line, false, observed, out);
    }

    /// Parses and writes one line of text (`invalid`: it was repaired from invalid UTF-8).
    fn text(&mut self, line: &str, invalid: bool, observed: Timestamp, out: &mut Vec<u8>) {
        // Output is a few times the input; one reservation per line instead of one per field.
        out.reserve(line.len() * 4 + 512);
        self.counts.bytes += line.len() as u64 + 1;
        let mut ev = Event::default();
        parse::parse(&self.parsers, &mut self.times, line, &mut ev);
        ev.invalid_utf8 = invalid;
        let k = ev.kind.index();
        if ev.error.is_some() {
            self.counts.failed[k] += 1;
        } else {
            self.counts.parsed[k] += 1;
        }
        match &mut self.framing {
            None => self.writer.write(&ev, observed, out),
            Some((host, json)) => {
                json.clear();
                syslog_sink::header(&ev, host, json);
                self.writer.write(&ev, observed, json);
                // The JSON's newline is not part of the message.
                json.pop();
                out.extend_from_slice(json.len().to_string().as_bytes());
                out.push(b' ');
                out.extend_from_slice(json);
            }
        }
    }

    /// Adds OTel Resource attributes (`--add-resource`).
    pub fn with_resource(mut self, resource: Vec<AddField>) -> Self {
        self.writer = self.writer.with_resource(resource);
        self
    }

    fn flush_metrics(&mut self, m: Option<&Metrics>) {
        if let Some(m) = m {
            m.add(&mut self.counts);
        }
    }

    /// Reads `r` to its end, writing JSON lines to `w`. Lines are split on `\n` (a `\r` before it
    /// is dropped); a last line without a newline is processed too. Stops early, between reads,
    /// when `stop` is cancelled.
    pub fn read_to_end(
        &mut self,
        r: &mut dyn Read,
        w: &mut dyn Write,
        metrics: Option<&Metrics>,
        stop: &CancellationToken,
    ) -> Result<(), ReadError> {
        // Reads of 64 KiB: the output of one read (about 4 times as large) then stays in the
        // CPU's L2 cache until written, where 1 MiB reads measured about 8% more CPU time.
        // Still only one read and one write per ~400 lines.
        const READ: usize = 64 << 10;
        let mut buf = vec![0u8; 2 * READ];
        let mut out = Vec::with_capacity(4 * READ);
        let (mut start, mut end) = (0usize, 0usize);
        loop {
            if buf.len() - end < READ {
                if start > 0 {
                    buf.copy_within(start..end, 0);
                    end -= start;
                    start = 0;
                }
                if buf.len() - end < READ {
                    // A line longer than the buffer: grow, up to --max-line-bytes plus a read
                    // (a longer one is cut below).
                    buf.resize(buf.len() * 2, 0);
                }
            }
            let n = match r.read(&mut buf[end..]) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(ReadError::Input(e)),
            };
            let observed = Timestamp::now();
            if n == 0 {
                if start < end {
                    self.line(&buf[start..end], observed, &mut out);
                }
                w.write_all(&out).map_err(ReadError::Output)?;
                w.flush().map_err(ReadError::Output)?;
                self.flush_metrics(metrics);
                return Ok(());
            }
            let scan_from = end;
            end += n;
            // The complete lines read so far: validated as UTF-8 in one pass (far cheaper than
            // line by line), then split as text; line by line only when some line is invalid.
            if let Some(last) = memchr::memrchr(b'\n', &buf[scan_from..end]) {
                let complete = &buf[start..scan_from + last + 1];
                match std::str::from_utf8(complete) {
                    Ok(text) => {
                        let mut line_start = 0;
                        for nl in memchr::memchr_iter(b'\n', text.as_bytes()) {
                            self.valid_line(&text[line_start..nl], observed, &mut out);
                            line_start = nl + 1;
                        }
                    }
                    Err(_) => {
                        let mut line_start = 0;
                        for nl in memchr::memchr_iter(b'\n', complete) {
                            self.line(&complete[line_start..nl], observed, &mut out);
                            line_start = nl + 1;
                        }
                    }
                }
                start = scan_from + last + 1;
            }
            // No newline within --max-line-bytes: the line so far goes out in pieces, keeping
            // what could still be the start of a UTF-8 sequence for the next read.
            while end - start > self.max_line {
                let cut = podmates_follow::utf8_cut(&buf[start..end], self.max_line);
                self.piece(&buf[start..start + cut], observed, &mut out);
                start += cut;
            }
            if !out.is_empty() {
                w.write_all(&out).map_err(ReadError::Output)?;
                out.clear();
            }
            self.flush_metrics(metrics);
            if stop.is_cancelled() {
                w.flush().map_err(ReadError::Output)?;
                return Ok(());
            }
        }
    }
}

/// Which side of [`Normalizer::read_to_end`] failed.
#[derive(Debug)]
pub enum ReadError {
    /// Reading the input.
    Input(io::Error),
    /// Writing the output.
    Output(io::Error),
}

/// Runs log-normalize until its inputs end (or, with `--follow`, until shutdown).
pub async fn run(config: Config, ctx: Context) -> Result<(), Error> {
    let metrics = ctx.admin.with_registry(Metrics::register);
    let Config {
        inputs,
        follow,
        checkpoint_file,
        parsers,
        schema,
        add_fields,
        add_resource,
        syslog_tcp,
        max_line_bytes,
    } = config;
    let mut norm = Normalizer::new(parsers, schema, add_fields)
        .with_resource(add_resource)
        .with_max_line_bytes(max_line_bytes);
    if syslog_tcp.is_some() {
        norm = norm.with_syslog_framing(syslog_sink::local_hostname());
    }
    let stop = ctx.shutdown.token();
    let sink = move || -> Box<dyn Write + Send> {
        match syslog_tcp {
            Some(addr) => Box::new(syslog_sink::SyslogTcp::new(addr, stop.clone())),
            None => Box::new(io::stdout()),
        }
    };
    if follow {
        return follow_paths(norm, inputs, checkpoint_file, metrics, sink(), ctx).await;
    }
    ctx.admin.readiness().set(true);
    let stop = ctx.shutdown.token();
    tokio::task::spawn_blocking(move || {
        // The output buffer already batches writes: one write per read.
        let mut w = sink();
        for input in inputs {
            let (name, res) = match &input {
                Input::Stdin => (
                    "stdin".to_owned(),
                    norm.read_to_end(&mut io::stdin().lock(), &mut w, Some(&metrics), &stop),
                ),
                Input::Path(p) => {
                    let mut f = std::fs::File::open(p).map_err(|e| Error::Input {
                        path: p.clone(),
                        source: e,
                    })?;
                    (
                        p.clone(),
                        norm.read_to_end(&mut f, &mut w, Some(&metrics), &stop),
                    )
                }
            };
            match res {
                Ok(()) => {}
                Err(ReadError::Input(e)) => {
                    return Err(Error::Input {
                        path: name,
                        source: e,
                    });
                }
                Err(ReadError::Output(e)) => return Err(Error::Output(e)),
            }
            if stop.is_cancelled() {
                break;
            }
        }
        Ok(())
    })
    .await
    .map_err(|e| Error::Task(e.to_string()))?
}

async fn follow_paths(
    mut norm: Normalizer,
    inputs: Vec<Input>,
    checkpoint_file: Option<PathBuf>,
    metrics: Metrics,
    mut stdout: Box<dyn Write + Send>,
    ctx: Context,
) -> Result<(), Error> {
    let paths: Vec<String> = inputs
        .into_iter()
        .filter_map(|i| match i {
            Input::Path(p) => Some(p),
            Input::Stdin => None,
        })
        .collect();
    let mut fc = podmates_follow::Config::new(paths);
    fc.checkpoint_file = checkpoint_file;
    fc.max_line_bytes = norm.max_line_bytes();
    let mut follower =
        podmates_follow::Follower::start(fc, ctx.shutdown.token()).map_err(Error::Follow)?;
    ctx.admin.with_registry(|r| {
        follower
            .metrics()
            .register(r.sub_registry_with_prefix("log_normalize"));
    });
    // Ready once the files are open and their metrics registered.
    ctx.admin.readiness().set(true);
    let mut out = Vec::with_capacity(1 << 20);
    while let Some(line) = follower.next().await {
        if line.kind == podmates_follow::LineKind::Split {
            norm.piece(&line.bytes, Timestamp::now(), &mut out);
        } else {
            norm.line(&line.bytes, Timestamp::now(), &mut out);
        }
        if follower.is_idle() || out.len() > (1 << 20) {
            stdout.write_all(&out).map_err(Error::Output)?;
            stdout.flush().map_err(Error::Output)?;
            out.clear();
            norm.flush_metrics(Some(&metrics));
            if follower.is_idle() {
                follower.commit();
            }
        }
    }
    stdout.write_all(&out).map_err(Error::Output)?;
    stdout.flush().map_err(Error::Output)?;
    norm.flush_metrics(Some(&metrics));
    follower.commit();
    follower.finish().await.map_err(Error::Follow)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn normalizers() -> Vec<Normalizer> {
        let mut v = Vec::new();
        for schema in [Schema::Ecs, Schema::Otel] {
            for format in [
                Format::Auto,
                Format::NginxCombined,
                Format::NginxError,
                Format::ApacheError,
                Format::Syslog,
                Format::Json,
                Format::Logfmt,
                Format::Cri,
            ] {
                v.push(Normalizer::new(
                    Parsers::new(format, None, Timestamp::from_secs(1_800_000_000), 3600),
                    schema,
                    vec![AddField::parse("labels.team=a\"b").unwrap()],
                ));
            }
            let custom = podmates_logparse::AccessFormat::nginx(
                r#"$remote_addr [$time_iso8601] "$request" $status $request_time "$http_x_y""#,
            )
            .unwrap();
            v.push(Normalizer::new(
                Parsers::new(
                    Format::Auto,
                    Some(Access::new(custom, Kind::NginxCustom)),
                    Timestamp::from_secs(0),
                    0,
                ),
                schema,
                Vec::new(),
            ));
        }
        v
    }

    /// Lines that straddle reads, and lines longer than the read buffer (which then grows), come
    /// out whole: one JSON line each, carrying the input line (repaired when it is not UTF-8,
    /// without the `\r` of a CRLF), in reads with and without an invalid line.
    #[test]
    fn lines_across_and_beyond_reads() {
        let combined = |ua: &[u8]| {
            let mut l =
                b"10.0.0.1 - - [22/Nov/2026:01:46:40 +0000] \"GET / HTTP/1.1\" 200 5 \"-\" \""
                    .to_vec();
            l.extend_from_slice(ua);
            l.push(b'"');
            l
        };
        let mut lines: Vec<Vec<u8>> = (0..3000).map(|i| combined(&b"a".repeat(i % 300))).collect();
        lines.insert(1000, combined(&b"b".repeat(300_000)));
        lines[1500].push(b'\r');
        lines[2500] = combined(b"caf\xe9 \xff");
        lines.push(combined(b"last, no newline"));
        let input = lines.join(&b'\n');
        for mut norm in normalizers().into_iter().take(2) {
            let mut out = Vec::new();
            norm.read_to_end(
                &mut input.as_slice(),
                &mut out,
                None,
                &CancellationToken::new(),
            )
            .unwrap();
            let text = String::from_utf8(out).unwrap();
            assert_eq!(text.lines().count(), lines.len());
            for (got, want) in text.lines().zip(&lines) {
                let v: serde_json::Value = serde_json::from_str(got).unwrap();
                let want = String::from_utf8_lossy(want.strip_suffix(b"\r").unwrap_or(want));
                assert_eq!(v["event"]["original"], *want);
                assert_eq!(v["tags"].is_array(), want.contains('\u{fffd}'));
            }
        }
    }

    /// A line longer than --max-line-bytes gives one event per piece, in the stream (without a
    /// newline for many reads) and within one read, never cutting a UTF-8 character; the pieces
    /// put back together are the line.
    #[test]
    fn long_lines_are_normalized_in_pieces() {
        let long: Vec<u8> = "é\"x\0".repeat(100_000).into_bytes();
        for max in [1000, 4096, 300_000] {
            let mut input = b"short\n".to_vec();
            input.extend_from_slice(&long);
            input.extend_from_slice(b"\r\nend\n");
            let mut norm = normalizers().remove(0).with_max_line_bytes(max);
            let mut out = Vec::new();
            norm.read_to_end(
                &mut input.as_slice(),
                &mut out,
                None,
                &CancellationToken::new(),
            )
            .unwrap();
            let originals: Vec<String> = String::from_utf8(out)
                .unwrap()
                .lines()
                .map(|l| {
                    let v: serde_json::Value = serde_json::from_str(l).unwrap();
                    assert!(
                        v["tags"].is_null(),
                        "{max}: a piece was cut inside a character"
                    );
                    v["event"]["original"].as_str().unwrap().to_owned()
                })
                .collect();
            let pieces = &originals[1..originals.len() - 1];
            assert_eq!(originals[0], "short");
            assert_eq!(originals.last().unwrap(), "end");
            // A cut moves back at most 3 bytes to keep a character whole.
            let (fewest, most) = (long.len().div_ceil(max), long.len().div_ceil(max - 3));
            assert!(
                (fewest..=most).contains(&pieces.len()),
                "{max}: {} pieces",
                pieces.len()
            );
            assert!(
                pieces.iter().all(|p| p.len() <= max),
                "{max}: a piece is too long"
            );
            assert_eq!(pieces.concat().as_bytes(), long.as_slice(), "{max}");
        }
    }

    /// Pieces of every format, glued at random, so that lines get deep into each parser.
    fn line() -> impl Strategy<Value = Vec<u8>> {
        let piece = prop_oneof![
            Just(b" ".to_vec()),
            Just(b"\"".to_vec()),
            Just(b"\\".to_vec()),
            Just(b"-".to_vec()),
            Just(b"[".to_vec()),
            Just(b"]".to_vec()),
            Just(b"{".to_vec()),
            Just(b"=".to_vec()),
            Just(b"\xff".to_vec()),
            Just(b"\x01".to_vec()),
            Just(b"::1 - - [22/Nov/2026:02:13:13 +0000] ".to_vec()),
            Just(b"\"GET /a?b HTTP/1.1\" 200 5 ".to_vec()),
            Just(b"<34>Oct 11 22:14:15 host su[1]: ".to_vec()),
            Just(b"<165>1 2003-10-11T22:14:15.003Z h a - - [x y=\"z\"] ".to_vec()),
            Just(b"2026/11/22 01:47:31 [error] 1#1: *5 x, client: ::1, request: \"".to_vec()),
            Just(b"[Wed Oct 11 14:32:52.1 2000] [core:error] [pid 1:tid 2] ".to_vec()),
            Just(b"2016-10-06T00:17:09.669794202Z stdout F ".to_vec()),
            Just(b"{\"level\":\"warn\",\"ts\":1e300,\"msg\":".to_vec()),
            Just(b"level=info msg=\"x\\\"".to_vec()),
            prop::collection::vec(any::<u8>(), 0..8),
        ];
        prop::collection::vec(piece, 0..12).prop_map(|v| v.concat())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]

        /// Whatever the bytes, every parser and both writers produce exactly one valid JSON
        /// object that carries the line.
        #[test]
        fn any_line_gives_one_json_object(raw in line()) {
            for n in &mut normalizers() {
                let mut out = Vec::new();
                n.line(&raw, Timestamp::from_secs(0), &mut out);
                prop_assert_eq!(out.iter().filter(|b| **b == b'\n').count(), 1);
                let v: serde_json::Value = serde_json::from_slice(&out)
                    .map_err(|e| TestCaseError::fail(format!("{e}: {}", String::from_utf8_lossy(&out))))?;
                let original = v["event"]["original"]
                    .as_str()
                    .or_else(|| {
                        v["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0]["body"]["stringValue"]
                            .as_str()
                    });
                prop_assert!(original.is_some(), "{}", v);
            }
        }
    }
}
