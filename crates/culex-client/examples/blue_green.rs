//! The tutorial's two board programs, "blue" and "green", in Rust.
//!
//! Each board connects with its name as client id and keepalive 60, and every
//! 0.5 s publishes its button (GPIO0, active low: `1` released, `0` pressed)
//! to `NAME/btn/0`; between publishes it handles incoming messages
//! (`check_msg`) from `PEER/btn/0` and lights its LED for `0`.
//!
//! ```text
//! cargo run -p culex-client --example blue_green -- 127.0.0.1 [PORT] [SECONDS]
//! ```
//!
//! With no hardware, each board's button is simulated: it is held down for
//! 1.5 s out of every 4 s (green's half a period after blue's), and every LED
//! change is printed.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use culex_client::blocking::MQTTClient;
use culex_client::QoS;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(host) = args.first().cloned() else {
        eprintln!("usage: blue_green HOST [PORT] [SECONDS]");
        std::process::exit(1);
    };
    let port: u16 = args.get(1).and_then(|p| p.parse().ok()).unwrap_or(1883);
    let seconds: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(10);
    let run_for = Duration::from_secs(seconds);

    let boards = [
        ("blue", "green", Duration::ZERO),
        ("green", "blue", Duration::from_secs(2)),
    ];
    let threads: Vec<_> = boards
        .into_iter()
        .map(|(name, peer, offset)| {
            let host = host.clone();
            std::thread::spawn(move || board(name, peer, &host, port, offset, run_for))
        })
        .collect();
    for t in threads {
        if let Err(e) = t.join().unwrap_or(Err("board thread panicked".into())) {
            eprintln!("{e}");
            std::process::exit(1);
        }
    }
}

/// One board: the tutorial's `main.py`, line for line.
fn board(
    name: &str,
    peer: &str,
    host: &str,
    port: u16,
    offset: Duration,
    run_for: Duration,
) -> Result<(), String> {
    let led = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    // GPIO0: active low, pressed for 1.5 s of every 4 s.
    let button = || -> u8 {
        let t = (start.elapsed() + offset).as_millis() % 4000;
        if t < 1500 {
            0
        } else {
            1
        }
    };

    let peer_topic = format!("{peer}/btn/0");
    let my_topic = format!("{name}/btn/0");
    let mut client = MQTTClient::new(name, host).port(port).keepalive(60);
    let led_in_callback = led.clone();
    let board_name = name.to_string();
    client.set_callback(move |topic, msg| {
        // LED on for "0" (the peer's button pressed), off for "1".
        let on = msg == b"0";
        if led_in_callback.swap(on, Ordering::Relaxed) != on {
            println!(
                "{board_name}: LED {} ({topic} {})",
                if on { "on" } else { "off" },
                String::from_utf8_lossy(msg)
            );
        }
    });
    client
        .connect(true)
        .map_err(|e| format!("{name}: connect: {e}"))?;
    client
        .subscribe(&peer_topic, QoS::AtMostOnce)
        .map_err(|e| format!("{name}: subscribe: {e}"))?;
    println!("{name}: connected, publishing {my_topic}, watching {peer_topic}");
    while start.elapsed() < run_for {
        let value = button().to_string();
        client
            .publish(&my_topic, value.as_bytes(), false, QoS::AtMostOnce)
            .map_err(|e| format!("{name}: publish: {e}"))?;
        // Handle incoming messages between publishes, for 0.5 s.
        let tick = Instant::now();
        while tick.elapsed() < Duration::from_millis(500) {
            client
                .check_msg()
                .map_err(|e| format!("{name}: check_msg: {e}"))?;
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    client
        .disconnect()
        .map_err(|e| format!("{name}: disconnect: {e}"))?;
    Ok(())
}
