//! Issue 15: what an attacker or a careful operator found, each defect
//! reproduced over real sockets.

use std::time::{Duration, Instant};

use culex_broker::testing::{local_config, BrokerThread};
use culex_codec::packet::Publish;
use culex_codec::topic::TopicName;
use culex_codec::{Packet, Properties, Protocol, QoS, ReasonCode};

use crate::client::{ConnectOpts, Raw};

const SHORT: Duration = Duration::from_millis(300);

fn v5(port: u16, client_id: &str) -> Raw {
    let (c, _, reason) = Raw::connect_with(
        port,
        ConnectOpts {
            client_id,
            protocol: Protocol::V5,
            ..ConnectOpts::default()
        },
    );
    assert_eq!(reason, ReasonCode::Success);
    c
}

/// A topic of `levels` levels, all empty but the last.
fn deep(levels: usize) -> String {
    let mut t = "/".repeat(levels - 1);
    t.push('x');
    t
}

/// The broker still routes between two fresh clients.
fn still_serves(port: u16) {
    let (mut sub, _) = Raw::connect(port, "alive-sub", true);
    sub.subscribe(&[("alive", QoS::AtMostOnce)]);
    let (mut publ, _) = Raw::connect(port, "alive-pub", true);
    publ.publish("alive", b"yes", QoS::AtMostOnce, false, 0);
    assert_eq!(sub.recv().publish().payload, b"yes");
}

/// 15.1: a filter and a topic of 10,000 levels once overflowed the stack
/// of a worker thread and aborted the broker. Past `max_topic_levels`
/// (200, mosquitto's limit) a filter gets 0x8F in its SUBACK and a PUBLISH
/// closes the connection with 0x90; at the limit both work.
#[test]
fn topics_past_the_level_limit_are_refused_and_the_broker_survives() {
    let broker = BrokerThread::start();
    let port = broker.port();
    let topic = deep(10_000);

    let mut c = v5(port, "deep5");
    assert_eq!(
        c.subscribe(&[(&topic, QoS::AtMostOnce), ("ok", QoS::AtMostOnce)]),
        vec![ReasonCode::TopicFilterInvalid as u8, 0],
        "only the deep filter is refused"
    );
    c.publish(&topic, b"boom", QoS::AtMostOnce, false, 0);
    match c.recv().packet() {
        Packet::Disconnect(d) => assert_eq!(d.reason, ReasonCode::TopicNameInvalid),
        other => panic!("expected DISCONNECT 0x90, got {other:?}"),
    }
    assert!(c.is_closed_within(Duration::from_secs(3)));

    let (mut c3, _) = Raw::connect(port, "deep3", true);
    assert_eq!(c3.subscribe(&[(&topic, QoS::AtMostOnce)]), vec![0x80]);
    c3.publish(&topic, b"boom", QoS::AtMostOnce, false, 0);
    assert!(c3.is_closed_within(Duration::from_secs(3)));

    // At the limit, subscribing, retaining and delivering work.
    let at_limit = deep(200);
    let (mut sub, _) = Raw::connect(port, "limit-sub", true);
    assert_eq!(sub.subscribe(&[(&at_limit, QoS::AtMostOnce)]), vec![0]);
    let (mut publ, _) = Raw::connect(port, "limit-pub", true);
    publ.publish(&at_limit, b"deep", QoS::AtMostOnce, true, 0);
    assert_eq!(sub.recv().publish().topic, at_limit);
    still_serves(port);
}

/// 15.1, with the limit raised: a 20,000-level filter and topic go through
/// the subscription tree, the retained tree, unsubscribe and the end of the
/// session without overflowing a worker's stack (no walk recurses per level).
#[test]
fn walks_over_very_deep_topics_do_not_recurse() {
    let mut config = local_config();
    config.limits.max_topic_levels = 30_000;
    let broker = BrokerThread::start_with(config);
    let port = broker.port();
    let topic = deep(20_000);
    let plus = format!("{}/#", vec!["+"; 10_000].join("/"));

    let (mut sub, _) = Raw::connect(port, "deep-sub", true);
    assert_eq!(
        sub.subscribe(&[(&topic, QoS::AtMostOnce), (&plus, QoS::AtMostOnce)]),
        vec![0, 0]
    );
    let (mut publ, _) = Raw::connect(port, "deep-pub", true);
    publ.publish(&topic, b"deep", QoS::AtMostOnce, true, 0);
    assert_eq!(sub.recv().publish().payload, b"deep");
    // The retained message, matched by a new subscription.
    let (mut late, _) = Raw::connect(port, "deep-late", true);
    assert_eq!(late.subscribe(&[(&plus, QoS::AtMostOnce)]), vec![0]);
    assert_eq!(late.recv().publish().payload, b"deep");
    // Cleared, then every subscription goes with its session.
    publ.publish(&topic, b"", QoS::AtMostOnce, true, 0);
    assert_eq!(sub.recv().publish().payload, b"");
    drop(sub);
    drop(late);
    still_serves(port);
}

