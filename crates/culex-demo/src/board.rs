//! A simulated ESP32 board running the tutorial's program.
//!
//! The board is split the way firmware is: [`Pins`] is the hardware (GPIO0 is
//! a push button wired active-low, GPIO2 drives an LED), [`Program`] is the
//! tutorial's MicroPython program as a sans-IO state machine (it decides what
//! to publish and what an incoming message does to the LED, given the time),
//! and [`Board`] runs that program on its own thread over culex's blocking
//! client, as the board's main loop would: publish every half second and call
//! `check_msg()` in between.

use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::mpsc::RecvTimeoutError;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How often the tutorial's program publishes its button value.
pub const PUBLISH_PERIOD: Duration = Duration::from_millis(500);

/// The keepalive the tutorial's program connects with, in seconds.
pub const KEEPALIVE_SECS: u16 = 60;

/// How long the main loop sleeps between two `check_msg()` calls. The
/// tutorial's loop only checks once per publish; checking more often keeps
/// the same traffic and makes the peer's LED follow sooner.
const CHECK_INTERVAL: Duration = Duration::from_millis(20);

/// How long stopping a board waits for its program to end.
const STOP_WAIT: Duration = Duration::from_secs(2);

/// The longest wait between two connection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(4);

/// A change counter that observers (the terminal, the web page) wait on.
///
/// A mutex and a condition variable are the right tool here: changes are a
/// few per second, observers only need to know that something changed, and
/// none of them may hold back the board threads.
#[derive(Debug, Default)]
pub struct Signal {
    generation: Mutex<u64>,
    changed: Condvar,
}

impl Signal {
    /// A new signal, shared by everything that changes and everything that
    /// watches.
    pub fn new() -> Arc<Signal> {
        Arc::new(Signal::default())
    }

    /// Records a change and wakes every waiter.
    pub fn notify(&self) {
        let mut generation = self
            .generation
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        *generation = generation.wrapping_add(1);
        self.changed.notify_all();
    }

    /// The current generation, to pass to [`Signal::wait_past`] later.
    pub fn generation(&self) -> u64 {
        *self
            .generation
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits until the generation differs from `seen` or `timeout` passes,
    /// and returns the generation then.
    pub fn wait_past(&self, seen: u64, timeout: Duration) -> u64 {
        let guard = self
            .generation
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let (guard, _) = self
            .changed
            .wait_timeout_while(guard, timeout, |generation| *generation == seen)
            .unwrap_or_else(PoisonError::into_inner);
        *guard
    }
}

/// Where the board's connection to the broker stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    /// Trying to connect (or waiting before trying again).
    Connecting,
    /// Connected and subscribed to the peer's button.
    Online,
    /// Stopped.
    Off,
}

impl Link {
    /// A short lowercase name, as the page and the terminal show it.
    pub fn as_str(self) -> &'static str {
        match self {
            Link::Connecting => "connecting",
            Link::Online => "online",
            Link::Off => "off",
        }
    }

    fn from_u8(value: u8) -> Link {
        match value {
            1 => Link::Online,
            2 => Link::Off,
            _ => Link::Connecting,
        }
    }

    fn to_u8(self) -> u8 {
        match self {
            Link::Connecting => 0,
            Link::Online => 1,
            Link::Off => 2,
        }
    }
}

/// The board's hardware as the program and the user interfaces see it.
///
/// Shared between the board's thread and the user interface through atomics:
/// each value is a single bit that one side writes and the other reads.
#[derive(Debug)]
pub struct Pins {
    /// GPIO0 is pulled up: it reads high while the button is released.
    gpio0_high: AtomicBool,
    /// GPIO2 high lights the LED.
    gpio2_high: AtomicBool,
    link: AtomicU8,
    last_error: Mutex<Option<String>>,
    signal: Arc<Signal>,
}

impl Pins {
    /// Fresh pins: button released, LED off, not connected.
    pub fn new(signal: Arc<Signal>) -> Arc<Pins> {
        Arc::new(Pins {
            gpio0_high: AtomicBool::new(true),
            gpio2_high: AtomicBool::new(false),
            link: AtomicU8::new(Link::Connecting.to_u8()),
            last_error: Mutex::new(None),
            signal,
        })
    }

    /// Presses (`true`) or releases (`false`) the button.
    pub fn set_pressed(&self, pressed: bool) {
        let before = self.gpio0_high.swap(!pressed, Ordering::SeqCst);
        if before == pressed {
            self.signal.notify();
        }
    }

    /// Presses the button and holds it down.
    pub fn press(&self) {
        self.set_pressed(true);
    }

