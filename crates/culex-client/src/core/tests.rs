//! Deterministic tests of the core on a simulated clock: packets from the
//! "server" are fed in directly, and what the client writes is decoded with
//! the shared codec.

extern crate std;

use std::vec::Vec;

use culex_codec::packet::{ConnAck, PubResponse, Publish};
use culex_codec::topic::TopicName;
use culex_codec::{Packet, PacketId, PacketType, Properties, Protocol, QoS, ReasonCode};

use super::*;

fn id(n: u16) -> PacketId {
    PacketId::new(n).unwrap()
}

/// Decodes every packet in `bytes` and returns their types.
fn types(bytes: &[u8], protocol: Protocol) -> Vec<PacketType> {
    let mut rest = bytes;
    let mut out = Vec::new();
    while !rest.is_empty() {
        let (packet, len) = culex_codec::decode(rest, protocol, u32::MAX)
            .unwrap()
            .unwrap();
        out.push(packet.packet_type());
        rest = &rest[len..];
    }
    out
}

fn connack(session_present: bool) -> Packet<'static> {
    Packet::ConnAck(ConnAck {
        session_present,
        reason: ReasonCode::Success,
        properties: Properties::default(),
    })
}

fn response(n: u16) -> PubResponse<'static> {
    PubResponse {
        packet_id: id(n),
        reason: ReasonCode::Success,
        properties: Properties::default(),
    }
}

fn incoming(qos: QoS, packet_id: Option<u16>, dup: bool) -> Packet<'static> {
    Packet::Publish(Publish {
        dup,
        qos,
        retain: false,
        topic: TopicName::new("a/b").unwrap(),
        packet_id: packet_id.map(id),
        properties: Properties::default(),
        payload: b"hi",
    })
}

/// A connected client with `keep_alive` seconds, connected at time 0.
fn connected<const O: usize, const I: usize>(keep_alive: u16) -> Connection<O, I> {
    let mut c = Connection::<O, I>::new();
    let mut opts = ConnectOptions::new("c1");
    opts.keep_alive = keep_alive;
    let mut out = Vec::new();
    c.connect(Millis(0), &opts, &mut out).unwrap();
    assert_eq!(types(&out, Protocol::V3_1_1), [PacketType::Connect]);
    let ev = c.handle_packet(Millis(0), connack(false)).unwrap();
    assert!(matches!(ev, Event::Connected(_)));
    c
}

/// A 5.0 client (keepalive 60 s) accepted at time 0 by a CONNACK with
/// `properties`.
fn connected_v5<const O: usize, const I: usize>(
    properties: Properties<'static>,
) -> Connection<O, I> {
    let mut c = Connection::<O, I>::new();
    let mut opts = ConnectOptions::new("c1");
    opts.protocol = Protocol::V5;
    assert_eq!(opts.keep_alive, 60);
    c.connect(Millis(0), &opts, &mut Vec::new()).unwrap();
    let connack = ConnAck {
        session_present: false,
        reason: ReasonCode::Success,
        properties,
    };
    let ev = c
        .handle_packet(Millis(0), Packet::ConnAck(connack))
        .unwrap();
    assert!(matches!(ev, Event::Connected(_)));
    c
}

fn transmit<const O: usize, const I: usize>(c: &mut Connection<O, I>, now: u64) -> Vec<PacketType> {
    let mut out = Vec::new();
    while c.poll_transmit(Millis(now), &mut out).unwrap().is_some() {}
    types(&out, c.protocol())
}

fn publish<const O: usize, const I: usize>(
    c: &mut Connection<O, I>,
    now: u64,
    qos: QoS,
) -> Result<Option<PacketId>, Error> {
    let mut out = Vec::new();
    c.publish(Millis(now), &Message::new("t", b"x", qos, false), &mut out)
}

#[test]
fn packet_ids_wrap_from_65535_to_1() {
    // [MQTT-2.3.1-1] ids are non-zero; after 65535 comes 1.
    let mut c: Connection<4, 4> =
        connected::<4, 4>(0).with_packet_ids(PacketIds::starting_after(65534));
    assert_eq!(
        publish(&mut c, 0, QoS::AtLeastOnce).unwrap(),
        Some(id(65535))
    );
    assert_eq!(publish(&mut c, 0, QoS::AtLeastOnce).unwrap(), Some(id(1)));
}

