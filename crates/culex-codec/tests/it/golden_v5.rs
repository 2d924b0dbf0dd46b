//! Golden vectors for MQTT 5.0, worked out by hand from the field layouts of
//! MQTT 5.0 chapter 3 and the property table of section 2.2.2.2.

use culex_codec::packet::{
    Auth, ConnAck, Connect, Disconnect, PubResponse, Publish, SubAck, Subscribe, UnsubAck,
    Unsubscribe, Will,
};
use culex_codec::topic::{TopicFilter, TopicName};
use culex_codec::{
    Packet, PacketId, Properties, Protocol, QoS, ReasonCode, RetainHandling, Seq,
    SubscriptionOptions,
};

use super::{decodes_to, golden};

const V5: Protocol = Protocol::V5;

fn id(n: u16) -> PacketId {
    PacketId::new(n).unwrap()
}

fn no_props() -> Properties<'static> {
    Properties::default()
}

#[test]
fn connect_minimal() {
    #[rustfmt::skip]
    let bytes = [
        0x10, 0x0E,                         // CONNECT, remaining length 14
        0x00, 0x04, b'M', b'Q', b'T', b'T',
        0x05,                               // level 5
        0x02,                               // clean start
        0x00, 0x3C,                         // keep alive 60
        0x00,                               // no properties
        0x00, 0x01, b'a',                   // client id
    ];
    golden(
        V5,
        &bytes,
        Packet::Connect(Connect {
            bridge: false,
            protocol: V5,
            clean_start: true,
            keep_alive: 60,
            client_id: "a",
            will: None,
            username: None,
            password: None,
            properties: no_props(),
        }),
    );
}

#[test]
fn connect_with_properties_will_and_password_only() {
    #[rustfmt::skip]
    let bytes = [
        0x10, 0x36,                                     // CONNECT, remaining length 54
        0x00, 0x04, b'M', b'Q', b'T', b'T', 0x05,
        0x44,                                           // password, will QoS 0, will
        0x00, 0x1E,                                     // keep alive 30
        0x14,                                           // 20 bytes of properties:
        0x11, 0x00, 0x00, 0x0E, 0x10,                   //   session expiry 3600
        0x21, 0x00, 0x14,                               //   receive maximum 20
        0x26, 0x00, 0x01, b'k', 0x00, 0x01, b'v',       //   user property k=v
        0x27, 0x00, 0x00, 0x04, 0x00,                   //   maximum packet size 1024
        0x00, 0x02, b'c', b'd',                         // client id
        0x07,                                           // 7 bytes of will properties:
        0x01, 0x01,                                     //   payload format UTF-8
        0x18, 0x00, 0x00, 0x00, 0x05,                   //   will delay 5
        0x00, 0x03, b'w', b'/', b'x',                   // will topic
        0x00, 0x00,                                     // empty will payload
        0x00, 0x02, 0x01, 0x02,                         // password without user name
    ];
    let users = [("k", "v")];
    golden(
        V5,
        &bytes,
        Packet::Connect(Connect {
            bridge: false,
            protocol: V5,
            clean_start: false,
            keep_alive: 30,
            client_id: "cd",
            will: Some(Will {
                topic: TopicName::new("w/x").unwrap(),
                payload: b"",
                qos: QoS::AtMostOnce,
                retain: false,
                properties: Properties {
                    payload_format_indicator: Some(1),
                    will_delay_interval: Some(5),
                    ..no_props()
                },
            }),
            username: None,
            password: Some(&[1, 2]),
            properties: Properties {
                session_expiry_interval: Some(3600),
                receive_maximum: Some(20),
                user_properties: Seq::Items(&users),
                maximum_packet_size: Some(1024),
                ..no_props()
            },
        }),
    );
}

