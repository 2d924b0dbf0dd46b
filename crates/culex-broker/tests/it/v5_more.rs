//! More MQTT 5.0 behaviour, end to end: retain handling, retained messages
//! and shared subscriptions, the client's Receive Maximum, session expiry
//! changed on DISCONNECT, `persistent_client_expiration`, DISCONNECT 0x81
//! for malformed packets and message expiry of queued messages.

use std::time::Duration;

use culex_broker::testing::BrokerThread;
use culex_codec::packet::Subscribe;
use culex_codec::topic::TopicFilter;
use culex_codec::{
    Packet, Properties, Protocol, QoS, ReasonCode, RetainHandling, Seq, SubscriptionOptions,
};

use crate::client::{pid, ConnectOpts, Raw};

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

/// Retain Handling 0 sends the retained messages at every subscribe
/// [MQTT-3.3.1-9], 1 only when the subscription did not exist
/// [MQTT-3.3.1-10], 2 never [MQTT-3.3.1-11].
#[test]
fn retain_handling_0_1_2() {
    let broker = BrokerThread::start();
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