#[test]
fn packet_ids_skip_ids_in_flight() {
    // [MQTT-2.3.1-2] an id in use is not reused until acknowledged.
    let mut c = connected::<4, 4>(0);
    assert_eq!(publish(&mut c, 0, QoS::AtLeastOnce).unwrap(), Some(id(1)));
    assert_eq!(publish(&mut c, 0, QoS::AtLeastOnce).unwrap(), Some(id(2)));
    c.handle_packet(Millis(0), Packet::PubAck(response(2)))
        .unwrap();
    // Wrap around to just before 1: 1 is still in flight, so 2 comes next.
    c = c.with_packet_ids(PacketIds::starting_after(65535));
    assert_eq!(publish(&mut c, 0, QoS::AtLeastOnce).unwrap(), Some(id(2)));
    assert_eq!(publish(&mut c, 0, QoS::AtLeastOnce).unwrap(), Some(id(3)));
}

#[test]
fn packet_id_allocator_reports_exhaustion() {
    let mut ids = PacketIds::new();
    assert_eq!(ids.next(|_| true), None);
    assert_eq!(ids.next(|i| i.get() != 40000), Some(id(40000)));
}

#[test]
fn qos0_takes_no_id_and_no_slot() {
    let mut c = connected::<1, 1>(0);
    for _ in 0..10 {
        assert_eq!(publish(&mut c, 0, QoS::AtMostOnce).unwrap(), None);
    }
    assert_eq!(c.inflight().count(), 0);
}

#[test]
fn outgoing_table_full_refuses_until_acked() {
    let mut c = connected::<2, 1>(0);
    publish(&mut c, 0, QoS::AtLeastOnce).unwrap();
    publish(&mut c, 0, QoS::ExactlyOnce).unwrap();
    assert_eq!(
        publish(&mut c, 0, QoS::AtLeastOnce),
        Err(Error::InflightFull)
    );
    let ev = c
        .handle_packet(Millis(0), Packet::PubAck(response(1)))
        .unwrap();
    assert_eq!(
        ev,
        Event::Published {
            id: id(1),
            reason: ReasonCode::Success
        }
    );
    assert!(publish(&mut c, 0, QoS::AtLeastOnce).is_ok());
}

#[test]
fn server_receive_maximum_limits_publishes_in_flight() {
    // [MQTT-4.9.0-2] no more unacknowledged QoS 1/2 PUBLISH than the server allows.
    let mut c = connected_v5::<8, 8>(Properties {
        receive_maximum: Some(1),
        ..Properties::default()
    });
    assert_eq!(c.server_receive_maximum(), 1);
    publish(&mut c, 0, QoS::AtLeastOnce).unwrap();
    assert!(!c.can_publish());
    assert_eq!(
        publish(&mut c, 0, QoS::AtLeastOnce),
        Err(Error::InflightFull)
    );
    assert_eq!(publish(&mut c, 0, QoS::AtMostOnce), Ok(None));
}

#[test]
fn connect_announces_receive_maximum_in_v5() {
    let mut c = Connection::<8, 5>::new();
    let mut opts = ConnectOptions::new("c1");
    opts.protocol = Protocol::V5;
    let mut out = Vec::new();
    c.connect(Millis(0), &opts, &mut out).unwrap();
    let (packet, _) = culex_codec::decode(&out, Protocol::V5, u32::MAX)
        .unwrap()
        .unwrap();
    match packet {
        Packet::Connect(connect) => assert_eq!(connect.properties.receive_maximum, Some(5)),
        other => panic!("expected CONNECT, got {other:?}"),
    }
}

#[test]
fn keepalive_ping_due_one_period_after_last_send() {
    // [MQTT-3.1.2-23] the client sends something at least every keepalive.
    let mut c = connected::<4, 4>(10);
    assert_eq!(c.poll_timeout(), Some(Millis(10_000)));
    publish(&mut c, 3_000, QoS::AtMostOnce).unwrap();
    assert_eq!(c.poll_timeout(), Some(Millis(13_000)));
    c.handle_timeout(Millis(12_999)).unwrap();
    assert_eq!(transmit(&mut c, 12_999), []);
    c.handle_timeout(Millis(13_000)).unwrap();
    assert_eq!(transmit(&mut c, 13_000), [PacketType::PingReq]);
    // Now the deadline is for the PINGRESP.
    assert_eq!(c.poll_timeout(), Some(Millis(23_000)));
    c.handle_packet(Millis(13_050), Packet::PingResp).unwrap();
    assert_eq!(c.poll_timeout(), Some(Millis(23_000)));
    c.handle_timeout(Millis(23_000)).unwrap();
    assert_eq!(transmit(&mut c, 23_000), [PacketType::PingReq]);
}

