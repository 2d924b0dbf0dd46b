//! [`Node`]: one culex node's membership of the cluster.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_nats::jetstream::{self, consumer, kv, stream};
use bytes::Bytes;
use futures_util::StreamExt;
use tokio::sync::{mpsc, oneshot, Semaphore};
use tokio::task::AbortHandle;

use crate::error::{Error, Result};
use crate::message::{encode_envelope, Envelope, Message, NodeId};
use crate::routing::{InterestCommand, Route};
use crate::session::{
    session_key, Adoption, Claim, KickBody, KickOutcome, KickReply, SessionRecord,
};
use crate::subject::Subjects;
use crate::{control, durable, membership, routing};

/// How a node joins the cluster. The defaults suit production; tests
/// shorten the timings.
#[derive(Debug, Clone)]
pub struct Options {
    /// The first token of every subject and the prefix of every stream and
    /// bucket name, so that several clusters (or tests) can share one NATS.
    /// 1 to 32 of `[A-Za-z0-9_-]`; default `culex`.
    pub namespace: String,
    /// Replicas of every stream and bucket; `None` picks 3 when the NATS
    /// server is part of a cluster and 1 otherwise.
    pub replicas: Option<usize>,
    /// How often the node renews its membership key (default 3 s).
    pub heartbeat_interval: Duration,
    /// How long a membership key outlives its last renewal, and so how
    /// soon a dead node's sessions are adopted (default 10 s). Every node
    /// of a cluster must use the same value: it is the bucket's max age.
    pub node_ttl: Duration,
    /// How long a kick waits for the previous owner (default 2 s).
    pub kick_timeout: Duration,
    /// How long a JetStream operation may take before it fails (default
    /// 10 s: a stream leader election takes about 5).
    pub store_timeout: Duration,
    /// NATS client ping interval: how soon a hung server is noticed
    /// (default 5 s).
    pub ping_interval: Duration,
    /// The most messages kept in one session's offline queue; older ones are
    /// dropped first (default 100,000).
    pub spool_limit: i64,
    /// Capacity of the [`Receivers::inbound`] channel (default 8,192).
    pub inbound_capacity: usize,
    /// How long the `MSGS` stream keeps a durable message (default 1 hour):
    /// the furthest back [`Node::replay`] and [`Node::recover_routed`]
    /// reach. The stream's max age, so the same on every node.
    pub durable_max_age: Duration,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            namespace: "culex".to_owned(),
            replicas: None,
            heartbeat_interval: Duration::from_secs(3),
            node_ttl: Duration::from_secs(10),
            kick_timeout: Duration::from_secs(2),
            store_timeout: Duration::from_secs(10),
            ping_interval: Duration::from_secs(5),
            spool_limit: 100_000,
            inbound_capacity: 8192,
            durable_max_age: Duration::from_secs(3600),
        }
    }
}

/// What other nodes send this one, to route locally. Read it continuously:
/// when it is full, NATS drops this node's messages (core NATS is at most
/// once; durable ones can be recovered with [`Node::recover_routed`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inbound {
    /// A message published on another node, once per message whatever the
    /// number of local filters it matches: deliver it to every matching
    /// local subscription that is not shared, as for a local publish (the
    /// broker's own tree decides who matches; No-Local compares
    /// [`Envelope::publisher`]).
    Routed(Envelope),
    /// A message for the shared subscription `filter` (`$share/G/F`, as
    /// given to [`Node::add_interest`]), which NATS gave to this node among
    /// all nodes with members of the group: deliver it to one local member.
    /// It may come from this node's own publish.
    Shared {
        /// The shared filter, as given to [`Node::add_interest`].
        filter: String,
        /// The message.
        envelope: Envelope,
    },
}

/// Control events for the broker. Read them continuously: the tasks that
/// send them wait while the channel is full.
#[derive(Debug)]
pub enum Event {
    /// The connections to NATS are up again after [`Event::Disconnected`]:
    /// leave netsplit mode.
    Connected,
    /// A connection to NATS was lost (it is retried without end): enter
    /// netsplit mode (refuse new persistent sessions, keep local traffic).
    Disconnected,
    /// Another node joined (or was first seen).
    NodeUp(NodeId),
    /// A node left or stopped renewing its membership. Its sessions are
    /// adopted: expect [`Event::Adopted`] for those this node won.
    NodeDown(NodeId),
    /// Another process started with this node's name; this node stopped
    /// renewing its membership and should shut down.
    NameTaken(NodeId),
    /// Another node claimed a client id that is connected here: close the
    /// connection (MQTT 5 reason Session taken over) and reply.
    Kick(KickRequest),
    /// This node won a dead node's session: publish the will, and keep the
    /// session (subscribe its filters, spool for it) or release it.
    Adopted(Box<Adoption>),
}

/// A request from another node to close a local client connection.
#[derive(Debug)]
pub struct KickRequest {
    /// The client id whose session the other node claimed.
    pub client_id: String,
    /// The node that claimed it.
    pub by: NodeId,
    /// The epoch of that claim.
    pub epoch: u64,
    pub(crate) reply: oneshot::Sender<KickReply>,
}

