//! Smart HTTP for git on loopback: a small HTTP/1.1 server that hands each request to the real
//! `git http-backend` as CGI, and `git daemon` for git://. git-sync's integration tests and
//! `cargo xtask bench git-sync` both use them, so that what is tested and what is measured is
//! served the same way.
//!
//! The response is streamed as `git http-backend` writes it (chunked transfer encoding), as real
//! git hosts and CGI front ends (nginx + fcgiwrap, Apache) do: a client can index the pack while
//! the server is still generating it. Optional basic auth, an optional throttle to catch a fetch
//! in flight, and a count of the fetches (POST requests) served.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

/// What the server requires and how fast it answers.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// `(user, password)` required as HTTP basic auth; `None` serves everyone.
    pub basic_auth: Option<(String, String)>,
    /// Slows response bodies down to this many bytes per 10 ms.
    pub throttle: Option<usize>,
}

/// A running server; stops accepting when dropped.
pub struct HttpGit {
    /// The port it listens on (127.0.0.1).
    pub port: u16,
    /// POST requests (upload-pack: fetches) received.
    pub requests: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl HttpGit {
    /// Serves the repositories under `root` (`GIT_PROJECT_ROOT`) on an ephemeral loopback port.
    pub fn start(root: &Path, options: Options) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        listener.set_nonblocking(true)?;
        let stop = Arc::new(AtomicBool::new(false));
        let requests = Arc::new(AtomicU64::new(0));
        let shared = Arc::new(Shared {
            root: root.to_path_buf(),
            auth: options
                .basic_auth
                .map(|(u, p)| format!("Basic {}", base64(&format!("{u}:{p}")))),
            throttle: options.throttle,
            stop: stop.clone(),
            requests: requests.clone(),
        });
        std::thread::spawn(move || {
            while !shared.stop.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((s, _)) => {
                        let shared = shared.clone();
                        std::thread::spawn(move || {
                            let _ = serve(s, &shared);
                        });
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(2)),
                }
            }
        });
        Ok(Self {
            port,
            requests,
            stop,
        })
    }

    /// The URL of repository `name` (e.g. `repo.git`), with `user_info` (`user:pass@` or empty).
    pub fn url(&self, user_info: &str, name: &str) -> String {
        format!("http://{user_info}127.0.0.1:{}/{name}", self.port)
    }
}

impl Drop for HttpGit {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

struct Shared {
    root: PathBuf,
    auth: Option<String>,
    throttle: Option<usize>,
    stop: Arc<AtomicBool>,
    requests: Arc<AtomicU64>,
}

/// One keep-alive connection: requests are answered in turn until the client closes.
fn serve(stream: TcpStream, s: &Shared) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    stream.set_nodelay(true)?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut out = stream;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or("").to_owned();
        let target = parts.next().unwrap_or("").to_owned();
        if method == "POST" {
            s.requests.fetch_add(1, Ordering::Relaxed);
        }
        let mut headers = Vec::new();
        loop {
            let mut h = String::new();
            reader.read_line(&mut h)?;
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
            }
        }
        let get = |k: &str| {
            headers
                .iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.as_str())
        };
        let body = read_body(&mut reader, get("content-length"), get("transfer-encoding"))?;
        if let Some(expected) = &s.auth
            && get("authorization") != Some(expected.as_str())
        {
            out.write_all(
                b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"git\"\r\nContent-Length: 0\r\n\r\n",
            )?;
            continue;
        }
        let (path, query) = target.split_once('?').unwrap_or((&target, ""));
        let mut cmd = Command::new("git");
        cmd.arg("http-backend")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("GIT_PROJECT_ROOT", &s.root)
            .env("GIT_HTTP_EXPORT_ALL", "1")
            .env("REQUEST_METHOD", &method)
            .env("PATH_INFO", path)
            .env("QUERY_STRING", query)
            .env("REMOTE_USER", "git")
            .env("REMOTE_ADDR", "127.0.0.1")
            .env("CONTENT_LENGTH", body.len().to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        for (h, var) in [
            ("content-type", "CONTENT_TYPE"),
            ("git-protocol", "GIT_PROTOCOL"),
            ("content-encoding", "HTTP_CONTENT_ENCODING"),
        ] {
            if let Some(v) = get(h) {
                cmd.env(var, v);
            }
        }
        let mut child = cmd.spawn()?;
        let mut stdin = child.stdin.take().expect("stdin is piped");
        let writer = std::thread::spawn(move || {
            let _ = stdin.write_all(&body);
        });
        let mut cgi = BufReader::with_capacity(64 * 1024, child.stdout.take().expect("piped"));
        let result = relay(&mut cgi, &mut out, s);
        drop(cgi);
        let _ = child.kill();
        let _ = child.wait();
        let _ = writer.join();
        result?;
    }
}

