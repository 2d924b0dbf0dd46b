//! Tests of culex-cluster against real nats-server processes: each test
//! starts its own NATS (one node, or three clustered on 127.X.Y.1–3) and
//! plays several culex nodes with several `Node`s in one process.

mod durable;
mod mapping;
mod membership;
mod resilience;
mod retained;
mod routing;
mod sessions;

use std::time::{Duration, Instant};

use bytes::Bytes;
use culex_cluster::{Event, Inbound, Message, Node, Options, QoS, Receivers};
use tokio::sync::mpsc;

/// Options with short membership timings, so that a dead node is noticed
/// within about two seconds.
fn fast_options() -> Options {
    Options {
        heartbeat_interval: Duration::from_millis(400),
        node_ttl: Duration::from_secs(2),
        kick_timeout: Duration::from_secs(1),
        ..Options::default()
    }
}

async fn connect(urls: &[String], name: &str) -> (Node, Receivers) {
    match Node::connect(urls, name, fast_options()).await {
        Ok(connected) => connected,
        Err(err) => panic!("node {name} cannot connect to {urls:?}: {err}"),
    }
}

fn message(topic: &str, payload: &str, qos: QoS) -> Message {
    Message {
        topic: topic.to_owned(),
        payload: Bytes::copy_from_slice(payload.as_bytes()),
        qos,
        retain: false,
        properties: Bytes::new(),
    }
}

/// The next inbound message within `timeout`.
async fn next_inbound(rx: &mut mpsc::Receiver<Inbound>, timeout: Duration) -> Option<Inbound> {
    tokio::time::timeout(timeout, rx.recv())
        .await
        .ok()
        .flatten()
}

/// Every inbound message that arrives until `quiet` passes without one.
async fn collect_inbound(rx: &mut mpsc::Receiver<Inbound>, quiet: Duration) -> Vec<Inbound> {
    let mut all = Vec::new();
    while let Some(inbound) = next_inbound(rx, quiet).await {
        all.push(inbound);
    }
    all
}

/// Waits for the first event `pick` accepts, skipping others.
async fn wait_event<T>(
    rx: &mut mpsc::Receiver<Event>,
    timeout: Duration,
    mut pick: impl FnMut(Event) -> Option<T>,
) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.checked_duration_since(Instant::now())?;
        let event = tokio::time::timeout(left, rx.recv()).await.ok()??;
        if let Some(found) = pick(event) {
            return Some(found);
        }
    }
}

/// Makes sure `subscriber`'s interest reached `publisher`'s NATS server:
/// adds a probe filter after the others (interest travels in order) and
/// publishes to it until a probe arrives. Probes left over arrive on
/// `probe/…` topics, which tests ignore.
async fn await_route(publisher: &Node, subscriber: &Node, rx: &mut mpsc::Receiver<Inbound>) {
    let probe = format!("probe/{}", subscriber.id().incarnation);
    subscriber.add_interest(&probe).expect("probe filter");
    subscriber.interest_synced().await.expect("interest synced");
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        publisher
            .publish(&message(&probe, "", QoS::AtMostOnce), "probe")
            .await
            .expect("publish probe");
        if let Some(inbound) = next_inbound(rx, Duration::from_millis(100)).await {
            assert!(
                is_probe(&inbound),
                "unexpected message before the probe: {inbound:?}"
            );
            subscriber.remove_interest(&probe).expect("probe filter");
            return;
        }
    }
    panic!(
        "interest of {} never reached {}",
        subscriber.id(),
        publisher.id()
    );
}

fn is_probe(inbound: &Inbound) -> bool {
    let envelope = match inbound {
        Inbound::Routed(envelope) | Inbound::Shared { envelope, .. } => envelope,
    };
    envelope.message.topic.starts_with("probe/")
}

/// The envelopes of routed (not shared) messages, probes left out.
fn routed(all: Vec<Inbound>) -> Vec<culex_cluster::Envelope> {
    all.into_iter()
        .filter(|inbound| !is_probe(inbound))
        .map(|inbound| match inbound {
            Inbound::Routed(envelope) => envelope,
            other => panic!("expected a routed message, got {other:?}"),
        })
        .collect()
}

/// The index (0-based) of the NATS server that leads `stream`.
async fn stream_leader(urls: &[String], stream: &str) -> usize {
    let client = async_nats::connect(urls[0].as_str())
        .await
        .expect("connect");
    let js = async_nats::jetstream::new(client);
    let mut stream = js.get_stream(stream).await.expect("stream");
    let info = stream.info().await.expect("stream info");
    let leader = info
        .cluster
        .as_ref()
        .and_then(|cluster| cluster.leader.clone())
        .expect("a stream leader");
    // The test cluster names its servers n1, n2, n3.
    leader
        .strip_prefix('n')
        .and_then(|n| n.parse::<usize>().ok())
        .and_then(|n| n.checked_sub(1))
        .expect("leader named nN")
}
