//! WebSocket (RFC 6455), server side: the HTTP/1.1 upgrade, then binary
//! frames carrying MQTT as one byte stream.
//!
//! The frame codec streams: a data frame's payload is unmasked and handed
//! up as it arrives, so the layer never buffers a frame or a message. What
//! it keeps between calls is a few integers (the current frame's remaining
//! length, its mask and the message's size so far). An incomplete frame
//! header, a control frame (at most 125 bytes) or an upgrade request that is
//! not complete yet stays in the caller's buffer until the rest arrives.
//! Message boundaries mean nothing to MQTT, so a fragmented message is just
//! more of the stream; only its size counts against the limit.

use std::path::PathBuf;

use base64::Engine as _;
use bytes::{Buf, BufMut, BytesMut};

use crate::http;

/// Settings of a `protocol websockets` listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebSocketOptions {
    /// `http_dir`: plain GET requests are served from here (by the runtime).
    pub http_dir: Option<PathBuf>,
    /// The largest message (all fragments together) accepted; bigger ones
    /// are refused with close code 1009 as soon as a frame header announces
    /// them.
    pub max_message_size: u64,
    /// The longest HTTP request head accepted, in bytes.
    pub max_request_size: usize,
}

impl Default for WebSocketOptions {
    /// No `http_dir`; messages up to the largest MQTT packet (256 MiB and its
    /// 5-byte fixed header); request heads up to 8 KiB (a browser's cookies
    /// fit).
    fn default() -> WebSocketOptions {
        WebSocketOptions {
            http_dir: None,
            max_message_size: 268_435_455 + 5,
            max_request_size: 8192,
        }
    }
}

/// What the peer did wrong, and the reply already queued for it (an HTTP
/// error response or a close frame with the code named here).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebSocketError {
    /// A request that is not HTTP/1.1, or headers that do not parse (400).
    #[error("bad HTTP request: {0}")]
    BadRequest(&'static str),
    /// The request head is longer than the limit (400).
    #[error("the HTTP request head is longer than {0} bytes")]
    RequestTooLong(usize),
    /// A method other than GET (405).
    #[error("HTTP method {0} is not allowed")]
    MethodNotAllowed(String),
    /// A WebSocket version other than 13 (426) [RFC 6455 4.4].
    #[error("unsupported WebSocket version {0:?} [RFC 6455 4.4]")]
    UnsupportedVersion(String),
    /// A plain GET on a listener without `http_dir` (404).
    #[error("not a WebSocket upgrade, and this listener serves no files")]
    NotAnUpgrade,
    /// A plain GET for a path outside `http_dir` (404).
    #[error("refused file path {0:?}")]
    BadPath(String),
    /// A client frame without a mask (close 1002) [RFC 6455 5.1].
    #[error("the client sent an unmasked frame [RFC 6455 5.1]")]
    UnmaskedFrame,
    /// Reserved bits set without a negotiated extension (close 1002) [RFC 6455 5.2].
    #[error("reserved frame bits set without an extension [RFC 6455 5.2]")]
    ReservedBits,
    /// An opcode RFC 6455 does not define (close 1002).
    #[error("unknown opcode {0:#x} [RFC 6455 5.2]")]
    UnknownOpcode(u8),
    /// A fragmented or over-long control frame (close 1002) [RFC 6455 5.5].
    #[error("control frames must be whole and at most 125 bytes [RFC 6455 5.5]")]
    BadControlFrame,
    /// A continuation with no message to continue, or a new message before
    /// the last one ended (close 1002) [RFC 6455 5.4].
    #[error("fragments out of order [RFC 6455 5.4]")]
    BadFragment,
    /// A 64-bit length with its top bit set (close 1002) [RFC 6455 5.2].
    #[error("frame length out of range [RFC 6455 5.2]")]
    BadLength,
    /// A text frame: MQTT travels in binary frames (close 1003).
    #[error("text frames are not accepted: MQTT needs binary frames")]
    TextFrame,
    /// A message over the limit (close 1009).
    #[error("message of at least {size} bytes is over the limit of {max}")]
    MessageTooBig {
        /// The size announced so far.
        size: u64,
        /// The limit.
        max: u64,
    },
    /// A close frame with a code that may not be sent (close 1002) [RFC 6455 7.4].
    #[error("invalid close code {0} [RFC 6455 7.4]")]
    BadCloseCode(u16),
    /// A close reason that is not UTF-8 (close 1007) [RFC 6455 5.5.1].
    #[error("close reason is not UTF-8 [RFC 6455 5.5.1]")]
    BadCloseReason,
    /// Data after the connection was closed (the caller's mistake).
    #[error("the WebSocket connection is closed")]
    Closed,
}