/// `git daemon` serving the repositories under a directory on a loopback port; killed on drop.
///
/// The `git-daemon` program is run directly from git's exec path: `git daemon` runs it as a child
/// process, and killing the `git` parent would leave the daemon behind.
pub struct GitDaemon {
    child: Child,
}

impl GitDaemon {
    /// Starts the daemon on 127.0.0.1:`port` for the repositories under `base` and waits (at most
    /// 10 s) until it accepts connections.
    pub fn start(base: &Path, port: u16) -> std::io::Result<Self> {
        let exec_path = Command::new("git").arg("--exec-path").output()?;
        let dir = String::from_utf8_lossy(&exec_path.stdout).trim().to_owned();
        let child = Command::new(Path::new(&dir).join("git-daemon"))
            .args([
                "--reuseaddr",
                "--export-all",
                "--listen=127.0.0.1",
                &format!("--port={port}"),
            ])
            .arg(format!("--base-path={}", base.display()))
            .arg(base)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let daemon = Self { child };
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if std::time::Instant::now() > deadline {
                return Err(std::io::Error::other(format!(
                    "git daemon is not listening on port {port} after 10 s"
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(daemon)
    }
}

impl Drop for GitDaemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn read_body(
    reader: &mut impl BufRead,
    content_length: Option<&str>,
    transfer_encoding: Option<&str>,
) -> std::io::Result<Vec<u8>> {
    let mut body = Vec::new();
    if let Some(len) = content_length.and_then(|l| l.parse::<usize>().ok()) {
        body.resize(len, 0);
        reader.read_exact(&mut body)?;
    } else if transfer_encoding.is_some_and(|t| t.contains("chunked")) {
        loop {
            let mut size = String::new();
            reader.read_line(&mut size)?;
            let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
            let mut chunk = vec![0; n + 2];
            reader.read_exact(&mut chunk)?;
            if n == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..n]);
        }
    }
    Ok(body)
}

/// Turns the CGI's header block into an HTTP status line and headers, then streams its body
/// with chunked encoding as it arrives.
fn relay(cgi: &mut impl BufRead, out: &mut TcpStream, s: &Shared) -> std::io::Result<()> {
    let mut status = "200 OK".to_owned();
    let mut head = String::new();
    loop {
        let mut h = String::new();
        if cgi.read_line(&mut h)? == 0 {
            out.write_all(b"HTTP/1.1 500 Bad CGI\r\nContent-Length: 0\r\n\r\n")?;
            return Ok(());
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some(v) = h.strip_prefix("Status:") {
            status = v.trim().to_owned();
        } else {
            head.push_str(h);
            head.push_str("\r\n");
        }
    }
    out.write_all(
        format!("HTTP/1.1 {status}\r\n{head}Transfer-Encoding: chunked\r\n\r\n").as_bytes(),
    )?;
    let step = s.throttle.map_or(usize::MAX, |r| r.max(1));
    loop {
        let buf = cgi.fill_buf()?;
        if buf.is_empty() {
            break;
        }
        let n = buf.len().min(step);
        if s.stop.load(Ordering::Relaxed) {
            return Ok(());
        }
        out.write_all(format!("{n:x}\r\n").as_bytes())?;
        out.write_all(&buf[..n])?;
        out.write_all(b"\r\n")?;
        cgi.consume(n);
        if s.throttle.is_some() {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    out.write_all(b"0\r\n\r\n")?;
    out.flush()
}

fn base64(s: &str) -> String {
    const T: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in s.as_bytes().chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::base64;

    #[test]
    fn base64_matches_rfc_4648_vectors() {
        for (plain, enc) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foobar", "Zm9vYmFy"),
            ("user:pass", "dXNlcjpwYXNz"),
        ] {
            assert_eq!(base64(plain), enc);
        }
    }
}
