//! The boards' and the monitor's main loops over culex's blocking client,
//! written as the tutorial's MicroPython program is.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use culex_client::blocking::MQTTClient;
use culex_client::QoS;

use crate::board::{self, BoardConfig, Link, Pins, Program, KEEPALIVE_SECS};
use crate::monitor::{format_verbose, Log, MONITOR_FILTER};

/// How often the monitor pings: well inside its keepalive.
const PING_EVERY: Duration = Duration::from_secs(KEEPALIVE_SECS as u64 / 2);

/// Why a session ended.
enum Ended {
    /// The board was switched off.
    Stopped,
    /// The connection failed or dropped; the text says why.
    Failed(String),
}

/// Runs the board until `stop` is set, reconnecting with back-off whenever
/// the broker cannot be reached or the connection drops, as a board that
/// resets on error would.
pub(crate) fn run(config: &BoardConfig, pins: &Arc<Pins>, stop: &AtomicBool) {
    let mut backoff = Duration::from_millis(250);
    loop {
        match session(config, pins, stop) {
            Ended::Stopped => return,
            Ended::Failed(why) => {
                board::set_link(pins, Link::Connecting, Some(why));
                if board::sleep_unless_stopped(backoff, stop) {
                    return;
                }
                backoff = board::next_backoff(backoff);
            }
        }
    }
}

/// One connection's life: the tutorial's program from `connect()` on.
fn session(config: &BoardConfig, pins: &Arc<Pins>, stop: &AtomicBool) -> Ended {
    let mut program = Program::new(&config.name, &config.peer);
    let mut client = MQTTClient::new(&config.name, &config.host)
        .port(config.port)
        .keepalive(KEEPALIVE_SECS);
    client.set_callback({
        let program = program.clone();
        let pins = Arc::clone(pins);
        move |topic, msg| program.handle_message(topic, msg, &pins)
    });
    if let Err(err) = client.connect(true) {
        return Ended::Failed(format!("connect: {}", describe(&err)));
    }
    if let Err(err) = client.subscribe(program.peer_topic(), QoS::AtMostOnce) {
        return Ended::Failed(format!("subscribe: {}", describe(&err)));
    }
    board::set_link(pins, Link::Online, None);
    program.restart();
    loop {
        if stop.load(Ordering::SeqCst) {
            let _ = client.disconnect();
            return Ended::Stopped;
        }
        let now = Instant::now();
        if let Some(payload) = program.poll_publish(now, pins) {
            if let Err(err) = client.publish(program.own_topic(), payload, false, QoS::AtMostOnce) {
                return Ended::Failed(format!("publish: {}", describe(&err)));
            }
        }
        if let Err(err) = client.check_msg() {
            return Ended::Failed(format!("check_msg: {}", describe(&err)));
        }
        let until_publish = program
            .next_publish(now)
            .saturating_duration_since(Instant::now());
        std::thread::sleep(until_publish.min(board::check_interval()));
    }
}

/// Runs the monitor until `stop` is set: subscribed to every board's button,
/// appending each message to `log` as `mosquitto_sub -v` prints it.
pub(crate) fn run_monitor(
    client_id: &str,
    host: &str,
    port: u16,
    log: &Arc<Log>,
    stop: &AtomicBool,
) {
    let mut backoff = Duration::from_millis(250);
    while !stop.load(Ordering::SeqCst) {
        let mut client = MQTTClient::new(client_id, host)
            .port(port)
            .keepalive(KEEPALIVE_SECS);
        client.set_callback({
            let log = Arc::clone(log);
            move |topic, msg| log.push(format_verbose(topic, msg))
        });
        let subscribed = client
            .connect(true)
            .and_then(|_| client.subscribe(MONITOR_FILTER, QoS::AtMostOnce))
            .is_ok();
        if subscribed {
            backoff = Duration::from_millis(250);
            // The monitor only listens, so it pings to keep its session alive.
            let mut last_ping = Instant::now();
            while !stop.load(Ordering::SeqCst) {
                if client.check_msg().is_err() {
                    break;
                }
                if last_ping.elapsed() >= PING_EVERY {
                    if client.ping().is_err() {
                        break;
                    }
                    last_ping = Instant::now();
                }
                std::thread::sleep(board::check_interval());
            }
            if stop.load(Ordering::SeqCst) {
                let _ = client.disconnect();
                return;
            }
        }
        if board::sleep_unless_stopped(backoff, stop) {
            return;
        }
        backoff = board::next_backoff(backoff);
    }
}

/// The client's error in words, without Rust's debug formatting of I/O errors.
fn describe(err: &culex_client::blocking::Error<std::io::Error>) -> String {
    match err {
        culex_client::blocking::Error::Io(io) => io.to_string(),
        other => other.to_string(),
    }
}
