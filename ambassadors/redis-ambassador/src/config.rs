//! nutcracker.yml, read unchanged: one top-level mapping per pool.
//!
//! Unknown keys and bad values are errors that name the pool, the key and the line, because a
//! silently ignored key in a proxy config means keys land somewhere unexpected.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::dist::Distribution;
use crate::hash::HashFn;

/// A configuration error, with the position when the YAML parser knows it; each keeps its cause
/// as its `source`.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("{}: {source}", path.display())]
    Read {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file's content is not a valid configuration.
    #[error("{}: {source}", path.display())]
    File {
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong in it.
        #[source]
        source: Box<ConfigError>,
    },
    /// Not YAML, or not the shape of nutcracker.yml.
    #[error("{0}")]
    Yaml(#[source] serde_yaml::Error),
    /// A pool or key that cannot be used, and why.
    #[error("{0}")]
    Invalid(String),
}

/// Where a pool listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listen {
    /// `host:port`
    Tcp(String),
    /// `/path/to.sock [mode]`
    Unix(PathBuf, Option<u32>),
}

impl std::fmt::Display for Listen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Listen::Tcp(a) => f.write_str(a),
            Listen::Unix(p, _) => write!(f, "{}", p.display()),
        }
    }
}

/// Where a backend lives.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Addr {
    /// Host name or IP and port; names are resolved again on every connect.
    Tcp(String, u16),
    /// A unix socket path.
    Unix(PathBuf),
}

/// One `servers:` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// Where it is.
    pub addr: Addr,
    /// Relative weight (> 0).
    pub weight: u32,
    /// The ring label and stats name: the given name, else `host:port` (`host` for port 11211),
    /// else the socket path.
    pub label: String,
}

/// One pool, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct PoolConfig {
    /// The top-level key.
    pub name: String,
    /// `listen`
    pub listen: Listen,
    /// `hash`
    pub hash: HashFn,
    /// `hash_tag`
    pub hash_tag: Option<[u8; 2]>,
    /// `distribution`
    pub distribution: Distribution,
    /// `timeout`: None waits forever.
    pub timeout: Option<Duration>,
    /// `backlog`
    pub backlog: u32,
    /// `client_connections`: 0 = unlimited.
    pub client_connections: u32,
    /// `redis_auth`
    pub redis_auth: Option<String>,
    /// `redis_db`
    pub redis_db: u32,
    /// `preconnect`
    pub preconnect: bool,
    /// `server_connections`
    pub server_connections: u32,
    /// `auto_eject_hosts`
    pub auto_eject_hosts: bool,
    /// `server_retry_timeout`
    pub server_retry_timeout: Duration,
    /// `server_failure_limit`
    pub server_failure_limit: u32,
    /// `tcpkeepalive`
    pub tcpkeepalive: bool,
    /// `reuseport`
    pub reuseport: bool,
    /// `servers`
    pub servers: Vec<ServerConfig>,
    /// `allow_flush` (ours): FLUSHDB/FLUSHALL are sent to every server; refused when false.
    pub allow_flush: bool,
    /// `redis_users` (ours): ACL user name -> password, checked by `AUTH user pass`; the user
    /// `default` has `redis_auth`'s password.
    pub redis_users: Vec<(String, String)>,
}

/// The raw YAML of one pool. Every key twemproxy 0.5.0 knows; anything else is rejected.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPool {
    listen: Option<String>,
    hash: Option<String>,
    hash_tag: Option<String>,
    distribution: Option<String>,
    timeout: Option<i64>,
    backlog: Option<u32>,
    client_connections: Option<u32>,
    redis: Option<bool>,
    redis_auth: Option<String>,
    redis_db: Option<u32>,
    preconnect: Option<bool>,
    server_connections: Option<u32>,
    auto_eject_hosts: Option<bool>,
    server_retry_timeout: Option<u64>,
    server_failure_limit: Option<u32>,
    tcpkeepalive: Option<bool>,
    reuseport: Option<bool>,
    servers: Option<Vec<String>>,
    allow_flush: Option<bool>,
    redis_users: Option<std::collections::BTreeMap<String, String>>,
}

