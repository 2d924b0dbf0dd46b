//! The broker runtime: shared state, routing, listeners and the lifecycle
//! (`Broker::start` → [`RunningBroker`] → `shutdown`).
//!
//! There is no router task: the connection task that reads a PUBLISH routes
//! it itself. It read-locks the subscription tree for one match, then pushes
//! the shared message into each subscriber's session (a short per-session
//! mutex) and wakes that subscriber's connection task, which writes every
//! ready packet in one write. No lock is held across `.await`.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use culex_codec::{Protocol, QoS};
use parking_lot::{Mutex, RwLock};
use tokio::io::unix::AsyncFd;
use tokio::sync::{mpsc, watch};

use crate::auth::{Policy, SharedPolicy};
use crate::config::Config;
use crate::lazy::Lazy;
use crate::message::Message;
use crate::park::{Parker, Wake};
use crate::retained::RetainedTree;
use crate::session::{Delivered, Delivery, Session, SessionLimits};
use crate::store::{MemoryStore, Store};
use crate::subscriptions::{Match, SubscriptionTree};

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
    /// The password or ACL file could not be loaded.
    #[error("{0}")]
    Policy(String),
    /// The store could not be read.
    #[error("unable to load the store: {0}")]
    Store(String),
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
        let mut policies = Vec::new();
        for listener in &config.listeners {
            let security = match (&listener.security, config.per_listener_settings) {
                (Some(sec), true) => sec,
                _ => &config.security,
            };
            let policy = Policy::load(security).map_err(|e| BrokerError::Policy(e.to_string()))?;
            policies.push(Arc::new(RwLock::new(Arc::new(policy))));
        }
        let snapshot = store
            .load()
            .map_err(|e| BrokerError::Store(e.to_string()))?;
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let (alive_tx, alive_rx) = mpsc::channel::<()>(1);
        let (parker, poll) = Parker::new();
        let shared: Arc<Shared> = Arc::new(Shared::new(
            config.clone(),
            policies,
            store,
            shutdown_rx,
            alive_tx,
            parker,
        ));
        Parker::start(&shared, poll);
        shared.update_acl_active();
        restore(&shared, snapshot);
        let mut local_addrs = Vec::new();
        let mut listeners = Vec::new();
        for (index, listener) in config.listeners.iter().enumerate() {
            for addr in &listener.addrs {
                let family = if addr.is_ipv4() { "ipv4" } else { "ipv6" };
                tracing::info!("Opening {family} listen socket on port {}.", listener.port);
                match bind(*addr) {
                    Ok(l) => {
                        if let Ok(a) = l.get_ref().local_addr() {
                            local_addrs.push(a);
                        }
                        listeners.push((l, index, listener.port));
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
        for (l, index, port) in listeners {
            tokio::spawn(accept_loop(shared.clone(), l, index, port));
        }
        tokio::spawn(housekeeping(shared.clone()));
        if !shared.config.sys_interval.is_zero() {
            tokio::spawn(crate::sys::publish_sys(shared.clone()));
        }
        Ok(RunningBroker {
            shared,
            local_addrs,
            shutdown_tx,
            alive_rx,
        })
    }
}

/// A broker that is running; dropping it without [`RunningBroker::shutdown`]
/// leaves it running until the runtime stops.
#[derive(Debug)]
pub struct RunningBroker {
    shared: Arc<Shared>,
    local_addrs: Vec<SocketAddr>,
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

    /// The port of the first bound address (0 if none).
    pub fn port(&self) -> u16 {
        self.local_addr().map_or(0, |a| a.port())
    }

    /// Re-reads the password and ACL files of every listener and swaps the
    /// policies in; connections stay up (SIGHUP).
    pub fn reload_policies(&self) -> Result<(), BrokerError> {
        let config = &self.shared.config;
        for (listener, slot) in config.listeners.iter().zip(&self.shared.policies) {
            let security = match (&listener.security, config.per_listener_settings) {
                (Some(sec), true) => sec,
                _ => &config.security,
            };
            let policy = Policy::load(security).map_err(|e| BrokerError::Policy(e.to_string()))?;
            *slot.write() = Arc::new(policy);
        }
        self.shared.update_acl_active();
        Ok(())
    }

    /// Number of connected clients.
    pub fn connected_clients(&self) -> usize {
        self.shared.connections.load(Ordering::Relaxed)
    }

    /// Number of connected clients that are idle and parked outside the
    /// runtime (they cost no task; see ARCHITECTURE.md).
    pub fn parked_connections(&self) -> usize {
        self.shared.parker.parked()
    }

    /// The retained message of `topic`, if any.
    pub fn retained(&self, topic: &str) -> Option<Arc<Message>> {
        self.shared.retained.read().get(topic).cloned()
    }

    /// Graceful shutdown: stop accepting; publish the will of every client
    /// still connected, and every delayed will, while every connection
    /// still serves (as mosquitto 2.0 does at exit); then tell each
    /// connection to close (each first writes what its session has ready,
    /// those wills among it), and wait for them all.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown_tx.send(true);
        let now = Instant::now();
        let mut matches = Vec::new();
        let sessions = self.shared.sessions.all();
        for handle in &sessions {
            let fired = {
                let mut inner = handle.inner.lock();
                match inner.conn {
                    Some(_) => inner
                        .will
                        .take()
                        .map(|w| (w, inner.username.clone(), inner.listener)),
                    None => None,
                }
            };
            if let Some((will, username, listener)) = fired {
                let owner = WillOwner {
                    client_id: &handle.client_id,
                    username: username.as_deref(),
                    listener,
                };
                self.shared.fire_will(owner, *will, &mut matches, now);
            }
        }
        // Delayed wills still waiting go out now, as mosquitto 2.0's
        // will_delay__send_all does at shutdown.
        let wills: Vec<_> = self.shared.delayed_wills.lock().drain().collect();
        for (client_id, (_, will)) in wills {
            self.shared.store.delayed_will(&client_id, None);
            self.shared.publish(Arc::new(will), &mut matches, now);
        }
        self.shared.closing.store(true, Ordering::SeqCst);
        // Attached connections wait on their signal, not on the watch.
        for handle in &sessions {
            let conn = handle.inner.lock().conn.clone();
            if let Some(conn) = conn {
                conn.wake.notify_one();
            }
        }
        // Every connection and accept loop holds a sender; recv() returns
        // None once the last of them is gone.
        drop(self.shared.take_alive());
        let _ = tokio::time::timeout(Duration::from_secs(10), self.alive_rx.recv()).await;
        self.shared.parker.stop();
    }
}

/// State shared by every task of one broker.
pub(crate) struct Shared {
    pub config: Config,
    pub limits: SessionLimits,
    pub policies: Vec<SharedPolicy>,
    pub store: Arc<dyn Store>,
    pub sessions: Sessions,
    pub subscriptions: RwLock<SubscriptionTree<SessionKey>>,
    pub retained: RwLock<RetainedTree>,
    pub connections: AtomicUsize,
    pub stats: Stats,
    /// Whether any listener has an ACL: without one, deliveries skip the check.
    pub acl_active: AtomicBool,
    /// 5.0 wills waiting for their Will Delay Interval, by client id.
    pub delayed_wills: Mutex<HashMap<Arc<str>, (Instant, Message)>>,
    pub shutdown: watch::Receiver<bool>,
    /// Connections close: set by shutdown once the wills of every connected
    /// client have been routed (`shutdown` stops accepting before that).
    pub closing: AtomicBool,
    alive: Mutex<Option<mpsc::Sender<()>>>,
    /// Holds idle connections outside tokio (`park.rs`).
    pub parker: Arc<Parker>,
    /// Failed logins per source address (`auth_backoff_max`).
    pub auth_backoff: crate::auth::backoff::AuthBackoff,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared").finish_non_exhaustive()
    }
}

