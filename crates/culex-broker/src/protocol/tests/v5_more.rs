//! More MQTT 5.0 behaviour: retain handling, retained messages and shared
//! subscriptions, the client's Receive Maximum, session expiry changed on
//! DISCONNECT, `persistent_client_expiration`, DISCONNECT 0x81 for malformed
//! packets and message expiry of queued messages.

use std::time::Duration;

use super::Sim;
use crate::testing::local_config;
use culex_codec::packet::{Disconnect, Publish, Subscribe, Unsubscribe};
use culex_codec::topic::{TopicFilter, TopicName};
use culex_codec::{
    Packet, Properties, Protocol, QoS, ReasonCode, RetainHandling, Seq, SubscriptionOptions,
};

use super::Raw;
use crate::testing::raw::{pid, ConnectOpts};

const QUIET: Duration = Duration::from_millis(300);

/// Connects a 5.0 client that must be accepted; returns it and Session Present.
fn connect5(port: u16, client_id: &str, clean: bool, properties: Properties<'_>) -> (Raw, bool) {
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
    (c, present)
}

fn expiry(secs: u32) -> Properties<'static> {
    Properties {
        session_expiry_interval: Some(secs),
        ..Properties::default()
    }
}

/// Subscribes to one filter and waits for the SUBACK.
fn subscribe(c: &mut Raw, filter: &str, options: SubscriptionOptions) {
    let list = [(TopicFilter::new(filter).unwrap(), options)];
    c.send(&Packet::Subscribe(Subscribe {
        packet_id: pid(1),
        properties: Properties::default(),
        filters: Seq::Items(&list),
    }));
    assert!(matches!(c.recv().packet(), Packet::SubAck(_)));
}

fn handling(qos: QoS, retain_handling: RetainHandling) -> SubscriptionOptions {
    SubscriptionOptions {
        qos,
        retain_handling,
        ..SubscriptionOptions::default()
    }
}

/// Sends DISCONNECT and waits for the close, so the session is detached.
fn go_offline(mut c: Raw, properties: Properties<'_>) {
    c.send(&Packet::Disconnect(Disconnect {
        reason: ReasonCode::Success,
        properties,
    }));
    assert!(
        c.is_closed_within(Duration::from_secs(5)),
        "broker closed it"
    );
}

/// Expects a DISCONNECT with `reason`, then the close.
fn expect_disconnect(c: &mut Raw, reason: ReasonCode) {
    match c.recv().packet() {
        Packet::Disconnect(d) => assert_eq!(d.reason, reason),
        other => panic!("expected DISCONNECT, got {other:?}"),
    }
    assert!(
        c.is_closed_within(Duration::from_secs(2)),
        "closed after DISCONNECT"
    );
}

/// Retain Handling 0 sends the retained messages at every subscribe
/// [MQTT-3.3.1-9], 1 only when the subscription did not exist
/// [MQTT-3.3.1-10], 2 never [MQTT-3.3.1-11].
#[test]
fn retain_handling_0_1_2() {
    let broker = Sim::start();
    let port = broker.port();
    let (mut publ, _) = connect5(port, "rh-pub", true, Properties::default());
    publ.publish_acked("rh/t", b"kept", QoS::AtLeastOnce, true, 1);
    let (mut sub, _) = connect5(port, "rh-sub", true, Properties::default());
    let retained = |c: &mut Raw| {
        let g = c.try_recv(QUIET).map(|f| f.publish());
        if let Some(g) = &g {
            assert_eq!(
                (g.topic.as_str(), g.payload.as_slice(), g.retain),
                ("rh/t", &b"kept"[..], true)
            );
        }
        g.is_some()
    };
    let send = RetainHandling::SendAtSubscribe;
    subscribe(&mut sub, "rh/t", handling(QoS::AtMostOnce, send));
    assert!(retained(&mut sub), "0: new subscription");
    subscribe(&mut sub, "rh/t", handling(QoS::AtMostOnce, send));
    assert!(retained(&mut sub), "0: existing subscription");
    let if_new = RetainHandling::SendIfNew;
    subscribe(&mut sub, "rh/+", handling(QoS::AtMostOnce, if_new));
    assert!(retained(&mut sub), "1: new subscription");
    subscribe(&mut sub, "rh/+", handling(QoS::AtMostOnce, if_new));
    assert!(!retained(&mut sub), "1: existing subscription");
    let never = RetainHandling::DoNotSend;
    subscribe(&mut sub, "rh/#", handling(QoS::AtMostOnce, never));
    assert!(!retained(&mut sub), "2: new subscription");
    subscribe(&mut sub, "rh/#", handling(QoS::AtMostOnce, never));
    assert!(!retained(&mut sub), "2: existing subscription");
}