impl KickRequest {
    /// Answers the request. Dropping it unanswered answers
    /// [`KickReply::NotConnected`]; no answer within the requester's
    /// timeout reads as [`KickOutcome::Unreachable`] there. A `Closed`
    /// reply must fit in [`Node::max_message_size`]: spool a longer queue
    /// with [`Node::spool`] before replying.
    pub fn reply(self, reply: KickReply) {
        let _ = self.reply.send(reply);
    }
}

/// The channels a node reports on; see [`Inbound`] and [`Event`].
#[derive(Debug)]
pub struct Receivers {
    /// Messages from other nodes to route locally.
    pub inbound: mpsc::Receiver<Inbound>,
    /// Connection state, membership, kicks, adoptions.
    pub events: mpsc::Receiver<Event>,
}

/// Messages read back from a session's offline queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spool {
    /// The spooled messages, oldest first.
    pub messages: Vec<Message>,
    /// The stream sequence of the last one: pass it to
    /// [`Node::purge_spool`] once they are safe elsewhere.
    pub up_to: u64,
}

/// Un-awaited JetStream acknowledgements allowed at once. `async-nats`
/// allows 5,000 per context, and more deadlocks a publisher.
const MAX_ACKS_IN_FLIGHT: usize = 4096;

/// How long one attempt to store a message waits for its acknowledgement.
const ACK_WAIT: Duration = Duration::from_secs(2);

/// The pause between two attempts to store a message.
const RETRY_PAUSE: Duration = Duration::from_millis(100);

/// Claims retried after losing a compare-and-set before giving up.
const MAX_CLAIM_TRIES: usize = 16;

/// One culex node in the cluster: a cheap handle (clones share it) to two
/// NATS connections and the tasks that keep membership, route messages and
/// answer other nodes.
///
/// # Call order
/// 1. [`Node::connect`]: connects, creates the streams and buckets if they
///    are missing, registers the node (other nodes see [`Event::NodeUp`]),
///    and returns the [`Receivers`] to read from then on.
/// 2. While serving:
///    - every local PUBLISH: deliver locally, then send it once: QoS 0 with
///      [`Node::publish`], QoS 1/2 with [`Node::publish_durable`] (awaited
///      before PUBACK/PUBREC: then it is in `MSGS`); a retained one also
///      [`Node::set_retained`] (awaited before PUBACK);
///    - every local subscription made or removed (also of an offline
///      persistent session): [`Node::add_interest`] /
///      [`Node::remove_interest`] with its filter; the node counts them
///      and subscribes once per distinct subject pattern. Shared filters
///      too: in cluster mode a shared subscription is served through
///      [`Inbound::Shared`] only, local publishers included;
///    - SUBSCRIBE's retained messages: [`Node::retained_matching`];
///    - CONNECT: [`Node::claim`], then [`Node::kick`] the previous owner,
///      then [`Node::read_spool`]/[`Node::purge_spool`] (or [`Node::drain`]);
///      later session changes: [`Node::update_session`] (fails with
///      [`Error::Fenced`] once another node claimed it: close the client);
///      DISCONNECT of a clean session: [`Node::release`];
///    - while a persistent session's client is offline: [`Node::spool`]
///      each QoS 1/2 message routed to it;
///    - [`Event::Connected`] after [`Event::Disconnected`]:
///      [`Node::recover_routed`] from the disconnection (less a margin for
///      clock skew), for the QoS 1/2 messages missed meanwhile;
///    - [`Event::Adopted`] session of a node that crashed: [`Node::replay`]
///      its filters from a time the broker chooses (before the oldest
///      message the dead node may not have delivered), for the QoS 1/2
///      messages it may have lost; some may be delivered twice.
/// 3. [`Node::shutdown`] (a graceful leave), or drop every handle (to
///    other nodes, a crash: they adopt its sessions after
///    [`Options::node_ttl`]).
#[derive(Debug, Clone)]
pub struct Node {
    pub(crate) core: Arc<Core>,
    _tasks: Arc<Tasks>,
}

/// What the background tasks share. They hold this, never [`Node`], so
/// that dropping the last `Node` stops them.
#[derive(Debug)]
pub(crate) struct Core {
    pub(crate) id: NodeId,
    pub(crate) options: Options,
    pub(crate) subjects: Subjects,
    /// Core publishes and ordinary subscriptions: `no_echo`, so a node
    /// never receives its own core messages back (its durable ones, stored
    /// through `main`, do come back: the forwarders drop them).
    pub(crate) route: async_nats::Client,
    /// Queue subscriptions (which must see this node's own messages),
    /// JetStream, control requests.
    pub(crate) main: async_nats::Client,
    pub(crate) js: jetstream::Context,
    pub(crate) nodes: kv::Store,
    pub(crate) sessions: kv::Store,
    pub(crate) retained: stream::Stream,
    pub(crate) spool: stream::Stream,
    /// Durable (QoS 1/2) messages, `NS_MSGS`.
    pub(crate) messages: stream::Stream,
    pub(crate) events: mpsc::Sender<Event>,
    /// What the forwarders share: recovery passes messages on through it.
    pub(crate) routing: Route,
    acks: Semaphore,
    sequence: AtomicU64,
    /// Numbers this node's stream writes, for `Nats-Msg-Id`.
    store_ids: AtomicU64,
    interest: mpsc::UnboundedSender<InterestCommand>,
}

