//! Protocol behaviour without a socket, each test citing the rule it checks.

use std::time::Duration;

use super::Sim;
use crate::testing::local_config;
use culex_codec::{Packet, Protocol, QoS, ReasonCode};

use super::Raw;
use crate::testing::raw::ConnectOpts;

const SHORT: Duration = Duration::from_millis(300);

/// QoS 0, 1 and 2 both ways: the subscriber gets each message at
/// min(publish QoS, granted QoS) [MQTT-3.8.4-6], acks flow as the spec says.
#[test]
fn qos_0_1_2_round_trip() {
    let broker = Sim::start();
    let (mut sub, _) = Raw::connect(broker.port(), "sub", true);
    assert_eq!(sub.subscribe(&[("t/#", QoS::ExactlyOnce)]), vec![2]);
    let (mut publ, _) = Raw::connect(broker.port(), "pub", true);
    publ.publish_acked("t/0", b"zero", QoS::AtMostOnce, false, 0);
    publ.publish_acked("t/1", b"one", QoS::AtLeastOnce, false, 10);
    publ.publish_acked("t/2", b"two", QoS::ExactlyOnce, false, 11);

    let g = sub.recv().publish();
    assert_eq!(
        (g.topic.as_str(), g.payload.as_slice(), g.qos),
        ("t/0", &b"zero"[..], QoS::AtMostOnce)
    );
    let g = sub.recv().publish();
    assert_eq!((g.topic.as_str(), g.qos), ("t/1", QoS::AtLeastOnce));
    sub.ack(Packet::PubAck, g.id.unwrap());
    let g = sub.recv().publish();
    assert_eq!(
        (g.topic.as_str(), g.qos, g.dup),
        ("t/2", QoS::ExactlyOnce, false)
    );
    sub.ack(Packet::PubRec, g.id.unwrap());
    assert!(matches!(sub.recv().packet(), Packet::PubRel(r) if r.packet_id.get() == g.id.unwrap()));
    sub.ack(Packet::PubComp, g.id.unwrap());
    assert!(sub.try_recv(SHORT).is_none());
}

/// A QoS 2 PUBLISH re-sent with DUP before PUBREL is delivered once [MQTT-4.3.3-2].
#[test]
fn qos2_duplicate_before_pubrel_is_not_delivered_twice() {
    let broker = Sim::start();
    let (mut sub, _) = Raw::connect(broker.port(), "sub", true);
    sub.subscribe(&[("x", QoS::AtMostOnce)]);
    let (mut publ, _) = Raw::connect(broker.port(), "pub", true);
    publ.publish("x", b"once", QoS::ExactlyOnce, false, 5);
    assert!(matches!(publ.recv().packet(), Packet::PubRec(_)));
    publ.send(&Packet::Publish(culex_codec::packet::Publish {
        dup: true,
        qos: QoS::ExactlyOnce,
        retain: false,
        topic: culex_codec::topic::TopicName::new("x").unwrap(),
        packet_id: Some(crate::testing::raw::pid(5)),
        properties: Default::default(),
        payload: b"once",
    }));
    assert!(matches!(publ.recv().packet(), Packet::PubRec(_)));
    publ.ack(Packet::PubRel, 5);
    assert!(matches!(publ.recv().packet(), Packet::PubComp(_)));
    assert_eq!(sub.recv().publish().payload, b"once");
    assert!(sub.try_recv(SHORT).is_none(), "delivered twice");
}

/// An empty client id with clean session gets an assigned id [MQTT-3.1.3-6];
/// with clean session 0 it is refused with return code 2 [MQTT-3.1.3-8].
#[test]
fn empty_client_id() {
    let broker = Sim::start();
    let (_c, present, reason) = Raw::connect_with(broker.port(), ConnectOpts::default());
    assert_eq!((present, reason), (false, ReasonCode::Success));
    let (mut c, present, reason) = Raw::connect_with(
        broker.port(),
        ConnectOpts {
            clean: false,
            ..ConnectOpts::default()
        },
    );
    assert_eq!((present, reason.to_v3_connack()), (false, 2));
    assert!(
        c.is_closed_within(Duration::from_secs(2)),
        "closed after a refusal [MQTT-3.2.2-5]"
    );
}

