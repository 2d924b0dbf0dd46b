//! The culex MQTT broker: mosquitto-compatible configuration, authentication,
//! sessions, routing and the tokio runtime that drives connections.
//!
//! Start at [`cli::main`] (the `culex broker` command) or [`config::Config`].

pub mod auth;
pub mod cli;
pub mod config;
