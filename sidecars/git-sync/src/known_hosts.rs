//! Checking an ssh server's host key against an OpenSSH `known_hosts` file.
//!
//! With no `ssh` binary in the image, git-sync checks host keys itself: libssh2 hands over the raw
//! key during the handshake and this module looks it up the way OpenSSH does, including hashed
//! host names (`|1|salt|hash`, written by `ssh-keyscan -H`) and `[host]:port` for other ports.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha1::Sha1;

/// Why a host key was not accepted.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum HostKeyError {
    /// No line of the file names this host.
    #[error("host {0} is not in the known_hosts file")]
    UnknownHost(String),
    /// The host is listed, with other keys: possibly a man in the middle.
    #[error("host key for {0} does not match the known_hosts file")]
    Mismatch(String),
}

/// One usable line: host patterns and a key.
#[derive(Debug, Clone)]
struct Entry {
    hosts: Hosts,
    key: Vec<u8>,
}

#[derive(Debug, Clone)]
enum Hosts {
    /// Comma-separated patterns, `!` negation and `*`/`?` wildcards.
    Patterns(Vec<String>),
    /// `|1|base64(salt)|base64(hmac_sha1(salt, host))`.
    Hashed { salt: Vec<u8>, hash: Vec<u8> },
}

/// A parsed known_hosts file.
#[derive(Debug, Clone, Default)]
pub struct KnownHosts {
    entries: Vec<Entry>,
}

impl KnownHosts {
    /// Parses the file's text. Lines it does not understand (markers such as `@revoked`, bad
    /// base64) are skipped, as OpenSSH does, except that a revoked key is never accepted because it
    /// is simply not added.
    pub fn parse(text: &str) -> Self {
        let mut entries = Vec::new();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with('@') {
                continue;
            }
            let mut fields = line.split_whitespace();
            let (Some(hosts), Some(_kind), Some(key)) =
                (fields.next(), fields.next(), fields.next())
            else {
                continue;
            };
            let Ok(key) = STANDARD.decode(key) else {
                continue;
            };
            let hosts = if let Some(h) = hosts.strip_prefix("|1|") {
                let mut parts = h.split('|');
                match (
                    parts.next().and_then(|s| STANDARD.decode(s).ok()),
                    parts.next().and_then(|s| STANDARD.decode(s).ok()),
                ) {
                    (Some(salt), Some(hash)) => Hosts::Hashed { salt, hash },
                    _ => continue,
                }
            } else {
                Hosts::Patterns(hosts.split(',').map(str::to_owned).collect())
            };
            entries.push(Entry { hosts, key });
        }
        Self { entries }
    }

    /// Checks `key` (the raw public key blob, as in the file's base64 field) for `host` on `port`.
    pub fn check(&self, host: &str, port: u16, key: &[u8]) -> Result<(), HostKeyError> {
        let name = if port == 22 {
            host.to_owned()
        } else {
            format!("[{host}]:{port}")
        };
        let mut listed = false;
        for e in &self.entries {
            if e.hosts.matches(&name) {
                if e.key == key {
                    return Ok(());
                }
                listed = true;
            }
        }
        if listed {
            Err(HostKeyError::Mismatch(name))
        } else {
            Err(HostKeyError::UnknownHost(name))
        }
    }

    /// Number of usable lines.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the file had no usable line.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl Hosts {
    fn matches(&self, name: &str) -> bool {
        match self {
            Hosts::Hashed { salt, hash } => {
                let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(salt) else {
                    return false;
                };
                mac.update(name.as_bytes());
                mac.verify_slice(hash).is_ok()
            }
            Hosts::Patterns(pats) => {
                let mut matched = false;
                for p in pats {
                    if let Some(neg) = p.strip_prefix('!') {
                        if wildcard(neg, name) {
                            return false;
                        }
                    } else if wildcard(p, name) {
                        matched = true;
                    }
                }
                matched
            }
        }
    }
}