/// Aborts the node's tasks when the last handle goes.
#[derive(Debug)]
struct Tasks(Vec<AbortHandle>);

impl Drop for Tasks {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

impl Node {
    /// Connects to the NATS servers (`nats://host:port`, any of one
    /// cluster) as `node_name`.
    ///
    /// Fails if NATS cannot be reached now (later losses are reported as
    /// [`Event::Disconnected`] and retried), if JetStream is not enabled,
    /// or if a stream or bucket exists with another configuration.
    pub async fn connect<S: AsRef<str>>(
        servers: &[S],
        node_name: &str,
        options: Options,
    ) -> Result<(Node, Receivers)> {
        if !valid_name(node_name, 64) {
            return Err(Error::NodeName(node_name.to_owned()));
        }
        if !valid_name(&options.namespace, 32) {
            return Err(Error::Namespace(options.namespace.clone()));
        }
        let addresses = parse_servers(servers)?;
        let id = NodeId {
            name: node_name.to_owned(),
            incarnation: new_incarnation(),
        };
        let (state_tx, state_rx) = mpsc::unbounded_channel();
        let main = client_options(&options, &id, "main", 0, &state_tx)
            .connect(addresses.clone())
            .await
            .map_err(Error::nats("connecting to nats"))?;
        let route = client_options(&options, &id, "route", 1, &state_tx)
            .no_echo()
            .connect(addresses)
            .await
            .map_err(Error::nats("connecting to nats"))?;
        let replicas = options.replicas.unwrap_or_else(|| default_replicas(&main));
        let js = jetstream::ContextBuilder::new()
            .timeout(options.store_timeout)
            .max_ack_inflight(MAX_ACKS_IN_FLIGHT + 64)
            .build(main.clone());
        let subjects = Subjects::new(&options.namespace);
        let assets = Assets::ensure(&js, &options, &subjects, replicas).await?;

        let (events_tx, events) = mpsc::channel(1024);
        let (inbound_tx, inbound) = mpsc::channel(options.inbound_capacity.max(1));
        let (interest_tx, interest_rx) = mpsc::unbounded_channel();
        let routing = Route::new(&route, &main, &subjects, &id, inbound_tx);
        let core = Arc::new(Core {
            id,
            options,
            subjects,
            route,
            main,
            js,
            nodes: assets.nodes,
            sessions: assets.sessions,
            retained: assets.retained,
            spool: assets.spool,
            messages: assets.messages,
            events: events_tx,
            routing,
            acks: Semaphore::new(MAX_ACKS_IN_FLIGHT),
            sequence: AtomicU64::new(0),
            store_ids: AtomicU64::new(0),
            interest: interest_tx,
        });
        membership::register(&core).await?;
        let control_sub = core
            .main
            .subscribe(core.subjects.control_all(&core.id.name))
            .await
            .map_err(Error::nats("subscribing to control requests"))?;
        let tasks = vec![
            tokio::spawn(connection_state(state_rx, core.events.clone())).abort_handle(),
            tokio::spawn(routing::run(core.routing.clone(), interest_rx)).abort_handle(),
            tokio::spawn(control::serve(core.clone(), control_sub)).abort_handle(),
            tokio::spawn(membership::heartbeat(core.clone())).abort_handle(),
            tokio::spawn(membership::watch(core.clone())).abort_handle(),
        ];
        let node = Node {
            core,
            _tasks: Arc::new(Tasks(tasks)),
        };
        Ok((node, Receivers { inbound, events }))
    }

    /// This node's name and incarnation.
    pub fn id(&self) -> &NodeId {
        &self.core.id
    }

    /// The largest message body NATS accepts; an MQTT PUBLISH must leave
    /// room for the envelope (topic, publisher id, properties): advertise
    /// about 4 KiB less as Maximum Packet Size.
    pub fn max_message_size(&self) -> usize {
        self.core.route.server_info().max_payload
    }

    /// Sends a locally published message to the other nodes with a matching
    /// subscriber (none if there is none). The caller has already delivered
    /// it locally. Returns once the message is handed to the connection;
    /// core NATS is at most once between nodes: for QoS 0. QoS 1/2 messages
    /// go through [`Node::publish_durable`].
    pub async fn publish(&self, message: &Message, publisher: &str) -> Result<()> {
        let subject = self.core.subjects.route(&message.topic)?;
        let body = self.envelope(&subject, message, publisher)?;
        self.core
            .route
            .publish(subject, body)
            .await
            .map_err(Error::nats("publishing to the cluster"))
    }

