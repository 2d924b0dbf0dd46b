//! The protocol layer driven without a socket: see `harness`.