impl WebSocketError {
    /// The close code sent for an error after the upgrade, if any.
    pub fn close_code(&self) -> Option<u16> {
        use WebSocketError::*;
        match self {
            UnmaskedFrame | ReservedBits | UnknownOpcode(_) | BadControlFrame | BadFragment
            | BadLength | BadCloseCode(_) => Some(close_code::PROTOCOL_ERROR),
            TextFrame => Some(close_code::UNSUPPORTED_DATA),
            MessageTooBig { .. } => Some(close_code::MESSAGE_TOO_BIG),
            BadCloseReason => Some(close_code::INVALID_PAYLOAD),
            _ => None,
        }
    }
}

/// Close codes used here [RFC 6455 7.4.1].
pub mod close_code {
    /// 1000: normal closure.
    pub const NORMAL: u16 = 1000;
    /// 1002: protocol error.
    pub const PROTOCOL_ERROR: u16 = 1002;
    /// 1003: a data type the endpoint cannot accept.
    pub const UNSUPPORTED_DATA: u16 = 1003;
    /// 1007: data inconsistent with the message type.
    pub const INVALID_PAYLOAD: u16 = 1007;
    /// 1009: a message too big to process.
    pub const MESSAGE_TOO_BIG: u16 = 1009;
}

/// What a call to [`WebSocketLayer::read`] came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebSocketProgress {
    /// Waiting for the rest of the upgrade request.
    Upgrading,
    /// Upgraded; payload bytes (if any) were appended to `up`.
    Open,
    /// A plain GET for a file in `http_dir`: the runtime answers it (see
    /// [`http`]) and closes the connection.
    FileRequest(http::FileRequest),
    /// The peer closed; the echoing close frame is in `reply`. Write it,
    /// then close the socket.
    Closed,
}

const OP_CONTINUATION: u8 = 0x0;
const OP_TEXT: u8 = 0x1;
const OP_BINARY: u8 = 0x2;
const OP_CLOSE: u8 = 0x8;
const OP_PING: u8 = 0x9;
const OP_PONG: u8 = 0xA;

/// The GUID every accept key is hashed with [RFC 6455 1.3].
const ACCEPT_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Upgrading,
    Open,
    /// We sent a close frame and wait for the peer's.
    CloseSent,
    /// Done: the close handshake completed, a file was requested, or an error.
    Closed,
}

/// A server-side WebSocket connection.
///
/// Call order: [`read`](Self::read) with bytes from below (the socket, or
/// TLS plaintext) until it reports [`WebSocketProgress::Open`] (the 101
/// response is in `reply`); from then on `read` appends MQTT bytes to `up`
/// and [`write`](Self::write) frames MQTT bytes for the peer;
/// [`close`](Self::close) starts an orderly close. Whatever `reply` receives
/// must be sent (through the layers below), also when `read` returns an
/// error: that is the error response or close frame.
#[derive(Debug, Clone)]
pub struct WebSocketLayer {
    state: State,
    serve_files: bool,
    max_request_size: usize,
    max_message_size: u64,
    /// Payload bytes of the current data frame still to come.
    remaining: u64,
    mask: [u8; 4],
    /// Where in `mask` the next payload byte is.
    mask_offset: u8,
    /// A data message has started and awaits its final fragment.
    in_message: bool,
    /// Bytes of the current message so far, counting announced lengths.
    message_size: u64,
}

impl WebSocketLayer {
    /// A layer waiting for the upgrade request.
    pub fn new(options: &WebSocketOptions) -> WebSocketLayer {
        WebSocketLayer {
            state: State::Upgrading,
            serve_files: options.http_dir.is_some(),
            max_request_size: options.max_request_size,
            max_message_size: options.max_message_size,
            remaining: 0,
            mask: [0; 4],
            mask_offset: 0,
            in_message: false,
            message_size: 0,
        }
    }

    /// True once upgraded and until closed.
    pub fn is_open(&self) -> bool {
        self.state == State::Open
    }