#[test]
fn keepalive_times_out_without_pingresp() {
    let mut c = connected::<4, 4>(5);
    c.handle_timeout(Millis(5_000)).unwrap();
    assert_eq!(transmit(&mut c, 5_000), [PacketType::PingReq]);
    c.handle_timeout(Millis(9_999)).unwrap();
    assert_eq!(
        c.handle_timeout(Millis(10_000)),
        Err(Error::KeepAliveTimeout)
    );
    assert_eq!(c.state(), State::Disconnected);
    assert_eq!(c.poll_timeout(), None);
}

#[test]
fn keepalive_zero_sets_no_timer() {
    let c = connected::<4, 4>(0);
    assert_eq!(c.poll_timeout(), None);
}

#[test]
fn server_keep_alive_overrides_ours() {
    // We ask for 60 s.
    let c = connected_v5::<4, 4>(Properties {
        server_keep_alive: Some(7),
        ..Properties::default()
    });
    assert_eq!(c.poll_timeout(), Some(Millis(7_000)));
}

#[test]
fn incoming_qos1_is_acknowledged() {
    let mut c = connected::<4, 4>(0);
    let ev = c
        .handle_packet(Millis(0), incoming(QoS::AtLeastOnce, Some(9), false))
        .unwrap();
    assert!(matches!(ev, Event::Message(p) if p.payload == b"hi"));
    assert_eq!(transmit(&mut c, 0), [PacketType::PubAck]);
}

#[test]
fn incoming_qos2_is_delivered_exactly_once() {
    // [MQTT-4.3.3-9]: a re-sent PUBLISH with the same id before PUBREL is not
    // a new message.
    let mut c = connected::<4, 4>(0);
    let ev = c
        .handle_packet(Millis(0), incoming(QoS::ExactlyOnce, Some(7), false))
        .unwrap();
    assert!(matches!(ev, Event::Message(_)));
    assert_eq!(transmit(&mut c, 0), [PacketType::PubRec]);
    let ev = c
        .handle_packet(Millis(1), incoming(QoS::ExactlyOnce, Some(7), true))
        .unwrap();
    assert_eq!(ev, Event::None);
    assert_eq!(transmit(&mut c, 1), [PacketType::PubRec]);
    let ev = c
        .handle_packet(Millis(2), Packet::PubRel(response(7)))
        .unwrap();
    assert_eq!(ev, Event::None);
    assert_eq!(transmit(&mut c, 2), [PacketType::PubComp]);
    // After PUBREL the id is free: a new message with it is delivered.
    let ev = c
        .handle_packet(Millis(3), incoming(QoS::ExactlyOnce, Some(7), false))
        .unwrap();
    assert!(matches!(ev, Event::Message(_)));
}

#[test]
fn incoming_qos2_survives_reconnect_without_redelivery() {
    let mut c = connected::<4, 4>(0);
    c.handle_packet(Millis(0), incoming(QoS::ExactlyOnce, Some(3), false))
        .unwrap();
    transmit(&mut c, 0);
    c.connection_lost();
    let mut opts = ConnectOptions::new("c1");
    opts.clean_start = false;
    c.connect(Millis(10), &opts, &mut Vec::new()).unwrap();
    c.handle_packet(Millis(10), connack(true)).unwrap();
    let ev = c
        .handle_packet(Millis(11), incoming(QoS::ExactlyOnce, Some(3), true))
        .unwrap();
    assert_eq!(ev, Event::None);
}

#[test]
fn outgoing_qos2_flow() {
    let mut c = connected::<4, 4>(0);
    let pid = publish(&mut c, 0, QoS::ExactlyOnce).unwrap().unwrap();
    assert_eq!(
        c.inflight().collect::<Vec<_>>(),
        [(pid, InflightKind::PubRec)]
    );
    assert_eq!(
        c.handle_packet(Millis(1), Packet::PubRec(response(pid.get())))
            .unwrap(),
        Event::None
    );
    assert_eq!(transmit(&mut c, 1), [PacketType::PubRel]);
    assert_eq!(
        c.inflight().collect::<Vec<_>>(),
        [(pid, InflightKind::PubComp)]
    );
    let ev = c
        .handle_packet(Millis(2), Packet::PubComp(response(pid.get())))
        .unwrap();
    assert_eq!(
        ev,
        Event::Published {
            id: pid,
            reason: ReasonCode::Success
        }
    );
    assert_eq!(c.inflight().count(), 0);
}

