//! The mapped wildcards deliver exactly what MQTT matching says, on a real
//! nats-server.

use std::time::Duration;

use culex_cluster::subject::Subjects;
use culex_codec::topic::matches;
use culex_testkit::NatsCluster;
use futures_util::{FutureExt, StreamExt};

const TOPICS: &[&str] = &[
    "a",
    "a/b",
    "a/b/c",
    "a.b/c",
    "/lead",
    "a//b",
    "tr/",
    "x/*/>",
    "x/a/b",
    "100%/x",
    "%/x",
    "$SYS/up",
    "$SYS/a/b",
    "$other",
    "a b/c",
    "温度/室",
    "/",
    "a/b/c/d/e",
];

const FILTERS: &[&str] = &[
    "#", "+", "a", "a/#", "a/+", "+/b", "+/lead", "a/+/b", "tr/+", "x/+/+", "x/*/>", "100%/x",
    "+/x", "$SYS/#", "$SYS/+", "+/+", "a.b/c", "a b/#", "温度/+", "/#", "+/#", "a/b/c/#",
    "a/+/c/#",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mapped_wildcards_deliver_exactly_what_mqtt_matches() {
    let nats = NatsCluster::single();
    let client = async_nats::connect(nats.urls[0].as_str())
        .await
        .expect("connect");
    let subjects = Subjects::new("map");
    let mut subscribers = Vec::new();
    for filter in FILTERS {
        let mut subs = Vec::new();
        for pattern in subjects.route_filters(filter).expect("filter maps") {
            subs.push(client.subscribe(pattern).await.expect("subscribe"));
        }
        subscribers.push(subs);
    }
    let mut end = client.subscribe("map.end").await.expect("subscribe");
    client.flush().await.expect("flush");
    for (index, topic) in TOPICS.iter().enumerate() {
        let subject = subjects.route(topic).expect("topic maps");
        assert_eq!(subjects.route_topic(&subject).as_deref(), Ok(*topic));
        client
            .publish(subject, index.to_string().into())
            .await
            .expect("publish");
    }
    client.publish("map.end", "".into()).await.expect("publish");
    // The server delivers to one connection in order: once the end marker
    // is here, every earlier message is in its subscription's queue.
    tokio::time::timeout(Duration::from_secs(10), end.next())
        .await
        .expect("end marker in time")
        .expect("end marker");
    let mut wrong = Vec::new();
    for (filter, subs) in FILTERS.iter().zip(subscribers.iter_mut()) {
        let mut counts = vec![0; TOPICS.len()];
        for sub in subs.iter_mut() {
            while let Some(Some(message)) = sub.next().now_or_never() {
                let index: usize = std::str::from_utf8(&message.payload)
                    .expect("utf-8")
                    .parse()
                    .expect("index");
                counts[index] += 1;
            }
        }
        for (topic, count) in TOPICS.iter().zip(counts) {
            let expected = usize::from(matches(filter, topic));
            if count != expected {
                wrong.push(format!(
                    "{filter} ~ {topic}: {count} deliveries, MQTT says {expected}"
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
