//! `mysql://`: the server's initial handshake, and with a user a real login
//! (`mysql_native_password`, or `caching_sha2_password` from its cache) and `SELECT 1`.
//!
//! Without a user, a server that sends its handshake is up, as `mysqladmin ping` reads it.
//! `caching_sha2_password`'s full authentication (a password not yet in the server's cache)
//! needs TLS or the server's RSA key; wait-for does neither and says so.

use sha1::{Digest as _, Sha1};
use sha2::Digest as _;
use sha2::Sha256;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::tcp;

/// The largest packet read: handshakes and one row of `SELECT 1` are tiny.
const MAX_PACKET: usize = 1024 * 1024;

const CLIENT_LONG_PASSWORD: u32 = 1;
const CLIENT_CONNECT_WITH_DB: u32 = 8;
const CLIENT_PROTOCOL_41: u32 = 0x200;
const CLIENT_SECURE_CONNECTION: u32 = 0x8000;
const CLIENT_PLUGIN_AUTH: u32 = 0x0008_0000;

struct Conn {
    stream: TcpStream,
    seq: u8,
}

impl Conn {
    async fn read(&mut self) -> Result<Vec<u8>, String> {
        let mut header = [0u8; 4];
        self.stream
            .read_exact(&mut header)
            .await
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::UnexpectedEof => "the server closed the connection".to_owned(),
                _ => format!("reading from the server: {e}"),
            })?;
        let len = u32::from_le_bytes([header[0], header[1], header[2], 0]) as usize;
        if len > MAX_PACKET {
            return Err("packet from the server is too large".to_owned());
        }
        self.seq = header[3].wrapping_add(1);
        let mut body = vec![0u8; len];
        self.stream
            .read_exact(&mut body)
            .await
            .map_err(|e| format!("reading from the server: {e}"))?;
        Ok(body)
    }

    async fn write(&mut self, body: &[u8]) -> Result<(), String> {
        let len = (body.len() as u32).to_le_bytes();
        let mut p = Vec::with_capacity(body.len() + 4);
        p.extend_from_slice(&[len[0], len[1], len[2], self.seq]);
        p.extend_from_slice(body);
        self.seq = self.seq.wrapping_add(1);
        self.stream
            .write_all(&p)
            .await
            .map_err(|e| format!("writing to the server: {e}"))
    }
}

/// `ERR` packet: code, SQL state and message.
fn err_packet(p: &[u8]) -> String {
    let code = p.get(1..3).map_or(0, |b| u16::from_le_bytes([b[0], b[1]]));
    let rest = p.get(3..).unwrap_or(&[]);
    let msg = match rest.first() {
        Some(b'#') if rest.len() >= 6 => &rest[6..],
        _ => rest,
    };
    format!("error {code}: {}", String::from_utf8_lossy(msg))
}

fn cstr(p: &[u8], pos: usize) -> Result<(&[u8], usize), String> {
    let rest = p.get(pos..).ok_or("handshake too short")?;
    let end = rest
        .iter()
        .position(|b| *b == 0)
        .ok_or("handshake string without its terminator")?;
    Ok((&rest[..end], pos + end + 1))
}

/// What the initial handshake says.
#[derive(Debug)]
struct Handshake {
    version: String,
    scramble: Vec<u8>,
    plugin: String,
    capabilities: u32,
}

fn parse_handshake(p: &[u8]) -> Result<Handshake, String> {
    match p.first() {
        Some(10) => {}
        Some(0xFF) => return Err(err_packet(p)),
        Some(v) => return Err(format!("protocol version {v}, not a MySQL 4.1+ handshake")),
        None => return Err("empty handshake".to_owned()),
    }
    let (version, pos) = cstr(p, 1)?;
    // Connection id (4), first 8 bytes of the scramble, a filler byte.
    let part1 = p.get(pos + 4..pos + 12).ok_or("handshake too short")?;
    let mut pos = pos + 13;
    let cap_lo = p.get(pos..pos + 2).ok_or("handshake too short")?;
    let mut capabilities = u32::from(u16::from_le_bytes([cap_lo[0], cap_lo[1]]));
    pos += 2;
    let mut scramble = part1.to_vec();
    let mut plugin = "mysql_native_password".to_owned();
    if p.len() > pos {
        // Character set (1), status (2), upper capabilities (2), scramble length (1), 10 reserved.
        let cap_hi = p.get(pos + 3..pos + 5).ok_or("handshake too short")?;
        capabilities |= u32::from(u16::from_le_bytes([cap_hi[0], cap_hi[1]])) << 16;
        let auth_len = *p.get(pos + 5).ok_or("handshake too short")? as usize;
        pos += 16;
        if capabilities & CLIENT_SECURE_CONNECTION != 0 {
            let n = auth_len.saturating_sub(8).max(13);
            let part2 = p.get(pos..pos + n).ok_or("handshake too short")?;
            // The part ends with a NUL that is not part of the 20-byte scramble.
            scramble.extend_from_slice(part2.strip_suffix(&[0]).unwrap_or(part2));
            pos += n;
        }
        if capabilities & CLIENT_PLUGIN_AUTH != 0
            && let Ok((name, _)) = cstr(p, pos)
        {
            plugin = String::from_utf8_lossy(name).into_owned();
        }
    }
    Ok(Handshake {
        version: String::from_utf8_lossy(version).into_owned(),
        scramble,
        plugin,
        capabilities,
    })
}