/// A CONNECT with an unknown protocol level gets CONNACK 1 [MQTT-3.1.2-2].
#[test]
fn unsupported_protocol_level_is_refused() {
    let broker = Sim::start();
    let mut c = Raw::open(broker.port(), Protocol::V3_1_1);
    c.send_raw(&[
        0x10, 0x0d, 0, 4, b'M', b'Q', b'T', b'T', 9, 2, 0, 60, 0, 1, b'x',
    ]);
    let f = c.recv();
    assert_eq!(f.0, vec![0x20, 2, 0, 1]);
    assert!(c.is_closed_within(Duration::from_secs(2)));
}

/// The first packet must be CONNECT, else the connection is closed [MQTT-3.1.0-1].
#[test]
fn first_packet_must_be_connect() {
    let broker = Sim::start();
    let mut c = Raw::open(broker.port(), Protocol::V3_1_1);
    c.send_raw(&[0xc0, 0x00]); // PINGREQ
    assert!(c.is_closed_within(Duration::from_secs(2)));
}

/// A malformed packet closes that connection only [MQTT-4.8.0-1]; others go on.
#[test]
fn malformed_packet_closes_only_that_connection() {
    let broker = Sim::start();
    let (mut sub, _) = Raw::connect(broker.port(), "sub", true);
    sub.subscribe(&[("a", QoS::AtMostOnce)]);
    let (mut bad, _) = Raw::connect(broker.port(), "bad", true);
    bad.send_raw(&[0x32, 0x03, 0x00, 0x05, b'a']); // topic length beyond the packet
    assert!(bad.is_closed_within(Duration::from_secs(2)));
    let (mut good, _) = Raw::connect(broker.port(), "good", true);
    good.publish("a", b"still here", QoS::AtMostOnce, false, 0);
    assert_eq!(sub.recv().publish().payload, b"still here");
}

/// A second connection with the same client id closes the first [MQTT-3.1.4-2].
#[test]
fn session_takeover_closes_old_connection() {
    let broker = Sim::start();
    let (mut first, _) = Raw::connect(broker.port(), "same", true);
    let (mut second, _) = Raw::connect(broker.port(), "same", true);
    assert!(first.is_closed_within(Duration::from_secs(2)));
    second.send(&Packet::PingReq);
    assert!(matches!(second.recv().packet(), Packet::PingResp));
}

/// Retained messages: kept [MQTT-3.3.1-5], sent on subscribe with RETAIN set
/// [MQTT-3.3.1-8], replaced, and cleared by an empty payload [MQTT-3.3.1-10];
/// normal deliveries carry RETAIN 0 [MQTT-3.3.1-9].
#[test]
fn retained_store_replace_clear() {
    let broker = Sim::start();
    let (mut publ, _) = Raw::connect(broker.port(), "pub", true);
    publ.publish_acked("r/1", b"old", QoS::AtLeastOnce, true, 1);
    publ.publish_acked("r/1", b"new", QoS::AtLeastOnce, true, 2);
    publ.publish_acked("r/2", b"two", QoS::AtMostOnce, true, 0);
    publ.sync();
    let (mut s1, _) = Raw::connect(broker.port(), "s1", true);
    s1.subscribe(&[("r/+", QoS::AtLeastOnce)]);
    let mut got = [s1.recv().publish(), s1.recv().publish()];
    got.sort_by(|a, b| a.topic.cmp(&b.topic));
    assert_eq!(
        (got[0].payload.as_slice(), got[0].retain, got[0].qos),
        (&b"new"[..], true, QoS::AtLeastOnce)
    );
    assert_eq!(
        (got[1].payload.as_slice(), got[1].retain, got[1].qos),
        (&b"two"[..], true, QoS::AtMostOnce)
    );
    s1.ack(Packet::PubAck, got[0].id.unwrap());
    publ.publish_acked("r/1", b"live", QoS::AtMostOnce, true, 0);
    let live = s1.recv().publish();
    assert_eq!(
        (live.payload.as_slice(), live.retain),
        (&b"live"[..], false)
    );
    publ.publish_acked("r/1", b"", QoS::AtMostOnce, true, 0);
    assert_eq!(s1.recv().publish().payload, b"");
    let (mut s2, _) = Raw::connect(broker.port(), "s2", true);
    s2.subscribe(&[("r/#", QoS::AtMostOnce)]);
    let only = s2.recv().publish();
    assert_eq!(only.topic, "r/2");
    assert!(s2.try_recv(SHORT).is_none(), "r/1 was cleared");
}

