//! Listeners: listen sockets and their accept loops, one per listen
//! address, with a connection cap and a back-off when accepting fails.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::unix::AsyncFd;

use super::state::{shutdown_requested, Runtime};

/// A listen socket: mio's accepts non-blocking sockets that stay out of
/// tokio until a connection has to wait for one (`transport.rs`).
pub(crate) type Listener = AsyncFd<mio::net::TcpListener>;

/// Opens a listen socket with a large backlog; IPv6 sockets are v6-only so
/// that `0.0.0.0` and `::` can both be bound on one port.
pub(crate) fn bind(addr: SocketAddr) -> std::io::Result<Listener> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_nonblocking(true)?;
    // Linux gives accepted sockets the listener's TCP_NODELAY: one system
    // call per listener instead of one per connection.
    socket.set_nodelay(true)?;
    socket.bind(&addr.into())?;
    socket.listen(4096)?;
    // `AsyncFd::new` is deprecated because a `T` that does not own its
    // descriptor could close it while registered; mio's listener owns it,
    // and the `AsyncFd` owns the listener.
    #[allow(deprecated)]
    AsyncFd::new(mio::net::TcpListener::from_std(socket.into()))
}

/// Accepts one connection, with TCP_NODELAY set.
async fn accept(listener: &Listener) -> std::io::Result<(std::net::TcpStream, SocketAddr)> {
    loop {
        let mut ready = listener.readable().await?;
        if let Ok(accepted) = ready.try_io(|l| l.get_ref().accept()) {
            let (stream, peer) = accepted?;
            // Linux copies it from the listener (`bind`).
            if !cfg!(target_os = "linux") {
                let _ = stream.set_nodelay(true);
            }
            return Ok((stream.into(), peer));
        }
    }
}

/// Accepts connections on `listener` (listener `index` of the config, on
/// `port`) until shutdown, each served by its own task.
pub(crate) async fn accept_loop(rt: Arc<Runtime>, listener: Listener, index: usize, port: u16) {
    let _alive = rt.alive_token();
    let mut shutdown = rt.shutdown.clone();
    let config = rt.core.config();
    let max_connections = config
        .listeners
        .get(index)
        .and_then(|l| l.max_connections)
        .or(config.limits.max_connections);
    loop {
        let accepted = tokio::select! {
            _ = shutdown_requested(&mut shutdown) => return,
            r = accept(&listener) => r,
        };
        match accepted {
            Ok((stream, peer)) => {
                let current = rt.core.stats().connected.load(Ordering::Relaxed);
                if max_connections.is_some_and(|max| current >= max) {
                    tracing::info!(
                        "Client connection from {} denied: max_connections exceeded.",
                        peer.ip()
                    );
                    drop(stream);
                    continue;
                }
                // Spawned as is: a wrapping `async move` block would keep
                // the arguments beside the connection's own state.
                tokio::spawn(super::serve::run(rt.clone(), stream, peer, index, port));
            }
            Err(e) => {
                // Out of file descriptors and the like: log, pause briefly.
                tracing::error!("Error accepting connection: {e}");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Accepted sockets have TCP_NODELAY (on Linux, from the listener): fails
    /// if neither sets it.
    #[test]
    fn accepted_sockets_do_not_delay() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let listener = bind("127.0.0.1:0".parse().unwrap()).unwrap();
            let addr = listener.get_ref().local_addr().unwrap();
            let _client = tokio::net::TcpStream::connect(addr).await.unwrap();
            let (stream, _) = accept(&listener).await.unwrap();
            assert!(stream.nodelay().unwrap());
        });
    }
}
