//! The transport seam: what a connection's bytes travel over, between the
//! socket and the protocol. The serve loop reads into and writes from its
//! buffers through [`Transport`] only; the protocol never sees it.
//!
//! A transport is a socket (TCP or unix, [`Socket`]) and, on a listener
//! with TLS, WebSocket or the PROXY protocol, the connection's layers (a
//! culex-transport `Stack`) with the two wire buffers they work on. Without
//! layers the socket is read into and written from the protocol's own
//! buffers, exactly as if there were no seam: no copy, no allocation, no
//! extra system call. With layers, socket bytes go into `wire_in`, the
//! stack turns them into MQTT bytes in the protocol's read buffer, and
//! MQTT bytes from the protocol's write buffer become `wire_out`.
//!
//! A new client usually has its CONNECT in the socket by the time it is
//! accepted: read directly, answered directly, and the connection parks
//! without ever costing tokio a registration (two `epoll_ctl` calls and a
//! reactor turn per connect). A socket is registered with tokio only once
//! the connection has to wait for it.

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::{Buf, BytesMut};
use culex_transport::http::{self, FileRequest};
use culex_transport::{Acceptor, PeerIdentity, Progress, Stack, TransportError};
use tokio::io::AsyncWriteExt;

use super::state::Runtime;
use super::BrokerError;
use crate::config::Config;
use crate::protocol::{Close, Connection, Peer};

/// The most bytes a handshake may leave unconsumed in `wire_in` (a client
/// certificate chain spans several TLS records): past this the connection
/// is closed. The layers bound what they wait for far below this.
const MAX_WIRE_IN: usize = 128 * 1024;
/// The largest file `http_dir` serves.
const MAX_FILE: u64 = 16 * 1024 * 1024;
/// A served file is read and written in chunks of this size.
const FILE_CHUNK: usize = 64 * 1024;
/// How long a refused handshake may take to send its alert or error.
const REFUSAL_WRITE: Duration = Duration::from_secs(1);

/// Each listener's layers, by listener index (`None` for plain MQTT). A
/// WebSocket message may be as large as the largest packet accepted.
pub(crate) fn acceptors(config: &Config) -> Result<Vec<Option<Acceptor>>, BrokerError> {
    config
        .listeners
        .iter()
        .map(|listener| {
            if listener.transport.is_plain() {
                return Ok(None);
            }
            let mut options = listener.transport.clone();
            if let (Some(ws), Some(max)) = (&mut options.websockets, config.limits.max_packet_size)
            {
                ws.max_message_size = u64::from(max);
            }
            Acceptor::new(&options)
                .map(Some)
                .map_err(|source| BrokerError::Tls {
                    port: listener.port,
                    source,
                })
        })
        .collect()
}

