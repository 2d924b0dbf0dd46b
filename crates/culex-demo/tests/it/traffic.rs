//! The published traffic is exactly the tutorial's, as `mosquitto_sub -v`
//! prints it.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use culex_demo::board::Signal;
use culex_testkit::{tool, ChildGuard};

use crate::support::{board, wait_online, TestBroker};

/// `mosquitto_sub -v -t blue/btn/0`, its lines delivered with their arrival time.
pub(crate) struct Sub {
    lines: mpsc::Receiver<(Instant, String)>,
    _child: ChildGuard,
}

impl Sub {
    pub(crate) fn start(port: u16, topic: &str) -> Sub {
        let mut child = Command::new(tool("mosquitto_sub"))
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "-v",
                "-t",
                topic,
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start mosquitto_sub");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send((Instant::now(), line)).is_err() {
                    break;
                }
            }
        });
        Sub {
            lines,
            _child: ChildGuard(child),
        }
    }

    pub(crate) fn next(&self, timeout: Duration) -> (Instant, String) {
        self.lines
            .recv_timeout(timeout)
            .expect("mosquitto_sub printed nothing in time")
    }

    /// Every line printed during `period` after the first one arrives.
    fn collect(&self, period: Duration) -> Vec<(Instant, String)> {
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

/// Checks that every line is `expected` and that they come twice a second.
fn assert_cadence(lines: &[(Instant, String)], expected: &str) {
    for (_, line) in lines {
        assert_eq!(line, expected, "unexpected line from mosquitto_sub -v");
    }
    for pair in lines.windows(2) {
        let gap = pair[1].0 - pair[0].0;
        assert!(
            gap >= Duration::from_millis(250) && gap <= Duration::from_millis(850),
            "lines {gap:?} apart, expected about 500 ms"
        );
    }
}

#[test]
fn mosquitto_sub_sees_the_tutorial_traffic() {
    let broker = TestBroker::start();
    let sub = Sub::start(broker.port, "blue/btn/0");
    let signal = Signal::new();
    let blue = board("blue", "green", broker.port, &signal);
    wait_online(&[&blue]);

    // Released: "blue/btn/0 1" twice a second.
    let first = sub.next(Duration::from_secs(3));
    assert_eq!(first.1, "blue/btn/0 1");
    let mut released = vec![first];
    released.extend(sub.collect(Duration::from_millis(1600)));
    assert_cadence(&released, "blue/btn/0 1");
    assert!(
        (3..=5).contains(&released.len()),
        "{} lines in about 1.6 s",
        released.len()
    );

    // Held: "blue/btn/0 0", within one period of the press.
    blue.pins().press();
    let pressed_at = Instant::now();
    let mut held = Vec::new();
    let mut late_ones = 0;
    loop {
        let (at, line) = sub.next(Duration::from_secs(2));
        if line == "blue/btn/0 0" {
            assert!(
                at - pressed_at <= Duration::from_millis(800),
                "first 0 after {:?}",
                at - pressed_at
            );
            held.push((at, line));
            break;
        }
        // Only the publish that was already on its way may still say 1.
        assert_eq!(line, "blue/btn/0 1");
        late_ones += 1;
        assert!(late_ones <= 1, "two 1s after the press");
        assert!(
            at - pressed_at <= Duration::from_millis(450),
            "still 1 {:?} after the press",
            at - pressed_at
        );
    }
    held.extend(sub.collect(Duration::from_millis(1300)));
    assert_cadence(&held, "blue/btn/0 0");
    assert!(held.len() >= 3, "only {} lines while held", held.len());

    // Released again: back to 1.
    blue.pins().release();
    let (_, line) = sub.next(Duration::from_secs(2));
    let line = if line == "blue/btn/0 0" {
        sub.next(Duration::from_secs(2)).1
    } else {
        line
    };
    assert_eq!(line, "blue/btn/0 1");
}