#[test]
fn connack() {
    golden(
        V5,
        // CONNACK, flags 0, reason Success, no properties
        &[0x20, 0x03, 0x00, 0x00, 0x00],
        Packet::ConnAck(ConnAck {
            session_present: false,
            reason: ReasonCode::Success,
            properties: no_props(),
        }),
    );
    golden(
        V5,
        &[0x20, 0x03, 0x00, 0x87, 0x00], // Not authorized
        Packet::ConnAck(ConnAck {
            session_present: false,
            reason: ReasonCode::NotAuthorized,
            properties: no_props(),
        }),
    );
    #[rustfmt::skip]
    let bytes = [
        0x20, 0x0D,
        0x01,                               // session present
        0x00,                               // Success
        0x0A,                               // 10 bytes of properties, in mosquitto's order:
        0x13, 0x00, 0x3C,                   //   server keep alive 60
        0x12, 0x00, 0x02, b'i', b'd',       //   assigned client id "id"
        0x24, 0x01,                         //   maximum QoS 1
    ];
    golden(
        V5,
        &bytes,
        Packet::ConnAck(ConnAck {
            session_present: true,
            reason: ReasonCode::Success,
            properties: Properties {
                assigned_client_identifier: Some("id"),
                server_keep_alive: Some(60),
                maximum_qos: Some(1),
                ..no_props()
            },
        }),
    );
}

#[test]
fn publish_with_properties() {
    #[rustfmt::skip]
    let bytes = [
        0x32, 0x14,                     // PUBLISH QoS 1, remaining length 20
        0x00, 0x03, b'a', b'/', b'b',   // topic
        0x00, 0x05,                     // packet id 5
        0x0A,                           // 10 bytes of properties:
        0x01, 0x01,                     //   payload format UTF-8
        0x02, 0x00, 0x00, 0x00, 0x3C,   //   message expiry 60
        0x23, 0x00, 0x07,               //   topic alias 7
        b'h', b'i',                     // payload
    ];
    golden(
        V5,
        &bytes,
        Packet::Publish(Publish {
            dup: false,
            qos: QoS::AtLeastOnce,
            retain: false,
            topic: TopicName::new("a/b").unwrap(),
            packet_id: Some(id(5)),
            properties: Properties {
                payload_format_indicator: Some(1),
                message_expiry_interval: Some(60),
                topic_alias: Some(7),
                ..no_props()
            },
            payload: b"hi",
        }),
    );
}

#[test]
fn publish_empty_topic_with_alias() {
    #[rustfmt::skip]
    let bytes = [
        0x31, 0x08,             // PUBLISH QoS 0 retained
        0x00, 0x00,             // empty topic
        0x03, 0x23, 0x00, 0x01, // topic alias 1
        b'x', b'y',
    ];
    golden(
        V5,
        &bytes,
        Packet::Publish(Publish {
            dup: false,
            qos: QoS::AtMostOnce,
            retain: true,
            topic: TopicName::EMPTY,
            packet_id: None,
            properties: Properties {
                topic_alias: Some(1),
                ..no_props()
            },
            payload: b"xy",
        }),
    );
}

#[test]
fn publish_response_topic_correlation_and_subscription_ids() {
    #[rustfmt::skip]
    let bytes = [
        0x30, 0x1C,                             // PUBLISH QoS 0, remaining length 28
        0x00, 0x01, b't',
        0x18,                                   // 24 bytes of properties:
        0x03, 0x00, 0x01, b'j',                 //   content type "j"
        0x08, 0x00, 0x01, b'r',                 //   response topic "r"
        0x09, 0x00, 0x01, 0xAA,                 //   correlation data AA
        0x0B, 0x01,                             //   subscription id 1
        0x0B, 0x80, 0x01,                       //   subscription id 128
        0x26, 0x00, 0x01, b'a', 0x00, 0x01, b'b', // user property a=b
        // no payload
    ];
    let sub_ids = [1, 128];
    let users = [("a", "b")];
    golden(
        V5,
        &bytes,
        Packet::Publish(Publish {
            dup: false,
            qos: QoS::AtMostOnce,
            retain: false,
            topic: TopicName::new("t").unwrap(),
            packet_id: None,
            properties: Properties {
                content_type: Some("j"),
                response_topic: Some("r"),
                correlation_data: Some(&[0xAA]),
                subscription_identifiers: Seq::Items(&sub_ids),
                user_properties: Seq::Items(&users),
                ..no_props()
            },
            payload: b"",
        }),
    );
}

