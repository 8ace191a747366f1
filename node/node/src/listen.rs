//! TCP listeners bound before a node starts anything else, so a port clash
//! is an immediate start-up error naming the address instead of a failure
//! after the node has opened its data and joined consensus.
//!
//! A listener is bound here as a plain std socket, outside any runtime, and
//! handed to the runtime that will serve it (`tokio::net::TcpListener::from_std`
//! on that runtime), so binding does not tie it to a runtime.

use std::net::SocketAddr;

/// Connections the kernel queues before they are accepted (what tokio's own
/// `TcpListener::bind` asks for).
const BACKLOG: i32 = 1024;

/// Binds a non-blocking TCP listener on `addr`, with `SO_REUSEADDR` on Unix
/// (as tokio's `bind` does) so a restarted node can take its port while old
/// connections linger in TIME_WAIT.
pub fn bind_tcp(addr: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    #[cfg(unix)]
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    Ok(socket.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_taken_port_is_refused_at_once() {
        let first = bind_tcp("127.0.0.1:0".parse().unwrap()).unwrap();
        let taken = first.local_addr().unwrap();
        let e = bind_tcp(taken).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::AddrInUse, "{e}");
    }
}