    /// Releases the button.
    pub fn release(&self) {
        self.set_pressed(false);
    }

    /// Whether the button is held down.
    pub fn pressed(&self) -> bool {
        !self.gpio0_high.load(Ordering::SeqCst)
    }

    /// What `Pin(0).value()` reads: 1 released, 0 pressed.
    pub fn button_value(&self) -> u8 {
        u8::from(self.gpio0_high.load(Ordering::SeqCst))
    }

    /// Whether GPIO2 drives the LED on.
    pub fn led_on(&self) -> bool {
        self.gpio2_high.load(Ordering::SeqCst)
    }

    /// Drives GPIO2: `true` lights the LED.
    pub fn set_led(&self, on: bool) {
        if self.gpio2_high.swap(on, Ordering::SeqCst) != on {
            self.signal.notify();
        }
    }

    /// The state of the board's connection.
    pub fn link(&self) -> Link {
        Link::from_u8(self.link.load(Ordering::SeqCst))
    }

    /// Why the last connection attempt failed or the connection dropped.
    pub fn last_error(&self) -> Option<String> {
        self.last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn set_link(&self, link: Link, error: Option<String>) {
        *self
            .last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = error;
        if self.link.swap(link.to_u8(), Ordering::SeqCst) != link.to_u8() {
            self.signal.notify();
        }
    }
}

/// The tutorial's program, without the I/O: what to publish when, and what a
/// message does to the LED.
///
/// Call order: [`Program::poll_publish`] each time round the main loop (it
/// returns a message when one is due), [`Program::handle_message`] for every
/// message the client delivers, and sleep at most until
/// [`Program::next_publish`].
#[derive(Debug, Clone)]
pub struct Program {
    own_topic: String,
    peer_topic: String,
    next_publish: Option<Instant>,
}

impl Program {
    /// The program of board `name`, watching board `peer`.
    pub fn new(name: &str, peer: &str) -> Program {
        Program {
            own_topic: button_topic(name),
            peer_topic: button_topic(peer),
            next_publish: None,
        }
    }

    /// The topic this board publishes its button on.
    pub fn own_topic(&self) -> &str {
        &self.own_topic
    }

    /// The topic this board subscribes to.
    pub fn peer_topic(&self) -> &str {
        &self.peer_topic
    }

    /// The payload to publish on [`Program::own_topic`] if one is due at
    /// `now`: the button's value as `0` or `1`.
    pub fn poll_publish(&mut self, now: Instant, pins: &Pins) -> Option<&'static [u8]> {
        if self.next_publish.is_some_and(|due| now < due) {
            return None;
        }
        // Keep a steady cadence, but never try to catch up after a stall.
        self.next_publish = Some(match self.next_publish {
            Some(due) if now < due + PUBLISH_PERIOD => due + PUBLISH_PERIOD,
            _ => now + PUBLISH_PERIOD,
        });
        Some(if pins.button_value() == 0 { b"0" } else { b"1" })
    }

    /// When the next publish is due (now, before the first one).
    pub fn next_publish(&self, now: Instant) -> Instant {
        self.next_publish.unwrap_or(now)
    }

    /// Starts the cadence afresh, as after a reconnect.
    pub fn restart(&mut self) {
        self.next_publish = None;
    }

    /// The subscription callback: `0` from the peer lights the LED, `1` puts
    /// it out, anything else is ignored.
    pub fn handle_message(&self, topic: &str, msg: &[u8], pins: &Pins) {
        if topic != self.peer_topic {
            return;
        }
        match msg {
            b"0" => pins.set_led(true),
            b"1" => pins.set_led(false),
            _ => {}
        }
    }
}

/// The topic board `name` publishes its button on.
pub fn button_topic(name: &str) -> String {
    format!("{name}/btn/0")
}

/// What a board needs to know to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoardConfig {
    /// Its client id, and the first level of its button topic.
    pub name: String,
    /// The board whose button lights this board's LED.
    pub peer: String,
    /// The broker's host name or address.
    pub host: String,
    /// The broker's port.
    pub port: u16,
}

/// A simulated board whose program runs on its own thread.
///
/// Dropping it stops the program and disconnects.
#[derive(Debug)]
pub struct Board {
    config: BoardConfig,
    pins: Arc<Pins>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    /// Disconnected (the sender dropped) when the program's thread ends.
    ended: std::sync::mpsc::Receiver<()>,
}

