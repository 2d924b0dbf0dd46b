//! The tutorial's board as riscv32imc firmware (`examples/qemu-board`),
//! booted under QEMU by its `run.sh` against culex's broker on 127.0.0.1:
//! the board is `green`, the test plays `blue` with `mosquitto_sub -v` and
//! our own client, types on the board's UART and reads its LED lines.
//!
//! `scripts/test` builds the firmware first; `run.sh` builds it itself when
//! it is missing or stale (the first wait below allows for that).

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use culex_client::blocking::MQTTClient;
use culex_client::QoS;
use culex_testkit::{tool, ChildGuard};

use crate::{Kind, RestartableBroker};

/// The board's expected line once it is subscribed to its peer.
const SUBSCRIBED: &str = "connected, subscribed to blue/btn/0";

#[test]
fn the_board_lights_its_peer_and_survives_broker_restarts() {
    for program in ["qemu-system-riscv32", "socat", "mosquitto_sub"] {
        tool(program);
    }
    // The broker is down when the board boots: it must keep trying.
    let mut broker = RestartableBroker::start(Kind::Culex);
    broker.kill();
    let mut board = Board::boot(broker.port());
    // Generous: run.sh may be compiling the firmware.
    board
        .out
        .wait_for_prefix("culex qemu-board green", Duration::from_secs(300));
    board
        .out
        .wait_for_prefix("connect failed: ", Duration::from_secs(10));
    broker.restart();
    let connack = board
        .out
        .wait_for_prefix("boot to CONNACK: ", Duration::from_secs(10));
    println!("firmware: {connack}");
    board.out.wait_for(SUBSCRIBED, Duration::from_secs(10));

    // Its button, released, twice a second.
    let sub = Sub::start(broker.port());
    sub.out.wait_for("green/btn/0 1", Duration::from_secs(5));
    let window = sub.out.collect(Duration::from_secs(3));
    assert!(
        window.iter().all(|line| line == "green/btn/0 1"),
        "unexpected traffic: {window:?}"
    );
    assert!(
        (4..=8).contains(&window.len()),
        "{} publishes in 3 s, expected about 6",
        window.len()
    );

    // A press on the UART is published, and so is the release.
    board.type_byte(b'p');
    sub.out.wait_for("green/btn/0 0", Duration::from_secs(3));
    board.type_byte(b'r');
    sub.out.wait_for("green/btn/0 1", Duration::from_secs(3));

    // blue's button drives green's LED.
    let mut blue = blue(broker.port());
    blue.publish("blue/btn/0", b"0", false, QoS::AtMostOnce)
        .unwrap();
    board.out.wait_for("LED on", Duration::from_secs(3));
    blue.publish("blue/btn/0", b"1", false, QoS::AtMostOnce)
        .unwrap();
    board.out.wait_for("LED off", Duration::from_secs(3));
    drop(blue);
    drop(sub);

    // A new broker on the same port, without the old one's sessions: the
    // board reconnects and subscribes again.
    broker.kill();
    broker.restart();
    board
        .out
        .wait_for_prefix("connection lost: ", Duration::from_secs(10));
    board.out.wait_for(SUBSCRIBED, Duration::from_secs(15));
    let sub = Sub::start(broker.port());
    sub.out.wait_for("green/btn/0 1", Duration::from_secs(5));
    let mut blue = self::blue(broker.port());
    blue.publish("blue/btn/0", b"0", false, QoS::AtMostOnce)
        .unwrap();
    board.out.wait_for("LED on", Duration::from_secs(3));

    // `q` disconnects and ends QEMU through the test device, status 0.
    board.type_byte(b'q');
    let stack = board.out.wait_for_prefix("stack: ", Duration::from_secs(3));
    println!("firmware: {stack}");
    board.out.wait_for("bye", Duration::from_secs(3));
    let deadline = Instant::now() + Duration::from_secs(5);
    let status = loop {
        if let Some(status) = board.child.0.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "QEMU did not exit after q");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "QEMU exited with {status}");
}

/// The board: `run.sh PORT green blue`, its UART on stdin and stdout.
struct Board {
    child: ChildGuard,
    uart: ChildStdin,
    out: Lines,
}

