//! What an administrator does through the core's owner API (kick, remove a
//! subscription, delete a retained message), what the read-only views show
//! of clients and topics, and the counters behind the metrics.

use std::time::Duration;

use culex_codec::packet::{Publish, Subscribe};
use culex_codec::topic::{TopicFilter, TopicName};
use culex_codec::{Packet, Properties, Protocol, QoS, ReasonCode, Seq, SubscriptionOptions};

use super::{Raw, Sim};
use crate::core::drops::DropReason;
use crate::core::observe::ClientQuery;
use crate::testing::local_config;
use crate::testing::raw::{pid, ConnectOpts};

const QUIET: Duration = Duration::from_millis(300);

fn connect5(port: u16, client_id: &str, clean: bool, properties: Properties<'_>) -> Raw {
    let (c, _, reason) = Raw::connect_with(
        port,
        ConnectOpts {
            client_id,
            clean,
            protocol: Protocol::V5,
            keep_alive: 42,
            will: Some(("will/x", b"gone", QoS::AtMostOnce, false)),
            properties,
            ..ConnectOpts::default()
        },
    );
    assert_eq!(reason, ReasonCode::Success);
    c
}

fn expiry(secs: u32) -> Properties<'static> {
    Properties {
        session_expiry_interval: Some(secs),
        ..Properties::default()
    }
}

/// A kick closes a 5.0 client with DISCONNECT 0x98, keeps its session and
/// discards its will; the detail shows what its CONNECT said.
#[test]
fn kick_disconnects_with_administrative_action() {
    let broker = Sim::start();
    let core = broker.core().clone();
    let mut watcher = Raw::will_watcher(broker.port());
    let mut c = connect5(broker.port(), "victim", false, expiry(300));
    let info = core.client("victim").unwrap();
    assert!(info.connected);
    assert_eq!(info.protocol, Protocol::V5);
    assert_eq!(info.keep_alive, 42);
    assert_eq!(info.address.unwrap().ip().to_string(), "127.0.0.1");
    assert_eq!(info.will.as_ref().unwrap().topic.as_ref(), "will/x");
    assert!(core.kick("victim"));
    match c.recv().packet() {
        Packet::Disconnect(d) => assert_eq!(d.reason, ReasonCode::AdministrativeAction),
        other => panic!("expected DISCONNECT, got {other:?}"),
    }
    assert!(c.is_closed_within(Duration::from_secs(5)));
    let info = core.client("victim").unwrap();
    assert!(!info.connected, "the session stays, detached");
    assert!(info.will.is_none());
    assert!(watcher.try_recv(QUIET).is_none(), "no will after a kick");
    assert!(!core.kick("victim"), "nobody connected to kick");
    assert!(!core.kick("nobody"));
    // A takeover is still 0x8E, not an administrative action.
    let mut first = connect5(broker.port(), "twice", true, Properties::default());
    let _second = connect5(broker.port(), "twice", true, Properties::default());
    match first.recv().packet() {
        Packet::Disconnect(d) => assert_eq!(d.reason, ReasonCode::SessionTakenOver),
        other => panic!("expected DISCONNECT, got {other:?}"),
    }
}

/// Removing a subscription stops its deliveries; deleting a retained
/// message hides it from new subscribers.
#[test]
fn remove_subscription_and_delete_retained() {
    let broker = Sim::start();
    let core = broker.core().clone();
    let (mut sub, _) = Raw::connect(broker.port(), "sub", true);
    sub.subscribe(&[("a/#", QoS::AtLeastOnce), ("b", QoS::AtMostOnce)]);
    let (mut publ, _) = Raw::connect(broker.port(), "pub", true);
    assert_eq!(core.counts().subscriptions, 2);
    assert!(core.remove_subscription("sub", "a/#"));
    assert!(!core.remove_subscription("sub", "a/#"));
    assert!(!core.remove_subscription("nobody", "b"));
    assert_eq!(core.counts().subscriptions, 1);
    let subs: Vec<String> = core
        .client("sub")
        .unwrap()
        .subscriptions
        .into_iter()
        .map(|s| s.filter)
        .collect();
    assert_eq!(subs, ["b"]);
    publ.publish_acked("a/x", b"1", QoS::AtLeastOnce, true, 1);
    publ.publish("b", b"2", QoS::AtMostOnce, false, 0);
    assert_eq!(sub.recv().publish().payload, b"2");
    assert!(sub.try_recv(QUIET).is_none(), "a/# no longer delivered");

    let page = core.retained_page("#", None, 10, broker.now());
    assert_eq!(page.matched, 1);
    assert_eq!(&*page.messages[0].topic, "a/x");
    assert_eq!(core.counts().retained_bytes, 1);
    assert!(core.delete_retained("a/x"));
    assert!(!core.delete_retained("a/x"));
    assert_eq!(core.counts().retained, 0);
    let (mut late, _) = Raw::connect(broker.port(), "late", true);
    late.subscribe(&[("a/#", QoS::AtMostOnce)]);
    assert!(
        late.try_recv(QUIET).is_none(),
        "the retained message is gone"
    );
}

