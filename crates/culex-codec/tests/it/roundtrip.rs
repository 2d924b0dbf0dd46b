//! `decode(encode(p)) == p` over generated packets of every type in every
//! protocol version, with `encoded_len` exact.
//!
//! Generated strings and lists are leaked so that packets can borrow them for
//! `'static`; the few kilobytes per run do not matter in a test.

use culex_codec::packet::{
    Auth, ConnAck, Connect, Disconnect, PubResponse, Publish, SubAck, Subscribe, UnsubAck,
    Unsubscribe, Will,
};
use culex_codec::topic::{TopicFilter, TopicName};
use culex_codec::{
    check_frame, decode, Packet, PacketId, Properties, Protocol, QoS, ReasonCode, RetainHandling,
    Seq, SubscriptionOptions,
};
use proptest::option::of;
use proptest::prelude::*;

fn leak_str(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

fn leak<T>(v: Vec<T>) -> &'static [T] {
    Box::leak(v.into_boxed_slice())
}

fn string() -> impl Strategy<Value = &'static str> {
    "[^\\x00]{0,6}".prop_map(leak_str)
}

fn bytes() -> impl Strategy<Value = &'static [u8]> {
    prop::collection::vec(any::<u8>(), 0..8).prop_map(leak)
}

fn topic_str() -> impl Strategy<Value = &'static str> {
    prop::collection::vec("[a-z0-9$é ]{0,3}", 1..4)
        .prop_map(|levels| levels.join("/"))
        .prop_filter("not empty", |t| !t.is_empty())
        .prop_map(leak_str)
}

fn topic_name() -> impl Strategy<Value = TopicName<'static>> {
    topic_str().prop_map(|t| TopicName::new(t).unwrap())
}

fn topic_filter() -> impl Strategy<Value = TopicFilter<'static>> {
    let level = prop_oneof!["[a-z$]{0,3}", Just("+".to_string())];
    (
        prop::collection::vec(level, 1..4),
        any::<bool>(),
        of("[a-z]{1,3}"),
    )
        .prop_filter_map("a filter is never empty", |(levels, hash, share)| {
            let mut filter = levels.join("/");
            if hash {
                filter.push_str("/#");
            }
            if let Some(group) = share {
                filter = format!("$share/{group}/{filter}");
            }
            TopicFilter::new(leak_str(filter)).ok()
        })
}

fn qos() -> impl Strategy<Value = QoS> {
    prop_oneof![
        Just(QoS::AtMostOnce),
        Just(QoS::AtLeastOnce),
        Just(QoS::ExactlyOnce)
    ]
}

fn packet_id() -> impl Strategy<Value = PacketId> {
    (1..=u16::MAX).prop_map(|n| PacketId::new(n).unwrap())
}

fn reason(codes: &'static [u8]) -> impl Strategy<Value = ReasonCode> {
    prop::sample::select(codes).prop_map(|b| ReasonCode::from_u8(b).unwrap())
}

// The reason codes each packet may carry, from the tables of MQTT 5.0 chapter 3.
const CONNACK_V3: &[u8] = &[0x00, 0x84, 0x85, 0x88, 0x86, 0x87];
#[rustfmt::skip]
const CONNACK_V5: &[u8] = &[
    0x00, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8A, 0x8C, 0x90, 0x95,
    0x97, 0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9F,
];
const PUBACK_V5: &[u8] = &[0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99];
const PUBREL_V5: &[u8] = &[0x00, 0x92];
const SUBACK_V3: &[u8] = &[0x00, 0x01, 0x02, 0x80];
#[rustfmt::skip]
const SUBACK_V5: &[u8] = &[0x00, 0x01, 0x02, 0x80, 0x83, 0x87, 0x8F, 0x91, 0x97, 0x9E, 0xA1, 0xA2];
const UNSUBACK_V5: &[u8] = &[0x00, 0x11, 0x80, 0x83, 0x87, 0x8F, 0x91];
#[rustfmt::skip]
const DISCONNECT_V5: &[u8] = &[
    0x00, 0x04, 0x80, 0x81, 0x82, 0x83, 0x87, 0x89, 0x8B, 0x8D, 0x8E, 0x8F, 0x90, 0x93, 0x94,
    0x95, 0x96, 0x97, 0x98, 0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9E, 0x9F, 0xA0, 0xA1, 0xA2,
];
const AUTH_V5: &[u8] = &[0x00, 0x18, 0x19];

