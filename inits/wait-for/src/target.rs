//! Targets: what to wait for, parsed from URL-like arguments without any I/O.
//!
//! The URL parser is a small one of its own: the schemes here need the scheme, userinfo, host,
//! port, path and query, and the `url` crate's IDNA tables would more than double the binary.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

use percent_encoding::percent_decode_str;

/// A target that cannot be used; the message names the argument and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BadTarget(pub String);

/// What a `dns://` target asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DnsQuery {
    /// A or AAAA records, as `nslookup NAME` and `getaddrinfo` look a name up.
    Address,
    /// One record type, from `?type=` (`SRV` by default for `_service._proto.name`).
    Type(u16),
}

/// PostgreSQL's `sslmode`, as far as wait-for acts on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    /// `disable`, `allow`, `prefer` (the default): plain TCP. libpq's `prefer` would try TLS
    /// first; a server that accepts plain connections answers the same either way.
    Plain,
    /// `require`: TLS, the certificate not verified (libpq's meaning).
    Require,
    /// `verify-ca` / `verify-full`: TLS verified against `--ca-file` or the system roots.
    Verify,
}

/// One thing to wait for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// `tcp://host:port` (or `host:port`): a TCP connection is accepted.
    Tcp {
        /// Host name or address.
        host: String,
        /// Port.
        port: u16,
    },
    /// `dns://name`, `dns://server[:port]/name`: the name resolves.
    Dns {
        /// The name as given; relative unless it ends with a dot.
        name: String,
        /// What to ask for.
        query: DnsQuery,
        /// The nameserver of an RFC 4501 authority (`dns://10.0.0.10/name`).
        server: Option<SocketAddr>,
    },
    /// `http://` or `https://`: the response meets the HTTP expectations.
    Http {
        /// Whether the scheme is https.
        tls: bool,
        /// Host name or address (without brackets).
        host: String,
        /// Port (80 / 443 by default).
        port: u16,
        /// Path and query, `/` at least.
        path: String,
        /// `user:password` of the URL, sent as basic auth.
        basic_auth: Option<(String, String)>,
    },
    /// `file:///path`: the file exists.
    File {
        /// The path.
        path: PathBuf,
        /// `?nonempty`: it must not be empty.
        nonempty: bool,
        /// `?contains=TEXT`: it must contain TEXT.
        contains: Option<String>,
    },
    /// `redis://[user:password@]host[:port][/db]`: PING answers PONG.
    Redis {
        /// Host.
        host: String,
        /// Port (6379).
        port: u16,
        /// ACL user (Redis 6+), sent with the password.
        user: Option<String>,
        /// Password, sent with AUTH.
        password: Option<String>,
        /// Database selected before PING.
        db: Option<u32>,
    },
    /// `postgres://[user[:password]@]host[:port][/database][?sslmode=..]`.
    Postgres {
        /// Host.
        host: String,
        /// Port (5432).
        port: u16,
        /// User (`postgres` when left out).
        user: String,
        /// Password: with one, wait-for logs in and runs `SELECT 1`.
        password: Option<String>,
        /// Database (the user's name when left out, as libpq does).
        database: String,
        /// TLS or not.
        sslmode: SslMode,
    },
    /// `mysql://[user[:password]@]host[:port][/database]`.
    Mysql {
        /// Host.
        host: String,
        /// Port (3306).
        port: u16,
        /// User: with one, wait-for logs in and runs `SELECT 1`.
        user: Option<String>,
        /// Password.
        password: String,
        /// Database to connect to.
        database: Option<String>,
    },
}

/// A parsed target and how it is shown in logs (passwords masked).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The argument as shown in logs and metrics: the URL with any password replaced by `***`.
    pub display: String,
    /// What to check.
    pub kind: Kind,
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.display)
    }
}