/// Client pages: search by id or user name, cursor, connected only.
#[test]
fn clients_come_in_pages() {
    let broker = Sim::start();
    let core = broker.core().clone();
    let mut clients = Vec::new();
    for i in 0..5 {
        clients.push(Raw::connect(broker.port(), &format!("dev-{i}"), true).0);
    }
    let (_other, _) = Raw::connect(broker.port(), "Other", true);
    let page = core.client_page(&ClientQuery {
        search: Some("DEV"),
        limit: 2,
        ..ClientQuery::default()
    });
    assert_eq!(page.matched, 5);
    assert!(page.more);
    let ids: Vec<&str> = page.clients.iter().map(|c| &*c.client_id).collect();
    assert_eq!(ids, ["dev-0", "dev-1"]);
    let next = core.client_page(&ClientQuery {
        search: Some("dev"),
        after: Some("dev-1"),
        limit: 10,
        ..ClientQuery::default()
    });
    assert_eq!(next.clients.len(), 3);
    assert!(!next.more);
    drop(clients);
    let connected = core.client_page(&ClientQuery {
        connected_only: true,
        limit: 10,
        ..ClientQuery::default()
    });
    let ids: Vec<&str> = connected.clients.iter().map(|c| &*c.client_id).collect();
    assert_eq!(ids, ["Other"]);
}

/// The topic tree counts messages per node only while watched.
#[test]
fn the_topic_tree_counts_while_watched() {
    let broker = Sim::start();
    let core = broker.core().clone();
    let (mut publ, _) = Raw::connect(broker.port(), "pub", true);
    publ.publish_acked("kept/one", b"r", QoS::AtLeastOnce, true, 1);
    publ.publish_acked("s/unseen", b"0", QoS::AtLeastOnce, false, 2);
    assert!(core.topic_children(None, 0, None, 10).is_none());
    core.watch_topics(broker.now());
    assert!(core.topics_watched());
    let seeded = core.topic_children(None, 0, None, 10).unwrap();
    let names: Vec<&str> = seeded.rows.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["kept"], "seeded with the retained messages");
    for (i, v) in ["20.5", "21", "{\"t\":22}"].iter().enumerate() {
        let id = u16::try_from(i).unwrap() + 3;
        publ.publish_acked("s/temp", v.as_bytes(), QoS::AtLeastOnce, false, id);
    }
    publ.publish_acked("s/hum", b"40", QoS::AtLeastOnce, false, 9);
    let s = core.topic_children(Some("s"), 0, None, 10).unwrap();
    assert_eq!(s.node.total, 4);
    let temp = s.rows.iter().find(|r| r.name == "temp").unwrap();
    assert_eq!(temp.messages, 3);
    let detail = core.topic("s/temp").unwrap();
    let payloads: Vec<&[u8]> = detail.samples.iter().map(|s| &s.payload[..]).collect();
    assert_eq!(payloads, [&b"20.5"[..], b"21", b"{\"t\":22}"]);
    core.unwatch_topics();
    assert!(!core.topics_watched());
    assert!(core.topic("s/temp").is_none());
}

