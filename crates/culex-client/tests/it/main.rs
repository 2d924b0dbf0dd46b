//! End-to-end tests of culex-client against real brokers on 127.0.0.1:
//! Debian's mosquitto (and culex's broker once it can be started in-process).

mod asynch;
mod blocking;
mod fake_server;
mod robust;

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

/// A mosquitto we can stop and start again on the same port (the testkit's
/// `Mosquitto` owns its port for its whole life).
pub struct RestartableMosquitto {
    /// The port, the same across restarts.
    pub port: u16,
    dir: tempfile::TempDir,
    child: Option<ChildGuard>,
}

impl RestartableMosquitto {
    /// Starts a broker on a free port.
    pub fn start() -> RestartableMosquitto {
        let mut m = RestartableMosquitto {
            port: culex_testkit::free_port(),
            dir: tempfile::tempdir().unwrap(),
            child: None,
        };
        m.restart();
        m
    }

    /// Kills the broker (all sessions are lost: no persistence).
    pub fn kill(&mut self) {
        self.child = None;
    }

    /// Starts it (again) on the same port.
    pub fn restart(&mut self) {
        self.kill();
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
                    self.child = Some(guard);
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