/// The pieces of `scheme://[user[:password]@]host[:port][/path][?query]`.
#[derive(Debug, Default)]
struct Url {
    scheme: String,
    user: Option<String>,
    password: Option<String>,
    host: String,
    port: Option<u16>,
    path: String,
    query: Vec<(String, Option<String>)>,
}

fn decode(s: &str) -> String {
    percent_decode_str(s).decode_utf8_lossy().into_owned()
}

fn split_url(arg: &str) -> Result<Url, BadTarget> {
    let bad = |why: &str| BadTarget(format!("`{arg}`: {why}"));
    let (scheme, rest) = arg
        .split_once("://")
        .ok_or_else(|| bad("not a URL like tcp://host:port (no `://`)"))?;
    let scheme = scheme.to_ascii_lowercase();
    // The fragment is never sent anywhere; drop it.
    let rest = rest.split_once('#').map_or(rest, |(r, _)| r);
    let (before_query, query) = match rest.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (rest, None),
    };
    let (authority, path) = match before_query.find('/') {
        Some(i) => (&before_query[..i], &before_query[i..]),
        None => (before_query, ""),
    };
    let (userinfo, hostport) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    let (user, password) = match userinfo {
        None => (None, None),
        Some(u) => match u.split_once(':') {
            Some((n, p)) => (Some(decode(n)), Some(decode(p))),
            None => (Some(decode(u)), None),
        },
    };
    let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
        let (h, after) = v6
            .split_once(']')
            .ok_or_else(|| bad("unclosed `[` in the host"))?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':').ok_or_else(|| bad("junk after `]`"))?),
        };
        (h.to_owned(), port)
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h.to_owned(), Some(p)),
            None => (hostport.to_owned(), None),
        }
    };
    let port = match port {
        None | Some("") => None,
        Some(p) => Some(
            p.parse::<u16>()
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| bad(&format!("port `{p}` is not a number from 1 to 65535")))?,
        ),
    };
    let query = query
        .unwrap_or("")
        .split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) => (decode(k), Some(decode(v))),
            None => (decode(kv), None),
        })
        .collect();
    Ok(Url {
        scheme,
        user,
        password,
        host: decode(&host),
        port,
        path: path.to_owned(),
        query,
    })
}

