//! `--syslog-tcp HOST:PORT`: the JSON lines shipped as RFC 5424 messages over TCP with octet
//! counting (RFC 6587 section 3.4.1), as rsyslog's `imtcp`, syslog-ng and most collectors
//! receive them, instead of written to stdout.
//!
//! Each message is `LEN SP <PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID - JSON`: the header
//! from the event (a syslog line's own PRI, host, program, pid and msgid pass through; otherwise
//! facility `user`, the severity from the level, this host, `log-normalize`), the message the
//! ECS or OTel JSON. TCP syslog has no acknowledgements: a message is "sent" once the kernel took
//! it, so what is written just before the receiver dies can be lost (RELP or OTLP would be
//! needed to do better). A failed write reconnects with backoff (100 ms doubling to 5 s) and
//! sends the whole batch again: at-least-once, duplicates possible.

use std::io::{self, Write};
use std::net::TcpStream;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::event::Event;

/// The RFC 5424 header of one event, written before its JSON.
pub(crate) fn header(ev: &Event<'_>, hostname: &str, out: &mut Vec<u8>) {
    let pri = match ev.priority {
        Some(p) => p,
        None => 8 + severity_code(ev.severity.map(|s| s.number)),
    };
    out.push(b'<');
    out.extend_from_slice(pri.to_string().as_bytes());
    out.extend_from_slice(b">1 ");
    match ev
        .timestamp
        .filter(|t| (0..=253_402_300_799).contains(&t.secs))
    {
        Some(t) => t.write_rfc3339(out),
        None => out.push(b'-'),
    }
    out.push(b' ');
    field(out, ev.hostname.unwrap_or(hostname), 255);
    out.push(b' ');
    field(out, ev.process_name.unwrap_or("log-normalize"), 48);
    out.push(b' ');
    match ev.pid {
        Some(p) => out.extend_from_slice(p.to_string().as_bytes()),
        None => field(out, ev.proc_id.unwrap_or("-"), 128),
    }
    out.push(b' ');
    field(out, ev.msg_id.unwrap_or("-"), 32);
    out.extend_from_slice(b" - ");
}

/// An RFC 5424 header field: printable US-ASCII without spaces, at most `max` bytes; anything
/// else is the nil value `-`.
fn field(out: &mut Vec<u8>, v: &str, max: usize) {
    if v.is_empty() || v.len() > max || !v.bytes().all(|c| (33..=126).contains(&c)) {
        out.push(b'-');
    } else {
        out.extend_from_slice(v.as_bytes());
    }
}

/// The syslog severity code of an OpenTelemetry severity number (6, info, without one).
fn severity_code(number: Option<u8>) -> u8 {
    match number {
        Some(21..) => 2,
        Some(17..=20) => 3,
        Some(13..=16) => 4,
        Some(10..=12) => 5,
        Some(9) | None | Some(0) => 6,
        Some(_) => 7,
    }
}

/// This host's name, for events that carry none.
pub fn local_hostname() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|h| h.trim().to_owned())
        })
        .unwrap_or_else(|| "-".to_owned())
}

/// A TCP connection to the receiver, reconnected on failure.
#[derive(Debug)]
pub struct SyslogTcp {
    addr: String,
    stream: Option<TcpStream>,
    stop: CancellationToken,
}

impl SyslogTcp {
    /// A sink for `addr`; connects on first use. Retries stop when `stop` is cancelled.
    pub fn new(addr: String, stop: CancellationToken) -> Self {
        Self {
            addr,
            stream: None,
            stop,
        }
    }
}

impl Write for SyslogTcp {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_all(buf)?;
        Ok(buf.len())
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        let mut delay = Duration::from_millis(100);
        loop {
            let err = match &mut self.stream {
                Some(s) => match s.write_all(buf) {
                    Ok(()) => return Ok(()),
                    Err(e) => e,
                },
                None => match TcpStream::connect(&self.addr) {
                    Ok(s) => {
                        let _ = s.set_nodelay(true);
                        self.stream = Some(s);
                        continue;
                    }
                    Err(e) => e,
                },
            };
            self.stream = None;
            if self.stop.is_cancelled() {
                return Err(io::Error::new(
                    err.kind(),
                    format!("--syslog-tcp {}: {err} (stopping)", self.addr),
                ));
            }
            tracing::warn!(addr = %self.addr, error = %err, retry_in = ?delay, "syslog receiver unreachable");
            std::thread::sleep(delay);
            delay = (delay * 2).min(Duration::from_secs(5));
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.stream {
            Some(s) => s.flush(),
            None => Ok(()),
        }
    }
}
