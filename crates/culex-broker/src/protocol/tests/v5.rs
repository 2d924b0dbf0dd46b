//! MQTT 5.0 behaviour without a socket.

use std::time::Duration;

use super::Sim;
use culex_codec::packet::{Publish, Subscribe};
use culex_codec::topic::{TopicFilter, TopicName};
use culex_codec::{Packet, Properties, Protocol, QoS, ReasonCode, Seq, SubscriptionOptions};

use super::Raw;
use crate::testing::raw::{pid, ConnectOpts};

fn v5(
    port: u16,
    client_id: &str,
    clean: bool,
    expiry: Option<u32>,
) -> (Raw, bool, Properties<'static>) {
    let properties = Properties {
        session_expiry_interval: expiry,
        ..Properties::default()
    };
    let (c, present, reason) = Raw::connect_with(
        port,
        ConnectOpts {
            client_id,
            clean,
            protocol: Protocol::V5,
            properties,
            ..ConnectOpts::default()
        },
    );
    assert_eq!(reason, ReasonCode::Success);
    (c, present, Properties::default())
}

fn subscribe(c: &mut Raw, filter: &str, options: SubscriptionOptions, id: Option<u32>) {
    let ids = id.map(|i| vec![i]).unwrap_or_default();
    let list = [(TopicFilter::new(filter).unwrap(), options)];
    c.send(&Packet::Subscribe(Subscribe {
        packet_id: pid(1),
        properties: Properties {
            subscription_identifiers: Seq::Items(&ids),
            ..Properties::default()
        },
        filters: Seq::Items(&list),
    }));
    assert!(matches!(c.recv().packet(), Packet::SubAck(_)));
}

fn publish(c: &mut Raw, topic: &str, payload: &[u8], properties: Properties<'_>) {
    c.send(&Packet::Publish(Publish {
        dup: false,
        qos: QoS::AtMostOnce,
        retain: false,
        topic: TopicName::new(topic).unwrap_or(TopicName::new("x").unwrap()),
        packet_id: None,
        properties,
        payload,
    }));
}

/// CONNACK carries the assigned client identifier for an empty id
/// [MQTT-3.2.2-16] and our topic alias maximum.
#[test]
fn connack_assigns_client_id() {
    let broker = Sim::start();
    let mut c = Raw::open(broker.port(), Protocol::V5);
    c.send(&Packet::Connect(culex_codec::packet::Connect {
        bridge: false,
        protocol: Protocol::V5,
        clean_start: true,
        keep_alive: 60,
        client_id: "",
        will: None,
        username: None,
        password: None,
        properties: Properties::default(),
    }));
    let f = c.recv();
    match f.packet() {
        Packet::ConnAck(a) => {
            assert_eq!(a.reason, ReasonCode::Success);
            assert!(a
                .properties
                .assigned_client_identifier
                .unwrap()
                .starts_with("auto-"));
            assert!(a.properties.topic_alias_maximum.unwrap() > 0);
        }
        other => panic!("{other:?}"),
    }
}

/// Topic aliases from the client are resolved [MQTT-3.3.2-12]; an alias above
/// the maximum is a protocol error answered with DISCONNECT 0x94.
#[test]
fn inbound_topic_aliases() {
    let broker = Sim::start();
    let (mut sub, _, _) = v5(broker.port(), "sub", true, None);
    subscribe(&mut sub, "alias/#", SubscriptionOptions::default(), None);
    let (mut publ, _, _) = v5(broker.port(), "pub", true, None);
    publish(
        &mut publ,
        "alias/long/topic",
        b"first",
        Properties {
            topic_alias: Some(3),
            ..Properties::default()
        },
    );
    // An empty topic with a known alias.
    publ.send(&Packet::Publish(Publish {
        dup: false,
        qos: QoS::AtMostOnce,
        retain: false,
        topic: TopicName::EMPTY,
        packet_id: None,
        properties: Properties {
            topic_alias: Some(3),
            ..Properties::default()
        },
        payload: b"second",
    }));
    let a = sub.recv().publish();
    let b = sub.recv().publish();
    assert_eq!(
        (a.topic.as_str(), b.topic.as_str()),
        ("alias/long/topic", "alias/long/topic")
    );
    assert_eq!(b.payload, b"second");
    publish(
        &mut publ,
        "alias/x",
        b"bad",
        Properties {
            topic_alias: Some(1000),
            ..Properties::default()
        },
    );
    match publ.recv().packet() {
        Packet::Disconnect(d) => assert_eq!(d.reason, ReasonCode::TopicAliasInvalid),
        other => panic!("{other:?}"),
    }
    assert!(publ.is_closed_within(Duration::from_secs(2)));
}

