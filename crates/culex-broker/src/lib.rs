//! The culex MQTT broker: mosquitto-compatible configuration, authentication,
//! sessions, routing and the tokio runtime that drives connections.
//!
//! Embed it with [`Broker::start`] (see [`testing`] for tests), or run it as
//! `culex broker` through [`cli::main`]. The layers, outside in:
//! - [`config`] and [`auth`]: mosquitto.conf, password and ACL files;
//! - `broker` and `connection`: the tokio runtime (listeners, one task per
//!   connection that also routes what it reads, graceful shutdown);
//! - [`session`] and [`subscriptions`]: the sans-IO core (QoS flows, queues,
//!   packet ids, topic matching), tested on a simulated clock;
//! - [`store`]: the boundary every durable mutation crosses.
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
pub mod log;
pub mod message;
pub mod retained;
pub mod session;
pub mod store;
pub mod subscriptions;
mod sys;
#[cfg(feature = "testing")]
pub mod testing;

pub use broker::{Broker, BrokerError, RunningBroker};
