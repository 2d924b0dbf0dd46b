//! Listeners: listen sockets (TCP, or unix with `listener 0 /path`) and
//! their accept loops, with a connection cap and a back-off when accepting
//! fails. A TCP address has one listen socket per connection thread
//! (`SO_REUSEPORT`: the kernel spreads new connections over them), each
//! accepted on by its own thread, so a new connection is served where it
//! was accepted; a unix socket has one, on the broker's runtime.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::unix::AsyncFd;

use super::state::{shutdown_requested, Runtime};
use super::transport::Socket;
use crate::protocol::Peer;

/// A listen socket opened and not yet registered with a runtime: its
/// accept loop registers it with the runtime it runs on.
pub(crate) enum Open {
    /// One of a TCP address's listen sockets.
    Tcp(mio::net::TcpListener),
    /// A unix socket and its path.
    Unix(mio::net::UnixListener, Arc<str>),
}

impl Open {
    /// The TCP address bound (`None` for a unix socket).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        match self {
            Open::Tcp(l) => l.local_addr().ok(),
            Open::Unix(..) => None,
        }
    }

    /// Registers the socket with the current runtime.
    fn register(self) -> std::io::Result<Listener> {
        // `AsyncFd::new` is deprecated because a `T` that does not own its
        // descriptor could close it while registered; mio's listeners own
        // theirs, and the `AsyncFd` owns the listener.
        #[allow(deprecated)]
        match self {
            Open::Tcp(l) => AsyncFd::new(l).map(Listener::Tcp),
            Open::Unix(l, name) => AsyncFd::new(l).map(|l| Listener::Unix(l, name)),
        }
    }
}

/// A listen socket: mio's accept non-blocking sockets that stay out of
/// tokio until a connection has to wait for one (`transport.rs`).
enum Listener {
    /// TCP on an address.
    Tcp(AsyncFd<mio::net::TcpListener>),
    /// A unix socket; its clients are known by its path.
    Unix(AsyncFd<mio::net::UnixListener>, Arc<str>),
}

/// Opens `copies` listen sockets on `addr` with a large backlog, sharing
/// its port through `SO_REUSEPORT` when there is more than one. The port
/// is first bound alone, so that one another program (or another broker)
/// listens on is refused as mosquitto refuses it rather than shared, and
/// so that port 0 picks the port all of them take. IPv6 sockets are
/// v6-only so that `0.0.0.0` and `::` can both be bound on one port.
pub(crate) fn bind(addr: SocketAddr, copies: usize) -> std::io::Result<Vec<Open>> {
    if copies <= 1 {
        return Ok(vec![Open::Tcp(listen_socket(addr, false)?)]);
    }
    let probe = tcp_socket(addr, false)?;
    probe.bind(&addr.into())?;
    let addr = probe
        .local_addr()?
        .as_socket()
        .ok_or_else(|| std::io::Error::other("not an IP address"))?;
    drop(probe);
    (0..copies)
        .map(|_| listen_socket(addr, true).map(Open::Tcp))
        .collect()
}

fn listen_socket(addr: SocketAddr, reuse_port: bool) -> std::io::Result<mio::net::TcpListener> {
    let socket = tcp_socket(addr, reuse_port)?;
    socket.bind(&addr.into())?;
    socket.listen(4096)?;
    // Every client speaks first (CONNECT, a TLS ClientHello, a PROXY
    // header, an HTTP upgrade): accepting once it has, the connection's
    // task reads its first packet at once instead of registering the
    // socket, sleeping and being woken for it. A client that stays silent
    // is accepted after one retransmitted SYN-ACK, about a second later,
    // and then counts and times out as before.
    if let Err(e) = culex_sys::set_tcp_defer_accept(&socket, DEFER_ACCEPT_SECS) {
        tracing::debug!("TCP_DEFER_ACCEPT not set on {addr}: {e}");
    }
    Ok(mio::net::TcpListener::from_std(socket.into()))
}