/// The will is published when the connection drops [MQTT-3.1.2-8] and not
/// after DISCONNECT [MQTT-3.1.2-10].
#[test]
fn will_on_abnormal_close_only() {
    let broker = Sim::start();
    let (mut watcher, _) = Raw::connect(broker.port(), "watcher", true);
    watcher.subscribe(&[("will/#", QoS::AtLeastOnce)]);
    let will = |id: &'static str, topic: &'static str| ConnectOpts {
        client_id: id,
        will: Some((topic, b"gone", QoS::AtLeastOnce, false)),
        ..ConnectOpts::default()
    };
    let (polite, _, _) = Raw::connect_with(broker.port(), will("polite", "will/polite"));
    polite.disconnect();
    let (rude, _, _) = Raw::connect_with(broker.port(), will("rude", "will/rude"));
    drop(rude);
    let g = watcher.recv().publish();
    assert_eq!(
        (g.topic.as_str(), g.payload.as_slice()),
        ("will/rude", &b"gone"[..])
    );
    watcher.ack(Packet::PubAck, g.id.unwrap());
    assert!(
        watcher.try_recv(SHORT).is_none(),
        "no will after DISCONNECT"
    );
}

/// A client silent for 1.5 × keep alive is disconnected and its will sent
/// [MQTT-3.1.2-24]; any packet resets the timer.
#[test]
fn keepalive_timeout_sends_will() {
    let broker = Sim::start();
    let mut watcher = Raw::will_watcher(broker.port());
    let mut sleepy = Raw::connect_with_will(broker.port(), "sleepy", 1, b"timeout");
    // Pings keep it alive past 1.5 s.
    for _ in 0..3 {
        broker.advance(Duration::from_millis(700));
        sleepy.send(&Packet::PingReq);
        assert!(matches!(sleepy.recv().packet(), Packet::PingResp));
    }
    assert!(watcher.try_recv(Duration::from_millis(100)).is_none());
    assert!(sleepy.is_closed_within(Duration::from_secs(3)));
    assert_eq!(watcher.recv().publish().payload, b"timeout");
}

/// Clean session 0: subscriptions survive, QoS 1/2 messages queue while
/// offline and arrive in order on reconnect with session present
/// [MQTT-3.1.2-4], [MQTT-3.2.2-2]; QoS 0 is not queued.
#[test]
fn persistent_session_queues_while_offline() {
    let broker = Sim::start();
    let (mut sub, present) = Raw::connect(broker.port(), "umqtt", false);
    assert!(!present);
    sub.subscribe(&[("q/#", QoS::ExactlyOnce)]);
    sub.disconnect();
    let (mut publ, _) = Raw::connect(broker.port(), "pub", true);
    publ.publish_acked("q/a", b"1", QoS::AtLeastOnce, false, 1);
    publ.publish_acked("q/b", b"zero", QoS::AtMostOnce, false, 0);
    publ.publish_acked("q/c", b"2", QoS::ExactlyOnce, false, 2);
    publ.publish_acked("q/d", b"3", QoS::AtLeastOnce, false, 3);
    broker.advance(Duration::from_millis(100));
    let (mut sub, present) = Raw::connect(broker.port(), "umqtt", false);
    assert!(present, "session present [MQTT-3.2.2-2]");
    let payloads: Vec<Vec<u8>> = (0..3)
        .map(|_| {
            let g = sub.recv().publish();
            match g.qos {
                QoS::AtLeastOnce => sub.ack(Packet::PubAck, g.id.unwrap()),
                _ => sub.ack(Packet::PubRec, g.id.unwrap()),
            }
            g.payload
        })
        .collect();
    assert_eq!(payloads, vec![b"1".to_vec(), b"2".to_vec(), b"3".to_vec()]);
    assert!(matches!(sub.recv().packet(), Packet::PubRel(_)));
    assert!(sub.try_recv(SHORT).is_none(), "QoS 0 was not queued");
}