/// Where a property set goes; decides which properties survive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ctx {
    Connect,
    ConnAck,
    Publish,
    Will,
    PubResponse,
    Subscribe,
    SubAck,
    Unsubscribe,
    UnsubAck,
    Disconnect,
    Auth,
}

/// Clears the properties `ctx` does not allow (table of MQTT 5.0, 2.2.2.2).
fn keep_allowed(ctx: Ctx, p: &mut Properties<'static>) {
    use Ctx::*;
    let allow = |set: &[Ctx]| set.contains(&ctx);
    if !allow(&[Publish, Will]) {
        p.payload_format_indicator = None;
        p.message_expiry_interval = None;
        p.content_type = None;
        p.response_topic = None;
        p.correlation_data = None;
    }
    if !allow(&[Publish, Subscribe]) {
        p.subscription_identifiers = Seq::Items(&[]);
    }
    if let (Subscribe, Seq::Items(ids)) = (ctx, p.subscription_identifiers) {
        p.subscription_identifiers = Seq::Items(&ids[..ids.len().min(1)]);
    }
    if !allow(&[Connect, ConnAck, Disconnect]) {
        p.session_expiry_interval = None;
    }
    if !allow(&[ConnAck]) {
        p.assigned_client_identifier = None;
        p.server_keep_alive = None;
        p.response_information = None;
        p.maximum_qos = None;
        p.retain_available = None;
        p.wildcard_subscription_available = None;
        p.subscription_identifiers_available = None;
        p.shared_subscription_available = None;
    }
    if !allow(&[Connect, ConnAck, Auth]) || p.authentication_method.is_none() {
        p.authentication_method = None;
        p.authentication_data = None;
    }
    if !allow(&[Connect]) {
        p.request_problem_information = None;
        p.request_response_information = None;
    }
    if !allow(&[Will]) {
        p.will_delay_interval = None;
    }
    if !allow(&[ConnAck, Disconnect]) {
        p.server_reference = None;
    }
    if !allow(&[ConnAck, PubResponse, SubAck, UnsubAck, Disconnect, Auth]) {
        p.reason_string = None;
    }
    if !allow(&[Connect, ConnAck]) {
        p.receive_maximum = None;
        p.topic_alias_maximum = None;
        p.maximum_packet_size = None;
    }
    if !allow(&[Publish]) {
        p.topic_alias = None;
    }
}

fn flag() -> impl Strategy<Value = Option<u8>> {
    of(0..=1u8)
}