/// The auth response of `plugin` for `password` and the server's `scramble`.
fn scramble_for(plugin: &str, password: &str, scramble: &[u8]) -> Result<Vec<u8>, String> {
    if password.is_empty() {
        return Ok(Vec::new());
    }
    let scramble = &scramble[..scramble.len().min(20)];
    match plugin {
        // SHA1(password) XOR SHA1(scramble + SHA1(SHA1(password))).
        "mysql_native_password" => {
            let h1 = Sha1::digest(password.as_bytes());
            let h2 = Sha1::digest(h1);
            let mut h = Sha1::new();
            h.update(scramble);
            h.update(h2);
            let h3 = h.finalize();
            Ok(h1.iter().zip(h3.iter()).map(|(a, b)| a ^ b).collect())
        }
        // SHA256(password) XOR SHA256(SHA256(SHA256(password)) + scramble).
        "caching_sha2_password" => {
            let h1 = Sha256::digest(password.as_bytes());
            let h2 = Sha256::digest(h1);
            let mut h = Sha256::new();
            h.update(h2);
            h.update(scramble);
            let h3 = h.finalize();
            Ok(h1.iter().zip(h3.iter()).map(|(a, b)| a ^ b).collect())
        }
        other => Err(format!(
            "the account uses the `{other}` authentication plugin, which wait-for does not do (mysql_native_password and caching_sha2_password are)"
        )),
    }
}

/// One attempt.
pub async fn check(
    host: &str,
    port: u16,
    user: Option<&str>,
    password: &str,
    database: Option<&str>,
) -> Result<String, String> {
    let (stream, addr) = tcp::connect(host, port).await?;
    let mut conn = Conn { stream, seq: 0 };
    let hs = parse_handshake(&conn.read().await.map_err(|e| format!("{addr}: {e}"))?)
        .map_err(|e| format!("{addr}: {e}"))?;
    let Some(user) = user else {
        return Ok(format!(
            "{addr}: handshake from {} (give a user in the URL to log in)",
            hs.version
        ));
    };
    if hs.capabilities & CLIENT_PROTOCOL_41 == 0 {
        return Err(format!(
            "{addr}: server {} predates protocol 4.1",
            hs.version
        ));
    }
    let mut caps =
        CLIENT_LONG_PASSWORD | CLIENT_PROTOCOL_41 | CLIENT_SECURE_CONNECTION | CLIENT_PLUGIN_AUTH;
    if database.is_some() {
        caps |= CLIENT_CONNECT_WITH_DB;
    }
    let plugin = hs.plugin.clone();
    let auth = scramble_for(&plugin, password, &hs.scramble).map_err(|e| format!("{addr}: {e}"))?;
    let mut p = Vec::new();
    p.extend_from_slice(&caps.to_le_bytes());
    p.extend_from_slice(&(16u32 << 20).to_le_bytes());
    // utf8mb4_general_ci; then 23 reserved bytes.
    p.push(45);
    p.extend_from_slice(&[0u8; 23]);
    p.extend_from_slice(user.as_bytes());
    p.push(0);
    p.push(auth.len() as u8);
    p.extend_from_slice(&auth);
    if let Some(db) = database {
        p.extend_from_slice(db.as_bytes());
        p.push(0);
    }
    p.extend_from_slice(plugin.as_bytes());
    p.push(0);
    conn.write(&p).await.map_err(|e| format!("{addr}: {e}"))?;
    let mut plugin = plugin;
    // At most a switch and a fast-auth result before OK or ERR.
    for _ in 0..4 {
        let r = conn.read().await.map_err(|e| format!("{addr}: {e}"))?;
        match r.first() {
            Some(0x00) => return select_one(&mut conn, addr, user, &hs.version).await,
            Some(0xFF) => return Err(format!("{addr}: login as `{user}`: {}", err_packet(&r))),
            // Auth switch request: plugin name, then its scramble.
            Some(0xFE) => {
                let (name, pos) = cstr(&r, 1).map_err(|e| format!("{addr}: {e}"))?;
                plugin = String::from_utf8_lossy(name).into_owned();
                let data = r.get(pos..).unwrap_or(&[]);
                let data = data.strip_suffix(&[0]).unwrap_or(data);
                let auth =
                    scramble_for(&plugin, password, data).map_err(|e| format!("{addr}: {e}"))?;
                conn.write(&auth)
                    .await
                    .map_err(|e| format!("{addr}: {e}"))?;
            }
            // caching_sha2_password: 3 = fast auth succeeded (OK follows), 4 = full auth needed.
            Some(0x01) if plugin == "caching_sha2_password" => match r.get(1) {
                Some(3) => {}
                Some(4) => {
                    return Err(format!(
                        "{addr}: server {} is up, but asks for caching_sha2_password full authentication (a password not in its cache), which needs TLS or RSA; wait-for does neither",
                        hs.version
                    ));
                }
                _ => return Err(format!("{addr}: unexpected caching_sha2_password message")),
            },
            _ => return Err(format!("{addr}: unexpected packet during login")),
        }
    }
    Err(format!("{addr}: login did not finish"))
}