/// Counters for `$SYS` (relaxed atomics, added to in batches).
#[derive(Debug, Default)]
pub(crate) struct Stats {
    pub packets_received: AtomicU64,
    pub packets_sent: AtomicU64,
    pub publish_received: AtomicU64,
    pub publish_sent: AtomicU64,
    pub dropped: AtomicU64,
    pub bytes_received: AtomicU64,
    pub bytes_sent: AtomicU64,
    pub clients_expired: AtomicU64,
    pub clients_maximum: AtomicUsize,
    pub connects: AtomicU64,
}

impl Shared {
    fn new(
        config: Config,
        policies: Vec<SharedPolicy>,
        store: Arc<dyn Store>,
        shutdown: watch::Receiver<bool>,
        alive: mpsc::Sender<()>,
        parker: Arc<Parker>,
    ) -> Shared {
        let limits = SessionLimits {
            max_inflight: config.limits.max_inflight_messages.unwrap_or(0),
            max_queued: config.limits.max_queued_messages,
            max_queued_bytes: config.limits.max_queued_bytes,
        };
        let auth_backoff = crate::auth::backoff::AuthBackoff::new(config.limits.auth_backoff_max);
        Shared {
            config,
            limits,
            policies,
            store,
            sessions: Sessions::new(),
            subscriptions: RwLock::new(SubscriptionTree::new()),
            retained: RwLock::new(RetainedTree::new()),
            connections: AtomicUsize::new(0),
            stats: Stats::default(),
            acl_active: AtomicBool::new(false),
            delayed_wills: Mutex::new(HashMap::new()),
            shutdown,
            closing: AtomicBool::new(false),
            auth_backoff,
            alive: Mutex::new(Some(alive)),
            parker,
        }
    }

    fn update_acl_active(&self) {
        let active = self.policies.iter().any(|p| p.read().acl.is_some());
        self.acl_active.store(active, Ordering::Relaxed);
    }

    /// A token that keeps `shutdown()` waiting while it lives.
    pub fn alive_token(&self) -> Option<mpsc::Sender<()>> {
        self.alive.lock().clone()
    }

    fn take_alive(&self) -> Option<mpsc::Sender<()>> {
        self.alive.lock().take()
    }

