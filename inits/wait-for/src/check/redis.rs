//! `redis://`: AUTH when a password is given, SELECT a database when one is given, then PING
//! must answer PONG. A server still loading its dataset answers `-LOADING`: not ready.

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

use super::tcp;

/// The longest reply line read: a PONG or an error message, never a dataset.
const MAX_LINE: usize = 4096;

fn command(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

async fn reply<R: tokio::io::AsyncBufRead + Unpin>(r: &mut R) -> Result<String, String> {
    let mut line = Vec::new();
    let n = (&mut *r)
        .take(MAX_LINE as u64)
        .read_until(b'\n', &mut line)
        .await
        .map_err(|e| format!("reading the reply: {e}"))?;
    if n == 0 {
        return Err("the server closed the connection".to_owned());
    }
    let text = String::from_utf8_lossy(&line).trim_end().to_owned();
    match text.as_bytes().first() {
        Some(b'+') => Ok(text[1..].to_owned()),
        Some(b'-') => Err(text[1..].to_owned()),
        _ => Err(format!("unexpected reply `{text}`")),
    }
}

/// One attempt.
pub async fn check(
    host: &str,
    port: u16,
    user: Option<&str>,
    password: Option<&str>,
    db: Option<u32>,
) -> Result<String, String> {
    let (stream, addr) = tcp::connect(host, port).await?;
    let (rd, mut wr) = stream.into_split();
    let mut rd = BufReader::new(rd);
    let mut out = Vec::new();
    let mut expected = 1;
    if let Some(pw) = password {
        match user {
            Some(u) => out.extend(command(&[b"AUTH", u.as_bytes(), pw.as_bytes()])),
            None => out.extend(command(&[b"AUTH", pw.as_bytes()])),
        }
        expected += 1;
    }
    let db_s = db.map(|d| d.to_string());
    if let Some(d) = &db_s {
        out.extend(command(&[b"SELECT", d.as_bytes()]));
        expected += 1;
    }
    out.extend(command(&[b"PING"]));
    // One write: AUTH, SELECT and PING pipelined, each reply read in order.
    wr.write_all(&out)
        .await
        .map_err(|e| format!("{addr}: {e}"))?;
    let mut last = String::new();
    for i in 0..expected {
        let is_auth = password.is_some() && i == 0;
        match reply(&mut rd).await {
            Ok(r) => last = r,
            Err(e) if is_auth => return Err(format!("{addr}: AUTH failed: {e}")),
            Err(e) => return Err(format!("{addr}: {e}")),
        }
    }
    if last != "PONG" {
        return Err(format!("{addr}: PING answered `{last}`"));
    }
    Ok(format!("{addr} answered PONG"))
}
