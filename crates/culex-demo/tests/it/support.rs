//! Helpers shared by the tests: brokers, bounded waits.

use std::sync::Arc;
use std::time::{Duration, Instant};

use culex_demo::board::{Board, BoardConfig, Signal};
use culex_demo::demo::{Demo, DemoOptions};
use culex_demo::EmbeddedBroker;

/// A broker for one test, on a free port of 127.0.0.1.
pub struct TestBroker {
    pub port: u16,
    _running: Running,
}

/// Held only to keep the broker alive until the test ends.
enum Running {
    Culex(#[allow(dead_code)] EmbeddedBroker),
    Mosquitto(#[allow(dead_code)] culex_testkit::Mosquitto),
}

impl TestBroker {
    /// culex's own broker, in-process.
    pub fn start() -> TestBroker {
        let addr = "127.0.0.1:0".parse().unwrap();
        let broker = EmbeddedBroker::start(addr).expect("start the culex broker");
        TestBroker {
            port: broker.addr().port(),
            _running: Running::Culex(broker),
        }
    }

    /// Debian's mosquitto, to show the boards work with any broker.
    pub fn mosquitto() -> TestBroker {
        let mosquitto = culex_testkit::Mosquitto::start("");
        TestBroker {
            port: mosquitto.port,
            _running: Running::Mosquitto(mosquitto),
        }
    }
}

/// `culex demo` as it runs without `--broker` (blue and green boards on its
/// own embedded broker), with its web page and broker on free ports of
/// 127.0.0.1.
pub fn demo_with_embedded_broker() -> Demo {
    let options = DemoOptions {
        http: "127.0.0.1:0".parse().unwrap(),
        http_given: true,
        mqtt: "127.0.0.1:0".parse().unwrap(),
        mqtt_given: true,
        ..DemoOptions::default()
    };
    Demo::start(&options).expect("demo starts")
}

/// Polls `done` every 10 ms until it holds or `timeout` passes; returns how
/// long it took, or `None` on timeout.
pub fn wait_until(timeout: Duration, mut done: impl FnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    loop {
        if done() {
            return Some(start.elapsed());
        }
        if start.elapsed() >= timeout {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Starts board `name` watching `peer` on the broker at 127.0.0.1:`port`.
pub fn board(name: &str, peer: &str, port: u16, signal: &Arc<Signal>) -> Board {
    let config = BoardConfig {
        name: name.into(),
        peer: peer.into(),
        host: "127.0.0.1".into(),
        port,
    };
    Board::start(config, Arc::clone(signal)).expect("start board")
}

/// Waits (at most 5 s) until every board is connected and subscribed.
pub fn wait_online(boards: &[&Board]) {
    let online = wait_until(Duration::from_secs(5), || {
        boards
            .iter()
            .all(|b| b.pins().link() == culex_demo::board::Link::Online)
    });
    assert!(
        online.is_some(),
        "boards not online: {:?}",
        boards
            .iter()
            .map(|b| b.pins().last_error())
            .collect::<Vec<_>>()
    );
}
