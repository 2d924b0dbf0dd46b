//! The umqtt-shaped blocking client against Debian's mosquitto.

use std::time::{Duration, Instant};

use culex_client::blocking::{Error, MQTTClient};
use culex_client::{Protocol, QoS};

use crate::{inbox, wait_until, Kind, TestBroker};

const WAIT: Duration = Duration::from_secs(5);

fn connect_returns_session_present(kind: Kind) {
    let broker = TestBroker::start(kind, "");
    let mut c = MQTTClient::new("sp-1", "127.0.0.1").port(broker.port());
    assert!(
        !c.connect(true).unwrap(),
        "[MQTT-3.2.2-1] clean session gives session present 0"
    );
    c.disconnect().unwrap();
    assert!(!c.connect(false).unwrap());
    c.disconnect().unwrap();
    assert!(
        c.connect(false).unwrap(),
        "[MQTT-3.2.2-2] stored session is reported"
    );
    c.disconnect().unwrap();
}

fn roundtrip(kind: Kind, protocol: Protocol, sub_qos: QoS) {
    let broker = TestBroker::start(kind, "");
    let (messages, callback) = inbox();
    let name = format!("sub-{protocol:?}-{sub_qos:?}");
    let mut sub = MQTTClient::new(&name, "127.0.0.1")
        .port(broker.port())
        .protocol(protocol);
    sub.set_callback(callback);
    sub.connect(true).unwrap();
    assert_eq!(sub.subscribe("rt/#", sub_qos).unwrap(), sub_qos);
    let pname = format!("pub-{protocol:?}-{sub_qos:?}");
    let mut publisher = MQTTClient::new(&pname, "127.0.0.1")
        .port(broker.port())
        .protocol(protocol);
    publisher.connect(true).unwrap();
    for (i, qos) in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce]
        .into_iter()
        .enumerate()
    {
        publisher
            .publish(&format!("rt/{i}"), format!("m{i}").as_bytes(), false, qos)
            .unwrap();
    }
    wait_until(
        WAIT,
        || sub.wait_msg().unwrap(),
        || messages.lock().unwrap().len() >= 3,
    );
    let got = messages.lock().unwrap().clone();
    assert_eq!(
        got,
        [
            ("rt/0".to_string(), b"m0".to_vec()),
            ("rt/1".to_string(), b"m1".to_vec()),
            ("rt/2".to_string(), b"m2".to_vec())
        ]
    );
    // Nothing more arrives (QoS 2 delivered exactly once).
    std::thread::sleep(Duration::from_millis(200));
    sub.check_msg().unwrap();
    assert_eq!(messages.lock().unwrap().len(), 3);
    assert_eq!(sub.core().inflight().count(), 0);
    assert_eq!(publisher.core().inflight().count(), 0);
    publisher.disconnect().unwrap();
    sub.disconnect().unwrap();
}

fn qos_0_1_2_both_ways_v311_subscribed_at_qos2(kind: Kind) {
    roundtrip(kind, Protocol::V3_1_1, QoS::ExactlyOnce);
}

fn qos_0_1_2_publish_subscribed_at_qos1(kind: Kind) {
    roundtrip(kind, Protocol::V3_1_1, QoS::AtLeastOnce);
}

fn qos_0_1_2_both_ways_v31(kind: Kind) {
    // MQTT 3.1: protocol name MQIsdp, level 3.
    roundtrip(kind, Protocol::V3_1, QoS::ExactlyOnce);
}

fn qos_0_1_2_both_ways_v5(kind: Kind) {
    roundtrip(kind, Protocol::V5, QoS::ExactlyOnce);
}

fn check_msg_returns_at_once_when_nothing_is_pending(kind: Kind) {
    let broker = TestBroker::start(kind, "");
    let mut c = MQTTClient::new("idle", "127.0.0.1").port(broker.port());
    c.connect(true).unwrap();
    c.subscribe("nobody/publishes/here", QoS::AtMostOnce)
        .unwrap();
    let start = Instant::now();
    for _ in 0..10 {
        assert_eq!(c.check_msg().unwrap(), 0);
    }
    assert!(
        start.elapsed() < Duration::from_millis(200),
        "check_msg blocked: {:?}",
        start.elapsed()
    );
}

