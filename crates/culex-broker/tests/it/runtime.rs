//! The runtime around the protocol: listeners, connection limits, policy
//! reload (SIGHUP's work) and log destinations.

use std::net::{Ipv6Addr, SocketAddr};
use std::process::Command;
use std::time::Duration;

use culex_broker::config::Listener;
use culex_broker::testing::{local_config, BrokerThread};
use culex_codec::{Packet, Protocol, QoS, ReasonCode};
use culex_testkit::{run_with_timeout, tool};

use crate::client::{ConnectOpts, Raw};

fn temp_dir(tag: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "culex-{tag}-{}-{}",
        std::process::id(),
        culex_testkit::free_port()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `max_connections`: connections beyond the limit are closed at once.
#[test]
fn max_connections_is_enforced() {
    let mut config = local_config();
    config.limits.max_connections = Some(1);
    let broker = BrokerThread::start_with(config);
    let (mut first, _) = Raw::connect(broker.port(), "one", true);
    let mut second = Raw::open(broker.port(), Protocol::V3_1_1);
    assert!(second.is_closed_within(Duration::from_secs(4)));
    first.send(&Packet::PingReq);
    assert!(matches!(first.recv().packet(), Packet::PingResp));
}

/// `max_connections` counts from accept, per listener, as mosquitto does:
/// sockets that have not sent CONNECT hold their places, and give them back
/// when they close.
#[test]
fn max_connections_counts_connections_from_accept() {
    let mut config = local_config();
    config.limits.max_connections = Some(2);
    let broker = BrokerThread::start_with(config);
    let silent = Raw::open(broker.port(), Protocol::V3_1_1);
    let mut quiet = Raw::open(broker.port(), Protocol::V3_1_1);
    // Both are accepted before the third arrives: sockets that have sent
    // nothing reach `accept` after one retransmitted SYN-ACK, a second
    // after their handshake (TCP_DEFER_ACCEPT, see `runtime/listener.rs`).
    std::thread::sleep(Duration::from_millis(1500));
    let mut third = Raw::open(broker.port(), Protocol::V3_1_1);
    assert!(
        third.is_closed_within(Duration::from_secs(4)),
        "a third socket while two wait for CONNECT"
    );
    let (present, reason) = quiet.handshake(ConnectOpts {
        client_id: "quiet",
        ..ConnectOpts::default()
    });
    assert!(!present);
    assert_eq!(
        reason,
        ReasonCode::Success,
        "a counted socket may still connect"
    );
    drop(silent);
    std::thread::sleep(Duration::from_millis(200));
    let (mut again, _) = Raw::connect(broker.port(), "again", true);
    again.send(&Packet::PingReq);
    assert!(
        matches!(again.recv().packet(), Packet::PingResp),
        "the closed socket's place is free again"
    );
}

/// A TCP listener accepts a client once it has spoken (TCP_DEFER_ACCEPT,
/// `runtime/listener.rs`): a socket that has only completed its handshake
/// does not yet hold the one place `max_connections` leaves, so a client
/// that sends CONNECT right after it gets that place.
#[test]
fn a_client_is_accepted_once_it_has_spoken() {
    let mut config = local_config();
    config.limits.max_connections = Some(1);
    let broker = BrokerThread::start_with(config);
    let _silent = Raw::open(broker.port(), Protocol::V3_1_1);
    std::thread::sleep(Duration::from_millis(100));
    let mut speaking = Raw::open(broker.port(), Protocol::V3_1_1);
    let (_, reason) = speaking.handshake(ConnectOpts {
        client_id: "speaking",
        ..ConnectOpts::default()
    });
    assert_eq!(reason, ReasonCode::Success);
    speaking.send(&Packet::PingReq);
    assert!(matches!(speaking.recv().packet(), Packet::PingResp));
}

/// Each listener has its own `max_connections`.
#[test]
fn max_connections_is_per_listener() {
    let ports = [culex_testkit::free_port(), culex_testkit::free_port()];
    let mut config = local_config();
    config.listeners = ports
        .iter()
        .map(|&port| Listener {
            addrs: vec![SocketAddr::from(([127, 0, 0, 1], port))],
            port,
            max_connections: Some(1),
            security: None,
            mount_point: None,
            unix_path: None,
            transport: Default::default(),
        })
        .collect();
    let _broker = BrokerThread::start_with(config);
    let (mut one, _) = Raw::connect(ports[0], "one", true);
    let (mut two, _) = Raw::connect(ports[1], "two", true);
    for c in [&mut one, &mut two] {
        c.send(&Packet::PingReq);
        assert!(matches!(c.recv().packet(), Packet::PingResp));
    }
    let mut over = Raw::open(ports[0], Protocol::V3_1_1);
    assert!(over.is_closed_within(Duration::from_secs(4)));
}

/// Reloading the policy (what SIGHUP does) applies a new password file to new
/// connections and leaves existing ones connected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_swaps_passwords_without_dropping_connections() {
    let dir = temp_dir("reload");
    let file = dir.join("passwd");
    let passwd = |pw: &str| {
        let out = run_with_timeout(
            Command::new(tool("mosquitto_passwd"))
                .arg("-b")
                .arg(&file)
                .args(["bob", pw]),
            Duration::from_secs(5),
        );
        assert!(out.status.success());
    };
    std::fs::write(&file, "").unwrap();
    passwd("first");
    let mut config = local_config();
    config.security.allow_anonymous = false;
    config.security.password_file = Some(file.clone());
    let broker = culex_broker::testing::start(config).await;
    let port = broker.port();
    let login = move |pw: &'static str| {
        tokio::task::spawn_blocking(move || {
            let (c, _, reason) = Raw::connect_with(
                port,
                ConnectOpts {
                    client_id: pw,
                    username: Some("bob"),
                    password: Some(pw.as_bytes()),
                    ..ConnectOpts::default()
                },
            );
            (c, reason)
        })
    };
    let (mut kept, reason) = login("first").await.unwrap();
    assert_eq!(reason, ReasonCode::Success);
    passwd("second");
    broker.reload_policies().unwrap();
    assert_eq!(login("first").await.unwrap().1.to_v3_connack(), 5);
    assert_eq!(login("second").await.unwrap().1, ReasonCode::Success);
    let alive = tokio::task::spawn_blocking(move || {
        kept.send(&Packet::PingReq);
        matches!(kept.recv().packet(), Packet::PingResp)
    });
    assert!(alive.await.unwrap(), "existing connection kept");
    broker.shutdown().await;
    let _ = std::fs::remove_dir_all(dir);
}