/// Retained messages are not sent when a Session establishes a Shared
/// Subscription [MQTT 5.0, 4.8.2], neither to a 5.0 nor to a 3.1.1 client;
/// new messages do arrive through it.
#[test]
fn no_retained_on_shared_subscription() {
    let broker = Sim::start();
    let port = broker.port();
    let (mut publ, _) = Raw::connect(port, "shr-pub", true);
    publ.publish_acked("shr/t", b"old", QoS::AtLeastOnce, true, 1);
    let (mut five, _) = connect5(port, "shr-5", true, Properties::default());
    subscribe(
        &mut five,
        "$share/g5/shr/t",
        handling(QoS::AtMostOnce, RetainHandling::SendAtSubscribe),
    );
    assert!(five.try_recv(QUIET).is_none(), "5.0: no retained message");
    let (mut three, _) = Raw::connect(port, "shr-3", true);
    assert_eq!(
        three.subscribe(&[("$share/g3/shr/t", QoS::AtMostOnce)]),
        vec![0]
    );
    assert!(
        three.try_recv(QUIET).is_none(),
        "3.1.1: no retained message"
    );
    // A plain subscription does get it: the message is there.
    let (mut plain, _) = Raw::connect(port, "shr-plain", true);
    plain.subscribe(&[("shr/t", QoS::AtMostOnce)]);
    assert_eq!(plain.recv().publish().payload, b"old");
    publ.publish_acked("shr/t", b"new", QoS::AtLeastOnce, false, 2);
    assert_eq!(five.recv().publish().payload, b"new");
    assert_eq!(three.recv().publish().payload, b"new");
}

/// The server never has more unacknowledged QoS 1 PUBLISHes towards a client
/// than the client's Receive Maximum [MQTT-3.3.4-9]; the rest follow as
/// PUBACKs come back, in order.
#[test]
fn client_receive_maximum_limits_inflight() {
    let broker = Sim::start();
    let port = broker.port();
    let properties = Properties {
        receive_maximum: Some(2),
        ..Properties::default()
    };
    let (mut sub, _) = connect5(port, "rm-sub", true, properties);
    subscribe(
        &mut sub,
        "rm/t",
        handling(QoS::AtLeastOnce, RetainHandling::SendAtSubscribe),
    );
    let (mut publ, _) = connect5(port, "rm-pub", true, Properties::default());
    for i in 0..5u16 {
        publ.publish_acked(
            "rm/t",
            format!("{i}").as_bytes(),
            QoS::AtLeastOnce,
            false,
            i + 1,
        );
    }
    let mut got = Vec::new();
    let mut window = Vec::new();
    for _ in 0..2 {
        let g = sub.recv().publish();
        assert_eq!(g.qos, QoS::AtLeastOnce);
        window.push(g.id.unwrap());
        got.push(g.payload);
    }
    assert!(sub.try_recv(QUIET).is_none(), "a third before any PUBACK");
    for _ in 0..3 {
        let id = window.remove(0);
        sub.ack(Packet::PubAck, id);
        let g = sub.recv().publish();
        window.push(g.id.unwrap());
        got.push(g.payload);
        assert!(sub.try_recv(QUIET).is_none(), "at most 2 in flight");
    }
    let want: Vec<Vec<u8>> = (0..5).map(|i| format!("{i}").into_bytes()).collect();
    assert_eq!(got, want);
}