fn long_topics_are_encoded_correctly(kind: Kind) {
    // umqtt.simple writes the remaining length in one byte when the topic
    // is long; the shared codec writes a proper variable byte integer.
    let broker = TestBroker::start(kind, "");
    let topic = format!("long/{}", "x".repeat(300));
    let payload = vec![7u8; 70_000];
    let (messages, callback) = inbox();
    let mut c = MQTTClient::new("long", "127.0.0.1").port(broker.port());
    c.set_callback(callback);
    c.connect(true).unwrap();
    c.subscribe(&topic, QoS::AtLeastOnce).unwrap();
    c.publish(&topic, &payload, false, QoS::AtLeastOnce)
        .unwrap();
    wait_until(
        WAIT,
        || c.wait_msg().unwrap(),
        || !messages.lock().unwrap().is_empty(),
    );
    assert_eq!(messages.lock().unwrap()[0], (topic, payload));
}

fn unsubscribe_stops_delivery(kind: Kind) {
    let broker = TestBroker::start(kind, "");
    let (messages, callback) = inbox();
    let mut c = MQTTClient::new("unsub", "127.0.0.1").port(broker.port());
    c.set_callback(callback);
    c.connect(true).unwrap();
    c.subscribe("u/t", QoS::AtLeastOnce).unwrap();
    c.publish("u/t", b"1", false, QoS::AtLeastOnce).unwrap();
    wait_until(
        WAIT,
        || c.wait_msg().unwrap(),
        || messages.lock().unwrap().len() == 1,
    );
    c.unsubscribe("u/t").unwrap();
    c.publish("u/t", b"2", false, QoS::AtLeastOnce).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    c.check_msg().unwrap();
    assert_eq!(messages.lock().unwrap().len(), 1);
}

fn retained_message_is_received_with_subscribe(kind: Kind) {
    let broker = TestBroker::start(kind, "");
    let mut p = MQTTClient::new("ret-p", "127.0.0.1").port(broker.port());
    p.connect(true).unwrap();
    p.publish("ret/t", b"kept", true, QoS::AtLeastOnce).unwrap();
    let (messages, callback) = inbox();
    let mut s = MQTTClient::new("ret-s", "127.0.0.1").port(broker.port());
    s.set_callback(callback);
    s.connect(true).unwrap();
    s.subscribe("ret/#", QoS::AtMostOnce).unwrap();
    wait_until(
        WAIT,
        || s.wait_msg().unwrap(),
        || !messages.lock().unwrap().is_empty(),
    );
    assert_eq!(messages.lock().unwrap()[0].1, b"kept");
}

fn ping_gets_pingresp(kind: Kind) {
    let broker = TestBroker::start(kind, "");
    let mut c = MQTTClient::new("pinger", "127.0.0.1")
        .port(broker.port())
        .keepalive(30);
    c.connect(true).unwrap();
    c.ping().unwrap();
    // wait_msg returns once the PINGRESP has been handled.
    c.wait_msg().unwrap();
    assert!(c.is_connected());
}

fn without_pings_the_broker_drops_an_idle_client(kind: Kind) {
    // 3.1.1 [MQTT-3.1.2-24]: the server disconnects after 1.5 x keepalive of
    // silence (mosquitto checks every few seconds: about 5.5 s for 1 s).
    let broker = TestBroker::start(kind, "");
    let mut c = MQTTClient::new("silent", "127.0.0.1")
        .port(broker.port())
        .keepalive(1);
    c.connect(true).unwrap();
    let deadline = Instant::now() + Duration::from_secs(9);
    let err = loop {
        assert!(Instant::now() < deadline, "broker kept a silent client");
        match c.check_msg() {
            Ok(_) => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => break e,
        }
    };
    assert!(matches!(err, Error::Closed | Error::Io(_)), "{err}");
}

fn automatic_pings_keep_an_idle_client_connected(kind: Kind) {
    let broker = TestBroker::start(kind, "");
    let mut c = MQTTClient::new("auto-ping", "127.0.0.1")
        .port(broker.port())
        .keepalive(1)
        .auto_ping(true);
    c.connect(true).unwrap();
    let until = Instant::now() + Duration::from_millis(3_000);
    while Instant::now() < until {
        c.check_msg().unwrap();
        std::thread::sleep(Duration::from_millis(50));
    }
    c.subscribe("still/here", QoS::AtLeastOnce).unwrap();
    c.publish("still/here", b"yes", false, QoS::AtLeastOnce)
        .unwrap();
}

fn last_will_is_published_when_the_link_dies(kind: Kind) {
    let broker = TestBroker::start(kind, "");
    let (messages, callback) = inbox();
    let mut watcher = MQTTClient::new("watcher", "127.0.0.1").port(broker.port());
    watcher.set_callback(callback);
    watcher.connect(true).unwrap();
    watcher.subscribe("will/+", QoS::AtLeastOnce).unwrap();

    let mut dying = MQTTClient::new("dying", "127.0.0.1").port(broker.port());
    dying.set_last_will("will/dying", b"gone", false, QoS::AtLeastOnce);
    dying.connect(true).unwrap();
    dying.abort();
    wait_until(
        WAIT,
        || watcher.wait_msg().unwrap(),
        || !messages.lock().unwrap().is_empty(),
    );
    assert_eq!(
        messages.lock().unwrap()[0],
        ("will/dying".to_string(), b"gone".to_vec())
    );
}

