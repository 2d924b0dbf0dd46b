//! Membership and the adoption of a dead node's sessions.

use std::time::{Duration, Instant};

use bytes::Bytes;
use culex_cluster::{Adoption, Event, NodeId, QoS, SessionRecord, Will};
use culex_testkit::NatsCluster;
use tokio::sync::mpsc;

use crate::{connect, message, wait_event};

fn with_will(client_id: &str) -> SessionRecord {
    SessionRecord {
        client_id: client_id.to_owned(),
        owner: NodeId {
            name: String::new(),
            incarnation: 0,
        },
        epoch: 0,
        expiry_interval: if client_id.ends_with("clean") { 0 } else { 600 },
        connected: true,
        will: Some(Will {
            message: message(&format!("will/{client_id}"), "gone", QoS::AtLeastOnce),
            delay_interval: 0,
        }),
        subscriptions: Bytes::from_static(b"s/#"),
    }
}

async fn adoptions(rx: &mut mpsc::Receiver<Event>, quiet: Duration) -> Vec<Adoption> {
    let mut found = Vec::new();
    while let Some(adoption) = wait_event(rx, quiet, |event| match event {
        Event::Adopted(adoption) => Some(*adoption),
        _ => None,
    })
    .await
    {
        found.push(adoption);
    }
    found
}

/// A node that stops (dropped without leaving: a crash) is reported down
/// within its TTL, and each of its sessions is adopted by exactly one
/// survivor, which gets the will; a graceful leave is seen at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_nodes_sessions_and_wills_are_adopted_once() {
    let nats = NatsCluster::single();
    let (b, mut b_rx) = connect(&nats.urls, "b").await;
    let (c, mut c_rx) = connect(&nats.urls, "c").await;
    let (dead, _dead_rx) = connect(&nats.urls, "dead").await;
    let dead_id = dead.id().clone();
    let up = wait_event(
        &mut b_rx.events,
        Duration::from_secs(5),
        |event| match event {
            Event::NodeUp(id) if id.name == "dead" => Some(id),
            _ => None,
        },
    )
    .await;
    assert_eq!(up.as_ref(), Some(&dead_id));
    let ids: Vec<String> = (0..6)
        .map(|i| {
            if i % 2 == 0 {
                format!("p{i}")
            } else {
                format!("p{i}-clean")
            }
        })
        .collect();
    for id in &ids {
        dead.claim(id, with_will(id)).await.expect("claim");
    }
    // A session the dead node lost to b before dying is not adopted.
    dead.claim("moved", with_will("moved"))
        .await
        .expect("claim");
    b.claim("moved", with_will("moved")).await.expect("claim");

    let killed = Instant::now();
    drop(dead);
    let down = wait_event(
        &mut c_rx.events,
        Duration::from_secs(6),
        |event| match event {
            Event::NodeDown(id) => Some(id),
            _ => None,
        },
    )
    .await;
    assert_eq!(down, Some(dead_id.clone()));
    let noticed = killed.elapsed();
    assert!(noticed < Duration::from_secs(5), "down after {noticed:?}");

    let (from_b, from_c) = tokio::join!(
        adoptions(&mut b_rx.events, Duration::from_secs(2)),
        adoptions(&mut c_rx.events, Duration::from_secs(2))
    );
    let mut adopted: Vec<String> = from_b
        .iter()
        .chain(&from_c)
        .map(|a| a.record.client_id.clone())
        .collect();
    adopted.sort();
    let mut expected = ids.clone();
    expected.sort();
    assert_eq!(adopted, expected, "each session adopted once");
    for (winner, adoption) in from_b
        .iter()
        .map(|a| (b.id(), a))
        .chain(from_c.iter().map(|a| (c.id(), a)))
    {
        assert_eq!(adoption.dead, dead_id);
        assert_eq!(adoption.record.owner, *winner);
        assert!(!adoption.record.connected);
        assert_eq!(
            adoption.record.will, None,
            "the will is handed over, not kept"
        );
        let will = adoption.will.as_ref().expect("will");
        assert_eq!(
            will.message.topic,
            format!("will/{}", adoption.record.client_id)
        );
        let (stored, revision) = b
            .session(&adoption.record.client_id)
            .await
            .expect("read")
            .expect("stored");
        assert_eq!((&stored, revision), (&adoption.record, adoption.revision));
    }

    // A graceful leave is reported without waiting for the TTL.
    let left = c.id().clone();
    let started = Instant::now();
    c.shutdown().await.expect("shutdown");
    let down = wait_event(
        &mut b_rx.events,
        Duration::from_secs(2),
        |event| match event {
            Event::NodeDown(id) => Some(id),
            _ => None,
        },
    )
    .await;
    assert_eq!(down, Some(left));
    assert!(started.elapsed() < Duration::from_secs(2));
    // b adopts what c had adopted.
    let again = adoptions(&mut b_rx.events, Duration::from_secs(2)).await;
    assert_eq!(again.len(), from_c.len());
}

/// A node that starts while a dead node's key has already expired finds
/// the orphans in its start-up sweep.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_starting_node_adopts_orphans_nobody_saw_die() {
    let nats = NatsCluster::single();
    let (dead, _dead_rx) = connect(&nats.urls, "dead").await;
    dead.claim("orphan", with_will("orphan"))
        .await
        .expect("claim");
    dead.shutdown().await.expect("leave");
    let (late, mut late_rx) = connect(&nats.urls, "late").await;
    // The sweep may take a while on a loaded machine: up to 10 s for the
    // first adoption, then 1 s of quiet for any other.
    let first = wait_event(
        &mut late_rx.events,
        Duration::from_secs(10),
        |event| match event {
            Event::Adopted(adoption) => Some(*adoption),
            _ => None,
        },
    )
    .await;
    let mut found: Vec<Adoption> = first.into_iter().collect();
    found.extend(adoptions(&mut late_rx.events, Duration::from_secs(1)).await);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].record.client_id, "orphan");
    assert_eq!(found[0].record.owner, *late.id());
}