impl Board {
    /// Powers the board on: its program connects to the broker (retrying
    /// with back-off until it succeeds) and runs until the board is dropped.
    pub fn start(config: BoardConfig, signal: Arc<Signal>) -> std::io::Result<Board> {
        let pins = Pins::new(signal);
        let stop = Arc::new(AtomicBool::new(false));
        let (ending, ended) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name(format!("board-{}", config.name))
            .spawn({
                let config = config.clone();
                let pins = Arc::clone(&pins);
                let stop = Arc::clone(&stop);
                move || {
                    let _ending = ending;
                    crate::firmware::run(&config, &pins, &stop);
                }
            })?;
        Ok(Board {
            config,
            pins,
            stop,
            thread: Some(thread),
            ended,
        })
    }

    /// The board's name.
    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// The name of its peer.
    pub fn peer(&self) -> &str {
        &self.config.peer
    }

    /// Its button, LED and link, shared with the running program.
    pub fn pins(&self) -> &Arc<Pins> {
        &self.pins
    }

    /// Stops the program, disconnects and waits for the thread to end.
    pub fn stop(mut self) {
        self.shut_down();
    }

    fn shut_down(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            // The program sees the flag within one loop, unless it is stuck
            // connecting to a host that does not answer: then it is left to
            // finish on its own rather than hold up the caller.
            if let Err(RecvTimeoutError::Disconnected) = self.ended.recv_timeout(STOP_WAIT) {
                let _ = thread.join();
            }
        }
        self.pins.set_link(Link::Off, None);
    }
}

impl Drop for Board {
    fn drop(&mut self) {
        self.shut_down();
    }
}

pub(crate) fn set_link(pins: &Pins, link: Link, error: Option<String>) {
    pins.set_link(link, error);
}

/// Sleeps for `duration` in short steps, returning early (with `true`) once
/// `stop` is set.
pub(crate) fn sleep_unless_stopped(duration: Duration, stop: &AtomicBool) -> bool {
    let deadline = Instant::now() + duration;
    loop {
        if stop.load(Ordering::SeqCst) {
            return true;
        }
        let now = Instant::now();
        if now >= deadline {
            return false;
        }
        std::thread::sleep((deadline - now).min(CHECK_INTERVAL));
    }
}

pub(crate) fn check_interval() -> Duration {
    CHECK_INTERVAL
}

pub(crate) fn next_backoff(current: Duration) -> Duration {
    (current * 2).min(MAX_BACKOFF)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pins() -> Arc<Pins> {
        Pins::new(Signal::new())
    }

    #[test]
    fn button_is_active_low() {
        let pins = pins();
        assert_eq!(pins.button_value(), 1);
        pins.press();
        assert_eq!(pins.button_value(), 0);
        assert!(pins.pressed());
        pins.release();
        assert_eq!(pins.button_value(), 1);
    }

    #[test]
    fn publishes_the_button_every_half_second() {
        let pins = pins();
        let mut program = Program::new("blue", "green");
        let t0 = Instant::now();
        assert_eq!(program.poll_publish(t0, &pins), Some(&b"1"[..]));
        assert_eq!(
            program.poll_publish(t0 + Duration::from_millis(499), &pins),
            None
        );
        pins.press();
        assert_eq!(
            program.poll_publish(t0 + Duration::from_millis(500), &pins),
            Some(&b"0"[..])
        );
        assert_eq!(program.next_publish(t0), t0 + Duration::from_millis(1000));
        // After a long stall the cadence restarts instead of bursting.
        assert_eq!(
            program.poll_publish(t0 + Duration::from_secs(5), &pins),
            Some(&b"0"[..])
        );
        assert_eq!(
            program.poll_publish(t0 + Duration::from_millis(5100), &pins),
            None
        );
        assert_eq!(program.own_topic(), "blue/btn/0");
    }

    #[test]
    fn the_peer_button_drives_the_led() {
        let pins = pins();
        let program = Program::new("blue", "green");
        program.handle_message("green/btn/0", b"0", &pins);
        assert!(pins.led_on());
        program.handle_message("green/btn/0", b"junk", &pins);
        assert!(pins.led_on());
        program.handle_message("red/btn/0", b"1", &pins);
        assert!(pins.led_on());
        program.handle_message("green/btn/0", b"1", &pins);
        assert!(!pins.led_on());
    }

    #[test]
    fn changes_wake_watchers() {
        let signal = Signal::new();
        let pins = Pins::new(Arc::clone(&signal));
        let seen = signal.generation();
        pins.press();
        assert_ne!(signal.wait_past(seen, Duration::from_secs(1)), seen);
        let seen = signal.generation();
        pins.press();
        assert_eq!(signal.wait_past(seen, Duration::from_millis(10)), seen);
    }
}