impl Board {
    fn boot(port: u16) -> Board {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/qemu-board/run.sh");
        let mut child = Command::new("bash")
            .arg(script)
            .args([&port.to_string(), "green", "blue"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own process group, so that the build run.sh may start
            // before it becomes QEMU is ended with it.
            .process_group(0)
            .spawn()
            .expect("start run.sh");
        let uart = child.stdin.take().expect("stdin");
        let out = Lines::of(&mut child, "the board");
        Board {
            child: ChildGuard(child),
            uart,
            out,
        }
    }

    /// Types one byte on the board's UART.
    fn type_byte(&mut self, byte: u8) {
        self.uart.write_all(&[byte]).unwrap();
        self.uart.flush().unwrap();
    }
}

impl Drop for Board {
    fn drop(&mut self) {
        // The whole group (QEMU, or bash and cargo before it); the guard
        // then reaps QEMU.
        let group = format!("-{}", self.child.0.id());
        let _ = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stderr(Stdio::null())
            .status();
    }
}

/// `mosquitto_sub -v -t green/btn/0`.
struct Sub {
    out: Lines,
    _child: ChildGuard,
}

impl Sub {
    fn start(port: u16) -> Sub {
        let mut child = Command::new(tool("mosquitto_sub"))
            .args(["-h", "127.0.0.1", "-p", &port.to_string()])
            .args(["-v", "-t", "green/btn/0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start mosquitto_sub");
        let out = Lines::of(&mut child, "mosquitto_sub");
        Sub {
            out,
            _child: ChildGuard(child),
        }
    }
}

fn blue(port: u16) -> MQTTClient<'static> {
    let mut blue = MQTTClient::new("blue", "127.0.0.1").port(port);
    blue.connect(true).unwrap();
    blue
}

/// A child's output lines as they arrive, and what it wrote to stderr, for
/// the failure messages.
struct Lines {
    name: &'static str,
    lines: mpsc::Receiver<String>,
    seen: Mutex<Vec<String>>,
    stderr: Arc<Mutex<String>>,
    stderr_reader: Mutex<Option<JoinHandle<()>>>,
}

impl Lines {
    /// Reads `child`'s stdout and stderr.
    fn of(child: &mut Child, name: &'static str) -> Lines {
        let stdout = child.stdout.take().expect("stdout");
        let mut stderr = child.stderr.take().expect("stderr");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line.trim_end().to_string()).is_err() {
                    break;
                }
            }
        });
        let errors = Arc::new(Mutex::new(String::new()));
        let sink = errors.clone();
        let stderr_reader = std::thread::spawn(move || {
            let mut text = String::new();
            let mut chunk = [0u8; 1024];
            while let Ok(n) = stderr.read(&mut chunk) {
                if n == 0 {
                    break;
                }
                text.push_str(&String::from_utf8_lossy(&chunk[..n]));
                *sink.lock().unwrap() = text.clone();
            }
        });
        Lines {
            name,
            lines,
            seen: Mutex::new(Vec::new()),
            stderr: errors,
            stderr_reader: Mutex::new(Some(stderr_reader)),
        }
    }

    /// Waits for the line `expected`; returns it.
    fn wait_for(&self, expected: &str, timeout: Duration) -> String {
        self.wait(|line| line == expected, expected, timeout)
    }

    /// Waits for a line that starts with `prefix`; returns it.
    fn wait_for_prefix(&self, prefix: &str, timeout: Duration) -> String {
        self.wait(|line| line.starts_with(prefix), prefix, timeout)
    }

    fn wait(&self, matches: impl Fn(&str) -> bool, what: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.lock().unwrap().push(line.clone());
                    if matches(&line) {
                        return line;
                    }
                }
                Err(e) => {
                    if e == mpsc::RecvTimeoutError::Disconnected {
                        // It exited: all it wrote to stderr is there to read.
                        if let Some(reader) = self.stderr_reader.lock().unwrap().take() {
                            let _ = reader.join();
                        }
                    }
                    panic!(
                        "{} did not print {what:?} within {timeout:?} ({e}); it printed {:#?}, stderr: {}",
                        self.name,
                        self.seen.lock().unwrap(),
                        self.stderr.lock().unwrap()
                    )
                }
            }
        }
    }

    /// Every line printed during the next `period`.
    fn collect(&self, period: Duration) -> Vec<String> {
        let end = Instant::now() + period;
        let mut lines = Vec::new();
        while let Some(left) = end.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(line) => lines.push(line),
                Err(_) => break,
            }
        }
        lines
    }
}
