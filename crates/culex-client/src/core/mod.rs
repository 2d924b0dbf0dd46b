//! The sans-IO client core: connection and session state for MQTT 3.1.1 and 5.0.
//!
//! [`Connection`] never touches a socket and never reads a clock. The caller
//! drives it in the style of `quinn-proto`:
//!
//! 1. [`Connection::connect`] encodes CONNECT into the caller's buffer; the
//!    caller writes those bytes to its transport.
//! 2. Bytes read from the transport are split into packets with
//!    [`Connection::decode`] and fed to [`Connection::handle_packet`], which
//!    returns an [`Event`] (a message to deliver, an acknowledgement, the
//!    CONNACK, ...).
//! 3. After every `handle_*` call the caller drains
//!    [`Connection::poll_transmit`] (acknowledgements, PUBREL, PINGREQ) and
//!    writes what it yields.
//! 4. [`Connection::poll_timeout`] says when [`Connection::handle_timeout`]
//!    must be called next (keepalive).
//! 5. [`Connection::publish`], [`Connection::subscribe`],
//!    [`Connection::unsubscribe`], [`Connection::ping`] and
//!    [`Connection::disconnect`] encode the application's packets.
//!
//! Outgoing QoS 1/2 messages and SUBSCRIBE/UNSUBSCRIBE in flight are tracked
//! in a table of `OUT` slots, incoming QoS 2 messages awaiting PUBREL in a
//! table of `IN` slots: no allocator is needed. The core keeps ids and states
//! only; a front-end that wants to re-send unacknowledged PUBLISH packets
//! after a reconnect keeps their bytes itself (see
//! [`Connection::inflight`]).

mod connection;
mod error;
mod inflight;
mod time;

pub use connection::{ConnectOptions, Connection, Event, Message, State};
pub use error::Error;
pub use inflight::{InflightKind, PacketIds};
pub use time::Millis;

#[cfg(test)]
mod tests;