/// 15.2: every retained message matching a new subscription arrives,
/// however many there are beyond `max_queued_messages` (1000 by default):
/// at QoS 0 paced by the connection, at QoS 1 by the in-flight window.
#[test]
fn every_retained_message_arrives_on_subscribe() {
    let broker = BrokerThread::start();
    let port = broker.port();
    let (mut publ, _) = Raw::connect(port, "retainer", true);
    for i in 0..3000 {
        publ.publish(&format!("ret/{i}"), b"v", QoS::AtMostOnce, true, 0);
        publ.publish(&format!("ret1/{i}"), b"v", QoS::AtLeastOnce, true, i + 1);
    }
    for _ in 0..3000 {
        assert!(matches!(publ.recv().packet(), Packet::PubAck(_)));
    }

    let (mut sub0, _) = Raw::connect(port, "ret-sub0", true);
    sub0.subscribe(&[("ret/#", QoS::AtMostOnce)]);
    let mut seen = std::collections::HashSet::new();
    while let Some(f) = sub0.try_recv(Duration::from_secs(2)) {
        let g = f.publish();
        assert!(g.retain);
        seen.insert(g.topic);
    }
    assert_eq!(seen.len(), 3000, "QoS 0");

    let (mut sub1, _) = Raw::connect(port, "ret-sub1", true);
    sub1.subscribe(&[("ret1/#", QoS::AtLeastOnce)]);
    let mut seen = std::collections::HashSet::new();
    while let Some(f) = sub1.try_recv(Duration::from_secs(2)) {
        let g = f.publish();
        sub1.ack(Packet::PubAck, g.id.unwrap());
        seen.insert(g.topic);
    }
    assert_eq!(seen.len(), 3000, "QoS 1");
}

/// 15.4: only complete packets count as activity [MQTT-3.1.2-24]. A
/// PUBLISH sent one byte at a time does not keep a connection with keep
/// alive 1 open past 1.5 s after its last complete packet.
#[test]
fn a_trickled_packet_does_not_defeat_keep_alive() {
    let broker = BrokerThread::start();
    let (mut c, _, _) = Raw::connect_with(
        broker.port(),
        ConnectOpts {
            client_id: "trickle",
            keep_alive: 1,
            ..ConnectOpts::default()
        },
    );
    let mut frame = Vec::new();
    Packet::Publish(Publish {
        dup: false,
        qos: QoS::AtMostOnce,
        retain: false,
        topic: TopicName::new("slow").unwrap(),
        packet_id: None,
        properties: Properties::default(),
        payload: &[7; 200],
    })
    .encode(Protocol::V3_1_1, &mut frame)
    .unwrap();
    let start = Instant::now();
    let mut closed = false;
    for byte in frame.iter().take(frame.len() - 1) {
        if !c.try_send_raw(&[*byte]) || c.is_closed_within(Duration::from_millis(100)) {
            closed = true;
            break;
        }
    }
    let elapsed = start.elapsed();
    assert!(closed, "still open after {elapsed:?} of trickling");
    assert!(
        elapsed >= Duration::from_millis(1400),
        "closed too early: {elapsed:?}"
    );
    assert!(elapsed < Duration::from_secs(6), "closed late: {elapsed:?}");
}

/// 15.5: a will outside the client's ACL does not refuse the connection,
/// as in mosquitto; it is dropped (and logged) when it fires. A will the
/// ACL allows is published.
#[test]
fn a_will_outside_the_acl_is_dropped_when_it_fires() {
    let dir = tempfile::tempdir().unwrap();
    let acl = culex_testkit::write_file(
        dir.path(),
        "acl",
        "topic readwrite will/allowed\ntopic read will/#\n",
    );
    let mut config = local_config();
    config.security.acl_file = Some(acl);
    let broker = BrokerThread::start_with(config);
    let port = broker.port();
    let mut watcher = Raw::will_watcher(port);
    for (id, topic) in [("denied", "will/denied"), ("allowed", "will/allowed")] {
        let (c, _, reason) = Raw::connect_with(
            port,
            ConnectOpts {
                client_id: id,
                will: Some((topic, b"gone", QoS::AtMostOnce, false)),
                ..ConnectOpts::default()
            },
        );
        assert_eq!(reason, ReasonCode::Success, "{id} is accepted");
        drop(c);
    }
    let g = watcher.recv().publish();
    assert_eq!(g.topic, "will/allowed");
    assert!(watcher.try_recv(SHORT).is_none());
}

