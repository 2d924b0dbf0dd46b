//! The durable tier: QoS 1/2 messages stored in `MSGS` and routed by the
//! store's own publish, replayed by time and filter, recovered after a gap.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use culex_cluster::{Envelope, Error, Event, Inbound, Node, QoS};
use culex_testkit::NatsCluster;

use crate::{
    await_route, collect_inbound, connect, is_probe, message, routed, stream_leader, wait_event,
};

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

    // Read one durable publish back from the stream as it was sent, then
    // send it again. (A tap subscribed on another connection could miss it:
    // nothing orders that connection's SUB before the node's publish.)
    let raw = async_nats::connect(nats.urls[0].as_str())
        .await
        .expect("connect");
    let retry = message("d/retry", "once", QoS::ExactlyOnce);
    let sequence = a.publish_durable(&retry, "pub").await.expect("durable");
    let jetstream = async_nats::jetstream::new(raw);
    let sent = jetstream
        .get_stream("culex_MSGS")
        .await
        .expect("the stream")
        .get_raw_message(sequence)
        .await
        .expect("stored");
    assert_eq!(sent.subject.as_str(), "culex.q.u.d.retry");
    let headers = sent.headers.clone();
    assert!(headers.get("Nats-Msg-Id").is_some());
    let ack = jetstream
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

/// `replay` reads what was stored after a time, by filter, oldest first,
/// from every origin, up to a limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_returns_the_later_messages_that_match() {
    let nats = NatsCluster::single();
    let (a, _a_rx) = connect(&nats.urls, "a").await;
    let (b, _b_rx) = connect(&nats.urls, "b").await;
    for topic in ["r/a", "r/b/c", "$SYS/x"] {
        let early = message(topic, "early", QoS::AtLeastOnce);
        a.publish_durable(&early, "pa").await.expect("durable");
    }
    // Stream timestamps and `since` read the same clock here.
    tokio::time::sleep(Duration::from_millis(20)).await;
    let since = SystemTime::now();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let later = [
        (&a, "r/a"),
        (&b, "r/b/c"),
        (&a, "$SYS/x"),
        (&a, "other/z"),
        (&b, "r"),
        (&b, "rr/x"),
    ];
    for (i, (node, topic)) in later.iter().enumerate() {
        let m = message(topic, &format!("later-{i}"), QoS::ExactlyOnce);
        node.publish_durable(&m, "p").await.expect("durable");
    }
    let replay = |filters: &[&str], limit: usize, since: SystemTime| {
        let filters: Vec<String> = filters.iter().map(|f| f.to_string()).collect();
        let a = a.clone();
        async move { a.replay(since, &filters, limit).await.expect("replay") }
    };

    let found = replay(&["r/#"], 100, since).await;
    assert_eq!(topics(&found), ["r/a", "r/b/c", "r"]);
    assert_eq!(found[0].origin, *a.id(), "its own messages too");
    assert_eq!(found[1].origin, *b.id());
    assert_eq!(text(&found[1]), "later-1");
    assert_eq!(found[1].message.qos, QoS::ExactlyOnce);
    let found = replay(&["#"], 100, since).await;
    assert_eq!(topics(&found), ["r/a", "r/b/c", "other/z", "r", "rr/x"]);
    let found = replay(&["$share/g/+/x", "$SYS/#"], 100, since).await;
    assert_eq!(topics(&found), ["$SYS/x", "rr/x"]);
    // Overlapping patterns are read more widely, and matched here.
    let found = replay(&["r/+", "+/a", "r/#"], 100, since).await;
    assert_eq!(topics(&found), ["r/a", "r/b/c", "r"]);
    let found = replay(&["r/+", "+/z"], 100, since).await;
    assert_eq!(topics(&found), ["r/a", "other/z"]);
    let found = replay(&["#"], 2, since).await;
    assert_eq!(topics(&found), ["r/a", "r/b/c"]);
    let found = replay(&["r/#"], 100, UNIX_EPOCH).await;
    assert_eq!(topics(&found), ["r/a", "r/b/c", "r/a", "r/b/c", "r"]);
    assert_eq!(text(&found[0]), "early");
    assert!(replay(&[], 100, UNIX_EPOCH).await.is_empty());
    assert!(replay(&["#"], 0, UNIX_EPOCH).await.is_empty());
    let future = SystemTime::now() + Duration::from_secs(3600);
    assert!(replay(&["#"], 100, future).await.is_empty());
    assert!(matches!(
        a.replay(since, &["a/#/b".to_owned()], 10).await,
        Err(Error::Topic(_))
    ));
}

