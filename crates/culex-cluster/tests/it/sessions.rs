//! Session claims, fencing, kicks and offline queues.

use std::time::Duration;

use bytes::Bytes;
use culex_cluster::{Error, Event, KickOutcome, KickReply, NodeId, QoS, SessionRecord};
use culex_testkit::NatsCluster;

use crate::{connect, message, wait_event};

fn record(client_id: &str) -> SessionRecord {
    SessionRecord {
        client_id: client_id.to_owned(),
        owner: NodeId {
            name: String::new(),
            incarnation: 0,
        },
        epoch: 0,
        expiry_interval: 3600,
        connected: true,
        will: None,
        subscriptions: Bytes::from_static(b"subs"),
    }
}

/// Two nodes claim one client id at once, many times: the claims take
/// turns (epochs 1..), the last one owns the session, and the earlier
/// owner's writes are fenced.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_claims_have_one_winner_and_fence_the_loser() {
    let nats = NatsCluster::single();
    let (a, _a_rx) = connect(&nats.urls, "a").await;
    let (b, _b_rx) = connect(&nats.urls, "b").await;
    for round in 0..10 {
        let id = format!("client {round} é/+#");
        let (from_a, from_b) = tokio::join!(a.claim(&id, record(&id)), b.claim(&id, record(&id)));
        let (from_a, from_b) = (from_a.expect("claim a"), from_b.expect("claim b"));
        let (first, second, loser, winner) = if from_a.record.epoch == 1 {
            (&from_a, &from_b, &a, &b)
        } else {
            (&from_b, &from_a, &b, &a)
        };
        assert_eq!((first.record.epoch, second.record.epoch), (1, 2));
        assert_eq!(first.previous, None);
        assert_eq!(second.previous_owner(), Some(loser.id()));
        assert_eq!(second.record.owner, *winner.id());
        let (stored, revision) = a.session(&id).await.expect("read").expect("stored");
        assert_eq!(
            (stored.owner, revision),
            (winner.id().clone(), second.revision)
        );

        let mut change = first.record.clone();
        change.connected = false;
        assert!(matches!(
            loser.update_session(&change, first.revision).await,
            Err(Error::Fenced)
        ));
        assert!(matches!(
            loser.release(&id, first.revision).await,
            Err(Error::Fenced)
        ));
        let mut change = second.record.clone();
        change.subscriptions = Bytes::from_static(b"more");
        let revision = winner
            .update_session(&change, second.revision)
            .await
            .expect("owner writes");
        winner.release(&id, revision).await.expect("release");
        assert_eq!(a.session(&id).await.expect("read"), None);
    }
}

/// A takeover asks the previous owner to close its connection, and gets
/// its pending queue in the reply; a dead owner reads as unreachable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn takeover_kicks_the_previous_owner() {
    let nats = NatsCluster::single();
    let (a, mut a_rx) = connect(&nats.urls, "a").await;
    let (b, _b_rx) = connect(&nats.urls, "b").await;
    let first = a.claim("c1", record("c1")).await.expect("claim");
    assert_eq!(
        a.kick(&first).await.expect("kick"),
        KickOutcome::NotConnected
    );

    let answer = tokio::spawn(async move {
        let kick = wait_event(
            &mut a_rx.events,
            Duration::from_secs(5),
            |event| match event {
                Event::Kick(kick) => Some(kick),
                _ => None,
            },
        )
        .await
        .expect("kick request");
        assert_eq!(kick.client_id, "c1");
        assert_eq!(kick.epoch, 2);
        let by = kick.by.clone();
        kick.reply(KickReply::Closed(Bytes::from_static(b"queue")));
        // The next one is dropped unanswered.
        let kick = wait_event(
            &mut a_rx.events,
            Duration::from_secs(5),
            |event| match event {
                Event::Kick(kick) => Some(kick),
                _ => None,
            },
        )
        .await
        .expect("second kick request");
        assert_eq!(kick.client_id, "c3");
        drop(kick);
        by
    });
    let second = b.claim("c1", record("c1")).await.expect("claim");
    assert_eq!(
        b.kick(&second).await.expect("kick"),
        KickOutcome::Kicked {
            pending: Bytes::from_static(b"queue")
        }
    );
    a.claim("c3", record("c3")).await.expect("claim");
    let taken = b.claim("c3", record("c3")).await.expect("claim");
    assert_eq!(
        b.kick(&taken).await.expect("kick"),
        KickOutcome::NotConnected
    );
    assert_eq!(answer.await.expect("answerer"), *b.id());

    // An owner that is gone does not answer.
    let (dead, _dead_rx) = connect(&nats.urls, "dead").await;
    dead.claim("c2", record("c2")).await.expect("claim");
    drop(dead);
    let taken = b.claim("c2", record("c2")).await.expect("claim");
    assert_eq!(
        b.kick(&taken).await.expect("kick"),
        KickOutcome::Unreachable
    );
}

/// Messages spooled for an offline session on one node are drained on
/// another, in order, and purged; later ones stay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_queues_are_spooled_and_drained_anywhere() {
    let nats = NatsCluster::single();
    let (a, _a_rx) = connect(&nats.urls, "a").await;
    let (b, _b_rx) = connect(&nats.urls, "b").await;
    assert!(b.drain("c1").await.expect("drain").is_empty());
    for i in 0..50 {
        a.spool("c1", &message("q/x", &i.to_string(), QoS::AtLeastOnce))
            .await
            .expect("spool");
    }
    a.spool("other", &message("q/y", "not c1's", QoS::AtLeastOnce))
        .await
        .expect("spool");
    let spool = b.read_spool("c1").await.expect("read");
    let payloads: Vec<Bytes> = spool.messages.iter().map(|m| m.payload.clone()).collect();
    let expected: Vec<Bytes> = (0..50).map(|i| Bytes::from(i.to_string())).collect();
    assert_eq!(payloads, expected);
    assert!(spool
        .messages
        .iter()
        .all(|m| m.topic == "q/x" && m.qos == QoS::AtLeastOnce));
    a.spool("c1", &message("q/x", "late", QoS::AtLeastOnce))
        .await
        .expect("spool");
    b.purge_spool("c1", spool.up_to).await.expect("purge");
    let rest = b.drain("c1").await.expect("drain");
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0].payload, "late");
    assert!(b.drain("c1").await.expect("drain").is_empty());
    assert_eq!(a.drain("other").await.expect("drain").len(), 1);
}
