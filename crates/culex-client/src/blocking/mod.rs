//! A blocking client shaped like MicroPython's `umqtt.simple`.
//!
//! The tutorial's board code ports line for line:
//!
//! ```no_run
//! # #[cfg(feature = "std")] {
//! use culex_client::blocking::MQTTClient;
//! use culex_client::QoS;
//!
//! let mut client = MQTTClient::new("blue", "192.168.1.10").keepalive(60);
//! client.set_callback(|topic, msg| println!("{topic} {msg:?}"));
//! client.connect(true).unwrap();
//! client.subscribe("green/btn/0", QoS::AtMostOnce).unwrap();
//! loop {
//!     client.publish("blue/btn/0", b"1", false, QoS::AtMostOnce).unwrap();
//!     client.check_msg().unwrap();
//!     std::thread::sleep(std::time::Duration::from_millis(500));
//! }
//! # }
//! ```
//!
//! [`Client`] is generic over its [`Transport`], [`Clock`] and [`Buffer`]s,
//! so the protocol logic builds without std: `MQTTClient` (std) runs over
//! `TcpStream` (or rustls with feature `tls`), and with feature `embedded`
//! `EmbeddedIo` adapts any `embedded-io` stream.
//!
//! Where umqtt falls short, this client does better:
//! - QoS 2 works both ways (umqtt raises on it), and an incoming QoS 2
//!   message re-sent before PUBREL is not delivered twice;
//! - packet ids wrap from 65535 to 1 and skip ids still in flight;
//! - topics longer than 127 bytes are encoded correctly (the shared codec
//!   writes proper variable-length headers);
//! - keepalive pings can be automatic: [`Client::auto_ping`] (off by default,
//!   which reproduces umqtt, where the program calls [`Client::ping`]);
//! - [`Client::check_msg`] never leaves a half-read packet on the socket:
//!   partial reads are kept in the receive buffer until the packet is whole.

mod client;
#[cfg(feature = "embedded")]
mod embedded;
#[cfg(feature = "std")]
mod robust;
#[cfg(feature = "std")]
mod std_io;
#[cfg(all(test, feature = "std"))]
mod tests;

pub use client::{Buffer, Callback, Client, Clock, Error, Transport};
#[cfg(feature = "embedded")]
pub use embedded::EmbeddedIo;
#[cfg(feature = "std")]
pub use robust::{Backoff, RobustClient};
#[cfg(feature = "std")]
pub use std_io::{MQTTClient, StdClock, TcpTransport};