/// No-local: a client's own messages are not sent back [MQTT-3.8.3-3];
/// retain-as-published keeps RETAIN [MQTT-3.3.1-13]; subscription identifiers
/// of every matching subscription are sent [MQTT-3.3.4-3].
#[test]
fn subscription_options_and_identifiers() {
    let broker = Sim::start();
    let (mut me, _, _) = v5(broker.port(), "me", true, None);
    subscribe(
        &mut me,
        "o/#",
        SubscriptionOptions {
            no_local: true,
            ..Default::default()
        },
        Some(5),
    );
    let (mut other, _, _) = v5(broker.port(), "other", true, None);
    subscribe(
        &mut other,
        "o/#",
        SubscriptionOptions {
            retain_as_published: true,
            ..Default::default()
        },
        Some(7),
    );
    subscribe(
        &mut other,
        "o/+",
        SubscriptionOptions {
            retain_as_published: true,
            ..Default::default()
        },
        Some(9),
    );
    me.send(&Packet::Publish(Publish {
        dup: false,
        qos: QoS::AtMostOnce,
        retain: true,
        topic: TopicName::new("o/1").unwrap(),
        packet_id: None,
        properties: Properties::default(),
        payload: b"mine",
    }));
    let f = other.recv();
    match f.packet() {
        Packet::Publish(p) => {
            assert!(p.retain, "retain as published");
            let mut ids: Vec<u32> = p.properties.subscription_identifiers.iter().collect();
            ids.sort();
            assert_eq!(ids, vec![7, 9]);
        }
        other => panic!("{other:?}"),
    }
    assert!(
        me.try_recv(Duration::from_millis(300)).is_none(),
        "no-local"
    );
}

/// User properties pass through in order, with content type, response topic
/// and correlation data [MQTT-3.3.2-17], [MQTT-3.3.2-18].
#[test]
fn properties_pass_through() {
    let broker = Sim::start();
    let (mut sub, _, _) = v5(broker.port(), "sub", true, None);
    subscribe(&mut sub, "p", SubscriptionOptions::default(), None);
    let (mut publ, _, _) = v5(broker.port(), "pub", true, None);
    let user = [("b", "2"), ("a", "1"), ("b", "3")];
    publish(
        &mut publ,
        "p",
        b"x",
        Properties {
            user_properties: Seq::Items(&user),
            content_type: Some("text/plain"),
            response_topic: Some("reply/here"),
            correlation_data: Some(b"corr"),
            ..Properties::default()
        },
    );
    let f = sub.recv();
    match f.packet() {
        Packet::Publish(p) => {
            let got: Vec<(&str, &str)> = p.properties.user_properties.iter().collect();
            assert_eq!(got, user.to_vec());
            assert_eq!(p.properties.content_type, Some("text/plain"));
            assert_eq!(p.properties.response_topic, Some("reply/here"));
            assert_eq!(p.properties.correlation_data, Some(&b"corr"[..]));
        }
        other => panic!("{other:?}"),
    }
}

/// Session Expiry Interval 0 ends the session at disconnect; a non-zero one
/// keeps it [MQTT-3.1.2-23].
#[test]
fn session_expiry_interval() {
    let broker = Sim::start();
    let (c, _, _) = v5(broker.port(), "short", false, None);
    c.disconnect();
    broker.advance(Duration::from_millis(100));
    let (_c, present, _) = v5(broker.port(), "short", false, None);
    assert!(!present);
    let (c, _, _) = v5(broker.port(), "long", false, Some(60));
    c.disconnect();
    broker.advance(Duration::from_millis(100));
    let (_c, present, _) = v5(broker.port(), "long", false, Some(60));
    assert!(present);
}

