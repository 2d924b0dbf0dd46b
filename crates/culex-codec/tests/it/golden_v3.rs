//! Golden vectors for MQTT 3.1 and 3.1.1, worked out by hand from the field
//! layouts of MQTT 3.1.1 chapter 3 (and the 3.1 spec for its CONNECT). Apart
//! from CONNECT, 3.1 packets are laid out as 3.1.1's, so those vectors are
//! checked in both versions.

use culex_codec::packet::{
    ConnAck, Connect, Disconnect, PubResponse, Publish, SubAck, Subscribe, UnsubAck, Unsubscribe,
    Will,
};
use culex_codec::topic::{TopicFilter, TopicName};
use culex_codec::{
    Packet, PacketId, Properties, Protocol, QoS, ReasonCode, Seq, SubscriptionOptions,
};

use super::golden;

const V3: [Protocol; 2] = [Protocol::V3_1, Protocol::V3_1_1];

fn id(n: u16) -> PacketId {
    PacketId::new(n).unwrap()
}

fn name(s: &str) -> TopicName<'_> {
    TopicName::new(s).unwrap()
}

fn filter(s: &str) -> TopicFilter<'_> {
    TopicFilter::new(s).unwrap()
}

fn qos(q: QoS) -> SubscriptionOptions {
    SubscriptionOptions {
        qos: q,
        ..Default::default()
    }
}

#[test]
fn connect_v311_minimal() {
    #[rustfmt::skip]
    let bytes = [
        0x10, 0x0D,                         // CONNECT, remaining length 13
        0x00, 0x04, b'M', b'Q', b'T', b'T', // protocol name
        0x04,                               // level 4 = 3.1.1
        0x02,                               // clean session
        0x00, 0x3C,                         // keep alive 60
        0x00, 0x01, b'a',                   // client id "a"
    ];
    golden(
        Protocol::V3_1_1,
        &bytes,
        Packet::Connect(Connect {
            bridge: false,
            protocol: Protocol::V3_1_1,
            clean_start: true,
            keep_alive: 60,
            client_id: "a",
            will: None,
            username: None,
            password: None,
            properties: Properties::default(),
        }),
    );
}

/// mosquitto's bridges (`try_private true`) set the level's top bit: 0x83
/// for 3.1, 0x84 for 3.1.1. It is a flag, not another protocol.
#[test]
fn connect_with_the_bridge_bit() {
    for (name, level, protocol) in [
        (&b"MQIsdp"[..], 0x83, Protocol::V3_1),
        (&b"MQTT"[..], 0x84, Protocol::V3_1_1),
    ] {
        let mut bytes = vec![0x10, 0];
        bytes.extend_from_slice(&(name.len() as u16).to_be_bytes());
        bytes.extend_from_slice(name);
        bytes.extend_from_slice(&[level, 0x00, 0x00, 0x3C, 0x00, 0x01, b'b']);
        bytes[1] = (bytes.len() - 2) as u8;
        golden(
            protocol,
            &bytes,
            Packet::Connect(Connect {
                bridge: true,
                protocol,
                clean_start: false,
                keep_alive: 60,
                client_id: "b",
                will: None,
                username: None,
                password: None,
                properties: Properties::default(),
            }),
        );
    }
}

#[test]
fn connect_v311_with_will_and_credentials() {
    #[rustfmt::skip]
    let bytes = [
        0x10, 0x1B,                         // CONNECT, remaining length 27
        0x00, 0x04, b'M', b'Q', b'T', b'T',
        0x04,
        0xEE,       // user, password, will retain, will QoS 1, will, clean session
        0x00, 0x0A, // keep alive 10
        0x00, 0x01, b'c',                   // client id
        0x00, 0x01, b'w',                   // will topic
        0x00, 0x03, b'b', b'y', b'e',       // will payload
        0x00, 0x01, b'u',                   // user name
        0x00, 0x01, b'p',                   // password
    ];
    golden(
        Protocol::V3_1_1,
        &bytes,
        Packet::Connect(Connect {
            bridge: false,
            protocol: Protocol::V3_1_1,
            clean_start: true,
            keep_alive: 10,
            client_id: "c",
            will: Some(Will {
                topic: name("w"),
                payload: b"bye",
                qos: QoS::AtLeastOnce,
                retain: true,
                properties: Properties::default(),
            }),
            username: Some("u"),
            password: Some(b"p"),
            properties: Properties::default(),
        }),
    );
}

#[test]
fn connect_v31() {
    #[rustfmt::skip]
    let bytes = [
        0x10, 0x16,                                     // CONNECT, remaining length 22
        0x00, 0x06, b'M', b'Q', b'I', b's', b'd', b'p', // protocol name of 3.1
        0x03,                                           // level 3
        0x80,                                           // user name, no clean session
        0x00, 0x00,                                     // keep alive off
        0x00, 0x03, b'a', b'b', b'c',                   // client id
        0x00, 0x03, b'b', b'o', b'b',                   // user name
    ];
    golden(
        Protocol::V3_1,
        &bytes,
        Packet::Connect(Connect {
            bridge: false,
            protocol: Protocol::V3_1,
            clean_start: false,
            keep_alive: 0,
            client_id: "abc",
            will: None,
            username: Some("bob"),
            password: None,
            properties: Properties::default(),
        }),
    );
}