/// Every drop is counted by reason, per session and broker-wide.
#[test]
fn drops_are_counted_by_reason() {
    let broker = Sim::start();
    let core = broker.core().clone();
    // QoS 0 for an offline persistent session.
    let (mut off, _) = Raw::connect(broker.port(), "offline", false);
    off.subscribe(&[("d/#", QoS::AtMostOnce)]);
    off.disconnect();
    // A 5.0 client whose Maximum Packet Size is too small for the message.
    let small = Properties {
        maximum_packet_size: Some(40),
        ..Properties::default()
    };
    let mut tiny = connect5(broker.port(), "tiny", true, small);
    let list = [(
        TopicFilter::new("d/#").unwrap(),
        SubscriptionOptions {
            qos: QoS::AtLeastOnce,
            ..SubscriptionOptions::default()
        },
    )];
    tiny.send(&Packet::Subscribe(Subscribe {
        packet_id: pid(1),
        properties: Properties::default(),
        filters: Seq::Items(&list),
    }));
    assert!(matches!(tiny.recv().packet(), Packet::SubAck(_)));
    let (mut publ, _) = Raw::connect(broker.port(), "pub", true);
    publ.publish_acked("d/big", &[b'x'; 100], QoS::AtLeastOnce, false, 1);
    assert!(tiny.try_recv(QUIET).is_none(), "too large for it");
    // Expired while queued for a persistent QoS 1 session.
    let (mut later, _) = Raw::connect(broker.port(), "later", false);
    later.subscribe(&[("e", QoS::AtLeastOnce)]);
    later.disconnect();
    let mut p5 = connect5(broker.port(), "p5", true, Properties::default());
    p5.send(&Packet::Publish(Publish {
        dup: false,
        qos: QoS::AtLeastOnce,
        retain: false,
        topic: TopicName::new("e").unwrap(),
        packet_id: Some(pid(1)),
        properties: Properties {
            message_expiry_interval: Some(1),
            ..Properties::default()
        },
        payload: b"short-lived",
    }));
    assert!(matches!(p5.recv().packet(), Packet::PubAck(_)));
    broker.advance(Duration::from_secs(2));
    let (mut later, _) = Raw::connect(broker.port(), "later", false);
    assert!(later.try_recv(QUIET).is_none(), "expired");

    let stats = core.stats();
    assert_eq!(stats.dropped(DropReason::Qos0Offline), 1);
    assert_eq!(stats.dropped(DropReason::PacketTooLarge), 1);
    assert_eq!(stats.dropped(DropReason::Expired), 1);
    assert_eq!(stats.dropped_total(), 3);
    let offline = core.client("offline").unwrap();
    assert_eq!(offline.drops.get(DropReason::Qos0Offline), 1);
    assert_eq!(core.client("tiny").unwrap().drops.total(), 1);
}

/// The ACL refusing a delivery counts as a drop.
#[test]
fn acl_denied_deliveries_are_counted() {
    let dir = tempfile::tempdir().unwrap();
    let acl = culex_testkit::write_file(
        dir.path(),
        "acl",
        "user writer\ntopic write a/#\nuser reader\ntopic read a/#\ntopic deny a/secret\n",
    );
    let mut config = local_config();
    config.security.acl_file = Some(acl);
    let broker = Sim::start_with(config);
    let login = |client_id, username| {
        let (c, _, reason) = Raw::connect_with(
            broker.port(),
            ConnectOpts {
                client_id,
                username: Some(username),
                ..ConnectOpts::default()
            },
        );
        assert_eq!(reason, ReasonCode::Success);
        c
    };
    let mut reader = login("r", "reader");
    assert_eq!(reader.subscribe(&[("a/#", QoS::AtMostOnce)]), vec![0]);
    let mut writer = login("w", "writer");
    writer.publish_acked("a/secret", b"no", QoS::AtLeastOnce, false, 1);
    writer.publish_acked("a/open", b"yes", QoS::AtLeastOnce, false, 2);
    assert_eq!(reader.recv().publish().payload, b"yes");
    let stats = broker.core().stats();
    assert_eq!(stats.dropped(DropReason::AclDenied), 1);
}

/// Connections by listener and protocol, and messages and bytes by QoS.
#[test]
fn connections_and_messages_are_counted() {
    let broker = Sim::start();
    let stats = broker.core().stats();
    let (mut sub, _) = Raw::connect(broker.port(), "sub", true);
    sub.subscribe(&[("m", QoS::ExactlyOnce)]);
    let mut p5 = connect5(broker.port(), "p5", true, Properties::default());
    let listener = &stats.listeners()[0];
    assert_eq!(listener.connected(Protocol::V3_1_1), 1);
    assert_eq!(listener.connected(Protocol::V5), 1);
    p5.send(&Packet::Publish(Publish {
        dup: false,
        qos: QoS::AtMostOnce,
        retain: false,
        topic: TopicName::new("m").unwrap(),
        packet_id: None,
        properties: Properties::default(),
        payload: b"12345",
    }));
    assert_eq!(sub.recv().publish().payload, b"12345");
    use std::sync::atomic::Ordering::Relaxed;
    assert_eq!(stats.publish_received[0].load(Relaxed), 1);
    assert_eq!(stats.publish_received_bytes[0].load(Relaxed), 5);
    assert_eq!(stats.publish_sent[0].load(Relaxed), 1);
    assert_eq!(stats.publish_sent_bytes[0].load(Relaxed), 5);
    // Control packets, counted per batch rather than per packet: in, two
    // CONNECTs, a SUBSCRIBE and a PUBLISH; out, two CONNACKs, a SUBACK and
    // the PUBLISH to the subscriber.
    assert_eq!(stats.packets_received.load(Relaxed), 4);
    assert_eq!(stats.packets_sent.load(Relaxed), 4);
    drop(p5);
    sub.sync();
    assert_eq!(listener.connected(Protocol::V5), 0);
    assert_eq!(listener.connects(Protocol::V5), 1);
}
