//! Retained messages: one view from every node.

use culex_cluster::{Error, QoS};
use culex_testkit::NatsCluster;

use crate::{connect, message};

/// Set on one node (R3 stream on three NATS servers), read exactly and by
/// filter from another, cleared from a third.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retained_messages_are_one_view_from_every_node() {
    let nats = NatsCluster::start();
    let (a, _a_rx) = connect(&nats.urls[0..1], "a").await;
    let (b, _b_rx) = connect(&nats.urls[1..2], "b").await;
    let (c, _c_rx) = connect(&nats.urls[2..3], "c").await;
    for (topic, payload) in [
        ("home/kitchen/led", "on"),
        ("home/hall/led", "off"),
        ("home/hall/led", "dim"),
        ("home", "root"),
        ("home/a.b/led", "dots"),
        ("$SYS/broker/uptime", "5"),
        ("other/x", "x"),
    ] {
        let mut m = message(topic, payload, QoS::AtLeastOnce);
        m.retain = true;
        a.set_retained(&m).await.expect("set retained");
    }
    let hall = b.get_retained("home/hall/led").await.expect("get");
    assert_eq!(
        hall.map(|m| m.payload),
        Some("dim".into()),
        "the last one wins"
    );
    assert_eq!(b.get_retained("home/none").await.expect("get"), None);

    let topics = |messages: Vec<culex_cluster::Message>| {
        let mut topics: Vec<String> = messages.into_iter().map(|m| m.topic).collect();
        topics.sort();
        topics
    };
    assert_eq!(
        topics(b.retained_matching("home/+/led").await.expect("scan")),
        ["home/a.b/led", "home/hall/led", "home/kitchen/led"]
    );
    assert_eq!(
        topics(c.retained_matching("home/#").await.expect("scan")),
        ["home", "home/a.b/led", "home/hall/led", "home/kitchen/led"]
    );
    assert_eq!(
        topics(c.retained_matching("#").await.expect("scan")).len(),
        5,
        "no $ topics"
    );
    assert_eq!(
        topics(c.retained_matching("$SYS/#").await.expect("scan")),
        ["$SYS/broker/uptime"]
    );
    assert!(c
        .retained_matching("none/#")
        .await
        .expect("scan")
        .is_empty());

    // An empty payload clears it, from any node.
    c.set_retained(&message("home/hall/led", "", QoS::AtMostOnce))
        .await
        .expect("clear");
    assert_eq!(a.get_retained("home/hall/led").await.expect("get"), None);
    assert_eq!(
        topics(a.retained_matching("home/+/led").await.expect("scan")),
        ["home/a.b/led", "home/kitchen/led"]
    );

    let mut big = message("big", "", QoS::AtMostOnce);
    big.payload = vec![1u8; a.max_message_size()].into();
    assert!(matches!(
        a.set_retained(&big).await,
        Err(Error::TooLarge { .. })
    ));
}