#[test]
fn repeated_properties_interleaved_with_others_read_back_in_order() {
    #[rustfmt::skip]
    let bytes = [
        0x30, 0x1C,
        0x00, 0x01, b't',
        0x17,                                       // 23 bytes of properties:
        0x26, 0x00, 0x01, b'x', 0x00, 0x01, b'1',   //   user property x=1
        0x0B, 0x02,                                 //   subscription id 2
        0x02, 0x00, 0x00, 0x00, 0x09,               //   message expiry 9
        0x26, 0x00, 0x01, b'x', 0x00, 0x01, b'2',   //   user property x=2 (repeat allowed)
        0x0B, 0x03,                                 //   subscription id 3
        b'!',
    ];
    let users = [("x", "1"), ("x", "2")];
    let sub_ids = [2, 3];
    decodes_to(
        V5,
        &bytes,
        Packet::Publish(Publish {
            dup: false,
            qos: QoS::AtMostOnce,
            retain: false,
            topic: TopicName::new("t").unwrap(),
            packet_id: None,
            properties: Properties {
                message_expiry_interval: Some(9),
                subscription_identifiers: Seq::Items(&sub_ids),
                user_properties: Seq::Items(&users),
                ..no_props()
            },
            payload: b"!",
        }),
    );
}

#[test]
fn pub_responses_short_and_long_forms() {
    let resp = |n, reason, properties| PubResponse {
        packet_id: id(n),
        reason,
        properties,
    };
    // Remaining length 2: Success, no properties [MQTT 5.0, 3.4.2.1].
    golden(
        V5,
        &[0x40, 0x02, 0x00, 0x01],
        Packet::PubAck(resp(1, ReasonCode::Success, no_props())),
    );
    // Remaining length 3: a reason code, no properties.
    golden(
        V5,
        &[0x50, 0x03, 0x00, 0x02, 0x10],
        Packet::PubRec(resp(2, ReasonCode::NoMatchingSubscribers, no_props())),
    );
    golden(
        V5,
        &[0x62, 0x03, 0x00, 0x03, 0x92],
        Packet::PubRel(resp(3, ReasonCode::PacketIdentifierNotFound, no_props())),
    );
    golden(
        V5,
        &[0x70, 0x02, 0x00, 0x04],
        Packet::PubComp(resp(4, ReasonCode::Success, no_props())),
    );
    #[rustfmt::skip]
    let with_reason_string = [
        0x40, 0x08, 0x00, 0x01,
        0x80,                       // Unspecified error
        0x04, 0x1F, 0x00, 0x01, b'e', // reason string "e"
    ];
    golden(
        V5,
        &with_reason_string,
        Packet::PubAck(resp(
            1,
            ReasonCode::UnspecifiedError,
            Properties {
                reason_string: Some("e"),
                ..no_props()
            },
        )),
    );
    // Success written out in full decodes the same as the short form.
    decodes_to(
        V5,
        &[0x40, 0x03, 0x00, 0x01, 0x00],
        Packet::PubAck(resp(1, ReasonCode::Success, no_props())),
    );
    decodes_to(
        V5,
        &[0x40, 0x04, 0x00, 0x01, 0x00, 0x00],
        Packet::PubAck(resp(1, ReasonCode::Success, no_props())),
    );
}