#[test]
fn connect_is_read_whatever_the_connection_protocol() {
    // A server that does not yet know the version decodes CONNECT with any
    // `protocol` argument; the packet names its own.
    #[rustfmt::skip]
    let bytes = [
        0x10, 0x0D, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, 0x02, 0x00, 0x3C, 0x00, 0x01, b'a',
    ];
    for protocol in [Protocol::V3_1, Protocol::V5] {
        let (packet, _) = culex_codec::decode(&bytes, protocol, 1024)
            .unwrap()
            .unwrap();
        let Packet::Connect(c) = packet else {
            panic!("{packet:?}")
        };
        assert_eq!(c.protocol, Protocol::V3_1_1);
    }
}

#[test]
fn connack() {
    let cases: [(&[u8], bool, ReasonCode); 6] = [
        // CONNACK, length 2, session present, return code 0
        (&[0x20, 0x02, 0x01, 0x00], true, ReasonCode::Success),
        (
            &[0x20, 0x02, 0x00, 0x01],
            false,
            ReasonCode::UnsupportedProtocolVersion,
        ),
        (
            &[0x20, 0x02, 0x00, 0x02],
            false,
            ReasonCode::ClientIdentifierNotValid,
        ),
        (
            &[0x20, 0x02, 0x00, 0x03],
            false,
            ReasonCode::ServerUnavailable,
        ),
        (
            &[0x20, 0x02, 0x00, 0x04],
            false,
            ReasonCode::BadUserNameOrPassword,
        ),
        (&[0x20, 0x02, 0x00, 0x05], false, ReasonCode::NotAuthorized),
    ];
    for protocol in V3 {
        for (bytes, session_present, reason) in cases {
            golden(
                protocol,
                bytes,
                Packet::ConnAck(ConnAck {
                    session_present,
                    reason,
                    properties: Properties::default(),
                }),
            );
        }
    }
}

#[test]
fn connack_maps_5_0_refusals_to_the_nearest_return_code() {
    for (reason, code) in [
        (ReasonCode::Banned, 0x05),
        (ReasonCode::BadAuthenticationMethod, 0x05),
        (ReasonCode::ServerBusy, 0x03),
        (ReasonCode::UseAnotherServer, 0x03),
    ] {
        super::encodes_to(
            Protocol::V3_1_1,
            Packet::ConnAck(ConnAck {
                session_present: false,
                reason,
                properties: Properties::default(),
            }),
            &[0x20, 0x02, 0x00, code],
        );
    }
}

#[test]
fn publish_qos0() {
    #[rustfmt::skip]
    let bytes = [
        0x30, 0x07,                   // PUBLISH, QoS 0, remaining length 7
        0x00, 0x03, b'a', b'/', b'b', // topic
        b'h', b'i',                   // payload
    ];
    for protocol in V3 {
        golden(
            protocol,
            &bytes,
            Packet::Publish(Publish {
                dup: false,
                qos: QoS::AtMostOnce,
                retain: false,
                topic: name("a/b"),
                packet_id: None,
                properties: Properties::default(),
                payload: b"hi",
            }),
        );
    }
}

#[test]
fn publish_qos1_dup_retain() {
    #[rustfmt::skip]
    let bytes = [
        0x3B, 0x06,       // PUBLISH, DUP, QoS 1, RETAIN
        0x00, 0x01, b't', // topic
        0x00, 0x0A,       // packet id 10
        b'x',             // payload
    ];
    for protocol in V3 {
        golden(
            protocol,
            &bytes,
            Packet::Publish(Publish {
                dup: true,
                qos: QoS::AtLeastOnce,
                retain: true,
                topic: name("t"),
                packet_id: Some(id(10)),
                properties: Properties::default(),
                payload: b"x",
            }),
        );
    }
}

#[test]
fn publish_qos2_empty_payload() {
    #[rustfmt::skip]
    let bytes = [
        0x34, 0x05,       // PUBLISH, QoS 2
        0x00, 0x01, b'z', // topic
        0xFF, 0xFF,       // packet id 65535
    ];
    for protocol in V3 {
        golden(
            protocol,
            &bytes,
            Packet::Publish(Publish {
                dup: false,
                qos: QoS::ExactlyOnce,
                retain: false,
                topic: name("z"),
                packet_id: Some(id(65535)),
                properties: Properties::default(),
                payload: b"",
            }),
        );
    }
}

#[test]
fn publish_payload_is_borrowed_not_copied() {
    let bytes = [0x30, 0x05, 0x00, 0x01, b't', b'p', b'q'];
    let (packet, _) = culex_codec::decode(&bytes, Protocol::V3_1_1, 64)
        .unwrap()
        .unwrap();
    let Packet::Publish(p) = packet else { panic!() };
    assert_eq!(p.payload.as_ptr(), bytes[5..].as_ptr());
}

