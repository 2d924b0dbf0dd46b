//! The runtime: the only part of the broker with sockets, tasks and the
//! clock. It opens the listeners, drives each connection's protocol over
//! its transport (`serve`), parks idle connections outside tokio (`park`),
//! runs housekeeping and `$SYS` on top of the core's read-only views,
//! serves the admin HTTP listener when configured (`admin`), and stops the
//! whole broker in order ([`RunningBroker::shutdown`]).

mod admin;
mod bridge;
mod cluster;
mod fds;
mod listener;
mod park;
mod serve;
mod state;
mod sys;
mod threads;
mod transport;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use parking_lot::RwLock;
use tokio::sync::{mpsc, watch};

use crate::auth::Policy;
use crate::config::Config;
use crate::core::cluster::{Cluster, LocalCluster};
use crate::core::message::Message;
use crate::core::store::{MemoryStore, Store};
use crate::core::{Core, EventSink};
use admin::events::{EventRing, Tee};
use admin::Admin;
use listener::Open;
use park::{ParkedConn, Parker};
use state::{shutdown_requested, Runtime};

/// Why the broker could not start.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// A listen socket could not be opened.
    #[error("unable to open listen socket on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// No listener could be opened at all.
    #[error("no listen socket could be opened")]
    NoListener,
    /// The connection threads could not be started.
    #[error("unable to start connection threads: {0}")]
    Threads(std::io::Error),
    /// The password or ACL file could not be loaded.
    #[error("{0}")]
    Policy(String),
    /// A listener's TLS certificate, key, CA or CRL could not be used.
    #[error("listener on port {port}: {source}")]
    Tls {
        /// The listener's port (0 for a unix socket).
        port: u16,
        /// Why.
        source: culex_transport::tls::TlsConfigError,
    },
    /// A unix socket listener could not be opened.
    #[error("unable to open unix listen socket {}: {source}", path.display())]
    Unix {
        /// The socket's path.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The store could not be read.
    #[error("unable to load the store: {0}")]
    Store(String),
    /// The admin HTTP listener could not start, or would be unsafe.
    #[error("{0}")]
    Admin(String),
}

/// Entry point of the library API.
///
/// ```no_run
/// # async fn run(config: culex_broker::config::Config) -> Result<(), culex_broker::BrokerError> {
/// let broker = culex_broker::Broker::start(config).await?;
/// println!("listening on {:?}", broker.local_addrs());
/// broker.shutdown().await;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Broker;

impl Broker {
    /// Opens every listener of `config` (port 0 picks a free port), and
    /// starts accepting connections on the current tokio runtime.
    pub async fn start(config: Config) -> Result<RunningBroker, BrokerError> {
        if let Some(cluster) = config.cluster.clone() {
            return Broker::start_clustered(config, cluster).await;
        }
        if config.persistence.enabled {
            let store =
                crate::durable_store::DurableBrokerStore::open_from_config(&config.persistence)
                    .map_err(|e| BrokerError::Store(e.to_string()))?;
            return Broker::start_with_store(config, Arc::new(store)).await;
        }
        Broker::start_with_store(config, Arc::new(MemoryStore)).await
    }

    /// As [`Broker::start`], with a given [`Store`].
    pub async fn start_with_store(
        config: Config,
        store: Arc<dyn Store>,
    ) -> Result<RunningBroker, BrokerError> {
        Broker::start_with(config, store, Arc::new(LocalCluster)).await
    }

    /// A node of a cluster on NATS JetStream, which holds sessions and
    /// retained messages: the local store is not used.
    async fn start_clustered(
        config: Config,
        cluster: crate::config::ClusterConfig,
    ) -> Result<RunningBroker, BrokerError> {
        if config.persistence.enabled {
            tracing::warn!(
                "Warning: persistence is not used by a cluster node: NATS JetStream keeps its sessions and retained messages."
            );
        }
        let tickets = Arc::new(cluster::tickets::Tickets::default());
        let store = Arc::new(cluster::tickets::ClusterStore {
            inner: Arc::new(MemoryStore),
            tickets: tickets.clone(),
        });
        let link = cluster::ClusterLink::new(cluster, tickets);
        let broker = Broker::start_inner(config, store, link.clone(), Some(link.clone())).await?;
        link.start(&broker.rt.core, broker.rt.shutdown.clone());
        Ok(broker)
    }