/// Retained messages whose Message Expiry Interval has passed are not sent [MQTT-3.3.2-5].
#[test]
fn expired_retained_message_not_sent() {
    let broker = Sim::start();
    let (mut publ, _, _) = v5(broker.port(), "pub", true, None);
    publ.send(&Packet::Publish(Publish {
        dup: false,
        qos: QoS::AtMostOnce,
        retain: true,
        topic: TopicName::new("e/short").unwrap(),
        packet_id: None,
        properties: Properties {
            message_expiry_interval: Some(1),
            ..Properties::default()
        },
        payload: b"soon gone",
    }));
    broker.advance(Duration::from_millis(1200));
    let (mut sub, _, _) = v5(broker.port(), "sub", true, None);
    subscribe(&mut sub, "e/#", SubscriptionOptions::default(), None);
    assert!(sub.try_recv(Duration::from_millis(300)).is_none());
}

/// Topic aliases towards a client that allows them, within its maximum
/// [MQTT-3.3.2-11], never 0 [MQTT-3.3.2-8]: the first
/// message carries topic and alias, the next only the alias.
#[test]
fn outbound_topic_aliases() {
    let broker = Sim::start();
    let properties = Properties {
        topic_alias_maximum: Some(4),
        ..Properties::default()
    };
    let (mut sub, _, _) = Raw::connect_with(
        broker.port(),
        ConnectOpts {
            client_id: "aliased",
            protocol: Protocol::V5,
            properties,
            ..ConnectOpts::default()
        },
    );
    subscribe(&mut sub, "al/#", SubscriptionOptions::default(), None);
    let (mut publ, _, _) = v5(broker.port(), "pub", true, None);
    publish(&mut publ, "al/one", b"1", Properties::default());
    publish(&mut publ, "al/one", b"2", Properties::default());
    let first = sub.recv();
    let second = sub.recv();
    match (first.packet(), second.packet()) {
        (Packet::Publish(a), Packet::Publish(b)) => {
            assert_eq!(
                (a.topic.as_str(), a.properties.topic_alias),
                ("al/one", Some(1))
            );
            assert_eq!(
                (b.topic.as_str(), b.properties.topic_alias, b.payload),
                ("", Some(1), &b"2"[..])
            );
        }
        other => panic!("{other:?}"),
    }
}

fn will_client(port: u16, id: &str, delay: u32) -> Raw {
    let mut c = Raw::open(port, Protocol::V5);
    c.send(&Packet::Connect(culex_codec::packet::Connect {
        bridge: false,
        protocol: Protocol::V5,
        clean_start: true,
        keep_alive: 60,
        client_id: id,
        will: Some(culex_codec::packet::Will {
            topic: TopicName::new("wd/will").unwrap(),
            payload: id.as_bytes(),
            qos: QoS::AtMostOnce,
            retain: false,
            properties: Properties {
                will_delay_interval: Some(delay),
                ..Properties::default()
            },
        }),
        username: None,
        password: None,
        properties: Properties {
            session_expiry_interval: Some(60),
            ..Properties::default()
        },
    }));
    assert!(matches!(c.recv().packet(), Packet::ConnAck(a) if a.reason == ReasonCode::Success));
    c
}

/// The Will Delay Interval holds the will back [MQTT-3.1.3-9]; a reconnect
/// within the delay cancels it.
#[test]
fn will_delay_interval() {
    let broker = Sim::start();
    let (mut watcher, _, _) = v5(broker.port(), "watcher", true, None);
    subscribe(&mut watcher, "wd/#", SubscriptionOptions::default(), None);
    drop(will_client(broker.port(), "delayed", 1));
    drop(will_client(broker.port(), "cancelled", 1));
    broker.advance(Duration::from_millis(200));
    let _back = v5(broker.port(), "cancelled", false, Some(60));
    assert!(
        watcher.try_recv(Duration::from_millis(500)).is_none(),
        "held back by the delay"
    );
    assert_eq!(watcher.recv().publish().payload, b"delayed");
    assert!(
        watcher.try_recv(Duration::from_millis(1500)).is_none(),
        "reconnect cancelled the will"
    );
}

