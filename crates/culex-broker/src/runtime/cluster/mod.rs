//! The broker as a node of a cluster on NATS JetStream (`cluster_servers`,
//! `cluster_node`): [`ClusterLink`] is the core's [`Cluster`], bridging it
//! to a `culex_cluster::Node`.
//!
//! - The core's calls only queue work ([`Job`]s, run in order by one
//!   task): QoS 0 messages go out on core NATS, QoS 1/2 messages and
//!   retained ones are stored in JetStream, and the acknowledgement to the
//!   publisher waits for that through the shared ticket space
//!   ([`tickets`]).
//! - What other nodes send is routed into the core (`events.rs`): messages,
//!   kicks (a session leaves for another node), adoptions (a dead node's
//!   sessions and wills).
//! - A connecting client's session is claimed in the cluster before its
//!   CONNACK (`claim.rs`), and the records other nodes adopt sessions by
//!   are kept up to date (`records.rs`).
//! - Without NATS the node keeps serving its own clients, refuses new
//!   persistent sessions, and says so in its log and in `$SYS`.

mod claim;
mod events;
mod records;
pub(crate) mod tickets;
mod wire;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::{Duration, Instant, SystemTime};

use culex_cluster::Node;
use parking_lot::{Mutex, RwLock};
use tokio::sync::mpsc;

use crate::config::ClusterConfig;
use crate::core::cluster::{Cluster, RetainedRequest};
use crate::core::message::Message;
use crate::core::store::Durability;
use crate::core::Core;
use tickets::Tickets;

/// How long to wait between two attempts to reach NATS at start.
const CONNECT_RETRY: Duration = Duration::from_secs(2);

/// QoS 0 messages waiting to go to NATS at most; beyond it (NATS slower
/// than the publishers) they are not sent to other nodes, which QoS 0
/// allows, rather than held without bound.
const QOS0_BACKLOG: usize = 16_384;

/// How long NATS may be unreachable before local traffic is acknowledged
/// without it (as long as a stored write is retried).
const LOCAL_AFTER: Duration = Duration::from_secs(10);

/// Work the core's calls queue, done in order by one task.
#[derive(Debug)]
enum Job {
    /// A message published here; with a ticket when it is stored (QoS 1/2).
    Publish(Arc<Message>, Option<u64>),
    /// A retained message set or cleared (`None`) on a topic.
    Retain(String, Option<Arc<Message>>, u64),
    /// A new subscription's retained messages.
    Fetch(RetainedRequest),
}

/// The core's cluster: see the module docs.
pub(crate) struct ClusterLink {
    config: ClusterConfig,
    options: culex_cluster::Options,
    tickets: Arc<Tickets>,
    node: RwLock<Option<Node>>,
    /// NATS is reachable now.
    up: AtomicBool,
    /// Local traffic is acknowledged without the cluster: NATS was never
    /// reached, or has been unreachable for [`LOCAL_AFTER`]. Until then
    /// stored writes wait (the NATS client reconnects, often to another
    /// server of the NATS cluster, within seconds).
    local_only: AtomicBool,
    /// Since when it is not (to recover what was missed meanwhile).
    down_since: Mutex<Option<SystemTime>>,
    core: OnceLock<Weak<Core>>,
    /// Local interest by filter (counted), replayed to the node on connect.
    interest: Mutex<HashMap<String, usize>>,
    jobs: mpsc::UnboundedSender<Job>,
    jobs_rx: Mutex<Option<mpsc::UnboundedReceiver<Job>>>,
    /// QoS 0 publishes queued in `jobs` (bounded by [`QOS0_BACKLOG`]).
    qos0_queued: AtomicUsize,
    /// QoS 0 messages were not sent to other nodes for want of room since
    /// the backlog last emptied (said once per spell).
    qos0_dropping: AtomicBool,
    /// The sessions this node owns in the cluster.
    records: records::Records,
}

impl std::fmt::Debug for ClusterLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterLink")
            .field("node", &self.config.node)
            .finish_non_exhaustive()
    }
}