    /// As [`Broker::start`], with a given [`Store`] and [`Cluster`].
    pub async fn start_with(
        config: Config,
        store: Arc<dyn Store>,
        cluster: Arc<dyn Cluster>,
    ) -> Result<RunningBroker, BrokerError> {
        Broker::start_inner(config, store, cluster, None).await
    }

    async fn start_inner(
        config: Config,
        store: Arc<dyn Store>,
        cluster: Arc<dyn Cluster>,
        link: Option<Arc<cluster::ClusterLink>>,
    ) -> Result<RunningBroker, BrokerError> {
        let policies = load_policies(&config)?
            .into_iter()
            .map(|p| Arc::new(RwLock::new(Arc::new(p))))
            .collect();
        let snapshot = store
            .load()
            .map_err(|e| BrokerError::Store(e.to_string()))?;
        // The live log exists only with the admin listener.
        let ring = config.http.as_ref().map(|_| Arc::new(EventRing::default()));
        let events: Arc<dyn EventSink> = match &ring {
            Some(ring) => Arc::new(Tee(ring.clone())),
            None => Arc::new(sys::LogEvents),
        };
        let core = Arc::new(Core::new(config, policies, store, cluster, events));
        core.restore(snapshot, Instant::now());
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let (alive_tx, alive_rx) = mpsc::channel::<()>(1);
        let acceptors = transport::acceptors(core.config())?;
        // Before the broker's own threads start (see `fds.rs`).
        fds::reserve_table();
        let (parker, poll) = Parker::new();
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        let threads = threads::ConnThreads::start(cores).map_err(BrokerError::Threads)?;
        // The connection threads end with the runtime the broker runs on.
        let ending = threads.clone();
        when_runtime_ends(move || ending.stop());
        let mut rt = Runtime::new(
            core,
            parker,
            acceptors,
            shutdown_rx,
            alive_tx,
            Some(threads),
        );
        rt.cluster = link;
        let rt = Arc::new(rt);
        rt.parker.start(poll, resumer(&rt));
        let (listeners, local_addrs) = open_listeners(rt.core.config(), rt.conn_threads())?;
        let admin = match (&rt.core.config().http, ring) {
            (Some(http), Some(ring)) => {
                let labels = listener_labels(rt.core.config(), &listeners);
                let prepared = admin::prepare(rt.core.clone(), http, ring, labels)
                    .map_err(|e| BrokerError::Admin(e.to_string()))?;
                Some(prepared.spawn(&rt))
            }
            _ => None,
        };
        for (sockets, index, port) in listeners {
            for (i, open) in sockets.into_iter().enumerate() {
                // TCP: each connection thread accepts on a socket of its own.
                let tcp = matches!(open, Open::Tcp(_));
                let accept = listener::accept_loop(rt.clone(), open, index, port);
                if tcp {
                    rt.spawn_on(i, accept);
                } else {
                    tokio::spawn(accept);
                }
            }
        }
        tokio::spawn(housekeeping(rt.clone()));
        bridge::start(&rt);
        if !rt.core.config().sys_interval.is_zero() {
            tokio::spawn(sys::publish_sys(rt.clone()));
        }
        Ok(RunningBroker {
            rt,
            local_addrs,
            admin,
            shutdown_tx,
            alive_rx,
        })
    }
}

/// Each listener's name in metrics: its port (the one bound, for port
/// 0), with `#N` added when two listeners share it.
fn listener_labels(config: &Config, open: &[(Vec<Open>, usize, u16)]) -> Vec<String> {
    let port_of = |index: usize| {
        open.iter()
            .find(|(_, i, _)| *i == index)
            .and_then(|(l, _, _)| l.first()?.local_addr())
            .map_or(0, |a| a.port())
    };
    let ports: Vec<u16> = (0..config.listeners.len()).map(port_of).collect();
    ports
        .iter()
        .enumerate()
        .map(|(i, port)| {
            let earlier = ports.iter().take(i).filter(|p| *p == port).count();
            match earlier {
                0 => port.to_string(),
                n => format!("{port}#{}", n + 1),
            }
        })
        .collect()
}

