//! Why the admin listener cannot start.

use std::net::SocketAddr;

/// Why the admin listener cannot start (the broker does not start either).
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The configuration is unsafe or incomplete.
    #[error("http_listener: {0}")]
    Config(String),
    /// The certificate or key could not be used.
    #[error("http_listener: {0}")]
    Tls(String),
    /// The socket could not be opened.
    #[error("http_listener: unable to listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
}