/// Properties for `ctx`: every allowed property, each present or not, with
/// values in their legal ranges. Empty for 3.x.
fn props(protocol: Protocol, ctx: Ctx) -> BoxedStrategy<Properties<'static>> {
    if !protocol.is_v5() {
        return Just(Properties::default()).boxed();
    }
    let a = (
        flag(),
        of(any::<u32>()),
        of(string()),
        of(topic_str()),
        of(bytes()),
        prop::collection::vec(1..=268_435_455u32, 0..3).prop_map(leak),
        of(any::<u32>()),
        of(string()),
        of(any::<u16>()),
        of(string()),
        of(bytes()),
    );
    let b = (
        flag(),
        of(any::<u32>()),
        flag(),
        of(string()),
        of(string()),
        of(string()),
        of(1..=u16::MAX),
        of(any::<u16>()),
        of(1..=u16::MAX),
        flag(),
        flag(),
    );
    let c = (
        prop::collection::vec((string(), string()), 0..3).prop_map(leak),
        of(1..=u32::MAX),
        flag(),
        flag(),
        flag(),
    );
    (a, b, c)
        .prop_map(move |(a, b, c)| {
            let mut p = Properties {
                payload_format_indicator: a.0,
                message_expiry_interval: a.1,
                content_type: a.2,
                response_topic: a.3,
                correlation_data: a.4,
                subscription_identifiers: Seq::Items(a.5),
                session_expiry_interval: a.6,
                assigned_client_identifier: a.7,
                server_keep_alive: a.8,
                authentication_method: a.9,
                authentication_data: a.10,
                request_problem_information: b.0,
                will_delay_interval: b.1,
                request_response_information: b.2,
                response_information: b.3,
                server_reference: b.4,
                reason_string: b.5,
                receive_maximum: b.6,
                topic_alias_maximum: b.7,
                topic_alias: b.8,
                maximum_qos: b.9,
                retain_available: b.10,
                user_properties: Seq::Items(c.0),
                maximum_packet_size: c.1,
                wildcard_subscription_available: c.2,
                subscription_identifiers_available: c.3,
                shared_subscription_available: c.4,
            };
            keep_allowed(ctx, &mut p);
            p
        })
        .boxed()
}

fn connect(v: Protocol) -> impl Strategy<Value = Packet<'static>> {
    let will = (
        topic_name(),
        bytes(),
        qos(),
        any::<bool>(),
        props(v, Ctx::Will),
    )
        .prop_map(|(topic, payload, qos, retain, properties)| Will {
            topic,
            payload,
            qos,
            retain,
            properties,
        });
    (
        any::<bool>(),
        any::<u16>(),
        string(),
        of(will),
        of(string()),
        of(bytes()),
        props(v, Ctx::Connect),
    )
        .prop_map(
            move |(clean_start, keep_alive, client_id, will, username, password, properties)| {
                // 3.x needs a user name for a password [MQTT-3.1.2-22].
                let password = if v.is_v5() || username.is_some() {
                    password
                } else {
                    None
                };
                Packet::Connect(Connect {
                    bridge: false,
                    protocol: v,
                    clean_start,
                    keep_alive,
                    client_id,
                    will,
                    username,
                    password,
                    properties,
                })
            },
        )
}

fn connack(v: Protocol) -> impl Strategy<Value = Packet<'static>> {
    let codes = if v.is_v5() { CONNACK_V5 } else { CONNACK_V3 };
    (any::<bool>(), reason(codes), props(v, Ctx::ConnAck)).prop_map(|(sp, reason, properties)| {
        Packet::ConnAck(ConnAck {
            session_present: sp && !reason.is_error(),
            reason,
            properties,
        })
    })
}

fn publish(v: Protocol) -> impl Strategy<Value = Packet<'static>> {
    (
        any::<bool>(),
        qos(),
        any::<bool>(),
        topic_name(),
        prop::bool::weighted(0.2),
        packet_id(),
        props(v, Ctx::Publish),
        prop::collection::vec(any::<u8>(), 0..64).prop_map(leak),
    )
        .prop_map(
            move |(dup, qos, retain, topic, no_topic, id, mut properties, payload)| {
                let qos0 = qos == QoS::AtMostOnce;
                let topic = if v.is_v5() && no_topic {
                    properties.topic_alias.get_or_insert(1);
                    TopicName::EMPTY
                } else {
                    topic
                };
                Packet::Publish(Publish {
                    dup: dup && !qos0,
                    qos,
                    retain,
                    topic,
                    packet_id: (!qos0).then_some(id),
                    properties,
                    payload,
                })
            },
        )
}

