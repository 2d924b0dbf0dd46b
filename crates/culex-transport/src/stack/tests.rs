//! Whole stacks: PROXY, TLS and WebSocket together, driven like a runtime.

use super::*;
use crate::test_support::{client, options};
use rustls::ClientConnection;
use std::io::{Read, Write};

const UPGRADE: &[u8] = b"GET /mqtt HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n\
Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n";
const PROXY_V1: &[u8] = b"PROXY TCP4 192.0.2.1 198.51.100.2 56324 8883\r\n";
const CONNECT: &[u8] = b"\x10\x0c\x00\x04MQTT\x04\x02\x00\x3c\x00\x00";

/// A masked binary frame, as a browser sends it.
fn ws_frame(payload: &[u8]) -> Vec<u8> {
    let key = [1, 2, 3, 4];
    let mut out = vec![0x82, 0x80 | payload.len() as u8];
    out.extend_from_slice(&key);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    out
}

/// The runtime's side of one connection.
struct Conn {
    stack: Stack,
    now: Instant,
    wire_in: BytesMut,
    plain_in: BytesMut,
    wire_out: BytesMut,
}

impl Conn {
    fn new(options: &TransportOptions) -> Conn {
        let now = Instant::now();
        let stack = Acceptor::new(options).unwrap().start(now).unwrap().unwrap();
        Conn {
            stack,
            now,
            wire_in: BytesMut::new(),
            plain_in: BytesMut::new(),
            wire_out: BytesMut::new(),
        }
    }

    fn receive(&mut self, bytes: &[u8]) -> Result<Progress, TransportError> {
        self.wire_in.extend_from_slice(bytes);
        self.stack.read(
            self.now,
            &mut self.wire_in,
            &mut self.plain_in,
            &mut self.wire_out,
        )
    }

    fn send(&mut self, mqtt: &[u8]) {
        let mut plain = BytesMut::from(mqtt);
        self.stack
            .write(&mut self.wire_in, &mut plain, &mut self.wire_out)
            .unwrap();
        assert!(plain.is_empty());
    }
}

fn all(proxy: bool, tls: bool, websockets: bool) -> TransportOptions {
    TransportOptions {
        proxy_protocol: proxy.then_some(ProxyVersion::V1),
        tls: tls.then(options),
        websockets: websockets.then(WebSocketOptions::default),
        handshake_timeout: None,
    }
}

/// Drives a rustls client against the stack until neither moves.
fn pump(client: &mut ClientConnection, conn: &mut Conn) -> Result<Progress, TransportError> {
    let mut progress = Ok(Progress::Handshaking);
    for _ in 0..10 {
        let mut to_server = Vec::new();
        while client.wants_write() {
            client.write_tls(&mut to_server).unwrap();
        }
        progress = conn.receive(&to_server);
        let out = conn.wire_out.split();
        let mut from_server = &out[..];
        while !from_server.is_empty() {
            client.read_tls(&mut from_server).unwrap();
            client.process_new_packets().unwrap();
        }
        if progress.is_err() || (to_server.is_empty() && out.is_empty()) {
            break;
        }
    }
    progress
}

#[test]
fn a_plain_listener_has_no_stack() {
    let acceptor = Acceptor::new(&TransportOptions::default()).unwrap();
    assert!(acceptor.is_plain() && TransportOptions::default().is_plain());
    assert!(acceptor.start(Instant::now()).unwrap().is_none());
}

#[test]
fn proxy_then_websocket_in_one_read() {
    let mut conn = Conn::new(&all(true, false, true));
    let input = [PROXY_V1, UPGRADE, &ws_frame(CONNECT)].concat();
    assert_eq!(conn.receive(&input).unwrap(), Progress::Open);
    assert_eq!(
        conn.stack.proxied_source(),
        Some("192.0.2.1:56324".parse().unwrap())
    );
    assert_eq!(&conn.plain_in[..], CONNECT);
    assert!(conn
        .wire_out
        .starts_with(b"HTTP/1.1 101 Switching Protocols\r\n"));
    conn.wire_out.clear();
    conn.send(b"\x20\x02\x00\x00");
    assert_eq!(&conn.wire_out[..], b"\x82\x04\x20\x02\x00\x00");
    assert!(conn.wire_in.is_empty() && conn.stack.is_idle());
}

#[test]
fn proxy_tls_websocket_with_a_real_client() {
    let mut conn = Conn::new(&all(true, true, true));
    assert_eq!(conn.receive(PROXY_V1).unwrap(), Progress::Handshaking);
    let mut client = client(None, false);
    assert_eq!(pump(&mut client, &mut conn).unwrap(), Progress::Handshaking);
    assert!(!conn.stack.is_established());
    client.writer().write_all(UPGRADE).unwrap();
    assert_eq!(pump(&mut client, &mut conn).unwrap(), Progress::Open);
    assert!(conn.stack.is_established() && conn.stack.poll_timeout().is_none());
    let mut response = vec![0; 4096];
    let n = client.reader().read(&mut response).unwrap();
    assert!(response[..n].starts_with(b"HTTP/1.1 101 "));

    // A frame split across two TLS records and two reads.
    let frame = ws_frame(CONNECT);
    client.writer().write_all(&frame[..3]).unwrap();
    pump(&mut client, &mut conn).unwrap();
    assert!(conn.plain_in.is_empty() && !conn.stack.is_idle());
    client.writer().write_all(&frame[3..]).unwrap();
    pump(&mut client, &mut conn).unwrap();
    assert_eq!(&conn.plain_in[..], CONNECT);
    assert!(conn.stack.is_idle());

    // The answer goes back framed and encrypted.
    conn.send(b"\x20\x02\x00\x00");
    let out = conn.wire_out.split();
    client.read_tls(&mut &out[..]).unwrap();
    client.process_new_packets().unwrap();
    let n = client.reader().read(&mut response).unwrap();
    assert_eq!(&response[..n], b"\x82\x04\x20\x02\x00\x00");

    // An orderly close: close frame, then close_notify.
    conn.stack.close(&mut conn.wire_in, &mut conn.wire_out);
    let out = conn.wire_out.split();
    client.read_tls(&mut &out[..]).unwrap();
    let state = client.process_new_packets().unwrap();
    assert!(state.peer_has_closed());
    let n = client.reader().read(&mut response).unwrap();
    assert_eq!(&response[..n], b"\x88\x02\x03\xe8");
}

