//! The blocking client over std's `TcpStream` (and rustls with feature `tls`).

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::string::String;
use std::time::{Duration, Instant};
use std::vec::Vec;

use super::{Client, Clock, Transport};
use crate::core::Millis;

/// The umqtt.simple-shaped client over TCP: `MQTTClient::new(client_id, server)`.
pub type MQTTClient<'a> = Client<'a, TcpTransport, StdClock, Vec<u8>>;

/// Milliseconds since the clock was made, from `std::time::Instant`.
#[derive(Debug, Clone, Copy)]
pub struct StdClock {
    origin: Instant,
}

impl Default for StdClock {
    fn default() -> Self {
        StdClock {
            origin: Instant::now(),
        }
    }
}

impl Clock for StdClock {
    fn now(&mut self) -> Millis {
        Millis(u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX))
    }
}

enum Stream {
    Plain(TcpStream),
    #[cfg(feature = "tls")]
    Tls(std::boxed::Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Stream {
    fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(s) => s,
            #[cfg(feature = "tls")]
            Stream::Tls(s) => s.get_ref(),
        }
    }
}

/// A TCP (or TLS) connection to `server:port`, opened by `connect`.
pub struct TcpTransport {
    server: String,
    port: u16,
    #[cfg(feature = "tls")]
    tls: Option<std::sync::Arc<rustls::ClientConfig>>,
    stream: Option<Stream>,
}

impl std::fmt::Debug for TcpTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcpTransport")
            .field("server", &self.server)
            .field("port", &self.port)
            .field("open", &self.stream.is_some())
            .finish()
    }
}

impl TcpTransport {
    /// A transport to `server` (a host name or address) on `port`; port 0
    /// means 1883, or 8883 with TLS.
    pub fn new(server: &str, port: u16) -> TcpTransport {
        TcpTransport {
            server: server.into(),
            port,
            #[cfg(feature = "tls")]
            tls: None,
            stream: None,
        }
    }

    fn effective_port(&self) -> u16 {
        match self.port {
            0 if self.is_tls() => 8883,
            0 => 1883,
            port => port,
        }
    }

    fn is_tls(&self) -> bool {
        #[cfg(feature = "tls")]
        {
            self.tls.is_some()
        }
        #[cfg(not(feature = "tls"))]
        {
            false
        }
    }

    /// Shuts the TCP connection down without DISCONNECT, as a network
    /// failure would (the broker then publishes the will).
    pub fn kill(&mut self) {
        if let Some(stream) = self.stream.take() {
            let _ = stream.tcp().shutdown(std::net::Shutdown::Both);
        }
    }

    fn stream(&mut self) -> std::io::Result<&mut Stream> {
        self.stream
            .as_mut()
            .ok_or_else(|| std::io::Error::new(ErrorKind::NotConnected, "not connected"))
    }
}

impl Transport for TcpTransport {
    type Error = std::io::Error;

    fn open(&mut self) -> std::io::Result<()> {
        let tcp = TcpStream::connect((self.server.as_str(), self.effective_port()))?;
        tcp.set_nodelay(true)?;
        #[cfg(feature = "tls")]
        if let Some(config) = &self.tls {
            let name = rustls::pki_types::ServerName::try_from(self.server.clone())
                .map_err(|e| std::io::Error::new(ErrorKind::InvalidInput, e))?;
            let conn = rustls::ClientConnection::new(config.clone(), name)
                .map_err(std::io::Error::other)?;
            self.stream = Some(Stream::Tls(std::boxed::Box::new(rustls::StreamOwned::new(
                conn, tcp,
            ))));
            return Ok(());
        }
        self.stream = Some(Stream::Plain(tcp));
        Ok(())
    }

    fn close(&mut self) {
        self.kill();
    }

    fn finish(&mut self) {
        let Some(mut stream) = self.stream.take() else {
            return;
        };
        #[cfg(feature = "tls")]
        if let Stream::Tls(tls) = &mut stream {
            tls.conn.send_close_notify();
            let _ = tls.flush();
        }
        let tcp = stream.tcp();
        let _ = tcp.shutdown(std::net::Shutdown::Write);
        // Wait (at most a second) for the server to close its side, so our
        // close cannot reset the connection before it has read DISCONNECT.
        let _ = tcp.set_nonblocking(false);
        let _ = tcp.set_read_timeout(Some(Duration::from_millis(250)));
        let start = Instant::now();
        let mut sink = [0u8; 512];
        while start.elapsed() < Duration::from_secs(1) {
            let n = match &mut stream {
                Stream::Plain(s) => s.read(&mut sink),
                #[cfg(feature = "tls")]
                Stream::Tls(s) => s.read(&mut sink),
            };
            match n {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(_) => break,
            }
        }
    }

    fn read(&mut self, buf: &mut [u8], wait: Option<u64>) -> std::io::Result<Option<usize>> {
        let stream = self.stream()?;
        let tcp = stream.tcp();
        match wait {
            Some(0) => tcp.set_nonblocking(true)?,
            Some(ms) => {
                tcp.set_nonblocking(false)?;
                tcp.set_read_timeout(Some(Duration::from_millis(ms)))?;
            }
            None => {
                tcp.set_nonblocking(false)?;
                tcp.set_read_timeout(None)?;
            }
        }
        let result = match stream {
            Stream::Plain(s) => s.read(buf),
            #[cfg(feature = "tls")]
            Stream::Tls(s) => s.read(buf),
        };
        let _ = stream.tcp().set_nonblocking(false);
        match result {
            Ok(n) => Ok(Some(n)),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => Ok(None),
            Err(e) if e.kind() == ErrorKind::Interrupted => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        match self.stream()? {
            Stream::Plain(s) => s.write_all(buf),
            #[cfg(feature = "tls")]
            Stream::Tls(s) => {
                s.write_all(buf)?;
                s.flush()
            }
        }
    }
}

impl<'a> Client<'a, TcpTransport, StdClock, Vec<u8>> {
    /// umqtt's `MQTTClient(client_id, server)`: port 1883, keepalive 0, no
    /// credentials, MQTT 3.1.1. Adjust with the builder methods.
    pub fn new(client_id: &'a str, server: &str) -> Self {
        Client::with_transport(
            client_id,
            TcpTransport::new(server, 0),
            StdClock::default(),
            Vec::with_capacity(1024),
            Vec::with_capacity(1024),
        )
    }

    /// The server port; 0 (the default) means 1883, or 8883 with TLS.
    pub fn port(mut self, port: u16) -> Self {
        self.transport().port = port;
        self
    }

    /// Connects over TLS with this rustls configuration (feature `tls`).
    #[cfg(feature = "tls")]
    pub fn tls(mut self, config: std::sync::Arc<rustls::ClientConfig>) -> Self {
        self.transport().tls = Some(config);
        self
    }
}