/// `replay` from the start of each of several rounds of publishes, with
/// filter sets of every shape (one pattern, several, overlapping, `$`),
/// gives exactly what MQTT matching over the stored messages gives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_agrees_with_mqtt_matching_from_any_start() {
    let nats = NatsCluster::single();
    let (a, _a_rx) = connect(&nats.urls, "a").await;
    let pool = ["r/a", "r/b/c", "$SYS/x", "o/z", "r", "rr/x", "a/b", "r/a/x"];
    let (mut starts, mut published) = (Vec::new(), Vec::new());
    let mut seed = 0x5eed_u64;
    for round in 0..4 {
        tokio::time::sleep(Duration::from_millis(5)).await;
        starts.push(SystemTime::now());
        tokio::time::sleep(Duration::from_millis(5)).await;
        for i in 0..12 {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
            let topic = pool[(seed >> 33) as usize % pool.len()];
            let payload = format!("{round}-{i}");
            let m = message(topic, &payload, QoS::AtLeastOnce);
            a.publish_durable(&m, "p").await.expect("durable");
            published.push((round, topic, payload));
        }
    }
    let filter_sets: [&[&str]; 7] = [
        &["#"],
        &["r/#"],
        &["r/#", "$SYS/#"],
        &["$SYS/+", "+/x", "r"],
        &["a/b", "r/a", "rr/x"],
        &["+/+", "r/+/x"],
        &["r/+", "+/a", "#"],
    ];
    for (round, start) in starts.iter().enumerate() {
        for filters in filter_sets {
            let expected: Vec<&str> = published
                .iter()
                .filter(|(r, topic, _)| {
                    *r >= round
                        && filters
                            .iter()
                            .any(|f| culex_codec::topic::matches(f, topic))
                })
                .map(|(_, _, payload)| payload.as_str())
                .collect();
            let filters: Vec<String> = filters.iter().map(|f| f.to_string()).collect();
            let found = a.replay(*start, &filters, 1000).await.expect("replay");
            let found: Vec<String> = found.iter().map(text).collect();
            assert_eq!(found, expected, "from round {round}, {filters:?}");
        }
    }
}

/// A gap in B's interest, then `recover_routed` from before everything:
/// only the messages B did not receive are passed on (the others are
/// recognised as copies), neither B's own nor its shared group's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recovery_passes_on_only_what_was_missed() {
    let nats = NatsCluster::single();
    let (a, _a_rx) = connect(&nats.urls, "a").await;
    let (b, mut b_rx) = connect(&nats.urls, "b").await;
    b.add_interest("g/#").expect("filter");
    b.add_interest("$share/s/g/#").expect("filter");
    await_route(&a, &b, &mut b_rx.inbound).await;
    let start = SystemTime::now();
    for i in 0..10 {
        let m = message(&format!("g/{i}"), "seen", QoS::AtLeastOnce);
        a.publish_durable(&m, "p").await.expect("durable");
    }
    let (seen, shared) =
        split(collect_inbound(&mut b_rx.inbound, Duration::from_millis(300)).await);
    assert_eq!(seen.len(), 10);
    assert_eq!(shared, 10);

    // The gap: B is not subscribed while A publishes five more.
    b.remove_interest("g/#").expect("filter");
    await_route(&a, &b, &mut b_rx.inbound).await;
    for i in 0..5 {
        let m = message(&format!("g/missed/{i}"), "missed", QoS::AtLeastOnce);
        a.publish_durable(&m, "p").await.expect("durable");
    }
    b.publish_durable(&message("g/own", "own", QoS::AtLeastOnce), "p")
        .await
        .expect("durable");
    let (live, shared) =
        split(collect_inbound(&mut b_rx.inbound, Duration::from_millis(300)).await);
    assert!(live.is_empty(), "not subscribed, yet got {live:?}");
    assert_eq!(shared, 6, "the shared group still gets them, B's own too");

    b.add_interest("g/#").expect("filter");
    let passed = b.recover_routed(start).await.expect("recover");
    assert_eq!(passed, 5);
    let (recovered, shared) =
        split(collect_inbound(&mut b_rx.inbound, Duration::from_millis(300)).await);
    assert_eq!(shared, 0);
    let expected: Vec<String> = (0..5).map(|i| format!("g/missed/{i}")).collect();
    assert_eq!(topics(&recovered), expected);
    assert!(recovered.iter().all(|e| e.origin == *a.id()));
    assert_eq!(b.recover_routed(start).await.expect("recover"), 0);
}