    /// The envelope of a message this node sends on `subject`, numbered
    /// with the next of the node's sequence numbers (one counter for core
    /// and durable publishes: receivers drop copies by it).
    pub(crate) fn envelope(
        &self,
        subject: &str,
        message: &Message,
        publisher: &str,
    ) -> Result<Bytes> {
        let core = &self.core;
        let sequence = core.sequence.fetch_add(1, Ordering::Relaxed) + 1;
        let body = encode_envelope(&core.id, sequence, publisher, message);
        self.check_size(body.len() + subject.len())?;
        Ok(body)
    }

    /// Counts one more local subscriber of `filter` (`$share/G/F` for a
    /// shared one). The first makes NATS subscriptions: one per subject
    /// pattern (two for `…/#`), shared with other filters that map to the
    /// same pattern; a shared filter makes queue subscriptions in a group
    /// per (G, F). Checks and maps the filter at once; the subscription
    /// itself happens in the background, in call order: await
    /// [`Node::interest_synced`] when it matters.
    pub fn add_interest(&self, filter: &str) -> Result<()> {
        let keys = routing::subscription_keys(&self.core.subjects, filter)?;
        self.send_interest(InterestCommand::Add(filter.to_owned(), keys))
    }

    /// Counts one local subscriber of `filter` less; the last one removes
    /// the NATS subscriptions no other filter needs.
    pub fn remove_interest(&self, filter: &str) -> Result<()> {
        self.send_interest(InterestCommand::Remove(filter.to_owned()))
    }

    /// Waits until every earlier interest change reached this node's NATS
    /// server. Other servers of the NATS cluster learn of it a moment
    /// later (a route hop).
    pub async fn interest_synced(&self) -> Result<()> {
        let (tx, rx) = oneshot::channel();
        self.send_interest(InterestCommand::Sync(tx))?;
        rx.await.map_err(Error::nats("waiting for interest"))?
    }

    pub(crate) fn send_interest(&self, command: InterestCommand) -> Result<()> {
        self.core.interest.send(command).map_err(|_| Error::Nats {
            operation: "changing interest",
            source: "node tasks stopped".into(),
        })
    }

    /// Stores `message` as the retained message of its topic, or clears it
    /// when the payload is empty. Returns once JetStream acknowledged it
    /// (replicated to a majority): answer the PUBLISH after that.
    pub async fn set_retained(&self, message: &Message) -> Result<()> {
        let core = &self.core;
        let subject = core.subjects.retained(&message.topic)?;
        if message.payload.is_empty() {
            core.retained
                .purge()
                .filter(subject)
                .await
                .map_err(Error::nats("clearing a retained message"))?;
            return Ok(());
        }
        let record = message.encode();
        self.check_size(record.len() + subject.len())?;
        self.store(subject, record, "storing a retained message")
            .await
            .map(drop)
    }

    /// The retained message of exactly `topic`, if any.
    pub async fn get_retained(&self, topic: &str) -> Result<Option<Message>> {
        let subject = self.core.subjects.retained(topic)?;
        match self
            .core
            .retained
            .direct_get_last_for_subject(subject)
            .await
        {
            Ok(stored) => Ok(Some(Message::decode(stored.payload)?)),
            Err(err) if err.kind() == stream::DirectGetErrorKind::NotFound => Ok(None),
            Err(err) => Err(Error::nats("reading a retained message")(err)),
        }
    }

    /// Every retained message whose topic matches `filter` (MQTT rules; a
    /// `$share/G/` prefix is ignored), in stream order. One short-lived
    /// ordered consumer; no copy of the retained set is kept on the node.
    pub async fn retained_matching(&self, filter: &str) -> Result<Vec<Message>> {
        let filters = self.core.subjects.retained_filters(filter)?;
        let found = scan(
            &self.core.retained,
            filters,
            true,
            self.core.options.store_timeout,
        )
        .await?;
        found
            .into_iter()
            .map(|stored| Message::decode(stored.payload).map_err(Error::from))
            .collect()
    }

