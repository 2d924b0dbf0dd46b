//! kill -9 with `persistence true` (issue 10): a broker process is killed at
//! random moments while QoS 1 and 2 messages are published to an offline
//! persistent subscriber; after the last restart every acknowledged message
//! reaches it (QoS 1 at least once, QoS 2 exactly once), and the session and
//! every acknowledged retained message are back. The broker runs as the
//! crate's `broker` example, which `cargo test` builds (`cargo test --test
//! it` alone does not: build it with `cargo build -p culex-broker --example
//! broker` first).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use culex_codec::packet::Unsubscribe;
use culex_codec::topic::TopicFilter;
use culex_codec::{Packet, Properties, QoS, Seq};
use culex_testkit::ChildGuard;
use rand::Rng;

use crate::client::Raw;

const ROUNDS: usize = 3;
/// Publishes per round at most; the queue limit below holds them all.
const PER_ROUND: u16 = 400;

/// The `broker` example (`culex broker` alone), built by `cargo test`.
pub(crate) fn broker_exe() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let debug = exe
        .parent()
        .and_then(Path::parent)
        .expect("target directory");
    let path = debug.join("examples").join("broker");
    assert!(
        path.exists(),
        "{} is missing: cargo test builds it (cargo build -p culex-broker --example broker)",
        path.display()
    );
    path
}

fn start(dir: &Path, port: u16) -> ChildGuard {
    let conf = culex_testkit::write_file(
        dir,
        "culex.conf",
        &format!(
            "listener {port} 127.0.0.1\nallow_anonymous true\npersistence true\n\
             persistence_location {}\nmax_queued_messages 10000\n",
            dir.display()
        ),
    );
    let child = Command::new(broker_exe())
        .arg("-c")
        .arg(conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn the broker");
    let guard = ChildGuard(child);
    culex_testkit::wait_for_port(port, Duration::from_secs(10));
    guard
}

#[derive(Debug, Default)]
struct Acked {
    messages: Vec<(String, QoS)>,
    retained: Vec<String>,
}

/// Publishes until the broker dies or `PER_ROUND` is reached, recording
/// every message whose acknowledgement flow completed. Runs on its own
/// thread: the test client panics when the broker goes away mid-flow.
fn publish_until_killed(port: u16, round: usize, acked: Arc<Mutex<Acked>>) {
    let (mut publ, _) = Raw::connect(port, &format!("pub-{round}"), true);
    for i in 1..=PER_ROUND {
        let qos = if i % 2 == 0 {
            QoS::ExactlyOnce
        } else {
            QoS::AtLeastOnce
        };
        let payload = format!("{round}:{i}");
        publ.publish_acked("c/x", payload.as_bytes(), qos, false, i);
        acked.lock().unwrap().messages.push((payload, qos));
        if i % 20 == 0 {
            let topic = format!("ret/{round}/{i}");
            publ.publish_acked(&topic, b"r", QoS::AtLeastOnce, true, i);
            acked.lock().unwrap().retained.push(topic);
        }
    }
}

#[test]
fn acknowledged_messages_survive_kill_minus_nine() {
    let dir = tempfile::tempdir().unwrap();
    let port = culex_testkit::free_port();
    let mut rng = rand::thread_rng();
    let acked = Arc::new(Mutex::new(Acked::default()));
    {
        let _broker = start(dir.path(), port);
        let (mut keeper, _) = Raw::connect(port, "keeper", false);
        keeper.subscribe(&[("c/#", QoS::ExactlyOnce)]);
        // No pause: the SUBACK came only once the subscription was durable.
        keeper.disconnect();
    }
    for round in 0..ROUNDS {
        let mut broker = start(dir.path(), port);
        let publisher = {
            let acked = acked.clone();
            std::thread::spawn(move || publish_until_killed(port, round, acked))
        };
        std::thread::sleep(Duration::from_millis(rng.gen_range(100..700)));
        broker.0.kill().expect("SIGKILL"); // Child::kill sends SIGKILL on Unix.
        broker.0.wait().expect("reap");
        // Err: the client saw the broker die mid-flow, as intended.
        let _ = publisher.join();
    }
    let acked = std::mem::take(&mut *acked.lock().unwrap());
    assert!(!acked.messages.is_empty(), "nothing was acknowledged");

    let _broker = start(dir.path(), port);
    let (mut keeper, present) = Raw::connect(port, "keeper", false);
    assert!(present, "the persistent session is back [MQTT-3.2.2-2]");
    let mut received: HashMap<String, (QoS, usize)> = HashMap::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let Some(frame) = keeper.try_recv(Duration::from_secs(2)) else {
            break;
        };
        match frame.packet() {
            Packet::Publish(p) => {
                let payload = String::from_utf8_lossy(p.payload).into_owned();
                let entry = received.entry(payload).or_insert((p.qos, 0));
                entry.1 += 1;
                let id = p.packet_id.map(|id| id.get());
                match (p.qos, id) {
                    (QoS::AtLeastOnce, Some(id)) => keeper.ack(Packet::PubAck, id),
                    (QoS::ExactlyOnce, Some(id)) => keeper.ack(Packet::PubRec, id),
                    _ => {}
                }
            }
            Packet::PubRel(r) => keeper.ack(Packet::PubComp, r.packet_id.get()),
            other => panic!("unexpected {other:?}"),
        }
    }
    for (payload, qos) in &acked.messages {
        let got = received.get(payload).map_or(0, |(_, n)| *n);
        match qos {
            QoS::ExactlyOnce => assert_eq!(got, 1, "QoS 2 {payload} exactly once"),
            _ => assert!(got >= 1, "QoS 1 {payload} at least once"),
        }
    }
    for (payload, (qos, n)) in &received {
        if *qos == QoS::ExactlyOnce {
            assert_eq!(*n, 1, "QoS 2 {payload} never twice");
        }
    }

    let (mut reader, _) = Raw::connect(port, "reader", true);
    reader.subscribe(&[("ret/#", QoS::AtMostOnce)]);
    let mut retained = Vec::new();
    while let Some(frame) = reader.try_recv(Duration::from_secs(2)) {
        if let Packet::Publish(p) = frame.packet() {
            assert!(p.retain);
            retained.push(p.topic.as_str().to_owned());
        }
    }
    for topic in &acked.retained {
        assert!(retained.contains(topic), "retained {topic} is back");
    }
}

