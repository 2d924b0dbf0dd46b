//! WebSocket listeners (ws and wss): MQTT in binary frames, fragmented
//! messages, ping and pong, parking, files from `http_dir`, and the close
//! frame at shutdown.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::time::Duration;

use culex_codec::{Packet, QoS};

use super::tls::wait_parked;
use super::{client_tls, connected, frame, round_trip, tls_connect, Broker, Certs, Ws};

fn ws(port: u16) -> Ws<TcpStream> {
    let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_nodelay(true).unwrap();
    Ws::upgrade(stream)
}

/// ws and wss side by side: each one's messages reach the other, also
/// after both have parked; a message split in fragments and a ping
/// between them are understood.
#[test]
fn ws_and_wss_clients_round_trip_and_park() {
    let certs = Certs::new();
    let broker = Broker::start(&certs.fill(
        "allow_anonymous true\nlistener 0 127.0.0.1\nprotocol websockets\n\
         listener 0 127.0.0.1\nprotocol websockets\ncertfile {cert}\nkeyfile {key}\n",
    ));
    let mut plain = connected(ws(broker.port(0)), "ws-one");
    let tls = tls_connect(broker.port(1), &client_tls(&certs.files.ca, None)).unwrap();
    let mut secure = connected(Ws::upgrade(tls), "wss-one");
    plain.subscribe(&[("ws/#", QoS::AtLeastOnce)]);
    secure.subscribe(&[("ws/#", QoS::AtLeastOnce)]);
    assert_eq!(round_trip(&mut plain, &mut secure, "ws/a"), b"hello ws/a");
    assert_eq!(plain.recv().publish().payload, b"hello ws/a");
    wait_parked(&broker, 2);
    assert_eq!(round_trip(&mut secure, &mut plain, "ws/b"), b"hello ws/b");
    assert_eq!(secure.recv().publish().payload, b"hello ws/b");

    // One PUBLISH in three fragments, with a ping among them.
    let mut publish = Vec::new();
    Packet::Publish(culex_codec::packet::Publish {
        dup: false,
        qos: QoS::AtMostOnce,
        retain: false,
        topic: culex_codec::topic::TopicName::new("ws/fragments").unwrap(),
        packet_id: None,
        properties: Default::default(),
        payload: b"in pieces",
    })
    .encode(culex_codec::Protocol::V3_1_1, &mut publish)
    .unwrap();
    let (a, rest) = publish.split_at(3);
    let (b, c) = rest.split_at(5);
    let mut bytes = frame(0x2, a);
    bytes[0] &= 0x7f; // not final
    let mut middle = frame(0x0, b);
    middle[0] &= 0x7f;
    bytes.extend_from_slice(&middle);
    bytes.extend_from_slice(&frame(0x9, b"are you there"));
    bytes.extend_from_slice(&frame(0x0, c));
    plain.wire.stream.write_all(&bytes).unwrap();
    assert_eq!(secure.recv().publish().payload, b"in pieces");
    // The pong came back to the sender, before its copy of the message.
    let mut head = [0u8; 15];
    plain.wire.stream.read_exact(&mut head).unwrap();
    assert_eq!(&head[..2], [0x8a, 13]);
    assert_eq!(&head[2..], b"are you there");
    assert_eq!(plain.recv().publish().payload, b"in pieces");
}

/// A plain GET on a WebSocket listener with `http_dir` gets the file; a
/// path outside it (by `..` or through a symbolic link) does not.
#[test]
fn http_dir_serves_files_and_nothing_outside() {
    let certs = Certs::new();
    let www = certs.dir.path().join("www");
    std::fs::create_dir(&www).unwrap();
    std::fs::write(www.join("index.html"), "<p>culex</p>\n").unwrap();
    std::fs::write(certs.dir.path().join("secret.txt"), "not for you").unwrap();
    std::os::unix::fs::symlink(certs.dir.path().join("secret.txt"), www.join("link.txt")).unwrap();
    let broker = Broker::start(&certs.fill(&format!(
        "allow_anonymous true\nlistener 0 127.0.0.1\nprotocol websockets\nhttp_dir {}\n",
        www.display()
    )));
    let get = |target: &str| {
        let mut stream = TcpStream::connect(("127.0.0.1", broker.port(0))).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        write!(stream, "GET {target} HTTP/1.1\r\nHost: localhost\r\n\r\n").unwrap();
        let mut response = String::new();
        // The broker closes after the response.
        stream.read_to_string(&mut response).unwrap();
        response
    };
    let index = get("/");
    assert!(index.starts_with("HTTP/1.1 200 OK\r\n"), "{index}");
    assert!(
        index.contains("Content-Type: text/html; charset=utf-8\r\n"),
        "{index}"
    );
    assert!(index.ends_with("\r\n\r\n<p>culex</p>\n"), "{index}");
    assert!(get("/index.html?v=1").ends_with("<p>culex</p>\n"));
    assert!(get("/missing.html").starts_with("HTTP/1.1 404 "));
    assert!(get("/../secret.txt").starts_with("HTTP/1.1 404 "));
    assert!(get("/%2e%2e/secret.txt").starts_with("HTTP/1.1 404 "));
    let link = get("/link.txt");
    assert!(link.starts_with("HTTP/1.1 403 "), "{link}");
    assert!(!link.contains("not for you"));
}

/// At shutdown a WebSocket client gets a close frame (1000) first.
#[test]
fn shutdown_sends_a_close_frame() {
    let broker = Broker::start("allow_anonymous true\nlistener 0 127.0.0.1\nprotocol websockets\n");
    let mut client = connected(ws(broker.port(0)), "ws-closing");
    broker.stop();
    assert!(client.is_closed_within(Duration::from_secs(5)));
    assert_eq!(client.wire.close_code, Some(1000));
}