/// Unacknowledged messages are re-sent with DUP set when the session resumes
/// [MQTT-4.4.0-1], [MQTT-3.3.1-1].
#[test]
fn unacked_messages_resent_with_dup_on_resume() {
    let broker = Sim::start();
    let (mut sub, _) = Raw::connect(broker.port(), "resume", false);
    sub.subscribe(&[("d", QoS::AtLeastOnce)]);
    let (mut publ, _) = Raw::connect(broker.port(), "pub", true);
    publ.publish_acked("d", b"again", QoS::AtLeastOnce, false, 9);
    let first = sub.recv().publish();
    assert!(!first.dup);
    drop(sub); // no PUBACK
    broker.advance(Duration::from_millis(200));
    let (mut sub, present) = Raw::connect(broker.port(), "resume", false);
    assert!(present);
    let again = sub.recv().publish();
    assert_eq!(
        (again.payload.as_slice(), again.dup, again.id),
        (&b"again"[..], true, first.id)
    );
}

/// Clean session 1 discards the previous session [MQTT-3.1.2-6].
#[test]
fn clean_session_discards_state() {
    let broker = Sim::start();
    let (mut sub, _) = Raw::connect(broker.port(), "c", false);
    sub.subscribe(&[("z", QoS::AtLeastOnce)]);
    sub.disconnect();
    let (mut sub, present) = Raw::connect(broker.port(), "c", true);
    assert!(!present);
    let (mut publ, _) = Raw::connect(broker.port(), "pub", true);
    publ.publish_acked("z", b"x", QoS::AtLeastOnce, false, 1);
    assert!(sub.try_recv(SHORT).is_none(), "old subscription gone");
}

/// Wildcards: `+` and `#` match, but never a `$` topic at the first level
/// [MQTT-4.7.2-1]; overlapping subscriptions give one copy at the highest
/// QoS [MQTT-3.3.5-1].
#[test]
fn wildcards_dollar_topics_and_overlap() {
    let broker = Sim::start();
    let (mut sub, _) = Raw::connect(broker.port(), "sub", true);
    assert_eq!(
        sub.subscribe(&[
            ("#", QoS::AtMostOnce),
            ("a/+", QoS::AtLeastOnce),
            ("a/b", QoS::AtMostOnce)
        ]),
        vec![0, 1, 0]
    );
    let (mut publ, _) = Raw::connect(broker.port(), "pub", true);
    publ.publish_acked("$SYS/x", b"no", QoS::AtMostOnce, false, 0);
    publ.publish_acked("a/b", b"one copy", QoS::ExactlyOnce, false, 4);
    let g = sub.recv().publish();
    assert_eq!((g.topic.as_str(), g.qos), ("a/b", QoS::AtLeastOnce));
    sub.ack(Packet::PubAck, g.id.unwrap());
    assert!(sub.try_recv(SHORT).is_none(), "one copy only, no $SYS");
}

/// Unsubscribe stops delivery and is acknowledged [MQTT-3.10.4-1], [MQTT-3.10.4-4].
#[test]
fn unsubscribe_stops_delivery() {
    let broker = Sim::start();
    let (mut sub, _) = Raw::connect(broker.port(), "sub", true);
    sub.subscribe(&[("u", QoS::AtMostOnce)]);
    sub.send(&Packet::Unsubscribe(culex_codec::packet::Unsubscribe {
        packet_id: crate::testing::raw::pid(3),
        properties: Default::default(),
        filters: culex_codec::Seq::Items(&[culex_codec::topic::TopicFilter::new("u").unwrap()]),
    }));
    assert!(matches!(sub.recv().packet(), Packet::UnsubAck(a) if a.packet_id.get() == 3));
    let (mut publ, _) = Raw::connect(broker.port(), "pub", true);
    publ.publish_acked("u", b"x", QoS::AtMostOnce, false, 0);
    assert!(sub.try_recv(SHORT).is_none());
}

