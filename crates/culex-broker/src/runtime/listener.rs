//! Listeners: listen sockets (TCP, or unix with `listener 0 /path`) and
//! their accept loops, one per listen address, with a connection cap and
//! a back-off when accepting fails.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::unix::AsyncFd;

use super::state::{shutdown_requested, Runtime};
use super::transport::Socket;
use crate::protocol::Peer;

/// A listen socket: mio's accept non-blocking sockets that stay out of
/// tokio until a connection has to wait for one (`transport.rs`).
pub(crate) enum Listener {
    /// TCP on an address.
    Tcp(AsyncFd<mio::net::TcpListener>),
    /// A unix socket; its clients are known by its path.
    Unix(AsyncFd<mio::net::UnixListener>, Arc<str>),
}

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
    AsyncFd::new(mio::net::TcpListener::from_std(socket.into())).map(Listener::Tcp)
}

/// Opens a unix listen socket at `path`, as mosquitto does: a socket file
/// left there (by a broker that did not stop cleanly) is replaced, and the
/// new one is readable and writable by its owner and group only (0770).
/// Anything else at `path` is left alone and the listener fails.
pub(crate) fn bind_unix(path: &Path) -> std::io::Result<Listener> {
    use socket2::{Domain, SockAddr, Socket, Type};
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => std::fs::remove_file(path)?,
        Ok(_) => {
            return Err(std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                format!("{} exists and is not a socket", path.display()),
            ))
        }
        Err(_) => {}
    }
    let socket = Socket::new(Domain::UNIX, Type::STREAM, None)?;
    socket.set_nonblocking(true)?;
    socket.bind(&SockAddr::unix(path)?)?;
    // Before `listen`, nobody can connect: the mode is set in time.
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o770))?;
    socket.listen(4096)?;
    let name = Arc::from(path.to_string_lossy().as_ref());
    let listener = std::os::unix::net::UnixListener::from(std::os::fd::OwnedFd::from(socket));
    // As for TCP above: mio's listener owns its descriptor.
    #[allow(deprecated)]
    AsyncFd::new(mio::net::UnixListener::from_std(listener)).map(|l| Listener::Unix(l, name))
}

/// Removes a unix listener's socket file at shutdown (only if it still is
/// a socket).
pub(crate) fn remove_unix(path: &PathBuf) {
    use std::os::unix::fs::FileTypeExt;
    if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_socket()) {
        let _ = std::fs::remove_file(path);
    }
}

impl Listener {
    /// The TCP address bound (`None` for a unix socket).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        match self {
            Listener::Tcp(l) => l.get_ref().local_addr().ok(),
            Listener::Unix(..) => None,
        }
    }

    /// Accepts one connection (TCP sockets with TCP_NODELAY).
    async fn accept(&self) -> std::io::Result<(Socket, Peer)> {
        match self {
            Listener::Tcp(listener) => loop {
                let mut ready = listener.readable().await?;
                if let Ok(accepted) = ready.try_io(|l| l.get_ref().accept()) {
                    let (stream, peer) = accepted?;
                    // Linux copies it from the listener (`bind`).
                    if !cfg!(target_os = "linux") {
                        let _ = stream.set_nodelay(true);
                    }
                    return Ok((Socket::Tcp(stream.into()), Peer::Ip(peer)));
                }
            },
            Listener::Unix(listener, path) => loop {
                let mut ready = listener.readable().await?;
                if let Ok(accepted) = ready.try_io(|l| l.get_ref().accept()) {
                    let (stream, _) = accepted?;
                    return Ok((Socket::Unix(stream.into()), Peer::Local(path.clone())));
                }
            },
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
            r = listener.accept() => r,
        };
        match accepted {
            Ok((socket, peer)) => {
                // Per listener, counted from accept, as in mosquitto: a
                // socket that never sends CONNECT holds its place too.
                if max_connections.is_some_and(|max| rt.listener_load(index) >= max) {
                    tracing::info!(
                        "Client connection from {} denied: max_connections exceeded.",
                        peer.host()
                    );
                    drop(socket);
                    continue;
                }
                rt.begin_handshake(index);
                // Spawned as is: a wrapping `async move` block would keep
                // the arguments beside the connection's own state.
                rt.spawn_conn(super::serve::run(rt.clone(), socket, peer, index, port));
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
            let addr = listener.local_addr().unwrap();
            let _client = tokio::net::TcpStream::connect(addr).await.unwrap();
            let (socket, _) = listener.accept().await.unwrap();
            let Socket::Tcp(stream) = socket else {
                panic!("not a direct TCP socket")
            };
            assert!(stream.nodelay().unwrap());
        });
    }

    /// A unix listener replaces a stale socket file, refuses to remove any
    /// other file, and makes its socket 0770 (mosquitto's umask 0007).
    #[test]
    fn unix_listeners_replace_stale_sockets_only() {
        use std::os::unix::fs::PermissionsExt;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("mqtt.sock");
            let stale = std::os::unix::net::UnixListener::bind(&path).unwrap();
            drop(stale);
            let listener = bind_unix(&path).unwrap();
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o770);
            let _client = tokio::net::UnixStream::connect(&path).await.unwrap();
            let (_, peer) = listener.accept().await.unwrap();
            assert_eq!(peer.to_string(), format!("{}:0", path.display()));
            drop(listener);
            remove_unix(&path);
            assert!(!path.exists());

            let file = dir.path().join("not-a-socket");
            std::fs::write(&file, "keep me").unwrap();
            assert!(bind_unix(&file).is_err());
            assert_eq!(std::fs::read_to_string(&file).unwrap(), "keep me");
        });
    }
}
