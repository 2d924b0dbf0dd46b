//! End-to-end tests of the simulated boards, `culex device` and `culex demo`,
//! over real sockets on 127.0.0.1.

mod browser;
mod demo;
mod device;
mod simulation;
mod support;
mod terminal;
mod traffic;
