//! The `$SYS/broker/…` tree and presence events.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use culex_broker::testing::{local_config, BrokerThread};
use culex_codec::QoS;

use crate::client::Raw;

fn collect(c: &mut Raw, wait: Duration) -> HashMap<String, String> {
    let deadline = Instant::now() + wait;
    let mut seen = HashMap::new();
    while let Some(f) = c.try_recv(deadline.saturating_duration_since(Instant::now())) {
        let g = f.publish();
        seen.insert(g.topic, String::from_utf8_lossy(&g.payload).into_owned());
    }
    seen
}

/// `$SYS/broker/…` values are published retained every `sys_interval`, and
/// a `#` subscription does not receive them [MQTT-4.7.2-1].
#[test]
fn sys_tree_is_published() {
    let mut config = local_config();
    config.sys_interval = Duration::from_secs(1);
    let broker = BrokerThread::start_with(config);
    let (mut all, _) = Raw::connect(broker.port(), "hash", true);
    all.subscribe(&[("#", QoS::AtMostOnce)]);
    let (mut sys, _) = Raw::connect(broker.port(), "sys", true);
    sys.subscribe(&[("$SYS/broker/#", QoS::AtMostOnce)]);
    let seen = collect(&mut sys, Duration::from_millis(1500));
    assert!(
        seen.get("$SYS/broker/version")
            .is_some_and(|v| v.starts_with("culex version ")),
        "{seen:?}"
    );
    assert_eq!(
        seen.get("$SYS/broker/clients/connected")
            .map(String::as_str),
        Some("2"),
        "{seen:?}"
    );
    assert!(seen.contains_key("$SYS/broker/uptime"));
    assert!(seen.contains_key("$SYS/broker/load/messages/received/1min"));
    assert_eq!(
        seen.get("$SYS/broker/subscriptions/count")
            .map(String::as_str),
        Some("2")
    );
    assert!(
        all.try_recv(Duration::from_millis(100)).is_none(),
        "# does not match $SYS"
    );
    // Clients may not publish into $SYS.
    let (mut rogue, _) = Raw::connect(broker.port(), "rogue", true);
    rogue.publish_acked("$SYS/broker/version", b"fake", QoS::AtLeastOnce, true, 1);
    let seen = collect(&mut sys, Duration::from_millis(1200));
    assert_ne!(
        seen.get("$SYS/broker/version").map(String::as_str),
        Some("fake")
    );
}

/// Presence events: retained state 1/0 and connect/disconnect events.
#[test]
fn presence_events() {
    let mut config = local_config();
    config.presence_events = true;
    let broker = BrokerThread::start_with(config);
    let (mut watch, _) = Raw::connect(broker.port(), "watch", true);
    watch.subscribe(&[("$SYS/broker/clients/dev1/#", QoS::AtMostOnce)]);
    let (dev, _) = Raw::connect(broker.port(), "dev1", true);
    let a = watch.recv().publish();
    let b = watch.recv().publish();
    assert_eq!(
        (a.topic.as_str(), a.payload.as_slice(), a.retain),
        ("$SYS/broker/clients/dev1/state", &b"1"[..], false)
    );
    assert_eq!(b.topic, "$SYS/broker/clients/dev1/event");
    assert!(String::from_utf8_lossy(&b.payload).contains("\"protocol\":\"p2\""));
    dev.disconnect();
    let a = watch.recv().publish();
    let b = watch.recv().publish();
    assert_eq!(a.payload, b"0");
    assert_eq!(b.payload, br#"{"event":"disconnected"}"#);
    let (mut late, _) = Raw::connect(broker.port(), "late", true);
    late.subscribe(&[("$SYS/broker/clients/dev1/state", QoS::AtMostOnce)]);
    let r = late.recv().publish();
    assert_eq!(
        (r.payload.as_slice(), r.retain),
        (&b"0"[..], true),
        "state is retained"
    );
}

/// An expired session is counted in `$SYS/broker/clients/expired`.
#[test]
fn sys_counts_expired_sessions() {
    let mut config = local_config();
    config.sys_interval = Duration::from_secs(1);
    let broker = BrokerThread::start_with(config);
    let port = broker.port();
    let (c, _, _) = Raw::connect_with(
        port,
        crate::client::ConnectOpts {
            client_id: "sx",
            protocol: culex_codec::Protocol::V5,
            properties: culex_codec::Properties {
                session_expiry_interval: Some(1),
                ..Default::default()
            },
            ..Default::default()
        },
    );
    c.disconnect();
    std::thread::sleep(Duration::from_millis(2300));
    let (mut sys, _) = Raw::connect(port, "sx-sys", true);
    sys.subscribe(&[("$SYS/broker/clients/expired", QoS::AtMostOnce)]);
    let mut last = None;
    for _ in 0..5 {
        let Some(f) = sys.try_recv(Duration::from_millis(1500)) else {
            break;
        };
        last = Some(f.publish().payload);
        if last.as_deref() == Some(&b"1"[..]) {
            break;
        }
    }
    assert_eq!(last.as_deref(), Some(&b"1"[..]));
}