/// Re-reads the TLS files of every listener (SIGHUP); one whose new files
/// are unusable keeps its old ones, with mosquitto's error line and why.
pub(crate) fn reload(config: &Config, acceptors: &[Option<Acceptor>]) -> Result<(), BrokerError> {
    let mut first_error = None;
    for (listener, acceptor) in config.listeners.iter().zip(acceptors) {
        let (Some(acceptor), Some(tls)) = (acceptor, &listener.transport.tls) else {
            continue;
        };
        if let Err(source) = acceptor.reload(&listener.transport) {
            tracing::error!(
                "Error when reloading certificate '{}' or key '{}': {source}. The previous certificate stays in use.",
                tls.certfile.display(),
                tls.keyfile.display()
            );
            first_error.get_or_insert(BrokerError::Tls {
                port: listener.port,
                source,
            });
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// One connection's transport: its socket and, on a listener with layers,
/// the layers and their wire buffers.
#[derive(Debug)]
pub(crate) struct Transport {
    socket: Socket,
    layers: Option<Box<Stack>>,
    /// Socket bytes the layers have not consumed yet (an incomplete record).
    wire_in: BytesMut,
    /// Bytes for the socket: encrypted or framed MQTT, handshake replies.
    wire_out: BytesMut,
    /// The peer ended the session in an orderly way (TLS close_notify,
    /// WebSocket close): what it sent before still counts.
    peer_closed: bool,
}

/// What the layers established before MQTT starts.
#[derive(Debug)]
pub(crate) enum Established {
    /// MQTT may flow.
    Open {
        /// The client certificate's identity (mutual TLS).
        identity: Option<PeerIdentity>,
    },
    /// A plain HTTP GET for a file (`http_dir`).
    FileRequest(FileRequest),
}

/// Why the layers were not established.
#[derive(Debug, thiserror::Error)]
pub(crate) enum HandshakeError {
    /// A layer refused the client; its alert or error response was sent.
    #[error(transparent)]
    Refused(#[from] TransportError),
    /// The socket failed.
    #[error("{0}")]
    Io(#[from] io::Error),
    /// The client closed the connection.
    #[error("the client closed the connection")]
    Closed,
}

impl Transport {
    /// A transport without layers.
    pub fn plain(socket: Socket) -> Transport {
        Transport::from_parts(socket, None)
    }

    /// A transport through `layers`, which still have to be established.
    pub fn layered(socket: Socket, layers: Stack) -> Transport {
        Transport::from_parts(socket, Some(Box::new(layers)))
    }

    /// A parked connection's transport again.
    pub fn from_parked(socket: ParkedSocket, layers: Option<Box<Stack>>) -> Transport {
        Transport::from_parts(socket.into(), layers)
    }

    fn from_parts(socket: Socket, layers: Option<Box<Stack>>) -> Transport {
        Transport {
            socket,
            layers,
            wire_in: BytesMut::new(),
            wire_out: BytesMut::new(),
            peer_closed: false,
        }
    }

    /// The socket, for readiness.
    pub fn socket(&self) -> &Socket {
        &self.socket
    }

    /// Whether reads may be tried without waiting for readiness (the
    /// socket is not registered yet).
    pub fn is_direct(&self) -> bool {
        self.socket.is_direct()
    }

    /// Registers the socket with the current runtime, if it is not yet.
    pub fn register(&mut self) -> io::Result<()> {
        self.socket.register()
    }

    /// Waits until the socket is readable.
    pub async fn readable(&mut self) -> io::Result<()> {
        self.socket.readable().await
    }

    /// True until a PROXY header (on a listener that expects one) was read.
    pub fn awaits_proxy_header(&self) -> bool {
        self.layers
            .as_ref()
            .is_some_and(|l| l.awaits_proxy_header())
    }

    /// True once MQTT may flow: no layers, or layers through their handshake.
    pub fn is_established(&self) -> bool {
        self.layers.as_ref().is_none_or(|l| l.is_established())
    }

    /// The peer closed the session in an orderly way; what it sent before
    /// is in the read buffer.
    pub fn peer_closed(&self) -> bool {
        self.peer_closed
    }

    /// Bytes waiting for the socket below the protocol's write buffer.
    pub fn pending_out(&self) -> usize {
        self.wire_out.len()
    }

    /// Whether the transport holds no bytes (only then may it park).
    pub fn is_idle(&self) -> bool {
        self.wire_in.is_empty()
            && self.wire_out.is_empty()
            && self.layers.as_ref().is_none_or(|l| l.is_idle())
    }

    /// One non-blocking read: MQTT bytes go to `rbuf` (through the layers,
    /// if any). Returns the bytes read from the socket; `Ok(0)` when the
    /// peer closed it; `WouldBlock` when nothing was there.
    pub fn read(&mut self, rbuf: &mut BytesMut) -> io::Result<usize> {
        let Some(layers) = self.layers.as_deref_mut() else {
            return self.socket.try_read_buf_drained(rbuf);
        };
        match self.wire_in.capacity() - self.wire_in.len() {
            0 if self.wire_in.capacity() == 0 => self.wire_in.reserve(2048),
            room if room < 4096 => self.wire_in.reserve(16 * 1024),
            _ => {}
        }
        let read = match self.socket.try_read_buf_drained(&mut self.wire_in) {
            Ok(0) => return Ok(0),
            Ok(n) => n,
            Err(e) => {
                if self.wire_in.is_empty() {
                    self.wire_in = BytesMut::new();
                }
                return Err(e);
            }
        };
        let progress = layers.read(Instant::now(), &mut self.wire_in, rbuf, &mut self.wire_out);
        // As the serve loop does with its read buffer: a quiet connection
        // keeps none, a busy one keeps its capacity.
        if read < 2048 {
            release_if_empty(&mut self.wire_in);
        }
        match progress {
            Ok(Progress::Open | Progress::Handshaking) => Ok(read),
            Ok(Progress::Closed) => {
                self.peer_closed = true;
                Ok(read)
            }
            // Only an upgrade request can ask for a file.
            Ok(Progress::FileRequest(_)) => Err(invalid("file request after the upgrade")),
            Err(e) => Err(invalid(e)),
        }
    }

    /// Reads what a parked connection's client sent, without waiting:
    /// the bytes read from the socket (0: the client closed it).
    pub fn read_ahead(&mut self, rbuf: &mut BytesMut) -> io::Result<usize> {
        if self.layers.is_some() {
            return self.read(rbuf);
        }
        let mut buf = [0u8; 2048];
        let n = self.socket.read_direct(&mut buf)?;
        *rbuf = BytesMut::from(buf.get(..n).unwrap_or_default());
        Ok(n)
    }

    /// Writes as much of `wbuf` (MQTT bytes, through the layers if any) as
    /// the socket takes now; returns the bytes written to the socket.
    pub fn flush(&mut self, wbuf: &mut BytesMut) -> Result<usize, Close> {
        let Some(layers) = self.layers.as_deref_mut() else {
            return write_now(&self.socket, wbuf);
        };
        layers
            .write(&mut self.wire_in, wbuf, &mut self.wire_out)
            .map_err(|e| Close::Io(invalid(e)))?;
        // A busy connection keeps `wire_out`'s capacity; parking frees it.
        write_now(&self.socket, &mut self.wire_out)
    }

    /// Writes all of `data` (MQTT bytes), and whatever the layers still
    /// have to send, waiting for the socket as needed.
    pub async fn write_all(&mut self, mut data: BytesMut) -> io::Result<()> {
        let Some(layers) = self.layers.as_deref_mut() else {
            return self.socket.write_all(&data).await;
        };
        // A failed layer has nothing more to encode, but may have an alert
        // waiting in `wire_out`.
        let _ = layers.write(&mut self.wire_in, &mut data, &mut self.wire_out);
        self.write_wire_out().await
    }

    /// Ends the session: the layers' close (WebSocket close frame, TLS
    /// close_notify), then the socket's writing half.
    pub async fn shutdown(&mut self) -> io::Result<()> {
        if let Some(layers) = self.layers.as_deref_mut() {
            layers.close(&mut self.wire_in, &mut self.wire_out);
            self.write_wire_out().await?;
        }
        self.socket.shutdown().await
    }

    /// Reads raw bytes into `scratch` (a closing connection drops them).
    pub async fn discard_some(&mut self, scratch: &mut BytesMut) -> io::Result<usize> {
        self.socket.readable().await?;
        self.socket.try_read_buf(scratch)
    }

    /// The socket out of tokio and the layers, for the parker.
    pub fn into_parked(self) -> io::Result<(ParkedSocket, Option<Box<Stack>>)> {
        Ok((self.socket.into_parked()?, self.layers))
    }

    async fn write_wire_out(&mut self) -> io::Result<()> {
        if !self.wire_out.is_empty() {
            let out = std::mem::take(&mut self.wire_out);
            self.socket.write_all(&out).await?;
        }
        Ok(())
    }

    /// Drives the layers through their handshake (see [`Transport::establish`]),
    /// then tells the protocol what they learnt: the client's address from
    /// a PROXY header, the username a client certificate gives. A file
    /// request is answered here and ends the connection, as does a failed
    /// handshake (logged here).
    pub async fn open(
        &mut self,
        rt: &Runtime,
        rbuf: &mut BytesMut,
        proto: &mut Connection,
        listener: usize,
        port: u16,
    ) -> Result<(), Close> {
        let config = rt.core.config();
        let log = config.log.connection_messages;
        let established = self
            .establish(rt, rbuf, |source| {
                if let Some(addr) = source {
                    proto.set_peer(addr);
                }
                if log {
                    log_new_connection(proto.peer(), port);
                }
            })
            .await;
        let options = config.listeners.get(listener).map(|l| &l.transport);
        match established {
            Ok(Established::Open { identity }) => {
                let field = options.and_then(|t| t.tls.as_ref()?.username_from);
                if let Some(field) = field {
                    let name = identity.as_ref().and_then(|id| field.username(id));
                    proto.set_certificate_username(name);
                }
                Ok(())
            }
            Ok(Established::FileRequest(request)) => {
                let dir = options.and_then(|t| t.websockets.as_ref()?.http_dir.as_deref());
                if let Some(dir) = dir {
                    if let Err(e) = self.serve_file(&request, dir).await {
                        let path = request.path.display();
                        tracing::debug!("serving {path} to {}: {e}", proto.peer());
                    }
                }
                Err(Close::Closed)
            }
            Err(e) => {
                if log {
                    tracing::info!("Client connection from {} failed: {e}.", proto.peer());
                } else {
                    tracing::debug!("handshake with {} failed: {e}", proto.peer());
                }
                Err(Close::Closed)
            }
        }
    }

    /// Drives the layers through their handshake: the PROXY header, the
    /// TLS handshake, the WebSocket upgrade. `on_proxy` is told the
    /// client's address as soon as the PROXY header is read. MQTT bytes
    /// that came with the last handshake message are left in `rbuf`.
    ///
    /// Handshakes are CPU work (key exchange and signatures): each step
    /// runs under one of the runtime's handshake permits, a TLS step on a
    /// blocking thread (see `handshake_step`), and yields after it.
    async fn establish(
        &mut self,
        rt: &Runtime,
        rbuf: &mut BytesMut,
        mut on_proxy: impl FnMut(Option<SocketAddr>),
    ) -> Result<Established, HandshakeError> {
        let Some(deadline) = self.layers.as_ref().and_then(|l| l.poll_timeout()) else {
            return Ok(self.opened());
        };
        let result = self.handshake(rt, rbuf, deadline, &mut on_proxy).await;
        if result.is_err() && !self.wire_out.is_empty() {
            // The alert or error response that says why.
            let _ = tokio::time::timeout(REFUSAL_WRITE, self.write_wire_out()).await;
        }
        result
    }

    /// Runs one step of the layers' handshake on what was read. A TLS step
    /// is CPU work (key exchange, signatures): it runs on a blocking thread,
    /// so that this connection thread, which nothing else may take its
    /// established connections from, keeps serving them meanwhile.
    async fn handshake_step(
        &mut self,
        mut layers: Box<Stack>,
        rbuf: &mut BytesMut,
    ) -> Result<Progress, HandshakeError> {
        if layers.tls().is_none() {
            let progress = layers.read(Instant::now(), &mut self.wire_in, rbuf, &mut self.wire_out);
            self.layers = Some(layers);
            return Ok(progress?);
        }
        let mut wire_in = std::mem::take(&mut self.wire_in);
        let mut up = std::mem::take(rbuf);
        let mut wire_out = std::mem::take(&mut self.wire_out);
        let step = tokio::task::spawn_blocking(move || {
            let progress = layers.read(Instant::now(), &mut wire_in, &mut up, &mut wire_out);
            (layers, wire_in, up, wire_out, progress)
        });
        let (layers, wire_in, up, wire_out, progress) = step
            .await
            .map_err(|e| io::Error::other(format!("handshake step failed: {e}")))?;
        self.layers = Some(layers);
        self.wire_in = wire_in;
        *rbuf = up;
        self.wire_out = wire_out;
        Ok(progress?)
    }

    async fn handshake(
        &mut self,
        rt: &Runtime,
        rbuf: &mut BytesMut,
        deadline: Instant,
        on_proxy: &mut impl FnMut(Option<SocketAddr>),
    ) -> Result<Established, HandshakeError> {
        let mut proxy_pending = self
            .layers
            .as_ref()
            .is_some_and(|l| l.awaits_proxy_header());
        loop {
            let read = match self.read_wire() {
                Ok(read) => read,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    let ready = tokio::time::timeout_at(deadline.into(), self.socket.readable());
                    match ready.await {
                        Ok(r) => r?,
                        Err(_) => return Err(TransportError::HandshakeTimeout.into()),
                    }
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            if read == 0 {
                return Err(HandshakeError::Closed);
            }
            rt.core
                .stats()
                .bytes_received
                .fetch_add(read as u64, std::sync::atomic::Ordering::Relaxed);
            let progress = {
                let _permit = rt.handshake_permit().await;
                let Some(layers) = self.layers.take() else {
                    return Ok(self.opened());
                };
                self.handshake_step(layers, rbuf).await?
            };
            if proxy_pending
                && !self
                    .layers
                    .as_ref()
                    .is_some_and(|l| l.awaits_proxy_header())
            {
                proxy_pending = false;
                on_proxy(self.layers.as_ref().and_then(|l| l.proxied_source()));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, self.write_wire_out()).await {
                Ok(written) => written?,
                Err(_) => return Err(TransportError::HandshakeTimeout.into()),
            }
            match progress {
                Progress::Open => return Ok(self.opened()),
                Progress::FileRequest(file) => return Ok(Established::FileRequest(file)),
                Progress::Closed => return Err(HandshakeError::Closed),
                Progress::Handshaking if self.wire_in.len() > MAX_WIRE_IN => {
                    return Err(invalid("handshake messages too large").into())
                }
                Progress::Handshaking => {}
            }
            // Let established connections have the worker between steps.
            tokio::task::yield_now().await;
        }
    }

    /// One direct read into `wire_in`, with room for a whole TLS record.
    fn read_wire(&mut self) -> io::Result<usize> {
        self.wire_in.reserve(16 * 1024 + 512);
        self.socket.try_read_buf(&mut self.wire_in)
    }

    fn opened(&self) -> Established {
        Established::Open {
            identity: self.layers.as_ref().and_then(|l| l.peer_identity()),
        }
    }

    /// Answers a plain GET on a WebSocket listener with `http_dir`: the
    /// file if it is a regular file inside the directory (after symbolic
    /// links are resolved) and at most [`MAX_FILE`] bytes, else an error
    /// status. Read and sent in chunks; the caller then closes.
    pub async fn serve_file(&mut self, request: &FileRequest, http_dir: &Path) -> io::Result<()> {
        let file = match open_in(http_dir, &request.path) {
            Ok(file) => file,
            Err(status) => {
                let mut response = BytesMut::new();
                http::write_error(&mut response, status);
                return self.write_raw(response).await;
            }
        };
        let (mut file, length) = file;
        let mut head = BytesMut::new();
        http::write_file_head(&mut head, 200, http::content_type(&request.path), length);
        self.write_raw(head).await?;
        if request.head_only {
            return Ok(());
        }
        let mut left = length;
        while left > 0 {
            let want = usize::try_from(left).unwrap_or(FILE_CHUNK).min(FILE_CHUNK);
            // Files come from the page cache as a rule: a blocking read of
            // one chunk, off the worker threads all the same.
            let (back, chunk) = tokio::task::spawn_blocking(move || {
                let mut chunk = vec![0u8; want];
                let read = file.read_exact(&mut chunk).map(|()| chunk);
                (file, read)
            })
            .await
            .map_err(io::Error::other)?;
            file = back;
            self.write_raw(BytesMut::from(chunk?.as_slice())).await?;
            left -= want as u64;
        }
        Ok(())
    }

    /// Bytes below the WebSocket layer (an HTTP response), through TLS.
    async fn write_raw(&mut self, mut bytes: BytesMut) -> io::Result<()> {
        if let Some(layers) = self.layers.as_deref_mut() {
            layers
                .write_raw(&mut self.wire_in, &mut bytes, &mut self.wire_out)
                .map_err(invalid)?;
        }
        self.write_wire_out().await
    }
}

/// mosquitto's line for a new connection (on a PROXY listener, once the
/// header named the client).
pub(crate) fn log_new_connection(peer: &Peer, port: u16) {
    tracing::info!("New connection from {peer} on port {port}.");
}

/// The file `relative` under `dir`, opened, with its length; or the HTTP
/// status to answer: 404 when there is no such regular file, 403 when it
/// resolves outside `dir` or is too large.
fn open_in(dir: &Path, relative: &Path) -> Result<(std::fs::File, u64), u16> {
    let root = dir.canonicalize().map_err(|_| 404u16)?;
    let path = root.join(relative).canonicalize().map_err(|_| 404u16)?;
    if !path.starts_with(&root) {
        return Err(403);
    }
    let file = std::fs::File::open(&path).map_err(|_| 404u16)?;
    let meta = file.metadata().map_err(|_| 404u16)?;
    if !meta.is_file() {
        return Err(404);
    }
    if meta.len() > MAX_FILE {
        return Err(403);
    }
    Ok((file, meta.len()))
}

/// Writes what the socket takes of `buf` now: the bytes written.
fn write_now(socket: &Socket, buf: &mut BytesMut) -> Result<usize, Close> {
    let mut written = 0;
    while !buf.is_empty() {
        match socket.try_write(buf) {
            Ok(0) => return Err(Close::Closed),
            Ok(n) => {
                written += n;
                if n == buf.len() {
                    // Keeps the buffer's whole capacity for reuse.
                    buf.clear();
                } else {
                    buf.advance(n);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) => return Err(Close::Io(e)),
        }
    }
    Ok(written)
}

/// An emptied wire buffer is given back: an idle connection holds none.
fn release_if_empty(buf: &mut BytesMut) {
    if buf.is_empty() && buf.capacity() > 0 {
        *buf = BytesMut::new();
    }
}

fn invalid(error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, error)
}

/// The socket of one connection: TCP or unix, directly read and written
/// until it is registered with tokio.
#[derive(Debug)]
pub(crate) enum Socket {
    /// Not registered: reads and writes are tried directly (non-blocking).
    Tcp(std::net::TcpStream),
    /// A unix socket, not registered.
    Unix(UnixStream),
    /// Registered with the runtime's reactor.
    TokioTcp(tokio::net::TcpStream),
    /// A unix socket registered with the runtime's reactor.
    TokioUnix(tokio::net::UnixStream),
    /// Lost while registering; every operation fails.
    Gone,
}

impl Socket {
    /// Registers the socket with the current runtime, if it is not yet.
    pub fn register(&mut self) -> io::Result<()> {
        if self.is_direct() {
            *self = match std::mem::replace(self, Socket::Gone) {
                Socket::Tcp(s) => Socket::TokioTcp(tokio::net::TcpStream::from_std(s)?),
                Socket::Unix(s) => Socket::TokioUnix(tokio::net::UnixStream::from_std(s)?),
                other => other,
            };
        }
        match self {
            Socket::Gone => Err(gone()),
            _ => Ok(()),
        }
    }

    /// Whether reads may be tried without waiting for readiness.
    pub fn is_direct(&self) -> bool {
        matches!(self, Socket::Tcp(_) | Socket::Unix(_))
    }

    /// Writes what the socket takes now.
    pub fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Socket::Tcp(s) => (&*s).write(buf),
            Socket::Unix(s) => (&*s).write(buf),
            Socket::TokioTcp(s) => s.try_write(buf),
            Socket::TokioUnix(s) => s.try_write(buf),
            Socket::Gone => Err(gone()),
        }
    }

    /// One read into `buf`, for an unregistered socket.
    fn read_direct(&self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Socket::Tcp(s) => (&*s).read(buf),
            Socket::Unix(s) => (&*s).read(buf),
            _ => Err(io::ErrorKind::WouldBlock.into()),
        }
    }

    /// Reads what the socket has now into the spare capacity of `buf`.
    pub fn try_read_buf(&self, buf: &mut BytesMut) -> io::Result<usize> {
        match self {
            Socket::Tcp(_) | Socket::Unix(_) => {
                let mut chunk = [0u8; 4096];
                let room = buf.capacity().saturating_sub(buf.len()).clamp(1, 4096);
                let n = self.read_direct(chunk.get_mut(..room).unwrap_or_default())?;
                buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
                Ok(n)
            }
            Socket::TokioTcp(s) => s.try_read_buf(buf),
            Socket::TokioUnix(s) => s.try_read_buf(buf),
            Socket::Gone => Err(gone()),
        }
    }

    /// As [`Socket::try_read_buf`]; a short read emptied the socket, and
    /// saying so to tokio (by answering WouldBlock from `try_io`) clears its
    /// readiness, which saves the read that would only find nothing. Data
    /// arriving later raises a new readiness event, which this does not clear.
    pub fn try_read_buf_drained(&self, buf: &mut BytesMut) -> io::Result<usize> {
        let room = buf.capacity().saturating_sub(buf.len());
        let mut read = 0;
        let result = match self {
            Socket::TokioTcp(s) => s.try_io(tokio::io::Interest::READABLE, || {
                read = s.try_read_buf(buf)?;
                drained(read, room)
            }),
            Socket::TokioUnix(s) => s.try_io(tokio::io::Interest::READABLE, || {
                read = s.try_read_buf(buf)?;
                drained(read, room)
            }),
            _ => return self.try_read_buf(buf),
        };
        match result {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && read > 0 => Ok(read),
            other => other,
        }
    }

    /// Waits until the socket is readable.
    pub async fn readable(&mut self) -> io::Result<()> {
        self.register()?;
        match self {
            Socket::TokioTcp(s) => s.readable().await,
            Socket::TokioUnix(s) => s.readable().await,
            _ => Err(gone()),
        }
    }

    /// Readiness for reading; call [`Socket::register`] first.
    pub fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self {
            Socket::TokioTcp(s) => s.poll_read_ready(cx),
            Socket::TokioUnix(s) => s.poll_read_ready(cx),
            _ => Poll::Ready(Err(gone())),
        }
    }

    /// Readiness for writing; call [`Socket::register`] first.
    pub fn poll_write_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self {
            Socket::TokioTcp(s) => s.poll_write_ready(cx),
            Socket::TokioUnix(s) => s.poll_write_ready(cx),
            _ => Poll::Ready(Err(gone())),
        }
    }

    /// Writes all of `data`, waiting for the socket as needed.
    pub async fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        self.register()?;
        match self {
            Socket::TokioTcp(s) => s.write_all(data).await,
            Socket::TokioUnix(s) => s.write_all(data).await,
            _ => Err(gone()),
        }
    }

    /// Shuts the writing half down.
    pub async fn shutdown(&mut self) -> io::Result<()> {
        match self {
            Socket::Tcp(s) => s.shutdown(std::net::Shutdown::Write),
            Socket::Unix(s) => s.shutdown(std::net::Shutdown::Write),
            Socket::TokioTcp(s) => s.shutdown().await,
            Socket::TokioUnix(s) => s.shutdown().await,
            Socket::Gone => Err(gone()),
        }
    }

    /// The socket out of tokio (for the parker).
    pub fn into_parked(self) -> io::Result<ParkedSocket> {
        Ok(match self {
            Socket::Tcp(s) => ParkedSocket::Tcp(mio::net::TcpStream::from_std(s)),
            Socket::Unix(s) => ParkedSocket::Unix(mio::net::UnixStream::from_std(s)),
            Socket::TokioTcp(s) => ParkedSocket::Tcp(mio::net::TcpStream::from_std(s.into_std()?)),
            Socket::TokioUnix(s) => {
                ParkedSocket::Unix(mio::net::UnixStream::from_std(s.into_std()?))
            }
            Socket::Gone => return Err(gone()),
        })
    }
}