#[test]
fn a_bad_upgrade_over_tls_is_answered_through_tls() {
    let mut conn = Conn::new(&all(false, true, true));
    let mut client = client(None, false);
    pump(&mut client, &mut conn).unwrap();
    client
        .writer()
        .write_all(b"GET /mqtt HTTP/1.1\r\nUpgrade: websocket\r\n\r\n")
        .unwrap();
    let err = pump(&mut client, &mut conn).unwrap_err();
    assert!(
        matches!(
            err,
            TransportError::WebSocket(WebSocketError::BadRequest(_))
        ),
        "{err}"
    );
    let mut response = Vec::new();
    let _ = client.reader().read_to_end(&mut response);
    assert!(
        response.starts_with(b"HTTP/1.1 400 Bad Request\r\n"),
        "{:?}",
        String::from_utf8_lossy(&response)
    );
}

#[test]
fn file_requests_over_websocket() {
    let options = TransportOptions {
        websockets: Some(WebSocketOptions {
            http_dir: Some("/srv/www".into()),
            ..WebSocketOptions::default()
        }),
        ..TransportOptions::default()
    };
    let mut conn = Conn::new(&options);
    let progress = conn.receive(b"GET /index.html HTTP/1.1\r\n\r\n").unwrap();
    assert_eq!(
        progress,
        Progress::FileRequest(FileRequest {
            path: "index.html".into(),
            head_only: false
        })
    );
    let mut response = BytesMut::new();
    crate::http::write_response(&mut response, 200, "text/html", b"hi", false);
    conn.stack
        .write_raw(&mut conn.wire_in, &mut response, &mut conn.wire_out)
        .unwrap();
    assert!(conn.wire_out.ends_with(b"\r\n\r\nhi"));
}

#[test]
fn handshakes_have_a_deadline() {
    for options in [
        all(true, false, false),
        all(false, true, false),
        all(false, false, true),
    ] {
        let mut conn = Conn::new(&options);
        let deadline = conn.stack.poll_timeout().unwrap();
        assert_eq!(deadline, conn.now + DEFAULT_HANDSHAKE_TIMEOUT);
        assert!(conn.stack.handle_timeout(conn.now).is_ok());
        conn.now = deadline;
        assert!(matches!(
            conn.receive(b"P"),
            Err(TransportError::HandshakeTimeout)
        ));
        assert!(matches!(
            conn.stack.handle_timeout(deadline),
            Err(TransportError::HandshakeTimeout)
        ));
    }
    // Once established, time no longer matters.
    let mut conn = Conn::new(&all(false, false, true));
    assert_eq!(conn.receive(UPGRADE).unwrap(), Progress::Open);
    conn.now += DEFAULT_HANDSHAKE_TIMEOUT * 2;
    assert_eq!(conn.receive(&ws_frame(CONNECT)).unwrap(), Progress::Open);
}

#[test]
fn nothing_is_written_before_the_handshake() {
    let mut conn = Conn::new(&all(false, false, true));
    let mut plain = BytesMut::from(CONNECT);
    conn.stack
        .write(&mut conn.wire_in, &mut plain, &mut conn.wire_out)
        .unwrap();
    assert_eq!(&plain[..], CONNECT);
    assert!(conn.wire_out.is_empty());
}

#[test]
fn tls_errors_surface_with_their_alert() {
    let mut conn = Conn::new(&all(true, true, false));
    let err = conn
        .receive(&[PROXY_V1, b"GET / HTTP/1.1\r\n\r\n"].concat())
        .unwrap_err();
    assert!(matches!(err, TransportError::Tls(_)), "{err}");
    assert!(
        conn.wire_out.starts_with(&[0x15, 0x03]),
        "an alert record: {:02x?}",
        &conn.wire_out[..]
    );
}

proptest::proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(
        chunks in proptest::collection::vec(proptest::collection::vec(proptest::num::u8::ANY, 0..200), 0..6),
        layers in 0u8..8,
        prefix in 0usize..3,
    ) {
        let options = all(layers & 1 != 0, layers & 2 != 0, layers & 4 != 0);
        if options.is_plain() {
            return Ok(());
        }
        let mut conn = Conn::new(&options);
        let prefixes: [&[u8]; 3] = [b"", PROXY_V1, &[PROXY_V1, UPGRADE].concat()];
        conn.wire_in.extend_from_slice(prefixes[prefix]);
        for chunk in chunks {
            if conn.receive(&chunk).is_err() {
                break;
            }
        }
    }
}