/// `max_queued_messages`: the offline queue holds that many, the rest is dropped.
#[test]
fn max_queued_messages_limits_offline_queue() {
    let mut config = local_config();
    config.limits.max_queued_messages = Some(2);
    let broker = Sim::start_with(config);
    let (mut sub, _) = Raw::connect(broker.port(), "slow", false);
    sub.subscribe(&[("m", QoS::AtLeastOnce)]);
    sub.disconnect();
    let (mut publ, _) = Raw::connect(broker.port(), "pub", true);
    for i in 1..=5u16 {
        publ.publish_acked("m", format!("{i}").as_bytes(), QoS::AtLeastOnce, false, i);
    }
    broker.advance(Duration::from_millis(100));
    let (mut sub, _) = Raw::connect(broker.port(), "slow", false);
    let a = sub.recv().publish();
    let b = sub.recv().publish();
    assert_eq!((a.payload, b.payload), (b"1".to_vec(), b"2".to_vec()));
    assert!(sub.try_recv(SHORT).is_none());
}

/// `max_inflight_messages`: no more unacknowledged messages than the window.
#[test]
fn max_inflight_messages_window() {
    let mut config = local_config();
    config.limits.max_inflight_messages = Some(2);
    let broker = Sim::start_with(config);
    let (mut sub, _) = Raw::connect(broker.port(), "sub", true);
    sub.subscribe(&[("w", QoS::AtLeastOnce)]);
    let (mut publ, _) = Raw::connect(broker.port(), "pub", true);
    for i in 1..=4u16 {
        publ.publish_acked("w", format!("{i}").as_bytes(), QoS::AtLeastOnce, false, i);
    }
    let a = sub.recv().publish();
    let _b = sub.recv().publish();
    assert!(sub.try_recv(SHORT).is_none(), "window of 2 full");
    sub.ack(Packet::PubAck, a.id.unwrap());
    assert_eq!(sub.recv().publish().payload, b"3");
}

/// `max_qos 1`: subscriptions are granted at most QoS 1.
#[test]
fn max_qos_caps_granted_qos() {
    let mut config = local_config();
    config.limits.max_qos = QoS::AtLeastOnce;
    let broker = Sim::start_with(config);
    let (mut sub, _) = Raw::connect(broker.port(), "sub", true);
    assert_eq!(sub.subscribe(&[("q", QoS::ExactlyOnce)]), vec![1]);
}

/// `message_size_limit`: larger payloads are dropped (and still acknowledged in 3.1.1).
#[test]
fn message_size_limit_drops_large_payloads() {
    let mut config = local_config();
    config.limits.message_size_limit = Some(4);
    let broker = Sim::start_with(config);
    let (mut sub, _) = Raw::connect(broker.port(), "sub", true);
    sub.subscribe(&[("s", QoS::AtMostOnce)]);
    let (mut publ, _) = Raw::connect(broker.port(), "pub", true);
    publ.publish_acked("s", b"too long", QoS::AtLeastOnce, false, 1);
    publ.publish_acked("s", b"ok", QoS::AtLeastOnce, false, 2);
    assert_eq!(sub.recv().publish().payload, b"ok");
}

/// `allow_zero_length_clientid false`: an empty id is refused with code 2.
#[test]
fn zero_length_client_id_can_be_forbidden() {
    let mut config = local_config();
    config.security.allow_zero_length_clientid = false;
    let broker = Sim::start_with(config);
    let (_c, _, reason) = Raw::connect_with(broker.port(), ConnectOpts::default());
    assert_eq!(reason.to_v3_connack(), 2);
}

/// `allow_anonymous false` without credentials: CONNACK 5 (not authorised).
#[test]
fn anonymous_refused_with_code_5() {
    let mut config = local_config();
    config.security.allow_anonymous = false;
    let broker = Sim::start_with(config);
    let (mut c, _, reason) = Raw::connect_with(
        broker.port(),
        ConnectOpts {
            client_id: "anon",
            ..ConnectOpts::default()
        },
    );
    assert_eq!(reason.to_v3_connack(), 5);
    assert!(c.is_closed_within(Duration::from_secs(2)));
}