/// Routed envelopes, and the number of shared ones, probes left out.
fn split(all: Vec<Inbound>) -> (Vec<Envelope>, usize) {
    let mut plain = Vec::new();
    let mut shared = 0;
    for inbound in all.into_iter().filter(|inbound| !is_probe(inbound)) {
        match inbound {
            Inbound::Routed(envelope) => plain.push(envelope),
            Inbound::Shared { .. } => shared += 1,
        }
    }
    (plain, shared)
}

/// Three NATS servers; B's is killed during a burst of durable publishes
/// on A and comes back. After B reconnects, `recover_routed` from the
/// disconnection fills the gap: every acknowledged publish reaches B
/// exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recovery_after_a_lost_nats_server_fills_the_gap_once() {
    let mut nats = NatsCluster::start();
    let (a, _a_rx) = connect(&nats.urls[0..1], "a").await;
    // B's server must be neither A's nor the stream's leader, whose loss
    // would stall A's writes for seconds.
    let leader = stream_leader(&nats.urls, "culex_MSGS").await;
    let lost = if leader == 1 { 2 } else { 1 };
    let (b, b_rx) = connect(&nats.urls[lost..=lost], "b").await;
    let (mut b_inbound, mut b_events) = (b_rx.inbound, b_rx.events);
    b.add_interest("burst/#").expect("filter");
    await_route(&a, &b, &mut b_inbound).await;

    let received = Arc::new(Mutex::new(Vec::new()));
    let collector = tokio::spawn(collect_payloads(b_inbound, received.clone()));
    let stop = Arc::new(AtomicBool::new(false));
    let publisher = tokio::spawn(publish_burst(a.clone(), stop.clone()));
    assert!(wait_for(|| received.lock().expect("lock").len() >= 100).await);

    nats.kill(lost);
    let disconnected = wait_event(&mut b_events, Duration::from_secs(10), |event| {
        matches!(event, Event::Disconnected).then(SystemTime::now)
    })
    .await
    .expect("B disconnected");
    tokio::time::sleep(Duration::from_millis(300)).await;
    tokio::task::block_in_place(|| nats.restart(lost));
    let connected = wait_event(&mut b_events, Duration::from_secs(20), |event| {
        matches!(event, Event::Connected).then_some(())
    })
    .await;
    assert!(connected.is_some(), "B did not reconnect");
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.store(true, Ordering::Relaxed);
    let acked = publisher.await.expect("publisher");

    let since = disconnected - Duration::from_secs(1);
    let passed = b.recover_routed(since).await.expect("recover");
    // Whatever is still missing after this, the assertions below name.
    wait_for(|| received.lock().expect("lock").len() >= acked.len()).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    collector.abort();
    let received = received.lock().expect("lock").clone();
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for payload in &received {
        *counts.entry(payload.as_str()).or_default() += 1;
    }
    let twice: Vec<_> = counts.iter().filter(|(_, &n)| n > 1).collect();
    assert!(twice.is_empty(), "received more than once: {twice:?}");
    let missing: Vec<&String> = acked
        .iter()
        .filter(|p| !counts.contains_key(p.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged never arrived (recovered {passed}): {missing:?}",
        missing.len(),
        acked.len()
    );
    assert!(passed > 0, "the gap held no message: nothing was tested");
}

/// Publishes `burst/N` durably, one at a time, until `stop`; returns the
/// payloads acknowledged.
async fn publish_burst(node: Node, stop: Arc<AtomicBool>) -> HashSet<String> {
    let mut acked = HashSet::new();
    let mut i = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let payload = i.to_string();
        let m = message(&format!("burst/{}", i % 7), &payload, QoS::AtLeastOnce);
        match node.publish_durable(&m, "p").await {
            Ok(_) => {
                acked.insert(payload);
            }
            Err(err) => eprintln!("durable publish {i} failed: {err}"),
        }
        i += 1;
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    acked
}

async fn collect_payloads(
    mut inbound: tokio::sync::mpsc::Receiver<Inbound>,
    into: Arc<Mutex<Vec<String>>>,
) {
    while let Some(inbound) = inbound.recv().await {
        if let Inbound::Routed(envelope) = &inbound {
            if !is_probe(&inbound) {
                into.lock().expect("lock").push(text(envelope));
            }
        }
    }
}

/// Waits up to 10 s for `done`; whether it came.
async fn wait_for(mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    true
}
