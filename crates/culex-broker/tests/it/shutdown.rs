//! Wills at broker shutdown, as mosquitto 2.0 does them: after its main
//! loop ends, `src/mosquitto.c` calls `context__send_will` for every client
//! still connected and `will_delay__send_all` for delayed wills, then saves
//! its persistence file. Live subscribers are not served any more by then,
//! so what shows is the state a will leaves: a retained will, and the queue
//! of an offline persistent subscriber, both found again after a restart.

use std::time::Duration;

use culex_codec::{Packet, QoS};

use crate::client::{ConnectOpts, Raw};

fn persistent_config(dir: &std::path::Path) -> culex_broker::config::Config {
    let mut config = culex_broker::testing::local_config();
    config.persistence.enabled = true;
    config.persistence.location = Some(dir.to_path_buf());
    config
}

/// Starts a persistent broker on `dir`, waiting (bounded) for the previous
/// one's store to close.
async fn start(dir: &std::path::Path) -> culex_broker::RunningBroker {
    for _ in 0..50 {
        match culex_broker::Broker::start(persistent_config(dir)).await {
            Ok(b) => return b,
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    panic!("the store never closed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_publishes_the_wills_of_connected_clients() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start(dir.path()).await;
    let port = broker.port();
    let dying = tokio::task::spawn_blocking(move || {
        let (mut watcher, _) = Raw::connect(port, "will-watcher", false);
        watcher.subscribe(&[("will/#", QoS::AtLeastOnce)]);
        watcher.disconnect();
        let (c, _, _) = Raw::connect_with(
            port,
            ConnectOpts {
                client_id: "will-holder",
                will: Some(("will/holder", b"offline", QoS::AtLeastOnce, true)),
                ..ConnectOpts::default()
            },
        );
        c
    })
    .await
    .unwrap();
    broker.shutdown().await;
    drop(dying);

    let broker = start(dir.path()).await;
    let retained = broker.retained("will/holder");
    assert_eq!(
        retained.map(|m| m.payload.to_vec()),
        Some(b"offline".to_vec()),
        "the retained will was published at shutdown"
    );
    let port = broker.port();
    tokio::task::spawn_blocking(move || {
        let (mut watcher, present) = Raw::connect(port, "will-watcher", false);
        assert!(present);
        let g = watcher.recv().publish();
        assert_eq!(
            (g.topic.as_str(), &g.payload[..]),
            ("will/holder", &b"offline"[..])
        );
        watcher.ack(Packet::PubAck, g.id.unwrap());
    })
    .await
    .unwrap();
    broker.shutdown().await;
}

/// 15.3: `kill -TERM` of a broker process with 1,000 connected clients that
/// have wills: an observer on `will/#` receives every one of them before
/// its own connection closes, as with mosquitto (which sends the will of
/// every client still connected when it exits).
#[test]
fn sigterm_delivers_every_will_to_a_connected_observer() {
    use std::process::{Command, Stdio};
    const CLIENTS: usize = 1000;
    let dir = tempfile::tempdir().unwrap();
    let port = culex_testkit::free_port();
    let conf = culex_testkit::write_file(
        dir.path(),
        "culex.conf",
        &format!("listener {port} 127.0.0.1\nallow_anonymous true\n"),
    );
    let child = Command::new(crate::crash::broker_exe())
        .arg("-c")
        .arg(conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn the broker");
    let mut broker = culex_testkit::ChildGuard(child);
    culex_testkit::wait_for_port(port, Duration::from_secs(10));
    let mut observer = Raw::will_watcher(port);
    let clients: Vec<Raw> = (0..CLIENTS)
        .map(|i| Raw::connect_with_will(port, &format!("c{i}"), 60, b"gone"))
        .collect();
    let status = Command::new("kill")
        .args(["-TERM", &broker.0.id().to_string()])
        .status()
        .expect("kill -TERM");
    assert!(status.success());
    let mut wills = std::collections::HashSet::new();
    while let Some(f) = observer.try_recv(Duration::from_secs(5)) {
        if let Packet::Publish(p) = f.packet() {
            wills.insert(p.topic.as_str().to_owned());
        }
    }
    assert_eq!(wills.len(), CLIENTS, "wills the observer received");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while broker.0.try_wait().unwrap().is_none() {
        assert!(
            std::time::Instant::now() < deadline,
            "the broker did not exit"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(clients);
}

/// Graceful shutdown closes every connection and the listener.
#[tokio::test]
async fn graceful_shutdown_closes_connections() {
    let broker = culex_broker::testing::start_local().await;
    let port = broker.port();
    let client = tokio::task::spawn_blocking(move || {
        let (mut c, _) = Raw::connect(port, "stay", true);
        c.is_closed_within(Duration::from_secs(5))
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(broker.connected_clients(), 1);
    tokio::time::timeout(Duration::from_secs(5), broker.shutdown())
        .await
        .expect("shutdown in time");
    assert!(client.await.unwrap(), "client saw the close");
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "listener closed"
    );
}
