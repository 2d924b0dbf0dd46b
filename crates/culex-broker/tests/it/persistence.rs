//! `persistence true` (issue 10): state survives a restart of the broker.

use std::time::Duration;

use culex_codec::{Packet, QoS};

use crate::client::Raw;

fn persistent_config(dir: &std::path::Path) -> culex_broker::config::Config {
    let mut config = culex_broker::testing::local_config();
    config.persistence.enabled = true;
    config.persistence.location = Some(dir.to_path_buf());
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retained_messages_and_queued_messages_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let broker = culex_broker::Broker::start(persistent_config(dir.path()))
        .await
        .unwrap();
    let port = broker.port();
    tokio::task::spawn_blocking(move || {
        let (mut sub, _) = Raw::connect(port, "durable", false);
        sub.subscribe(&[("s/#", QoS::ExactlyOnce)]);
        sub.disconnect();
        std::thread::sleep(Duration::from_millis(100));
        let (mut publ, _) = Raw::connect(port, "pub", true);
        publ.publish_acked("s/1", b"kept", QoS::AtLeastOnce, true, 1);
        publ.publish_acked("s/2", b"queued", QoS::ExactlyOnce, false, 2);
        publ.disconnect();
    })
    .await
    .unwrap();
    broker.shutdown().await;
    assert!(dir.path().join("culex.db").exists());

    // The store closes when the last task of the old broker is gone.
    let mut attempts = 0;
    let broker = loop {
        match culex_broker::Broker::start(persistent_config(dir.path())).await {
            Ok(b) => break b,
            Err(e) if attempts < 50 => {
                attempts += 1;
                eprintln!("{e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("{e}"),
        }
    };
    let port = broker.port();
    tokio::task::spawn_blocking(move || {
        let (mut sub, present) = Raw::connect(port, "durable", false);
        assert!(present, "the session came back [MQTT-3.2.2-2]");
        let g = sub.recv().publish();
        assert_eq!((g.topic.as_str(), &g.payload[..]), ("s/1", &b"kept"[..]));
        sub.ack(Packet::PubAck, g.id.unwrap());
        let g = sub.recv().publish();
        assert_eq!((g.topic.as_str(), &g.payload[..]), ("s/2", &b"queued"[..]));
        let (mut other, _) = Raw::connect(port, "other", true);
        other.subscribe(&[("s/#", QoS::AtMostOnce)]);
        let g = other.recv().publish();
        assert_eq!(
            (g.topic.as_str(), &g.payload[..], g.retain),
            ("s/1", &b"kept"[..], true)
        );
    })
    .await
    .unwrap();
    broker.shutdown().await;
}

/// Starts a persistent broker on `dir`, waiting for the previous one's
/// store to close (it closes when the old broker's last task is gone).
async fn restart(dir: &std::path::Path) -> culex_broker::RunningBroker {
    for _ in 0..50 {
        match culex_broker::Broker::start(persistent_config(dir)).await {
            Ok(b) => return b,
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    panic!("the store never closed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unacknowledged_deliveries_are_resent_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let broker = restart(dir.path()).await;
    let port = broker.port();
    tokio::task::spawn_blocking(move || {
        let (mut sub, _) = Raw::connect(port, "slow", false);
        sub.subscribe(&[("f/#", QoS::AtLeastOnce)]);
        let (mut publ, _) = Raw::connect(port, "pub", true);
        publ.publish_acked("f/1", b"in flight", QoS::AtLeastOnce, false, 1);
        // Received but never acknowledged.
        let g = sub.recv().publish();
        assert_eq!(&g.payload[..], b"in flight");
        drop(sub);
        publ.disconnect();
    })
    .await
    .unwrap();
    broker.shutdown().await;

    let broker = restart(dir.path()).await;
    let port = broker.port();
    tokio::task::spawn_blocking(move || {
        let (mut sub, present) = Raw::connect(port, "slow", false);
        assert!(present);
        // Re-sent with DUP set [MQTT-4.4.0-1].
        let g = sub.recv().publish();
        assert_eq!((&g.payload[..], g.dup), (&b"in flight"[..], true));
        sub.ack(Packet::PubAck, g.id.unwrap());
    })
    .await
    .unwrap();
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledgements_keep_their_order_with_persistence() {
    let dir = tempfile::tempdir().unwrap();
    let broker = restart(dir.path()).await;
    let port = broker.port();
    tokio::task::spawn_blocking(move || {
        // A persistent subscriber makes some publishes durable work, others not.
        let (mut sub, _) = Raw::connect(port, "keeper", false);
        sub.subscribe(&[("keep/#", QoS::AtLeastOnce)]);
        sub.disconnect();
        let (mut publ, _) = Raw::connect(port, "pub", true);
        for id in 1..=20u16 {
            let topic = if id % 2 == 0 { "keep/x" } else { "drop/x" };
            publ.publish(topic, b"m", QoS::AtLeastOnce, false, id);
        }
        // PUBACKs in the order of the PUBLISHes [MQTT-4.6.0-2].
        for id in 1..=20u16 {
            match publ.recv().packet() {
                Packet::PubAck(a) => assert_eq!(a.packet_id.get(), id),
                other => panic!("expected PUBACK {id}, got {other:?}"),
            }
        }
    })
    .await
    .unwrap();
    broker.shutdown().await;
}
