//! Keeping credentials out of logs, the error file and metrics.
//!
//! Secrets reach git-sync three ways: a password in `--repo`'s user-info, `GITSYNC_PASSWORD`, and
//! the content of `--password-file` (re-read on every sync, so it can change). Every message that
//! leaves the process goes through [`Redactor::redact`].

use std::sync::{Arc, Mutex};

/// What replaces a secret in output.
pub const REDACTED: &str = "REDACTED";

/// Replaces known secrets and URL passwords in text. Cheap to clone; shared by the sync loop (which
/// learns new secrets when it re-reads the password file) and whoever reports errors.
#[derive(Clone, Debug, Default)]
pub struct Redactor {
    secrets: Arc<Mutex<Vec<String>>>,
}

impl Redactor {
    /// A redactor that knows no secrets yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a secret to hide from now on. Very short values are ignored: redacting every `a` in a
    /// message would make it unreadable and protects nothing.
    pub fn add(&self, secret: &str) {
        let secret = secret.trim();
        if secret.len() < 3 {
            return;
        }
        let mut s = self.secrets.lock().unwrap_or_else(|e| e.into_inner());
        if !s.iter().any(|x| x == secret) {
            s.push(secret.to_owned());
        }
    }

    /// `text` with URL passwords and every known secret replaced by [`REDACTED`].
    pub fn redact(&self, text: &str) -> String {
        let mut out = redact_url_passwords(text);
        let secrets = self.secrets.lock().unwrap_or_else(|e| e.into_inner());
        for s in secrets.iter() {
            if out.contains(s.as_str()) {
                out = out.replace(s.as_str(), REDACTED);
            }
        }
        out
    }
}

/// Replaces the password of every `scheme://user:password@host` in `text`.
pub fn redact_url_passwords(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find("://") {
        let (head, tail) = rest.split_at(pos + 3);
        out.push_str(head);
        // The authority ends at the first '/', whitespace or quote; user-info ends at its last '@'.
        let end = tail
            .find(|c: char| c == '/' || c.is_whitespace() || c == '"' || c == '\'')
            .unwrap_or(tail.len());
        let authority = &tail[..end];
        match authority.rfind('@') {
            Some(at) => {
                let userinfo = &authority[..at];
                match userinfo.find(':') {
                    Some(colon) => {
                        out.push_str(&userinfo[..colon]);
                        out.push(':');
                        out.push_str(REDACTED);
                    }
                    // A lone user-info is often a token (`https://<token>@host/...`); ssh's is
                    // the login name, which is not a secret.
                    None if head.ends_with("ssh://") => out.push_str(userinfo),
                    None => out.push_str(REDACTED),
                }
                out.push_str(&authority[at..]);
            }
            None => out.push_str(authority),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

/// `url` without its user-info, for the `origin` remote written to disk and for labels.
pub fn strip_userinfo(url: &str) -> String {
    let Some(pos) = url.find("://") else {
        return url.to_owned();
    };
    let (head, tail) = url.split_at(pos + 3);
    let end = tail.find('/').unwrap_or(tail.len());
    match tail[..end].rfind('@') {
        // ssh:// URLs carry the login name, which is not a secret and is needed to connect.
        Some(at) if !head.starts_with("ssh") => format!("{head}{}", &tail[at + 1..]),
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_passwords_are_hidden() {
        assert_eq!(
            redact_url_passwords("failed: https://bob:s3cret@example.com/r.git: 401"),
            "failed: https://bob:REDACTED@example.com/r.git: 401"
        );
        assert_eq!(
            redact_url_passwords("git://h/r and https://tok@h/x ssh://git@h/r"),
            "git://h/r and https://REDACTED@h/x ssh://git@h/r"
        );
        assert_eq!(redact_url_passwords("no url"), "no url");
    }

    #[test]
    fn known_secrets_are_hidden() {
        let r = Redactor::new();
        r.add("hunter22");
        r.add("a");
        assert_eq!(r.redact("pw hunter22 a"), "pw REDACTED a");
    }

    #[test]
    fn userinfo_is_stripped_except_for_ssh() {
        assert_eq!(
            strip_userinfo("https://u:p@h:8080/r.git"),
            "https://h:8080/r.git"
        );
        assert_eq!(strip_userinfo("ssh://git@h:22/r"), "ssh://git@h:22/r");
        assert_eq!(strip_userinfo("git@h:r.git"), "git@h:r.git");
    }
}
