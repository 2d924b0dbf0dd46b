//! The tutorial's board as firmware for the ESP32-C3's instruction set
//! (`riscv32imc-unknown-none-elf`), booted by QEMU's `virt` board.
//!
//! The program is the tutorial's: connect as NAME with keep-alive 60,
//! subscribe to `PEER/btn/0`, publish the button on `NAME/btn/0` every
//! 0.5 s (`1` released, `0` pressed: active low, like GPIO0), and keep the
//! LED on while the peer's last message is `0`. On this board:
//!
//! - the LED is a line on the UART, `LED on` or `LED off`;
//! - the button is the UART's input: `p` presses it, `r` releases it, and
//!   `q` disconnects, reports the stack's peak use and ends QEMU (exit
//!   status 0);
//! - NAME and PEER come from the kernel command line,
//!   `-append "name=green peer=blue"`;
//! - the network is smoltcp over virtio-net with the static address
//!   10.0.2.15, and the broker is always 10.0.2.100:1883, a QEMU `guestfwd`
//!   to the host (see `run.sh`).
//!
//! A dropped connection, a broker restart or a broker that is not up yet
//! are all handled the same way: connect again (and subscribe again) with
//! back-off. There is no allocator; the buffers are statics and arrays.
//! Every `unsafe` block is in `hw`.
#![no_std]
#![no_main]
#![deny(unsafe_code)]

mod bootargs;
#[allow(unsafe_code)]
mod hw;
mod net;

use core::fmt::{self, Write as _};

use culex_client::blocking::{Client, Error};
use culex_client::core::Millis;
use culex_client::QoS;
use smoltcp::iface::SocketStorage;

use crate::bootargs::BootArgs;
use crate::net::{Net, NetBuffers, NetError};

/// The tutorial's keep-alive, in seconds.
const KEEP_ALIVE_S: u16 = 60;
/// The button is published this often.
const PUBLISH_EVERY_MS: u64 = 500;
/// How long CONNACK and SUBACK may take.
const RESPONSE_TIMEOUT_MS: u64 = 3_000;
/// The first wait before connecting again, doubled after each failure.
const BACKOFF_FIRST_MS: u64 = 250;
const BACKOFF_MAX_MS: u64 = 4_000;
/// The client's receive and transmit buffers: the largest packet it takes.
const PACKET_BUFFER: usize = 512;

/// `println!` onto the UART.
macro_rules! say {
    ($($arg:tt)*) => {
        let _ = writeln!(hw::Uart, $($arg)*);
    };
}

