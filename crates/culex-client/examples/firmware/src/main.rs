//! The tutorial's board program as `#![no_std]`, `#![no_main]` firmware.
//!
//! It uses culex's blocking client exactly as the MicroPython board uses
//! umqtt.simple: connect as "blue" with keepalive 60, subscribe to
//! `green/btn/0`, then forever publish the button (GPIO0, active low) to
//! `blue/btn/0` and handle incoming messages with `check_msg`, lighting the
//! LED (GPIO2) for `0`. No allocator is used: the client's buffers are
//! arrays, the message callback is lent.
//!
//! The network is simulated by [`SimLink`], an `embedded-io` stream with a
//! tiny scripted broker behind it, so the program links and runs without a
//! Wi-Fi stack; on a real board the link is the TCP socket of the network
//! stack (any `embedded_io::{Read, Write, ReadReady}` type).
#![cfg_attr(target_os = "none", no_std)]
#![cfg_attr(target_os = "none", no_main)]

use core::convert::Infallible;

use culex_client::blocking::{Client, EmbeddedIo};
use culex_client::codec::packet::Publish;
use culex_client::codec::topic::TopicName;
use culex_client::codec::{Packet, Properties, Protocol, SliceOutput};
use culex_client::core::Millis;
use culex_client::QoS;

#[cfg(all(target_arch = "arm", target_os = "none"))]
use panic_halt as _;

#[cfg(all(target_arch = "arm", target_os = "none"))]
#[cortex_m_rt::entry]
fn main() -> ! {
    let mut led_pin = false;
    board(u32::MAX, &mut |on| led_pin = on);
    loop {
        core::hint::spin_loop();
    }
}

#[cfg(not(target_os = "none"))]
fn main() {
    let mut changes = 0;
    board(12, &mut |on| {
        changes += 1;
        println!("LED {}", if on { "on" } else { "off" });
    });
    assert!(changes > 0, "the LED never changed");
}

/// The board's main loop, `rounds` times (forever on hardware).
fn board(rounds: u32, set_led: &mut dyn FnMut(bool)) {
    let mut led = false;
    let mut on_message = |_topic: &str, msg: &[u8]| {
        let on = msg == b"0";
        if on != led {
            led = on;
            set_led(on);
        }
    };
    let mut client = Client::with_transport(
        "blue",
        EmbeddedIo(SimLink::new()),
        // No timer is needed while automatic pings are off (as in umqtt).
        || Millis(0),
        [0u8; 256],
        [0u8; 256],
    )
    .keepalive(60);
    client.set_callback(&mut on_message);
    if client.connect(true).is_err() {
        return;
    }
    if client.subscribe("green/btn/0", QoS::AtMostOnce).is_err() {
        return;
    }
    let mut round = 0u32;
    while round < rounds {
        // GPIO0, active low: pressed on every fourth round.
        let button: &[u8] = if round.is_multiple_of(4) { b"0" } else { b"1" };
        if client
            .publish("blue/btn/0", button, false, QoS::AtMostOnce)
            .is_err()
        {
            return;
        }
        if client.check_msg().is_err() {
            return;
        }
        round = round.wrapping_add(1);
    }
    let _ = client.disconnect();
}

/// A simulated network link to a broker on which "green" presses its
/// button every third message: answers CONNECT, SUBSCRIBE and PINGREQ, and
/// sends green's button state after each of blue's publishes.
struct SimLink {
    inbox: [u8; 128],
    len: usize,
    green_presses: u32,
}

impl SimLink {
    fn new() -> SimLink {
        SimLink {
            inbox: [0; 128],
            len: 0,
            green_presses: 0,
        }
    }

    fn queue(&mut self, bytes: &[u8]) {
        let end = self.len + bytes.len();
        if let Some(dst) = self.inbox.get_mut(self.len..end) {
            dst.copy_from_slice(bytes);
            self.len = end;
        }
    }

    fn queue_green(&mut self) {
        self.green_presses = self.green_presses.wrapping_add(1);
        let payload: &[u8] = if self.green_presses.is_multiple_of(3) {
            b"0"
        } else {
            b"1"
        };
        let Ok(topic) = TopicName::new("green/btn/0") else {
            return;
        };
        let packet = Packet::Publish(Publish {
            dup: false,
            qos: QoS::AtMostOnce,
            retain: false,
            topic,
            packet_id: None,
            properties: Properties::default(),
            payload,
        });
        let mut buf = [0u8; 32];
        let mut out = SliceOutput::new(&mut buf);
        if packet.encode(Protocol::V3_1_1, &mut out).is_ok() {
            let n = out.len();
            if let Some(bytes) = buf.get(..n) {
                self.queue(bytes);
            }
        }
    }
}

impl embedded_io::ErrorType for SimLink {
    type Error = Infallible;
}

impl embedded_io::Read for SimLink {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Infallible> {
        let n = buf.len().min(self.len);
        if let (Some(dst), Some(src)) = (buf.get_mut(..n), self.inbox.get(..n)) {
            dst.copy_from_slice(src);
        }
        self.inbox.copy_within(n..self.len, 0);
        self.len -= n;
        Ok(n)
    }
}

impl embedded_io::ReadReady for SimLink {
    fn read_ready(&mut self) -> Result<bool, Infallible> {
        Ok(self.len > 0)
    }
}

impl embedded_io::Write for SimLink {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Infallible> {
        // The client writes one whole packet per call.
        match culex_client::codec::decode(buf, Protocol::V3_1_1, 1024) {
            Ok(Some((Packet::Connect(_), _))) => self.queue(&[0x20, 0x02, 0x00, 0x00]),
            Ok(Some((Packet::Subscribe(s), _))) => {
                let [hi, lo] = s.packet_id.get().to_be_bytes();
                self.queue(&[0x90, 0x03, hi, lo, 0x00]);
            }
            Ok(Some((Packet::PingReq, _))) => self.queue(&[0xD0, 0x00]),
            Ok(Some((Packet::Publish(_), _))) => self.queue_green(),
            _ => {}
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> Result<(), Infallible> {
        Ok(())
    }
}