    /// The current policy of a listener.
    pub fn policy(&self, listener: usize) -> Arc<Policy> {
        match self
            .policies
            .get(listener)
            .or_else(|| self.policies.first())
        {
            Some(p) => p.read().clone(),
            None => Arc::new(Policy::default()),
        }
    }

    /// Routes one message: retained store, then every matching subscriber.
    /// `matches` is a scratch vector the caller reuses.
    pub fn publish(
        &self,
        msg: Arc<Message>,
        matches: &mut Vec<Match<SessionKey>>,
        now: Instant,
    ) -> Routed {
        self.publish_from(msg, matches, now, None)
    }

    /// As [`Shared::publish`], for a message read from the connection
    /// `from`: when a subscriber's backlog is full but draining, the
    /// publisher is registered with it and [`Routed::pause`] tells it to stop
    /// reading until [`ConnSignal::resume`] is set and it is woken.
    /// Subscribers to wake are added to `from.wakes` instead of being woken.
    pub fn publish_from(
        &self,
        msg: Arc<Message>,
        matches: &mut Vec<Match<SessionKey>>,
        now: Instant,
        mut from: Option<&mut Origin<'_>>,
    ) -> Routed {
        let mut pause = false;
        if msg.retain {
            self.set_retained(&msg);
        }
        matches.clear();
        let rank = |k: &SessionKey| k.0.inner.lock().session.share_rank();
        self.subscriptions
            .read()
            .matches_ranked(&msg.topic, matches, &rank);
        let matched = matches.len();
        let mut overflow = false;
        for m in matches.drain(..) {
            let handle = &m.key.0;
            // 5.0 no-local: not back to the publisher [MQTT-3.8.3-3].
            if m.options.no_local && msg.origin.as_deref() == Some(&*handle.client_id) {
                continue;
            }
            let qos = if self.config.limits.upgrade_outgoing_qos {
                m.qos
            } else {
                msg.qos.min(m.qos)
            };
            // Normal deliveries clear RETAIN unless retain-as-published [MQTT-3.3.1-9].
            let retain = msg.retain && m.options.retain_as_published;
            let delivery = Delivery {
                msg: msg.clone(),
                qos,
                retain,
                subscription_ids: m.ids,
                share: m.share,
            };
            // Shared-group members are ranked on their state at routing
            // time, so their deliveries are not held back.
            let delivery = match from.as_deref_mut() {
                Some(o) if o.defer && delivery.share.is_none() => {
                    match hold(self, handle, delivery, now, o) {
                        Ok((dropped, paused)) => {
                            overflow |= dropped;
                            pause |= paused;
                            continue;
                        }
                        Err(delivery) => delivery,
                    }
                }
                _ => delivery,
            };
            let (dropped, paused) = handle.deliver_from(self, delivery, now, from.as_deref_mut());
            overflow |= dropped;
            pause |= paused;
        }
        Routed {
            matched,
            overflow,
            pause,
        }
    }

    fn set_retained(&self, msg: &Arc<Message>) {
        if msg.payload.is_empty() {
            // An empty retained payload clears the topic [MQTT-3.3.1-10].
            if self.retained.write().remove(&msg.topic) && !msg.topic.starts_with("$SYS/") {
                self.store.retained_clear(&msg.topic);
            }
        } else {
            // A new retained message replaces the old one [MQTT-3.3.1-5].
            self.retained.write().insert(msg.clone());
            // `$SYS` values are regenerated at start; they are not stored.
            if !msg.topic.starts_with("$SYS/") {
                self.store.retained_set(msg);
            }
        }
    }

    /// Whether the ACL lets `owner` publish its will on `topic`; logs the
    /// refusal. Checked when the will fires, not at CONNECT: a will outside
    /// the ACL does not keep a client from connecting, as in mosquitto.
    pub fn will_allowed(&self, owner: &WillOwner<'_>, topic: &str) -> bool {
        if !self.acl_active.load(Ordering::Relaxed)
            || self
                .policy(owner.listener)
                .can_write(owner.client_id, owner.username, topic)
        {
            return true;
        }
        tracing::info!(
            "Denied will of client {} on topic '{}': not authorised.",
            owner.client_id,
            topic
        );
        false
    }

    /// Publishes a will that fired now, if the ACL allows it.
    pub fn fire_will(
        &self,
        owner: WillOwner<'_>,
        will: Message,
        matches: &mut Vec<Match<SessionKey>>,
        now: Instant,
    ) {
        if self.will_allowed(&owner, &will.topic) {
            self.publish(Arc::new(will), matches, now);
        }
    }

    /// The retained messages matching `filter` (validated, no `$share/`).
    pub fn retained_matching(&self, filter: &str, now: Instant) -> Vec<Arc<Message>> {
        self.retained.read().matching(filter, now)
    }
}

/// Whose will is fired: what its ACL check needs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WillOwner<'a> {
    pub client_id: &'a str,
    pub username: Option<&'a str>,
    pub listener: usize,
}

