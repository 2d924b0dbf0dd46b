//! NATS failures: unreachable servers, the loss of one node of three.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use culex_cluster::{Event, QoS};
use culex_testkit::NatsCluster;

use crate::{connect, message, stream_leader, wait_event};

/// Losing the NATS server is reported (netsplit mode) and so is getting it
/// back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_nats_is_reported_and_so_is_its_return() {
    let mut nats = NatsCluster::single();
    let (_node, mut rx) = connect(&nats.urls, "a").await;
    nats.kill(0);
    let event = wait_event(
        &mut rx.events,
        Duration::from_secs(10),
        |event| match event {
            Event::Disconnected => Some(()),
            _ => None,
        },
    )
    .await;
    assert!(event.is_some(), "no Disconnected event");
    nats.restart(0);
    let event = wait_event(
        &mut rx.events,
        Duration::from_secs(15),
        |event| match event {
            Event::Connected => Some(()),
            _ => None,
        },
    )
    .await;
    assert!(
        event.is_some(),
        "no Connected event after the server came back"
    );
}

/// Spooling (JetStream, R3) under load while one NATS server of three is
/// killed: writes stall or fail for a few seconds, and every acknowledged
/// message is there afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn losing_one_nats_node_of_three_loses_no_acknowledged_message() {
    let mut nats = NatsCluster::start();
    let (writer, _w_rx) = connect(&nats.urls, "writer").await;
    let (reader, _r_rx) = connect(&nats.urls[1..], "reader").await;
    const WRITERS: u64 = 8;
    const PER_WRITER: u64 = 400;
    let acked = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(40);
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let (node, acked) = (writer.clone(), acked.clone());
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            for i in 0..PER_WRITER {
                if Instant::now() > deadline {
                    break;
                }
                let payload = format!("{w}-{i}");
                let spooled = node
                    .spool("load", &message("load/x", &payload, QoS::AtLeastOnce))
                    .await;
                match spooled {
                    Ok(()) => {
                        acked.fetch_add(1, Ordering::Relaxed);
                        mine.push(payload);
                    }
                    Err(err) => eprintln!("spool failed: {err}"),
                }
            }
            mine
        }));
    }
    // Kill the leader of the offline-queue stream, mid-load: the worst
    // node to lose (a follower's loss is not even visible).
    let leader = stream_leader(&nats.urls, "culex_SQ").await;
    let started = Instant::now();
    while acked.load(Ordering::Relaxed) < WRITERS * PER_WRITER / 4 {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "load did not start"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    nats.kill(leader);
    let mut expected = Vec::new();
    for task in tasks {
        expected.extend(task.await.expect("writer task"));
    }
    // Reads, too, may fail while a new stream leader is elected.
    let read_until = Instant::now() + Duration::from_secs(20);
    let spool = loop {
        match reader.read_spool("load").await {
            Ok(spool) => break spool,
            Err(err) if Instant::now() < read_until => {
                eprintln!("read back failed, retrying: {err}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(err) => panic!("read back: {err}"),
        }
    };
    let stored: std::collections::HashSet<String> = spool
        .messages
        .iter()
        .map(|m| String::from_utf8_lossy(&m.payload).into_owned())
        .collect();
    let lost: Vec<&String> = expected.iter().filter(|p| !stored.contains(*p)).collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged messages lost: {lost:?}",
        lost.len()
    );
    assert!(
        expected.len() as u64 > WRITERS * PER_WRITER / 2,
        "too few writes succeeded after the loss: {}",
        expected.len()
    );
}
