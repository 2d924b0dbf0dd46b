//! The blocking client over a scripted in-memory transport and a manual
//! clock: deterministic keepalive and buffer tests, no sockets.

extern crate std;

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;
use std::vec::Vec;

use super::{Client, Error, Transport};
use crate::core::Millis;

#[derive(Default)]
struct Wire {
    incoming: VecDeque<u8>,
    written: Vec<u8>,
}

#[derive(Clone, Default)]
struct Scripted(Rc<RefCell<Wire>>);

impl Scripted {
    fn push(&self, bytes: &[u8]) {
        self.0.borrow_mut().incoming.extend(bytes.iter().copied());
    }

    fn take_written(&self) -> Vec<u8> {
        core::mem::take(&mut self.0.borrow_mut().written)
    }
}

impl Transport for Scripted {
    type Error = ();

    fn read(&mut self, buf: &mut [u8], _wait: Option<u64>) -> Result<Option<usize>, ()> {
        let mut wire = self.0.borrow_mut();
        if wire.incoming.is_empty() {
            return Ok(None);
        }
        let n = buf.len().min(wire.incoming.len());
        for (dst, src) in buf.iter_mut().zip(wire.incoming.drain(..n)) {
            *dst = src;
        }
        Ok(Some(n))
    }

    fn write_all(&mut self, buf: &[u8]) -> Result<(), ()> {
        self.0.borrow_mut().written.extend_from_slice(buf);
        Ok(())
    }
}

const CONNACK: [u8; 4] = [0x20, 0x02, 0x00, 0x00];
const PINGREQ: [u8; 2] = [0xC0, 0x00];
const PINGRESP: [u8; 2] = [0xD0, 0x00];

#[allow(clippy::type_complexity)]
fn client(
    auto_ping: bool,
) -> (
    Client<'static, Scripted, impl FnMut() -> Millis, Vec<u8>>,
    Scripted,
    Rc<Cell<u64>>,
) {
    let wire = Scripted::default();
    let time = Rc::new(Cell::new(0));
    let t = time.clone();
    let mut c = Client::with_transport(
        "c",
        wire.clone(),
        move || Millis(t.get()),
        Vec::new(),
        Vec::new(),
    )
    .keepalive(10)
    .auto_ping(auto_ping);
    wire.push(&CONNACK);
    assert!(!c.connect(true).unwrap());
    assert_eq!(wire.take_written()[0], 0x10, "CONNECT written");
    (c, wire, time)
}

#[test]
fn automatic_ping_after_one_idle_keepalive() {
    let (mut c, wire, time) = client(true);
    time.set(9_999);
    c.check_msg().unwrap();
    assert!(wire.take_written().is_empty());
    time.set(10_000);
    c.check_msg().unwrap();
    assert_eq!(wire.take_written(), PINGREQ);
    wire.push(&PINGRESP);
    time.set(10_050);
    assert_eq!(c.check_msg().unwrap(), 1);
    // The next ping is due a keepalive after the last one was sent.
    time.set(20_000);
    c.check_msg().unwrap();
    assert_eq!(wire.take_written(), PINGREQ);
}

#[test]
fn unanswered_ping_ends_the_connection() {
    let (mut c, wire, time) = client(true);
    time.set(10_000);
    c.check_msg().unwrap();
    assert_eq!(wire.take_written(), PINGREQ);
    time.set(20_000);
    assert!(matches!(
        c.check_msg(),
        Err(Error::Mqtt(crate::core::Error::KeepAliveTimeout))
    ));
    assert!(!c.is_connected());
}

#[test]
fn without_auto_ping_nothing_is_sent_as_in_umqtt() {
    let (mut c, wire, time) = client(false);
    time.set(60_000);
    c.check_msg().unwrap();
    assert!(wire.take_written().is_empty());
    c.ping().unwrap();
    assert_eq!(wire.take_written(), PINGREQ);
}

