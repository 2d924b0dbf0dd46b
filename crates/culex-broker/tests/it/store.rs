//! The persistence boundary: every durable change of a persistent session
//! reaches the `Store`, in order.

use std::sync::Arc;
use std::time::Duration;

use culex_broker::core::message::Message;
use culex_broker::core::store::{Durability, OutboundState, Store};
use culex_codec::{Packet, PacketId, QoS, SubscriptionOptions};
use parking_lot::Mutex;

use crate::client::Raw;

#[derive(Debug, Default)]
struct Recording(Mutex<Vec<String>>);

impl Recording {
    fn log(&self, line: String) {
        self.0.lock().push(line);
    }
}

impl Store for Recording {
    fn is_durable(&self) -> bool {
        true
    }
    fn retained_set(&self, msg: &Message) -> Durability {
        self.log(format!("retain {}", msg.topic));
        Durability::Done
    }
    fn retained_clear(&self, topic: &str) -> Durability {
        self.log(format!("unretain {topic}"));
        Durability::Done
    }
    fn session_put(&self, client_id: &str, expiry: Option<u32>) -> Durability {
        self.log(format!("session {client_id} {expiry:?}"));
        Durability::Done
    }
    fn subscription_put(
        &self,
        client_id: &str,
        filter: &str,
        o: SubscriptionOptions,
        _id: Option<u32>,
    ) -> Durability {
        self.log(format!("sub {client_id} {filter} {}", o.qos as u8));
        Durability::Done
    }
    fn subscription_delete(&self, client_id: &str, filter: &str) -> Durability {
        self.log(format!("unsub {client_id} {filter}"));
        Durability::Done
    }
    fn session_delete(&self, client_id: &str) -> Durability {
        self.log(format!("end {client_id}"));
        Durability::Done
    }
    fn queued_add(&self, client_id: &str, msg: &Message, qos: QoS) -> Durability {
        self.log(format!("queue {client_id} {} q{}", msg.topic, qos as u8));
        Durability::Done
    }
    fn queued_remove_front(&self, client_id: &str) -> Durability {
        self.log(format!("dequeue {client_id}"));
        Durability::Done
    }
    fn outbound_state(
        &self,
        client_id: &str,
        id: PacketId,
        state: Option<OutboundState>,
    ) -> Durability {
        self.log(format!("out {client_id} {} {state:?}", id.get()));
        Durability::Done
    }
    fn inbound_qos2(&self, client_id: &str, id: PacketId, pending: bool) -> Durability {
        self.log(format!("in {client_id} {} {pending}", id.get()));
        Durability::Done
    }
    fn delayed_will(&self, client_id: &str, will: Option<&Message>) -> Durability {
        self.log(format!("will {client_id} {}", will.is_some()));
        Durability::Done
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persistent_session_changes_reach_the_store() {
    let store = Arc::new(Recording::default());
    let broker = culex_broker::Broker::start_with_store(
        culex_broker::testing::local_config(),
        store.clone(),
    )
    .await
    .unwrap();
    let port = broker.port();
    tokio::task::spawn_blocking(move || {
        let (mut sub, _) = Raw::connect(port, "durable", false);
        sub.subscribe(&[("s/#", QoS::AtLeastOnce)]);
        sub.disconnect();
        std::thread::sleep(Duration::from_millis(100));
        let (mut publ, _) = Raw::connect(port, "pub", true);
        publ.publish_acked("s/1", b"x", QoS::AtLeastOnce, true, 1);
        publ.publish_acked("s/2", b"y", QoS::ExactlyOnce, false, 2);
        let (mut sub, present) = Raw::connect(port, "durable", false);
        assert!(present);
        let g = sub.recv().publish();
        sub.ack(Packet::PubAck, g.id.unwrap());
        let g = sub.recv().publish();
        sub.ack(Packet::PubAck, g.id.unwrap());
        std::thread::sleep(Duration::from_millis(200));
    })
    .await
    .unwrap();
    broker.shutdown().await;
    let log = store.0.lock().clone();
    let durable: Vec<&str> = log
        .iter()
        .map(String::as_str)
        .filter(|l| l.contains("durable") || l.starts_with("retain"))
        .collect();
    assert_eq!(
        durable,
        vec![
            "session durable None",
            "sub durable s/# 1",
            "retain s/1",
            "queue durable s/1 q1",
            "queue durable s/2 q1",
            "dequeue durable",
            "out durable 1 Some(AwaitingAck)",
            "dequeue durable",
            "out durable 2 Some(AwaitingAck)",
            "session durable None",
            "out durable 1 None",
            "out durable 2 None",
        ],
        "{log:#?}"
    );
    // The clean publisher journals nothing but its (non-persistent) end.
    assert!(
        !log.iter()
            .any(|l| l.starts_with("queue pub") || l.starts_with("in pub")),
        "{log:#?}"
    );
}

/// A store that hands back a snapshot at start-up and records nothing.
#[derive(Debug)]
struct Saved;

impl Store for Saved {
    fn load(
        &self,
    ) -> Result<culex_broker::core::store::Snapshot, culex_broker::core::store::StoreError> {
        use culex_broker::core::store::{SessionSnapshot, Snapshot};
        let now = std::time::Instant::now();
        let msg = |topic: &str, payload: &str| {
            Message::new(topic, payload.to_owned(), QoS::AtLeastOnce, false, now)
        };
        let o = SubscriptionOptions {
            qos: QoS::ExactlyOnce,
            ..Default::default()
        };
        Ok(Snapshot {
            retained: vec![Message::new("keep/me", "old", QoS::AtMostOnce, true, now)],
            sessions: vec![SessionSnapshot {
                client_id: "sleeper".into(),
                expiry_interval: None,
                subscriptions: vec![("inbox/#".into(), o, None)],
                queued: vec![(msg("inbox/1", "queued"), QoS::AtLeastOnce)],
                outbound: vec![(
                    PacketId::new(7).unwrap(),
                    msg("inbox/0", "in flight"),
                    QoS::AtLeastOnce,
                    OutboundState::AwaitingAck,
                )],
                inbound_qos2: vec![PacketId::new(3).unwrap()],
            }],
            delayed_wills: Vec::new(),
        })
    }
    fn retained_set(&self, _: &Message) -> Durability {
        Durability::Done
    }
    fn retained_clear(&self, _: &str) -> Durability {
        Durability::Done
    }
    fn session_put(&self, _: &str, _: Option<u32>) -> Durability {
        Durability::Done
    }
    fn subscription_put(
        &self,
        _: &str,
        _: &str,
        _: SubscriptionOptions,
        _: Option<u32>,
    ) -> Durability {
        Durability::Done
    }
    fn subscription_delete(&self, _: &str, _: &str) -> Durability {
        Durability::Done
    }
    fn session_delete(&self, _: &str) -> Durability {
        Durability::Done
    }
    fn queued_add(&self, _: &str, _: &Message, _: QoS) -> Durability {
        Durability::Done
    }
    fn queued_remove_front(&self, _: &str) -> Durability {
        Durability::Done
    }
    fn outbound_state(&self, _: &str, _: PacketId, _: Option<OutboundState>) -> Durability {
        Durability::Done
    }
    fn inbound_qos2(&self, _: &str, _: PacketId, _: bool) -> Durability {
        Durability::Done
    }
    fn delayed_will(&self, _: &str, _: Option<&Message>) -> Durability {
        Durability::Done
    }
}

/// State loaded from a store at start-up: retained messages, a persistent
/// session with its subscription, queue, in-flight message (re-sent with
/// DUP) and an unreleased inbound QoS 2 id (so exactly-once survives).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_is_restored_from_the_store() {
    let broker = culex_broker::Broker::start_with_store(
        culex_broker::testing::local_config(),
        Arc::new(Saved),
    )
    .await
    .unwrap();
    let port = broker.port();
    tokio::task::spawn_blocking(move || {
        let (mut sleeper, present) = Raw::connect(port, "sleeper", false);
        assert!(present, "session restored");
        let first = sleeper.recv().publish();
        assert_eq!(
            (first.payload.as_slice(), first.dup, first.id),
            (&b"in flight"[..], true, Some(7))
        );
        let second = sleeper.recv().publish();
        assert_eq!(
            (second.payload.as_slice(), second.dup),
            (&b"queued"[..], false)
        );
        assert_ne!(second.id, Some(7));
        // The QoS 2 message with id 3 was received before the restart: a
        // re-send is acknowledged but not delivered again [MQTT-4.3.3-2].
        let (mut watcher, _) = Raw::connect(port, "watcher", true);
        watcher.subscribe(&[("dup/#", QoS::AtMostOnce)]);
        sleeper.publish("dup/x", b"again", QoS::ExactlyOnce, false, 3);
        assert!(matches!(sleeper.recv().packet(), Packet::PubRec(r) if r.packet_id.get() == 3));
        assert!(watcher.try_recv(Duration::from_millis(300)).is_none());
        // Subscriptions and retained messages are back.
        let (mut other, _) = Raw::connect(port, "other", true);
        other.publish_acked("inbox/new", b"hello", QoS::AtMostOnce, false, 0);
        assert_eq!(sleeper.recv().publish().payload, b"hello");
        other.subscribe(&[("keep/#", QoS::AtMostOnce)]);
        let r = other.recv().publish();
        assert_eq!((r.payload.as_slice(), r.retain), (&b"old"[..], true));
    })
    .await
    .unwrap();
    broker.shutdown().await;
}
