//! The culex MQTT broker: mosquitto-compatible configuration, authentication,
//! sessions, routing and the tokio runtime that drives connections.
//!
//! Embed it with [`Broker::start`] (a [`config::Config`] in, a
//! [`RunningBroker`] out: `local_addrs()`, `reload()` (SIGHUP: policies and
//! certificates), graceful
//! `shutdown()`); tests use [`testing`] (`start_local()` on 127.0.0.1:0, or
//! `BrokerThread` from sync code). `culex broker` is [`cli::main`].
//!
//! Three layers, each depending only on the ones below:
//! - [`runtime`]: sockets, tasks, the clock — listeners, the serve loop of
//!   each connection over its transport, the parker, housekeeping, `$SYS`;
//! - [`protocol`]: one MQTT connection as a sans-IO state machine (frames
//!   in, frames out, `poll_timeout`), knowing no transport;
//! - [`core`]: the broker's state behind one owner API ([`core::Core`]):
//!   sessions, the subscription tree, retained messages, wills, routing,
//!   and the [`core::store::Store`] and [`core::cluster::Cluster`] seams.
//!
//! Beside them: [`config`] and [`auth`] (mosquitto.conf, password and ACL
//! files), [`log`] (mosquitto's log lines on `tracing`), and
//! [`durable_store`] (culex-store behind the core's `Store`).
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
pub mod cli;
pub mod config;
pub mod core;
pub mod durable_store;
pub mod log;
pub mod protocol;
pub mod runtime;
#[cfg(feature = "testing")]
pub mod testing;

pub use runtime::{Broker, BrokerError, RunningBroker};
