//! What a connection's MQTT bytes travel over: plain TCP, TLS (rustls),
//! WebSocket (RFC 6455, client side), or WebSocket over TLS.
//!
//! Plain TCP is the socket and nothing else: the connection loop writes
//! its MQTT buffer and reads into its MQTT buffer directly. With layers,
//! outgoing MQTT bytes are framed (a masked binary frame per write) and
//! encrypted into `raw_out`, and socket bytes read into `raw_in` are
//! decrypted and unframed into the MQTT read buffer.
//!
//! TLS is rustls's `ClientConnection` driven by hand (`read_tls`,
//! `process_new_packets`, `write_tls`) rather than tokio-rustls's stream:
//! the loop works on socket readiness and its own buffers (`try_read`,
//! `try_write`), which an `AsyncRead` stream would hide. The WebSocket
//! client is the few dozen lines a client needs: the upgrade, masking
//! outgoing frames, and a header parser for the server's unmasked frames.

use std::io::{Read, Write};
use std::sync::Arc;

use bytes::{Buf, BufMut, BytesMut};
use tokio::io::Interest;
use tokio::net::TcpStream;
use tokio::time::{timeout_at, Instant};

use crate::conn::ConnError;

/// The layers a run's connections use.
#[derive(Debug, Clone, Default)]
pub struct LinkKind {
    /// TLS with this client config, to this server name.
    pub tls: Option<(
        Arc<rustls::ClientConfig>,
        rustls::pki_types::ServerName<'static>,
    )>,
    /// A WebSocket with the `mqtt` subprotocol, with this Host header.
    pub websocket: Option<String>,
}

impl LinkKind {
    /// A client config that trusts the CAs in `cafile` (PEM).
    pub fn tls_config(cafile: &std::path::Path) -> Result<Arc<rustls::ClientConfig>, String> {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::CertificateDer;
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(cafile)
            .map_err(|e| format!("{}: {e}", cafile.display()))?
        {
            let cert = cert.map_err(|e| format!("{}: {e}", cafile.display()))?;
            roots
                .add(cert)
                .map_err(|e| format!("{}: {e}", cafile.display()))?;
        }
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
        Ok(Arc::new(config))
    }
}

/// The client side of RFC 6455 framing, streaming like the server's.
#[derive(Debug, Default)]
struct WsFrames {
    /// Payload bytes of the current frame still to come.
    remaining: u64,
    /// The current frame carries MQTT (binary or continuation).
    data: bool,
    /// The current frame is a control frame whose payload is collected.
    control: Option<(u8, Vec<u8>)>,
}

/// One connection's socket and layers.
#[derive(Debug)]
pub struct Link {
    stream: TcpStream,
    tls: Option<Box<rustls::ClientConnection>>,
    ws: Option<WsFrames>,
    raw_in: BytesMut,
    raw_out: BytesMut,
    /// TLS plaintext not yet unframed (WebSocket over TLS).
    between: BytesMut,
}

const MASK: [u8; 4] = [0x5a, 0x13, 0xc7, 0x2e];

impl Link {
    /// A plain TCP link.
    pub fn plain(stream: TcpStream) -> Link {
        Link {
            stream,
            tls: None,
            ws: None,
            raw_in: BytesMut::new(),
            raw_out: BytesMut::new(),
            between: BytesMut::new(),
        }
    }

    /// `stream` with the layers of `kind`, handshakes done by `deadline`.
    pub async fn open(
        stream: TcpStream,
        kind: &LinkKind,
        deadline: Instant,
    ) -> Result<Link, ConnError> {
        let mut link = Link::plain(stream);
        if let Some((config, name)) = &kind.tls {
            let conn = rustls::ClientConnection::new(config.clone(), name.clone())
                .map_err(|e| std::io::Error::other(e.to_string()))?;
            link.tls = Some(Box::new(conn));
            link.tls_handshake(deadline).await?;
        }
        if let Some(host) = &kind.websocket {
            link.upgrade(host, deadline).await?;
        }
        Ok(link)
    }

