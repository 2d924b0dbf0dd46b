//! End-to-end tests of culex-client against real brokers on 127.0.0.1:
//! Debian's mosquitto and culex's own broker (in-process). Most tests run on
//! both: `on_both_brokers!` makes a `mosquitto::NAME` and a `culex::NAME`.

mod asynch;
mod blocking;
mod embedded;
mod fake_server;
mod qemu_board;
mod resume;
mod robust;
mod tls;

use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use culex_testkit::{tool, ChildGuard};

/// Messages seen by a callback, shared with the test.
pub type Inbox = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

/// A callback that records every message into the returned inbox.
pub fn inbox() -> (Inbox, impl FnMut(&str, &[u8]) + Send + 'static) {
    let inbox: Inbox = Arc::default();
    let sink = inbox.clone();
    (inbox, move |topic: &str, msg: &[u8]| {
        sink.lock().unwrap().push((topic.to_string(), msg.to_vec()));
    })
}

/// Calls `step` until `done` holds or `timeout` passes; panics on timeout.
pub fn wait_until(timeout: Duration, mut step: impl FnMut(), mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(
            Instant::now() < deadline,
            "condition not met within {timeout:?}"
        );
        step();
    }
}

/// Which broker a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Debian's mosquitto.
    Mosquitto,
    /// culex's broker, in-process on its own runtime thread.
    Culex,
}

/// A running broker of either kind, stopped when dropped.
pub enum TestBroker {
    /// mosquitto.
    Mosquitto(culex_testkit::Mosquitto),
    /// culex.
    Culex(culex_broker::testing::BrokerThread),
}

impl TestBroker {
    /// Starts a broker of `kind` on 127.0.0.1 with mosquitto.conf lines
    /// `extra` (anonymous clients allowed unless `extra` says otherwise).
    pub fn start(kind: Kind, extra: &str) -> TestBroker {
        match kind {
            Kind::Mosquitto => TestBroker::Mosquitto(culex_testkit::Mosquitto::start(extra)),
            Kind::Culex => TestBroker::Culex(start_culex(culex_testkit::free_port(), extra)),
        }
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        match self {
            TestBroker::Mosquitto(m) => m.port,
            TestBroker::Culex(c) => c.port(),
        }
    }
}

fn culex_config(port: u16, extra: &str) -> culex_broker::config::Config {
    let mut text = format!("listener {port} 127.0.0.1\n");
    if !extra.contains("allow_anonymous") {
        text.push_str("allow_anonymous true\n");
    }
    text.push_str(extra);
    text.push('\n');
    culex_broker::config::Config::parse(&text, std::path::Path::new("test.conf"), &[])
        .unwrap_or_else(|e| panic!("culex config: {e}"))
}

fn start_culex(port: u16, extra: &str) -> culex_broker::testing::BrokerThread {
    culex_broker::testing::BrokerThread::start_with(culex_config(port, extra))
}

/// Generates one `#[test]` per broker kind for each listed function
/// `fn name(kind: Kind)`.
#[macro_export]
macro_rules! on_both_brokers {
    ($($name:ident),* $(,)?) => {
        mod mosquitto {
            $(#[test] fn $name() { super::$name($crate::Kind::Mosquitto) })*
        }
        mod culex {
            $(#[test] fn $name() { super::$name($crate::Kind::Culex) })*
        }
    };
}

/// The same for `async fn name(kind: Kind)` tests on tokio.
#[macro_export]
macro_rules! on_both_brokers_async {
    ($($name:ident),* $(,)?) => {
        mod mosquitto {
            $(#[tokio::test] async fn $name() { super::$name($crate::Kind::Mosquitto).await })*
        }
        mod culex {
            $(#[tokio::test] async fn $name() { super::$name($crate::Kind::Culex).await })*
        }
    };
}

/// A broker we can stop and start again on the same port, losing every
/// session (neither keeps state here).
pub struct RestartableBroker {
    port: u16,
    kind: Kind,
    dir: tempfile::TempDir,
    mosquitto: Option<ChildGuard>,
    culex: Option<culex_broker::testing::BrokerThread>,
}

impl RestartableBroker {
    /// Starts a broker of `kind` on a free port.
    pub fn start(kind: Kind) -> RestartableBroker {
        let mut b = RestartableBroker {
            port: culex_testkit::free_port(),
            kind,
            dir: tempfile::tempdir().unwrap(),
            mosquitto: None,
            culex: None,
        };
        b.restart();
        b
    }

    /// The port, the same across restarts.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Kills the broker.
    pub fn kill(&mut self) {
        self.mosquitto = None;
        self.culex = None;
    }

    /// Starts it (again) on the same port.
    pub fn restart(&mut self) {
        self.kill();
        match self.kind {
            Kind::Mosquitto => self.restart_mosquitto(),
            Kind::Culex => {
                let port = self.port;
                let deadline = Instant::now() + Duration::from_secs(10);
                loop {
                    // The port may linger for a moment after the previous broker.
                    match std::panic::catch_unwind(|| start_culex(port, "")) {
                        Ok(b) => {
                            self.culex = Some(b);
                            return;
                        }
                        Err(_) => {
                            assert!(Instant::now() < deadline, "culex did not restart on {port}");
                            std::thread::sleep(Duration::from_millis(100));
                        }
                    }
                }
            }
        }
    }

    fn restart_mosquitto(&mut self) {
        let conf = self.dir.path().join("mosquitto.conf");
        let mut f = std::fs::File::create(&conf).unwrap();
        writeln!(f, "listener {} 127.0.0.1\nallow_anonymous true", self.port).unwrap();
        drop(f);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let child = Command::new(tool("mosquitto"))
                .arg("-c")
                .arg(&conf)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            let mut guard = ChildGuard(child);
            // The port may linger for a moment after the previous broker died.
            let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
            let started = Instant::now();
            while started.elapsed() < Duration::from_secs(2) {
                if TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_ok() {
                    self.mosquitto = Some(guard);
                    return;
                }
                if let Ok(Some(_)) = guard.0.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            assert!(
                Instant::now() < deadline,
                "mosquitto did not restart on {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}
