//! The culex MQTT broker: mosquitto-compatible configuration, authentication,
//! sessions, routing and the tokio runtime that drives connections.
//!
//! Embed it with [`Broker::start`] (a [`config::Config`] in, a
//! [`RunningBroker`] out: `local_addrs()`, `reload_policies()`, graceful
//! `shutdown()`); tests use [`testing`] (`start_local()` on 127.0.0.1:0, or
//! `BrokerThread` from sync code). `culex broker` is [`cli::main`].
//!
//! The layers, outside in:
//! - [`config`] and [`auth`]: mosquitto.conf, password and ACL files;
//! - `broker` (listeners, shared state, routing, housekeeping, shutdown) and
//!   `connection` (one tokio task per connection: it decodes frames, routes
//!   the PUBLISHes it reads itself, and writes every ready packet in one
//!   write per wake-up); [`log`] formats mosquitto's log lines on `tracing`;
//!   `sys` publishes `$SYS/broker/…`;
//! - the sans-IO core, tested on a simulated clock: [`session`] (QoS flows
//!   both ways, packet ids, in-flight window, offline queue and its limits,
//!   a journal of durable changes), [`subscriptions`] (the topic tree,
//!   shared groups), [`retained`] (the retained-message tree);
//! - [`store`]: the boundary every durable mutation crosses ([`store::MemoryStore`]
//!   keeps nothing; a durable engine plugs in with `Broker::start_with_store`).
//!
//! No lock is held across `.await`: the subscription tree is read-locked for
//! one match per PUBLISH, each session has its own mutex, and the session map
//! is sharded.
#![cfg_attr(
    not(test),
    warn(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

pub mod auth;
mod broker;
pub mod cli;
pub mod config;
mod connection;
pub mod durable_store;
mod lazy;
pub mod log;
pub mod message;
mod park;
pub mod retained;
pub mod session;
mod socket;
pub mod store;
pub mod subscriptions;
mod sys;
#[cfg(feature = "testing")]
pub mod testing;

pub use broker::{Broker, BrokerError, RunningBroker};
