//! mosquitto 2.0's log lines, captured in memory from the in-process broker.
//! Lines are picked out by client ids unique to each test.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use culex_broker::config::LogConfig;
use culex_broker::log::{MosquittoLayer, Sink};
use culex_broker::testing::BrokerThread;
use culex_codec::QoS;
use parking_lot::Mutex;
use tracing_subscriber::layer::SubscriberExt;

use crate::client::{ConnectOpts, Raw};

pub(crate) fn logs() -> Arc<Mutex<Vec<String>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<String>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let config = LogConfig {
            verbose: true,
            timestamp: false,
            ..LogConfig::default()
        };
        let layer = MosquittoLayer::with_sinks(&config, vec![Sink::Memory(lines.clone())]);
        let _ = tracing::subscriber::set_global_default(tracing_subscriber::registry().with(layer));
        lines
    })
    .clone()
}

/// Waits until `line` was logged; panics after 3 s listing what was seen.
pub(crate) fn expect_line(line: &str) {
    let logs = logs();
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline {
        if logs.lock().iter().any(|l| l == line) {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let seen: Vec<String> = logs
        .lock()
        .iter()
        .filter(|l| l.contains("lg-"))
        .cloned()
        .collect();
    panic!("no line {line:?}; seen:\n{}", seen.join("\n"));
}

#[test]
fn connection_and_packet_lines_match_mosquitto() {
    let logs = logs();
    let broker = BrokerThread::start();
    let port = broker.port();
    let (mut sub, _, _) = Raw::connect_with(
        port,
        ConnectOpts {
            client_id: "lg-sub",
            keep_alive: 30,
            username: Some("bob"),
            ..ConnectOpts::default()
        },
    );
    sub.subscribe(&[("a/#", QoS::AtLeastOnce)]);
    let (mut publ, _) = Raw::connect(port, "lg-pub", true);
    publ.publish_acked("a/b", b"hello", QoS::AtLeastOnce, true, 1);
    let g = sub.recv().publish();
    sub.ack(culex_codec::Packet::PubAck, g.id.unwrap());
    publ.disconnect();
    let local = sub.wire.0.local_addr().unwrap();
    expect_line(&format!(
        "New connection from 127.0.0.1:{} on port 0.",
        local.port()
    ));
    expect_line(&format!(
        "New client connected from 127.0.0.1:{} as lg-sub (p2, c1, k30, u'bob').",
        local.port()
    ));
    expect_line("No will message specified.");
    expect_line("Sending CONNACK to lg-sub (0, 0)");
    expect_line("Received SUBSCRIBE from lg-sub");
    expect_line("\ta/# (QoS 1)");
    expect_line("lg-sub 1 a/#");
    expect_line("Sending SUBACK to lg-sub");
    expect_line("Received PUBLISH from lg-pub (d0, q1, r1, m1, 'a/b', ... (5 bytes))");
    expect_line("Sending PUBLISH to lg-sub (d0, q1, r0, m1, 'a/b', ... (5 bytes))");
    expect_line("Sending PUBACK to lg-pub (m1, rc0)");
    expect_line("Received PUBACK from lg-sub (Mid: 1, RC:0)");
    expect_line("Received DISCONNECT from lg-pub");
    expect_line("Client lg-pub disconnected.");
    drop(sub);
    expect_line("Client lg-sub closed its connection.");

    let (_a, _) = Raw::connect(port, "lg-same", true);
    let (_b, _) = Raw::connect(port, "lg-same", true);
    expect_line("Client lg-same already connected, closing old connection.");

    let (_k, _, _) = Raw::connect_with(
        port,
        ConnectOpts {
            client_id: "lg-sleepy",
            keep_alive: 1,
            ..ConnectOpts::default()
        },
    );
    expect_line("Client lg-sleepy has exceeded timeout, disconnecting.");
    drop(logs);
}

#[test]
fn not_authorised_line() {
    let _ = logs();
    let mut config = culex_broker::testing::local_config();
    config.security.allow_anonymous = false;
    let broker = BrokerThread::start_with(config);
    let _ = Raw::connect_with(
        broker.port(),
        ConnectOpts {
            client_id: "lg-anon",
            ..ConnectOpts::default()
        },
    );
    expect_line("Client lg-anon disconnected, not authorised.");
}