static NET_BUFFERS: hw::Static<NetBuffers> = hw::Static::new(NetBuffers::new());
static SOCKETS: hw::Static<[SocketStorage<'static>; 1]> = hw::Static::new([SocketStorage::EMPTY]);

#[riscv_rt::entry]
fn main(_hart: usize, device_tree: usize, _: usize) -> ! {
    hw::paint_stack();
    hw::start_timer();
    let args = match hw::device_tree(device_tree)
        .ok_or("no device tree")
        .and_then(bootargs::parse)
    {
        Ok(args) => args,
        Err(why) => {
            say!("boot: {why}: start with -append \"name=NAME peer=PEER\"");
            hw::exit(2)
        }
    };
    let (Some(buffers), Some(sockets)) = (NET_BUFFERS.take(), SOCKETS.take()) else {
        hw::exit(3)
    };
    let net = match Net::new(buffers, sockets) {
        Ok(net) => net,
        Err(e) => {
            say!("boot: network: {e:?}");
            hw::exit(3)
        }
    };
    say!(
        "culex qemu-board {} (peer {}): mac {}, address {}, broker {}:{}",
        args.name,
        args.peer,
        Mac(net.mac()),
        net::ADDRESS,
        net::BROKER,
        net::BROKER_PORT
    );
    run(args, net)
}

/// The tutorial's main loop, forever.
fn run(args: BootArgs, net: Net) -> ! {
    let own_topic = Topic::of(args.name);
    let peer_topic = Topic::of(args.peer);
    let mut led = Led::Off;
    let mut on_message = |topic: &str, msg: &[u8]| {
        if topic != peer_topic.as_str() {
            return;
        }
        match msg {
            b"0" => led.set(true),
            b"1" => led.set(false),
            _ => {}
        }
    };
    let mut client = Client::with_transport(
        args.name,
        net,
        || Millis(hw::now_ms()),
        [0u8; PACKET_BUFFER],
        [0u8; PACKET_BUFFER],
    )
    .keepalive(KEEP_ALIVE_S)
    .auto_ping(true)
    .response_timeout_ms(RESPONSE_TIMEOUT_MS);
    client.set_callback(&mut on_message);

    let mut pressed = false;
    let mut backoff = Backoff::new();
    let mut retry_at = 0;
    let mut next_publish = 0;
    let mut first_connack = true;
    say!("LED off");
    loop {
        while let Some(byte) = hw::uart_read() {
            match byte {
                b'p' => pressed = true,
                b'r' => pressed = false,
                b'q' => {
                    if client.is_connected() {
                        let _ = client.disconnect();
                    }
                    say!("stack: at most {} bytes used", hw::stack_peak());
                    say!("bye");
                    hw::exit(0)
                }
                _ => {}
            }
        }
        let now = hw::now_ms();
        if !client.is_connected() {
            if now >= retry_at {
                match connect(&mut client, peer_topic.as_str()) {
                    Ok(connack_ms) => {
                        if first_connack {
                            say!("boot to CONNACK: {connack_ms} ms");
                            first_connack = false;
                        }
                        say!("connected, subscribed to {}", peer_topic.as_str());
                        backoff.reset();
                        next_publish = hw::now_ms();
                    }
                    Err(e) => {
                        let wait = backoff.next();
                        say!("connect failed: {e}; retrying in {wait} ms");
                        retry_at = hw::now_ms().saturating_add(wait);
                    }
                }
            }
        } else {
            let mut result = Ok(0);
            if now >= next_publish {
                // A steady cadence that never bursts to catch up after a stall.
                next_publish = next_publish.saturating_add(PUBLISH_EVERY_MS);
                if next_publish <= now {
                    next_publish = now.saturating_add(PUBLISH_EVERY_MS);
                }
                let button: &[u8] = if pressed { b"0" } else { b"1" };
                result = client
                    .publish(own_topic.as_str(), button, false, QoS::AtMostOnce)
                    .map(|()| 0);
            }
            if let Err(e) = result.and_then(|_| client.check_msg()) {
                client.abort();
                let wait = backoff.next();
                say!("connection lost: {e}; reconnecting in {wait} ms");
                retry_at = hw::now_ms().saturating_add(wait);
            }
        }
        let until = if client.is_connected() {
            next_publish
        } else {
            retry_at
        };
        client.transport().idle_until(until);
    }
}

/// Connects and subscribes to the peer's button; returns when CONNACK came
/// (milliseconds since reset).
fn connect<C>(
    client: &mut Client<'_, Net, C, [u8; PACKET_BUFFER]>,
    peer_topic: &str,
) -> Result<u64, Error<NetError>>
where
    C: culex_client::blocking::Clock,
{
    client.connect(true)?;
    let connack_ms = hw::now_ms();
    if let Err(e) = client.subscribe(peer_topic, QoS::AtMostOnce) {
        client.abort();
        return Err(e);
    }
    Ok(connack_ms)
}

/// The LED: a line on the UART whenever it changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Led {
    On,
    Off,
}

impl Led {
    fn set(&mut self, on: bool) {
        let new = if on { Led::On } else { Led::Off };
        if *self != new {
            *self = new;
            say!("LED {}", if on { "on" } else { "off" });
        }
    }
}

/// Wait before the next connection attempt: doubles up to a ceiling.
struct Backoff {
    next_ms: u64,
}

impl Backoff {
    fn new() -> Backoff {
        Backoff {
            next_ms: BACKOFF_FIRST_MS,
        }
    }

    fn next(&mut self) -> u64 {
        let wait = self.next_ms;
        self.next_ms = (wait * 2).min(BACKOFF_MAX_MS);
        wait
    }

    fn reset(&mut self) {
        self.next_ms = BACKOFF_FIRST_MS;
    }
}

/// `NAME/btn/0`, in a fixed buffer.
struct Topic {
    bytes: [u8; bootargs::MAX_NAME + 6],
    len: usize,
}

impl Topic {
    fn of(name: &str) -> Topic {
        let mut topic = Topic {
            bytes: [0; bootargs::MAX_NAME + 6],
            len: 0,
        };
        // Names are at most MAX_NAME bytes (checked at boot), so this fits.
        let _ = write!(topic, "{name}/btn/0");
        topic
    }

    fn as_str(&self) -> &str {
        self.bytes
            .get(..self.len)
            .and_then(|b| core::str::from_utf8(b).ok())
            .unwrap_or_default()
    }
}

impl fmt::Write for Topic {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len.checked_add(s.len()).ok_or(fmt::Error)?;
        let dst = self.bytes.get_mut(self.len..end).ok_or(fmt::Error)?;
        dst.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// A MAC address as `52:54:00:12:34:56`.
struct Mac([u8; 6]);

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}
