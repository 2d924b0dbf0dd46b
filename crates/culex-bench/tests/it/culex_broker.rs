//! The same scenarios against culex's own broker, started in-process.

use culex_broker::testing::{local_config, BrokerThread};

use crate::support::{bench_json, count, num};

/// A broker that queues without limit: by default culex, like mosquitto,
/// drops QoS 1/2 messages beyond `max_queued_messages` (1000) for a
/// subscriber that falls behind, and a flat-out run would see those drops.
fn unlimited_broker() -> BrokerThread {
    let mut config = local_config();
    config.limits.max_queued_messages = None;
    BrokerThread::start_with(config)
}

/// QoS 1 pairs over both protocol versions: everything sent is delivered.
#[test]
fn pairs_at_qos1_deliver_everything_sent() {
    let broker = unlimited_broker();
    for version in ["3.1.1", "5"] {
        let s = bench_json(
            broker.port(),
            &["pairs", "-c", "2", "-q", "1", "-V", version, "-d", "1s"],
        );
        let sent = count(&s, "/messages/sent");
        assert!(sent > 0, "{s:#}");
        assert_eq!(count(&s, "/messages/acked"), sent, "{s:#}");
        assert_eq!(count(&s, "/messages/received"), sent, "{s:#}");
    }
}

/// Fan-out at QoS 2 delivers exactly once to every subscriber.
#[test]
fn fanout_at_qos2_delivers_sent_times_subscribers() {
    let broker = unlimited_broker();
    let s = bench_json(
        broker.port(),
        &["fanout", "-c", "3", "-q", "2", "-r", "500", "-d", "1s"],
    );
    let sent = count(&s, "/messages/sent");
    assert!(sent > 0);
    assert_eq!(count(&s, "/messages/received"), sent * 3, "{s:#}");
}

/// A shared group of workers takes each message once between them
/// [MQTT-4.8.2-2], over both protocol versions: what three subscribers
/// receive together is what two publishers sent, not three times it.
#[test]
fn a_shared_group_takes_each_message_once() {
    let broker = unlimited_broker();
    for version in ["3.1.1", "5"] {
        let s = bench_json(
            broker.port(),
            &[
                "fanout",
                "--publishers",
                "2",
                "-c",
                "3",
                "-q",
                "1",
                "--share",
                "workers",
                "-V",
                version,
                "-d",
                "1s",
            ],
        );
        let sent = count(&s, "/messages/sent");
        assert!(sent > 0, "{s:#}");
        assert_eq!(s["share"], "workers", "{s:#}");
        assert_eq!(count(&s, "/messages/expected"), sent, "{s:#}");
        assert_eq!(count(&s, "/messages/received"), sent, "{s:#}");
    }
}

/// conn reaches every connection.
#[test]
fn conn_reaches_n_connections() {
    let broker = BrokerThread::start();
    let s = bench_json(broker.port(), &["conn", "-c", "50", "-d", "300ms"]);
    assert_eq!(count(&s, "/connections/established"), 50);
}

/// Both ways of connecting set up every connection and say which they used:
/// CONNECT after the runtime reports the handshake complete (the default),
/// or right after connect() (`--early-connect`). Every connection is timed.
#[test]
fn conn_connects_after_the_handshake_or_early() {
    let broker = BrokerThread::start();
    for (extra, after) in [(None, "handshake"), (Some("--early-connect"), "connect")] {
        let mut args = vec![
            "conn",
            "-c",
            "20",
            "--connect-concurrency",
            "4",
            "-d",
            "200ms",
        ];
        args.extend(extra);
        let s = bench_json(broker.port(), &args);
        assert_eq!(count(&s, "/connections/established"), 20, "{s:#}");
        assert_eq!(s["connections"]["connect_after"], after, "{s:#}");
        assert_eq!(count(&s, "/connections/concurrency"), 4);
        assert_eq!(count(&s, "/connections/connect_latency_us/count"), 20);
        assert!(num(&s, "/connections/connect_latency_us/p50") > 0.0);
    }
}