/// What routing one message did.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Routed {
    /// Subscribers that matched.
    pub matched: usize,
    /// Whether some subscriber's queue was full (the message was dropped for it).
    pub overflow: bool,
    /// A subscriber asked the publisher to pause (back-pressure).
    pub pause: bool,
}

/// A session and the connection currently holding it.
#[derive(Debug)]
pub(crate) struct SessionHandle {
    pub client_id: Arc<str>,
    pub inner: Mutex<SessionInner>,
}

/// What a session's mutex protects.
#[derive(Debug)]
pub(crate) struct SessionInner {
    pub session: Session,
    /// The connection holding the session, to wake or kick.
    pub conn: Option<Arc<ConnSignal>>,
    /// Incremented at each takeover, so that an old connection leaving does
    /// not detach its successor.
    pub generation: u64,
    pub username: Option<Arc<str>>,
    pub listener: usize,
    /// Seconds the session outlives its connection; `None`: forever.
    pub expiry: Option<u32>,
    pub disconnected_at: Option<Instant>,
    /// Set once the session has been removed from the map.
    pub ended: bool,
    /// The will of the connection holding the session, taken by whoever
    /// ends that connection: the connection leaving, a takeover, or
    /// shutdown. Boxed: most clients have none.
    pub will: Option<Box<Message>>,
    /// Its 5.0 Will Delay Interval, in seconds.
    pub will_delay: u32,
    /// Publishers paused until this session drains (back-pressure).
    pub paused: Lazy<Vec<Arc<ConnSignal>>>,
}

impl SessionInner {
    /// The paused publishers that may resume now (see [`Session::can_resume`]);
    /// the caller wakes them with [`resume_all`] once the lock is released.
    pub fn take_resumable(&mut self) -> Vec<Arc<ConnSignal>> {
        if self.paused.is_empty() || !(self.ended || self.session.can_resume()) {
            return Vec::new();
        }
        self.paused.take_all()
    }
}

/// Wakes paused publishers.
pub(crate) fn resume_all(paused: Vec<Arc<ConnSignal>>) {
    for p in paused {
        p.resume.store(true, Ordering::Release);
        p.wake.notify_one();
    }
}

impl SessionHandle {
    fn new(client_id: Arc<str>, limits: SessionLimits) -> SessionHandle {
        SessionHandle {
            client_id,
            inner: Mutex::new(SessionInner {
                session: Session::new(limits),
                conn: None,
                generation: 0,
                username: None,
                listener: 0,
                expiry: Some(0),
                disconnected_at: None,
                ended: false,
                will: None,
                will_delay: 0,
                paused: Lazy::new(),
            }),
        }
    }

    /// Hands a delivery to the session (after the ACL check) and wakes the
    /// connection when something became ready. Returns `true` when the
    /// message was dropped because the session's queue is full.
    pub fn deliver(&self, shared: &Shared, delivery: Delivery, now: Instant) -> bool {
        self.deliver_from(shared, delivery, now, None).0
    }

    /// As [`SessionHandle::deliver`] for a message from the publishing
    /// connection `from`. Returns (dropped, pause): `pause` when that
    /// publisher must stop reading; it has been registered to be resumed once
    /// this session drains (back-pressure, see [`Session::wants_pause`]).
    pub fn deliver_from(
        &self,
        shared: &Shared,
        delivery: Delivery,
        now: Instant,
        from: Option<&mut Origin<'_>>,
    ) -> (bool, bool) {
        self.deliver_many(shared, std::iter::once(delivery), now, from)
    }

    /// As [`SessionHandle::deliver_from`] for several deliveries, in order,
    /// under one lock of the session.
    pub fn deliver_many(
        &self,
        shared: &Shared,
        deliveries: impl IntoIterator<Item = Delivery>,
        now: Instant,
        from: Option<&mut Origin<'_>>,
    ) -> (bool, bool) {
        self.deliver_batch(shared, deliveries, now, from, false)
    }

    /// The retained messages a new subscription matched, under one lock:
    /// never dropped by the queue limits (see [`Session::deliver_retained`]).
    pub fn deliver_retained(
        &self,
        shared: &Shared,
        deliveries: impl IntoIterator<Item = Delivery>,
        now: Instant,
    ) {
        self.deliver_batch(shared, deliveries, now, None, true);
    }

