//! Listening sockets, bound the same way by every binary.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};

use socket2::{Domain, Protocol, Socket, Type};

/// Binds a TCP listener (non-blocking, ready for tokio). The unspecified IPv6 address `[::]`, the
/// default of every admin server, listens on IPv6 *and* IPv4 (`IPV6_V6ONLY` off, whatever the
/// host's `net.ipv6.bindv6only`), so kubelet probes work in IPv4, IPv6-only and dual-stack
/// clusters alike; on a host without IPv6 it falls back to `0.0.0.0`.
pub fn bind_tcp(addr: SocketAddr) -> io::Result<TcpListener> {
    match addr {
        SocketAddr::V6(v6) if v6.ip().is_unspecified() => match bind_dual_stack(addr) {
            Ok(l) => Ok(l),
            Err(e) if no_ipv6(&e) => {
                bind_plain(SocketAddr::from((Ipv4Addr::UNSPECIFIED, v6.port())))
            }
            Err(e) => Err(e),
        },
        _ => bind_plain(addr),
    }
}

fn bind_dual_stack(addr: SocketAddr) -> io::Result<TcpListener> {
    let s = Socket::new(Domain::IPV6, Type::STREAM, Some(Protocol::TCP))?;
    s.set_only_v6(false)?;
    // As std does on Unix: a restarted container can rebind while old connections sit in
    // TIME_WAIT.
    s.set_reuse_address(true)?;
    s.bind(&addr.into())?;
    s.listen(1024)?;
    s.set_nonblocking(true)?;
    Ok(s.into())
}

fn bind_plain(addr: SocketAddr) -> io::Result<TcpListener> {
    let l = TcpListener::bind(addr)?;
    l.set_nonblocking(true)?;
    Ok(l)
}

/// The errors of a host (or network namespace) without IPv6.
fn no_ipv6(e: &io::Error) -> bool {
    // EAFNOSUPPORT: the kernel has no IPv6; EADDRNOTAVAIL: IPv6 disabled on every interface.
    matches!(e.raw_os_error(), Some(97) | Some(99))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv6Addr, TcpStream};

    #[test]
    fn the_unspecified_ipv6_address_takes_ipv4_and_ipv6() {
        let l = bind_tcp(SocketAddr::from((Ipv6Addr::UNSPECIFIED, 0))).unwrap();
        let port = l.local_addr().unwrap().port();
        TcpStream::connect((Ipv4Addr::LOCALHOST, port)).expect("IPv4 loopback");
        if l.local_addr().unwrap().is_ipv6() {
            TcpStream::connect((Ipv6Addr::LOCALHOST, port)).expect("IPv6 loopback");
        }
    }

    #[test]
    fn a_specific_address_is_bound_as_given() {
        let l = bind_tcp(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).unwrap();
        assert_eq!(l.local_addr().unwrap().ip(), Ipv4Addr::LOCALHOST);
    }
}