/// A client that connected with Session Expiry Interval 0 may not set a
/// non-zero one on DISCONNECT: a protocol error, DISCONNECT 0x82 (5.0
/// §3.14.2.2.2, a sentence without a rule number).
#[test]
fn disconnect_cannot_revive_zero_expiry() {
    let broker = Sim::start();
    let (mut c, _) = connect5(broker.port(), "zero", true, Properties::default());
    c.send(&Packet::Disconnect(Disconnect {
        reason: ReasonCode::Success,
        properties: expiry(60),
    }));
    expect_disconnect(&mut c, ReasonCode::ProtocolError);
    let (_c, present) = connect5(broker.port(), "zero", false, expiry(60));
    assert!(!present, "the session ended with the connection");
}

/// A Session Expiry Interval sent on DISCONNECT replaces the one from
/// CONNECT [MQTT 5.0, 3.14.2.2.2]: shortened to 1 s the session is gone
/// after 2.5 s, lengthened from 1 s to 60 s it is still there.
#[test]
fn disconnect_changes_session_expiry() {
    let broker = Sim::start();
    let port = broker.port();
    let (shorter, _) = connect5(port, "shorter", true, expiry(60));
    go_offline(shorter, expiry(1));
    let (longer, _) = connect5(port, "longer", true, expiry(1));
    go_offline(longer, expiry(60));
    broker.advance(Duration::from_millis(2500));
    let (_a, present) = connect5(port, "shorter", false, expiry(60));
    assert!(!present, "expired after the DISCONNECT's 1 s");
    let (_b, present) = connect5(port, "longer", false, expiry(60));
    assert!(present, "kept for the DISCONNECT's 60 s");
}

/// A 3.1.1 clean-session-0 session: kept without `persistent_client_expiration`,
/// gone (no session present, no queued message) once that much time passed
/// after the disconnect.
#[test]
fn persistent_client_expiration_ends_3_1_1_sessions() {
    let mut config = local_config();
    config.persistent_client_expiration = Some(Duration::from_secs(1));
    let expiring = Sim::start_with(config);
    let forever = Sim::start();
    for broker in [&expiring, &forever] {
        let (mut c, _) = Raw::connect(broker.port(), "pce", false);
        c.subscribe(&[("pce/t", QoS::AtLeastOnce)]);
        go_offline(c, Properties::default());
        let (mut publ, _) = Raw::connect(broker.port(), "pce-pub", true);
        publ.publish_acked("pce/t", b"queued", QoS::AtLeastOnce, false, 1);
    }
    expiring.advance(Duration::from_millis(2500));
    forever.advance(Duration::from_millis(2500));
    let (mut c, present) = Raw::connect(expiring.port(), "pce", false);
    assert!(!present, "expired");
    assert!(c.try_recv(QUIET).is_none(), "nothing queued survives");
    let (mut c, present) = Raw::connect(forever.port(), "pce", false);
    assert!(present, "never expires without the option");
    assert_eq!(c.recv().publish().payload, b"queued");
}