    fn deliver_batch(
        &self,
        shared: &Shared,
        deliveries: impl IntoIterator<Item = Delivery>,
        now: Instant,
        from: Option<&mut Origin<'_>>,
        retained: bool,
    ) -> (bool, bool) {
        let mut overflow = false;
        let drop_notice;
        let mut pause = false;
        let wake = {
            let mut inner = self.inner.lock();
            if inner.ended {
                return (false, false);
            }
            // The connection is woken when its session goes from nothing
            // ready to something ready; until it drains, later deliveries
            // need no wake-up of their own.
            let was_waiting = inner.session.has_ready();
            let mut ready = false;
            let acl = shared.acl_active.load(Ordering::Relaxed);
            for delivery in deliveries {
                if acl
                    && !shared.policy(inner.listener).can_read(
                        &self.client_id,
                        inner.username.as_deref(),
                        &delivery.msg.topic,
                    )
                {
                    continue;
                }
                let delivered = if retained {
                    inner.session.deliver_retained(delivery, now)
                } else {
                    inner.session.deliver(delivery, now)
                };
                match delivered {
                    Delivered::Ready => ready = true,
                    Delivered::Queued => {}
                    Delivered::Dropped => {
                        shared.stats.dropped.fetch_add(1, Ordering::Relaxed);
                        overflow = true;
                    }
                }
            }
            drop_notice = inner.session.take_drop_notice();
            flush_changes(&*shared.store, &self.client_id, &mut inner.session);
            if let Some(from) = &from {
                if inner.session.wants_pause(now) {
                    pause = true;
                    if !inner.paused.iter().any(|p| Arc::ptr_eq(p, from.signal)) {
                        inner.paused.push(from.signal.clone());
                    }
                }
            }
            if ready && !was_waiting {
                inner.conn.clone()
            } else {
                None
            }
        };
        if drop_notice {
            tracing::info!(
                "Outgoing messages are being dropped for client {}.",
                self.client_id
            );
        }
        if let Some(conn) = wake {
            match from {
                Some(from) => from.wakes.push(conn),
                None => conn.wake.notify_one(),
            }
        }
        (overflow, pause)
    }
}

/// A connection publishing what it read: its signal, to pause and resume it
/// (back-pressure), and the subscribers' connections to wake once it has
/// routed its whole batch of frames, so that each of them writes the batch
/// in one go instead of waking for its first message.
pub(crate) struct Origin<'a> {
    /// The publishing connection's signal.
    pub signal: &'a Arc<ConnSignal>,
    /// Connections with deliveries ready, woken by the publisher after its batch.
    pub wakes: &'a mut Vec<Arc<ConnSignal>>,
    /// Hold deliveries in this thread's outbox until [`deliver_outbox`],
    /// which hands each session its share of the batch under one lock.
    /// Only when acknowledgements need not wait for the store: a held
    /// delivery has not been journaled yet.
    pub defer: bool,
}

/// Sessions one batch may hold deliveries for; deliveries to others go at once.
const OUTBOX_SESSIONS: usize = 16;
/// Deliveries held for one session before they are handed over.
const OUTBOX_FLUSH_AT: usize = 16;

thread_local! {
    /// Deliveries routed from the batch of frames being processed on this
    /// thread, per session, in order. Filled and emptied within one
    /// synchronous call of the connection (no `.await` in between).
    static OUTBOX: std::cell::RefCell<Vec<Held>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// One session's deliveries in the outbox; `None` marks a free slot.
type Held = (Option<Arc<SessionHandle>>, Vec<Delivery>);

/// Holds `delivery` for `handle` in this thread's outbox, or gives it back
/// when the outbox has no room for another session. A session's share is
/// delivered as soon as it reaches [`OUTBOX_FLUSH_AT`], so that a
/// publisher overshoots a full subscriber's pause threshold by at most that
/// much; the result is then that delivery's (dropped, pause).
fn hold(
    shared: &Shared,
    handle: &Arc<SessionHandle>,
    delivery: Delivery,
    now: Instant,
    from: &mut Origin<'_>,
) -> Result<(bool, bool), Delivery> {
    OUTBOX.with(|cell| {
        let Ok(mut outbox) = cell.try_borrow_mut() else {
            return Err(delivery);
        };
        let mut slot = None;
        let mut free = None;
        for (i, (held, _)) in outbox.iter().enumerate() {
            match held {
                Some(h) if Arc::ptr_eq(h, handle) => {
                    slot = Some(i);
                    break;
                }
                None if free.is_none() => free = Some(i),
                _ => {}
            }
        }
        let slot = match (slot, free) {
            (Some(i), _) | (None, Some(i)) => i,
            (None, None) if outbox.len() < OUTBOX_SESSIONS => {
                outbox.push((None, Vec::new()));
                outbox.len() - 1
            }
            (None, None) => return Err(delivery),
        };
        let Some((held, list)) = outbox.get_mut(slot) else {
            return Err(delivery);
        };
        if held.is_none() {
            *held = Some(handle.clone());
        }
        list.push(delivery);
        if list.len() < OUTBOX_FLUSH_AT {
            return Ok((false, false));
        }
        // deliver_many does not route, so the outbox is not borrowed again.
        Ok(handle.deliver_many(shared, list.drain(..), now, Some(from)))
    })
}

/// Delivers what this thread's outbox holds, each session's share under one
/// lock; returns (dropped, pause) as [`SessionHandle::deliver_from`].
pub(crate) fn deliver_outbox(shared: &Shared, now: Instant, from: &mut Origin<'_>) -> (bool, bool) {
    let mut overflow = false;
    let mut pause = false;
    OUTBOX.with(|cell| {
        let Ok(mut outbox) = cell.try_borrow_mut() else {
            return;
        };
        for (held, list) in outbox.iter_mut() {
            let Some(handle) = held.take() else {
                continue;
            };
            let (o, p) = handle.deliver_many(shared, list.drain(..), now, Some(&mut *from));
            overflow |= o;
            pause |= p;
        }
    });
    (overflow, pause)
}

/// The signals a connection task listens to besides its socket.
#[derive(Debug)]
pub(crate) struct ConnSignal {
    /// Packets are ready in the session, or a flag below was set; reaches
    /// the connection whether its task runs or it is parked.
    pub wake: Wake,
    /// Another connection took the session over.
    pub kicked: AtomicBool,
    /// A session this connection's publishes were paused for has drained
    /// (signalled through `wake`).
    pub resume: AtomicBool,
}

impl ConnSignal {
    pub fn new(parker: Arc<Parker>) -> ConnSignal {
        ConnSignal {
            wake: Wake::new(parker),
            kicked: AtomicBool::new(false),
            resume: AtomicBool::new(false),
        }
    }
}

/// A session as a subscription-tree key: compared by identity.
#[derive(Debug, Clone)]
pub(crate) struct SessionKey(pub Arc<SessionHandle>);

impl PartialEq for SessionKey {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}
impl Eq for SessionKey {}
impl Hash for SessionKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        (Arc::as_ptr(&self.0) as usize).hash(state);
    }
}