impl ClusterLink {
    /// A link for `config`, not connected yet ([`ClusterLink::start`]).
    pub fn new(config: ClusterConfig, tickets: Arc<Tickets>) -> Arc<ClusterLink> {
        let (jobs, jobs_rx) = mpsc::unbounded_channel();
        let options = culex_cluster::Options {
            namespace: config.namespace.clone(),
            ..culex_cluster::Options::default()
        };
        Arc::new(ClusterLink {
            config,
            options,
            tickets,
            node: RwLock::new(None),
            up: AtomicBool::new(false),
            local_only: AtomicBool::new(true),
            down_since: Mutex::new(None),
            core: OnceLock::new(),
            interest: Mutex::new(HashMap::new()),
            jobs,
            jobs_rx: Mutex::new(Some(jobs_rx)),
            qos0_queued: AtomicUsize::new(0),
            qos0_dropping: AtomicBool::new(false),
            records: records::Records::default(),
        })
    }

    /// Connects to NATS in the background (retrying until it can), then
    /// serves the cluster until shutdown.
    pub fn start(self: &Arc<Self>, core: &Arc<Core>, shutdown: tokio::sync::watch::Receiver<bool>) {
        let _ = self.core.set(Arc::downgrade(core));
        self.sys_state(false);
        let link = self.clone();
        tokio::spawn(async move {
            let Some((node, receivers)) = link.connect(shutdown.clone()).await else {
                return;
            };
            *link.node.write() = Some(node.clone());
            link.replay_interest(&node);
            link.set_up(true);
            let jobs = link.jobs_rx.lock().take();
            if let Some(jobs) = jobs {
                tokio::spawn(link.clone().run_jobs(node.clone(), jobs));
            }
            tokio::spawn(records::run(link.clone(), node.clone(), shutdown.clone()));
            events::run(link, node, receivers, shutdown).await;
        });
    }

