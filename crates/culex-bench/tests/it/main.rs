//! Integration tests of `culex bench`: each scenario runs briefly, with a few
//! clients, against a real Debian mosquitto on loopback, and the counts in its
//! JSON summary must be consistent. No test asserts anything about speed.

mod culex_broker;
mod options;
mod scenarios;
mod support;
