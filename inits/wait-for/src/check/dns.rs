//! `dns://`: a stub resolver that asks the nameservers of resolv.conf, with its search list and
//! `ndots`, as `nslookup` and the C library do in a pod.
//!
//! Written for this one job rather than taken from a resolver library: a wait must never be
//! answered from a cache (a library resolver caches the NXDOMAIN of the first attempt), every
//! attempt must say which names it tried and what each server answered, and the whole of it is a
//! few hundred lines with no state between attempts.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

use crate::target::DnsQuery;

/// What resolv.conf says, as far as a lookup needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvConf {
    /// `nameserver` lines (port 53), at most three as the C library reads them.
    pub nameservers: Vec<SocketAddr>,
    /// `search` (or `domain`) list; the last such line wins.
    pub search: Vec<String>,
    /// `options ndots:N` (1 by default, at most 15).
    pub ndots: usize,
    /// `options timeout:N`, per query (5 s by default).
    pub timeout: Duration,
    /// `options attempts:N` (2 by default).
    pub attempts: u32,
}

impl Default for ResolvConf {
    fn default() -> Self {
        Self {
            nameservers: Vec::new(),
            search: Vec::new(),
            ndots: 1,
            timeout: Duration::from_secs(5),
            attempts: 2,
        }
    }
}