    /// Consumes what it can of `input` (bytes from below): MQTT bytes go to
    /// `up`; the 101 response, pongs and close frames to `reply`.
    pub fn read(
        &mut self,
        input: &mut BytesMut,
        up: &mut BytesMut,
        reply: &mut BytesMut,
    ) -> Result<WebSocketProgress, WebSocketError> {
        let result = self.read_inner(input, up, reply);
        if let Err(error) = &result {
            if let Some(code) = error.close_code() {
                if matches!(self.state, State::Open) {
                    write_close(reply, code);
                }
            }
            self.state = State::Closed;
            input.clear();
        }
        result
    }

    fn read_inner(
        &mut self,
        input: &mut BytesMut,
        up: &mut BytesMut,
        reply: &mut BytesMut,
    ) -> Result<WebSocketProgress, WebSocketError> {
        if self.state == State::Upgrading {
            match self.upgrade(input, reply)? {
                Some(WebSocketProgress::Open) => {}
                Some(other) => return Ok(other),
                None => return Ok(WebSocketProgress::Upgrading),
            }
        }
        loop {
            match self.state {
                State::Upgrading => return Ok(WebSocketProgress::Upgrading),
                State::Closed => {
                    if input.is_empty() {
                        return Ok(WebSocketProgress::Closed);
                    }
                    return Err(WebSocketError::Closed);
                }
                State::Open | State::CloseSent => {}
            }
            if self.remaining > 0 {
                if input.is_empty() {
                    return Ok(WebSocketProgress::Open);
                }
                let take = usize::try_from(self.remaining)
                    .unwrap_or(usize::MAX)
                    .min(input.len());
                let mut chunk = input.split_to(take);
                unmask(&mut chunk, self.mask, self.mask_offset);
                self.mask_offset = ((usize::from(self.mask_offset) + take) % 4) as u8;
                self.remaining -= take as u64;
                // After our close frame, data is read and dropped.
                if self.state == State::Open {
                    up.extend_from_slice(&chunk);
                }
                continue;
            }
            let Some(header) = FrameHeader::parse(input)? else {
                return Ok(WebSocketProgress::Open);
            };
            if header.opcode >= OP_CLOSE {
                let total = header.header_len + header.payload_len as usize;
                if input.len() < total {
                    return Ok(WebSocketProgress::Open);
                }
                input.advance(header.header_len);
                let mut payload = input.split_to(header.payload_len as usize);
                unmask(&mut payload, header.mask, 0);
                match header.opcode {
                    OP_PING => {
                        if self.state == State::Open {
                            write_frame_header(reply, OP_PONG, payload.len() as u64);
                            reply.extend_from_slice(&payload);
                        }
                    }
                    OP_PONG => {}
                    _ => {
                        self.on_close(&payload, reply)?;
                        return Ok(WebSocketProgress::Closed);
                    }
                }
                continue;
            }
            // A data frame.
            match (header.opcode, self.in_message) {
                (OP_CONTINUATION, true) | (OP_BINARY, false) => {}
                (OP_TEXT, false) => return Err(WebSocketError::TextFrame),
                _ => return Err(WebSocketError::BadFragment),
            }
            if !self.in_message {
                self.message_size = 0;
            }
            self.message_size = self.message_size.saturating_add(header.payload_len);
            if self.message_size > self.max_message_size {
                return Err(WebSocketError::MessageTooBig {
                    size: self.message_size,
                    max: self.max_message_size,
                });
            }
            self.in_message = !header.fin;
            input.advance(header.header_len);
            self.remaining = header.payload_len;
            self.mask = header.mask;
            self.mask_offset = 0;
        }
    }

    /// Handles a close frame's payload: checks it and echoes the code.
    fn on_close(&mut self, payload: &[u8], reply: &mut BytesMut) -> Result<(), WebSocketError> {
        let code = match payload {
            [] => None,
            [_] => return Err(WebSocketError::BadCloseCode(0)),
            [hi, lo, reason @ ..] => {
                let code = u16::from_be_bytes([*hi, *lo]);
                let allowed = matches!(code, 1000..=1003 | 1007..=1011 | 3000..=4999);
                if !allowed {
                    return Err(WebSocketError::BadCloseCode(code));
                }
                if std::str::from_utf8(reason).is_err() {
                    return Err(WebSocketError::BadCloseReason);
                }
                Some(code)
            }
        };
        if self.state == State::Open {
            write_close(reply, code.unwrap_or(close_code::NORMAL));
        }
        self.state = State::Closed;
        Ok(())
    }

