//! The layers of one connection, composed: PROXY → TLS → WebSocket → MQTT,
//! each optional, in that order.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::BytesMut;

use crate::http::FileRequest;
use crate::proxy::{ProxyError, ProxyLayer, ProxyVersion};
use crate::tls::{
    PeerIdentity, TlsAcceptor, TlsConfigError, TlsError, TlsLayer, TlsOptions, TlsProgress,
};
use crate::websocket::{
    close_code, WebSocketError, WebSocketLayer, WebSocketOptions, WebSocketProgress,
};

/// A listener's transport settings, as mosquitto.conf gives them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TransportOptions {
    /// `enable_proxy_protocol 1|2`.
    pub proxy_protocol: Option<ProxyVersion>,
    /// `certfile`, `keyfile` and the other TLS options.
    pub tls: Option<TlsOptions>,
    /// `protocol websockets` (with `http_dir`).
    pub websockets: Option<WebSocketOptions>,
    /// How long PROXY header, TLS handshake and WebSocket upgrade together
    /// may take; [`DEFAULT_HANDSHAKE_TIMEOUT`] when `None`. Not a
    /// mosquitto.conf option: for embedders and tests.
    pub handshake_timeout: Option<Duration>,
}

impl TransportOptions {
    /// True for plain MQTT over TCP: no layer at all.
    pub fn is_plain(&self) -> bool {
        self.proxy_protocol.is_none() && self.tls.is_none() && self.websockets.is_none()
    }
}

/// How long PROXY header, TLS handshake and WebSocket upgrade together may
/// take before [`Stack::read`] gives up (see [`Acceptor::with_handshake_timeout`]).
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// What a listener needs to start the layers of each new connection. Built
/// once per listener; [`Acceptor::reload`] swaps the TLS config on SIGHUP.
#[derive(Debug)]
pub struct Acceptor {
    proxy: Option<ProxyVersion>,
    tls: Option<TlsAcceptor>,
    websockets: Option<WebSocketOptions>,
    handshake_timeout: Duration,
}

impl Acceptor {
    /// Reads the TLS files (if any) and prepares the layers.
    pub fn new(options: &TransportOptions) -> Result<Acceptor, TlsConfigError> {
        let acceptor = Acceptor {
            proxy: options.proxy_protocol,
            tls: options.tls.as_ref().map(TlsAcceptor::new).transpose()?,
            websockets: options.websockets.clone(),
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
        };
        Ok(match options.handshake_timeout {
            Some(timeout) => acceptor.with_handshake_timeout(timeout),
            None => acceptor,
        })
    }

    /// Sets how long a connection may take to become established (at
    /// most a day).
    pub fn with_handshake_timeout(mut self, timeout: Duration) -> Acceptor {
        self.handshake_timeout = timeout.min(Duration::from_secs(86_400));
        self
    }

    /// True when connections need no stack (plain MQTT over TCP): the
    /// runtime then reads and writes the socket directly, at no cost.
    pub fn is_plain(&self) -> bool {
        self.proxy.is_none() && self.tls.is_none() && self.websockets.is_none()
    }

    /// The TLS config holder, if this listener has TLS.
    pub fn tls(&self) -> Option<&TlsAcceptor> {
        self.tls.as_ref()
    }

    /// Rebuilds the TLS config from `options` (SIGHUP). New connections
    /// get it; on error the old one stays and the error says why.
    pub fn reload(&self, options: &TransportOptions) -> Result<(), TlsConfigError> {
        match (&self.tls, &options.tls) {
            (Some(acceptor), Some(tls)) => acceptor.reload(tls),
            _ => Ok(()),
        }
    }

    /// The layers of a connection accepted at `now`; `None` for a plain
    /// listener.
    pub fn start(&self, now: Instant) -> Result<Option<Stack>, TlsError> {
        if self.is_plain() {
            return Ok(None);
        }
        // A day past any `Instant` fits; the fallback is never taken.
        let deadline = now.checked_add(self.handshake_timeout).unwrap_or(now);
        Ok(Some(Stack {
            deadline: Some(deadline),
            proxy: self.proxy.map(|version| ProxyLayer::new(version, deadline)),
            source: None,
            tls: self
                .tls
                .as_ref()
                .map(|t| t.accept().map(Box::new))
                .transpose()?,
            websocket: self.websockets.as_ref().map(WebSocketLayer::new),
            between: BytesMut::new(),
        }))
    }
}