/// 15.6: a client that takes over its own persistent session (clean
/// session 0 both times) does not fire the old connection's will, as in
/// mosquitto; a takeover where either session is clean does [MQTT-3.1.4-3].
#[test]
fn takeover_fires_the_old_will_only_when_a_session_is_clean() {
    let broker = BrokerThread::start();
    let port = broker.port();
    let mut watcher = Raw::will_watcher(port);
    let connect = |clean: bool| {
        let (c, _, reason) = Raw::connect_with(
            port,
            ConnectOpts {
                client_id: "device",
                clean,
                will: Some(("will/device", b"offline", QoS::AtMostOnce, false)),
                ..ConnectOpts::default()
            },
        );
        assert_eq!(reason, ReasonCode::Success);
        c
    };
    let mut first = connect(false);
    let second = connect(false);
    assert!(first.is_closed_within(Duration::from_secs(3)));
    assert!(
        watcher.try_recv(SHORT).is_none(),
        "no will: both persistent"
    );
    let _third = connect(true);
    let g = watcher.recv().publish();
    assert_eq!(
        (g.topic.as_str(), &g.payload[..]),
        ("will/device", &b"offline"[..])
    );
    drop(second);
}

/// 15.7: a CONNECT with the bridge bit in its protocol level (0x84, sent by
/// mosquitto's `try_private true`) is accepted; like mosquitto, the broker
/// does not send the bridge's own messages back to it, and keeps RETAIN on
/// what it forwards to it.
#[test]
fn the_bridge_bit_is_accepted_with_bridge_semantics() {
    let broker = BrokerThread::start();
    let port = broker.port();
    let mut bridge = Raw::open(port, Protocol::V3_1_1);
    bridge.send(&Packet::Connect(culex_codec::packet::Connect {
        bridge: true,
        protocol: Protocol::V3_1_1,
        clean_start: true,
        keep_alive: 60,
        client_id: "bridge",
        will: None,
        username: None,
        password: None,
        properties: Properties::default(),
    }));
    match bridge.recv().packet() {
        Packet::ConnAck(a) => assert_eq!(a.reason, ReasonCode::Success),
        other => panic!("{other:?}"),
    }
    assert_eq!(bridge.subscribe(&[("#", QoS::AtMostOnce)]), vec![0]);
    bridge.publish("from/bridge", b"mine", QoS::AtMostOnce, false, 0);
    let (mut local, _) = Raw::connect(port, "local", true);
    local.publish("from/local", b"yours", QoS::AtMostOnce, true, 0);
    let g = bridge.recv().publish();
    assert_eq!((g.topic.as_str(), g.retain), ("from/local", true));
    assert!(
        bridge.try_recv(SHORT).is_none(),
        "its own message came back"
    );
}

