//! `culex device` on a terminal: raw mode, a status line redrawn in place,
//! the space bar as the button and `q` to quit. util-linux's `script` gives
//! the program a pseudo-terminal.

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use culex_demo::board::Signal;
use culex_testkit::{tool, ChildGuard};

use crate::support::{board, wait_online, wait_until, TestBroker};

/// Everything the program has drawn so far, shared with a reader thread.
#[derive(Clone, Default)]
struct Screen(Arc<Mutex<Vec<u8>>>);

impl Screen {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }

    /// The status line as last redrawn (after the last "erase line").
    fn status(&self) -> String {
        let text = self.text();
        text.rsplit("\x1b[2K").next().unwrap_or("").to_owned()
    }

    fn wait_for(&self, what: &str, timeout: Duration) {
        let seen = wait_until(timeout, || self.status().contains(what));
        assert!(
            seen.is_some(),
            "status line never showed {what:?}; screen: {:?}",
            self.text()
        );
    }
}

#[test]
fn the_space_bar_is_the_button_and_q_quits() {
    let broker = TestBroker::start();
    let signal = Signal::new();
    let green = board("green", "blue", broker.port, &signal);
    wait_online(&[&green]);

    let (mut keys, screen, mut child) = spawn_device(broker.port);

    // The program asks the terminal whether it reports key releases; this
    // one never answers, so after a short wait each space toggles.
    screen.wait_for("online", Duration::from_secs(5));
    assert!(screen.status().contains("LED off") && screen.status().contains("released"));
    assert!(screen.status().contains("space presses/releases BOOT"));

    press_keys(&mut keys, b" ");
    screen.wait_for("pressed", Duration::from_secs(1));
    assert!(screen.status().contains("GPIO0=0"));
    let lit = wait_until(Duration::from_millis(1500), || green.pins().led_on());
    assert!(lit.is_some(), "green's LED stayed off");

    press_keys(&mut keys, b" ");
    screen.wait_for("released", Duration::from_secs(1));
    let out = wait_until(Duration::from_millis(1500), || !green.pins().led_on());
    assert!(out.is_some(), "green's LED stayed on");

    // Green's button lights the terminal's LED.
    green.pins().press();
    screen.wait_for("LED on", Duration::from_millis(1500));
    green.pins().release();
    screen.wait_for("LED off", Duration::from_millis(1500));

    keys.write_all(b"q").unwrap();
    keys.flush().unwrap();
    let ended = wait_until(Duration::from_secs(3), || {
        matches!(child.0.try_wait(), Ok(Some(_)))
    });
    assert!(ended.is_some(), "q did not quit");
    let status = child.0.try_wait().unwrap().unwrap();
    assert!(status.success(), "exit status {status:?}");
    // The cursor, hidden while the status line is drawn, is shown again.
    let text = screen.text();
    assert!(text.contains("\x1b[?25l") && text.contains("\x1b[?25h"));
}

/// Runs `culex-device` as blue (peer green) under a pseudo-terminal; returns
/// its keyboard, its screen and the process.
fn spawn_device(port: u16) -> (std::process::ChildStdin, Screen, ChildGuard) {
    let device = format!(
        "{} --name blue --peer green -h 127.0.0.1 -p {port}",
        env!("CARGO_BIN_EXE_culex-device"),
    );
    let mut child = Command::new(tool("script"))
        .args(["-qfec", &device, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("run script");
    let keys = child.stdin.take().expect("stdin");
    let mut output = child.stdout.take().expect("stdout");
    let screen = Screen::default();
    std::thread::spawn({
        let screen = screen.clone();
        move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = output.read(&mut buf) {
                if n == 0 {
                    break;
                }
                screen.0.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        }
    });
    (keys, screen, ChildGuard(child))
}

fn press_keys(keys: &mut std::process::ChildStdin, bytes: &[u8]) {
    keys.write_all(bytes).unwrap();
    keys.flush().unwrap();
}

fn wait_exit(child: &mut ChildGuard) {
    let ended = wait_until(Duration::from_secs(3), || {
        matches!(child.0.try_wait(), Ok(Some(_)))
    });
    assert!(ended.is_some(), "q did not quit");
    let status = child.0.try_wait().unwrap().unwrap();
    assert!(status.success(), "exit status {status:?}");
}

#[test]
fn on_a_terminal_that_reports_releases_the_button_is_held() {
    let broker = TestBroker::start();
    let signal = Signal::new();
    let green = board("green", "blue", broker.port, &signal);
    wait_online(&[&green]);
    let (mut keys, screen, mut child) = spawn_device(broker.port);

    // Answer the program's query as a terminal with the kitty keyboard
    // protocol does: its flags, then the primary device attributes.
    let asked = wait_until(Duration::from_secs(5), || screen.text().contains("\x1b[?u"));
    assert!(asked.is_some(), "no keyboard query: {:?}", screen.text());
    press_keys(&mut keys, b"\x1b[?0u\x1b[?62c");
    screen.wait_for("online", Duration::from_secs(5));
    assert!(
        screen.status().contains("hold space to press BOOT"),
        "{:?}",
        screen.status()
    );
    // It asked the terminal to report key releases (CSI > 2 u).
    assert!(screen.text().contains("\x1b[>2u"));

    // Space down (kitty: CSI 32 u), held: green lights; space up
    // (CSI 32 ; 1:3 u): it goes out.
    press_keys(&mut keys, b"\x1b[32u");
    screen.wait_for("pressed", Duration::from_secs(1));
    let lit = wait_until(Duration::from_millis(1500), || green.pins().led_on());
    assert!(lit.is_some(), "green's LED stayed off");
    // A repeat while held changes nothing.
    press_keys(&mut keys, b"\x1b[32;1:2u");
    std::thread::sleep(Duration::from_millis(100));
    assert!(screen.status().contains("pressed"));
    press_keys(&mut keys, b"\x1b[32;1:3u");
    screen.wait_for("released", Duration::from_secs(1));
    let out = wait_until(Duration::from_millis(1500), || !green.pins().led_on());
    assert!(out.is_some(), "green's LED stayed on");

    press_keys(&mut keys, b"q");
    wait_exit(&mut child);
    // The keyboard mode is popped on the way out (CSI < u).
    assert!(screen.text().contains("\x1b[<1u"), "{:?}", screen.text());
}