/// Parses `host:port:weight [name]` or `/path.sock:weight [name]`.
fn parse_server(s: &str) -> Result<ServerConfig, String> {
    let s = s.trim();
    let (spec, name) = match s.split_once(char::is_whitespace) {
        Some((a, b)) => (a, Some(b.trim())),
        None => (s, None),
    };
    let (rest, weight) = spec
        .rsplit_once(':')
        .ok_or("expected host:port:weight or /path:weight")?;
    let weight: u32 = weight
        .parse()
        .map_err(|_| format!("weight `{weight}` is not a positive integer"))?;
    if weight == 0 {
        return Err("weight must be greater than 0".to_owned());
    }
    let (addr, default_label) = if rest.starts_with('/') {
        (Addr::Unix(PathBuf::from(rest)), rest.to_owned())
    } else {
        let (host, port) = rest.rsplit_once(':').ok_or("expected host:port:weight")?;
        let port: u16 = port
            .parse()
            .map_err(|_| format!("port `{port}` is not a port number"))?;
        if host.is_empty() {
            return Err("empty host".to_owned());
        }
        // twemproxy leaves the memcached default port out of the ring label.
        let label = if port == 11211 {
            host.to_owned()
        } else {
            format!("{host}:{port}")
        };
        (Addr::Tcp(host.to_owned(), port), label)
    };
    let label = match name {
        Some(n) if !n.is_empty() => n.to_owned(),
        _ => default_label,
    };
    Ok(ServerConfig {
        addr,
        weight,
        label,
    })
}

fn parse_listen(s: &str) -> Result<Listen, String> {
    let s = s.trim();
    if s.starts_with('/') {
        let (path, mode) = match s.split_once(char::is_whitespace) {
            Some((p, m)) => {
                let m = u32::from_str_radix(m.trim(), 8)
                    .map_err(|_| format!("`{m}` is not an octal file mode"))?;
                (p, Some(m))
            }
            None => (s, None),
        };
        return Ok(Listen::Unix(PathBuf::from(path), mode));
    }
    let (host, port) = s
        .rsplit_once(':')
        .ok_or_else(|| format!("`{s}` is not host:port or /path/to.sock"))?;
    port.parse::<u16>()
        .map_err(|_| format!("`{port}` is not a port number"))?;
    if host.is_empty() {
        return Err(format!("`{s}` has no host"));
    }
    Ok(Listen::Tcp(s.to_owned()))
}

/// Reads and validates a nutcracker.yml file.
pub fn load(path: &Path) -> Result<Vec<PoolConfig>, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    parse(&text).map_err(|e| ConfigError::File {
        path: path.to_owned(),
        source: Box::new(e),
    })
}

/// Parses and validates nutcracker.yml text.
pub fn parse(text: &str) -> Result<Vec<PoolConfig>, ConfigError> {
    // Pools are read straight from the text (not through a Value) so that serde_yaml can report
    // the line of an error inside a pool.
    let mut pools = Vec::new();
    let mut names = HashSet::new();
    let docs: indexmap_free::Pools = serde_yaml::from_str(text).map_err(ConfigError::Yaml)?;
    for (name, pool) in docs.0 {
        if !names.insert(name.clone()) {
            return Err(ConfigError::Invalid(format!(
                "pool `{name}` is defined twice"
            )));
        }
        pools.push(validate(name.clone(), pool).map_err(|(key, needle, msg)| {
            match locate(text, &name, key, needle.as_deref()) {
                Some(line) => {
                    ConfigError::Invalid(format!("pool `{name}`: {key}: {msg} at line {line}"))
                }
                None => ConfigError::Invalid(format!("pool `{name}`: {key}: {msg}")),
            }
        })?);
    }
    if pools.is_empty() {
        return Err(ConfigError::Invalid("no pools defined".to_owned()));
    }
    Ok(pools)
}

mod indexmap_free {
    //! A mapping of pools that keeps file order (nutcracker starts pools in file order) and lets
    //! serde_yaml report the position of an error inside a pool.
    use serde::Deserialize;
    use serde::de::{MapAccess, Visitor};

    pub(super) struct Pools(pub(super) Vec<(String, super::RawPool)>);

    impl<'de> Deserialize<'de> for Pools {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl<'de> Visitor<'de> for V {
                type Value = Pools;
                fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                    f.write_str("a mapping of pool names to pools")
                }
                fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Pools, A::Error> {
                    let mut v = Vec::new();
                    while let Some(k) = m.next_key::<String>()? {
                        let pool: super::RawPool = m.next_value()?;
                        v.push((k, pool));
                    }
                    Ok(Pools(v))
                }
            }
            d.deserialize_map(V)
        }
    }
}

