//! `postgres://`: the protocol's startup handshake, and with a password a real login
//! (cleartext, md5 or SCRAM-SHA-256) and `SELECT 1`.
//!
//! Without a password the answer is read the way `pg_isready` reads it: a server that asks for
//! authentication, or refuses the login for any reason but "the database system is starting up"
//! (SQLSTATE 57P03), is accepting connections.

use std::sync::Arc;

use bytes::BytesMut;
use fallible_iterator::FallibleIterator;
use postgres_protocol::authentication::sasl::{ChannelBinding, SCRAM_SHA_256, ScramSha256};
use postgres_protocol::message::backend::Message;
use postgres_protocol::message::frontend;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::tcp;

/// The largest message read: startup answers and one row of `SELECT 1` are tiny.
const MAX_MESSAGE: usize = 1024 * 1024;

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

async fn read_message(io: &mut (dyn Io + '_), buf: &mut BytesMut) -> Result<Message, String> {
    loop {
        if let Some(m) =
            Message::parse(buf).map_err(|e| format!("bad message from the server: {e}"))?
        {
            return Ok(m);
        }
        if buf.len() > MAX_MESSAGE {
            return Err("message from the server is too large".to_owned());
        }
        buf.reserve(4096);
        let n = io
            .read_buf(buf)
            .await
            .map_err(|e| format!("reading from the server: {e}"))?;
        if n == 0 {
            return Err("the server closed the connection".to_owned());
        }
    }
}

async fn send(io: &mut (dyn Io + '_), buf: &mut BytesMut) -> Result<(), String> {
    io.write_all(buf)
        .await
        .map_err(|e| format!("writing to the server: {e}"))?;
    buf.clear();
    Ok(())
}

/// The SQLSTATE and message of an ErrorResponse.
fn error_fields(body: &postgres_protocol::message::backend::ErrorResponseBody) -> (String, String) {
    let mut code = String::new();
    let mut message = String::new();
    let mut fields = body.fields();
    while let Ok(Some(f)) = fields.next() {
        match f.type_() {
            b'C' => code = String::from_utf8_lossy(f.value_bytes()).into_owned(),
            b'M' => message = String::from_utf8_lossy(f.value_bytes()).into_owned(),
            _ => {}
        }
    }
    (code, message)
}

/// SQLSTATE `cannot_connect_now`: starting up, shutting down or in recovery.
const CANNOT_CONNECT_NOW: &str = "57P03";

/// One attempt.
pub async fn check(
    host: &str,
    port: u16,
    user: &str,
    password: Option<&str>,
    database: &str,
    tls: Option<Arc<rustls::ClientConfig>>,
) -> Result<String, String> {
    let (mut stream, addr) = tcp::connect(host, port).await?;
    let mut buf = BytesMut::new();
    let mut io: Box<dyn Io> = match tls {
        None => Box::new(stream),
        Some(config) => {
            frontend::ssl_request(&mut buf);
            send(&mut stream, &mut buf).await?;
            let answer = stream
                .read_u8()
                .await
                .map_err(|e| format!("{addr}: reading the answer to SSLRequest: {e}"))?;
            if answer != b'S' {
                return Err(format!(
                    "{addr}: the server does not accept TLS (sslmode asks for it)"
                ));
            }
            let name = ServerName::try_from(host.to_owned())
                .map_err(|e| format!("`{host}` is not a TLS server name: {e}"))?;
            Box::new(
                tokio_rustls::TlsConnector::from(config)
                    .connect(name, stream)
                    .await
                    .map_err(|e| format!("{addr}: TLS handshake: {e}"))?,
            )
        }
    };
    let io = io.as_mut();
    frontend::startup_message(
        [
            ("user", user),
            ("database", database),
            ("application_name", "wait-for"),
        ],
        &mut buf,
    )
    .map_err(|e| format!("startup message: {e}"))?;
    send(io, &mut buf).await?;
    let mut rbuf = BytesMut::new();
    let mut scram: Option<ScramSha256> = None;
    // How the server had us log in, for the log line.
    let mut method = "trust";
    let accepting = |how: &str| {
        Ok(format!(
            "{addr}: accepting connections ({how}; give a password in the URL to log in)"
        ))
    };
    loop {
        match read_message(io, &mut rbuf)
            .await
            .map_err(|e| format!("{addr}: {e}"))?
        {
            Message::AuthenticationOk
            | Message::ParameterStatus(_)
            | Message::BackendKeyData(_)
            | Message::NoticeResponse(_) => {}
            Message::ReadyForQuery(_) => break,
            Message::AuthenticationCleartextPassword => {
                let Some(pw) = password else {
                    return accepting("asked for a password");
                };
                frontend::password_message(pw.as_bytes(), &mut buf).map_err(|e| e.to_string())?;
                send(io, &mut buf).await?;
                method = "password";
            }
            Message::AuthenticationMd5Password(body) => {
                let Some(pw) = password else {
                    return accepting("asked for an md5 password");
                };
                let hash = postgres_protocol::authentication::md5_hash(
                    user.as_bytes(),
                    pw.as_bytes(),
                    body.salt(),
                );
                frontend::password_message(hash.as_bytes(), &mut buf).map_err(|e| e.to_string())?;
                send(io, &mut buf).await?;
                method = "md5";
            }
            Message::AuthenticationSasl(body) => {
                let Some(pw) = password else {
                    return accepting("asked for SCRAM authentication");
                };
                let mut offered = Vec::new();
                let mut mechanisms = body.mechanisms();
                while let Ok(Some(m)) = mechanisms.next() {
                    offered.push(m.to_owned());
                }
                if !offered.iter().any(|m| m == SCRAM_SHA_256) {
                    return Err(format!(
                        "{addr}: the server offers SASL mechanisms {offered:?}, none of them SCRAM-SHA-256"
                    ));
                }
                // No channel binding: the gs2 header says so, which servers accept over TLS too.
                let s = ScramSha256::new(pw.as_bytes(), ChannelBinding::unsupported());
                frontend::sasl_initial_response(SCRAM_SHA_256, s.message(), &mut buf)
                    .map_err(|e| e.to_string())?;
                send(io, &mut buf).await?;
                scram = Some(s);
                method = "SCRAM-SHA-256";
            }
            Message::AuthenticationSaslContinue(body) => {
                let s = scram
                    .as_mut()
                    .ok_or("SASL continue without a SASL exchange")?;
                s.update(body.data())
                    .map_err(|e| format!("{addr}: SCRAM: {e}"))?;
                frontend::sasl_response(s.message(), &mut buf).map_err(|e| e.to_string())?;
                send(io, &mut buf).await?;
            }
            Message::AuthenticationSaslFinal(body) => {
                let s = scram.as_mut().ok_or("SASL final without a SASL exchange")?;
                s.finish(body.data())
                    .map_err(|e| format!("{addr}: SCRAM: the server's proof is wrong: {e}"))?;
            }
            Message::AuthenticationGss
            | Message::AuthenticationKerberosV5
            | Message::AuthenticationSspi
            | Message::AuthenticationScmCredential
            | Message::AuthenticationGssContinue(_) => {
                if password.is_none() {
                    return accepting("asked for GSS/Kerberos/SSPI authentication");
                }
                return Err(format!(
                    "{addr}: the server asks for GSS/Kerberos/SSPI authentication, which wait-for does not do"
                ));
            }
            Message::ErrorResponse(body) => {
                let (code, message) = error_fields(&body);
                if code == CANNOT_CONNECT_NOW {
                    return Err(format!("{addr}: {message} ({code})"));
                }
                if password.is_none() {
                    return accepting(&format!("answered `{message}` ({code})"));
                }
                return Err(format!("{addr}: {message} ({code})"));
            }
            _ => return Err(format!("{addr}: unexpected message during startup")),
        }
    }
    frontend::query("SELECT 1", &mut buf).map_err(|e| e.to_string())?;
    send(io, &mut buf).await?;
    let mut rows = 0;
    loop {
        match read_message(io, &mut rbuf)
            .await
            .map_err(|e| format!("{addr}: {e}"))?
        {
            Message::DataRow(_) => rows += 1,
            Message::ErrorResponse(body) => {
                let (code, message) = error_fields(&body);
                return Err(format!("{addr}: SELECT 1: {message} ({code})"));
            }
            Message::ReadyForQuery(_) => break,
            _ => {}
        }
    }
    frontend::terminate(&mut buf);
    let _ = send(io, &mut buf).await;
    if rows != 1 {
        return Err(format!("{addr}: SELECT 1 returned {rows} rows"));
    }
    Ok(format!(
        "{addr}: logged in to database `{database}` as `{user}` ({method}), SELECT 1 answered"
    ))
}