fn pub_response(v: Protocol, codes: &'static [u8]) -> impl Strategy<Value = PubResponse<'static>> {
    let codes = if v.is_v5() { codes } else { &[0x00] };
    (packet_id(), reason(codes), props(v, Ctx::PubResponse)).prop_map(
        |(packet_id, reason, properties)| PubResponse {
            packet_id,
            reason,
            properties,
        },
    )
}

fn options(v: Protocol) -> impl Strategy<Value = SubscriptionOptions> {
    let handling = prop_oneof![
        Just(RetainHandling::SendAtSubscribe),
        Just(RetainHandling::SendIfNew),
        Just(RetainHandling::DoNotSend)
    ];
    (qos(), any::<bool>(), any::<bool>(), handling).prop_map(move |(qos, nl, rap, rh)| {
        if v.is_v5() {
            SubscriptionOptions {
                qos,
                no_local: nl,
                retain_as_published: rap,
                retain_handling: rh,
            }
        } else {
            SubscriptionOptions {
                qos,
                ..Default::default()
            }
        }
    })
}

fn subscribe(v: Protocol) -> impl Strategy<Value = Packet<'static>> {
    let entry = (topic_filter(), options(v)).prop_map(|(filter, mut options)| {
        // No local on a shared subscription is a protocol error [MQTT-3.8.3-4].
        options.no_local &= filter.share_group().is_none();
        (filter, options)
    });
    (
        packet_id(),
        props(v, Ctx::Subscribe),
        prop::collection::vec(entry, 1..4).prop_map(leak),
    )
        .prop_map(|(packet_id, properties, filters)| {
            Packet::Subscribe(Subscribe {
                packet_id,
                properties,
                filters: Seq::Items(filters),
            })
        })
}

fn suback(v: Protocol) -> impl Strategy<Value = Packet<'static>> {
    let codes = if v.is_v5() { SUBACK_V5 } else { SUBACK_V3 };
    (
        packet_id(),
        props(v, Ctx::SubAck),
        prop::collection::vec(reason(codes), 0..4).prop_map(leak),
    )
        .prop_map(|(packet_id, properties, reasons)| {
            Packet::SubAck(SubAck {
                packet_id,
                properties,
                reasons: Seq::Items(reasons),
            })
        })
}

fn unsubscribe(v: Protocol) -> impl Strategy<Value = Packet<'static>> {
    (
        packet_id(),
        props(v, Ctx::Unsubscribe),
        prop::collection::vec(topic_filter(), 1..4).prop_map(leak),
    )
        .prop_map(|(packet_id, properties, filters)| {
            Packet::Unsubscribe(Unsubscribe {
                packet_id,
                properties,
                filters: Seq::Items(filters),
            })
        })
}

fn unsuback(v: Protocol) -> impl Strategy<Value = Packet<'static>> {
    let count = if v.is_v5() { 0..4 } else { 0..1 };
    (
        packet_id(),
        props(v, Ctx::UnsubAck),
        prop::collection::vec(reason(UNSUBACK_V5), count).prop_map(leak),
    )
        .prop_map(|(packet_id, properties, reasons)| {
            Packet::UnsubAck(UnsubAck {
                packet_id,
                properties,
                reasons: Seq::Items(reasons),
            })
        })
}

fn disconnect(v: Protocol) -> impl Strategy<Value = Packet<'static>> {
    let codes = if v.is_v5() { DISCONNECT_V5 } else { &[0x00] };
    (reason(codes), props(v, Ctx::Disconnect))
        .prop_map(|(reason, properties)| Packet::Disconnect(Disconnect { reason, properties }))
}

fn auth() -> impl Strategy<Value = Packet<'static>> {
    (reason(AUTH_V5), props(Protocol::V5, Ctx::Auth))
        .prop_map(|(reason, properties)| Packet::Auth(Auth { reason, properties }))
}