    /// Takes ownership of `client_id`'s session for this node: the record
    /// is stored with owner = this node and epoch = previous epoch + 1, by
    /// compare-and-set, retried on conflict, so that of two concurrent
    /// claims both succeed in turn and the later one wins (the newest
    /// connection wins). The earlier owner's later writes fail with
    /// [`Error::Fenced`]. Then [`Node::kick`] the previous owner.
    pub async fn claim(&self, client_id: &str, mut record: SessionRecord) -> Result<Claim> {
        let core = &self.core;
        let key = session_key(client_id);
        record.client_id = client_id.to_owned();
        record.owner = core.id.clone();
        for _ in 0..MAX_CLAIM_TRIES {
            let entry = core
                .sessions
                .entry(key.as_str())
                .await
                .map_err(Error::nats("reading a session"))?;
            let stored = match entry {
                Some(entry) if entry.operation == kv::Operation::Put => {
                    // A record this version cannot read is overwritten.
                    SessionRecord::decode(entry.value)
                        .ok()
                        .map(|previous| (previous, entry.revision))
                }
                _ => None,
            };
            let written = match stored {
                Some((previous, revision)) => {
                    record.epoch = previous.epoch + 1;
                    match core.sessions.update(&key, record.encode(), revision).await {
                        Ok(revision) => Some((Some(previous), revision)),
                        Err(err) if err.kind() == kv::UpdateErrorKind::WrongLastRevision => None,
                        Err(err) => return Err(Error::nats("claiming a session")(err)),
                    }
                }
                None => {
                    record.epoch = 1;
                    match core.sessions.create(&key, record.encode()).await {
                        Ok(revision) => Some((None, revision)),
                        Err(err) if err.kind() == kv::CreateErrorKind::AlreadyExists => None,
                        Err(err) => return Err(Error::nats("claiming a session")(err)),
                    }
                }
            };
            if let Some((previous, revision)) = written {
                return Ok(Claim {
                    previous,
                    record,
                    revision,
                });
            }
        }
        Err(Error::Contended)
    }

    /// Writes a session this node owns (subscriptions changed, client went
    /// offline, …) if it is still at `revision`; returns the new revision.
    /// [`Error::Fenced`] means another node claimed it meanwhile.
    pub async fn update_session(&self, record: &SessionRecord, revision: u64) -> Result<u64> {
        let key = session_key(&record.client_id);
        match self
            .core
            .sessions
            .update(&key, record.encode(), revision)
            .await
        {
            Ok(revision) => Ok(revision),
            Err(err) if err.kind() == kv::UpdateErrorKind::WrongLastRevision => Err(Error::Fenced),
            Err(err) => Err(Error::nats("updating a session")(err)),
        }
    }

    /// Deletes a session this node owns at `revision` (a clean session
    /// ended, or an expired one); [`Error::Fenced`] if another node claimed
    /// it meanwhile, in which case it is theirs and stays.
    pub async fn release(&self, client_id: &str, revision: u64) -> Result<()> {
        let key = session_key(client_id);
        match self
            .core
            .sessions
            .delete_expect_revision(&key, Some(revision))
            .await
        {
            Ok(()) => Ok(()),
            Err(err) if err.kind() == kv::UpdateErrorKind::WrongLastRevision => Err(Error::Fenced),
            Err(err) => Err(Error::nats("releasing a session")(err)),
        }
    }

    /// The stored session of `client_id` and its revision, if any.
    pub async fn session(&self, client_id: &str) -> Result<Option<(SessionRecord, u64)>> {
        let entry = self
            .core
            .sessions
            .entry(session_key(client_id))
            .await
            .map_err(Error::nats("reading a session"))?;
        match entry {
            Some(entry) if entry.operation == kv::Operation::Put => {
                Ok(Some((SessionRecord::decode(entry.value)?, entry.revision)))
            }
            _ => Ok(None),
        }
    }

    /// Asks the previous owner of a claimed session to close its client's
    /// connection, and returns what it handed over. A claim with no
    /// previous owner is [`KickOutcome::NotConnected`] at once; a previous
    /// owner that is this node gets an [`Event::Kick`] like any other.
    pub async fn kick(&self, claim: &Claim) -> Result<KickOutcome> {
        let Some(owner) = claim.previous_owner() else {
            return Ok(KickOutcome::NotConnected);
        };
        let core = &self.core;
        let body = KickBody {
            client_id: claim.record.client_id.clone(),
            target_incarnation: owner.incarnation,
            by: core.id.clone(),
            epoch: claim.record.epoch,
        };
        let request = async_nats::Request::new()
            .payload(body.encode())
            .timeout(Some(core.options.kick_timeout));
        let subject = core.subjects.control(&owner.name, control::KICK);
        match core.main.send_request(subject, request).await {
            Ok(reply) => Ok(KickReply::decode(reply.payload)?),
            Err(err)
                if matches!(
                    err.kind(),
                    async_nats::RequestErrorKind::NoResponders
                        | async_nats::RequestErrorKind::TimedOut
                ) =>
            {
                Ok(KickOutcome::Unreachable)
            }
            Err(err) => Err(Error::nats("kicking the previous owner")(err)),
        }
    }

    /// Appends a message to `client_id`'s offline queue (stream `SQ`, one
    /// subject per session). Returns once JetStream acknowledged it.
    pub async fn spool(&self, client_id: &str, message: &Message) -> Result<()> {
        let subject = self.core.subjects.spool(&session_key(client_id));
        let record = message.encode();
        self.check_size(record.len() + subject.len())?;
        self.store(subject, record, "spooling a message")
            .await
            .map(drop)
    }

