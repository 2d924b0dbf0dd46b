//! The culex broker embedded in the demo's process.

use std::net::SocketAddr;

/// A culex broker running in this process. Dropping it stops it.
#[derive(Debug)]
pub struct EmbeddedBroker {
    addr: SocketAddr,
}

impl EmbeddedBroker {
    /// Starts a broker listening on `addr` (port 0 picks a free port).
    pub fn start(addr: SocketAddr) -> std::io::Result<EmbeddedBroker> {
        Err(std::io::Error::other(format!(
            "the embedded broker is not available yet ({addr}); use --broker"
        )))
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}