/// Kill -9 right after a SUBACK, restart, publish: the subscription of the
/// persistent session delivers (issue 10: SUBACK waits for the store like
/// PUBACK). Then the same for an UNSUBACK: the subscription stays gone.
#[test]
fn subscriptions_acknowledged_just_before_kill_minus_nine_survive() {
    const SUB_ROUNDS: usize = 4;
    let dir = tempfile::tempdir().unwrap();
    let port = culex_testkit::free_port();
    let kill = |mut broker: ChildGuard| {
        broker.0.kill().expect("SIGKILL");
        broker.0.wait().expect("reap");
    };
    for round in 0..SUB_ROUNDS {
        let id = format!("sub-{round}");
        let topic = format!("s/{round}");

        let broker = start(dir.path(), port);
        let (mut sub, _) = Raw::connect(port, &id, false);
        assert_eq!(sub.subscribe(&[(&topic, QoS::AtLeastOnce)]), vec![1]);
        kill(broker);

        let broker = start(dir.path(), port);
        let (mut sub, present) = Raw::connect(port, &id, false);
        assert!(present, "round {round}: the session is back [MQTT-3.2.2-2]");
        let (mut publ, _) = Raw::connect(port, &format!("pub-{round}"), true);
        publ.publish_acked(&topic, b"after", QoS::AtLeastOnce, false, 1);
        let frame = sub
            .try_recv(Duration::from_secs(2))
            .unwrap_or_else(|| panic!("round {round}: the subscription was lost"));
        match frame.packet() {
            Packet::Publish(p) => {
                assert_eq!(
                    (p.topic.as_str(), p.payload),
                    (topic.as_str(), &b"after"[..])
                );
                if let Some(pid) = p.packet_id {
                    sub.ack(Packet::PubAck, pid.get());
                }
            }
            other => panic!("round {round}: unexpected {other:?}"),
        }

        let filters = [TopicFilter::new(&topic).unwrap()];
        sub.send(&Packet::Unsubscribe(Unsubscribe {
            packet_id: crate::client::pid(2),
            properties: Properties::default(),
            filters: Seq::Items(&filters),
        }));
        match sub.recv().packet() {
            Packet::UnsubAck(a) => assert_eq!(a.packet_id.get(), 2),
            other => panic!("round {round}: expected UNSUBACK, got {other:?}"),
        }
        kill(broker);

        let _broker = start(dir.path(), port);
        let (mut sub, present) = Raw::connect(port, &id, false);
        assert!(present, "round {round}: the session is back");
        let (mut publ, _) = Raw::connect(port, &format!("pub2-{round}"), true);
        publ.publish_acked(&topic, b"gone", QoS::AtLeastOnce, false, 1);
        assert!(
            sub.try_recv(Duration::from_millis(300)).is_none(),
            "round {round}: the unsubscribe was lost"
        );
    }
}
