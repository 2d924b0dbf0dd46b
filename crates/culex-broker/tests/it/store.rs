//! The persistence boundary: every durable change of a persistent session
//! reaches the `Store`, in order.

use std::sync::Arc;
use std::time::Duration;

use culex_broker::message::Message;
use culex_broker::store::{OutboundState, Store};
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
    fn retained_set(&self, msg: &Message) {
        self.log(format!("retain {}", msg.topic));
    }
    fn retained_clear(&self, topic: &str) {
        self.log(format!("unretain {topic}"));
    }
    fn session_put(&self, client_id: &str, expiry: Option<u32>) {
        self.log(format!("session {client_id} {expiry:?}"));
    }
    fn subscription_put(
        &self,
        client_id: &str,
        filter: &str,
        o: SubscriptionOptions,
        _id: Option<u32>,
    ) {
        self.log(format!("sub {client_id} {filter} {}", o.qos as u8));
    }
    fn subscription_delete(&self, client_id: &str, filter: &str) {
        self.log(format!("unsub {client_id} {filter}"));
    }
    fn session_delete(&self, client_id: &str) {
        self.log(format!("end {client_id}"));
    }
    fn queued_add(&self, client_id: &str, msg: &Message, qos: QoS) {
        self.log(format!("queue {client_id} {} q{}", msg.topic, qos as u8));
    }
    fn queued_remove_front(&self, client_id: &str) {
        self.log(format!("dequeue {client_id}"));
    }
    fn outbound_state(&self, client_id: &str, id: PacketId, state: Option<OutboundState>) {
        self.log(format!("out {client_id} {} {state:?}", id.get()));
    }
    fn inbound_qos2(&self, client_id: &str, id: PacketId, pending: bool) {
        self.log(format!("in {client_id} {} {pending}", id.get()));
    }
    fn delayed_will(&self, client_id: &str, will: Option<&Message>) {
        self.log(format!("will {client_id} {}", will.is_some()));
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
