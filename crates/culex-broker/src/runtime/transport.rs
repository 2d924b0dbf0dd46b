//! The transport seam: what a connection's bytes travel over, between the
//! socket and the protocol. The serve loop reads into and writes from its
//! buffers through [`Socket`] only; the protocol never sees it. Plain TCP
//! today; TLS and WebSocket layers (culex-transport) slot in here.
//!
//! A new client usually has its CONNECT in the socket by the time it is
//! accepted: read directly, answered directly, and the connection parks
//! without ever costing tokio a registration (two `epoll_ctl` calls and a
//! reactor turn per connect). A socket is registered with tokio only once
//! the connection has to wait for it.

use std::io::{self, Read, Write};
use std::task::{Context, Poll};

use bytes::BytesMut;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// The socket of one connection.
#[derive(Debug)]
pub(crate) enum Socket {
    /// Not registered: reads and writes are tried directly (non-blocking).
    Plain(std::net::TcpStream),
    /// Registered with the runtime's reactor.
    Tokio(TcpStream),
    /// Lost while registering; every operation fails.
    Gone,
}

impl Socket {
    /// Registers the socket with the current runtime, if it is not yet.
    pub fn register(&mut self) -> io::Result<()> {
        if matches!(self, Socket::Plain(_)) {
            if let Socket::Plain(s) = std::mem::replace(self, Socket::Gone) {
                *self = Socket::Tokio(TcpStream::from_std(s)?);
            }
        }
        match self {
            Socket::Gone => Err(gone()),
            _ => Ok(()),
        }
    }

    /// Whether reads may be tried without waiting for readiness.
    pub fn is_plain(&self) -> bool {
        matches!(self, Socket::Plain(_))
    }

    /// Writes what the socket takes now.
    pub fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Socket::Plain(s) => (&*s).write(buf),
            Socket::Tokio(s) => s.try_write(buf),
            Socket::Gone => Err(gone()),
        }
    }

    /// Reads what the socket has now into the spare capacity of `buf`.
    pub fn try_read_buf(&self, buf: &mut BytesMut) -> io::Result<usize> {
        match self {
            Socket::Plain(s) => {
                let mut chunk = [0u8; 4096];
                let room = buf.capacity().saturating_sub(buf.len()).clamp(1, 4096);
                let n = (&*s).read(chunk.get_mut(..room).unwrap_or_default())?;
                buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
                Ok(n)
            }
            Socket::Tokio(s) => s.try_read_buf(buf),
            Socket::Gone => Err(gone()),
        }
    }

    /// As [`Socket::try_read_buf`]; a short read emptied the socket, and
    /// saying so to tokio (by answering WouldBlock from `try_io`) clears its
    /// readiness, which saves the read that would only find nothing. Data
    /// arriving later raises a new readiness event, which this does not clear.
    pub fn try_read_buf_drained(&self, buf: &mut BytesMut) -> io::Result<usize> {
        let Socket::Tokio(s) = self else {
            return self.try_read_buf(buf);
        };
        let room = buf.capacity().saturating_sub(buf.len());
        let mut read = 0;
        let result = s.try_io(tokio::io::Interest::READABLE, || {
            read = s.try_read_buf(buf)?;
            if read > 0 && read < room {
                Err(io::ErrorKind::WouldBlock.into())
            } else {
                Ok(read)
            }
        });
        match result {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && read > 0 => Ok(read),
            other => other,
        }
    }

    /// Waits until the socket is readable.
    pub async fn readable(&mut self) -> io::Result<()> {
        self.register()?;
        match self {
            Socket::Tokio(s) => s.readable().await,
            _ => Err(gone()),
        }
    }

    /// Readiness for reading; call [`Socket::register`] first.
    pub fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self {
            Socket::Tokio(s) => s.poll_read_ready(cx),
            _ => Poll::Ready(Err(gone())),
        }
    }

    /// Readiness for writing; call [`Socket::register`] first.
    pub fn poll_write_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self {
            Socket::Tokio(s) => s.poll_write_ready(cx),
            _ => Poll::Ready(Err(gone())),
        }
    }

    /// Writes all of `data`, waiting for the socket as needed.
    pub async fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        self.register()?;
        match self {
            Socket::Tokio(s) => s.write_all(data).await,
            _ => Err(gone()),
        }
    }

    /// Shuts the writing half down.
    pub async fn shutdown(&mut self) -> io::Result<()> {
        match self {
            Socket::Plain(s) => s.shutdown(std::net::Shutdown::Write),
            Socket::Tokio(s) => s.shutdown().await,
            Socket::Gone => Err(gone()),
        }
    }

    /// The socket out of tokio (for the parker).
    pub fn into_std(self) -> io::Result<std::net::TcpStream> {
        match self {
            Socket::Plain(s) => Ok(s),
            Socket::Tokio(s) => s.into_std(),
            Socket::Gone => Err(gone()),
        }
    }
}

fn gone() -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, "socket lost")
}
