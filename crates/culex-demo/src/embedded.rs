//! The culex broker embedded in the demo's process.
//!
//! The broker runs on a small tokio runtime of its own; the boards and the
//! web server stay plain threads, as they would on a device.

use std::net::SocketAddr;
use std::path::Path;

use culex_broker::config::Config;
use culex_broker::{Broker, RunningBroker};

/// A culex broker running in this process, anonymous clients allowed.
/// Dropping it shuts it down gracefully.
pub struct EmbeddedBroker {
    addr: SocketAddr,
    broker: Option<RunningBroker>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl EmbeddedBroker {
    /// Starts a broker listening on `addr` (port 0 picks a free port).
    pub fn start(addr: SocketAddr) -> std::io::Result<EmbeddedBroker> {
        // The same configuration a user would write for culex broker.
        let text = format!(
            "listener {} {}\nallow_anonymous true\n",
            addr.port(),
            addr.ip()
        );
        let config =
            Config::parse(&text, Path::new("culex demo"), &[]).map_err(std::io::Error::other)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("culex-broker")
            .enable_all()
            .build()?;
        let broker = runtime
            .block_on(Broker::start(config))
            .map_err(|err| match err {
                culex_broker::BrokerError::Bind { source, .. } => source,
                other => std::io::Error::other(other),
            })?;
        let addr = broker.local_addr().unwrap_or(addr);
        Ok(EmbeddedBroker {
            addr,
            broker: Some(broker),
            runtime: Some(runtime),
        })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl std::fmt::Debug for EmbeddedBroker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedBroker")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Drop for EmbeddedBroker {
    fn drop(&mut self) {
        if let (Some(broker), Some(runtime)) = (self.broker.take(), self.runtime.as_ref()) {
            runtime.block_on(broker.shutdown());
        }
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_timeout(std::time::Duration::from_secs(1));
        }
    }
}
