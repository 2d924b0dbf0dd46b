//! `culex device` without a terminal: commands on standard input, one line
//! per change on standard output.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::sync::mpsc;
use std::time::Duration;

use culex_demo::board::{BoardConfig, Signal};
use culex_demo::device::{run_lines, DeviceOptions};

use crate::support::{board, wait_online, wait_until, TestBroker};

#[test]
fn a_device_process_plays_blue_against_a_green_board() {
    let broker = TestBroker::start();
    let signal = Signal::new();
    let green = board("green", "blue", broker.port, &signal);

    // The device's stdin and stdout are socket pairs the test holds the
    // other ends of.
    let (mut keys, device_stdin) = UnixStream::pair().expect("pair");
    let (screen, mut device_stdout) = UnixStream::pair().expect("pair");
    let options = DeviceOptions {
        board: BoardConfig {
            name: "blue".into(),
            peer: "green".into(),
            host: "127.0.0.1".into(),
            port: broker.port,
        },
    };
    let device = std::thread::spawn(move || {
        run_lines(
            &options,
            Box::new(BufReader::new(device_stdin)),
            &mut device_stdout,
        )
    });
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(screen).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let expect_line = |wanted: &str, timeout: Duration| {
        let deadline = std::time::Instant::now() + timeout;
        let mut seen = Vec::new();
        while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
            match lines.recv_timeout(left) {
                Ok(line) if line == wanted => return,
                Ok(line) => seen.push(line),
                Err(_) => break,
            }
        }
        panic!("device did not print {wanted:?} within {timeout:?}; it printed {seen:?}");
    };

    expect_line("blue: online", Duration::from_secs(5));
    wait_online(&[&green]);

    // A key press on the device lights green's LED.
    writeln!(keys, "press").unwrap();
    expect_line("blue: button pressed (GPIO0=0)", Duration::from_secs(1));
    assert!(
        wait_until(Duration::from_millis(1500), || green.pins().led_on()).is_some(),
        "green's LED stayed off"
    );
    writeln!(keys, "release").unwrap();
    expect_line("blue: button released (GPIO0=1)", Duration::from_secs(1));
    assert!(
        wait_until(Duration::from_millis(1500), || !green.pins().led_on()).is_some(),
        "green's LED stayed on"
    );

    // Green's button lights the device's LED.
    green.pins().press();
    expect_line("blue: LED on (GPIO2=1)", Duration::from_millis(1500));
    green.pins().release();
    expect_line("blue: LED off (GPIO2=0)", Duration::from_millis(1500));

    writeln!(keys, "quit").unwrap();
    expect_line("blue: stopped", Duration::from_secs(3));
    device.join().expect("device thread").expect("device ran");
}