    /// True for plain TCP.
    pub fn is_plain(&self) -> bool {
        self.tls.is_none() && self.ws.is_none()
    }

    /// Bytes encoded for the socket and not yet written.
    pub fn pending(&self) -> usize {
        self.raw_out.len()
    }

    async fn tls_handshake(&mut self, deadline: Instant) -> Result<(), ConnError> {
        loop {
            let Some(tls) = self.tls.as_deref_mut() else {
                return Ok(());
            };
            if !tls.is_handshaking() {
                return Ok(());
            }
            self.encode(&mut BytesMut::new());
            self.write_raw_all(deadline, "the TLS handshake").await?;
            if !self.tls.as_deref().is_some_and(|t| t.is_handshaking()) {
                return Ok(());
            }
            self.read_raw(deadline, "the TLS handshake").await?;
            let mut scratch = BytesMut::new();
            self.decode(&mut scratch)?;
        }
    }

    async fn upgrade(&mut self, host: &str, deadline: Instant) -> Result<(), ConnError> {
        let request = format!(
            "GET /mqtt HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: Y3VsZXggYmVuY2ggMTYgYg==\r\nSec-WebSocket-Version: 13\r\n\
             Sec-WebSocket-Protocol: mqtt\r\n\r\n"
        );
        let mut head = BytesMut::from(request.as_bytes());
        self.encode_tls(&mut head);
        self.write_raw_all(deadline, "the WebSocket upgrade")
            .await?;
        // The response head, as plaintext; what follows it is frames.
        let mut plain = BytesMut::new();
        let end = loop {
            if let Some(end) = plain.windows(4).position(|w| w == b"\r\n\r\n") {
                break end + 4;
            }
            self.read_raw(deadline, "the WebSocket upgrade").await?;
            self.decrypt(&mut plain)?;
        };
        if !plain.starts_with(b"HTTP/1.1 101") {
            return Err(ConnError::Closed);
        }
        plain.advance(end);
        self.between = plain;
        self.ws = Some(WsFrames::default());
        Ok(())
    }

    /// Encodes `plain` (MQTT, emptied) for the socket into `raw_out`.
    pub fn encode(&mut self, plain: &mut BytesMut) {
        if self.ws.is_some() && !plain.is_empty() {
            let mut framed = BytesMut::with_capacity(plain.len() + 14);
            put_frame(&mut framed, 0x2, plain);
            plain.clear();
            *plain = framed;
        }
        self.encode_tls(plain);
    }

    fn encode_tls(&mut self, plain: &mut BytesMut) {
        match self.tls.as_deref_mut() {
            Some(tls) => {
                if !plain.is_empty() {
                    // rustls buffers what it cannot encrypt yet (during the handshake).
                    let _ = tls.writer().write_all(plain);
                    plain.clear();
                }
                let mut out = (&mut self.raw_out).writer();
                while tls.wants_write() {
                    if tls.write_tls(&mut out).is_err() {
                        break;
                    }
                }
            }
            None => self.raw_out.unsplit(plain.split()),
        }
    }

    /// Decodes what `raw_in` holds into MQTT bytes in `rbuf`.
    fn decode(&mut self, rbuf: &mut BytesMut) -> Result<(), ConnError> {
        if self.ws.is_none() {
            return self.decrypt(rbuf);
        }
        let mut between = std::mem::take(&mut self.between);
        self.decrypt(&mut between)?;
        let result = self.unframe(&mut between, rbuf);
        self.between = between;
        result
    }

