//! Every record kind survives close and reopen, exactly.

use culex_store::{
    DelayedWill, Durability, DurableStore, OutboundPhase, OutboundRecord, Qos, QueuedMessage,
    StoredSubscription,
};

use crate::{msg, msg_with_props, temp_store};

#[test]
fn every_record_kind_survives_close_and_reopen() {
    let (_dir, path) = temp_store();
    let (store, recovered) = DurableStore::open(&path, Durability::Sync).unwrap();
    assert!(recovered.retained.is_empty() && recovered.sessions.is_empty());
    assert!(recovered.warnings.is_empty());

    store.retained_set(msg_with_props("home/kitchen/temp"));
    store.retained_set(msg("home/door", "open", Qos::AtMostOnce, true));
    store.retained_set(msg("home/door", "closed", Qos::AtLeastOnce, true));
    store.retained_set(msg("to/clear", "x", Qos::AtMostOnce, true));
    store.retained_clear("to/clear");

    store.session_put("dev-1", Some(300));
    store.subscription_put("dev-1", "home/#", 0x01, None);
    store.subscription_put("dev-1", "$share/g/cmd/+", 0x2e, Some(42));
    store.subscription_put("dev-1", "gone", 0, None);
    store.subscription_delete("dev-1", "gone");
    for i in 0..4 {
        store.queued_add(
            "dev-1",
            QueuedMessage {
                qos: Qos::AtLeastOnce,
                message: msg("home/door", &format!("q{i}"), Qos::ExactlyOnce, false),
            },
        );
    }
    store.queued_remove_front("dev-1");
    let in_flight = QueuedMessage {
        qos: Qos::ExactlyOnce,
        message: msg_with_props("a/b"),
    };
    store.outbound_put(
        "dev-1",
        7,
        OutboundPhase::AwaitingAck,
        Some(in_flight.clone()),
    );
    store.outbound_put(
        "dev-1",
        9,
        OutboundPhase::AwaitingAck,
        Some(in_flight.clone()),
    );
    store.outbound_put("dev-1", 9, OutboundPhase::AwaitingComp, None);
    store.outbound_put("dev-1", 11, OutboundPhase::AwaitingAck, None);
    store.outbound_delete("dev-1", 11);
    store.inbound_qos2("dev-1", 5, true);
    store.inbound_qos2("dev-1", 6, true);
    store.inbound_qos2("dev-1", 6, false);
    let will = DelayedWill {
        message: msg("dev-1/status", "offline", Qos::AtLeastOnce, true),
        publish_at_unix_ms: 1_764_000_060_000,
    };
    store.will_put("dev-1", will.clone());
    store.session_put("forever", None);
    store.close().unwrap();

    let (store, r) = DurableStore::open(&path, Durability::Sync).unwrap();
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    let retained: Vec<_> = r
        .retained
        .iter()
        .map(|m| (m.topic.as_str(), &m.payload[..]))
        .collect();
    assert_eq!(
        retained,
        vec![
            ("home/door", &b"closed"[..]),
            ("home/kitchen/temp", b"{\"t\":21.5}")
        ]
    );
    assert_eq!(r.retained[1], msg_with_props("home/kitchen/temp"));
    assert_eq!(r.sessions.len(), 2);
    let s = &r.sessions[0];
    assert_eq!(s.client_id, "dev-1");
    assert!(s.has_record);
    assert_eq!(s.expiry_interval, Some(300));
    assert!(s.updated_unix_ms > 0);
    assert_eq!(
        s.subscriptions,
        vec![
            StoredSubscription {
                filter: "$share/g/cmd/+".into(),
                options: 0x2e,
                identifier: Some(42)
            },
            StoredSubscription {
                filter: "home/#".into(),
                options: 0x01,
                identifier: None
            },
        ]
    );
    let queued: Vec<_> = s.queued.iter().map(|q| &q.message.payload[..]).collect();
    assert_eq!(
        queued,
        vec![&b"q1"[..], b"q2", b"q3"],
        "order kept, front removed"
    );
    assert!(s.queued.iter().all(|q| q.qos == Qos::AtLeastOnce));
    assert_eq!(
        s.outbound,
        vec![
            OutboundRecord {
                packet_id: 7,
                phase: OutboundPhase::AwaitingAck,
                message: Some(in_flight)
            },
            OutboundRecord {
                packet_id: 9,
                phase: OutboundPhase::AwaitingComp,
                message: None
            },
        ]
    );
    assert_eq!(s.inbound_qos2, vec![5]);
    assert_eq!(s.will, Some(will));
    let forever = &r.sessions[1];
    assert_eq!(
        (forever.client_id.as_str(), forever.expiry_interval),
        ("forever", None)
    );
    assert!(forever.subscriptions.is_empty() && forever.queued.is_empty());
    drop(store);
}

#[test]
fn session_delete_removes_that_client_only() {
    let (_dir, path) = temp_store();
    let (store, _) = DurableStore::open(&path, Durability::Sync).unwrap();
    // "a" is a byte prefix of "ab": keys must not mix them up.
    for id in ["a", "ab"] {
        store.session_put(id, Some(10));
        store.subscription_put(id, "t/#", 1, None);
        store.queued_add(
            id,
            QueuedMessage {
                qos: Qos::AtLeastOnce,
                message: msg("t/1", id, Qos::AtLeastOnce, false),
            },
        );
        store.outbound_put(id, 1, OutboundPhase::AwaitingAck, None);
        store.inbound_qos2(id, 2, true);
        store.will_put(
            id,
            DelayedWill {
                message: msg("w", id, Qos::AtMostOnce, false),
                publish_at_unix_ms: 1,
            },
        );
    }
    store.session_delete("a");
    store.close().unwrap();
    let (_store, r) = DurableStore::open(&path, Durability::Sync).unwrap();
    assert_eq!(r.sessions.len(), 1);
    let s = &r.sessions[0];
    assert_eq!(s.client_id, "ab");
    assert_eq!(
        (
            s.subscriptions.len(),
            s.queued.len(),
            s.outbound.len(),
            s.inbound_qos2.len()
        ),
        (1, 1, 1, 1)
    );
    assert!(s.will.is_some());
}

#[test]
fn queue_order_holds_across_reopens() {
    let (_dir, path) = temp_store();
    for round in 0..3 {
        let (store, r) = DurableStore::open(&path, Durability::Sync).unwrap();
        let before: Vec<String> = r
            .sessions
            .iter()
            .flat_map(|s| s.queued.iter())
            .map(|q| String::from_utf8_lossy(&q.message.payload).into_owned())
            .collect();
        let expected: Vec<String> = (0..round * 2).map(|i| format!("m{i}")).collect();
        assert_eq!(before, expected, "round {round}");
        for i in round * 2..round * 2 + 2 {
            store.queued_add(
                "c",
                QueuedMessage {
                    qos: Qos::AtLeastOnce,
                    message: msg("t", &format!("m{i}"), Qos::AtLeastOnce, false),
                },
            );
        }
        store.close().unwrap();
    }
}

#[test]
fn records_without_a_session_record_are_restored_under_their_client() {
    let (_dir, path) = temp_store();
    let (store, _) = DurableStore::open(&path, Durability::Sync).unwrap();
    store.subscription_put("orphan", "x", 0, None);
    store.close().unwrap();
    let (_store, r) = DurableStore::open(&path, Durability::Sync).unwrap();
    assert_eq!(r.sessions.len(), 1);
    assert!(!r.sessions[0].has_record);
    assert_eq!(r.sessions[0].subscriptions.len(), 1);
}