    /// Reads `client_id`'s offline queue, oldest first, without removing it.
    pub async fn read_spool(&self, client_id: &str) -> Result<Spool> {
        let subject = self.core.subjects.spool(&session_key(client_id));
        let found = scan(
            &self.core.spool,
            vec![subject],
            false,
            self.core.options.store_timeout,
        )
        .await?;
        let mut spool = Spool {
            messages: Vec::with_capacity(found.len()),
            up_to: 0,
        };
        for stored in found {
            spool.up_to = spool.up_to.max(stored.sequence);
            spool.messages.push(Message::decode(stored.payload)?);
        }
        Ok(spool)
    }

    /// Removes `client_id`'s spooled messages up to stream sequence `up_to`
    /// (from [`Spool::up_to`]); later ones stay.
    pub async fn purge_spool(&self, client_id: &str, up_to: u64) -> Result<()> {
        if up_to == 0 {
            return Ok(());
        }
        let subject = self.core.subjects.spool(&session_key(client_id));
        self.core
            .spool
            .purge()
            .filter(subject)
            .sequence(up_to + 1)
            .await
            .map_err(Error::nats("purging an offline queue"))?;
        Ok(())
    }

    /// [`Node::read_spool`] then [`Node::purge_spool`]: the messages are
    /// the caller's to keep from now on.
    pub async fn drain(&self, client_id: &str) -> Result<Vec<Message>> {
        let spool = self.read_spool(client_id).await?;
        self.purge_spool(client_id, spool.up_to).await?;
        Ok(spool.messages)
    }

    /// Leaves the cluster: stops the node's tasks, deletes its membership
    /// key (other nodes see [`Event::NodeDown`] at once and adopt the
    /// sessions it still owns: release or update them first) and flushes
    /// both connections. Other clones of this handle stop working.
    pub async fn shutdown(self) -> Result<()> {
        let Node { core, _tasks } = self;
        drop(_tasks);
        let leave = core
            .nodes
            .delete(membership::key(&core.id.name))
            .await
            .map_err(Error::nats("leaving the cluster"));
        let _ = core.route.drain().await;
        let _ = core.main.drain().await;
        leave
    }

    pub(crate) fn check_size(&self, size: usize) -> Result<()> {
        let max = self.max_message_size();
        if size > max {
            return Err(Error::TooLarge { size, max });
        }
        Ok(())
    }