/// Any packet the version can express.
fn packet(v: Protocol) -> BoxedStrategy<Packet<'static>> {
    let common = prop_oneof![
        connect(v),
        connack(v),
        publish(v),
        pub_response(v, PUBACK_V5).prop_map(Packet::PubAck),
        pub_response(v, PUBACK_V5).prop_map(Packet::PubRec),
        pub_response(v, PUBREL_V5).prop_map(Packet::PubRel),
        pub_response(v, PUBREL_V5).prop_map(Packet::PubComp),
        subscribe(v),
        suback(v),
        unsubscribe(v),
        unsuback(v),
        Just(Packet::PingReq),
        Just(Packet::PingResp),
        disconnect(v),
    ];
    if v.is_v5() {
        prop_oneof![14 => common, 1 => auth()].boxed()
    } else {
        common.boxed()
    }
}

fn round_trip(v: Protocol, packet: Packet<'_>) -> Result<(), TestCaseError> {
    let len = packet
        .encoded_len(v)
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    let mut out = Vec::new();
    prop_assert_eq!(packet.encode(v, &mut out), Ok(len));
    prop_assert_eq!(out.len(), len);
    prop_assert_eq!(check_frame(&out[..len - 1], u32::MAX), Ok(None));
    let (decoded, used) = decode(&out, v, u32::MAX)
        .map_err(|e| TestCaseError::fail(format!("{e} in {out:02X?}")))?
        .ok_or_else(|| TestCaseError::fail("incomplete"))?;
    prop_assert_eq!(used, len);
    prop_assert_eq!(decoded, packet);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn round_trip_v3_1(p in packet(Protocol::V3_1)) {
        round_trip(Protocol::V3_1, p)?;
    }

    #[test]
    fn round_trip_v3_1_1(p in packet(Protocol::V3_1_1)) {
        round_trip(Protocol::V3_1_1, p)?;
    }

    #[test]
    fn round_trip_v5(p in packet(Protocol::V5)) {
        round_trip(Protocol::V5, p)?;
    }
}

/// `success_response` is byte for byte what `Packet::encode` writes for a
/// success without properties, in every version: the 5.0 short form
/// ([MQTT 5.0, 3.4.2.1]) and 3.x's only form.
#[test]
fn success_response_matches_encode() {
    use culex_codec::packet::PubResponse;
    use culex_codec::{success_response, PacketType, Properties, ReasonCode};
    type Make = fn(PubResponse<'static>) -> Packet<'static>;
    let kinds: [(PacketType, Make); 4] = [
        (PacketType::PubAck, Packet::PubAck),
        (PacketType::PubRec, Packet::PubRec),
        (PacketType::PubRel, Packet::PubRel),
        (PacketType::PubComp, Packet::PubComp),
    ];
    for protocol in [Protocol::V3_1, Protocol::V3_1_1, Protocol::V5] {
        for (kind, make) in kinds {
            for n in [1u16, 2, 255, 256, 0x1234, u16::MAX] {
                let id = PacketId::new(n).unwrap();
                let mut encoded = Vec::new();
                make(PubResponse {
                    packet_id: id,
                    reason: ReasonCode::Success,
                    properties: Properties::default(),
                })
                .encode(protocol, &mut encoded)
                .unwrap();
                assert_eq!(
                    success_response(kind, id).map(|b| b.to_vec()),
                    Some(encoded),
                    "{kind:?} {n} {protocol:?}"
                );
            }
        }
    }
    assert_eq!(
        success_response(PacketType::Publish, PacketId::new(1).unwrap()),
        None
    );
}

/// `encode_plain_publish` writes what `Packet::encode` writes for a PUBLISH
/// without properties, in every version, and refuses what it refuses:
/// DUP on QoS 0 [MQTT-3.3.1-2], a packet id exactly when QoS > 0
/// [MQTT-2.3.1-5].
#[test]
fn plain_publish_matches_encode() {
    use culex_codec::encode_plain_publish;
    let big = vec![7u8; 20_000];
    let payloads: [&[u8]; 3] = [b"", b"hello", &big];
    for protocol in [Protocol::V3_1, Protocol::V3_1_1, Protocol::V5] {
        for qos in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce] {
            for (dup, retain) in [(false, false), (true, false), (false, true), (true, true)] {
                for topic in ["a", "home/kitchen/temperature", "ü/x"] {
                    for payload in payloads {
                        for id in [None, PacketId::new(1), PacketId::new(0xABCD)] {
                            let topic = TopicName::new(topic).unwrap();
                            let mut plain = Vec::new();
                            let fast = encode_plain_publish(
                                protocol, dup, qos, retain, topic, id, payload, &mut plain,
                            );
                            let mut general = Vec::new();
                            let slow = Packet::Publish(Publish {
                                dup,
                                qos,
                                retain,
                                topic,
                                packet_id: id,
                                properties: Properties::default(),
                                payload,
                            })
                            .encode(protocol, &mut general);
                            assert_eq!(
                                fast.is_ok(),
                                slow.is_ok(),
                                "{protocol:?} {qos:?} {dup} {id:?}"
                            );
                            if let (Ok(a), Ok(b)) = (fast, slow) {
                                assert_eq!(a, b);
                                assert_eq!(plain, general, "{protocol:?} {qos:?} {dup} {retain}");
                            }
                        }
                    }
                }
            }
        }
        // A remaining length of four bytes [MQTT-1.5.5-1].
        let huge = vec![7u8; 2_100_000];
        let topic = TopicName::new("a/b").unwrap();
        let id = PacketId::new(9);
        let mut plain = Vec::new();
        encode_plain_publish(
            protocol,
            false,
            QoS::AtLeastOnce,
            false,
            topic,
            id,
            &huge,
            &mut plain,
        )
        .unwrap();
        let mut general = Vec::new();
        Packet::Publish(Publish {
            dup: false,
            qos: QoS::AtLeastOnce,
            retain: false,
            topic,
            packet_id: id,
            properties: Properties::default(),
            payload: &huge,
        })
        .encode(protocol, &mut general)
        .unwrap();
        assert_eq!(plain.get(..8), general.get(..8), "{protocol:?}");
        assert_eq!(plain, general, "{protocol:?}");
    }
}

