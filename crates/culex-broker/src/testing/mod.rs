//! Starting an in-process broker from tests, async or sync.
//!
//! ```no_run
//! # async fn t() {
//! let broker = culex_broker::testing::start_local().await; // 127.0.0.1:0, anonymous allowed
//! let port = broker.port();
//! // ... connect clients to 127.0.0.1:port ...
//! broker.shutdown().await;
//! # }
//! ```
//! From a plain `#[test]`, [`BrokerThread::start`] runs the broker on its own
//! runtime thread and stops it when dropped. [`raw`] is a test client that
//! sends exactly the packets a test asks for, over TCP or any other wire.
// Test helpers fail loudly: a broker that cannot start is a failed test.
#![allow(clippy::expect_used, clippy::panic)]

use std::net::{Ipv4Addr, SocketAddr};

use crate::config::{Config, Listener, Security};
use crate::{Broker, RunningBroker};

pub mod raw;
pub mod sim;

/// A config with one listener on 127.0.0.1 port 0 and anonymous clients allowed.
pub fn local_config() -> Config {
    Config {
        listeners: vec![Listener {
            addrs: vec![SocketAddr::from((Ipv4Addr::LOCALHOST, 0))],
            port: 0,
            max_connections: None,
            security: None,
            mount_point: None,
            unix_path: None,
            transport: Default::default(),
        }],
        local_only: false,
        security: Security {
            allow_anonymous: true,
            ..Security::default()
        },
        ..Config::default()
    }
}

/// Starts a broker with [`local_config`] on the current runtime.
pub async fn start_local() -> RunningBroker {
    start(local_config()).await
}

/// Starts a broker with `config` on the current runtime, panicking on failure.
pub async fn start(config: Config) -> RunningBroker {
    Broker::start(config).await.expect("start the broker")
}

/// A broker on its own runtime thread, for sync tests; shut down on drop.
#[derive(Debug)]
pub struct BrokerThread {
    addr: SocketAddr,
    http: Option<SocketAddr>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl BrokerThread {
    /// Starts a broker with [`local_config`].
    pub fn start() -> BrokerThread {
        BrokerThread::start_with(local_config())
    }

    /// Starts a broker with `config` on a new two-worker runtime.
    pub fn start_with(config: Config) -> BrokerThread {
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("tokio runtime");
            runtime.block_on(async move {
                let broker = match Broker::start(config).await {
                    Ok(b) => b,
                    Err(e) => {
                        let _ = addr_tx.send(Err(e.to_string()));
                        return;
                    }
                };
                let addrs = (
                    broker.local_addr().expect("a bound address"),
                    broker.http_addr(),
                );
                let _ = addr_tx.send(Ok(addrs));
                let _ = stop_rx.await;
                broker.shutdown().await;
            });
        });
        let (addr, http) = match addr_rx.recv() {
            Ok(Ok(addrs)) => addrs,
            Ok(Err(e)) => panic!("broker did not start: {e}"),
            Err(_) => panic!("broker thread died"),
        };
        BrokerThread {
            addr,
            http,
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The admin HTTP listener's address, when the config has one.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http
    }
}

impl Drop for BrokerThread {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
