//! RobustClient: reconnect with back-off, restore subscriptions.

use std::time::{Duration, Instant};

use culex_client::blocking::{Backoff, MQTTClient, RobustClient};
use culex_client::QoS;

use crate::{inbox, wait_until, Kind, RestartableBroker, TestBroker};

fn backoff() -> Backoff {
    Backoff {
        initial: Duration::from_millis(50),
        max: Duration::from_millis(400),
        max_attempts: Some(60),
    }
}

fn reconnects_and_resubscribes_after_the_broker_restarts(kind: Kind) {
    let mut broker = RestartableBroker::start(kind);
    let (messages, callback) = inbox();
    let mut robust =
        RobustClient::new(MQTTClient::new("robust-1", "127.0.0.1").port(broker.port()))
            .backoff(backoff());
    robust.set_callback(callback);
    assert!(!robust.connect(false).unwrap());
    robust.subscribe("r/t", QoS::AtLeastOnce).unwrap();

    // The broker dies and comes back empty: the session is gone.
    broker.kill();
    broker.restart();

    // The next operation fails, reconnects (session present 0) and
    // subscribes again, then a message published afterwards arrives.
    robust
        .publish("r/self", b"ping", false, QoS::AtLeastOnce)
        .unwrap();
    assert!(robust.reconnects() >= 1);
    let mut p = MQTTClient::new("robust-pub", "127.0.0.1").port(broker.port());
    p.connect(true).unwrap();
    p.publish("r/t", b"after restart", false, QoS::AtLeastOnce)
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    wait_until(
        Duration::from_secs(6),
        || {
            robust.check_msg().unwrap();
            std::thread::sleep(Duration::from_millis(20));
            assert!(Instant::now() < deadline);
        },
        || !messages.lock().unwrap().is_empty(),
    );
    assert_eq!(
        messages.lock().unwrap()[0],
        ("r/t".to_string(), b"after restart".to_vec())
    );
}

fn reconnects_when_the_tcp_connection_drops(kind: Kind) {
    let broker = TestBroker::start(kind, "");
    let (messages, callback) = inbox();
    let mut robust =
        RobustClient::new(MQTTClient::new("robust-2", "127.0.0.1").port(broker.port()))
            .backoff(backoff());
    robust.set_callback(callback);
    robust.connect(true).unwrap();
    robust.subscribe("d/t", QoS::AtLeastOnce).unwrap();
    robust.inner().abort();
    // wait_msg hits the dead link, reconnects (clean session: no session,
    // so it re-subscribes) and then sees its own message.
    robust
        .publish("d/t", b"again", false, QoS::AtLeastOnce)
        .unwrap();
    assert_eq!(robust.reconnects(), 1);
    wait_until(
        Duration::from_secs(5),
        || robust.wait_msg().unwrap(),
        || !messages.lock().unwrap().is_empty(),
    );
    assert_eq!(messages.lock().unwrap()[0].1, b"again");
    assert_eq!(
        robust.subscriptions(),
        [("d/t".to_string(), QoS::AtLeastOnce)]
    );
}

#[test]
fn gives_up_after_max_attempts() {
    let port = culex_testkit::free_port();
    let mut robust = RobustClient::new(MQTTClient::new("robust-3", "127.0.0.1").port(port))
        .backoff(Backoff {
            initial: Duration::from_millis(10),
            max: Duration::from_millis(20),
            max_attempts: Some(3),
        });
    let start = Instant::now();
    assert!(robust.connect(true).is_err());
    assert!(start.elapsed() < Duration::from_secs(2));
}

crate::on_both_brokers!(
    reconnects_and_resubscribes_after_the_broker_restarts,
    reconnects_when_the_tcp_connection_drops,
);