    /// Publishes to a stream and waits for the acknowledgement, holding one
    /// of the node's acknowledgement permits meanwhile.
    ///
    /// A publish that reached a stream leader which then died is never
    /// acknowledged; so each attempt waits [`ACK_WAIT`], and attempts are
    /// repeated until [`Options::store_timeout`] with one `Nats-Msg-Id`, by
    /// which the stream stores the message once however often it arrives
    /// (within its two-minute duplicate window).
    pub(crate) async fn store(
        &self,
        subject: String,
        record: Bytes,
        operation: &'static str,
    ) -> Result<u64> {
        let core = &self.core;
        let _permit = core.acks.acquire().await.map_err(Error::nats(operation))?;
        let id = format!(
            "{}-{}-{}",
            core.id.name,
            core.id.incarnation,
            core.store_ids.fetch_add(1, Ordering::Relaxed)
        );
        let deadline = tokio::time::Instant::now() + core.options.store_timeout;
        loop {
            let mut headers = async_nats::HeaderMap::new();
            headers.insert("Nats-Msg-Id", id.as_str());
            let attempt = async {
                core.js
                    .publish_with_headers(subject.clone(), headers, record.clone())
                    .await?
                    .await
            };
            let error = match tokio::time::timeout(ACK_WAIT, attempt).await {
                Ok(Ok(ack)) => return Ok(ack.sequence),
                Ok(Err(err))
                    if err.kind() == jetstream::context::PublishErrorKind::MaxPayloadExceeded =>
                {
                    return Err(Error::nats(operation)(err));
                }
                Ok(Err(err)) => Error::nats(operation)(err),
                Err(elapsed) => Error::nats(operation)(elapsed),
            };
            if tokio::time::Instant::now() + RETRY_PAUSE >= deadline {
                return Err(error);
            }
            tokio::time::sleep(RETRY_PAUSE).await;
        }
    }
}

/// The streams and buckets of one namespace.
struct Assets {
    nodes: kv::Store,
    sessions: kv::Store,
    retained: stream::Stream,
    spool: stream::Stream,
    messages: stream::Stream,
}

impl Assets {
    /// Opens them, creating those that are missing (concurrent creation by
    /// several nodes with the same configuration is harmless).
    async fn ensure(
        js: &jetstream::Context,
        options: &Options,
        subjects: &Subjects,
        replicas: usize,
    ) -> Result<Assets> {
        let ns = &options.namespace;
        let nodes = bucket(
            js,
            kv::Config {
                bucket: format!("{ns}_NODES"),
                description: "culex cluster membership".to_owned(),
                history: 1,
                max_age: options.node_ttl,
                storage: stream::StorageType::Memory,
                num_replicas: replicas,
                ..Default::default()
            },
        )
        .await?;
        let sessions = bucket(
            js,
            kv::Config {
                bucket: format!("{ns}_SESS"),
                description: "culex sessions and client-id owners".to_owned(),
                history: 1,
                storage: stream::StorageType::File,
                num_replicas: replicas,
                ..Default::default()
            },
        )
        .await?;
        let retained = js
            .get_or_create_stream(stream::Config {
                name: format!("{ns}_RET"),
                description: Some("culex retained messages".to_owned()),
                subjects: vec![subjects.retained_all()],
                max_messages_per_subject: 1,
                storage: stream::StorageType::File,
                num_replicas: replicas,
                allow_direct: true,
                ..Default::default()
            })
            .await
            .map_err(Error::nats("creating the retained stream"))?;
        let spool = js
            .get_or_create_stream(stream::Config {
                name: format!("{ns}_SQ"),
                description: Some("culex offline queues".to_owned()),
                subjects: vec![subjects.spool_all()],
                max_messages_per_subject: options.spool_limit,
                discard: stream::DiscardPolicy::Old,
                storage: stream::StorageType::File,
                num_replicas: replicas,
                allow_direct: true,
                ..Default::default()
            })
            .await
            .map_err(Error::nats("creating the offline-queue stream"))?;
        let messages = js
            .get_or_create_stream(durable::stream_config(options, subjects, replicas))
            .await
            .map_err(Error::nats("creating the durable message stream"))?;
        Ok(Assets {
            nodes,
            sessions,
            retained,
            spool,
            messages,
        })
    }
}

async fn bucket(js: &jetstream::Context, config: kv::Config) -> Result<kv::Store> {
    if let Ok(store) = js.get_key_value(config.bucket.as_str()).await {
        return Ok(store);
    }
    let name = config.bucket.clone();
    match js.create_key_value(config).await {
        Ok(store) => Ok(store),
        // Another node may have created it in between.
        Err(err) => js
            .get_key_value(name)
            .await
            .map_err(|_| Error::nats("creating a bucket")(err)),
    }
}

/// A message read back from a stream.
pub(crate) struct Stored {
    pub(crate) subject: String,
    pub(crate) sequence: u64,
    pub(crate) payload: Bytes,
    /// A KV delete or purge marker.
    pub(crate) deleted: bool,
}

/// Reads the messages of `filters` with a short-lived ordered consumer:
/// the last per subject, or all of them, until none is pending.
pub(crate) async fn scan(
    stream: &stream::Stream,
    filters: Vec<String>,
    last_per_subject: bool,
    timeout: Duration,
) -> Result<Vec<Stored>> {
    let deliver = if last_per_subject {
        consumer::DeliverPolicy::LastPerSubject
    } else {
        consumer::DeliverPolicy::All
    };
    let mut scan = Scan::open(stream, filters, deliver, timeout).await?;
    let mut found = Vec::new();
    while let Some(stored) = scan.next().await? {
        found.push(stored);
    }
    Ok(found)
}

/// A short-lived ordered consumer that reads the messages of some subjects
/// from a starting point until none is pending, one at a time.
pub(crate) struct Scan {
    /// `None` once nothing is pending.
    messages: Option<consumer::pull::Ordered>,
    timeout: Duration,
}

impl Scan {
    /// Creates the consumer, retried while the stream elects a leader.
    pub(crate) async fn open(
        stream: &stream::Stream,
        filters: Vec<String>,
        deliver_policy: consumer::DeliverPolicy,
        timeout: Duration,
    ) -> Result<Scan> {
        let mut config = consumer::pull::OrderedConfig {
            deliver_policy,
            ..Default::default()
        };
        if filters.len() == 1 {
            config.filter_subject = filters.into_iter().next().unwrap_or_default();
        } else {
            config.filter_subjects = filters;
        }
        let consumer = ordered_consumer(stream, config, timeout).await?;
        let messages = if consumer.cached_info().num_pending == 0 {
            None
        } else {
            let messages = consumer.messages().await;
            Some(messages.map_err(Error::nats("starting a scan"))?)
        };
        Ok(Scan { messages, timeout })
    }

    /// A scan that reads nothing.
    pub(crate) fn empty(timeout: Duration) -> Scan {
        Scan {
            messages: None,
            timeout,
        }
    }

    /// The next message, or `None` once none was pending.
    pub(crate) async fn next(&mut self) -> Result<Option<Stored>> {
        let Some(messages) = &mut self.messages else {
            return Ok(None);
        };
        let next = tokio::time::timeout(self.timeout, messages.next())
            .await
            .map_err(Error::nats("scanning a stream"))?;
        let Some(message) = next else {
            self.messages = None;
            return Ok(None);
        };
        let message = message.map_err(Error::nats("scanning a stream"))?;
        let info = message.info().map_err(|err| Error::Nats {
            operation: "scanning a stream",
            source: err,
        })?;
        let (sequence, pending) = (info.stream_sequence, info.pending);
        let deleted = message
            .headers
            .as_ref()
            .and_then(|headers| headers.get("KV-Operation"))
            .is_some_and(|op| op.as_str() != "PUT");
        if pending == 0 {
            self.messages = None;
        }
        Ok(Some(Stored {
            subject: message.subject.to_string(),
            sequence,
            payload: message.payload.clone(),
            deleted,
        }))
    }