const SHARDS: usize = 32;

/// Sessions by client id, sharded so that connects do not contend on one lock.
pub(crate) struct Sessions {
    shards: Vec<Mutex<HashMap<Arc<str>, Arc<SessionHandle>>>>,
    /// Never used: `shard` indexes within bounds, but avoids a panic path.
    fallback: Mutex<HashMap<Arc<str>, Arc<SessionHandle>>>,
}

impl Sessions {
    fn new() -> Sessions {
        Sessions {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            fallback: Mutex::new(HashMap::new()),
        }
    }

    pub fn shard(&self, client_id: &str) -> &Mutex<HashMap<Arc<str>, Arc<SessionHandle>>> {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        client_id.hash(&mut h);
        let i = (h.finish() as usize) % SHARDS;
        self.shards.get(i).unwrap_or(&self.fallback)
    }

    /// The session of `client_id` and whether it already existed.
    pub fn get_or_create(
        &self,
        client_id: &Arc<str>,
        limits: SessionLimits,
    ) -> (Arc<SessionHandle>, bool) {
        self.find_or_insert(client_id, limits, |_| {})
    }

    /// The session of a connecting client: the one in the map, or a new
    /// one. Its generation is bumped at once, under the map's lock: an old
    /// connection ending the session (`end_session` checks the generation
    /// under the same lock) either did so already, and the session is no
    /// longer in the map, or now leaves it alone. Without this, a session
    /// found here could be ended before the new connection took it over, and
    /// the client would be attached to a session nobody can reach.
    pub fn claim(&self, client_id: &Arc<str>, limits: SessionLimits) -> (Arc<SessionHandle>, bool) {
        self.find_or_insert(client_id, limits, |h| {
            let mut inner = h.inner.lock();
            inner.generation = inner.generation.wrapping_add(1);
        })
    }

    /// The session of `client_id`, after `existing` ran on it under the
    /// map's lock, or a new one; and whether it already existed.
    fn find_or_insert(
        &self,
        client_id: &Arc<str>,
        limits: SessionLimits,
        existing: impl FnOnce(&SessionHandle),
    ) -> (Arc<SessionHandle>, bool) {
        let mut shard = self.shard(client_id).lock();
        if let Some(h) = shard.get(client_id) {
            existing(h);
            return (h.clone(), true);
        }
        let h = Arc::new(SessionHandle::new(client_id.clone(), limits));
        shard.insert(client_id.clone(), h.clone());
        (h, false)
    }

    /// Every session (for housekeeping).
    pub fn all(&self) -> Vec<Arc<SessionHandle>> {
        self.shards
            .iter()
            .flat_map(|s| s.lock().values().cloned().collect::<Vec<_>>())
            .collect()
    }
}

/// Rebuilds retained messages, sessions and delayed wills from a store's
/// snapshot, before any client can connect.
fn restore(shared: &Shared, snapshot: crate::store::Snapshot) {
    let now = Instant::now();
    {
        let mut retained = shared.retained.write();
        for msg in snapshot.retained {
            retained.insert(Arc::new(msg));
        }
    }
    let delivery = |msg: Message, qos: QoS| Delivery {
        msg: Arc::new(msg),
        qos,
        retain: false,
        subscription_ids: Vec::new(),
        share: None,
    };
    for saved in snapshot.sessions {
        let client_id: Arc<str> = Arc::from(saved.client_id.as_str());
        let (handle, _) = shared.sessions.get_or_create(&client_id, shared.limits);
        {
            let mut inner = handle.inner.lock();
            inner.expiry = saved.expiry_interval;
            inner.disconnected_at = Some(now);
            let session = &mut inner.session;
            // A restored session is persistent: its changes while offline
            // (messages queued for it) must reach the store too.
            session.set_journaling(true);
            for (id, msg, qos, state) in saved.outbound {
                session.restore_outbound(id, delivery(msg, qos), state);
            }
            for (msg, qos) in saved.queued {
                session.restore_queued(delivery(msg, qos));
            }
            for id in saved.inbound_qos2 {
                session.restore_inbound_qos2(id);
            }
            for (filter, options, id) in &saved.subscriptions {
                session.subscriptions.insert(
                    filter.clone(),
                    crate::session::SubscriptionEntry {
                        options: *options,
                        id: *id,
                    },
                );
            }
        }
        let mut tree = shared.subscriptions.write();
        for (filter, options, id) in saved.subscriptions {
            tree.subscribe(&filter, SessionKey(handle.clone()), options, id);
        }
    }
    let mut wills = shared.delayed_wills.lock();
    for (client_id, will) in snapshot.delayed_wills {
        // Due at once: the delay ran while the broker was down.
        wills.insert(Arc::from(client_id.as_str()), (now, will));
    }
}

