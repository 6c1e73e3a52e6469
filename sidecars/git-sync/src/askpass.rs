//! `--askpass-url`: before each sync, the credentials are asked of a URL (a token service in the
//! pod, say), which answers `username=<user>` and `password=<password>` lines, as upstream reads
//! them.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper::Request;

use crate::hooks::HttpError;

/// A user name and password from the askpass URL.
#[derive(Clone, PartialEq, Eq)]
pub struct UserPass {
    /// `username=`.
    pub username: String,
    /// `password=`.
    pub password: String,
}

impl std::fmt::Debug for UserPass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserPass")
            .field("username", &self.username)
            .field("password", &"REDACTED")
            .finish()
    }
}

/// Why the askpass URL gave no credentials.
#[derive(Debug, thiserror::Error)]
pub enum AskpassError {
    /// The answer lacks a line.
    #[error("the answer has no `username=` and `password=` lines")]
    NoCredentials,
    /// Another status than 2xx.
    #[error("answered {0}")]
    Status(hyper::StatusCode),
    /// The call itself failed.
    #[error(transparent)]
    Http(#[from] HttpError),
}

/// The answer is a few lines: more is not an askpass answer.
const MAX_ANSWER: usize = 64 * 1024;

/// Parses the answer: `key=value` lines; `username` and `password` are used, others ignored.
pub fn parse(body: &str) -> Result<UserPass, AskpassError> {
    let mut username = None;
    let mut password = None;
    for line in body.lines() {
        let line = line.trim_end_matches('\r');
        if let Some((k, v)) = line.split_once('=') {
            match k.trim() {
                "username" => username = Some(v.to_owned()),
                "password" => password = Some(v.to_owned()),
                _ => {}
            }
        }
    }
    match (username, password) {
        (Some(username), Some(password)) => Ok(UserPass { username, password }),
        _ => Err(AskpassError::NoCredentials),
    }
}

/// GETs `url` within `timeout` and parses the answer.
pub async fn fetch(url: &str, timeout: Duration) -> Result<UserPass, AskpassError> {
    let client = crate::hooks::http_client(url)?;
    let req = Request::get(url)
        .body(Empty::<Bytes>::new())
        .map_err(HttpError::BadUrl)?;
    let answer = async {
        let resp = client.request(req).await.map_err(HttpError::Send)?;
        let status = resp.status();
        if !status.is_success() {
            return Err(AskpassError::Status(status));
        }
        let body = Limited::new(resp.into_body(), MAX_ANSWER)
            .collect()
            .await
            .map_err(HttpError::Body)?
            .to_bytes();
        parse(&String::from_utf8_lossy(&body))
    };
    tokio::time::timeout(timeout, answer)
        .await
        .map_err(|_| HttpError::Timeout(timeout))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_as_upstream_reads_them() {
        let up = parse("username=alice\npassword=s3cr=t\n").unwrap();
        assert_eq!(
            (up.username.as_str(), up.password.as_str()),
            ("alice", "s3cr=t")
        );
        let up = parse("password=p\r\nusername=u\r\nother=x\r\n").unwrap();
        assert_eq!(up.username, "u");
        assert!(parse("username=alice\n").is_err());
        assert!(parse("").is_err());
        assert!(!format!("{up:?}").contains("\"p\""));
    }
}