    async fn connect(
        &self,
        mut shutdown: tokio::sync::watch::Receiver<bool>,
    ) -> Option<(Node, culex_cluster::Receivers)> {
        let mut failures = 0u32;
        loop {
            let attempt = Node::connect(
                &self.config.servers,
                &self.config.node,
                self.options.clone(),
            );
            match attempt.await {
                Ok(connected) => {
                    tracing::info!(
                        "Cluster: node {} joined through {}.",
                        connected.0.id(),
                        self.config.servers.join(",")
                    );
                    return Some(connected);
                }
                Err(e) => {
                    // Said once, then every 30 attempts (about a minute).
                    if failures.is_multiple_of(30) {
                        tracing::warn!(
                            "Cluster: cannot join through {}: {e}. Serving local clients only; retrying.",
                            self.config.servers.join(",")
                        );
                    }
                    failures += 1;
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(CONNECT_RETRY) => {}
                _ = super::state::shutdown_requested(&mut shutdown) => return None,
            }
        }
    }

    /// The node, when NATS is reachable now.
    fn node_if_up(&self) -> Option<Node> {
        if !self.up.load(Ordering::Acquire) {
            return None;
        }
        self.node.read().clone()
    }

    fn core(&self) -> Option<Arc<Core>> {
        self.core.get().and_then(Weak::upgrade)
    }

    fn set_up(self: &Arc<Self>, up: bool) {
        self.up.store(up, Ordering::Release);
        let mut down_since = self.down_since.lock();
        *down_since = if up {
            None
        } else {
            Some(down_since.unwrap_or_else(SystemTime::now))
        };
        drop(down_since);
        if up {
            self.local_only.store(false, Ordering::Release);
        } else {
            let link = self.clone();
            tokio::spawn(async move {
                tokio::time::sleep(LOCAL_AFTER).await;
                if !link.up.load(Ordering::Acquire) {
                    link.local_only.store(true, Ordering::Release);
                    tracing::warn!(
                        "Cluster: NATS unreachable for {} s: local messages are acknowledged without reaching other nodes.",
                        LOCAL_AFTER.as_secs()
                    );
                }
            });
        }
        self.sys_state(up);
    }

    /// `$SYS/broker/cluster/state`: `connected` or `disconnected`.
    fn sys_state(&self, up: bool) {
        let Some(core) = self.core() else {
            return;
        };
        let now = Instant::now();
        let state = if up { "connected" } else { "disconnected" };
        let msg = Message::new(
            "$SYS/broker/cluster/state",
            state,
            culex_codec::QoS::AtMostOnce,
            true,
            now,
        );
        core.publish(Arc::new(msg), now);
        let msg = Message::new(
            "$SYS/broker/cluster/node",
            self.config.node.clone(),
            culex_codec::QoS::AtMostOnce,
            true,
            now,
        );
        core.publish(Arc::new(msg), now);
    }

    fn replay_interest(&self, node: &Node) {
        for filter in self.interest.lock().keys() {
            if let Err(e) = node.add_interest(filter) {
                tracing::warn!("Cluster: cannot route {filter}: {e}");
            }
        }
    }

    /// Runs the queued [`Job`]s in order. Stored writes are started in
    /// order and awaited together.
    async fn run_jobs(self: Arc<Self>, node: Node, mut jobs: mpsc::UnboundedReceiver<Job>) {
        use futures_util::stream::{FuturesUnordered, StreamExt};
        let mut stores = FuturesUnordered::new();
        loop {
            let job = tokio::select! {
                job = jobs.recv() => job,
                Some(()) = stores.next(), if !stores.is_empty() => continue,
            };
            let Some(job) = job else {
                break;
            };
            match job {
                Job::Publish(msg, None) => {
                    if self.qos0_queued.fetch_sub(1, Ordering::AcqRel) == 1 {
                        self.qos0_dropping.store(false, Ordering::Release);
                    }
                    let publisher = msg.origin.as_deref().unwrap_or("").to_owned();
                    let carried = wire::to_cluster(&msg, Instant::now());
                    if let Err(e) = node.publish(&carried, &publisher).await {
                        tracing::debug!("Cluster: {} not routed: {e}", msg.topic);
                    }
                }
                Job::Publish(msg, Some(ticket)) => {
                    let (node, tickets) = (node.clone(), self.tickets.clone());
                    stores.push(Box::pin(async move {
                        let publisher = msg.origin.as_deref().unwrap_or("").to_owned();
                        let carried = wire::to_cluster(&msg, Instant::now());
                        let stored = node.publish_durable(&carried, &publisher).await;
                        if let Err(e) = &stored {
                            tracing::warn!("Cluster: {} not stored: {e}", msg.topic);
                        }
                        tickets.complete(ticket, stored.is_ok());
                    })
                        as std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>);
                }
                Job::Retain(topic, msg, ticket) => {
                    let (node, tickets) = (node.clone(), self.tickets.clone());
                    stores.push(Box::pin(async move {
                        let now = Instant::now();
                        let carried = match &msg {
                            Some(m) => wire::to_cluster(m, now),
                            None => culex_cluster::Message {
                                topic: topic.clone(),
                                payload: bytes::Bytes::new(),
                                qos: culex_codec::QoS::AtMostOnce,
                                retain: true,
                                properties: bytes::Bytes::new(),
                            },
                        };
                        let stored = node.set_retained(&carried).await;
                        if let Err(e) = &stored {
                            tracing::warn!("Cluster: retained {topic} not stored: {e}");
                        }
                        tickets.complete(ticket, stored.is_ok());
                    }));
                }
                Job::Fetch(request) => {
                    stores.push(Box::pin(self.clone().fetch(node.clone(), request)));
                }
            }
            // Start what was just queued now, in order.
            futures_util::future::poll_fn(|cx| {
                while let std::task::Poll::Ready(Some(())) = stores.poll_next_unpin(cx) {}
                std::task::Poll::Ready(())
            })
            .await;
        }
    }

    async fn fetch(self: Arc<Self>, node: Node, request: RetainedRequest) {
        let found = match node.retained_matching(&request.filter).await {
            Ok(found) => found,
            Err(e) => {
                tracing::warn!(
                    "Cluster: retained messages of {} not read: {e}",
                    request.filter
                );
                return;
            }
        };
        let Some(core) = self.core() else {
            return;
        };
        let now = Instant::now();
        let messages = found
            .into_iter()
            .filter_map(|m| wire::from_cluster(m, None, now).ok())
            .map(Arc::new)
            .collect();
        core.deliver_fetched_retained(&request, messages, now);
    }

    /// Graceful leave: the records of this node's sessions say their
    /// clients are gone (their wills went out here), then the node leaves
    /// the cluster; other nodes adopt the persistent sessions.
    pub async fn leave(&self) {
        let node = self.node.read().clone();
        let Some(node) = node else {
            return;
        };
        if self.up.load(Ordering::Acquire) {
            records::flush_all(self, &node).await;
        }
        if let Err(e) = node.shutdown().await {
            tracing::warn!("Cluster: leaving: {e}");
        }
    }
}

impl Cluster for ClusterLink {
    fn serving(&self) -> bool {
        !self.local_only.load(Ordering::Acquire)
    }

