//! Golden upgrade requests of real clients, and frames of every kind.

use super::*;

const MQTT_JS: &str = "GET /mqtt HTTP/1.1\r\n\
Sec-WebSocket-Version: 13\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
Connection: Upgrade\r\n\
Upgrade: websocket\r\n\
Sec-WebSocket-Protocol: mqtt\r\n\
Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\
Host: localhost:9001\r\n\r\n";

const PAHO: &str = "GET /mqtt HTTP/1.1\r\n\
Host: localhost:9001\r\n\
Upgrade: websocket\r\n\
Connection: Upgrade\r\n\
Origin: http://localhost:9001\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
Sec-WebSocket-Version: 13\r\n\
Sec-WebSocket-Protocol: mqtt\r\n\r\n";

const CHROMIUM: &str = "GET /mqtt HTTP/1.1\r\n\
Host: localhost:9001\r\n\
Connection: Upgrade\r\n\
Pragma: no-cache\r\n\
Cache-Control: no-cache\r\n\
User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36\r\n\
Upgrade: websocket\r\n\
Origin: http://localhost:8080\r\n\
Sec-WebSocket-Version: 13\r\n\
Accept-Encoding: gzip, deflate, br, zstd\r\n\
Accept-Language: en-US,en;q=0.9\r\n\
Cookie: session=0123456789abcdef\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\
Sec-WebSocket-Protocol: mqtt\r\n\r\n";

/// The RFC's example key and its accept value [RFC 6455 1.3].
const ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

fn options(files: bool) -> WebSocketOptions {
    WebSocketOptions {
        http_dir: files.then(|| PathBuf::from("/srv/www")),
        max_message_size: 1000,
        ..WebSocketOptions::default()
    }
}

/// Runs `input` through a fresh layer in one call; shows the progress or
/// error, what went up, and the reply (lossy UTF-8, `\r\n` as `|`).
fn run(layer: &mut WebSocketLayer, input: &[u8]) -> String {
    let mut wire = BytesMut::from(input);
    let mut up = BytesMut::new();
    let mut reply = BytesMut::new();
    let result = layer.read(&mut wire, &mut up, &mut reply);
    let status = match result {
        Ok(progress) => format!("{progress:?}"),
        Err(e) => format!("error: {e}"),
    };
    let mut shown = status;
    if !up.is_empty() {
        shown += &format!(" up={:?}", String::from_utf8_lossy(&up));
    }
    if !reply.is_empty() {
        shown += &format!(" reply={}", show_reply(&reply));
    }
    if !wire.is_empty() {
        shown += &format!(" kept={}", wire.len());
    }
    shown
}

fn show_reply(reply: &[u8]) -> String {
    if reply.starts_with(b"HTTP/") {
        String::from_utf8_lossy(reply).replace("\r\n", "|")
    } else {
        format!("{reply:02x?}")
    }
}

fn check(request: &str, expect: &str) {
    let mut layer = WebSocketLayer::new(&options(true));
    assert_eq!(run(&mut layer, request.as_bytes()), expect, "{request}");
}

#[test]
fn accept_key_of_the_rfc_example() {
    assert_eq!(accept_key("dGhlIHNhbXBsZSBub25jZQ=="), ACCEPT);
}

#[test]
fn real_clients_upgrade() {
    let ok = format!(
        "Open reply=HTTP/1.1 101 Switching Protocols|Upgrade: websocket|Connection: Upgrade|\
         Sec-WebSocket-Accept: {ACCEPT}|Sec-WebSocket-Protocol: mqtt||"
    );
    check(MQTT_JS, &ok);
    check(PAHO, &ok);
    check(CHROMIUM, &ok);
    // mosquitto also speaks the old name; `mqtt` wins when both are offered.
    let old = PAHO.replace("Protocol: mqtt", "Protocol: mqttv3.1");
    check(&old, &ok.replace("Protocol: mqtt|", "Protocol: mqttv3.1|"));
    let both = PAHO.replace("Protocol: mqtt", "Protocol: mqttv3.1, mqtt");
    check(&both, &ok);
    // A plain `new WebSocket(url)` offers nothing and gets no subprotocol.
    let none = PAHO.replace("Sec-WebSocket-Protocol: mqtt\r\n", "");
    check(&none, &ok.replace("|Sec-WebSocket-Protocol: mqtt", ""));
    // Header names and tokens are case-insensitive.
    let shouting = PAHO
        .replace("Upgrade: websocket", "UPGRADE: WebSocket")
        .replace("Connection: Upgrade", "connection: keep-alive, Upgrade");
    check(&shouting, &ok);
}