/// Why a connection's layers gave up. Whatever the failing layer had to
/// say (a TLS alert, an HTTP error response, a WebSocket close frame) is
/// already in `wire_out`: write it, then close the socket.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The PROXY header is missing or malformed.
    #[error(transparent)]
    Proxy(#[from] ProxyError),
    /// The TLS layer refused the peer.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The WebSocket layer refused the peer.
    #[error(transparent)]
    WebSocket(#[from] WebSocketError),
    /// Not established before the handshake deadline.
    #[error("handshake not finished in time")]
    HandshakeTimeout,
}

/// Where a connection's layers stand after [`Stack::read`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// PROXY header, TLS handshake or WebSocket upgrade not done yet: send
    /// `wire_out`, read more.
    Handshaking,
    /// Established: MQTT bytes (if any) are in `plain_in`.
    Open,
    /// A plain HTTP GET on a WebSocket listener with `http_dir`: answer it
    /// (see [`crate::http`]), pass the response through [`Stack::write_raw`]
    /// and close.
    FileRequest(FileRequest),
    /// The peer closed in an orderly way (close_notify or a WebSocket
    /// close). Process what is in `plain_in`, send `wire_out`, close.
    Closed,
}

/// The layers of one connection, between the socket and MQTT.
///
/// The runtime owns four buffers: `wire_in` (bytes read from the socket),
/// `plain_in` (MQTT bytes for the codec), `plain_out` (MQTT bytes encoded for
/// the peer) and `wire_out` (bytes to write to the socket). Call order:
///
/// 1. after every socket read, [`read`](Self::read)`(now, wire_in,
///    plain_in, wire_out)`; it consumes what it can from `wire_in` (an
///    incomplete record or frame stays there), appends MQTT bytes to
///    `plain_in` and what the layers must send themselves (handshake,
///    101 response, pong, close) to `wire_out`. Write `wire_out` out
///    whatever the result. Until it reports [`Progress::Open`], there is no
///    MQTT to read;
/// 2. to send, [`write`](Self::write)`(wire_in, plain_out, wire_out)`: it
///    drains `plain_out` into `wire_out` (nothing happens before the stack
///    is established);
/// 3. to end, [`close`](Self::close)`(wire_in, wire_out)`: a WebSocket close
///    frame, then TLS close_notify; write `wire_out`, then close.
///
/// [`poll_timeout`](Self::poll_timeout) is the handshake deadline (none once
/// established): a runtime that sees it pass without a `read` calls
/// [`handle_timeout`](Self::handle_timeout). A parked connection keeps its
/// `Stack` as it is; it holds no buffer when [`is_idle`](Self::is_idle).
#[derive(Debug)]
pub struct Stack {
    /// Until established.
    deadline: Option<Instant>,
    /// Until the PROXY header is read.
    proxy: Option<ProxyLayer>,
    source: Option<SocketAddr>,
    tls: Option<Box<TlsLayer>>,
    websocket: Option<WebSocketLayer>,
    /// TLS plaintext the WebSocket layer has not consumed (an incomplete
    /// frame header or control frame); released whenever it empties.
    between: BytesMut,
}

impl Stack {
    /// See the type's docs.
    pub fn read(
        &mut self,
        now: Instant,
        wire_in: &mut BytesMut,
        plain_in: &mut BytesMut,
        wire_out: &mut BytesMut,
    ) -> Result<Progress, TransportError> {
        self.handle_timeout(now)?;
        if let Some(proxy) = &mut self.proxy {
            match proxy.read(now, wire_in)? {
                None => return Ok(Progress::Handshaking),
                Some(header) => {
                    self.source = header.source;
                    self.proxy = None;
                }
            }
        }
        let mut progress = Progress::Open;
        if let Some(tls) = self.tls.as_deref_mut() {
            let up = match self.websocket {
                Some(_) => &mut self.between,
                None => &mut *plain_in,
            };
            match tls.read(wire_in, up, wire_out)? {
                TlsProgress::Handshaking => progress = Progress::Handshaking,
                TlsProgress::Open => {}
                TlsProgress::PeerClosed => progress = Progress::Closed,
            }
        }
        if let Some(websocket) = &mut self.websocket {
            let input = match self.tls {
                Some(_) => &mut self.between,
                None => &mut *wire_in,
            };
            let mut reply = BytesMut::new();
            let outcome = websocket.read(input, plain_in, &mut reply);
            // The reply goes out also with an error: it says why.
            if !reply.is_empty() {
                match self.tls.as_deref_mut() {
                    Some(tls) => tls.write(wire_in, &mut reply, wire_out)?,
                    None => wire_out.unsplit(reply),
                }
            }
            match outcome? {
                WebSocketProgress::Upgrading if progress == Progress::Open => {
                    progress = Progress::Handshaking
                }
                WebSocketProgress::FileRequest(file) => progress = Progress::FileRequest(file),
                WebSocketProgress::Closed => progress = Progress::Closed,
                _ => {}
            }
        }
        if self.tls.is_none() && self.websocket.is_none() {
            plain_in.unsplit(wire_in.split());
        }
        if self.between.is_empty() && self.between.capacity() > 0 {
            self.between = BytesMut::new();
        }
        if progress == Progress::Open {
            self.deadline = None;
        }
        Ok(progress)
    }