/// An IPv6 listener on ::1, when the machine has IPv6.
#[test]
fn ipv6_listener_when_available() {
    if std::net::TcpListener::bind((Ipv6Addr::LOCALHOST, 0)).is_err() {
        eprintln!("no IPv6 on this machine; the IPv4 tests cover the rest");
        return;
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut config = local_config();
        config.listeners = vec![Listener {
            addrs: vec![SocketAddr::from((Ipv6Addr::LOCALHOST, 0))],
            port: 0,
            max_connections: None,
            security: None,
            mount_point: None,
            unix_path: None,
            transport: Default::default(),
        }];
        let broker = culex_broker::testing::start(config).await;
        let addr = broker.local_addr().unwrap();
        assert!(addr.is_ipv6());
        let ok = tokio::task::spawn_blocking(move || {
            let out = run_with_timeout(
                Command::new(tool("mosquitto_pub")).args([
                    "-h",
                    "::1",
                    "-p",
                    &addr.port().to_string(),
                    "-t",
                    "v6",
                    "-m",
                    "x",
                ]),
                Duration::from_secs(5),
            );
            out.status.success()
        })
        .await
        .unwrap();
        assert!(ok, "mosquitto_pub over IPv6");
        broker.shutdown().await;
    });
}

/// `log_dest file` writes mosquitto's lines to the file (through the
/// formatting layer) and `connection_messages false` silences the
/// connection lines.
#[test]
fn log_file_destination() {
    use culex_broker::config::{LogConfig, LogDest};
    let dir = temp_dir("log");
    let path = dir.join("culex.log");
    let config = LogConfig {
        dest: vec![LogDest::File(path.clone())],
        ..LogConfig::default()
    };
    let layer = culex_broker::log::MosquittoLayer::new(&config).unwrap();
    let line = layer.format_line("Client x disconnected.");
    let handle = layer.clone();
    use tracing_subscriber::layer::SubscriberExt;
    let subscriber = tracing_subscriber::registry().with(layer);
    tracing::subscriber::with_default(subscriber, || {
        tracing::info!(target: "culex_broker", "Client x disconnected.");
        tracing::debug!(target: "culex_broker", "not written without debug");
        tracing::info!(target: "other_crate", "not ours");
    });
    handle.flush();
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.ends_with("Client x disconnected.\n"), "{text:?}");
    assert_eq!(text.lines().count(), 1);
    assert!(line.split_once(": ").unwrap().0.parse::<i64>().is_ok());
    let _ = std::fs::remove_dir_all(dir);
}

