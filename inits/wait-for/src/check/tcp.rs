//! `tcp://host:port`: a connection is accepted.

use std::net::SocketAddr;

use tokio::net::TcpStream;

/// Resolves `host` (through the C library, as the application will) and returns its addresses.
pub async fn resolve(host: &str, port: u16) -> Result<Vec<SocketAddr>, String> {
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| format!("cannot resolve {host}: {e}"))?
        .collect();
    if addrs.is_empty() {
        return Err(format!("{host} has no address"));
    }
    Ok(addrs)
}

/// Connects to the first address of `host` that accepts, saying for each what failed.
pub async fn connect(host: &str, port: u16) -> Result<(TcpStream, SocketAddr), String> {
    let mut errors = Vec::new();
    for addr in resolve(host, port).await? {
        match TcpStream::connect(addr).await {
            Ok(s) => {
                let _ = s.set_nodelay(true);
                return Ok((s, addr));
            }
            Err(e) => errors.push(format!("{addr}: {e}")),
        }
    }
    Err(format!("connect: {}", errors.join("; ")))
}

/// One attempt.
pub async fn check(host: &str, port: u16) -> Result<String, String> {
    let (_stream, addr) = connect(host, port).await?;
    Ok(format!("connected to {addr}"))
}