/// The URL with its password masked, for logs.
fn masked(arg: &str) -> String {
    let Some((scheme, rest)) = arg.split_once("://") else {
        return arg.to_owned();
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    match authority.rsplit_once('@') {
        Some((userinfo, host)) if userinfo.contains(':') => {
            let user = userinfo.split_once(':').map_or(userinfo, |(u, _)| u);
            format!("{scheme}://{user}:***@{host}{}", &rest[end..])
        }
        _ => arg.to_owned(),
    }
}

fn require_host(url: &Url, arg: &str) -> Result<String, BadTarget> {
    if url.host.is_empty() {
        return Err(BadTarget(format!("`{arg}`: no host")));
    }
    if url.host.contains(|c: char| c.is_whitespace() || c == '/') {
        return Err(BadTarget(format!("`{arg}`: bad host `{}`", url.host)));
    }
    Ok(url.host.clone())
}

fn no_query(url: &Url, arg: &str) -> Result<(), BadTarget> {
    match url.query.first() {
        Some((k, _)) => Err(BadTarget(format!(
            "`{arg}`: unknown option `{k}` for {}://",
            url.scheme
        ))),
        None => Ok(()),
    }
}

/// The DNS record types a `?type=` may name.
pub fn record_type(name: &str) -> Option<u16> {
    Some(match name.to_ascii_uppercase().as_str() {
        "A" => 1,
        "NS" => 2,
        "CNAME" => 5,
        "SOA" => 6,
        "PTR" => 12,
        "MX" => 15,
        "TXT" => 16,
        "AAAA" => 28,
        "SRV" => 33,
        _ => return None,
    })
}

impl Target {
    /// Parses one target argument. `host:port` without a scheme is a TCP target, as wait-for-it.sh
    /// takes it.
    pub fn parse(arg: &str) -> Result<Self, BadTarget> {
        let arg = arg.trim();
        if arg.is_empty() {
            return Err(BadTarget("empty target".to_owned()));
        }
        if !arg.contains("://") {
            if let Some((h, p)) = arg.rsplit_once(':')
                && !h.is_empty()
                && p.parse::<u16>().is_ok()
            {
                return Self::parse(&format!("tcp://{arg}"));
            }
            return Err(BadTarget(format!(
                "`{arg}`: not a target; use tcp://host:port, dns://name, http(s)://..., file:///path, redis://, postgres:// or mysql://"
            )));
        }
        let url = split_url(arg)?;
        let display = masked(arg);
        let kind = match url.scheme.as_str() {
            "tcp" => {
                let host = require_host(&url, arg)?;
                let port = url
                    .port
                    .ok_or_else(|| BadTarget(format!("`{arg}`: no port (tcp://host:port)")))?;
                if !url.path.is_empty() && url.path != "/" {
                    return Err(BadTarget(format!("`{arg}`: a tcp:// target has no path")));
                }
                no_query(&url, arg)?;
                Kind::Tcp { host, port }
            }
            "dns" => parse_dns(&url, arg)?,
            "http" | "https" => {
                let tls = url.scheme == "https";
                let host = require_host(&url, arg)?;
                let port = url.port.unwrap_or(if tls { 443 } else { 80 });
                let mut path = if url.path.is_empty() {
                    "/".to_owned()
                } else {
                    url.path.clone()
                };
                if let Some(q) = arg.split_once('?').map(|(_, q)| q) {
                    let q = q.split_once('#').map_or(q, |(q, _)| q);
                    path.push('?');
                    path.push_str(q);
                }
                path.parse::<hyper::Uri>()
                    .map_err(|e| BadTarget(format!("`{arg}`: bad path ({e})")))?;
                let basic_auth = url
                    .user
                    .clone()
                    .map(|u| (u, url.password.clone().unwrap_or_default()));
                Kind::Http {
                    tls,
                    host,
                    port,
                    path,
                    basic_auth,
                }
            }
            "file" => {
                if !url.host.is_empty() && url.host != "localhost" {
                    return Err(BadTarget(format!(
                        "`{arg}`: file:// takes an absolute path: file:///path (three slashes)"
                    )));
                }
                if url.path.is_empty() {
                    return Err(BadTarget(format!("`{arg}`: no path")));
                }
                let mut nonempty = false;
                let mut contains = None;
                for (k, v) in &url.query {
                    match (k.as_str(), v) {
                        ("nonempty" | "non-empty", None) => nonempty = true,
                        ("nonempty" | "non-empty", Some(v)) => {
                            nonempty = matches!(v.as_str(), "" | "1" | "true" | "yes");
                        }
                        ("contains", Some(v)) if !v.is_empty() => contains = Some(v.clone()),
                        _ => {
                            return Err(BadTarget(format!(
                                "`{arg}`: unknown option `{k}` (file:// takes ?nonempty and ?contains=TEXT)"
                            )));
                        }
                    }
                }
                Kind::File {
                    path: PathBuf::from(decode(&url.path)),
                    nonempty,
                    contains,
                }
            }
            "redis" => {
                let host = require_host(&url, arg)?;
                let db = match url.path.trim_start_matches('/') {
                    "" => None,
                    d => Some(d.parse::<u32>().map_err(|_| {
                        BadTarget(format!("`{arg}`: database `{d}` is not a number"))
                    })?),
                };
                no_query(&url, arg)?;
                // redis://:password@host is the usual form without a user.
                let user = url.user.clone().filter(|u| !u.is_empty());
                let password = match (&url.password, &user) {
                    (Some(p), _) => Some(p.clone()),
                    // redis://password@host: a lone userinfo is the password, as redis-cli -u and
                    // most clients take it.
                    (None, Some(u)) => return Ok(redis_lone(arg, host, &url, u, db)),
                    (None, None) => None,
                };
                Kind::Redis {
                    host,
                    port: url.port.unwrap_or(6379),
                    user,
                    password,
                    db,
                }
            }
            "postgres" | "postgresql" => {
                let host = require_host(&url, arg)?;
                let user = url
                    .user
                    .clone()
                    .filter(|u| !u.is_empty())
                    .unwrap_or_else(|| "postgres".to_owned());
                let database = match url.path.trim_start_matches('/') {
                    "" => user.clone(),
                    d => decode(d),
                };
                let mut sslmode = SslMode::Plain;
                for (k, v) in &url.query {
                    match (k.as_str(), v.as_deref()) {
                        ("sslmode", Some("disable" | "allow" | "prefer")) => {
                            sslmode = SslMode::Plain;
                        }
                        ("sslmode", Some("require")) => sslmode = SslMode::Require,
                        ("sslmode", Some("verify-ca" | "verify-full")) => {
                            sslmode = SslMode::Verify;
                        }
                        ("sslmode", v) => {
                            return Err(BadTarget(format!(
                                "`{arg}`: sslmode `{}` is not one of disable, allow, prefer, require, verify-ca, verify-full",
                                v.unwrap_or("")
                            )));
                        }
                        // libpq options that do not change whether the server is ready.
                        (
                            "connect_timeout"
                            | "application_name"
                            | "options"
                            | "target_session_attrs",
                            _,
                        ) => {}
                        _ => {
                            return Err(BadTarget(format!(
                                "`{arg}`: unknown option `{k}` for postgres://"
                            )));
                        }
                    }
                }
                Kind::Postgres {
                    host,
                    port: url.port.unwrap_or(5432),
                    user,
                    password: url.password.clone(),
                    database,
                    sslmode,
                }
            }
            "mysql" | "mariadb" => {
                let host = require_host(&url, arg)?;
                let database = match url.path.trim_start_matches('/') {
                    "" => None,
                    d => Some(decode(d)),
                };
                Kind::Mysql {
                    host,
                    port: url.port.unwrap_or(3306),
                    user: url.user.clone().filter(|u| !u.is_empty()),
                    password: url.password.clone().unwrap_or_default(),
                    database,
                }
            }
            other => {
                return Err(BadTarget(format!(
                    "`{arg}`: unknown scheme `{other}://`; use tcp, dns, http, https, file, redis, postgres or mysql"
                )));
            }
        };
        Ok(Self { display, kind })
    }
}

/// `redis://password@host`: the lone userinfo is the password, masked whole in the display.
fn redis_lone(arg: &str, host: String, url: &Url, pw: &str, db: Option<u32>) -> Target {
    // The password sits where a user would: mask it all.
    let display = match arg.split_once("://") {
        Some((s, rest)) => match rest.rsplit_once('@') {
            Some((_, h)) => format!("{s}://***@{h}"),
            None => arg.to_owned(),
        },
        None => arg.to_owned(),
    };
    Target {
        display,
        kind: Kind::Redis {
            host,
            port: url.port.unwrap_or(6379),
            user: None,
            password: Some(pw.to_owned()),
            db,
        },
    }
}

fn parse_dns(url: &Url, arg: &str) -> Result<Kind, BadTarget> {
    // RFC 4501: dns://[server[:port]]/name. Without a path, the authority is the name itself,
    // the form `dns://myservice` that replaces `nslookup myservice`.
    let (server, name) = if url.path.is_empty() || url.path == "/" {
        if url.port.is_some() {
            return Err(BadTarget(format!(
                "`{arg}`: a port belongs to a nameserver: dns://SERVER:PORT/NAME, or --dns-server"
            )));
        }
        (None, url.host.clone())
    } else {
        let name = decode(url.path.trim_start_matches('/'));
        let server = if url.host.is_empty() {
            None
        } else {
            let host = url.host.as_str();
            let ip: std::net::IpAddr = host.parse().map_err(|_| {
                BadTarget(format!(
                    "`{arg}`: the nameserver `{host}` must be an IP address (dns://10.0.0.10/NAME)"
                ))
            })?;
            Some(SocketAddr::new(ip, url.port.unwrap_or(53)))
        };
        (server, name)
    };
    if name.is_empty() {
        return Err(BadTarget(format!("`{arg}`: no name to look up")));
    }
    check_dns_name(&name).map_err(|why| BadTarget(format!("`{arg}`: {why}")))?;
    let mut query = if name.starts_with('_') {
        DnsQuery::Type(33)
    } else {
        DnsQuery::Address
    };
    for (k, v) in &url.query {
        match (k.as_str(), v) {
            ("type", Some(t)) => {
                query = match t.to_ascii_uppercase().as_str() {
                    "A+AAAA" | "ADDR" | "ANY" => DnsQuery::Address,
                    _ => DnsQuery::Type(record_type(t).ok_or_else(|| {
                        BadTarget(format!(
                            "`{arg}`: unknown record type `{t}` (A, AAAA, SRV, CNAME, TXT, MX, NS, PTR, SOA)"
                        ))
                    })?),
                };
            }
            _ => {
                return Err(BadTarget(format!(
                    "`{arg}`: unknown option `{k}` (dns:// takes ?type=A|AAAA|SRV|...)"
                )));
            }
        }
    }
    Ok(Kind::Dns {
        name,
        query,
        server,
    })
}

/// A name that cannot be sent in a DNS question.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DnsNameError {
    /// Nothing but maybe a dot.
    #[error("empty name")]
    Empty,
    /// Over 253 bytes.
    #[error("name `{0}` is longer than 253 bytes")]
    TooLong(String),
    /// Two dots in a row, or a leading dot.
    #[error("name `{0}` has an empty label")]
    EmptyLabel(String),
    /// A label over 63 bytes.
    #[error("label `{0}` is longer than 63 bytes")]
    LabelTooLong(String),
    /// A space or control character.
    #[error("name `{0}` has a space or control character")]
    BadCharacter(String),
}