/// One QoS 1 publish reaches every subscriber (fan-out).
#[test]
fn qos1_fan_out_to_many_subscribers() {
    let broker = BrokerThread::start();
    let mut subs: Vec<Raw> = (0..5)
        .map(|i| Raw::connect(broker.port(), &format!("fan{i}"), true).0)
        .collect();
    for s in &mut subs {
        s.subscribe(&[("fan", QoS::AtLeastOnce)]);
    }
    let (mut publ, _) = Raw::connect(broker.port(), "pub", true);
    publ.publish_acked("fan", b"to all", QoS::AtLeastOnce, false, 1);
    for s in &mut subs {
        assert_eq!(s.recv().publish().payload, b"to all");
    }
}

/// A batch of QoS 1 publishes read in one go reaches each of more
/// subscribers than the publisher's outbox holds sessions for (16), every
/// message once and in order [MQTT-4.6.0-2]: deliveries held until the end of
/// the batch and deliveries made at once keep each subscriber's order.
#[test]
fn batched_publishes_keep_order_for_every_subscriber() {
    const SUBSCRIBERS: usize = 20;
    const N: u16 = 300;
    let broker = BrokerThread::start();
    let mut subs: Vec<Raw> = (0..SUBSCRIBERS)
        .map(|i| Raw::connect(broker.port(), &format!("batch{i}"), true).0)
        .collect();
    for s in &mut subs {
        s.subscribe(&[("batch/#", QoS::AtLeastOnce)]);
    }
    let (mut publ, _) = Raw::connect(broker.port(), "batcher", true);
    // N QoS 1 PUBLISH packets on two topics, written as one stream.
    let mut bytes = Vec::new();
    for i in 1..=N {
        bytes.extend_from_slice(&[0x32, 19, 0, 7]);
        bytes.extend_from_slice(if i % 2 == 0 { b"batch/a" } else { b"batch/b" });
        bytes.extend_from_slice(&i.to_be_bytes());
        bytes.extend_from_slice(&u64::from(i).to_be_bytes());
    }
    publ.send_raw(&bytes);
    for (n, s) in subs.iter_mut().enumerate() {
        for want in 1..=u64::from(N) {
            let got = s.recv().publish();
            let seq = u64::from_be_bytes(got.payload[..8].try_into().unwrap());
            assert_eq!(seq, want, "subscriber {n}");
            s.ack(Packet::PubAck, got.id.unwrap());
        }
        assert!(
            s.try_recv(Duration::from_millis(50)).is_none(),
            "subscriber {n}: a duplicate"
        );
    }
    for want in 1..=N {
        match publ.recv().packet() {
            Packet::PubAck(a) => assert_eq!(a.packet_id.get(), want),
            other => panic!("expected PUBACK {want}, got {other:?}"),
        }
    }
}

/// A backlog larger than the connection's output high-water mark (256 KiB)
/// is written in full even when no further publish arrives to wake the
/// subscriber's connection: it keeps draining while the socket takes data.
#[test]
fn backlog_beyond_the_output_high_water_mark_is_written() {
    const N: usize = 700;
    const SIZE: usize = 15 * 1024;
    let broker = BrokerThread::start();
    let (mut sub, _) = Raw::connect(broker.port(), "slow", true);
    sub.subscribe(&[("big", QoS::AtMostOnce)]);
    let (mut publ, _) = Raw::connect(broker.port(), "bulk", true);
    // 10 MB for a subscriber that does not read yet: more than the socket
    // buffers take, so most of it waits in the session (700 messages, below
    // max_queued_messages).
    let mut bytes = Vec::new();
    let remaining = 2 + 3 + SIZE;
    for i in 0..N {
        bytes.extend_from_slice(&[
            0x30,
            (remaining % 128) as u8 | 0x80,
            (remaining / 128) as u8,
        ]);
        bytes.extend_from_slice(&[0, 3]);
        bytes.extend_from_slice(b"big");
        let mut payload = vec![b'x'; SIZE];
        payload[..8].copy_from_slice(&(i as u64).to_be_bytes());
        bytes.extend_from_slice(&payload);
    }
    publ.send_raw(&bytes);
    std::thread::sleep(Duration::from_millis(300));
    receive_in_order(&mut sub, N);
}