/// Hands a session's journaled durable changes to the store.
pub(crate) fn flush_changes(store: &dyn Store, client_id: &str, session: &mut Session) {
    use crate::session::Change;
    for change in session.take_changes() {
        match change {
            Change::Queued(d) => store.queued_add(client_id, &d.msg, d.qos),
            Change::Dequeued => store.queued_remove_front(client_id),
            Change::Outbound(id, state) => store.outbound_state(client_id, id, state),
            Change::Sent(id, d) => store.outbound_sent(client_id, id, &d.msg, d.qos),
            Change::Inbound(id, pending) => store.inbound_qos2(client_id, id, pending),
        }
    }
}

/// Removes a session for good: from the map, its subscriptions from the tree.
/// Called with neither the shard nor the session lock held.
pub(crate) fn end_session(shared: &Shared, handle: &Arc<SessionHandle>, generation: Option<u64>) {
    let filters: Vec<String> = {
        let mut shard = shared.sessions.shard(&handle.client_id).lock();
        let mut inner = handle.inner.lock();
        if inner.ended
            || generation.is_some_and(|g| g != inner.generation)
            || (generation.is_none() && inner.conn.is_some())
        {
            return;
        }
        inner.ended = true;
        resume_all(inner.paused.take_all());
        if shard
            .get(&handle.client_id)
            .is_some_and(|h| Arc::ptr_eq(h, handle))
        {
            shard.remove(&handle.client_id);
        }
        inner
            .session
            .subscriptions
            .drain()
            .map(|(f, _)| f)
            .collect()
    };
    remove_subscriptions(shared, handle, &filters);
    shared.store.session_delete(&handle.client_id);
    // A delayed will goes out when the session ends, if that comes first.
    let will = shared.delayed_wills.lock().remove(&handle.client_id);
    if let Some((_, will)) = will {
        shared.store.delayed_will(&handle.client_id, None);
        shared.publish(Arc::new(will), &mut Vec::new(), Instant::now());
    }
    // What the session still held for shared groups goes to other members.
    let orphans = handle.inner.lock().session.take_shared();
    let now = Instant::now();
    for delivery in orphans {
        let Some(filter) = delivery.share.clone() else {
            continue;
        };
        let members = shared.subscriptions.read().group_members(&filter);
        let chosen = members
            .iter()
            .find(|k| k.0.inner.lock().session.has_window())
            .or_else(|| {
                members
                    .iter()
                    .find(|k| k.0.inner.lock().session.is_attached())
            })
            .or_else(|| members.first())
            .cloned();
        if let Some(member) = chosen {
            member.0.deliver(shared, delivery, now);
        }
    }
}

/// Removes `handle`'s subscriptions to `filters` from the tree.
pub(crate) fn remove_subscriptions(
    shared: &Shared,
    handle: &Arc<SessionHandle>,
    filters: &[String],
) {
    if filters.is_empty() {
        return;
    }
    let key = SessionKey(handle.clone());
    let mut tree = shared.subscriptions.write();
    // The tree takes filters as the session stores them, `$share/G/` and
    // mount point included.
    for f in filters {
        tree.unsubscribe(f, &key);
    }
}

/// Opens a listen socket with a large backlog; IPv6 sockets are v6-only so
/// that `0.0.0.0` and `::` can both be bound on one port.
fn bind(addr: SocketAddr) -> std::io::Result<Listener> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_nonblocking(true)?;
    // Linux gives accepted sockets the listener's TCP_NODELAY: one system
    // call per listener instead of one per connection.
    socket.set_nodelay(true)?;
    socket.bind(&addr.into())?;
    socket.listen(4096)?;
    // `AsyncFd::new` is deprecated because a `T` that does not own its
    // descriptor could close it while registered; mio's listener owns it,
    // and the `AsyncFd` owns the listener.
    #[allow(deprecated)]
    AsyncFd::new(mio::net::TcpListener::from_std(socket.into()))
}

/// A listen socket: mio's accepts non-blocking sockets that stay out of
/// tokio until a connection has to wait for one (`socket.rs`).
type Listener = AsyncFd<mio::net::TcpListener>;