/// The 1-based line of `key:` inside pool `pool` (of the line holding `needle` after it, for list
/// entries). serde_yaml reports positions for syntax and type errors; for the value checks done
/// after parsing, the line is found again in the text.
fn locate(text: &str, pool: &str, key: &str, needle: Option<&str>) -> Option<usize> {
    let mut in_pool = false;
    let mut in_key = false;
    for (i, line) in text.lines().enumerate() {
        let top = !line.starts_with([' ', '\t', '#', '-']) && !line.trim().is_empty();
        if top {
            let k = line
                .split(':')
                .next()
                .unwrap_or("")
                .trim()
                .trim_matches(['"', '\'']);
            in_pool = k == pool;
            in_key = false;
            continue;
        }
        if !in_pool {
            continue;
        }
        let t = line.trim_start();
        if t.starts_with(&format!("{key}:")) {
            in_key = true;
            if needle.is_none() {
                return Some(i + 1);
            }
        } else if in_key
            && let Some(n) = needle
            && line.contains(n)
        {
            return Some(i + 1);
        }
    }
    None
}

/// A validation error: the key, an optional text to find its line (a list entry), the message.
type Invalid = (&'static str, Option<String>, String);

fn validate(name: String, p: RawPool) -> Result<PoolConfig, Invalid> {
    let err = |key: &'static str, msg: String| (key, None, msg);
    let listen = p
        .listen
        .as_deref()
        .ok_or_else(|| err("listen", "is required".to_owned()))
        .and_then(|l| parse_listen(l).map_err(|e| err("listen", e)))?;
    if p.redis != Some(true) {
        return Err(err(
            "redis",
            "must be `true`: only Redis pools are supported (twemproxy's default is memcached)"
                .to_owned(),
        ));
    }
    let hash_tag = match p.hash_tag.as_deref() {
        None => None,
        Some(t) => match t.as_bytes() {
            [a, b] => Some([*a, *b]),
            _ => {
                return Err(err(
                    "hash_tag",
                    format!("`{t}` must be exactly two characters, e.g. \"{{}}\""),
                ));
            }
        },
    };
    let timeout = match p.timeout {
        None => None,
        Some(t) if t <= 0 => None,
        Some(t) => Some(Duration::from_millis(t as u64)),
    };
    let server_connections = p.server_connections.unwrap_or(1);
    if server_connections == 0 {
        return Err(err("server_connections", "must be at least 1".to_owned()));
    }
    let hash = match p.hash.as_deref() {
        None => HashFn::Fnv1a64,
        Some(h) => HashFn::from_name(h).ok_or_else(|| {
            let names: Vec<&str> = crate::hash::ALL.iter().map(|(n, _)| *n).collect();
            err(
                "hash",
                format!("unknown hash `{h}` (one of {})", names.join(", ")),
            )
        })?,
    };
    let distribution = match p.distribution.as_deref() {
        None => Distribution::Ketama,
        Some(d) => Distribution::from_name(d).ok_or_else(|| {
            err(
                "distribution",
                format!("unknown distribution `{d}` (one of ketama, modula, random)"),
            )
        })?,
    };
    let mut servers = Vec::new();
    for s in p
        .servers
        .ok_or_else(|| err("servers", "is required".to_owned()))?
    {
        servers.push(
            parse_server(&s).map_err(|e| ("servers", Some(s.clone()), format!("`{s}`: {e}")))?,
        );
    }
    if servers.is_empty() {
        return Err(err("servers", "needs at least one server".to_owned()));
    }
    // twemproxy sorts a pool's servers by name (shorter names first, then bytewise) when it
    // checks for duplicates, and keeps that order: it decides modula and random slots, the
    // order of equal ketama points and the stats order, so it is reproduced here.
    servers.sort_by(|a, b| {
        a.label
            .len()
            .cmp(&b.label.len())
            .then_with(|| a.label.as_bytes().cmp(b.label.as_bytes()))
    });
    let mut labels = HashSet::new();
    for s in &servers {
        if !labels.insert(s.label.as_str()) {
            return Err((
                "servers",
                Some(s.label.clone()),
                format!("two servers have the name `{}`", s.label),
            ));
        }
    }
    if p.server_failure_limit == Some(0) {
        return Err(err("server_failure_limit", "must be at least 1".to_owned()));
    }
    Ok(PoolConfig {
        listen,
        hash,
        hash_tag,
        distribution,
        timeout,
        backlog: p.backlog.unwrap_or(512),
        client_connections: p.client_connections.unwrap_or(0),
        redis_auth: p.redis_auth.filter(|a| !a.is_empty()),
        redis_db: p.redis_db.unwrap_or(0),
        preconnect: p.preconnect.unwrap_or(false),
        server_connections,
        auto_eject_hosts: p.auto_eject_hosts.unwrap_or(false),
        server_retry_timeout: Duration::from_millis(p.server_retry_timeout.unwrap_or(30_000)),
        server_failure_limit: p.server_failure_limit.unwrap_or(2),
        tcpkeepalive: p.tcpkeepalive.unwrap_or(false),
        reuseport: p.reuseport.unwrap_or(false),
        servers,
        allow_flush: p.allow_flush.unwrap_or(false),
        redis_users: p.redis_users.unwrap_or_default().into_iter().collect(),
        name,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "\
alpha:
  listen: 127.0.0.1:22121
  hash: murmur
  hash_tag: \"{}\"
  distribution: modula
  timeout: 400
  redis: true
  redis_auth: secret
  redis_db: 3
  server_connections: 2
  auto_eject_hosts: true
  server_retry_timeout: 2000
  server_failure_limit: 1
  servers:
   - 127.0.0.1:6379:1
   - redis-1.redis:6380:2 shard1
   - 10.0.0.1:11211:1
beta:
  listen: /tmp/beta.sock 0666
  redis: true
  servers:
   - /var/run/redis.sock:1 local
";

    #[test]
    fn parses_every_key_and_defaults() {
        let pools = parse(GOOD).unwrap();
        assert_eq!(pools.len(), 2);
        let a = &pools[0];
        assert_eq!(a.name, "alpha");
        assert_eq!(a.hash, HashFn::Murmur);
        assert_eq!(a.hash_tag, Some(*b"{}"));
        assert_eq!(a.distribution, Distribution::Modula);
        assert_eq!(a.timeout, Some(Duration::from_millis(400)));
        assert_eq!(a.redis_auth.as_deref(), Some("secret"));
        assert_eq!(a.redis_db, 3);
        assert_eq!(a.server_connections, 2);
        assert_eq!(a.server_failure_limit, 1);
        // Sorted as twemproxy sorts them: by name length, then bytes.
        let labels: Vec<&str> = a.servers.iter().map(|s| s.label.as_str()).collect();
        assert_eq!(labels, ["shard1", "10.0.0.1", "127.0.0.1:6379"]);
        assert_eq!(a.servers[0].weight, 2);
        let b = &pools[1];
        assert_eq!(
            b.listen,
            Listen::Unix(PathBuf::from("/tmp/beta.sock"), Some(0o666))
        );
        assert_eq!(b.hash, HashFn::Fnv1a64);
        assert_eq!(b.distribution, Distribution::Ketama);
        assert_eq!(b.backlog, 512);
        assert_eq!(b.server_retry_timeout, Duration::from_secs(30));
        assert_eq!(b.server_failure_limit, 2);
        assert_eq!(
            b.servers[0].addr,
            Addr::Unix(PathBuf::from("/var/run/redis.sock"))
        );
    }

    #[test]
    fn unknown_key_names_key_and_line() {
        let text = "alpha:\n  listen: 127.0.0.1:22121\n  redis: true\n  hashh: md5\n  servers:\n   - 127.0.0.1:6379:1\n";
        let e = parse(text).unwrap_err().to_string();
        assert!(e.contains("hashh"), "{e}");
        assert!(e.contains("line 4"), "{e}");
    }

    #[test]
    fn bad_values_name_key_and_line() {
        let cases = [
            ("  hash: sha1\n", "hash", "line 4"),
            ("  distribution: round\n", "distribution", "line 4"),
            ("  timeout: soon\n", "timeout", "line 4"),
        ];
        for (line, key, at) in cases {
            let text = format!(
                "alpha:\n  listen: 127.0.0.1:22121\n  redis: true\n{line}  servers:\n   - 127.0.0.1:6379:1\n"
            );
            let e = parse(&text).unwrap_err().to_string();
            assert!(e.contains(key) && e.contains(at), "{key}: {e}");
        }
        let text =
            "alpha:\n  listen: 127.0.0.1:22121\n  redis: true\n  servers:\n   - 127.0.0.1:6379:0\n";
        let e = parse(text).unwrap_err().to_string();
        assert!(
            e.contains("servers") && e.contains("weight") && e.contains("line 5"),
            "{e}"
        );
    }

    #[test]
    fn semantic_errors_name_the_key() {
        let base = "alpha:\n  listen: 127.0.0.1:22121\n  redis: true\n";
        let cases = [
            (
                format!("{base}  hash_tag: \"{{\"\n  servers:\n   - a:1:1\n"),
                "hash_tag",
            ),
            (
                format!("{base}  servers:\n   - a:1:1 x\n   - b:1:1 x\n"),
                "servers",
            ),
            (
                format!("{base}  server_connections: 0\n  servers:\n   - a:1:1\n"),
                "server_connections",
            ),
            (
                "alpha:\n  listen: 127.0.0.1:22121\n  servers:\n   - a:1:1\n".to_owned(),
                "redis",
            ),
            (base.to_owned(), "servers"),
        ];
        for (text, key) in cases {
            let e = parse(&text).unwrap_err().to_string();
            assert!(e.contains(key), "{key}: {e}");
        }
    }
}
