//! The durable tier: QoS 1/2 messages stored in `MSGS` and routed by the
//! store's own publish.

use std::collections::HashMap;
use std::time::Duration;

use culex_cluster::{Envelope, Error, QoS};
use culex_testkit::NatsCluster;
use futures_util::StreamExt;

use crate::{await_route, collect_inbound, connect, message, routed};

fn text(envelope: &Envelope) -> String {
    String::from_utf8_lossy(&envelope.message.payload).into_owned()
}

fn topics(envelopes: &[Envelope]) -> Vec<&str> {
    envelopes
        .iter()
        .map(|envelope| envelope.message.topic.as_str())
        .collect()
}

/// A durable publish on A reaches B once, whatever the overlap of B's
/// filters, and never A, which is subscribed too; QoS 0 goes on beside it.
/// A repeated attempt (the same bytes and message id again, as `store`
/// sends after a lost acknowledgement) is stored once and passed on once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn durable_publishes_reach_other_nodes_once() {
    let nats = NatsCluster::single();
    let (a, mut a_rx) = connect(&nats.urls, "a").await;
    let (b, mut b_rx) = connect(&nats.urls, "b").await;
    a.add_interest("d/#").expect("filter");
    for filter in ["d/#", "d/+", "#"] {
        b.add_interest(filter).expect("filter");
    }
    a.interest_synced().await.expect("synced");
    await_route(&a, &b, &mut b_rx.inbound).await;

    let mut last = 0;
    for i in 0..20 {
        let durable = message("d/x", &i.to_string(), QoS::AtLeastOnce);
        let sequence = a.publish_durable(&durable, "pub").await.expect("durable");
        assert!(sequence > last, "stream sequence {sequence} after {last}");
        last = sequence;
        let plain = message("d/y", &i.to_string(), QoS::AtMostOnce);
        a.publish(&plain, "pub").await.expect("publish");
    }
    let got = routed(collect_inbound(&mut b_rx.inbound, Duration::from_millis(500)).await);
    let mut per_topic: HashMap<(&str, QoS), Vec<String>> = HashMap::new();
    for envelope in &got {
        assert_eq!(envelope.origin, *a.id());
        assert_eq!(envelope.publisher, "pub");
        per_topic
            .entry((envelope.message.topic.as_str(), envelope.message.qos))
            .or_default()
            .push(text(envelope));
    }
    let all: Vec<String> = (0..20).map(|i| i.to_string()).collect();
    for key in [("d/x", QoS::AtLeastOnce), ("d/y", QoS::AtMostOnce)] {
        let mut payloads = per_topic.remove(&key).unwrap_or_default();
        payloads.sort_by_key(|p| p.parse::<u32>().unwrap_or(0));
        assert_eq!(payloads, all, "{key:?}");
    }
    assert!(per_topic.is_empty(), "unexpected: {per_topic:?}");
    let own = collect_inbound(&mut a_rx.inbound, Duration::from_millis(100)).await;
    assert!(own.is_empty(), "A got its own messages back: {own:?}");

    // Catch one durable publish as it goes out, then send it again.
    let raw = async_nats::connect(nats.urls[0].as_str())
        .await
        .expect("connect");
    let mut tap = raw.subscribe("culex.q.u.d.retry").await.expect("tap");
    raw.flush().await.expect("flush");
    let retry = message("d/retry", "once", QoS::ExactlyOnce);
    let sequence = a.publish_durable(&retry, "pub").await.expect("durable");
    let sent = tokio::time::timeout(Duration::from_secs(5), tap.next())
        .await
        .expect("tapped in time")
        .expect("tapped");
    let headers = sent.headers.clone().expect("a message id header");
    assert!(headers.get("Nats-Msg-Id").is_some());
    let ack = async_nats::jetstream::new(raw)
        .publish_with_headers(sent.subject.clone(), headers, sent.payload.clone())
        .await
        .expect("publish again")
        .await
        .expect("acknowledged");
    assert!(ack.duplicate, "the stream keeps one copy");
    assert_eq!(ack.sequence, sequence);
    let got = routed(collect_inbound(&mut b_rx.inbound, Duration::from_millis(300)).await);
    assert_eq!(
        topics(&got),
        ["d/retry"],
        "two copies arrived, one passed on"
    );
    assert!(matches!(
        a.publish_durable(&message("d/#", "", QoS::AtLeastOnce), "p")
            .await,
        Err(Error::Topic(_))
    ));
}
