//! The culex MQTT client, from microcontrollers to services.
//!
//! Three layers share one protocol core:
//!
//! - [`core`]: a sans-IO state machine for MQTT 3.1.1 and 5.0. It never
//!   touches a socket or reads a clock; time is a [`core::Millis`] the caller
//!   passes in. It needs no allocator: packets are encoded into buffers the
//!   caller lends and in-flight state sits in const-generic tables. Start with
//!   [`core::Connection`].
//! - [`blocking`]: a client shaped like MicroPython's `umqtt.simple`
//!   (`blocking::MQTTClient`), generic over its transport so the same logic
//!   runs over std's `TcpStream` or (feature `embedded`) any `embedded-io`
//!   stream on bare metal, plus `blocking::RobustClient` (std) which
//!   reconnects and restores subscriptions like `umqtt.robust`, only better.
//! - `asynch` (feature `tokio`): a tokio client with a cloneable handle,
//!   bounded queues, automatic reconnect and MQTT 5 properties.
//!
//! Features: `std` (default), `alloc`, `tokio`, `embedded`, `tls`.
#![no_std]
#![cfg_attr(
    not(test),
    warn(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

#[cfg(feature = "alloc")]
extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

pub mod blocking;
pub mod core;

#[cfg(feature = "tokio")]
pub mod asynch;

pub use culex_codec as codec;
pub use culex_codec::{Protocol, QoS};