    fn published(&self, msg: &Arc<Message>) -> Durability {
        if self.local_only.load(Ordering::Acquire) {
            return Durability::Done;
        }
        if msg.qos == culex_codec::QoS::AtMostOnce {
            if self.qos0_queued.fetch_add(1, Ordering::AcqRel) >= QOS0_BACKLOG {
                self.qos0_queued.fetch_sub(1, Ordering::AcqRel);
                if !self.qos0_dropping.swap(true, Ordering::AcqRel) {
                    tracing::warn!(
                        "Cluster: NATS is slower than the publishers here: QoS 0 messages are not sent to other nodes until it catches up."
                    );
                }
                return Durability::Done;
            }
            if self.jobs.send(Job::Publish(msg.clone(), None)).is_err() {
                self.qos0_queued.fetch_sub(1, Ordering::AcqRel);
            }
            return Durability::Done;
        }
        let ticket = self.tickets.issue();
        if self
            .jobs
            .send(Job::Publish(msg.clone(), Some(ticket)))
            .is_err()
        {
            self.tickets.complete(ticket, false);
        }
        Durability::Pending(ticket)
    }

    fn interest(&self, filter: &str, present: bool) {
        let changed = {
            let mut interest = self.interest.lock();
            if present {
                let count = interest.entry(filter.to_owned()).or_insert(0);
                *count += 1;
                true
            } else {
                match interest.get_mut(filter) {
                    Some(count) if *count > 1 => {
                        *count -= 1;
                        true
                    }
                    Some(_) => interest.remove(filter).is_some(),
                    None => false,
                }
            }
        };
        let node = self.node.read().clone();
        if let (true, Some(node)) = (changed, node) {
            let result = if present {
                node.add_interest(filter)
            } else {
                node.remove_interest(filter)
            };
            if let Err(e) = result {
                tracing::warn!("Cluster: cannot route {filter}: {e}");
            }
        }
    }

    fn retained(&self, topic: &str, msg: Option<&Arc<Message>>) -> Durability {
        if self.local_only.load(Ordering::Acquire) {
            return Durability::Done;
        }
        let ticket = self.tickets.issue();
        if self
            .jobs
            .send(Job::Retain(topic.to_owned(), msg.cloned(), ticket))
            .is_err()
        {
            self.tickets.complete(ticket, false);
        }
        Durability::Pending(ticket)
    }

    fn retained_for(&self, request: RetainedRequest) {
        if !self.local_only.load(Ordering::Acquire) {
            let _ = self.jobs.send(Job::Fetch(request));
        }
    }

    fn session_changed(&self, client_id: &str) {
        self.records.changed(client_id);
    }

    fn session_ended(&self, client_id: &str) {
        self.records.ended(client_id);
    }
}