/// Accepts one connection, with TCP_NODELAY set.
async fn accept(listener: &Listener) -> std::io::Result<(std::net::TcpStream, SocketAddr)> {
    loop {
        let mut ready = listener.readable().await?;
        if let Ok(accepted) = ready.try_io(|l| l.get_ref().accept()) {
            let (stream, peer) = accepted?;
            // Linux copies it from the listener (`bind`).
            if !cfg!(target_os = "linux") {
                let _ = stream.set_nodelay(true);
            }
            return Ok((stream.into(), peer));
        }
    }
}

async fn accept_loop(shared: Arc<Shared>, listener: Listener, index: usize, port: u16) {
    let _alive = shared.alive_token();
    let mut shutdown = shared.shutdown.clone();
    let max_connections = shared
        .config
        .listeners
        .get(index)
        .and_then(|l| l.max_connections)
        .or(shared.config.limits.max_connections);
    loop {
        let accepted = tokio::select! {
            _ = crate::broker::shutdown_requested(&mut shutdown) => return,
            r = accept(&listener) => r,
        };
        match accepted {
            Ok((stream, peer)) => {
                let current = shared.connections.load(Ordering::Relaxed);
                if max_connections.is_some_and(|max| current >= max) {
                    tracing::info!(
                        "Client connection from {} denied: max_connections exceeded.",
                        peer.ip()
                    );
                    drop(stream);
                    continue;
                }
                // Spawned as is: a wrapping `async move` block would keep
                // the arguments beside the connection's own state.
                tokio::spawn(crate::connection::run(
                    shared.clone(),
                    stream,
                    peer,
                    index,
                    port,
                ));
            }
            Err(e) => {
                // Out of file descriptors and the like: log, pause briefly.
                tracing::error!("Error accepting connection: {e}");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

/// Expires disconnected sessions whose expiry interval has passed.
async fn housekeeping(shared: Arc<Shared>) {
    let mut shutdown = shared.shutdown.clone();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = crate::broker::shutdown_requested(&mut shutdown) => return,
            _ = tick.tick() => {}
        }
        let now = Instant::now();
        let due: Vec<(Arc<str>, Message)> = {
            let mut wills = shared.delayed_wills.lock();
            let ids: Vec<Arc<str>> = wills
                .iter()
                .filter(|(_, (at, _))| *at <= now)
                .map(|(id, _)| id.clone())
                .collect();
            ids.into_iter()
                .filter_map(|id| wills.remove(&id).map(|(_, m)| (id, m)))
                .collect()
        };
        for (id, will) in due {
            shared.store.delayed_will(&id, None);
            shared.publish(Arc::new(will), &mut Vec::new(), now);
        }
        for handle in shared.sessions.all() {
            let expired = {
                let inner = handle.inner.lock();
                match (inner.conn.is_some(), inner.disconnected_at, inner.expiry) {
                    (false, Some(at), Some(secs)) => {
                        now.saturating_duration_since(at) >= Duration::from_secs(u64::from(secs))
                    }
                    _ => false,
                }
            };
            if expired {
                shared.stats.clients_expired.fetch_add(1, Ordering::Relaxed);
                end_session(&shared, &handle, None);
            }
        }
    }
}

/// Completes once shutdown is asked for. A dropped [`RunningBroker`] (the
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

/// The highest QoS the broker grants.
pub(crate) fn max_qos(shared: &Shared) -> QoS {
    shared.config.limits.max_qos
}

/// `p1`/`p2`/`p5` for log lines.
pub(crate) fn protocol_tag(p: Protocol) -> &'static str {
    match p {
        Protocol::V3_1 => "p1",
        Protocol::V3_1_1 => "p2",
        Protocol::V5 => "p5",
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    /// Accepted sockets have TCP_NODELAY (on Linux, from the listener): fails
    /// if neither sets it.
    #[test]
    fn accepted_sockets_do_not_delay() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let listener = bind("127.0.0.1:0".parse().unwrap()).unwrap();
            let addr = listener.get_ref().local_addr().unwrap();
            let _client = tokio::net::TcpStream::connect(addr).await.unwrap();
            let (stream, _) = accept(&listener).await.unwrap();
            assert!(stream.nodelay().unwrap());
        });
    }

    /// Every idle connection holds its task's future: keep it small (it was
    /// 1360 bytes before `Conn` and the cold phases were boxed and the wait
    /// trimmed; about 400 after).
    #[test]
    fn idle_connection_future_is_small() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let (_tx, rx) = watch::channel(false);
            let (alive, _alive_rx) = mpsc::channel::<()>(1);
            let shared = Arc::new(Shared::new(
                Config::default(),
                Vec::new(),
                Arc::new(MemoryStore),
                rx,
                alive,
                Parker::new().0,
            ));
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let _client = tokio::net::TcpStream::connect(addr).await.unwrap();
            let (stream, peer) = listener.accept().await.unwrap();
            let stream = stream.into_std().unwrap();
            let fut = crate::connection::run(shared, stream, peer, 0, addr.port());
            let size = std::mem::size_of_val(&fut);
            assert!(size <= 512, "connection future is {size} bytes");
        });
    }
}
