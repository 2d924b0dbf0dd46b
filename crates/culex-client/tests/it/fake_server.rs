//! A scripted server on a real socket, for what a real broker will not do on
//! demand: deliver half a packet, or never answer.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use culex_client::blocking::MQTTClient;

use crate::{inbox, Inbox};

/// CONNACK, 3.1.1, accepted, no session.
const CONNACK: [u8; 4] = [0x20, 0x02, 0x00, 0x00];

/// Reads the client's CONNECT (one read is enough for a small one).
fn read_connect(stream: &mut TcpStream) {
    let mut buf = [0u8; 256];
    let n = stream.read(&mut buf).unwrap();
    assert!(n > 0 && buf[0] == 0x10, "expected CONNECT");
}

/// A client connected (clean session) to a scripted server that accepted it;
/// with the client's inbox and the server's end of the socket.
fn connected(client_id: &'static str) -> (MQTTClient<'static>, Inbox, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        read_connect(&mut s);
        s.write_all(&CONNACK).unwrap();
        s
    });
    let (messages, callback) = inbox();
    let mut c = MQTTClient::new(client_id, "127.0.0.1").port(port);
    c.set_callback(callback);
    c.connect(true).unwrap();
    (c, messages, server.join().unwrap())
}

#[test]
fn check_msg_keeps_a_half_read_packet_for_later() {
    let (mut c, messages, mut s) = connected("half");
    // PUBLISH QoS 0, topic "a/b", payload "hello": 2 + 3 + 5 = 10 bytes.
    let publish = [
        0x30, 0x0A, 0x00, 0x03, b'a', b'/', b'b', b'h', b'e', b'l', b'l', b'o',
    ];
    s.write_all(&publish[..6]).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(c.check_msg().unwrap(), 0, "half a packet is not a message");
    assert!(messages.lock().unwrap().is_empty());
    s.write_all(&publish[6..]).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(c.check_msg().unwrap(), 1);
    assert_eq!(
        messages.lock().unwrap()[0],
        ("a/b".to_string(), b"hello".to_vec())
    );
}

#[test]
fn incoming_qos2_resent_before_pubrel_is_delivered_once() {
    // [MQTT-4.3.3-9] over a real socket: the server re-sends the PUBLISH
    // (DUP) before releasing it.
    let (mut c, messages, mut s) = connected("q2");
    // PUBLISH QoS 2, id 5, topic "t", payload "x".
    let publish = [0x34, 0x06, 0x00, 0x01, b't', 0x00, 0x05, b'x'];
    let dup = [0x3C, 0x06, 0x00, 0x01, b't', 0x00, 0x05, b'x'];
    s.write_all(&publish).unwrap();
    s.write_all(&dup).unwrap();
    let mut acks = [0u8; 8];
    c.wait_msg().unwrap();
    c.wait_msg().unwrap();
    s.read_exact(&mut acks).unwrap();
    assert_eq!(
        acks,
        [0x50, 0x02, 0x00, 0x05, 0x50, 0x02, 0x00, 0x05],
        "two PUBRECs"
    );
    s.write_all(&[0x62, 0x02, 0x00, 0x05]).unwrap(); // PUBREL
    c.wait_msg().unwrap();
    let mut comp = [0u8; 4];
    s.read_exact(&mut comp).unwrap();
    assert_eq!(comp, [0x70, 0x02, 0x00, 0x05], "PUBCOMP");
    assert_eq!(messages.lock().unwrap().len(), 1, "delivered exactly once");
}