#[test]
fn subscribe_with_options_and_shared_filter() {
    #[rustfmt::skip]
    let bytes = [
        0x82, 0x18,                                 // SUBSCRIBE, remaining length 24
        0x00, 0x01,                                 // packet id 1
        0x02, 0x0B, 0x05,                           // subscription id 5
        0x00, 0x03, b'a', b'/', b'#',
        0x2D,               // QoS 1, no local, retain as published, retain handling 2
        0x00, 0x0A, b'$', b's', b'h', b'a', b'r', b'e', b'/', b'g', b'/', b'x',
        0x00,                                       // QoS 0
    ];
    let filters = [
        (
            TopicFilter::new("a/#").unwrap(),
            SubscriptionOptions {
                qos: QoS::AtLeastOnce,
                no_local: true,
                retain_as_published: true,
                retain_handling: RetainHandling::DoNotSend,
            },
        ),
        (
            TopicFilter::new("$share/g/x").unwrap(),
            SubscriptionOptions::default(),
        ),
    ];
    let sub_ids = [5];
    golden(
        V5,
        &bytes,
        Packet::Subscribe(Subscribe {
            packet_id: id(1),
            properties: Properties {
                subscription_identifiers: Seq::Items(&sub_ids),
                ..no_props()
            },
            filters: Seq::Items(&filters),
        }),
    );
}

#[test]
fn suback() {
    // SUBACK: packet id 1, no properties, granted 1, granted 0, not authorized
    let bytes = [0x90, 0x06, 0x00, 0x01, 0x00, 0x01, 0x00, 0x87];
    let reasons = [
        ReasonCode::GrantedQoS1,
        ReasonCode::Success,
        ReasonCode::NotAuthorized,
    ];
    golden(
        V5,
        &bytes,
        Packet::SubAck(SubAck {
            packet_id: id(1),
            properties: no_props(),
            reasons: Seq::Items(&reasons),
        }),
    );
}

#[test]
fn unsubscribe() {
    // UNSUBSCRIBE: packet id 2, no properties, "a/+"
    let bytes = [0xA2, 0x08, 0x00, 0x02, 0x00, 0x00, 0x03, b'a', b'/', b'+'];
    let filters = [TopicFilter::new("a/+").unwrap()];
    golden(
        V5,
        &bytes,
        Packet::Unsubscribe(Unsubscribe {
            packet_id: id(2),
            properties: no_props(),
            filters: Seq::Items(&filters),
        }),
    );
}

#[test]
fn unsuback() {
    // UNSUBACK: packet id 2, no properties, Success, no subscription existed
    let bytes = [0xB0, 0x05, 0x00, 0x02, 0x00, 0x00, 0x11];
    let reasons = [ReasonCode::Success, ReasonCode::NoSubscriptionExisted];
    golden(
        V5,
        &bytes,
        Packet::UnsubAck(UnsubAck {
            packet_id: id(2),
            properties: no_props(),
            reasons: Seq::Items(&reasons),
        }),
    );
}

#[test]
fn ping() {
    golden(V5, &[0xC0, 0x00], Packet::PingReq);
    golden(V5, &[0xD0, 0x00], Packet::PingResp);
}

#[test]
fn disconnect_forms() {
    let d = |reason, properties| Packet::Disconnect(Disconnect { reason, properties });
    // Remaining length 0: normal disconnection [MQTT 5.0, 3.14.2.1].
    golden(V5, &[0xE0, 0x00], d(ReasonCode::Success, no_props()));
    golden(
        V5,
        &[0xE0, 0x01, 0x04],
        d(ReasonCode::DisconnectWithWillMessage, no_props()),
    );
    #[rustfmt::skip]
    let with_expiry = [
        0xE0, 0x07,
        0x00,                           // normal disconnection
        0x05, 0x11, 0x00, 0x00, 0x00, 0x00, // session expiry 0
    ];
    golden(
        V5,
        &with_expiry,
        d(
            ReasonCode::Success,
            Properties {
                session_expiry_interval: Some(0),
                ..no_props()
            },
        ),
    );
    decodes_to(V5, &[0xE0, 0x01, 0x00], d(ReasonCode::Success, no_props()));
}