    /// Frames `plain` (MQTT bytes) as one binary message into `out`, and
    /// empties `plain`.
    pub fn write(
        &mut self,
        plain: &mut BytesMut,
        out: &mut BytesMut,
    ) -> Result<(), WebSocketError> {
        if plain.is_empty() {
            return Ok(());
        }
        if self.state != State::Open {
            return Err(WebSocketError::Closed);
        }
        out.reserve(plain.len() + 10);
        write_frame_header(out, OP_BINARY, plain.len() as u64);
        out.extend_from_slice(plain);
        plain.clear();
        Ok(())
    }

    /// Starts an orderly close: a close frame with `code` goes to `out`.
    /// Before the upgrade completed there is nothing to send.
    pub fn close(&mut self, code: u16, out: &mut BytesMut) {
        match self.state {
            State::Open => {
                write_close(out, code);
                self.state = State::CloseSent;
            }
            State::Upgrading => self.state = State::Closed,
            State::CloseSent | State::Closed => {}
        }
    }

    /// Reads the upgrade request once it is complete; `None` while it is not.
    fn upgrade(
        &mut self,
        input: &mut BytesMut,
        reply: &mut BytesMut,
    ) -> Result<Option<WebSocketProgress>, WebSocketError> {
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut request = httparse::Request::new(&mut headers);
        let parsed = request.parse(input);
        let head_len = match parsed {
            Ok(httparse::Status::Complete(len)) if len <= self.max_request_size => len,
            Ok(httparse::Status::Partial) if input.len() <= self.max_request_size => {
                return Ok(None)
            }
            Ok(_) => {
                http::write_error(reply, 400);
                return Err(WebSocketError::RequestTooLong(self.max_request_size));
            }
            Err(e) => {
                http::write_error(reply, 400);
                return Err(WebSocketError::BadRequest(match e {
                    httparse::Error::TooManyHeaders => "too many headers",
                    httparse::Error::Version => "not HTTP/1.x",
                    _ => "malformed request head",
                }));
            }
        };
        let outcome = self.answer(&request, reply);
        input.advance(head_len);
        outcome.map(Some)
    }

    fn answer(
        &mut self,
        request: &httparse::Request<'_, '_>,
        reply: &mut BytesMut,
    ) -> Result<WebSocketProgress, WebSocketError> {
        let fail = |reply: &mut BytesMut, status: u16, error: WebSocketError| {
            http::write_error(reply, status);
            Err(error)
        };
        if request.version != Some(1) {
            return fail(reply, 400, WebSocketError::BadRequest("not HTTP/1.1"));
        }
        let method = request.method.unwrap_or_default();
        let path = request.path.unwrap_or_default();
        let header = |name: &'static str| header_values(request, name);
        let has_token = |name: &'static str, token: &str| {
            header(name).any(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
        };
        let is_upgrade = has_token("upgrade", "websocket");
        if !is_upgrade {
            if method != "GET" && method != "HEAD" {
                return fail(
                    reply,
                    405,
                    WebSocketError::MethodNotAllowed(method.to_string()),
                );
            }
            if !self.serve_files {
                return fail(reply, 404, WebSocketError::NotAnUpgrade);
            }
            return match http::FileRequest::parse(path, method == "HEAD") {
                Some(file) => {
                    self.state = State::Closed;
                    Ok(WebSocketProgress::FileRequest(file))
                }
                None => fail(reply, 404, WebSocketError::BadPath(path.to_string())),
            };
        }
        if method != "GET" {
            return fail(
                reply,
                405,
                WebSocketError::MethodNotAllowed(method.to_string()),
            );
        }
        if !has_token("connection", "upgrade") {
            return fail(
                reply,
                400,
                WebSocketError::BadRequest("no 'Connection: Upgrade'"),
            );
        }
        let version = header("sec-websocket-version").next().unwrap_or("").trim();
        if version != "13" {
            http::write_head(
                reply,
                426,
                &[("Sec-WebSocket-Version", "13"), ("Content-Length", "0")],
            );
            return Err(WebSocketError::UnsupportedVersion(version.to_string()));
        }
        let key = header("sec-websocket-key").next().unwrap_or("").trim();
        let key_ok = base64::engine::general_purpose::STANDARD
            .decode(key)
            .is_ok_and(|raw| raw.len() == 16);
        if !key_ok {
            return fail(
                reply,
                400,
                WebSocketError::BadRequest("bad Sec-WebSocket-Key"),
            );
        }
        // MQTT.js and paho offer `mqtt`; old clients `mqttv3.1`. A client that
        // offers neither (or nothing) gets no subprotocol header.
        let offered = |wanted: &str| {
            header("sec-websocket-protocol")
                .any(|v| v.split(',').any(|p| p.trim().eq_ignore_ascii_case(wanted)))
        };
        let protocol = ["mqtt", "mqttv3.1"].into_iter().find(|p| offered(p));
        let accept = accept_key(key);
        let mut fields = vec![
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
            ("Sec-WebSocket-Accept", accept.as_str()),
        ];
        if let Some(protocol) = protocol {
            fields.push(("Sec-WebSocket-Protocol", protocol));
        }
        http::write_head(reply, 101, &fields);
        self.state = State::Open;
        Ok(WebSocketProgress::Open)
    }
}