/// Receives `n` PUBLISH packets whose payloads start with their sequence
/// number 0, 1, 2, ... (big-endian u64), within 20 s and 2 s of each other:
/// from one publisher they keep their order [MQTT-4.6.0-6].
fn receive_in_order(sub: &mut Raw, n: usize) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let mut next = 0u64;
    while (next as usize) < n && std::time::Instant::now() < deadline {
        let Some(frame) = sub.try_recv(Duration::from_secs(2)) else {
            break;
        };
        if let Packet::Publish(p) = frame.packet() {
            let seq = u64::from_be_bytes(p.payload[..8].try_into().unwrap());
            assert_eq!(seq, next, "message {next} missing");
            next += 1;
        }
    }
    assert_eq!(next as usize, n, "received {next} of {n}");
}

/// `mount_point`: a listener's clients live under a prefix, invisible to them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mount_point_prefixes_topics() {
    let mut config = local_config();
    let mut mounted = config.listeners[0].clone();
    mounted.mount_point = Some("site1/".into());
    config.listeners.push(mounted);
    let broker = culex_broker::testing::start(config).await;
    let addrs = broker.local_addrs().to_vec();
    let (plain_port, mounted_port) = (addrs[0].port(), addrs[1].port());
    tokio::task::spawn_blocking(move || {
        let (mut outside, _) = Raw::connect(plain_port, "outside", true);
        outside.subscribe(&[("site1/#", QoS::AtMostOnce)]);
        let (mut inside, _) = Raw::connect(mounted_port, "inside", true);
        inside.subscribe(&[("cmd/#", QoS::AtMostOnce)]);
        inside.publish_acked("status", b"up", QoS::AtMostOnce, false, 0);
        let g = outside.recv().publish();
        assert_eq!(
            (g.topic.as_str(), g.payload.as_slice()),
            ("site1/status", &b"up"[..])
        );
        outside.publish_acked("site1/cmd/go", b"now", QoS::AtMostOnce, false, 0);
        outside.publish_acked("cmd/go", b"not for site1", QoS::AtMostOnce, false, 0);
        let g = inside.recv().publish();
        assert_eq!(
            (g.topic.as_str(), g.payload.as_slice()),
            ("cmd/go", &b"now"[..])
        );
        assert!(inside.try_recv(Duration::from_millis(300)).is_none());
    })
    .await
    .unwrap();
    broker.shutdown().await;
}

/// Back-pressure (issue 9): a QoS 0 flood far larger than `max_queued_messages`
/// (1000 by default) reaches a subscriber that keeps reading, every message:
/// the publisher is paused while the subscriber's backlog is full instead of
/// having the overflow dropped.
#[test]
fn qos0_flood_reaches_a_reading_subscriber() {
    const N: usize = 20_000;
    let broker = BrokerThread::start();
    let (mut sub, _) = Raw::connect(broker.port(), "sink", true);
    sub.subscribe(&[("flood", QoS::AtMostOnce)]);
    let (mut publ, _) = Raw::connect(broker.port(), "flooder", true);
    // N PUBLISH packets of 64-byte payloads, written as one stream.
    let mut bytes = Vec::with_capacity(N * 73);
    for i in 0..N {
        bytes.extend_from_slice(&[0x30, 71, 0, 5]);
        bytes.extend_from_slice(b"flood");
        let mut payload = [b'x'; 64];
        payload[..8].copy_from_slice(&(i as u64).to_be_bytes());
        bytes.extend_from_slice(&payload);
    }
    let writer = std::thread::spawn(move || {
        publ.send_raw(&bytes);
        publ
    });
    receive_in_order(&mut sub, N);
    let publ = writer.join().unwrap();
    publ.disconnect();
}