#[test]
fn resumed_session_resends_pubrel_and_keeps_unacked_publishes() {
    // [MQTT-4.4.0-1]: on a resumed session, unacknowledged PUBLISH and PUBREL
    // are re-sent.
    let mut c = connected::<4, 4>(0);
    let q1 = publish(&mut c, 0, QoS::AtLeastOnce).unwrap().unwrap();
    let q2 = publish(&mut c, 0, QoS::ExactlyOnce).unwrap().unwrap();
    c.handle_packet(Millis(1), Packet::PubRec(response(q2.get())))
        .unwrap();
    c.connection_lost(); // PUBREL never written
    let mut opts = ConnectOptions::new("c1");
    opts.clean_start = false;
    c.connect(Millis(10), &opts, &mut Vec::new()).unwrap();
    c.handle_packet(Millis(10), connack(true)).unwrap();
    assert_eq!(transmit(&mut c, 10), [PacketType::PubRel]);
    let mut out = Vec::new();
    c.republish(
        Millis(10),
        q1,
        &Message::new("t", b"x", QoS::AtLeastOnce, false),
        &mut out,
    )
    .unwrap();
    let (packet, _) = culex_codec::decode(&out, Protocol::V3_1_1, u32::MAX)
        .unwrap()
        .unwrap();
    assert!(matches!(packet, Packet::Publish(p) if p.dup && p.packet_id == Some(q1)));
}

#[test]
fn lost_session_forgets_everything_in_flight() {
    let mut c = connected::<4, 4>(0);
    publish(&mut c, 0, QoS::AtLeastOnce).unwrap();
    c.handle_packet(Millis(0), incoming(QoS::ExactlyOnce, Some(3), false))
        .unwrap();
    c.connection_lost();
    let mut opts = ConnectOptions::new("c1");
    opts.clean_start = false;
    c.connect(Millis(10), &opts, &mut Vec::new()).unwrap();
    c.handle_packet(Millis(10), connack(false)).unwrap();
    assert_eq!(c.inflight().count(), 0);
    let ev = c
        .handle_packet(Millis(11), incoming(QoS::ExactlyOnce, Some(3), false))
        .unwrap();
    assert!(matches!(ev, Event::Message(_)));
}

#[test]
fn refused_connack_is_an_error() {
    let mut c = Connection::<4, 4>::new();
    c.connect(Millis(0), &ConnectOptions::new("c1"), &mut Vec::new())
        .unwrap();
    let refused = Packet::ConnAck(ConnAck {
        session_present: false,
        reason: ReasonCode::NotAuthorized,
        properties: Properties::default(),
    });
    assert_eq!(
        c.handle_packet(Millis(0), refused),
        Err(Error::Refused(ReasonCode::NotAuthorized))
    );
    assert_eq!(c.state(), State::Disconnected);
}

#[test]
fn publish_before_connect_is_refused() {
    let mut c = Connection::<4, 4>::new();
    assert_eq!(
        publish(&mut c, 0, QoS::AtMostOnce),
        Err(Error::NotConnected)
    );
}

#[test]
fn publish_before_connack_is_a_protocol_error() {
    // [MQTT-3.2.0-1]: the server's first packet is CONNACK.
    let mut c = Connection::<4, 4>::new();
    c.connect(Millis(0), &ConnectOptions::new("c1"), &mut Vec::new())
        .unwrap();
    assert!(matches!(
        c.handle_packet(Millis(0), incoming(QoS::AtMostOnce, None, false)),
        Err(Error::Protocol(_))
    ));
}

#[test]
fn wildcard_topic_name_is_refused() {
    let mut c = connected::<4, 4>(0);
    let mut out = Vec::new();
    let r = c.publish(
        Millis(0),
        &Message::new("a/+", b"x", QoS::AtMostOnce, false),
        &mut out,
    );
    assert_eq!(r, Err(Error::InvalidTopic));
    assert!(out.is_empty());
}