fn no_will_after_a_normal_disconnect(kind: Kind) {
    // [MQTT-3.1.2-10]: DISCONNECT discards the will.
    let broker = TestBroker::start(kind, "");
    let (messages, callback) = inbox();
    let mut watcher = MQTTClient::new("watcher2", "127.0.0.1").port(broker.port());
    watcher.set_callback(callback);
    watcher.connect(true).unwrap();
    watcher.subscribe("will/+", QoS::AtLeastOnce).unwrap();
    let mut polite = MQTTClient::new("polite", "127.0.0.1").port(broker.port());
    polite.set_last_will("will/polite", b"gone", false, QoS::AtLeastOnce);
    polite.connect(true).unwrap();
    polite.disconnect().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    watcher.check_msg().unwrap();
    assert!(messages.lock().unwrap().is_empty());
}

fn session_resume_delivers_messages_queued_while_away(kind: Kind) {
    let broker = TestBroker::start(kind, "");
    let (messages, callback) = inbox();
    let mut s = MQTTClient::new("away", "127.0.0.1").port(broker.port());
    s.set_callback(callback);
    s.connect(false).unwrap();
    s.subscribe("q/#", QoS::AtLeastOnce).unwrap();
    s.disconnect().unwrap();

    let mut p = MQTTClient::new("while-away", "127.0.0.1").port(broker.port());
    p.connect(true).unwrap();
    p.publish("q/1", b"one", false, QoS::AtLeastOnce).unwrap();
    p.publish("q/2", b"two", false, QoS::ExactlyOnce).unwrap();
    p.publish("q/0", b"dropped", false, QoS::AtMostOnce)
        .unwrap();

    assert!(s.connect(false).unwrap(), "session kept");
    wait_until(
        WAIT,
        || s.wait_msg().unwrap(),
        || messages.lock().unwrap().len() >= 2,
    );
    let got = messages.lock().unwrap().clone();
    assert_eq!(
        got[..2],
        [
            ("q/1".to_string(), b"one".to_vec()),
            ("q/2".to_string(), b"two".to_vec())
        ]
    );
}

fn refused_connection_reports_the_reason(kind: Kind) {
    let broker = TestBroker::start(kind, "allow_anonymous false");
    let mut c = MQTTClient::new("anon", "127.0.0.1").port(broker.port());
    match c.connect(true) {
        Err(Error::Refused(code)) => assert!(code.is_error()),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

fn credentials_are_sent(kind: Kind) {
    let dir = tempfile::tempdir().unwrap();
    let passwd = dir.path().join("passwd");
    let status = std::process::Command::new(culex_testkit::tool("mosquitto_passwd"))
        .args(["-b", "-c"])
        .arg(&passwd)
        .args(["alice", "secret"])
        .status()
        .unwrap();
    assert!(status.success());
    let broker = TestBroker::start(
        kind,
        &format!("allow_anonymous false\npassword_file {}", passwd.display()),
    );
    let mut c = MQTTClient::new("alice-1", "127.0.0.1")
        .port(broker.port())
        .user("alice")
        .password(b"secret");
    c.connect(true).unwrap();
    let mut bad = MQTTClient::new("alice-2", "127.0.0.1")
        .port(broker.port())
        .user("alice")
        .password(b"wrong");
    assert!(matches!(bad.connect(true), Err(Error::Refused(_))));
}

crate::on_both_brokers!(
    connect_returns_session_present,
    qos_0_1_2_both_ways_v311_subscribed_at_qos2,
    qos_0_1_2_publish_subscribed_at_qos1,
    qos_0_1_2_both_ways_v5,
    qos_0_1_2_both_ways_v31,
    check_msg_returns_at_once_when_nothing_is_pending,
    long_topics_are_encoded_correctly,
    unsubscribe_stops_delivery,
    retained_message_is_received_with_subscribe,
    ping_gets_pingresp,
    without_pings_the_broker_drops_an_idle_client,
    automatic_pings_keep_an_idle_client_connected,
    last_will_is_published_when_the_link_dies,
    no_will_after_a_normal_disconnect,
    session_resume_delivers_messages_queued_while_away,
    refused_connection_reports_the_reason,
    credentials_are_sent,
);
