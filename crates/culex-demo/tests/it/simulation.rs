//! The simulated boards end to end: one board's button lights the other's LED.

use std::time::Duration;

use culex_demo::board::{Board, Link, Signal};

use crate::support::{board, wait_online, wait_until, TestBroker};

/// The limit: the peer's LED follows the button within 1.5 s.
const FOLLOW: Duration = Duration::from_millis(1500);

/// Holds `presser`'s button, checks `watcher`'s LED lights within 1.5 s and
/// `presser`'s own stays dark, then releases and checks it goes out.
fn press_and_release(presser: &Board, watcher: &Board) {
    assert!(
        !watcher.pins().led_on(),
        "{}'s LED lit before any press",
        watcher.name()
    );
    presser.pins().press();
    let on = wait_until(FOLLOW, || watcher.pins().led_on());
    assert!(
        on.is_some(),
        "{}'s LED not on within {FOLLOW:?} of pressing {}",
        watcher.name(),
        presser.name()
    );
    assert!(
        !presser.pins().led_on(),
        "pressing {} lit its own LED",
        presser.name()
    );
    presser.pins().release();
    let off = wait_until(FOLLOW, || !watcher.pins().led_on());
    assert!(
        off.is_some(),
        "{}'s LED not off within {FOLLOW:?} of releasing {}",
        watcher.name(),
        presser.name()
    );
}

fn blue_and_green_light_each_other(port: u16) {
    let signal = Signal::new();
    let blue = board("blue", "green", port, &signal);
    let green = board("green", "blue", port, &signal);
    wait_online(&[&blue, &green]);
    // Let each see the other's first "1", as after power-on.
    std::thread::sleep(Duration::from_millis(600));
    press_and_release(&blue, &green);
    press_and_release(&green, &blue);
    // And once more the first way, so a board that latched is caught.
    press_and_release(&blue, &green);
}

#[test]
fn blue_and_green_light_each_other_through_culex() {
    let broker = TestBroker::start();
    blue_and_green_light_each_other(broker.port);
}

#[test]
fn blue_and_green_light_each_other_through_mosquitto() {
    let broker = TestBroker::mosquitto();
    blue_and_green_light_each_other(broker.port);
}

#[test]
fn boards_reconnect_when_the_broker_restarts() {
    let addr: std::net::SocketAddr = "127.0.0.1:0".parse().unwrap();
    let broker = culex_demo::EmbeddedBroker::start(addr).expect("start broker");
    let port = broker.addr().port();
    let signal = Signal::new();
    let blue = board("blue", "green", port, &signal);
    let green = board("green", "blue", port, &signal);
    wait_online(&[&blue, &green]);

    drop(broker);
    let lost = wait_until(Duration::from_secs(3), || {
        [&blue, &green]
            .iter()
            .all(|b| b.pins().link() == Link::Connecting)
    });
    assert!(
        lost.is_some(),
        "the boards did not notice the broker going away"
    );

    // Same port again, as after `systemctl restart`: the boards come back by
    // themselves and work as before.
    let broker =
        culex_demo::EmbeddedBroker::start(std::net::SocketAddr::from(([127, 0, 0, 1], port)))
            .expect("restart broker on the same port");
    wait_online(&[&blue, &green]);
    std::thread::sleep(Duration::from_millis(600));
    press_and_release(&blue, &green);
    drop(broker);
}

#[test]
fn a_board_stuck_connecting_still_stops_promptly() {
    // A server that accepts TCP connections but never answers CONNECT.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = silent.local_addr().unwrap().port();
    let signal = Signal::new();
    let blue = board("blue", "green", port, &signal);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(blue.pins().link(), Link::Connecting);
    let started = std::time::Instant::now();
    blue.stop();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "stopping took {:?}",
        started.elapsed()
    );
}

#[test]
fn a_board_without_a_broker_says_why_and_keeps_trying() {
    let port = culex_testkit::free_port();
    let signal = Signal::new();
    let blue = board("blue", "green", port, &signal);
    let why = wait_until(Duration::from_secs(2), || {
        blue.pins().last_error().is_some()
    });
    assert!(why.is_some(), "no error reported");
    let error = blue.pins().last_error().unwrap();
    assert!(
        error.starts_with("connect: ") && error.contains("refused"),
        "{error}"
    );
    assert_eq!(blue.pins().link(), Link::Connecting);

    // The broker comes up later: the board connects by itself.
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let _broker = culex_demo::EmbeddedBroker::start(addr).expect("start broker");
    wait_online(&[&blue]);
    assert_eq!(blue.pins().last_error(), None);
}