/// Whether `name` can be sent in a DNS question: labels of 1 to 63 bytes, 253 in all.
pub fn check_dns_name(name: &str) -> Result<(), DnsNameError> {
    let trimmed = name.strip_suffix('.').unwrap_or(name);
    if trimmed.is_empty() {
        return Err(DnsNameError::Empty);
    }
    if trimmed.len() > 253 {
        return Err(DnsNameError::TooLong(name.to_owned()));
    }
    for label in trimmed.split('.') {
        if label.is_empty() {
            return Err(DnsNameError::EmptyLabel(name.to_owned()));
        }
        if label.len() > 63 {
            return Err(DnsNameError::LabelTooLong(label.to_owned()));
        }
        if label
            .bytes()
            .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
        {
            return Err(DnsNameError::BadCharacter(name.to_owned()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(s: &str) -> Kind {
        Target::parse(s).unwrap().kind
    }

    #[test]
    fn tcp_and_bare_host_port() {
        assert_eq!(
            kind("tcp://db:5432"),
            Kind::Tcp {
                host: "db".into(),
                port: 5432
            }
        );
        assert_eq!(kind("db:5432"), kind("tcp://db:5432"));
        assert_eq!(
            kind("tcp://[::1]:80"),
            Kind::Tcp {
                host: "::1".into(),
                port: 80
            }
        );
        assert!(Target::parse("tcp://db").unwrap_err().0.contains("no port"));
        assert!(
            Target::parse("tcp://db:0")
                .unwrap_err()
                .0
                .contains("port `0`")
        );
        assert!(
            Target::parse("tcp://db:99999")
                .unwrap_err()
                .0
                .contains("99999")
        );
        assert!(Target::parse("db").unwrap_err().0.contains("not a target"));
        assert!(
            Target::parse("ftp://x")
                .unwrap_err()
                .0
                .contains("unknown scheme")
        );
    }

    #[test]
    fn dns_forms() {
        assert_eq!(
            kind("dns://myservice"),
            Kind::Dns {
                name: "myservice".into(),
                query: DnsQuery::Address,
                server: None
            }
        );
        assert_eq!(
            kind("dns://_grpc._tcp.svc"),
            Kind::Dns {
                name: "_grpc._tcp.svc".into(),
                query: DnsQuery::Type(33),
                server: None
            }
        );
        assert_eq!(
            kind("dns://10.0.0.10:5353/mydb.ns.svc.cluster.local.?type=AAAA"),
            Kind::Dns {
                name: "mydb.ns.svc.cluster.local.".into(),
                query: DnsQuery::Type(28),
                server: Some("10.0.0.10:5353".parse().unwrap())
            }
        );
        assert!(
            Target::parse("dns://x?type=BOGUS")
                .unwrap_err()
                .0
                .contains("BOGUS")
        );
        assert!(
            Target::parse("dns://x:53")
                .unwrap_err()
                .0
                .contains("nameserver")
        );
        assert!(
            Target::parse("dns://a..b")
                .unwrap_err()
                .0
                .contains("empty label")
        );
    }

    #[test]
    fn http_keeps_path_and_query_and_takes_basic_auth() {
        assert_eq!(
            kind("https://u:p%40ss@api:8443/healthz?full=1"),
            Kind::Http {
                tls: true,
                host: "api".into(),
                port: 8443,
                path: "/healthz?full=1".into(),
                basic_auth: Some(("u".into(), "p@ss".into()))
            }
        );
        assert_eq!(
            kind("http://web"),
            Kind::Http {
                tls: false,
                host: "web".into(),
                port: 80,
                path: "/".into(),
                basic_auth: None
            }
        );
    }

    #[test]
    fn passwords_are_masked() {
        let t = Target::parse("postgres://app:secret@db/app").unwrap();
        assert_eq!(t.display, "postgres://app:***@db/app");
        let t = Target::parse("redis://:secret@cache:6380/2").unwrap();
        assert_eq!(t.display, "redis://:***@cache:6380/2");
        let t = Target::parse("redis://secret@cache").unwrap();
        assert_eq!(t.display, "redis://***@cache");
        assert!(
            matches!(t.kind, Kind::Redis { password: Some(ref p), user: None, .. } if p == "secret")
        );
    }

    #[test]
    fn databases() {
        assert_eq!(
            kind("postgresql://db"),
            Kind::Postgres {
                host: "db".into(),
                port: 5432,
                user: "postgres".into(),
                password: None,
                database: "postgres".into(),
                sslmode: SslMode::Plain
            }
        );
        assert!(matches!(
            kind("postgres://u:p@db:6000/app?sslmode=require"),
            Kind::Postgres { port: 6000, sslmode: SslMode::Require, ref database, .. } if database == "app"
        ));
        assert!(
            Target::parse("postgres://db?sslmode=maybe")
                .unwrap_err()
                .0
                .contains("maybe")
        );
        assert_eq!(
            kind("mysql://root:pw@db/app"),
            Kind::Mysql {
                host: "db".into(),
                port: 3306,
                user: Some("root".into()),
                password: "pw".into(),
                database: Some("app".into())
            }
        );
        assert!(
            Target::parse("redis://c/x")
                .unwrap_err()
                .0
                .contains("not a number")
        );
    }

    #[test]
    fn files() {
        assert_eq!(
            kind("file:///run/ready?nonempty&contains=ok%20go"),
            Kind::File {
                path: "/run/ready".into(),
                nonempty: true,
                contains: Some("ok go".into())
            }
        );
        assert!(
            Target::parse("file://relative/x")
                .unwrap_err()
                .0
                .contains("three slashes")
        );
        assert!(
            Target::parse("file:///x?size=3")
                .unwrap_err()
                .0
                .contains("size")
        );
    }
}