/// `--total-rate` is the rate of all publishers together, split evenly, and
/// the summary gives it as offered; every delivered message is timed.
#[test]
fn total_rate_is_split_between_publishers() {
    let broker = unlimited_broker();
    let s = bench_json(
        broker.port(),
        &["pairs", "-c", "4", "--total-rate", "800", "-d", "1s"],
    );
    assert_eq!(num(&s, "/rate_per_publisher"), 200.0);
    assert_eq!(num(&s, "/throughput/offered_per_s"), 800.0);
    let sent = count(&s, "/messages/sent");
    // 4 publishers × 200/s × 1 s, give or take the last tick.
    assert!((600..=804).contains(&sent), "sent {sent}: {s:#}");
    assert_eq!(count(&s, "/messages/received"), sent);
    assert_eq!(count(&s, "/latency_us/count"), sent);
}

/// `--persistent` subscribers keep their sessions (clean session 0), so the
/// broker still has them after the run; publishers do not.
#[test]
fn persistent_subscribers_keep_their_sessions() {
    let broker = unlimited_broker();
    let s = bench_json(
        broker.port(),
        &[
            "pairs",
            "-c",
            "2",
            "-q",
            "1",
            "-d",
            "300ms",
            "--persistent",
            "--client-id-prefix",
            "keep",
        ],
    );
    assert!(count(&s, "/messages/sent") > 0, "{s:#}");
    assert!(session_present(broker.port(), "keep-s0"));
    assert!(session_present(broker.port(), "keep-s1"));
    assert!(!session_present(broker.port(), "keep-p0"));
}

/// Connects with clean session 0 and returns the CONNACK's Session Present.
fn session_present(port: u16, client_id: &str) -> bool {
    use culex_codec::packet::Connect;
    use culex_codec::{Packet, Properties, Protocol};
    use std::io::{Read, Write};

    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    let mut out = Vec::new();
    Packet::Connect(Connect {
        bridge: false,
        protocol: Protocol::V3_1_1,
        clean_start: false,
        keep_alive: 10,
        client_id,
        will: None,
        username: None,
        password: None,
        properties: Properties::default(),
    })
    .encode(Protocol::V3_1_1, &mut out)
    .unwrap();
    stream.write_all(&out).unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 64];
    loop {
        if let Some((packet, _)) = culex_codec::decode(&buf, Protocol::V3_1_1, 1024).unwrap() {
            match packet {
                Packet::ConnAck(ack) => return ack.session_present,
                other => panic!("expected CONNACK, got {other:?}"),
            }
        }
        let n = stream.read(&mut chunk).unwrap();
        assert!(n > 0, "connection closed before CONNACK");
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// QoS 1 pairs over TLS, WebSocket and WebSocket over TLS listeners:
/// everything sent is delivered, through the bench's own TLS and WebSocket
/// client layers.
#[test]
fn pairs_over_tls_websocket_and_both() {
    let dir = tempfile::tempdir().unwrap();
    let files = culex_testkit::pki::Pki::new().write_to(dir.path());
    let tls = format!(
        "certfile {}\nkeyfile {}\n",
        files.server.0.display(),
        files.server.1.display()
    );
    let ca = files.ca.display().to_string();
    let cases: [(&str, String, &[&str]); 3] = [
        ("tls", tls.clone(), &["--tls", "--cafile", &ca]),
        ("ws", "protocol websockets\n".to_string(), &["--ws"]),
        (
            "wss",
            format!("protocol websockets\n{tls}"),
            &["--ws", "--tls", "--cafile", &ca],
        ),
    ];
    for (name, listener, flags) in cases {
        let text = format!(
            "allow_anonymous true\nmax_queued_messages 0\nlistener 0 127.0.0.1\n{listener}"
        );
        let config =
            culex_broker::config::Config::parse(&text, std::path::Path::new("b.conf"), &[])
                .unwrap();
        let broker = BrokerThread::start_with(config);
        let mut args = vec!["pairs", "-c", "2", "-q", "1", "-d", "500ms"];
        args.extend_from_slice(flags);
        let s = bench_json(broker.port(), &args);
        let sent = count(&s, "/messages/sent");
        assert!(sent > 0, "{name}: {s:#}");
        assert_eq!(count(&s, "/messages/received"), sent, "{name}: {s:#}");
    }
}