    /// TLS records in `raw_in` into plaintext appended to `out` (or the
    /// bytes as they are without TLS).
    fn decrypt(&mut self, out: &mut BytesMut) -> Result<(), ConnError> {
        let Some(tls) = self.tls.as_deref_mut() else {
            out.unsplit(self.raw_in.split());
            return Ok(());
        };
        while !self.raw_in.is_empty() {
            let mut slice: &[u8] = &self.raw_in;
            let n = tls.read_tls(&mut slice)?;
            self.raw_in.advance(n);
            tls.process_new_packets()
                .map_err(|e| std::io::Error::other(e.to_string()))?;
            let mut chunk = [0u8; 16 * 1024];
            loop {
                match tls.reader().read(&mut chunk) {
                    Ok(0) => return Err(ConnError::Closed),
                    Ok(n) => out.extend_from_slice(chunk.get(..n).unwrap_or_default()),
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                    Err(e) => return Err(e.into()),
                }
            }
            if n == 0 {
                break;
            }
        }
        // Alerts, key updates, tickets answered.
        let mut sink = (&mut self.raw_out).writer();
        while tls.wants_write() {
            if tls.write_tls(&mut sink).is_err() {
                break;
            }
        }
        Ok(())
    }

    /// Server frames in `input` into MQTT bytes in `rbuf`; pings answered.
    fn unframe(&mut self, input: &mut BytesMut, rbuf: &mut BytesMut) -> Result<(), ConnError> {
        let Some(ws) = self.ws.as_mut() else {
            return Ok(());
        };
        let mut replies = BytesMut::new();
        loop {
            if ws.remaining > 0 {
                if input.is_empty() {
                    break;
                }
                let take = usize::try_from(ws.remaining)
                    .unwrap_or(usize::MAX)
                    .min(input.len());
                let chunk = input.split_to(take);
                ws.remaining -= take as u64;
                if ws.data {
                    rbuf.unsplit(chunk);
                } else if let Some((_, payload)) = ws.control.as_mut() {
                    payload.extend_from_slice(&chunk);
                }
                if ws.remaining > 0 {
                    break;
                }
            }
            if let Some((opcode, payload)) = ws.control.take() {
                match opcode {
                    0x8 => return Err(ConnError::Closed),
                    0x9 => put_frame(&mut replies, 0xA, &payload),
                    _ => {}
                }
            }
            let Some((opcode, len, header)) = frame_header(input) else {
                break;
            };
            input.advance(header);
            ws.remaining = len;
            ws.data = matches!(opcode, 0x0 | 0x2);
            ws.control = (opcode >= 0x8).then(|| (opcode, Vec::new()));
            if len == 0 && ws.control.is_none() {
                continue;
            }
        }
        if !replies.is_empty() {
            self.encode_tls(&mut replies);
        }
        Ok(())
    }