/// A malformed packet from a 5.0 client is answered with DISCONNECT 0x81
/// before the close [MQTT-4.13.1-1]: a PUBLISH with QoS 3
/// [MQTT-3.3.1-4] and one whose topic is not UTF-8 [MQTT-1.5.4-1]. A 3.1.1
/// client's connection is simply closed.
#[test]
fn malformed_packet_disconnect_0x81() {
    let broker = Sim::start();
    let port = broker.port();
    // PUBLISH, QoS bits 11, topic "a", packet id 1, no properties.
    let qos3 = [0x36, 0x06, 0x00, 0x01, b'a', 0x00, 0x01, 0x00];
    // PUBLISH QoS 0, topic 0xFF 0xFE, no properties.
    let bad_utf8 = [0x30, 0x05, 0x00, 0x02, 0xff, 0xfe, 0x00];
    for (id, bytes) in [("m-qos3", &qos3[..]), ("m-utf8", &bad_utf8[..])] {
        let (mut c, _) = connect5(port, id, true, Properties::default());
        c.send_raw(bytes);
        expect_disconnect(&mut c, ReasonCode::MalformedPacket);
    }
    let qos3_v311 = [0x36, 0x05, 0x00, 0x01, b'a', 0x00, 0x01];
    let (mut c, _) = Raw::connect(port, "m-311", true);
    c.send_raw(&qos3_v311);
    assert!(
        c.try_recv(Duration::from_secs(2)).is_none(),
        "no packet back"
    );
    assert!(c.is_closed_within(Duration::from_secs(2)));
}

/// A queued message whose Message Expiry Interval passes while its session
/// is offline is not delivered [MQTT-3.3.2-5]; one without expiry is.
#[test]
fn queued_message_expires() {
    let broker = Sim::start();
    let port = broker.port();
    let (mut c, _) = connect5(port, "mx", true, expiry(60));
    subscribe(
        &mut c,
        "mx/t",
        handling(QoS::AtLeastOnce, RetainHandling::SendAtSubscribe),
    );
    go_offline(c, Properties::default());
    let (mut publ, _) = connect5(port, "mx-pub", true, Properties::default());
    for (i, (payload, secs)) in [(&b"short"[..], Some(1)), (&b"long"[..], None)]
        .into_iter()
        .enumerate()
    {
        publ.send(&Packet::Publish(Publish {
            dup: false,
            qos: QoS::AtLeastOnce,
            retain: false,
            topic: TopicName::new("mx/t").unwrap(),
            packet_id: Some(pid(i as u16 + 1)),
            properties: Properties {
                message_expiry_interval: secs,
                ..Properties::default()
            },
            payload,
        }));
        assert!(matches!(publ.recv().packet(), Packet::PubAck(_)));
    }
    broker.advance(Duration::from_millis(2200));
    let (mut c, present) = connect5(port, "mx", false, expiry(60));
    assert!(present);
    assert_eq!(c.recv().publish().payload, b"long");
    assert!(c.try_recv(QUIET).is_none(), "the expired one is dropped");
}

/// Sends UNSUBSCRIBE for one filter and waits for the UNSUBACK.
fn unsubscribe(c: &mut Raw, filter: &str) {
    let list = [TopicFilter::new(filter).unwrap()];
    c.send(&Packet::Unsubscribe(Unsubscribe {
        packet_id: pid(2),
        properties: Properties::default(),
        filters: Seq::Items(&list),
    }));
    assert!(matches!(c.recv().packet(), Packet::UnsubAck(_)));
}

/// UNSUBSCRIBE of a `$share/GROUP/FILTER` removes that shared subscription
/// and only it [MQTT-3.10.4-1]: the same client's plain subscription to the
/// filter keeps delivering (at its own QoS 0), the shared one (QoS 1) stops.
#[test]
fn unsubscribe_shared_subscription() {
    let broker = Sim::start();
    let port = broker.port();
    let (mut c, _) = connect5(port, "us-sub", true, Properties::default());
    let send = RetainHandling::SendAtSubscribe;
    subscribe(&mut c, "us/t", handling(QoS::AtMostOnce, send));
    subscribe(&mut c, "$share/g/us/t", handling(QoS::AtLeastOnce, send));
    unsubscribe(&mut c, "$share/g/us/t");
    let (mut publ, _) = connect5(port, "us-pub", true, Properties::default());
    publ.publish_acked("us/t", b"x", QoS::AtLeastOnce, false, 1);
    let g = c.recv().publish();
    assert_eq!(g.qos, QoS::AtMostOnce, "through the plain subscription");
    assert!(c.try_recv(QUIET).is_none(), "not through the shared one");
    unsubscribe(&mut c, "us/t");
    publ.publish_acked("us/t", b"y", QoS::AtLeastOnce, false, 2);
    assert!(c.try_recv(QUIET).is_none(), "no subscription left");
}