/// Glob match with `*` and `?`, case-insensitive like host names.
fn wildcard(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.to_ascii_lowercase().chars().collect();
    let t: Vec<char> = text.to_ascii_lowercase().chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

/// The host and port an ssh repository URL connects to: `ssh://[user@]host[:port]/path` or the
/// scp-like `[user@]host:path`. `None` for other schemes.
pub fn ssh_host_port(url: &str) -> Option<(String, u16)> {
    if let Some(rest) = url
        .strip_prefix("ssh://")
        .or_else(|| url.strip_prefix("git+ssh://"))
        .or_else(|| url.strip_prefix("ssh+git://"))
    {
        let authority = rest.split('/').next().unwrap_or("");
        let hostport = authority.rsplit('@').next().unwrap_or("");
        if let Some(v6) = hostport.strip_prefix('[') {
            let (host, after) = v6.split_once(']')?;
            let port = after.strip_prefix(':').and_then(|p| p.parse().ok());
            return Some((host.to_owned(), port.unwrap_or(22)));
        }
        return match hostport.split_once(':') {
            Some((h, p)) => Some((h.to_owned(), p.parse().ok()?)),
            None => Some((hostport.to_owned(), 22)),
        };
    }
    if url.contains("://") {
        return None;
    }
    // scp-like syntax: a ':' before any '/'.
    let colon = url.find(':')?;
    if url[..colon].contains('/') {
        return None;
    }
    let host = url[..colon].rsplit('@').next().unwrap_or("");
    Some((host.to_owned(), 22))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_and_port_entries() {
        let kh = KnownHosts::parse(
            "# comment\nexample.com,10.0.0.1 ssh-ed25519 AAAA\n[127.0.0.1]:2222 ssh-ed25519 AQID\n",
        );
        assert_eq!(kh.len(), 2);
        let aaaa = STANDARD.decode("AAAA").unwrap();
        assert!(kh.check("example.com", 22, &aaaa).is_ok());
        assert!(kh.check("10.0.0.1", 22, &aaaa).is_ok());
        assert!(kh.check("127.0.0.1", 2222, &[1, 2, 3]).is_ok());
        assert_eq!(
            kh.check("127.0.0.1", 2222, &aaaa),
            Err(HostKeyError::Mismatch("[127.0.0.1]:2222".into()))
        );
        assert!(matches!(
            kh.check("127.0.0.1", 22, &aaaa),
            Err(HostKeyError::UnknownHost(_))
        ));
    }

    #[test]
    fn hashed_entries() {
        // Computed for host "github.com" with salt "salt".
        let mut mac = Hmac::<Sha1>::new_from_slice(b"salt").unwrap();
        mac.update(b"github.com");
        let hash = STANDARD.encode(mac.finalize().into_bytes());
        let line = format!("|1|{}|{hash} ssh-ed25519 AQID\n", STANDARD.encode("salt"));
        let kh = KnownHosts::parse(&line);
        assert!(kh.check("github.com", 22, &[1, 2, 3]).is_ok());
        assert!(kh.check("gitlab.com", 22, &[1, 2, 3]).is_err());
    }

    #[test]
    fn wildcards_and_negation() {
        let kh = KnownHosts::parse("*.corp,!bad.corp ssh-rsa AQID\n");
        assert!(kh.check("git.corp", 22, &[1, 2, 3]).is_ok());
        assert!(kh.check("bad.corp", 22, &[1, 2, 3]).is_err());
    }

    #[test]
    fn ssh_urls() {
        assert_eq!(
            ssh_host_port("ssh://git@127.0.0.1:2222/srv/r.git"),
            Some(("127.0.0.1".into(), 2222))
        );
        assert_eq!(
            ssh_host_port("git@github.com:org/r.git"),
            Some(("github.com".into(), 22))
        );
        assert_eq!(ssh_host_port("https://h/r"), None);
        assert_eq!(ssh_host_port("/srv/repo"), None);
    }
}