/// `decode_success_response` reads a four-byte success acknowledgement as
/// `decode_packet` does in every version, and declines every other frame of
/// four bytes (any first byte, any id, 0 included) for `decode_packet` to
/// judge.
#[test]
fn success_response_decodes_as_decode_packet() {
    use culex_codec::{decode_packet, decode_success_response, success_response, PacketType};
    for first in 0..=255u8 {
        for id in [0u16, 1, 0x00FF, 0x0100, 0xBEEF, u16::MAX] {
            let [hi, lo] = id.to_be_bytes();
            for remaining in [1u8, 2, 3] {
                let frame = [first, remaining, hi, lo];
                let Some((kind, pid)) = decode_success_response(&frame) else {
                    continue;
                };
                assert_eq!((remaining, pid.get()), (2, id));
                for protocol in [Protocol::V3_1, Protocol::V3_1_1, Protocol::V5] {
                    let (got_kind, r) = match decode_packet(&frame, protocol).unwrap() {
                        Packet::PubAck(r) => (PacketType::PubAck, r),
                        Packet::PubRec(r) => (PacketType::PubRec, r),
                        Packet::PubRel(r) => (PacketType::PubRel, r),
                        Packet::PubComp(r) => (PacketType::PubComp, r),
                        other => panic!("{frame:?}: {other:?}"),
                    };
                    assert_eq!((got_kind, r.packet_id), (kind, pid), "{frame:?}");
                    assert_eq!(r.reason, culex_codec::ReasonCode::Success);
                    assert!(r.properties.is_empty());
                }
            }
        }
    }
    for kind in [
        PacketType::PubAck,
        PacketType::PubRec,
        PacketType::PubRel,
        PacketType::PubComp,
    ] {
        for n in [1u16, 0x1234, u16::MAX] {
            let id = PacketId::new(n).unwrap();
            let bytes = success_response(kind, id).unwrap();
            assert_eq!(decode_success_response(&bytes), Some((kind, id)));
        }
    }
}
