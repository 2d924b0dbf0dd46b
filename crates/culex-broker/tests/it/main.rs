//! End-to-end tests of the broker over real TCP on 127.0.0.1: each test
//! starts its own in-process broker on port 0 and talks to it with a raw
//! codec-based client, mosquitto's clients or paho-mqtt.

mod admin;
mod admin_page;
mod bridge;
mod client;
mod cluster;
mod crash;
mod hardening;
mod listeners;
mod logs;
mod park;
mod persistence;
mod reconnect;
mod runtime;
mod shutdown;
mod store;
mod sys;
mod third_party;