/// On a listener with a `mount_point`, UNSUBSCRIBE removes the mounted
/// subscription [MQTT-3.10.4-1].
#[test]
fn unsubscribe_under_mount_point() {
    let mut config = local_config();
    config.listeners[0].mount_point = Some("site1/".into());
    let broker = Sim::start_with(config);
    let (mut c, _) = connect5(broker.port(), "mp-sub", true, Properties::default());
    let send = RetainHandling::SendAtSubscribe;
    subscribe(&mut c, "cmd", handling(QoS::AtMostOnce, send));
    let (mut publ, _) = connect5(broker.port(), "mp-pub", true, Properties::default());
    publ.publish_acked("cmd", b"1", QoS::AtLeastOnce, false, 1);
    assert_eq!(c.recv().publish().payload, b"1");
    unsubscribe(&mut c, "cmd");
    publ.publish_acked("cmd", b"2", QoS::AtLeastOnce, false, 2);
    assert!(c.try_recv(QUIET).is_none(), "unsubscribed");
}

/// Clean Start discards the previous session [MQTT-3.1.2-4], its shared
/// subscriptions included: the client no longer receives through them.
#[test]
fn clean_start_drops_shared_subscriptions() {
    let broker = Sim::start();
    let port = broker.port();
    let (mut c, _) = Raw::connect(port, "cs-sub", false);
    c.subscribe(&[
        ("$share/g/cs/t", QoS::AtLeastOnce),
        ("cs/t", QoS::AtLeastOnce),
    ]);
    go_offline(c, Properties::default());
    let (mut c, present) = Raw::connect(port, "cs-sub", true);
    assert!(!present);
    let (mut publ, _) = Raw::connect(port, "cs-pub", true);
    publ.publish_acked("cs/t", b"x", QoS::AtLeastOnce, false, 1);
    assert!(c.try_recv(QUIET).is_none(), "no subscription survives");
}

/// For QoS 2 the Receive Maximum quota comes back only with PUBCOMP
/// [MQTT-3.3.4-9], [MQTT 5.0, 4.9]: after PUBREC the next PUBLISH still waits.
#[test]
fn client_receive_maximum_qos2_waits_for_pubcomp() {
    let broker = Sim::start();
    let port = broker.port();
    let properties = Properties {
        receive_maximum: Some(1),
        ..Properties::default()
    };
    let (mut sub, _) = connect5(port, "rm2-sub", true, properties);
    subscribe(
        &mut sub,
        "rm2/t",
        handling(QoS::ExactlyOnce, RetainHandling::SendAtSubscribe),
    );
    let (mut publ, _) = connect5(port, "rm2-pub", true, Properties::default());
    publ.publish_acked("rm2/t", b"1", QoS::ExactlyOnce, false, 1);
    publ.publish_acked("rm2/t", b"2", QoS::ExactlyOnce, false, 2);
    let first = sub.recv().publish();
    assert_eq!(
        (first.payload.as_slice(), first.qos),
        (&b"1"[..], QoS::ExactlyOnce)
    );
    let id = first.id.unwrap();
    assert!(sub.try_recv(QUIET).is_none(), "one in flight");
    sub.ack(Packet::PubRec, id);
    assert!(matches!(sub.recv().packet(), Packet::PubRel(r) if r.packet_id.get() == id));
    assert!(
        sub.try_recv(QUIET).is_none(),
        "still in flight until PUBCOMP"
    );
    sub.ack(Packet::PubComp, id);
    assert_eq!(sub.recv().publish().payload, b"2");
}