/// `SELECT 1` after a login: column count, column definition, EOF, one row, EOF.
async fn select_one(
    conn: &mut Conn,
    addr: std::net::SocketAddr,
    user: &str,
    version: &str,
) -> Result<String, String> {
    conn.seq = 0;
    conn.write(b"\x03SELECT 1")
        .await
        .map_err(|e| format!("{addr}: {e}"))?;
    let mut eofs = 0;
    let mut rows = 0;
    let mut first = true;
    // Bounded: one column and one row make five packets.
    for _ in 0..16 {
        let p = conn.read().await.map_err(|e| format!("{addr}: {e}"))?;
        if p.first() == Some(&0xFF) {
            return Err(format!("{addr}: SELECT 1: {}", err_packet(&p)));
        }
        if first {
            first = false;
            continue;
        }
        if p.first() == Some(&0xFE) && p.len() < 9 {
            eofs += 1;
            if eofs == 2 {
                let _ = conn.stream.shutdown().await;
                if rows != 1 {
                    return Err(format!("{addr}: SELECT 1 returned {rows} rows"));
                }
                return Ok(format!(
                    "{addr}: logged in to {version} as `{user}`, SELECT 1 answered"
                ));
            }
        } else if eofs == 1 {
            rows += 1;
        }
    }
    Err(format!("{addr}: SELECT 1: the result did not end"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn native_password_scramble_matches_the_documented_formula() {
        // Known answer: password "secret", scramble of twenty 'a's, computed step by step.
        let scramble = [b'a'; 20];
        let got = scramble_for("mysql_native_password", "secret", &scramble).unwrap();
        let h1 = Sha1::digest(b"secret");
        let h2 = Sha1::digest(h1);
        let mut h = Sha1::new();
        h.update(scramble);
        h.update(h2);
        let h3 = h.finalize();
        // XOR with h1 gives back h3: the server's check.
        let back: Vec<u8> = got.iter().zip(h1.iter()).map(|(a, b)| a ^ b).collect();
        assert_eq!(back, h3.to_vec());
        assert!(
            scramble_for("mysql_native_password", "", &scramble)
                .unwrap()
                .is_empty()
        );
        assert!(
            scramble_for("client_ed25519", "x", &scramble)
                .unwrap_err()
                .contains("client_ed25519")
        );
    }

    #[test]
    fn handshake_parsing_survives_every_truncation() {
        let mut p = vec![10];
        p.extend_from_slice(b"10.11.6-MariaDB\0");
        p.extend_from_slice(&[1, 0, 0, 0]);
        p.extend_from_slice(b"abcdefgh");
        p.push(0);
        p.extend_from_slice(&0xF7FFu16.to_le_bytes());
        p.push(45);
        p.extend_from_slice(&[2, 0]);
        p.extend_from_slice(&0x0008u16.to_le_bytes());
        p.push(21);
        p.extend_from_slice(&[0; 10]);
        p.extend_from_slice(b"ijklmnopqrst\0");
        p.extend_from_slice(b"mysql_native_password\0");
        let hs = parse_handshake(&p).unwrap();
        assert_eq!(hs.version, "10.11.6-MariaDB");
        assert_eq!(hs.scramble, b"abcdefghijklmnopqrst");
        assert_eq!(hs.plugin, "mysql_native_password");
        for cut in 0..p.len() {
            let _ = parse_handshake(&p[..cut]);
        }
        let mut err = vec![0xFF, 0x10, 0x04];
        err.extend_from_slice(b"#08004Too many connections");
        assert_eq!(
            parse_handshake(&err).unwrap_err(),
            "error 1040: Too many connections"
        );
    }
}