/// Each listener's policy, in listener order.
fn load_policies(config: &Config) -> Result<Vec<Policy>, BrokerError> {
    (0..config.listeners.len())
        .map(|i| {
            Policy::load(config.security_of(i)).map_err(|e| BrokerError::Policy(e.to_string()))
        })
        .collect()
}

/// Runs `f` when the current tokio runtime drops its tasks (at shutdown,
/// or when it is dropped without one): what ends the broker's own threads
/// with the runtime it was started on.
fn when_runtime_ends(f: impl FnOnce() + Send + 'static) {
    struct OnDrop<F: FnOnce()>(Option<F>);
    impl<F: FnOnce()> Drop for OnDrop<F> {
        fn drop(&mut self) {
            if let Some(f) = self.0.take() {
                f();
            }
        }
    }
    let guard = OnDrop(Some(f));
    tokio::spawn(async move {
        let _guard = guard;
        std::future::pending::<()>().await;
    });
}

/// How the parker runs a connection again: a task on the next connection
/// thread. Weak: the broker must not outlive its runtime through the
/// parker's thread.
fn resumer(rt: &Arc<Runtime>) -> park::Resume {
    let weak: Weak<Runtime> = Arc::downgrade(rt);
    Box::new(move |parked: ParkedConn, first_pass| match weak.upgrade() {
        Some(rt) => {
            let task = serve::resume(rt.clone(), parked, first_pass);
            rt.spawn_conn(task);
        }
        None => drop(parked),
    })
}

/// Every listen socket of `config` (`threads` for each TCP address, one per
/// connection thread), with its listener index and port, and the
/// addresses bound.
#[allow(clippy::type_complexity)]
fn open_listeners(
    config: &Config,
    threads: usize,
) -> Result<(Vec<(Vec<Open>, usize, u16)>, Vec<SocketAddr>), BrokerError> {
    let mut local_addrs = Vec::new();
    let mut listeners = Vec::new();
    for (index, listener) in config.listeners.iter().enumerate() {
        if let Some(path) = &listener.unix_path {
            tracing::info!("Opening unix listen socket on path {}.", path.display());
            let l = listener::bind_unix(path).map_err(|source| {
                tracing::error!("Error binding unix socket: {source}");
                BrokerError::Unix {
                    path: path.clone(),
                    source,
                }
            })?;
            listeners.push((vec![l], index, listener.port));
            continue;
        }
        for addr in &listener.addrs {
            let family = if addr.is_ipv4() { "ipv4" } else { "ipv6" };
            tracing::info!("Opening {family} listen socket on port {}.", listener.port);
            match listener::bind(*addr, threads) {
                Ok(sockets) => {
                    if let Some(a) = sockets.first().and_then(Open::local_addr) {
                        local_addrs.push(a);
                    }
                    listeners.push((sockets, index, listener.port));
                }
                Err(source) => {
                    // mosquitto prints the bare strerror text.
                    let text = source.to_string();
                    let text = text.split(" (os error").next().unwrap_or(&text);
                    tracing::error!("Error: {text}");
                    // IPv6 may be missing on the machine (local-only mode, or
                    // a listener on every interface); anything else is fatal.
                    let optional =
                        addr.is_ipv6() && (config.local_only || addr.ip().is_unspecified());
                    if !optional {
                        return Err(BrokerError::Bind {
                            addr: *addr,
                            source,
                        });
                    }
                }
            }
        }
    }
    if listeners.is_empty() {
        return Err(BrokerError::NoListener);
    }
    Ok((listeners, local_addrs))
}

/// Runs the core's housekeeping (delayed wills, session expiry) every
/// second until shutdown.
async fn housekeeping(rt: Arc<Runtime>) {
    let mut shutdown = rt.shutdown.clone();
    let mut tick = tokio::time::interval(Core::HOUSEKEEPING_EVERY);
    loop {
        tokio::select! {
            _ = shutdown_requested(&mut shutdown) => return,
            _ = tick.tick() => {}
        }
        rt.core.handle_timeout(Instant::now());
    }
}