#[test]
fn a_request_in_pieces_is_kept_in_the_callers_buffer() {
    let mut layer = WebSocketLayer::new(&options(false));
    let mut wire = BytesMut::new();
    let (mut up, mut reply) = (BytesMut::new(), BytesMut::new());
    for byte in MQTT_JS.bytes() {
        assert!(reply.is_empty());
        wire.extend_from_slice(&[byte]);
        let progress = layer.read(&mut wire, &mut up, &mut reply).unwrap();
        assert_eq!(progress == WebSocketProgress::Open, wire.is_empty());
    }
    assert!(layer.is_open());
    assert!(reply.starts_with(b"HTTP/1.1 101 "));
}

#[test]
fn bad_upgrades_are_refused() {
    let bad = "HTTP/1.1 400 Bad Request|Content-Type: text/plain; charset=utf-8|Content-Length: 16|Connection: close||400 Bad Request\n";
    check(
        "\x16\x03\x01\x02\x00\x01\x00\x01\x7c\x03\x03",
        &format!("error: bad HTTP request: malformed request head reply={bad}"),
    );
    check(
        "GET / HTTP/1.1\r\nHost\r\n\r\n",
        &format!("error: bad HTTP request: malformed request head reply={bad}"),
    );
    check(
        "GET /mqtt HTTP/1.0\r\n\r\n",
        &format!("error: bad HTTP request: not HTTP/1.1 reply={bad}"),
    );
    check(
        &MQTT_JS.replace("Connection: Upgrade", "Connection: keep-alive"),
        &format!("error: bad HTTP request: no 'Connection: Upgrade' reply={bad}"),
    );
    check(
        &MQTT_JS.replace("dGhlIHNhbXBsZSBub25jZQ==", "c2hvcnQ="),
        &format!("error: bad HTTP request: bad Sec-WebSocket-Key reply={bad}"),
    );
    check(
        &MQTT_JS.replace("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", ""),
        &format!("error: bad HTTP request: bad Sec-WebSocket-Key reply={bad}"),
    );
    check(
        &MQTT_JS.replace("Version: 13", "Version: 8"),
        "error: unsupported WebSocket version \"8\" [RFC 6455 4.4] reply=HTTP/1.1 426 Upgrade Required|Sec-WebSocket-Version: 13|Content-Length: 0||",
    );
    check(&MQTT_JS.replace("GET", "POST"), "error: HTTP method POST is not allowed reply=HTTP/1.1 405 Method Not Allowed|Content-Type: text/plain; charset=utf-8|Content-Length: 23|Connection: close||405 Method Not Allowed\n");
    let many: String = (0..70).map(|i| format!("X-{i}: y\r\n")).collect();
    check(
        &MQTT_JS.replace("Host:", &format!("{many}Host:")),
        &format!("error: bad HTTP request: too many headers reply={bad}"),
    );
}

#[test]
fn over_long_request_heads_are_refused_without_waiting_for_the_end() {
    let mut layer = WebSocketLayer::new(&options(false));
    let endless = format!("GET /mqtt HTTP/1.1\r\nCookie: {}", "a".repeat(9000));
    let shown = run(&mut layer, endless.as_bytes());
    assert!(
        shown.starts_with(
            "error: the HTTP request head is longer than 8192 bytes reply=HTTP/1.1 400 "
        ),
        "{shown}"
    );
    // And nothing more is read.
    assert_eq!(
        run(&mut layer, b"\r\n\r\n"),
        "error: the WebSocket connection is closed"
    );
}

#[test]
fn plain_gets_are_file_requests_with_http_dir() {
    check(
        "GET /app/index.js?x=1 HTTP/1.1\r\nHost: h\r\n\r\n",
        "FileRequest(FileRequest { path: \"app/index.js\", head_only: false })",
    );
    check(
        "HEAD / HTTP/1.1\r\n\r\n",
        "FileRequest(FileRequest { path: \"index.html\", head_only: true })",
    );
    check("GET /../secret HTTP/1.1\r\n\r\n", "error: refused file path \"/../secret\" reply=HTTP/1.1 404 Not Found|Content-Type: text/plain; charset=utf-8|Content-Length: 14|Connection: close||404 Not Found\n");
    let mut no_files = WebSocketLayer::new(&options(false));
    assert!(run(&mut no_files, b"GET / HTTP/1.1\r\n\r\n").starts_with(
        "error: not a WebSocket upgrade, and this listener serves no files reply=HTTP/1.1 404 Not Found|"
    ));
    let mut post = WebSocketLayer::new(&options(true));
    assert!(run(&mut post, b"POST / HTTP/1.1\r\n\r\n")
        .starts_with("error: HTTP method POST is not allowed reply=HTTP/1.1 405 "));
}