    /// Encodes `plain_out` for the peer into `wire_out` (see the type's
    /// docs); `wire_in` is the read buffer, which TLS needs to see.
    pub fn write(
        &mut self,
        wire_in: &mut BytesMut,
        plain_out: &mut BytesMut,
        wire_out: &mut BytesMut,
    ) -> Result<(), TransportError> {
        if plain_out.is_empty() || !self.is_established() {
            return Ok(());
        }
        match (&mut self.websocket, self.tls.as_deref_mut()) {
            (Some(websocket), Some(tls)) => {
                let mut framed = BytesMut::with_capacity(plain_out.len() + 14);
                websocket.write(plain_out, &mut framed)?;
                tls.write(wire_in, &mut framed, wire_out)?;
            }
            (Some(websocket), None) => websocket.write(plain_out, wire_out)?,
            (None, Some(tls)) => tls.write(wire_in, plain_out, wire_out)?,
            (None, None) => wire_out.unsplit(plain_out.split()),
        }
        Ok(())
    }

    /// Sends bytes below the WebSocket layer: an HTTP response to a
    /// [`Progress::FileRequest`] (through TLS when there is TLS).
    pub fn write_raw(
        &mut self,
        wire_in: &mut BytesMut,
        bytes: &mut BytesMut,
        wire_out: &mut BytesMut,
    ) -> Result<(), TransportError> {
        match self.tls.as_deref_mut() {
            Some(tls) => tls.write(wire_in, bytes, wire_out)?,
            None => wire_out.unsplit(bytes.split()),
        }
        Ok(())
    }

    /// Starts an orderly close: a WebSocket close frame (1000), then TLS
    /// close_notify, into `wire_out`.
    pub fn close(&mut self, wire_in: &mut BytesMut, wire_out: &mut BytesMut) {
        let mut frame = BytesMut::new();
        if let Some(websocket) = &mut self.websocket {
            websocket.close(close_code::NORMAL, &mut frame);
        }
        match self.tls.as_deref_mut() {
            Some(tls) => {
                let _ = tls.write(wire_in, &mut frame, wire_out);
                tls.close(wire_in, wire_out);
            }
            None => wire_out.unsplit(frame),
        }
    }

    /// True once every layer is through its handshake.
    pub fn is_established(&self) -> bool {
        self.deadline.is_none()
    }

    /// The handshake deadline, until established.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.deadline
    }

    /// Fails with [`TransportError::HandshakeTimeout`] once the deadline
    /// has passed without the stack being established.
    pub fn handle_timeout(&self, now: Instant) -> Result<(), TransportError> {
        match self.deadline {
            Some(deadline) if now >= deadline => Err(TransportError::HandshakeTimeout),
            _ => Ok(()),
        }
    }

    /// True until the PROXY header (on a listener that expects one) has
    /// been read.
    pub fn awaits_proxy_header(&self) -> bool {
        self.proxy.is_some()
    }

    /// The client's address from the PROXY header, when it gave one; the
    /// socket's peer address stands otherwise.
    pub fn proxied_source(&self) -> Option<SocketAddr> {
        self.source
    }

    /// The client certificate's identity (TLS with a client certificate).
    pub fn peer_identity(&self) -> Option<PeerIdentity> {
        self.tls.as_deref()?.peer_identity()
    }

    /// The TLS layer, for logging what was negotiated.
    pub fn tls(&self) -> Option<&TlsLayer> {
        self.tls.as_deref()
    }

    /// True when the stack holds no bytes between its layers (only then may
    /// the connection park).
    pub fn is_idle(&self) -> bool {
        self.between.is_empty()
    }
}

#[cfg(test)]
mod tests;
