//! Idle connections parked outside the runtime: a parked client gets all
//! that a served one gets, at once.

use std::time::{Duration, Instant};

use culex_broker::testing::{local_config, start};
use culex_broker::RunningBroker;
use culex_codec::{Packet, QoS};

use crate::client::{ConnectOpts, Raw};

/// Waits until exactly `n` connections are parked (a new one parks right
/// after its CONNACK, a busy one 2 s after its last activity).
async fn wait_parked(broker: &RunningBroker, n: usize) {
    wait_until("parked connections", n, || broker.parked_connections()).await;
}

async fn wait_until(what: &str, n: usize, count: impl Fn() -> usize) {
    for _ in 0..100 {
        if count() == n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{} {what}, expected {n}", count());
}

/// A parked subscriber is woken by a delivery and gets it at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parked_subscriber_receives_at_once() {
    let broker = start(local_config()).await;
    let (mut sub, _) = Raw::connect(broker.port(), "sub", true);
    sub.subscribe(&[("p/#", QoS::AtLeastOnce)]);
    wait_parked(&broker, 1).await;
    let (mut publ, _) = Raw::connect(broker.port(), "pub", true);
    let sent = Instant::now();
    publ.publish_acked("p/1", b"wake up", QoS::AtLeastOnce, false, 1);
    let got = sub.recv().publish();
    assert!(sent.elapsed() < Duration::from_millis(500));
    assert_eq!(got.payload, b"wake up");
    sub.ack(Packet::PubAck, got.id.unwrap());
    // Both go back to the parker once idle, and a second delivery still arrives.
    wait_parked(&broker, 2).await;
    publ.publish_acked("p/2", b"again", QoS::AtMostOnce, false, 0);
    assert_eq!(sub.recv().publish().payload, b"again");
    assert_eq!(broker.connected_clients(), 2);
    broker.shutdown().await;
}

/// A parked connection is closed by a takeover [MQTT-3.1.4-2].
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parked_client_is_taken_over() {
    let broker = start(local_config()).await;
    let (mut first, _) = Raw::connect(broker.port(), "same", true);
    wait_parked(&broker, 1).await;
    let (mut second, _) = Raw::connect(broker.port(), "same", true);
    assert!(first.is_closed_within(Duration::from_secs(2)));
    second.send(&Packet::PingReq);
    assert!(matches!(second.recv().packet(), Packet::PingResp));
    assert_eq!(broker.connected_clients(), 1);
    broker.shutdown().await;
}

/// A parked client silent for 1.5 × keep alive is disconnected and its will
/// sent [MQTT-3.1.2-24], not before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parked_client_times_out_at_one_and_a_half_keep_alive() {
    let broker = start(local_config()).await;
    let mut watcher = Raw::will_watcher(broker.port());
    let mut sleepy = Raw::connect_with_will(broker.port(), "sleepy", 1, b"timeout");
    let connected = Instant::now();
    // The watcher subscribed just now and stays served for 2 s: this is sleepy.
    wait_parked(&broker, 1).await;
    assert!(!sleepy.is_closed_within(Duration::from_millis(1200)));
    assert!(sleepy.is_closed_within(Duration::from_secs(2)));
    let after = connected.elapsed();
    assert!(
        after >= Duration::from_millis(1500),
        "closed after {after:?}"
    );
    assert_eq!(watcher.recv().publish().payload, b"timeout");
    broker.shutdown().await;
}

/// A parked client whose socket closes is noticed at once: its will goes
/// out [MQTT-3.1.2-8] and it no longer counts as connected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parked_client_closing_sends_will() {
    let broker = start(local_config()).await;
    let mut watcher = Raw::will_watcher(broker.port());
    let rude = Raw::connect_with_will(broker.port(), "rude", 60, b"gone");
    wait_parked(&broker, 1).await;
    drop(rude);
    let got = watcher
        .try_recv(Duration::from_secs(1))
        .expect("the will within 1 s");
    assert_eq!(got.publish().payload, b"gone");
    wait_until("connected", 1, || broker.connected_clients()).await;
    broker.shutdown().await;
}

/// A client that disconnects while parked reconnects to its session and
/// gets what was queued meanwhile [MQTT-3.1.2-4].
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parked_client_disconnects_and_resumes_its_session() {
    let broker = start(local_config()).await;
    let (mut sub, _) = Raw::connect(broker.port(), "keeper", false);
    sub.subscribe(&[("q/#", QoS::AtLeastOnce)]);
    wait_parked(&broker, 1).await;
    sub.disconnect();
    wait_until("connected", 0, || broker.connected_clients()).await;
    assert_eq!(broker.parked_connections(), 0);
    let (mut publ, _) = Raw::connect(broker.port(), "pub", true);
    publ.publish_acked("q/1", b"kept", QoS::AtLeastOnce, false, 1);
    let (mut sub, present) = Raw::connect(broker.port(), "keeper", false);
    assert!(present);
    assert_eq!(sub.recv().publish().payload, b"kept");
    broker.shutdown().await;
}

/// Shutdown wakes parked clients: their wills go out and shutdown returns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_ends_parked_clients() {
    let broker = start(local_config()).await;
    let (mut idle, _, _) = Raw::connect_with(
        broker.port(),
        ConnectOpts {
            client_id: "idle",
            will: Some(("will/idle", b"bye", QoS::AtMostOnce, true)),
            ..ConnectOpts::default()
        },
    );
    wait_parked(&broker, 1).await;
    let port = broker.port();
    tokio::time::timeout(Duration::from_secs(5), broker.shutdown())
        .await
        .expect("shutdown within 5 s");
    assert!(idle.is_closed_within(Duration::from_secs(1)));
    // The port is closed: nothing more to ask the broker.
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
}