impl ResolvConf {
    /// Parses resolv.conf text. Unknown lines are ignored, as the C library does.
    pub fn parse(text: &str) -> Self {
        let mut conf = Self::default();
        for line in text.lines() {
            let line = line.split(['#', ';']).next().unwrap_or("");
            let mut words = line.split_whitespace();
            match words.next() {
                Some("nameserver") => {
                    if let Some(ip) = words.next().and_then(|w| {
                        // A scope suffix (fe80::1%eth0) is not something we can route to.
                        w.split('%').next()?.parse::<std::net::IpAddr>().ok()
                    }) && conf.nameservers.len() < 3
                    {
                        conf.nameservers.push(SocketAddr::new(ip, 53));
                    }
                }
                Some("search") => {
                    conf.search = words.map(|w| w.trim_end_matches('.').to_owned()).collect();
                }
                Some("domain") => {
                    conf.search = words
                        .next()
                        .map(|w| vec![w.trim_end_matches('.').to_owned()])
                        .unwrap_or_default();
                }
                Some("options") => {
                    for opt in words {
                        let (k, v) = opt.split_once(':').unwrap_or((opt, ""));
                        match (k, v.parse::<u64>()) {
                            ("ndots", Ok(n)) => conf.ndots = n.min(15) as usize,
                            ("timeout", Ok(n)) => {
                                conf.timeout = Duration::from_secs(n.clamp(1, 30));
                            }
                            ("attempts", Ok(n)) => conf.attempts = n.clamp(1, 5) as u32,
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        conf.search.retain(|d| !d.is_empty());
        conf
    }
}

/// The names tried for `name`, in order (the C library's `res_search`): a name ending in a dot
/// as it is; a name with at least `ndots` dots as it is first, then with each search domain; a
/// shorter one with each search domain first, then as it is.
pub fn candidates(name: &str, conf: &ResolvConf) -> Vec<String> {
    if let Some(abs) = name.strip_suffix('.') {
        return vec![abs.to_owned()];
    }
    let dots = name.bytes().filter(|b| *b == b'.').count();
    let searched = conf.search.iter().map(|d| format!("{name}.{d}"));
    if dots >= conf.ndots {
        std::iter::once(name.to_owned()).chain(searched).collect()
    } else {
        searched.chain(std::iter::once(name.to_owned())).collect()
    }
}

/// One record of an answer section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// IPv4 address.
    A(Ipv4Addr),
    /// IPv6 address.
    Aaaa(Ipv6Addr),
    /// Alias.
    Cname(String),
    /// Service location.
    Srv {
        /// Priority.
        priority: u16,
        /// Weight.
        weight: u16,
        /// Port.
        port: u16,
        /// Target host.
        target: String,
    },
    /// Any other type, by number.
    Other(u16),
}

impl std::fmt::Display for Record {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::A(a) => a.fmt(f),
            Self::Aaaa(a) => a.fmt(f),
            Self::Cname(c) => write!(f, "CNAME {c}"),
            Self::Srv {
                priority,
                weight,
                port,
                target,
            } => write!(f, "SRV {priority} {weight} {port} {target}"),
            Self::Other(t) => write!(f, "type {t} record"),
        }
    }
}

impl Record {
    fn rtype(&self) -> u16 {
        match self {
            Self::A(_) => 1,
            Self::Cname(_) => 5,
            Self::Aaaa(_) => 28,
            Self::Srv { .. } => 33,
            Self::Other(t) => *t,
        }
    }
}

/// A decoded response.
#[derive(Debug, Clone)]
pub struct Response {
    /// RCODE: 0 no error, 2 server failure, 3 no such name, 5 refused.
    pub rcode: u8,
    /// Whether the answer was truncated (then asked again over TCP).
    pub truncated: bool,
    /// The answer section.
    pub answers: Vec<Record>,
}

fn rcode_name(rcode: u8) -> String {
    match rcode {
        0 => "NOERROR".to_owned(),
        1 => "FORMERR".to_owned(),
        2 => "SERVFAIL".to_owned(),
        3 => "NXDOMAIN".to_owned(),
        4 => "NOTIMP".to_owned(),
        5 => "REFUSED".to_owned(),
        n => format!("RCODE {n}"),
    }
}

/// Encodes a query for `name` (no trailing dot) and `qtype`, recursion desired.
pub fn encode_query(id: u16, name: &str, qtype: u16) -> Vec<u8> {
    let mut q = Vec::with_capacity(18 + name.len());
    q.extend_from_slice(&id.to_be_bytes());
    q.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.split('.').filter(|l| !l.is_empty()) {
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.push(0);
    q.extend_from_slice(&qtype.to_be_bytes());
    q.extend_from_slice(&1u16.to_be_bytes());
    q
}

/// Reads a possibly compressed name at `pos`; returns it and the position after it (after the
/// first pointer, when there is one). Bounded: at most 64 pointers and 255 bytes.
fn read_name(msg: &[u8], mut pos: usize) -> Result<(String, usize), String> {
    let mut name = String::new();
    let mut end = None;
    let mut jumps = 0;
    loop {
        let len = *msg.get(pos).ok_or("name runs past the message")? as usize;
        if len & 0xC0 == 0xC0 {
            let lo = *msg.get(pos + 1).ok_or("pointer runs past the message")? as usize;
            if end.is_none() {
                end = Some(pos + 2);
            }
            jumps += 1;
            if jumps > 64 {
                return Err("compression pointer loop".to_owned());
            }
            pos = ((len & 0x3F) << 8) | lo;
            continue;
        }
        if len & 0xC0 != 0 {
            return Err("unknown label type".to_owned());
        }
        if len == 0 {
            return Ok((name, end.unwrap_or(pos + 1)));
        }
        let label = msg
            .get(pos + 1..pos + 1 + len)
            .ok_or("label runs past the message")?;
        if !name.is_empty() {
            name.push('.');
        }
        name.push_str(&String::from_utf8_lossy(label));
        if name.len() > 255 {
            return Err("name longer than 255 bytes".to_owned());
        }
        pos += 1 + len;
    }
}

fn u16_at(msg: &[u8], pos: usize) -> Result<u16, String> {
    msg.get(pos..pos + 2)
        .map(|b| u16::from_be_bytes([b[0], b[1]]))
        .ok_or_else(|| "message too short".to_owned())
}

/// Decodes a response to the query with `id`.
pub fn decode_response(msg: &[u8], id: u16) -> Result<Response, String> {
    if msg.len() < 12 {
        return Err("response shorter than a DNS header".to_owned());
    }
    if u16_at(msg, 0)? != id {
        return Err("response to another query".to_owned());
    }
    let flags = u16_at(msg, 2)?;
    if flags & 0x8000 == 0 {
        return Err("not a response".to_owned());
    }
    let qd = u16_at(msg, 4)?;
    let an = u16_at(msg, 6)?;
    let mut pos = 12;
    for _ in 0..qd {
        pos = read_name(msg, pos)?.1 + 4;
    }
    let mut answers = Vec::new();
    for _ in 0..an {
        let (_, p) = read_name(msg, pos)?;
        let rtype = u16_at(msg, p)?;
        let rdlen = u16_at(msg, p + 8)? as usize;
        let start = p + 10;
        let rdata = msg
            .get(start..start + rdlen)
            .ok_or("record data runs past the message")?;
        answers.push(match (rtype, rdlen) {
            (1, 4) => Record::A(Ipv4Addr::new(rdata[0], rdata[1], rdata[2], rdata[3])),
            (28, 16) => {
                let mut b = [0u8; 16];
                b.copy_from_slice(rdata);
                Record::Aaaa(Ipv6Addr::from(b))
            }
            (5, _) => Record::Cname(read_name(msg, start)?.0),
            (33, 7..) => Record::Srv {
                priority: u16_at(msg, start)?,
                weight: u16_at(msg, start + 2)?,
                port: u16_at(msg, start + 4)?,
                target: read_name(msg, start + 6)?.0,
            },
            (t, _) => Record::Other(t),
        });
        pos = start + rdlen;
    }
    Ok(Response {
        rcode: (flags & 0x000F) as u8,
        truncated: flags & 0x0200 != 0,
        answers,
    })
}

/// A query id that another process's queries are unlikely to share.
fn query_id() -> u16 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    (nanos ^ std::process::id().rotate_left(16)) as u16 ^ (nanos >> 16) as u16
}

async fn exchange_udp(
    server: SocketAddr,
    query: &[u8],
    id: u16,
    timeout: Duration,
) -> Result<Response, String> {
    let bind: SocketAddr = if server.is_ipv4() {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let sock = UdpSocket::bind(bind)
        .await
        .map_err(|e| format!("udp socket: {e}"))?;
    sock.connect(server).await.map_err(|e| e.to_string())?;
    sock.send(query).await.map_err(|e| e.to_string())?;
    let mut buf = vec![0u8; 4096];
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let n = match tokio::time::timeout_at(deadline, sock.recv(&mut buf)).await {
            Ok(Ok(n)) => n,
            // ECONNREFUSED from the ICMP port unreachable: nothing listens there.
            Ok(Err(e)) => return Err(e.to_string()),
            Err(_) => return Err(format!("no answer within {timeout:?}")),
        };
        // A stray or late datagram does not decode as ours: keep waiting.
        if let Ok(r) = decode_response(&buf[..n], id) {
            return Ok(r);
        }
    }
}

async fn exchange_tcp(
    server: SocketAddr,
    query: &[u8],
    id: u16,
    timeout: Duration,
) -> Result<Response, String> {
    let work = async {
        let mut s = TcpStream::connect(server)
            .await
            .map_err(|e| e.to_string())?;
        let mut framed = Vec::with_capacity(query.len() + 2);
        framed.extend_from_slice(&(query.len() as u16).to_be_bytes());
        framed.extend_from_slice(query);
        s.write_all(&framed).await.map_err(|e| e.to_string())?;
        let len = s.read_u16().await.map_err(|e| e.to_string())? as usize;
        let mut buf = vec![0u8; len];
        s.read_exact(&mut buf).await.map_err(|e| e.to_string())?;
        decode_response(&buf, id)
    };
    tokio::time::timeout(timeout, work)
        .await
        .unwrap_or_else(|_| Err(format!("no answer over TCP within {timeout:?}")))
}

/// Asks `server` once (UDP, then TCP when the answer was truncated), retrying `attempts` times.
pub async fn ask(
    server: SocketAddr,
    name: &str,
    qtype: u16,
    conf: &ResolvConf,
) -> Result<Response, String> {
    let id = query_id();
    let query = encode_query(id, name, qtype);
    let mut last = String::new();
    for _ in 0..conf.attempts.max(1) {
        match exchange_udp(server, &query, id, conf.timeout).await {
            Ok(r) if r.truncated => return exchange_tcp(server, &query, id, conf.timeout).await,
            Ok(r) => return Ok(r),
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// What one name gave: its records of the wanted types, or why there were none.
async fn lookup_name(
    name: &str,
    types: &[u16],
    servers: &[SocketAddr],
    conf: &ResolvConf,
) -> Result<Vec<Record>, String> {
    let mut why = Vec::new();
    for server in servers {
        let mut records = Vec::new();
        let mut answered = true;
        let mut parts = Vec::new();
        for &t in types {
            match ask(*server, name, t, conf).await {
                Ok(r) if r.rcode == 0 => {
                    let before = records.len();
                    records.extend(r.answers.into_iter().filter(|a| a.rtype() == t));
                    if records.len() == before {
                        parts.push(format!("no {} record", type_name(t)));
                    }
                }
                // The name does not exist: the same at every server, no need to ask the next.
                Ok(r) if r.rcode == 3 => parts.push("NXDOMAIN".to_owned()),
                Ok(r) => {
                    answered = false;
                    parts.push(rcode_name(r.rcode));
                }
                Err(e) => {
                    answered = false;
                    parts.push(e);
                }
            }
        }
        if !records.is_empty() {
            return Ok(records);
        }
        parts.dedup();
        why.push(format!("{server}: {}", parts.join(", ")));
        if answered {
            break;
        }
    }
    Err(why.join("; "))
}

fn type_name(t: u16) -> String {
    match t {
        1 => "A".to_owned(),
        2 => "NS".to_owned(),
        5 => "CNAME".to_owned(),
        6 => "SOA".to_owned(),
        12 => "PTR".to_owned(),
        15 => "MX".to_owned(),
        16 => "TXT".to_owned(),
        28 => "AAAA".to_owned(),
        33 => "SRV".to_owned(),
        n => format!("type {n}"),
    }
}

/// Where a lookup's settings come from.
#[derive(Debug, Clone, Default)]
pub struct DnsSettings {
    /// The resolv.conf to read (`/etc/resolv.conf`).
    pub resolv_conf: std::path::PathBuf,
    /// Nameserver that replaces those of resolv.conf (`--dns-server`).
    pub server: Option<SocketAddr>,
}

/// One attempt at `dns://name`: Ok with what was found, or Err with every name tried and what
/// was answered.
pub async fn check(
    name: &str,
    query: DnsQuery,
    server: Option<SocketAddr>,
    settings: &DnsSettings,
) -> Result<String, String> {
    let conf = match std::fs::read_to_string(&settings.resolv_conf) {
        Ok(text) => ResolvConf::parse(&text),
        // No resolv.conf: the C library's defaults (localhost, no search list).
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => ResolvConf::default(),
        Err(e) => return Err(format!("{}: {e}", settings.resolv_conf.display())),
    };
    let servers: Vec<SocketAddr> = match server.or(settings.server) {
        Some(s) => vec![s],
        None if conf.nameservers.is_empty() => vec![SocketAddr::from((Ipv4Addr::LOCALHOST, 53))],
        None => conf.nameservers.clone(),
    };
    let types: &[u16] = match query {
        DnsQuery::Address => &[1, 28],
        DnsQuery::Type(t) => &[t][..],
    };
    let types = types.to_vec();
    let mut tried = Vec::new();
    for candidate in candidates(name, &conf) {
        match lookup_name(&candidate, &types, &servers, &conf).await {
            Ok(records) => {
                let shown: Vec<String> = records.iter().take(4).map(ToString::to_string).collect();
                let more = if records.len() > 4 {
                    format!(" and {} more", records.len() - 4)
                } else {
                    String::new()
                };
                return Ok(format!("{candidate}: {}{more}", shown.join(", ")));
            }
            Err(why) => tried.push(format!("{candidate} ({why})")),
        }
    }
    Err(format!("no records: {}", tried.join("; ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_pod_resolv_conf() {
        let conf = ResolvConf::parse(
            "search default.svc.cluster.local svc.cluster.local cluster.local\nnameserver 10.96.0.10\noptions ndots:5 timeout:2 attempts:3 # comment\n",
        );
        assert_eq!(conf.nameservers, vec!["10.96.0.10:53".parse().unwrap()]);
        assert_eq!(
            conf.search,
            [
                "default.svc.cluster.local",
                "svc.cluster.local",
                "cluster.local"
            ]
        );
        assert_eq!(conf.ndots, 5);
        assert_eq!(conf.timeout, Duration::from_secs(2));
        assert_eq!(conf.attempts, 3);
        let conf = ResolvConf::parse("domain example.org.\nnameserver ::1\nnameserver bogus\n");
        assert_eq!(conf.search, ["example.org"]);
        assert_eq!(conf.nameservers, vec!["[::1]:53".parse().unwrap()]);
        assert_eq!(conf.ndots, 1);
    }

    #[test]
    fn search_order_follows_ndots() {
        let conf = ResolvConf {
            search: vec!["ns.svc.cluster.local".into(), "cluster.local".into()],
            ndots: 5,
            ..ResolvConf::default()
        };
        assert_eq!(
            candidates("myservice", &conf),
            [
                "myservice.ns.svc.cluster.local",
                "myservice.cluster.local",
                "myservice"
            ]
        );
        assert_eq!(candidates("example.com.", &conf), ["example.com"]);
        let conf = ResolvConf { ndots: 1, ..conf };
        assert_eq!(
            candidates("example.com", &conf),
            [
                "example.com",
                "example.com.ns.svc.cluster.local",
                "example.com.cluster.local"
            ]
        );
    }

    #[test]
    fn decodes_compressed_answers_and_rejects_loops() {
        // Response to `a.example` A with one A record whose owner is a pointer to the question.
        let mut msg = encode_query(7, "a.example", 1);
        msg[2] = 0x81;
        msg[3] = 0x80;
        msg[7] = 1;
        msg.extend_from_slice(&[0xC0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 10, 0, 0, 1]);
        let r = decode_response(&msg, 7).unwrap();
        assert_eq!(r.rcode, 0);
        assert_eq!(r.answers, vec![Record::A(Ipv4Addr::new(10, 0, 0, 1))]);
        assert!(decode_response(&msg, 8).is_err());
        // A pointer to itself.
        let mut bad = msg.clone();
        let at = bad.len() - 16;
        bad[at + 1] = at as u8;
        assert!(decode_response(&bad, 7).is_err());
        // Truncated in the middle of a record: an error, no panic.
        for cut in 0..msg.len() {
            let _ = decode_response(&msg[..cut], 7);
        }
    }
}