#[test]
fn pub_responses() {
    let resp = |n| PubResponse {
        packet_id: id(n),
        reason: ReasonCode::Success,
        properties: Properties::default(),
    };
    for protocol in V3 {
        golden(protocol, &[0x40, 0x02, 0x00, 0x01], Packet::PubAck(resp(1)));
        golden(protocol, &[0x50, 0x02, 0x00, 0x02], Packet::PubRec(resp(2)));
        // PUBREL's fixed header flags are 0010 [MQTT-3.6.1-1].
        golden(protocol, &[0x62, 0x02, 0x00, 0x03], Packet::PubRel(resp(3)));
        golden(
            protocol,
            &[0x70, 0x02, 0x01, 0x04],
            Packet::PubComp(resp(260)),
        );
    }
}

#[test]
fn subscribe() {
    #[rustfmt::skip]
    let bytes = [
        0x82, 0x0C,                         // SUBSCRIBE, flags 0010 [MQTT-3.8.1-1]
        0x00, 0x01,                         // packet id 1
        0x00, 0x03, b'a', b'/', b'+', 0x01, // "a/+" QoS 1
        0x00, 0x01, b'#', 0x02,             // "#" QoS 2
    ];
    let filters = [
        (filter("a/+"), qos(QoS::AtLeastOnce)),
        (filter("#"), qos(QoS::ExactlyOnce)),
    ];
    for protocol in V3 {
        golden(
            protocol,
            &bytes,
            Packet::Subscribe(Subscribe {
                packet_id: id(1),
                properties: Properties::default(),
                filters: Seq::Items(&filters),
            }),
        );
    }
}

#[test]
fn suback() {
    #[rustfmt::skip]
    let bytes = [
        0x90, 0x05,       // SUBACK
        0x00, 0x01,       // packet id 1
        0x01, 0x02, 0x80, // granted 1, granted 2, failure
    ];
    let reasons = [
        ReasonCode::GrantedQoS1,
        ReasonCode::GrantedQoS2,
        ReasonCode::UnspecifiedError,
    ];
    for protocol in V3 {
        golden(
            protocol,
            &bytes,
            Packet::SubAck(SubAck {
                packet_id: id(1),
                properties: Properties::default(),
                reasons: Seq::Items(&reasons),
            }),
        );
    }
}

#[test]
fn suback_maps_5_0_failures_to_0x80() {
    let reasons = [ReasonCode::Success, ReasonCode::NotAuthorized];
    super::encodes_to(
        Protocol::V3_1_1,
        Packet::SubAck(SubAck {
            packet_id: id(7),
            properties: Properties::default(),
            reasons: Seq::Items(&reasons),
        }),
        &[0x90, 0x04, 0x00, 0x07, 0x00, 0x80],
    );
}

#[test]
fn unsubscribe() {
    #[rustfmt::skip]
    let bytes = [
        0xA2, 0x0A,                   // UNSUBSCRIBE, flags 0010 [MQTT-3.10.1-1]
        0x00, 0x02,                   // packet id 2
        0x00, 0x03, b'a', b'/', b'+', // "a/+"
        0x00, 0x01, b'#',             // "#"
    ];
    let filters = [filter("a/+"), filter("#")];
    for protocol in V3 {
        golden(
            protocol,
            &bytes,
            Packet::Unsubscribe(Unsubscribe {
                packet_id: id(2),
                properties: Properties::default(),
                filters: Seq::Items(&filters),
            }),
        );
    }
}

#[test]
fn unsuback_carries_no_reasons() {
    for protocol in V3 {
        golden(
            protocol,
            &[0xB0, 0x02, 0x00, 0x02],
            Packet::UnsubAck(UnsubAck {
                packet_id: id(2),
                properties: Properties::default(),
                reasons: Seq::Items(&[]),
            }),
        );
    }
}

#[test]
fn ping_and_disconnect() {
    for protocol in V3 {
        golden(protocol, &[0xC0, 0x00], Packet::PingReq);
        golden(protocol, &[0xD0, 0x00], Packet::PingResp);
        golden(
            protocol,
            &[0xE0, 0x00],
            Packet::Disconnect(Disconnect {
                reason: ReasonCode::Success,
                properties: Properties::default(),
            }),
        );
    }
}

#[test]
fn packets_back_to_back_decode_one_at_a_time() {
    // PINGREQ, then a PUBLISH, then half a PUBACK.
    let buf = [0xC0, 0x00, 0x30, 0x03, 0x00, 0x01, b't', 0x40, 0x02, 0x00];
    let (first, used) = culex_codec::decode(&buf, Protocol::V3_1_1, 64)
        .unwrap()
        .unwrap();
    assert_eq!((first, used), (Packet::PingReq, 2));
    let (second, used2) = culex_codec::decode(&buf[used..], Protocol::V3_1_1, 64)
        .unwrap()
        .unwrap();
    assert!(
        matches!(second, Packet::Publish(p) if p.topic.as_str() == "t" && p.payload.is_empty())
    );
    assert_eq!(used2, 5);
    assert_eq!(
        culex_codec::decode(&buf[used + used2..], Protocol::V3_1_1, 64),
        Ok(None)
    );
}