#[test]
fn auth() {
    golden(
        V5,
        &[0xF0, 0x00], // AUTH, Success, no properties
        Packet::Auth(Auth {
            reason: ReasonCode::Success,
            properties: no_props(),
        }),
    );
    #[rustfmt::skip]
    let bytes = [
        0xF0, 0x0B,
        0x18,                               // continue authentication
        0x09,                               // 9 bytes of properties:
        0x15, 0x00, 0x02, b'x', b'y',       //   authentication method "xy"
        0x16, 0x00, 0x01, 0x01,             //   authentication data 01
    ];
    golden(
        V5,
        &bytes,
        Packet::Auth(Auth {
            reason: ReasonCode::ContinueAuthentication,
            properties: Properties {
                authentication_method: Some("xy"),
                authentication_data: Some(&[1]),
                ..no_props()
            },
        }),
    );
}

#[test]
fn connack_with_every_server_property() {
    #[rustfmt::skip]
    let bytes = [
        0x20, 0x36,                             // CONNACK, remaining length 54
        0x00, 0x00,                             // no session, Success
        0x33,                                   // 51 bytes of properties, mosquitto's first:
        0x22, 0x00, 0x05,                       //   topic alias maximum 5
        0x15, 0x00, 0x01, b'm',                 //   authentication method "m"
        0x16, 0x00, 0x01, 0x01,                 //   authentication data 01
        0x25, 0x00,                             //   retain not available
        0x27, 0x00, 0x00, 0x10, 0x00,           //   maximum packet size 4096
        0x21, 0x00, 0x0A,                       //   receive maximum 10
        0x11, 0x00, 0x00, 0x00, 0x3C,           //   session expiry 60
        0x1A, 0x00, 0x01, b'i',                 //   response information "i"
        0x1C, 0x00, 0x01, b's',                 //   server reference "s"
        0x1F, 0x00, 0x01, b'r',                 //   reason string "r"
        0x26, 0x00, 0x01, b'k', 0x00, 0x01, b'v', // user property k=v
        0x28, 0x01,                             //   wildcard subscriptions available
        0x29, 0x00,                             //   subscription ids not available
        0x2A, 0x01,                             //   shared subscriptions available
    ];
    let users = [("k", "v")];
    golden(
        V5,
        &bytes,
        Packet::ConnAck(ConnAck {
            session_present: false,
            reason: ReasonCode::Success,
            properties: Properties {
                session_expiry_interval: Some(60),
                authentication_method: Some("m"),
                authentication_data: Some(&[1]),
                response_information: Some("i"),
                server_reference: Some("s"),
                reason_string: Some("r"),
                receive_maximum: Some(10),
                topic_alias_maximum: Some(5),
                retain_available: Some(0),
                user_properties: Seq::Items(&users),
                maximum_packet_size: Some(4096),
                wildcard_subscription_available: Some(1),
                subscription_identifiers_available: Some(0),
                shared_subscription_available: Some(1),
                ..no_props()
            },
        }),
    );
}

#[test]
fn connect_with_request_and_authentication_properties() {
    #[rustfmt::skip]
    let bytes = [
        0x10, 0x1E,                         // CONNECT, remaining length 30
        0x00, 0x04, b'M', b'Q', b'T', b'T', 0x05,
        0x82,                               // user name, clean start
        0x00, 0x00,                         // keep alive off
        0x0E,                               // 14 bytes of properties:
        0x15, 0x00, 0x01, b'm',             //   authentication method "m"
        0x16, 0x00, 0x00,                   //   empty authentication data
        0x17, 0x00,                         //   no problem information
        0x19, 0x01,                         //   request response information
        0x22, 0x00, 0x0A,                   //   topic alias maximum 10
        0x00, 0x00,                         // empty client id
        0x00, 0x01, b'u',                   // user name
    ];
    golden(
        V5,
        &bytes,
        Packet::Connect(Connect {
            bridge: false,
            protocol: V5,
            clean_start: true,
            keep_alive: 0,
            client_id: "",
            will: None,
            username: Some("u"),
            password: None,
            properties: Properties {
                authentication_method: Some("m"),
                authentication_data: Some(&[]),
                request_problem_information: Some(0),
                request_response_information: Some(1),
                topic_alias_maximum: Some(10),
                ..no_props()
            },
        }),
    );
}