#[test]
fn a_packet_larger_than_a_fixed_buffer_is_an_error_not_a_panic() {
    let wire = Scripted::default();
    let mut rx = [0u8; 16];
    let mut tx = [0u8; 64];
    let mut c = Client::with_transport("c", wire.clone(), || Millis(0), &mut rx[..], &mut tx[..]);
    wire.push(&CONNACK);
    c.connect(true).unwrap();
    // PUBLISH QoS 0, topic "t", 40-byte payload: 45 bytes in all.
    let mut publish = std::vec![0x30, 43, 0x00, 0x01, b't'];
    publish.extend_from_slice(&[b'x'; 40]);
    wire.push(&publish);
    assert!(matches!(c.check_msg(), Err(Error::BufferTooSmall)));
    assert!(
        !c.is_connected(),
        "the rest of the stream is unreadable: link closed"
    );
}

#[test]
fn a_v5_client_with_a_fixed_buffer_announces_its_maximum_packet_size() {
    let wire = Scripted::default();
    let mut rx = [0u8; 200];
    let mut tx = [0u8; 64];
    let mut c = Client::with_transport("c", wire.clone(), || Millis(0), &mut rx[..], &mut tx[..])
        .protocol(culex_codec::Protocol::V5);
    // 5.0 CONNACK: no flags, success, no properties.
    wire.push(&[0x20, 0x03, 0x00, 0x00, 0x00]);
    c.connect(true).unwrap();
    let written = wire.take_written();
    let (packet, _) = culex_codec::decode(&written, culex_codec::Protocol::V5, u32::MAX)
        .unwrap()
        .unwrap();
    match packet {
        culex_codec::Packet::Connect(connect) => {
            assert_eq!(connect.properties.maximum_packet_size, Some(200))
        }
        other => panic!("expected CONNECT, got {other:?}"),
    }
}

#[test]
fn a_fixed_transmit_buffer_too_small_for_a_publish_is_an_error() {
    let wire = Scripted::default();
    let mut rx = [0u8; 64];
    let mut tx = [0u8; 32];
    let mut c = Client::with_transport("c", wire.clone(), || Millis(0), &mut rx[..], &mut tx[..]);
    wire.push(&CONNACK);
    c.connect(true).unwrap();
    let r = c.publish("t", [0u8; 100], false, crate::QoS::AtMostOnce);
    assert!(matches!(
        r,
        Err(Error::BufferTooSmall) | Err(Error::Mqtt(_))
    ));
    assert!(c
        .publish("t", b"fits", false, crate::QoS::AtMostOnce)
        .is_ok());
}

/// A growable buffer that records the largest size it was asked to grow to.
struct Watched {
    bytes: Vec<u8>,
    largest: Rc<Cell<usize>>,
}

impl super::Buffer for Watched {
    fn bytes(&mut self) -> &mut [u8] {
        &mut self.bytes
    }
    fn grow_to(&mut self, len: usize) -> bool {
        self.largest.set(self.largest.get().max(len));
        self.bytes.resize(len.max(self.bytes.len()), 0);
        true
    }
    fn limit(&mut self) -> Option<usize> {
        None
    }
}

#[test]
fn a_growable_buffer_grows_with_the_bytes_received_not_the_length_announced() {
    let wire = Scripted::default();
    let largest = Rc::new(Cell::new(0));
    let watched = || Watched {
        bytes: Vec::new(),
        largest: largest.clone(),
    };
    let mut c = Client::with_transport("c", wire.clone(), || Millis(0), watched(), watched());
    wire.push(&CONNACK);
    c.connect(true).unwrap();
    // A PUBLISH header announcing the largest remaining length MQTT allows
    // (268,435,455 bytes), followed by only a few bytes of it.
    wire.push(&[0x30, 0xFF, 0xFF, 0xFF, 0x7F, 0x00, 0x01, b't']);
    assert_eq!(c.check_msg().unwrap(), 0);
    assert!(
        largest.get() < 64 * 1024,
        "five bytes from the server made the client allocate {} bytes",
        largest.get()
    );
}
