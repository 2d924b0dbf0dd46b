//! Routing between nodes: wildcards, `$` topics, one copy per node,
//! interest only where it is, shared groups.

use std::collections::HashMap;
use std::time::Duration;

use culex_cluster::{Error, Inbound, QoS};
use culex_testkit::NatsCluster;

use crate::{await_route, collect_inbound, connect, is_probe, message, routed};

/// Three NATS servers, one culex node on each: a publish on A reaches B
/// once per message whatever the overlap of B's filters, `$` topics only
/// through `$`-filters, and C (no interest) gets nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_cross_nodes_once_with_mqtt_wildcards() {
    let nats = NatsCluster::start();
    let (a, _a_rx) = connect(&nats.urls[0..1], "a").await;
    let (b, mut b_rx) = connect(&nats.urls[1..2], "b").await;
    let (_c, mut c_rx) = connect(&nats.urls[2..3], "c").await;
    for filter in ["a/+", "a/#", "#", "+/b", "a/b", "$SYS/#", "x.y/+"] {
        b.add_interest(filter).expect("filter");
    }
    // A second subscriber of the same filter is counted, not resubscribed.
    b.add_interest("a/#").expect("filter");
    await_route(&a, &b, &mut b_rx.inbound).await;

    let topics = ["a/b", "a", "q/b", "$SYS/up", "x.y/z", "a/b/c"];
    for round in 0..20 {
        for topic in topics {
            let mut m = message(topic, &format!("{round}"), QoS::AtLeastOnce);
            m.retain = round % 2 == 0;
            m.properties = bytes::Bytes::from_static(&[0x01, 0x01]);
            a.publish(&m, "pub-client").await.expect("publish");
        }
    }
    // Not matched by any filter of B: `#` leaves `$other` alone.
    a.publish(&message("$other/x", "", QoS::AtMostOnce), "pub-client")
        .await
        .expect("publish");
    let got = routed(collect_inbound(&mut b_rx.inbound, Duration::from_millis(500)).await);
    let mut per_topic: HashMap<String, usize> = HashMap::new();
    for envelope in &got {
        assert_eq!(envelope.origin, *a.id());
        assert_eq!(envelope.publisher, "pub-client");
        assert_eq!(envelope.message.qos, QoS::AtLeastOnce);
        assert_eq!(envelope.message.properties.as_ref(), &[0x01, 0x01]);
        *per_topic.entry(envelope.message.topic.clone()).or_default() += 1;
    }
    for topic in topics {
        assert_eq!(per_topic.get(topic), Some(&20), "{topic}: {per_topic:?}");
    }
    assert_eq!(got.len(), 20 * topics.len(), "{per_topic:?}");
    let retained = got.iter().filter(|e| e.message.retain).count();
    assert_eq!(retained, 10 * topics.len());

    let at_c = collect_inbound(&mut c_rx.inbound, Duration::from_millis(100)).await;
    assert!(at_c.is_empty(), "C has no interest: {at_c:?}");

    // The last subscriber of a filter gone, its subscription goes; other
    // filters keep theirs.
    for filter in ["a/+", "a/#", "a/#", "#", "+/b", "a/b", "x.y/+"] {
        b.remove_interest(filter).expect("filter");
    }
    b.interest_synced().await.expect("synced");
    await_route(&a, &b, &mut b_rx.inbound).await;
    a.publish(&message("a/b", "late", QoS::AtMostOnce), "p")
        .await
        .expect("publish");
    a.publish(&message("$SYS/late", "", QoS::AtMostOnce), "p")
        .await
        .expect("publish");
    let got = routed(collect_inbound(&mut b_rx.inbound, Duration::from_millis(300)).await);
    let topics: Vec<&str> = got.iter().map(|e| e.message.topic.as_str()).collect();
    assert_eq!(topics, ["$SYS/late"]);

    // Limits the broker turns into reason codes.
    let long = "t/".repeat(2000);
    assert!(matches!(
        a.publish(&message(&long, "", QoS::AtMostOnce), "p").await,
        Err(Error::Topic(_))
    ));
    let mut big = message("a/b", "", QoS::AtMostOnce);
    big.payload = vec![0u8; a.max_message_size()].into();
    assert!(matches!(
        a.publish(&big, "p").await,
        Err(Error::TooLarge { .. })
    ));
    assert!(matches!(b.add_interest("a/#/b"), Err(Error::Topic(_))));
}

/// A shared group with members on three nodes: each message goes to one
/// node, the publisher's own included, and every node gets a share.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_groups_spread_over_nodes_once_each() {
    let nats = NatsCluster::single();
    let mut nodes = Vec::new();
    for name in ["a", "b", "c"] {
        nodes.push(connect(&nats.urls, name).await);
    }
    for (node, _) in &nodes {
        node.add_interest("$share/g/s/#").expect("filter");
        node.add_interest("s/+").expect("filter");
    }
    for (node, _) in &nodes {
        node.interest_synced().await.expect("synced");
    }
    // One NATS server: synced interest is interest everywhere. The probe
    // checks routing works at all before counting.
    let (first, rest) = nodes.split_at_mut(1);
    await_route(&first[0].0, &rest[0].0, &mut rest[0].1.inbound).await;
    const COUNT: usize = 300;
    for i in 0..COUNT {
        nodes[0]
            .0
            .publish(&message("s/x", &i.to_string(), QoS::AtLeastOnce), "p")
            .await
            .expect("publish");
    }
    let mut shared_seen = vec![0usize; COUNT];
    let mut per_node = Vec::new();
    let mut routed_per_node = Vec::new();
    for (_, rx) in &mut nodes {
        let all = collect_inbound(&mut rx.inbound, Duration::from_millis(500)).await;
        let mut shared = 0;
        let mut plain = 0;
        for inbound in all.iter().filter(|i| !is_probe(i)) {
            match inbound {
                Inbound::Shared { filter, envelope } => {
                    assert_eq!(filter, "$share/g/s/#");
                    let i: usize = std::str::from_utf8(&envelope.message.payload)
                        .expect("utf-8")
                        .parse()
                        .expect("index");
                    shared_seen[i] += 1;
                    shared += 1;
                }
                Inbound::Routed(_) => plain += 1,
            }
        }
        per_node.push(shared);
        routed_per_node.push(plain);
    }
    assert!(
        shared_seen.iter().all(|&n| n == 1),
        "each message to one member: {shared_seen:?}"
    );
    assert!(
        per_node.iter().all(|&n| n > 0),
        "every node gets a share: {per_node:?}"
    );
    // The ordinary subscription `s/+` still gets every message on the other
    // nodes, and none back on the publisher's.
    assert_eq!(routed_per_node, [0, COUNT, COUNT]);
}
