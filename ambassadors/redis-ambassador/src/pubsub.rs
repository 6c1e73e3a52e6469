//! A subscribed client: from its first SUBSCRIBE, PSUBSCRIBE or SSUBSCRIBE on, the client's
//! connection is relayed to a connection of its own to one server, until it unsubscribes from
//! everything (then it is an ordinary client again) or disconnects (then the server connection
//! is closed with it).
//!
//! Classic pub/sub (SUBSCRIBE, PSUBSCRIBE, PUBLISH) lives on one server of the pool, the one the
//! ring gives the empty key: a pattern can match any channel, so channels and patterns must share
//! one server for every message to reach every subscriber. Sharded pub/sub (SSUBSCRIBE,
//! SPUBLISH) is placed by channel like a key.

use std::sync::Arc;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::backend::{self, Stream};
use crate::client::ClientCtx;
use crate::pool::Pool;
use crate::resp;

/// How a relay ended.
pub enum End {
    /// The client unsubscribed from everything: serve it as an ordinary client again.
    Normal,
    /// Close the client (it quit or disconnected, the server connection broke, or shutdown).
    Close,
}

/// Relays `client` to a new connection to `server`, starting with the request `first`.
pub async fn relay<S: AsyncRead + AsyncWrite + Unpin>(
    client: &mut S,
    buf: &mut BytesMut,
    pool: &Arc<Pool>,
    server: usize,
    first: BytesMut,
    resp3: bool,
    ctx: &ClientCtx,
) -> End {
    let srv = &pool.servers[server].shared;
    match backend::connect_stream(srv, resp3).await {
        Ok(up) => {
            srv.own_gauge.inc();
            let end = match up {
                Stream::Tcp(up) => relay_on(client, buf, up, first, pool, server, ctx).await,
                Stream::Unix(up) => relay_on(client, buf, up, first, pool, server, ctx).await,
            };
            srv.own_gauge.dec();
            end
        }
        Err(e) => {
            let mut o = BytesMut::new();
            resp::put_error(
                &mut o,
                &format!("ERR server {} unavailable: {e}", srv.cfg.label),
            );
            if client.write_all(&o).await.is_err() {
                return End::Close;
            }
            End::Normal
        }
    }
}

/// Is this frame the confirmation of the last unsubscription (`unsubscribe`, channel, 0)?
fn last_unsubscribe(frame: &[u8]) -> bool {
    if !matches!(frame.first(), Some(b'*' | b'>')) {
        return false;
    }
    let mut f = frame.to_vec();
    f[0] = b'*';
    let Some(e) = resp::array_elements(&f) else {
        return false;
    };
    e.len() == 3
        && resp::bulk_value(&f[e[0].0..e[0].1]).is_some_and(|k| {
            matches!(
                k.to_ascii_lowercase().as_slice(),
                b"unsubscribe" | b"punsubscribe" | b"sunsubscribe"
            )
        })
        && resp::parse_int_reply(&f[e[2].0..e[2].1]) == Some(0)
}

async fn relay_on<S, U>(
    client: &mut S,
    buf: &mut BytesMut,
    mut up: U,
    first: BytesMut,
    pool: &Pool,
    server: usize,
    ctx: &ClientCtx,
) -> End
where
    S: AsyncRead + AsyncWrite + Unpin,
    U: AsyncRead + AsyncWrite + Unpin,
{
    let label = pool.servers[server].shared.cfg.label.clone();
    if up.write_all(&first).await.is_err() {
        let mut o = BytesMut::new();
        resp::put_error(&mut o, &format!("ERR connection to server {label} lost"));
        let _ = client.write_all(&o).await;
        return End::Close;
    }
    let mut ubuf = BytesMut::with_capacity(4096);
    let mut args = Vec::new();
    let mut resume = resp::Resume::default();
    let mut to_server = BytesMut::new();
    let mut to_client = BytesMut::new();
    loop {
        // The client's requests: (un)subscriptions, PING and RESET go to the server; the rest is
        // refused, as redis-server refuses it on a subscribed RESP2 connection.
        loop {
            match resp::parse_request_resuming(
                buf,
                &mut args,
                ctx.limits.max_request_bytes,
                &mut resume,
            ) {
                Ok(None) => break,
                Ok(Some(n)) => {
                    if !args.is_empty() {
                        let name = buf[args[0].0..args[0].1].to_ascii_uppercase();
                        match name.as_slice() {
                            b"SUBSCRIBE" | b"UNSUBSCRIBE" | b"PSUBSCRIBE" | b"PUNSUBSCRIBE"
                            | b"SSUBSCRIBE" | b"SUNSUBSCRIBE" | b"PING" | b"RESET" => {
                                resp::put_array_header(&mut to_server, args.len());
                                for a in &args {
                                    resp::put_bulk(&mut to_server, &buf[a.0..a.1]);
                                }
                            }
                            b"QUIT" => {
                                to_client.extend_from_slice(b"+OK\r\n");
                                let _ = client.write_all(&to_client).await;
                                return End::Close;
                            }
                            _ => resp::put_error(
                                &mut to_client,
                                &format!(
                                    "ERR Can't execute '{}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context",
                                    String::from_utf8_lossy(&name).to_ascii_lowercase()
                                ),
                            ),
                        }
                    }
                    buf.advance(n);
                }
                Err(e) => {
                    resp::put_error(&mut to_client, &format!("ERR Protocol error: {e}"));
                    let _ = client.write_all(&to_client).await;
                    return End::Close;
                }
            }
        }
        if !to_server.is_empty() {
            if up.write_all(&to_server).await.is_err() {
                return End::Close;
            }
            to_server.clear();
        }
        if !to_client.is_empty() {
            if client.write_all(&to_client).await.is_err() {
                return End::Close;
            }
            to_client.clear();
        }
        if buf.capacity() - buf.len() < 512 {
            buf.reserve(4096);
        }
        if ubuf.capacity() - ubuf.len() < 512 {
            ubuf.reserve(8192);
        }
        tokio::select! {
            r = client.read_buf(buf) => {
                if !matches!(r, Ok(n) if n > 0) {
                    return End::Close;
                }
            }
            r = up.read_buf(&mut ubuf) => {
                if !matches!(r, Ok(n) if n > 0) {
                    // The subscriptions are gone with the connection: closing the client makes
                    // it reconnect and subscribe again.
                    tracing::warn!(server = %label, "pub/sub connection to the server lost; closing the subscribed client");
                    return End::Close;
                }
                let mut pos = 0;
                let mut done = false;
                while let Ok(Some(n)) = resp::scan_reply(&ubuf[pos..]) {
                    let frame = &ubuf[pos..pos + n];
                    pos += n;
                    if last_unsubscribe(frame) {
                        done = true;
                        break;
                    }
                }
                if resp::scan_reply(&ubuf[pos..]).is_err() {
                    return End::Close;
                }
                let frames = ubuf.split_to(pos);
                if client.write_all(&frames).await.is_err() {
                    return End::Close;
                }
                if done {
                    return End::Normal;
                }
            }
            _ = ctx.shutdown.cancelled() => return End::Close,
        }
    }
}
