//! Immediate reconnects: a client that sends DISCONNECT, closes, and at once
//! connects again races its old connection's teardown in the broker.

use std::time::Duration;

use culex_broker::testing::BrokerThread;
use culex_codec::{Properties, Protocol, QoS, ReasonCode};

use crate::client::{ConnectOpts, Raw};

const ROUNDS: usize = 200;

fn connect(port: u16, id: &str, clean: bool, protocol: Protocol) -> (Raw, bool) {
    let (c, present, reason) = Raw::connect_with(
        port,
        ConnectOpts {
            client_id: id,
            clean,
            protocol,
            properties: Properties::default(),
            ..ConnectOpts::default()
        },
    );
    assert_eq!(reason, ReasonCode::Success);
    (c, present)
}

/// With clean session / clean start set, Session Present is 0
/// ([MQTT-3.2.2-1] in 3.1.1, [MQTT-3.2.2-2] in 5.0), however fast the client
/// comes back; and the session it gets is live: a subscription made on it
/// receives messages, so it was not attached to the session being torn down.
#[test]
fn clean_reconnect_at_once_never_sees_session_present() {
    let broker = BrokerThread::start();
    let port = broker.port();
    let (mut publ, _) = Raw::connect(port, "racer-pub", true);
    for protocol in [Protocol::V3_1_1, Protocol::V5] {
        let (mut c, _) = connect(port, "racer", true, protocol);
        for round in 0..ROUNDS {
            c.disconnect();
            let (next, present) = connect(port, "racer", true, protocol);
            assert!(!present, "{protocol:?} round {round}: session present");
            c = next;
            assert_eq!(c.subscribe(&[("racer/t", QoS::AtMostOnce)]), vec![0]);
            publ.publish_acked("racer/t", b"alive", QoS::AtMostOnce, false, 0);
            let got = c.recv().publish();
            assert_eq!(got.payload, b"alive", "{protocol:?} round {round}");
        }
    }
}

/// A clean session ends with its connection, so a client that disconnects a
/// clean session and at once comes back with clean session 0 finds no
/// session: Session Present 0 ([MQTT-3.2.2-2] in 3.1.1: it depends on the
/// session state the server holds, and a clean session's ends with the
/// connection [MQTT-3.1.2-6]; 5.0: Session Expiry 0 ends it [MQTT-3.2.2-3]).
/// Each round also checks the session it gets is live (subscription works).
#[test]
fn clean_then_persistent_reconnect_at_once_has_no_session() {
    let broker = BrokerThread::start();
    let port = broker.port();
    let (mut publ, _) = Raw::connect(port, "flip-pub", true);
    for protocol in [Protocol::V3_1_1, Protocol::V5] {
        for round in 0..ROUNDS {
            let (c, _) = connect(port, "flipper", true, protocol);
            c.disconnect();
            let (mut c, present) = connect(port, "flipper", false, protocol);
            assert!(!present, "{protocol:?} round {round}: session present");
            if round % 20 == 0 {
                assert_eq!(c.subscribe(&[("flip/t", QoS::AtLeastOnce)]), vec![1]);
                publ.publish_acked("flip/t", b"live", QoS::AtLeastOnce, false, 1);
                let got = c.recv().publish();
                assert_eq!(got.payload, b"live", "{protocol:?} round {round}");
            }
            // End the persistent session for the next round.
            drop(c);
            let (c, _) = connect(port, "flipper", true, protocol);
            c.disconnect();
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}