/// The values of every `name` header that are UTF-8.
fn header_values<'r>(
    request: &'r httparse::Request<'_, '_>,
    name: &'static str,
) -> impl Iterator<Item = &'r str> + 'r {
    request
        .headers
        .iter()
        .filter(move |h| h.name.eq_ignore_ascii_case(name))
        .filter_map(|h| std::str::from_utf8(h.value).ok())
}

/// `Sec-WebSocket-Accept` for a `Sec-WebSocket-Key` [RFC 6455 4.2.2].
pub fn accept_key(key: &str) -> String {
    let mut context = ring::digest::Context::new(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY);
    context.update(key.as_bytes());
    context.update(ACCEPT_GUID.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(context.finish())
}

struct FrameHeader {
    fin: bool,
    opcode: u8,
    mask: [u8; 4],
    payload_len: u64,
    header_len: usize,
}

impl FrameHeader {
    /// The header at the front of `input`, checked; `None` when incomplete.
    fn parse(input: &[u8]) -> Result<Option<FrameHeader>, WebSocketError> {
        let (Some(&b0), Some(&b1)) = (input.first(), input.get(1)) else {
            return Ok(None);
        };
        let fin = b0 & 0x80 != 0;
        let opcode = b0 & 0x0F;
        if b0 & 0x70 != 0 {
            return Err(WebSocketError::ReservedBits);
        }
        if !matches!(
            opcode,
            OP_CONTINUATION | OP_TEXT | OP_BINARY | OP_CLOSE | OP_PING | OP_PONG
        ) {
            return Err(WebSocketError::UnknownOpcode(opcode));
        }
        if b1 & 0x80 == 0 {
            return Err(WebSocketError::UnmaskedFrame);
        }
        let short = u64::from(b1 & 0x7F);
        if opcode >= OP_CLOSE && (!fin || short > 125) {
            return Err(WebSocketError::BadControlFrame);
        }
        let (payload_len, at) = match short {
            126 => match input.get(2..4) {
                Some(&[a, b]) => (u64::from(u16::from_be_bytes([a, b])), 4),
                _ => return Ok(None),
            },
            127 => match input.get(2..10) {
                Some(bytes) => {
                    let mut raw = [0u8; 8];
                    raw.copy_from_slice(bytes);
                    let len = u64::from_be_bytes(raw);
                    if len >> 63 != 0 {
                        return Err(WebSocketError::BadLength);
                    }
                    (len, 10)
                }
                None => return Ok(None),
            },
            len => (len, 2),
        };
        let Some(&[m0, m1, m2, m3]) = input.get(at..at + 4) else {
            return Ok(None);
        };
        Ok(Some(FrameHeader {
            fin,
            opcode,
            mask: [m0, m1, m2, m3],
            payload_len,
            header_len: at + 4,
        }))
    }
}

fn unmask(data: &mut [u8], mask: [u8; 4], offset: u8) {
    let mut key = mask;
    key.rotate_left(usize::from(offset % 4));
    for (byte, k) in data.iter_mut().zip(key.iter().cycle()) {
        *byte ^= k;
    }
}

/// A server frame header: final, unmasked.
fn write_frame_header(out: &mut BytesMut, opcode: u8, len: u64) {
    out.put_u8(0x80 | opcode);
    match len {
        0..=125 => out.put_u8(len as u8),
        126..=0xFFFF => {
            out.put_u8(126);
            out.put_u16(len as u16);
        }
        _ => {
            out.put_u8(127);
            out.put_u64(len);
        }
    }
}

fn write_close(out: &mut BytesMut, code: u16) {
    write_frame_header(out, OP_CLOSE, 2);
    out.put_u16(code);
}

#[cfg(test)]
mod tests;