    /// Writes what the socket takes now: MQTT bytes of `wbuf` directly
    /// (plain TCP), or encoded into `raw_out` first. Returns whether
    /// anything was written.
    pub fn try_write(&mut self, wbuf: &mut BytesMut) -> Result<bool, ConnError> {
        if self.is_plain() {
            return match self.stream.try_write(wbuf) {
                Ok(n) => {
                    wbuf.advance(n);
                    Ok(n > 0)
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Ok(false),
                Err(e) => Err(e.into()),
            };
        }
        if !wbuf.is_empty() {
            self.encode(wbuf);
        }
        match self.stream.try_write(&self.raw_out) {
            Ok(n) => {
                self.raw_out.advance(n);
                Ok(n > 0)
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Reads what the socket has now, as MQTT bytes into `rbuf`: the bytes
    /// read from the socket (0: closed).
    pub fn try_read(&mut self, rbuf: &mut BytesMut) -> std::io::Result<usize> {
        if self.is_plain() {
            return self.stream.try_read_buf(rbuf);
        }
        self.raw_in.reserve(16 * 1024);
        let n = self.stream.try_read_buf(&mut self.raw_in)?;
        if n > 0 {
            self.decode(rbuf).map_err(|e| match e {
                ConnError::Io(e) => e,
                other => std::io::Error::other(other.to_string()),
            })?;
        }
        Ok(n)
    }

    /// Waits for the socket to be ready for `interest`.
    pub async fn ready(&self, interest: Interest) -> std::io::Result<()> {
        self.stream.ready(interest).await.map(|_| ())
    }

    /// Writes all of `wbuf` (MQTT bytes), by `deadline`.
    pub async fn write_all(
        &mut self,
        wbuf: &mut BytesMut,
        deadline: Instant,
        what: &'static str,
    ) -> Result<(), ConnError> {
        if self.is_plain() {
            use tokio::io::AsyncWriteExt;
            timeout_at(deadline, self.stream.write_all(wbuf))
                .await
                .map_err(|_| ConnError::Timeout(what))??;
            wbuf.clear();
            return Ok(());
        }
        self.encode(wbuf);
        self.write_raw_all(deadline, what).await
    }

    async fn write_raw_all(
        &mut self,
        deadline: Instant,
        what: &'static str,
    ) -> Result<(), ConnError> {
        use tokio::io::AsyncWriteExt;
        if !self.raw_out.is_empty() {
            timeout_at(deadline, self.stream.write_all(&self.raw_out))
                .await
                .map_err(|_| ConnError::Timeout(what))??;
            self.raw_out.clear();
        }
        Ok(())
    }

    async fn read_raw(&mut self, deadline: Instant, what: &'static str) -> Result<(), ConnError> {
        use tokio::io::AsyncReadExt;
        self.raw_in.reserve(16 * 1024);
        let n = timeout_at(deadline, self.stream.read_buf(&mut self.raw_in))
            .await
            .map_err(|_| ConnError::Timeout(what))??;
        if n == 0 {
            return Err(ConnError::Closed);
        }
        Ok(())
    }

    /// Reads once (waiting), as MQTT bytes into `rbuf`: the bytes read (0: closed).
    pub async fn read_some(
        &mut self,
        rbuf: &mut BytesMut,
        deadline: Instant,
        what: &'static str,
    ) -> Result<usize, ConnError> {
        if self.is_plain() {
            use tokio::io::AsyncReadExt;
            return timeout_at(deadline, self.stream.read_buf(rbuf))
                .await
                .map_err(|_| ConnError::Timeout(what))?
                .map_err(Into::into);
        }
        match self.read_raw(deadline, what).await {
            Err(ConnError::Closed) => return Ok(0),
            other => other?,
        }
        self.decode(rbuf)?;
        self.write_raw_all(deadline, what).await?;
        Ok(1)
    }
}

/// A masked client frame of `opcode` carrying `payload`.
fn put_frame(out: &mut BytesMut, opcode: u8, payload: &[u8]) {
    out.put_u8(0x80 | opcode);
    match payload.len() {
        n if n < 126 => out.put_u8(0x80 | n as u8),
        n if n <= 0xFFFF => {
            out.put_u8(0x80 | 126);
            out.put_u16(n as u16);
        }
        n => {
            out.put_u8(0x80 | 127);
            out.put_u64(n as u64);
        }
    }
    out.put_slice(&MASK);
    let start = out.len();
    out.put_slice(payload);
    if let Some(body) = out.get_mut(start..) {
        for (byte, key) in body.iter_mut().zip(MASK.iter().cycle()) {
            *byte ^= key;
        }
    }
}

/// A server frame header at the front of `input`: opcode, payload length,
/// header length; `None` while incomplete.
fn frame_header(input: &[u8]) -> Option<(u8, u64, usize)> {
    let (b0, b1) = (*input.first()?, *input.get(1)?);
    let masked = b1 & 0x80 != 0;
    let (len, at) = match b1 & 0x7F {
        126 => (
            u64::from(u16::from_be_bytes([*input.get(2)?, *input.get(3)?])),
            4,
        ),
        127 => {
            let mut raw = [0u8; 8];
            raw.copy_from_slice(input.get(2..10)?);
            (u64::from_be_bytes(raw), 10)
        }
        n => (u64::from(n), 2),
    };
    let header = at + if masked { 4 } else { 0 };
    (input.len() >= header).then_some((b0 & 0x0F, len, header))
}
