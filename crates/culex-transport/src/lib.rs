//! The transport layers of culex: what sits between a socket and MQTT.
//!
//! A listener's connections go through up to three layers, in this order:
//! the PROXY protocol header ([`proxy`]), TLS ([`tls`], rustls) and
//! WebSocket ([`websocket`], RFC 6455). Each is sans-IO: it never touches a
//! socket or reads the clock (time is passed in), and works on buffers the
//! caller owns, so an idle layer holds no I/O buffer. MQTT never learns
//! which layers there are.
//!
//! Start at [`Acceptor`]: built once per listener from [`TransportOptions`]
//! (mosquitto.conf's listener options), it starts a [`Stack`] for each new
//! connection, or none at all for plain MQTT over TCP. The call order of a
//! stack is documented on [`Stack`]. [`http`] helps answer the plain file
//! requests a WebSocket listener with `http_dir` receives; [`ciphers`] maps
//! OpenSSL cipher strings onto rustls's suites.
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
mod stack;
pub mod tls;
pub mod websocket;

#[cfg(test)]
mod test_support;

pub use proxy::ProxyVersion;
pub use stack::{
    Acceptor, Progress, Stack, TransportError, TransportOptions, DEFAULT_HANDSHAKE_TIMEOUT,
};
pub use tls::{CertificateField, PeerIdentity, TlsOptions, TlsVersion};
pub use websocket::WebSocketOptions;