/// A client frame: `fin`, opcode, payload, masked with `mask` (None: unmasked).
fn frame(fin: bool, opcode: u8, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
    let mut out = vec![(u8::from(fin) << 7) | opcode];
    let bit = if mask.is_some() { 0x80 } else { 0 };
    match payload.len() {
        n @ 0..=125 => out.push(bit | n as u8),
        n @ 126..=0xFFFF => {
            out.push(bit | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(bit | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    match mask {
        Some(key) => {
            out.extend_from_slice(&key);
            out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
        }
        None => out.extend_from_slice(payload),
    }
    out
}

const KEY: Option<[u8; 4]> = Some([0x37, 0xfa, 0x21, 0x3d]);

fn open() -> WebSocketLayer {
    let mut layer = WebSocketLayer::new(&options(false));
    assert!(run(&mut layer, MQTT_JS.as_bytes()).starts_with("Open reply=HTTP/1.1 101"));
    layer
}

fn check_frames(frames: &[Vec<u8>], expect: &str) {
    let mut layer = open();
    assert_eq!(run(&mut layer, &frames.concat()), expect);
}

#[test]
fn frames() {
    // Binary frames, masked; lengths in each of the three encodings.
    check_frames(
        &[frame(true, OP_BINARY, b"hello", KEY)],
        "Open up=\"hello\"",
    );
    check_frames(&[frame(true, OP_BINARY, b"", KEY)], "Open");
    let medium = vec![b'm'; 300];
    let mut layer = open();
    let mut up = BytesMut::new();
    let mut wire = BytesMut::from(&frame(true, OP_BINARY, &medium, KEY)[..]);
    layer
        .read(&mut wire, &mut up, &mut BytesMut::new())
        .unwrap();
    assert_eq!(&up[..], &medium[..]);
    // Fragmented: binary, continuation, continuation; a ping in between.
    check_frames(
        &[
            frame(false, OP_BINARY, b"he", KEY),
            frame(true, OP_PING, b"?", KEY),
            frame(false, OP_CONTINUATION, b"ll", KEY),
            frame(true, OP_CONTINUATION, b"o", KEY),
            frame(true, OP_BINARY, b"!", KEY),
        ],
        "Open up=\"hello!\" reply=[8a, 01, 3f]",
    );
    // Ping gets a pong with the same payload; a pong is ignored.
    check_frames(
        &[
            frame(true, OP_PING, b"abc", KEY),
            frame(true, OP_PONG, b"x", KEY),
        ],
        "Open reply=[8a, 03, 61, 62, 63]",
    );
    // An incomplete header or control frame waits in the caller's buffer.
    check_frames(
        &[frame(true, OP_BINARY, b"hello", KEY)[..3].to_vec()],
        "Open kept=3",
    );
    check_frames(
        &[frame(true, OP_PING, b"abc", KEY)[..7].to_vec()],
        "Open kept=7",
    );
    // A data frame's payload streams up as it arrives.
    check_frames(
        &[frame(true, OP_BINARY, b"hello", KEY)[..8].to_vec()],
        "Open up=\"he\"",
    );
}

#[test]
fn close_handshake() {
    // The peer closes: its code is echoed and the layer is done.
    check_frames(
        &[frame(true, OP_CLOSE, &[0x03, 0xe8], KEY)],
        "Closed reply=[88, 02, 03, e8]",
    );
    check_frames(
        &[frame(true, OP_CLOSE, &[], KEY)],
        "Closed reply=[88, 02, 03, e8]",
    );
    check_frames(
        &[frame(true, OP_CLOSE, &[0x0f, 0xa0, b'b', b'y', b'e'], KEY)],
        "Closed reply=[88, 02, 0f, a0]",
    );
    // Data before the close still goes up.
    check_frames(
        &[
            frame(true, OP_BINARY, b"last", KEY),
            frame(true, OP_CLOSE, &[], KEY),
        ],
        "Closed up=\"last\" reply=[88, 02, 03, e8]",
    );
    // We close first: the peer's close completes it, with no second reply.
    let mut layer = open();
    let mut out = BytesMut::new();
    layer.close(close_code::NORMAL, &mut out);
    assert_eq!(&out[..], [0x88, 0x02, 0x03, 0xe8]);
    assert!(layer
        .write(&mut BytesMut::from(&b"x"[..]), &mut out)
        .is_err());
    assert_eq!(
        run(
            &mut layer,
            &[
                frame(true, OP_BINARY, b"late", KEY),
                frame(true, OP_CLOSE, &[0x03, 0xe8], KEY)
            ]
            .concat()
        ),
        "Closed"
    );
}

#[test]
fn protocol_errors_close_with_their_code() {
    let cases: &[(Vec<u8>, &str)] = &[
        (frame(true, OP_BINARY, b"x", None), "error: the client sent an unmasked frame [RFC 6455 5.1] reply=[88, 02, 03, ea]"),
        (frame(true, OP_TEXT, b"x", KEY), "error: text frames are not accepted: MQTT needs binary frames reply=[88, 02, 03, eb]"),
        (frame(true, 0x3, b"x", KEY), "error: unknown opcode 0x3 [RFC 6455 5.2] reply=[88, 02, 03, ea]"),
        (frame(true, OP_CONTINUATION, b"x", KEY), "error: fragments out of order [RFC 6455 5.4] reply=[88, 02, 03, ea]"),
        ([frame(false, OP_BINARY, b"x", KEY), frame(true, OP_BINARY, b"y", KEY)].concat(), "error: fragments out of order [RFC 6455 5.4] up=\"x\" reply=[88, 02, 03, ea]"),
        (frame(false, OP_PING, b"x", KEY), "error: control frames must be whole and at most 125 bytes [RFC 6455 5.5] reply=[88, 02, 03, ea]"),
        (frame(true, OP_PING, &[0; 126], KEY), "error: control frames must be whole and at most 125 bytes [RFC 6455 5.5] reply=[88, 02, 03, ea]"),
        (frame(true, OP_CLOSE, &[0x03], KEY), "error: invalid close code 0 [RFC 6455 7.4] reply=[88, 02, 03, ea]"),
        (frame(true, OP_CLOSE, &[0x03, 0xed], KEY), "error: invalid close code 1005 [RFC 6455 7.4] reply=[88, 02, 03, ea]"),
        (frame(true, OP_CLOSE, &[0x03, 0xe8, 0xff], KEY), "error: close reason is not UTF-8 [RFC 6455 5.5.1] reply=[88, 02, 03, ef]"),
        ({ let mut f = frame(true, OP_BINARY, b"x", KEY); f[0] |= 0x40; f }, "error: reserved frame bits set without an extension [RFC 6455 5.2] reply=[88, 02, 03, ea]"),
        (vec![0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0], "error: frame length out of range [RFC 6455 5.2] reply=[88, 02, 03, ea]"),
    ];
    for (input, expect) in cases {
        let mut layer = open();
        assert_eq!(run(&mut layer, input), *expect, "{input:02x?}");
    }
}

#[test]
fn oversize_messages_are_refused_from_the_header() {
    // A header that announces 2^62 bytes: refused at once, nothing allocated.
    let mut huge = vec![0x82, 0xFF];
    huge.extend_from_slice(&(1u64 << 62).to_be_bytes());
    huge.extend_from_slice(&[1, 2, 3, 4]);
    check_frames(&[huge], "error: message of at least 4611686018427387904 bytes is over the limit of 1000 reply=[88, 02, 03, f1]");
    // Fragments count together.
    check_frames(
        &[frame(false, OP_BINARY, &[0; 600], KEY), frame(true, OP_CONTINUATION, &[0; 600], KEY)],
        &format!("error: message of at least 1200 bytes is over the limit of 1000 up={:?} reply=[88, 02, 03, f1]", "\0".repeat(600)),
    );
    // A new message starts the count again.
    let mut layer = open();
    let input = [
        frame(true, OP_BINARY, &[0; 600], KEY),
        frame(true, OP_BINARY, &[0; 600], KEY),
    ]
    .concat();
    assert!(run(&mut layer, &input).starts_with("Open up="));
}

#[test]
fn write_frames_binary_messages() {
    let mut layer = open();
    let mut out = BytesMut::new();
    let mut plain = BytesMut::from(&b"\x20\x02\x00\x00"[..]);
    layer.write(&mut plain, &mut out).unwrap();
    assert!(plain.is_empty());
    assert_eq!(&out[..], [0x82, 0x04, 0x20, 0x02, 0x00, 0x00]);
    for (len, header) in [
        (126usize, vec![0x82, 126, 0, 126]),
        (70_000, vec![0x82, 127, 0, 0, 0, 0, 0, 1, 0x11, 0x70]),
    ] {
        let mut out = BytesMut::new();
        layer
            .write(&mut BytesMut::from(&vec![7u8; len][..]), &mut out)
            .unwrap();
        assert_eq!(&out[..header.len()], &header[..]);
        assert_eq!(out.len(), header.len() + len);
    }
}

proptest::proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(chunks in proptest::collection::vec(proptest::collection::vec(proptest::num::u8::ANY, 0..300), 0..8), upgrade_first in proptest::bool::ANY) {
        let mut layer = WebSocketLayer::new(&options(true));
        let mut wire = BytesMut::new();
        let (mut up, mut reply) = (BytesMut::new(), BytesMut::new());
        if upgrade_first {
            wire.extend_from_slice(MQTT_JS.as_bytes());
        }
        for chunk in chunks {
            wire.extend_from_slice(&chunk);
            if layer.read(&mut wire, &mut up, &mut reply).is_err() {
                break;
            }
            proptest::prop_assert!(wire.len() <= 8192 + 300);
        }
    }
}