/// A broker that is running; dropping it without [`RunningBroker::shutdown`]
/// leaves it running until the runtime stops.
#[derive(Debug)]
pub struct RunningBroker {
    rt: Arc<Runtime>,
    local_addrs: Vec<SocketAddr>,
    admin: Option<Arc<Admin>>,
    shutdown_tx: watch::Sender<bool>,
    alive_rx: mpsc::Receiver<()>,
}

impl RunningBroker {
    /// The addresses actually bound (with the ports chosen for port 0).
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.local_addrs
    }

    /// The first bound address.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.local_addrs.first().copied()
    }

    /// The address of the admin HTTP listener, if it has one.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.admin.as_ref().map(|a| a.local_addr())
    }

    /// The port of the first bound address (0 if none).
    pub fn port(&self) -> u16 {
        self.local_addr().map_or(0, |a| a.port())
    }

    /// The broker's state, for read-only views (`Core::counts`,
    /// `Core::clients`, …).
    pub fn core(&self) -> &Arc<Core> {
        &self.rt.core
    }

    /// Re-reads the password and ACL files of every listener and swaps the
    /// policies in; connections stay up (SIGHUP).
    pub fn reload_policies(&self) -> Result<(), BrokerError> {
        let policies = load_policies(self.rt.core.config())?;
        self.rt.core.replace_policies(policies);
        if let Some(admin) = &self.admin {
            admin
                .reload()
                .map_err(|e| BrokerError::Policy(e.to_string()))?;
        }
        Ok(())
    }

    /// Re-reads every TLS listener's certificate, key, CAs and CRL
    /// (SIGHUP): new connections get them, connected clients keep their
    /// session. A listener whose new files are unusable keeps the ones it
    /// had, and the error (also logged, as mosquitto does) is returned.
    pub fn reload_certificates(&self) -> Result<(), BrokerError> {
        transport::reload(self.rt.core.config(), self.rt.acceptors())
    }

    /// Everything SIGHUP reloads: password and ACL files, then
    /// certificates. Both are tried; the first error is returned.
    pub fn reload(&self) -> Result<(), BrokerError> {
        let policies = self.reload_policies();
        let certificates = self.reload_certificates();
        policies.and(certificates)
    }

    /// Number of connected clients.
    pub fn connected_clients(&self) -> usize {
        self.rt.core.counts().connected
    }

    /// Number of connected clients that are idle and parked outside the
    /// runtime (they cost no task; see ARCHITECTURE.md).
    pub fn parked_connections(&self) -> usize {
        self.rt.parker.parked()
    }

    /// The retained message of `topic`, if any.
    pub fn retained(&self, topic: &str) -> Option<Arc<Message>> {
        self.rt.core.retained(topic)
    }

    /// Graceful shutdown: stop accepting; publish the will of every client
    /// still connected, and every delayed will, while every connection
    /// still serves (as mosquitto 2.0 does at exit); then tell each
    /// connection to close (each first writes what its session has ready,
    /// those wills among it), and wait for them all.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown_tx.send(true);
        let conns = self.rt.core.fire_wills_at_shutdown(Instant::now());
        self.rt.start_closing();
        // Attached connections wait on their signal, not on the watch.
        for conn in conns {
            conn.wake();
        }
        // Every connection and accept loop holds a sender; recv() returns
        // None once the last of them is gone.
        drop(self.rt.take_alive());
        let _ = tokio::time::timeout(Duration::from_secs(10), self.alive_rx.recv()).await;
        if let Some(cluster) = &self.rt.cluster {
            let _ = tokio::time::timeout(Duration::from_secs(10), cluster.leave()).await;
        }
        self.rt.parker.stop();
        for path in self
            .rt
            .core
            .config()
            .listeners
            .iter()
            .filter_map(|l| l.unix_path.as_ref())
        {
            listener::remove_unix(path);
        }
    }
}