/// How long a silent client is kept from `accept` (rounded by Linux to
/// whole SYN-ACK retransmissions: one, after a second).
const DEFER_ACCEPT_SECS: u32 = 1;

fn tcp_socket(addr: SocketAddr, reuse_port: bool) -> std::io::Result<socket2::Socket> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    if reuse_port {
        socket.set_reuse_port(true)?;
    }
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_nonblocking(true)?;
    // Linux gives accepted sockets the listener's TCP_NODELAY: one system
    // call per listener instead of one per connection.
    socket.set_nodelay(true)?;
    Ok(socket)
}

/// Opens a unix listen socket at `path`, as mosquitto does: a socket file
/// left there (by a broker that did not stop cleanly) is replaced, and the
/// new one is readable and writable by its owner and group only (0770).
/// Anything else at `path` is left alone and the listener fails.
pub(crate) fn bind_unix(path: &Path) -> std::io::Result<Open> {
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
    Ok(Open::Unix(mio::net::UnixListener::from_std(listener), name))
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

/// Accepts connections on `open` (listener `index` of the config, on
/// `port`) until shutdown, each served by its own task: on this thread for
/// TCP (each connection thread accepts on a socket of its own), dealt to
/// the connection threads for a unix socket.
pub(crate) async fn accept_loop(rt: Arc<Runtime>, open: Open, index: usize, port: u16) {
    let _alive = rt.alive_token();
    let here = matches!(open, Open::Tcp(_));
    let listener = match open.register() {
        Ok(l) => l,
        Err(e) => {
            tracing::error!("Error: unable to watch a listen socket: {e}");
            return;
        }
    };
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
                let task = super::serve::run(rt.clone(), socket, peer, index, port);
                if here {
                    tokio::spawn(task);
                } else {
                    rt.spawn_conn(task);
                }
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
            let open = bind("127.0.0.1:0".parse().unwrap(), 1).unwrap().remove(0);
            let addr = open.local_addr().unwrap();
            let listener = open.register().unwrap();
            let _client = tokio::net::TcpStream::connect(addr).await.unwrap();
            let (socket, _) = listener.accept().await.unwrap();
            let Socket::Tcp(stream) = socket else {
                panic!("not a direct TCP socket")
            };
            assert!(stream.nodelay().unwrap());
        });
    }

    /// A TCP address gets one listen socket per connection thread, all on
    /// the port the first bind picked, each accepting; a port another
    /// socket listens on is refused, not shared.
    #[test]
    fn listen_sockets_share_their_port_and_nobody_elses() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let group = bind("127.0.0.1:0".parse().unwrap(), 3).unwrap();
            let addrs: Vec<_> = group.iter().map(|o| o.local_addr().unwrap()).collect();
            assert_eq!(addrs.len(), 3);
            assert!(addrs.iter().all(|a| *a == addrs[0] && a.port() != 0));
            let listeners: Vec<_> = group.into_iter().map(|o| o.register().unwrap()).collect();
            // The kernel spreads connections over the group: each one
            // arrives at exactly one of the sockets. Each client sends a
            // byte, as MQTT clients speak first: the sockets accept only
            // those that have (TCP_DEFER_ACCEPT).
            let mut clients = Vec::new();
            for _ in 0..30 {
                let mut client = tokio::net::TcpStream::connect(addrs[0]).await.unwrap();
                tokio::io::AsyncWriteExt::write_all(&mut client, &[0x10])
                    .await
                    .unwrap();
                clients.push(client);
            }
            let mut accepted = 0;
            for l in &listeners {
                while let Ok(Ok(_)) =
                    tokio::time::timeout(std::time::Duration::from_millis(100), l.accept()).await
                {
                    accepted += 1;
                }
            }
            assert_eq!(accepted, 30);
            // Taken: by our own group, and by a plain listener.
            assert!(bind(addrs[0], 2).is_err());
            let plain = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            assert!(bind(plain.local_addr().unwrap(), 2).is_err());
            assert!(bind(plain.local_addr().unwrap(), 1).is_err());
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
            let listener = bind_unix(&path).unwrap().register().unwrap();
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