/// More unreleased QoS 2 messages than our Receive Maximum: DISCONNECT 0x93
/// [MQTT-3.3.4-7]. CONNACK announces `max_inflight_messages` as the maximum.
#[test]
fn receive_maximum_exceeded() {
    let mut config = crate::testing::local_config();
    config.limits.max_inflight_messages = Some(2);
    let broker = Sim::start_with(config);
    let mut c = Raw::open(broker.port(), Protocol::V5);
    c.send(&Packet::Connect(culex_codec::packet::Connect {
        bridge: false,
        protocol: Protocol::V5,
        clean_start: true,
        keep_alive: 60,
        client_id: "greedy",
        will: None,
        username: None,
        password: None,
        properties: Properties::default(),
    }));
    assert!(
        matches!(c.recv().packet(), Packet::ConnAck(a) if a.properties.receive_maximum == Some(2))
    );
    for id in 1..=3u16 {
        c.publish("rm", b"x", QoS::ExactlyOnce, false, id);
    }
    assert!(matches!(c.recv().packet(), Packet::PubRec(_)));
    assert!(matches!(c.recv().packet(), Packet::PubRec(_)));
    match c.recv().packet() {
        Packet::Disconnect(d) => assert_eq!(d.reason, ReasonCode::ReceiveMaximumExceeded),
        other => panic!("{other:?}"),
    }
}

/// A packet above `max_packet_size`: DISCONNECT 0x95 [MQTT-3.2.2-15]; CONNACK
/// announces the maximum.
#[test]
fn packet_too_large() {
    let mut config = crate::testing::local_config();
    config.limits.max_packet_size = Some(100);
    let broker = Sim::start_with(config);
    let (mut c, _, _) = v5(broker.port(), "big", true, None);
    c.publish("big", &[0u8; 200], QoS::AtMostOnce, false, 0);
    match c.recv().packet() {
        Packet::Disconnect(d) => assert_eq!(d.reason, ReasonCode::PacketTooLarge),
        other => panic!("{other:?}"),
    }
    assert!(c.is_closed_within(Duration::from_secs(2)));
}

/// An authentication method the broker does not support: CONNACK 0x8C
/// [MQTT-4.12.0-1]; bad credentials: 0x87, as mosquitto answers.
#[test]
fn connack_refusals_v5() {
    let mut config = crate::testing::local_config();
    config.security.allow_anonymous = false;
    let broker = Sim::start_with(config);
    let properties = Properties {
        authentication_method: Some("SCRAM-SHA-1"),
        ..Properties::default()
    };
    let (_c, _, reason) = Raw::connect_with(
        broker.port(),
        ConnectOpts {
            client_id: "scram",
            protocol: Protocol::V5,
            properties,
            ..ConnectOpts::default()
        },
    );
    assert_eq!(reason, ReasonCode::BadAuthenticationMethod);
    let (_c, _, reason) = Raw::connect_with(
        broker.port(),
        ConnectOpts {
            client_id: "anon5",
            protocol: Protocol::V5,
            ..ConnectOpts::default()
        },
    );
    assert_eq!(reason, ReasonCode::NotAuthorized);
}

/// `max_keepalive`: a 5.0 client asking for more (or for none) gets Server
/// Keep Alive [MQTT-3.2.2-21]; a 3.1.1 client is accepted, as by mosquitto.
#[test]
fn server_keep_alive_from_max_keepalive() {
    let mut config = crate::testing::local_config();
    config.limits.max_keepalive = 10;
    let broker = Sim::start_with(config);
    let mut c = Raw::open(broker.port(), Protocol::V5);
    c.send(&Packet::Connect(culex_codec::packet::Connect {
        bridge: false,
        protocol: Protocol::V5,
        clean_start: true,
        keep_alive: 60,
        client_id: "ka",
        will: None,
        username: None,
        password: None,
        properties: Properties::default(),
    }));
    assert!(
        matches!(c.recv().packet(), Packet::ConnAck(a) if a.properties.server_keep_alive == Some(10))
    );
    let (_c3, _, reason) = Raw::connect_with(
        broker.port(),
        ConnectOpts {
            client_id: "ka3",
            ..ConnectOpts::default()
        },
    );
    assert_eq!(reason, ReasonCode::Success);
}

