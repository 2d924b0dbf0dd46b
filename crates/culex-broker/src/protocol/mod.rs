//! The MQTT server side of one connection, as a sans-IO state machine.
//!
//! [`Connection`] never touches a socket or reads the clock: the runtime
//! hands it the bytes the client sent (after any TLS or WebSocket layer),
//! the time, and a buffer to write its packets into, and asks it when it
//! next needs attention. It talks to the broker's state only through
//! [`Core`](crate::core::Core)'s owner API, and knows nothing of the transport.
//!
//! The call order:
//! 1. [`Connection::new`] when a client connects (the transport may then
//!    tell [`Connection::set_peer`] and
//!    [`Connection::set_certificate_username`]); then
//!    [`Connection::handle_connect`] with the bytes read, until it says the
//!    CONNECT was accepted (or, with `Handshake::WaitUntil`, once more at
//!    that time: the client's address is in its login back-off).
//! 2. Then, in any order, as often as needed:
//!    - [`Connection::handle_input`] with the bytes read;
//!    - [`Connection::handle_wake`] when the connection's waker was woken;
//!    - [`Connection::handle_timeout`] once [`Connection::poll_timeout`] is due;
//!    - [`Connection::poll_transmit`] to move what the session has ready
//!      into the output buffer (until the buffer is full or nothing is left);
//!    - [`Connection::release_acks`] after a durable-store wake.
//! 3. Any `Err(Close)` ends it: [`Connection::close`] writes the 5.0
//!    DISCONNECT and leaves the session (publishing the will as the
//!    reason says), after which the runtime flushes and closes.
//!
//! An idle connection can be kept compactly as an `Idle` (`park` /
//! `Idle::resume`) when [`Connection::may_park`].

mod acks;
mod connect;
mod connection;
mod error;
mod held;
mod idle;
mod outgoing;
mod publish;
mod subscribe;
#[cfg(all(test, feature = "testing"))]
mod tests;

pub use connection::{protocol_tag, ClaimOutcome, ClusterClaim, Connection, Handshake, Peer};
pub use error::{Close, Violation};
pub(crate) use idle::Idle;