/// A read that left room in the buffer emptied the socket: WouldBlock
/// tells tokio so (see [`Socket::try_read_buf_drained`]).
fn drained(read: usize, room: usize) -> io::Result<usize> {
    if read > 0 && read < room {
        Err(io::ErrorKind::WouldBlock.into())
    } else {
        Ok(read)
    }
}

fn gone() -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, "socket lost")
}

/// A parked connection's socket, registered with the parker's poll.
#[derive(Debug)]
pub(crate) enum ParkedSocket {
    /// TCP.
    Tcp(mio::net::TcpStream),
    /// A unix socket.
    Unix(mio::net::UnixStream),
}

impl From<ParkedSocket> for Socket {
    fn from(parked: ParkedSocket) -> Socket {
        match parked {
            ParkedSocket::Tcp(s) => Socket::Tcp(s.into()),
            ParkedSocket::Unix(s) => Socket::Unix(s.into()),
        }
    }
}

impl mio::event::Source for ParkedSocket {
    fn register(
        &mut self,
        registry: &mio::Registry,
        token: mio::Token,
        interests: mio::Interest,
    ) -> io::Result<()> {
        match self {
            ParkedSocket::Tcp(s) => s.register(registry, token, interests),
            ParkedSocket::Unix(s) => s.register(registry, token, interests),
        }
    }

    fn reregister(
        &mut self,
        registry: &mio::Registry,
        token: mio::Token,
        interests: mio::Interest,
    ) -> io::Result<()> {
        match self {
            ParkedSocket::Tcp(s) => s.reregister(registry, token, interests),
            ParkedSocket::Unix(s) => s.reregister(registry, token, interests),
        }
    }

    fn deregister(&mut self, registry: &mio::Registry) -> io::Result<()> {
        match self {
            ParkedSocket::Tcp(s) => s.deregister(registry),
            ParkedSocket::Unix(s) => s.deregister(registry),
        }
    }
}
