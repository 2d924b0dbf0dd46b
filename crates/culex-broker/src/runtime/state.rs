//! What every task of one running broker shares: the core, the parker,
//! each listener's transport layers, the handshake permits and the
//! shutdown signals.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use culex_transport::Acceptor;
use parking_lot::Mutex;
use tokio::sync::{mpsc, watch, Semaphore, SemaphorePermit};

use super::cluster::ClusterLink;
use super::park::Parker;
use super::threads::ConnThreads;
use crate::core::Core;

/// The runtime side of one broker.
pub(crate) struct Runtime {
    /// The broker's state.
    pub core: Arc<Core>,
    /// Holds idle connections outside tokio.
    pub parker: Arc<Parker>,
    /// The cluster, when this broker is a node of one.
    pub cluster: Option<Arc<ClusterLink>>,
    /// Where connections run (`None` in unit tests: the current runtime).
    threads: Option<Arc<ConnThreads>>,
    /// Each listener's layers, by listener index (`None`: plain MQTT).
    acceptors: Vec<Option<Acceptor>>,
    /// Handshake steps run under one of these, as many at once as there
    /// are connection threads. TLS steps (key exchange and signatures are
    /// CPU work) run on blocking threads, so that a flood of handshakes
    /// shares the cores with established connections instead of holding
    /// their threads.
    handshakes: Semaphore,
    /// Each listener's accepted connections whose CONNECT is not yet
    /// settled, by listener index: with the clients connected through it,
    /// what `max_connections` counts (as mosquitto counts from accept).
    handshaking: Vec<AtomicUsize>,
    /// Set when shutdown starts: listeners and background tasks stop.
    pub shutdown: watch::Receiver<bool>,
    /// Connections close: set once the wills of every connected client
    /// have been routed (`shutdown` stops accepting before that).
    closing: AtomicBool,
    /// Every connection and listener holds a clone; shutdown waits until
    /// all are gone.
    alive: Mutex<Option<mpsc::Sender<()>>>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime").finish_non_exhaustive()
    }
}

impl Runtime {
    pub fn new(
        core: Arc<Core>,
        parker: Arc<Parker>,
        acceptors: Vec<Option<Acceptor>>,
        shutdown: watch::Receiver<bool>,
        alive: mpsc::Sender<()>,
        threads: Option<Arc<ConnThreads>>,
    ) -> Runtime {
        let workers = match &threads {
            Some(t) => t.len(),
            None => tokio::runtime::Handle::try_current().map_or(1, |h| h.metrics().num_workers()),
        }
        .max(1);
        let handshaking = acceptors.iter().map(|_| AtomicUsize::new(0)).collect();
        Runtime {
            core,
            parker,
            cluster: None,
            threads,
            acceptors,
            handshaking,
            handshakes: Semaphore::new(workers),
            shutdown,
            closing: AtomicBool::new(false),
            alive: Mutex::new(Some(alive)),
        }
    }

    /// The layers of listener `index`; `None` for plain MQTT.
    pub fn acceptor(&self, index: usize) -> Option<&Acceptor> {
        self.acceptors.get(index).and_then(Option::as_ref)
    }

    /// Runs a connection's task on a connection thread.
    pub fn spawn_conn<F>(&self, task: F)
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        match &self.threads {
            Some(threads) => threads.spawn(task),
            None => {
                tokio::spawn(task);
            }
        }
    }

    /// How many connection threads there are (1 in unit tests).
    pub fn conn_threads(&self) -> usize {
        self.threads.as_ref().map_or(1, |t| t.len())
    }

    /// Runs a task on connection thread `i`.
    pub fn spawn_on<F>(&self, i: usize, task: F)
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        match &self.threads {
            Some(threads) => threads.spawn_on(i, task),
            None => {
                tokio::spawn(task);
            }
        }
    }

    /// Every listener's layers, by index.
    pub fn acceptors(&self) -> &[Option<Acceptor>] {
        &self.acceptors
    }

    /// The connections listener `index` holds: connected clients, and
    /// those accepted and not yet through their handshake.
    pub fn listener_load(&self, index: usize) -> usize {
        let connected = self
            .core
            .stats()
            .listeners()
            .get(index)
            .map_or(0, |l| l.connected_all());
        let handshaking = self
            .handshaking
            .get(index)
            .map_or(0, |n| n.load(Ordering::Relaxed));
        usize::try_from(connected)
            .unwrap_or(usize::MAX)
            .saturating_add(handshaking)
    }

    /// A connection accepted on listener `index` starts its handshake.
    pub fn begin_handshake(&self, index: usize) {
        if let Some(n) = self.handshaking.get(index) {
            n.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A connection [`Runtime::begin_handshake`] counted is through its
    /// handshake (connected or not): exactly once per begin.
    pub fn end_handshake(&self, index: usize) {
        if let Some(n) = self.handshaking.get(index) {
            n.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// A turn to run one handshake step (see `handshakes`); `None` only if
    /// the semaphore was closed, which it never is.
    pub async fn handshake_permit(&self) -> Option<SemaphorePermit<'_>> {
        self.handshakes.acquire().await.ok()
    }

    /// A token that keeps shutdown waiting while it lives.
    pub fn alive_token(&self) -> Option<mpsc::Sender<()>> {
        self.alive.lock().clone()
    }

    /// Drops the runtime's own token: shutdown then waits for the others.
    pub fn take_alive(&self) -> Option<mpsc::Sender<()>> {
        self.alive.lock().take()
    }

    /// Whether connections must close now.
    pub fn is_closing(&self) -> bool {
        self.closing.load(Ordering::SeqCst)
    }

    /// Tells connections to close (they check when woken).
    pub fn start_closing(&self) {
        self.closing.store(true, Ordering::SeqCst);
    }
}

#[cfg(test)]
impl Runtime {
    /// A runtime with the default config and no listener, for unit tests.
    pub fn for_tests() -> Arc<Runtime> {
        let (_tx, rx) = watch::channel(false);
        let (alive, _alive_rx) = mpsc::channel::<()>(1);
        let config = crate::config::Config::default();
        let policies = (0..config.listeners.len())
            .map(|i| {
                let policy = crate::auth::Policy::load(config.security_of(i)).unwrap_or_default();
                Arc::new(parking_lot::RwLock::new(Arc::new(policy)))
            })
            .collect();
        let core = Arc::new(Core::new(
            config,
            policies,
            Arc::new(crate::core::store::MemoryStore),
            Arc::new(crate::core::cluster::LocalCluster),
            Arc::new(crate::core::NoEvents),
        ));
        Arc::new(Runtime::new(
            core,
            Parker::new().0,
            Vec::new(),
            rx,
            alive,
            None,
        ))
    }
}

/// Completes once shutdown is asked for. A dropped `RunningBroker` (the
/// sender gone) never asks: the broker keeps running, as documented.
pub(crate) async fn shutdown_requested(rx: &mut watch::Receiver<bool>) {
    loop {
        if *rx.borrow_and_update() {
            return;
        }
        if rx.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}