/// 15.8: one QoS 2 PUBLISH past the server's Receive Maximum without PUBREL
/// is answered with DISCONNECT 0x93 [MQTT-3.3.4-7], and the client, still
/// writing (a PUBREL for an earlier PUBREC), reads it rather than a reset.
#[test]
fn receive_maximum_exceeded_is_read_by_a_client_still_writing() {
    let mut config = local_config();
    config.limits.max_inflight_messages = Some(5);
    let broker = BrokerThread::start_with(config);
    let mut c = v5(broker.port(), "greedy");
    for id in 1..=6 {
        c.publish("q2", b"x", QoS::ExactlyOnce, false, id);
    }
    std::thread::sleep(Duration::from_millis(200));
    // The client goes on as if nothing happened.
    c.ack(Packet::PubRel, 1);
    let mut pubrecs = 0;
    loop {
        let f = c
            .try_recv(Duration::from_secs(3))
            .expect("DISCONNECT 0x93 before the connection closes");
        match f.packet() {
            Packet::PubRec(_) => pubrecs += 1,
            Packet::Disconnect(d) => {
                assert_eq!(d.reason, ReasonCode::ReceiveMaximumExceeded);
                break;
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(pubrecs, 5);
    assert!(c.is_closed_within(Duration::from_secs(3)));
}

/// The CONNACK bytes a 5.0 CONNECT as `same-id` gets.
fn connack_bytes(port: u16, keep_alive: u16, properties: Properties<'_>) -> Vec<u8> {
    let mut c = Raw::open(port, Protocol::V5);
    c.send(&Packet::Connect(culex_codec::packet::Connect {
        bridge: false,
        protocol: Protocol::V5,
        clean_start: true,
        keep_alive,
        client_id: "same-id",
        will: None,
        username: None,
        password: None,
        properties,
    }));
    c.recv().0
}

/// 15.9: a 5.0 CONNACK carries its properties in mosquitto's order, byte
/// for byte the same as mosquitto 2.0's for the same settings and CONNECT.
#[test]
fn connack_bytes_match_mosquitto() {
    for settings in [
        "",
        "max_inflight_messages 10\nmax_packet_size 1000\nmax_qos 1\n\
         retain_available false\nmax_keepalive 30\n",
    ] {
        let mosquitto = culex_testkit::Mosquitto::start(settings);
        let dir = tempfile::tempdir().unwrap();
        let conf = culex_testkit::write_file(
            dir.path(),
            "culex.conf",
            &format!("listener 0 127.0.0.1\nallow_anonymous true\n{settings}"),
        );
        let config = culex_broker::config::Config::from_file(&conf, &[]).unwrap();
        let broker = BrokerThread::start_with(config);
        for (keep_alive, receive_maximum) in [(60, None), (0, Some(5)), (10, None)] {
            let properties = Properties {
                receive_maximum,
                topic_alias_maximum: Some(4),
                ..Properties::default()
            };
            assert_eq!(
                connack_bytes(broker.port(), keep_alive, properties),
                connack_bytes(mosquitto.port, keep_alive, properties),
                "keep alive {keep_alive}, settings {settings:?}"
            );
        }
    }
}

/// Brute force: after three failed logins in a row from one address, its
/// attempts take turns (0.5 s, then doubling); other addresses, and a
/// successful login, are not slowed.
#[test]
fn failed_logins_back_off_per_address() {
    let dir = tempfile::tempdir().unwrap();
    let hash = culex_broker::auth::password::PasswordHash::generate(b"secret");
    let passwords = culex_testkit::write_file(dir.path(), "passwords", &format!("alice:{hash}\n"));
    let mut config = local_config();
    config.security.allow_anonymous = false;
    config.security.password_file = Some(passwords);
    let broker = BrokerThread::start_with(config);
    let port = broker.port();
    let attempt = |password: &[u8]| {
        let started = Instant::now();
        let (_, _, reason) = Raw::connect_with(
            port,
            ConnectOpts {
                client_id: "guess",
                username: Some("alice"),
                password: Some(password),
                ..ConnectOpts::default()
            },
        );
        (reason, started.elapsed())
    };
    for _ in 0..3 {
        let (reason, took) = attempt(b"wrong");
        assert_eq!(reason, ReasonCode::NotAuthorized);
        assert!(took < Duration::from_millis(400), "{took:?}");
    }
    let (reason, took) = attempt(b"wrong");
    assert_eq!(reason, ReasonCode::NotAuthorized);
    assert!(
        took >= Duration::from_millis(400),
        "4th attempt not delayed: {took:?}"
    );
    let (reason, took) = attempt(b"wrong");
    assert_eq!(reason, ReasonCode::NotAuthorized);
    assert!(took >= Duration::from_millis(800), "5th attempt: {took:?}");

    // Another address logs in at once.
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket
        .bind(&std::net::SocketAddr::from(([127, 0, 0, 2], 0)).into())
        .unwrap();
    socket
        .connect(&std::net::SocketAddr::from(([127, 0, 0, 1], port)).into())
        .unwrap();
    let mut c = Raw::from_stream(socket.into(), Protocol::V3_1_1);
    let started = Instant::now();
    c.send(&Packet::Connect(culex_codec::packet::Connect {
        bridge: false,
        protocol: Protocol::V3_1_1,
        clean_start: true,
        keep_alive: 60,
        client_id: "elsewhere",
        will: None,
        username: Some("alice"),
        password: Some(b"secret"),
        properties: Properties::default(),
    }));
    match c.recv().packet() {
        Packet::ConnAck(a) => assert_eq!(a.reason, ReasonCode::Success),
        other => panic!("{other:?}"),
    }
    assert!(started.elapsed() < Duration::from_millis(400));

    // The right password from the slowed address waits its turn, then
    // clears the record: the next attempt is at once.
    let (reason, _) = attempt(b"secret");
    assert_eq!(reason, ReasonCode::Success);
    let (reason, took) = attempt(b"secret");
    assert_eq!(reason, ReasonCode::Success);
    assert!(took < Duration::from_millis(400), "{took:?}");
}