/// PUBACK reason codes [MQTT 5.0, 3.4.2.1]: 0x10 when nobody subscribes,
/// 0x99 for a payload whose format indicator says UTF-8 but is not
/// [MQTT 5.0, 3.3.2.3.2], 0x00 otherwise.
#[test]
fn puback_reason_codes() {
    let broker = Sim::start();
    let (mut c, _, _) = v5(broker.port(), "acks", true, None);
    let mut send = |topic: &str, payload: &[u8], format: Option<u8>, id: u16| {
        c.send(&Packet::Publish(Publish {
            dup: false,
            qos: QoS::AtLeastOnce,
            retain: false,
            topic: TopicName::new(topic).unwrap(),
            packet_id: Some(pid(id)),
            properties: Properties {
                payload_format_indicator: format,
                ..Properties::default()
            },
            payload,
        }));
        match c.recv().packet() {
            Packet::PubAck(a) => a.reason,
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(
        send("nobody", b"x", None, 1),
        ReasonCode::NoMatchingSubscribers
    );
    assert_eq!(
        send("nobody", &[0xff, 0xfe], Some(1), 2),
        ReasonCode::PayloadFormatInvalid
    );
    let (mut sub, _, _) = v5(broker.port(), "listener", true, None);
    subscribe(&mut sub, "somebody", SubscriptionOptions::default(), None);
    assert_eq!(
        send("somebody", "é".as_bytes(), Some(1), 3),
        ReasonCode::Success
    );
}

/// A 5.0 connection taken over is told so with DISCONNECT 0x8E before the
/// close [MQTT-3.1.4-3].
#[test]
fn takeover_sends_disconnect_0x8e() {
    let broker = Sim::start();
    let (mut first, _, _) = v5(broker.port(), "twin", true, None);
    let (_second, _, _) = v5(broker.port(), "twin", true, None);
    match first.recv().packet() {
        Packet::Disconnect(d) => assert_eq!(d.reason, ReasonCode::SessionTakenOver),
        other => panic!("{other:?}"),
    }
    assert!(first.is_closed_within(Duration::from_secs(2)));
}

/// A disconnected session is discarded once its Session Expiry Interval has
/// passed [MQTT-4.1.0-2].
#[test]
fn session_expires_after_interval() {
    let broker = Sim::start();
    let (c, _, _) = v5(broker.port(), "brief", false, Some(1));
    c.disconnect();
    broker.advance(Duration::from_millis(2300));
    let (_c, present, _) = v5(broker.port(), "brief", false, Some(1));
    assert!(!present, "expired");
}

/// Messages larger than the client's Maximum Packet Size are not sent to it
/// [MQTT-3.1.2-24]; smaller ones are.
#[test]
fn client_maximum_packet_size_is_respected() {
    let broker = Sim::start();
    let properties = Properties {
        maximum_packet_size: Some(64),
        ..Properties::default()
    };
    let (mut small, _, _) = Raw::connect_with(
        broker.port(),
        ConnectOpts {
            client_id: "small",
            protocol: Protocol::V5,
            properties,
            ..ConnectOpts::default()
        },
    );
    subscribe(
        &mut small,
        "mps",
        SubscriptionOptions {
            qos: QoS::AtLeastOnce,
            ..Default::default()
        },
        None,
    );
    let (mut publ, _, _) = v5(broker.port(), "pub", true, None);
    publish(&mut publ, "mps", &[b'x'; 200], Properties::default());
    publish(&mut publ, "mps", b"fits", Properties::default());
    assert_eq!(small.recv().publish().payload, b"fits");
}

/// Subscribers receive the remaining Message Expiry Interval [MQTT-3.3.2-6].
#[test]
fn remaining_expiry_is_sent() {
    let broker = Sim::start();
    let (mut publ, _, _) = v5(broker.port(), "pub", true, None);
    publ.send(&Packet::Publish(Publish {
        dup: false,
        qos: QoS::AtMostOnce,
        retain: true,
        topic: TopicName::new("exp/r").unwrap(),
        packet_id: None,
        properties: Properties {
            message_expiry_interval: Some(30),
            ..Properties::default()
        },
        payload: b"x",
    }));
    broker.advance(Duration::from_millis(1100));
    let (mut sub, _, _) = v5(broker.port(), "sub", true, None);
    subscribe(&mut sub, "exp/#", SubscriptionOptions::default(), None);
    let f = sub.recv();
    match f.packet() {
        Packet::Publish(p) => {
            let left = p.properties.message_expiry_interval.unwrap();
            assert!((1..30).contains(&left), "{left}");
        }
        other => panic!("{other:?}"),
    }
}

/// ACL outcomes carry 5.0 reason codes: a denied publish gets PUBACK 0x87,
/// a denied subscription SUBACK 0x87.
#[test]
fn acl_reason_codes_v5() {
    let dir = std::env::temp_dir().join(format!(
        "culex-acl5-{}-{}",
        std::process::id(),
        culex_testkit::free_port()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let acl = culex_testkit::write_file(&dir, "acl", "topic readwrite open/#\n");
    let mut config = crate::testing::local_config();
    config.security.acl_file = Some(acl);
    let broker = Sim::start_with(config);
    let (mut c, _, _) = v5(broker.port(), "acl5", true, None);
    let list = [
        (
            TopicFilter::new("closed/#").unwrap(),
            SubscriptionOptions::default(),
        ),
        (
            TopicFilter::new("open/#").unwrap(),
            SubscriptionOptions::default(),
        ),
    ];
    c.send(&Packet::Subscribe(Subscribe {
        packet_id: pid(1),
        properties: Properties::default(),
        filters: Seq::Items(&list),
    }));
    match c.recv().packet() {
        Packet::SubAck(a) => {
            assert_eq!(
                a.reasons.iter().collect::<Vec<_>>(),
                vec![ReasonCode::NotAuthorized, ReasonCode::Success]
            )
        }
        other => panic!("{other:?}"),
    }
    c.publish("closed/x", b"no", QoS::AtLeastOnce, false, 2);
    match c.recv().packet() {
        Packet::PubAck(a) => assert_eq!(a.reason, ReasonCode::NotAuthorized),
        other => panic!("{other:?}"),
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// A publisher that sends to one topic again and again is matched against
/// the subscriptions as they are at each message, though the broker keeps
/// its last topic's subscribers between messages: a subscription made
/// since gets the next message with its identifier [MQTT-3.3.4-3], one
/// removed gets nothing more [MQTT-3.10.4-2], and once nobody is left the
/// PUBACK says so (0x10, [MQTT 5.0, 3.4.2.1]).
#[test]
fn a_repeated_topic_follows_the_subscriptions_as_they_change() {
    let broker = Sim::start();
    let port = broker.port();
    let (mut a, _, _) = v5(port, "first", true, None);
    subscribe(&mut a, "r/1", SubscriptionOptions::default(), Some(3));
    let (mut publ, _, _) = v5(port, "repeater", true, None);
    let mut send = |payload: &[u8], id: u16| {
        publ.send(&Packet::Publish(Publish {
            dup: false,
            qos: QoS::AtLeastOnce,
            retain: false,
            topic: TopicName::new("r/1").unwrap(),
            packet_id: Some(pid(id)),
            properties: Properties::default(),
            payload,
        }));
        match publ.recv().packet() {
            Packet::PubAck(ack) => ack.reason,
            other => panic!("{other:?}"),
        }
    };
    let got = |c: &mut Raw| match c.recv().packet() {
        Packet::Publish(p) => (
            p.payload.to_vec(),
            p.properties
                .subscription_identifiers
                .iter()
                .collect::<Vec<u32>>(),
        ),
        other => panic!("{other:?}"),
    };
    for (i, payload) in [&b"one"[..], b"two"].into_iter().enumerate() {
        assert_eq!(send(payload, i as u16 + 1), ReasonCode::Success);
        assert_eq!(got(&mut a), (payload.to_vec(), vec![3]));
    }
    let (mut b, _, _) = v5(port, "second", true, None);
    subscribe(&mut b, "r/+", SubscriptionOptions::default(), Some(8));
    assert_eq!(send(b"three", 3), ReasonCode::Success);
    assert_eq!(got(&mut a), (b"three".to_vec(), vec![3]));
    assert_eq!(got(&mut b), (b"three".to_vec(), vec![8]));
    let filters = [TopicFilter::new("r/1").unwrap()];
    a.send(&Packet::Unsubscribe(culex_codec::packet::Unsubscribe {
        packet_id: pid(2),
        properties: Properties::default(),
        filters: Seq::Items(&filters),
    }));
    assert!(matches!(a.recv().packet(), Packet::UnsubAck(_)));
    assert_eq!(send(b"four", 4), ReasonCode::Success);
    assert_eq!(got(&mut b), (b"four".to_vec(), vec![8]));
    assert!(
        a.try_recv(Duration::from_millis(300)).is_none(),
        "unsubscribed"
    );
    // The second subscriber's session ends with its connection.
    b.disconnect();
    assert_eq!(send(b"five", 5), ReasonCode::NoMatchingSubscribers);
}
