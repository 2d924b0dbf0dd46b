//! x
#![cfg_attr(
    not(test),
    warn(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]
pub mod ciphers;
pub mod http;
pub mod proxy;
pub mod tls;
pub mod websocket;