    /// Whether every message that was pending has been read.
    pub(crate) fn finished(&self) -> bool {
        self.messages.is_none()
    }
}

/// The stream sequence an unfiltered consumer starting by `deliver_policy`
/// would deliver first, if there is such a message. The consumer is
/// created for its starting point only, and deleted.
pub(crate) async fn first_sequence(
    stream: &stream::Stream,
    deliver_policy: consumer::DeliverPolicy,
    timeout: Duration,
) -> Result<Option<u64>> {
    let config = consumer::pull::OrderedConfig {
        deliver_policy,
        ..Default::default()
    };
    let consumer = ordered_consumer(stream, config, timeout).await?;
    let info = consumer.cached_info();
    let first = (info.num_pending > 0).then_some(info.delivered.stream_sequence + 1);
    if let Err(err) = stream.delete_consumer(&info.name).await {
        // It expires on its own after a while.
        tracing::debug!("cluster: cannot delete a probe consumer: {err}");
    }
    Ok(first)
}

/// Creates an ordered consumer. Creation fails while the stream elects a
/// leader: try again, a short wait each time, until the timeout.
async fn ordered_consumer(
    stream: &stream::Stream,
    config: consumer::pull::OrderedConfig,
    timeout: Duration,
) -> Result<consumer::Consumer<consumer::pull::OrderedConfig>> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let created = tokio::time::timeout(ACK_WAIT, stream.create_consumer(config.clone()));
        let error = match created.await {
            Ok(Ok(consumer)) => return Ok(consumer),
            Ok(Err(err)) => Error::nats("creating a scan")(err),
            Err(elapsed) => Error::nats("creating a scan")(elapsed),
        };
        if tokio::time::Instant::now() + RETRY_PAUSE >= deadline {
            return Err(error);
        }
        tokio::time::sleep(RETRY_PAUSE).await;
    }
}

/// Turns the two connections' events into one connected/disconnected state.
async fn connection_state(
    mut changes: mpsc::UnboundedReceiver<(usize, async_nats::Event)>,
    events: mpsc::Sender<Event>,
) {
    let mut up = [true, true];
    while let Some((connection, event)) = changes.recv().await {
        let was_up = up.iter().all(|&u| u);
        let Some(slot) = up.get_mut(connection) else {
            continue;
        };
        match event {
            async_nats::Event::Connected => *slot = true,
            async_nats::Event::Disconnected | async_nats::Event::Closed => *slot = false,
            other => {
                tracing::info!("cluster: nats connection {connection}: {other}");
                continue;
            }
        }
        let is_up = up.iter().all(|&u| u);
        let change = match (was_up, is_up) {
            (true, false) => Event::Disconnected,
            (false, true) => Event::Connected,
            _ => continue,
        };
        if events.send(change).await.is_err() {
            return;
        }
    }
}

fn client_options(
    options: &Options,
    id: &NodeId,
    role: &str,
    index: usize,
    state: &mpsc::UnboundedSender<(usize, async_nats::Event)>,
) -> async_nats::ConnectOptions {
    let state = state.clone();
    async_nats::ConnectOptions::new()
        .name(format!("culex-{}-{role}", id.name))
        .ping_interval(options.ping_interval)
        .connection_timeout(options.store_timeout)
        .request_timeout(Some(options.store_timeout))
        .event_callback(move |event| {
            let _ = state.send((index, event));
            std::future::ready(())
        })
}

/// 3 when the NATS server is part of a cluster, 1 otherwise.
fn default_replicas(client: &async_nats::Client) -> usize {
    if client.server_info().cluster.is_some() {
        3
    } else {
        1
    }
}

fn parse_servers<S: AsRef<str>>(servers: &[S]) -> Result<Vec<async_nats::ServerAddr>> {
    if servers.is_empty() {
        return Err(Error::Address(String::new()));
    }
    servers
        .iter()
        .map(|server| {
            let server = server.as_ref();
            server
                .parse()
                .map_err(|_| Error::Address(server.to_owned()))
        })
        .collect()
}

pub(crate) fn valid_name(name: &str, max: usize) -> bool {
    !name.is_empty()
        && name.len() <= max
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Microseconds since the epoch: different for every start of a node.
fn new_incarnation() -> u64 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    u64::try_from(now.as_micros()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        assert!(valid_name("node-1_A", 64));
        for bad in ["", "a.b", "a b", "a*", "é", &"x".repeat(65)] {
            assert!(!valid_name(bad, 64), "{bad:?}");
        }
        assert!(parse_servers::<&str>(&[]).is_err());
        assert!(parse_servers(&["nats://127.0.0.1:4222"]).is_ok());
    }
}