/// Shared subscriptions (`$share/GROUP/FILTER`, also for 3.1.1 clients): each
/// message goes to one member of the group [MQTT 5.0, 4.8.2], round-robin;
/// a plain subscriber still gets every message.
#[test]
fn shared_subscription_delivers_to_one_member() {
    let broker = Sim::start();
    let (mut a, _) = Raw::connect(broker.port(), "member-a", true);
    let (mut b, _) = Raw::connect(broker.port(), "member-b", true);
    assert_eq!(
        a.subscribe(&[("$share/g/jobs/+", QoS::AtMostOnce)]),
        vec![0]
    );
    assert_eq!(
        b.subscribe(&[("$share/g/jobs/+", QoS::AtMostOnce)]),
        vec![0]
    );
    let (mut all, _) = Raw::connect(broker.port(), "all", true);
    all.subscribe(&[("jobs/+", QoS::AtMostOnce)]);
    let (mut publ, _) = Raw::connect(broker.port(), "pub", true);
    for i in 0..10 {
        publ.publish_acked(
            "jobs/x",
            format!("{i}").as_bytes(),
            QoS::AtMostOnce,
            false,
            0,
        );
    }
    let count = |c: &mut Raw| std::iter::from_fn(|| c.try_recv(SHORT)).count();
    let (na, nb, nall) = (count(&mut a), count(&mut b), count(&mut all));
    assert_eq!(na + nb, 10, "each message to one member");
    assert_eq!((na, nb), (5, 5), "round-robin");
    assert_eq!(nall, 10);
}

/// The unacknowledged messages of a member that leaves go to the others [MQTT 5.0, 4.8.2].
#[test]
fn shared_subscription_member_leaving_hands_over_messages() {
    let broker = Sim::start();
    let (mut a, _) = Raw::connect(broker.port(), "leaver", true);
    let (mut b, _) = Raw::connect(broker.port(), "stayer", true);
    a.subscribe(&[("$share/g/w", QoS::AtLeastOnce)]);
    b.subscribe(&[("$share/g/w", QoS::AtLeastOnce)]);
    let (mut publ, _) = Raw::connect(broker.port(), "pub", true);
    for i in 1..=4u16 {
        publ.publish_acked("w", format!("{i}").as_bytes(), QoS::AtLeastOnce, false, i);
    }
    let mut got_b = Vec::new();
    while let Some(f) = b.try_recv(SHORT) {
        let g = f.publish();
        b.ack(Packet::PubAck, g.id.unwrap());
        got_b.push(g.payload);
    }
    let a_got = std::iter::from_fn(|| a.try_recv(SHORT)).count();
    assert_eq!(a_got + got_b.len(), 4);
    assert!(a_got > 0);
    drop(a); // leaves without acknowledging
    for _ in 0..a_got {
        let g = b.recv().publish();
        b.ack(Packet::PubAck, g.id.unwrap());
        got_b.push(g.payload);
    }
    got_b.sort();
    assert_eq!(
        got_b,
        vec![b"1".to_vec(), b"2".to_vec(), b"3".to_vec(), b"4".to_vec()]
    );
}

/// A protocol violation closes the connection and publishes the will
/// [MQTT-3.1.2-8]: here a second CONNECT [MQTT-3.1.0-2].
#[test]
fn will_on_protocol_violation() {
    let broker = Sim::start();
    let mut watcher = Raw::will_watcher(broker.port());
    let mut bad = Raw::connect_with_will(broker.port(), "violator", 60, b"broke the rules");
    bad.send_raw(&[
        0x10, 0x0d, 0, 4, b'M', b'Q', b'T', b'T', 4, 2, 0, 60, 0, 1, b'x',
    ]);
    assert!(bad.is_closed_within(Duration::from_secs(2)));
    assert_eq!(watcher.recv().publish().payload, b"broke the rules");
}