#[test]
fn encodes_into_a_fixed_buffer_without_allocation() {
    let mut c = connected::<4, 4>(0);
    let mut buf = [0u8; 16];
    let mut out = culex_codec::SliceOutput::new(&mut buf);
    let r = c.publish(
        Millis(0),
        &Message::new("t", &[0; 64], QoS::AtLeastOnce, false),
        &mut out,
    );
    assert!(matches!(r, Err(Error::Encode(_))));
    // A failed encode takes no slot.
    assert_eq!(c.inflight().count(), 0);
    let mut out = culex_codec::SliceOutput::new(&mut buf);
    c.publish(
        Millis(0),
        &Message::new("t", b"ok", QoS::AtLeastOnce, false),
        &mut out,
    )
    .unwrap();
    assert_eq!(
        types(out.written(), Protocol::V3_1_1),
        [PacketType::Publish]
    );
}

#[test]
fn connection_state_is_small() {
    // The whole session state of a client with 16 + 16 in-flight slots,
    // without allocation: small enough for a microcontroller's stack.
    let size = core::mem::size_of::<Connection<16, 16>>();
    std::println!("size_of::<Connection<16, 16>>() = {size}");
    assert!(size <= 512, "{size} bytes");
}

#[test]
fn manual_acks_wait_for_the_application() {
    let mut c = connected::<4, 4>(0);
    c.set_manual_acks(true);
    c.handle_packet(Millis(0), incoming(QoS::AtLeastOnce, Some(1), false))
        .unwrap();
    c.handle_packet(Millis(0), incoming(QoS::ExactlyOnce, Some(2), false))
        .unwrap();
    assert_eq!(
        transmit(&mut c, 0),
        [],
        "nothing acknowledged before the application took it"
    );
    c.ack(id(1), QoS::AtLeastOnce).unwrap();
    c.ack(id(2), QoS::ExactlyOnce).unwrap();
    assert_eq!(
        transmit(&mut c, 1),
        [PacketType::PubAck, PacketType::PubRec]
    );
    // A duplicate of the QoS 2 message is still not delivered twice.
    let ev = c
        .handle_packet(Millis(2), incoming(QoS::ExactlyOnce, Some(2), true))
        .unwrap();
    assert_eq!(ev, Event::None);
    assert_eq!(transmit(&mut c, 2), [PacketType::PubRec]);
}

#[test]
fn server_maximum_qos_is_enforced() {
    // [MQTT-3.2.2-11]: no PUBLISH above the server's Maximum QoS.
    let mut c = connected_v5::<4, 4>(Properties {
        maximum_qos: Some(1),
        ..Properties::default()
    });
    assert_eq!(c.server_maximum_qos(), QoS::AtLeastOnce);
    assert_eq!(
        publish(&mut c, 0, QoS::ExactlyOnce),
        Err(Error::QoSNotSupported)
    );
    assert!(publish(&mut c, 0, QoS::AtLeastOnce).is_ok());
}

#[test]
fn a_server_that_breaks_the_rules_is_refused() {
    // Each row: a packet a conforming server never sends this client (5.0,
    // no Topic Alias Maximum announced, Receive Maximum 1), after one
    // unreleased QoS 2 message with id 1.
    let alias_only = Packet::Publish(Publish {
        dup: false,
        qos: QoS::AtMostOnce,
        retain: false,
        topic: TopicName::EMPTY,
        packet_id: None,
        properties: Properties::default(),
        payload: b"hi",
    });
    let rows: [(&str, Packet<'static>); 4] = [
        // [MQTT-3.3.2-11]: no alias above the client's maximum, here none.
        ("[MQTT-3.3.2-11]", alias_only),
        // [MQTT-3.3.4-9]: no more unacknowledged QoS 2 than Receive Maximum.
        ("[MQTT-3.3.4-9]", incoming(QoS::ExactlyOnce, Some(2), false)),
        // [MQTT-2.3.1-5]: a QoS 1/2 PUBLISH carries a packet id.
        ("[MQTT-2.3.1-5]", incoming(QoS::AtLeastOnce, None, false)),
        // Only a client sends PINGREQ.
        ("client-only", Packet::PingReq),
    ];
    for (rule, packet) in rows {
        let mut c = connected_v5::<4, 1>(Properties::default());
        let first = c.handle_packet(Millis(0), incoming(QoS::ExactlyOnce, Some(1), false));
        assert!(matches!(first, Ok(Event::Message(_))), "{rule}");
        match c.handle_packet(Millis(0), packet) {
            Err(Error::Protocol(text)) => assert!(text.contains(rule), "{rule}: {text}"),
            other => panic!("{rule}: expected a protocol error, got {other:?}"),
        }
    }
}
