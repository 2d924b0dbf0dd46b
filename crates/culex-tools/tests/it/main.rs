//! Integration tests of culex-tools: each tool run in-process and compared
//! with Debian's mosquitto tools, against real brokers on 127.0.0.1.

mod args;
mod common;
mod culex_broker;
mod format;
mod mqtt;
mod passwd;
mod resilience;
