//! The sans-IO session core: what one client's session holds between and
//! during its connections, and the QoS flows in both directions.
//!
//! It never touches a socket or a clock: time comes in as `now`. The runtime
//! calls, in any order:
//! - [`Session::attach`] when a connection takes the session (re-queues every
//!   unacknowledged message with DUP set, then fills the window) and
//!   [`Session::detach`] when it goes;
//! - [`Session::deliver`] for each message routed to the client;
//! - [`Session::puback`], [`Session::pubrec`], [`Session::pubcomp`] for the
//!   client's acknowledgements, and [`Session::receive_qos2`] /
//!   [`Session::release_qos2`] for its own QoS 2 publishes;
//! - [`Session::take_ready`] to collect the packets to write now.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use culex_codec::{PacketId, QoS, SubscriptionOptions};

use super::compact::Moment;
use super::drops::{DropLog, DropReason, Drops};
use super::lazy::Lazy;
use super::message::Message;
use super::store::OutboundState;

/// One message on its way to one subscriber.
///
/// Kept to 24 bytes: a delivery is written by the publisher's thread and
/// read by the subscriber's, in its queue, window and ready list, so its
/// size is cache traffic per message per subscriber. What few deliveries
/// carry is behind `extra`.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The shared message.
    pub msg: Arc<Message>,
    /// QoS of this delivery: the lower of the publish and subscription QoS.
    pub qos: QoS,
    /// The RETAIN flag to send.
    pub retain: bool,
    /// Subscription identifiers and shared group; `None` when it has neither.
    extra: Option<Arc<DeliveryExtra>>,
}

/// What a delivery through a shared group or a subscription with an
/// identifier carries besides the message.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct DeliveryExtra {
    /// 5.0 subscription identifiers of every matching subscription.
    subscription_ids: Vec<u32>,
    /// The `$share/GROUP/FILTER` it was delivered through, if shared.
    share: Option<Arc<str>>,
}

impl DeliveryExtra {
    /// The extras of deliveries through subscriptions with
    /// `subscription_ids`, and through the shared group `share` if any;
    /// `None` when there are neither.
    pub fn new(subscription_ids: Vec<u32>, share: Option<Arc<str>>) -> Option<Arc<DeliveryExtra>> {
        (!subscription_ids.is_empty() || share.is_some()).then(|| {
            Arc::new(DeliveryExtra {
                subscription_ids,
                share,
            })
        })
    }
}

impl Delivery {
    /// A delivery with no subscription identifier, outside shared groups.
    pub fn new(msg: Arc<Message>, qos: QoS, retain: bool) -> Delivery {
        Delivery {
            msg,
            qos,
            retain,
            extra: None,
        }
    }

    /// A delivery through subscriptions with `subscription_ids`, and through
    /// the shared group `share` if any.
    pub fn with(
        msg: Arc<Message>,
        qos: QoS,
        retain: bool,
        subscription_ids: Vec<u32>,
        share: Option<Arc<str>>,
    ) -> Delivery {
        let extra = DeliveryExtra::new(subscription_ids, share);
        Delivery::with_extra(msg, qos, retain, extra)
    }

    /// A delivery with extras made once for many deliveries (see
    /// [`DeliveryExtra::new`]).
    pub fn with_extra(
        msg: Arc<Message>,
        qos: QoS,
        retain: bool,
        extra: Option<Arc<DeliveryExtra>>,
    ) -> Delivery {
        Delivery {
            msg,
            qos,
            retain,
            extra,
        }
    }

    /// 5.0 subscription identifiers of every matching subscription.
    pub fn subscription_ids(&self) -> &[u32] {
        self.extra
            .as_deref()
            .map_or(&[], |e| e.subscription_ids.as_slice())
    }

    /// The `$share/GROUP/FILTER` it was delivered through, if shared.
    pub fn share(&self) -> Option<&Arc<str>> {
        self.extra.as_deref().and_then(|e| e.share.as_ref())
    }
}

/// A packet the session wants written to its client.
#[derive(Debug, Clone)]
pub enum Outgoing {
    /// A PUBLISH; `packet_id` is set for QoS 1 and 2.
    Publish {
        /// The id, for QoS 1 and 2.
        packet_id: Option<PacketId>,
        /// Whether this is a re-delivery [MQTT-3.3.1-1].
        dup: bool,
        /// The message and how to send it.
        delivery: Delivery,
    },
    /// A PUBREL for an outbound QoS 2 message whose PUBREC arrived.
    PubRel(PacketId),
}

/// A change to a session's durable state, journaled for the
/// [`super::store::Store`] when [`Session::set_journaling`] is on.
#[derive(Debug, Clone)]
pub enum Change {
    /// A message was added to the back of the queue.
    Queued(Delivery),
    /// The message at the front of the queue left it (sent or expired).
    Dequeued,
    /// An outbound QoS 1/2 message changed state (`None`: completed or abandoned).
    Outbound(PacketId, Option<OutboundState>),
    /// An outbound QoS 1/2 message was sent and awaits PUBACK/PUBREC; the
    /// delivery lets a durable store re-send it after a restart.
    Sent(PacketId, Delivery),
    /// An inbound QoS 2 id was received (`true`) or released (`false`).
    Inbound(PacketId, bool),
}

/// What a session hands to another node ([`Session::export`]).
#[derive(Debug, Default)]
pub struct Exported {
    /// Unacknowledged outbound messages: id, delivery, state.
    pub outbound: Vec<(PacketId, Delivery, OutboundState)>,
    /// Queued messages, oldest first.
    pub queued: Vec<Delivery>,
    /// Inbound QoS 2 ids awaiting PUBREL.
    pub inbound_qos2: Vec<PacketId>,
}

/// What happened to a delivery handed to [`Session::deliver`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivered {
    /// Ready to be written: wake the connection.
    Ready,
    /// Kept in the session's queue (offline, or the in-flight window is full).
    Queued,
    /// Dropped (and recorded in the session's [`DropLog`]): the queue is
    /// full, QoS 0 while offline or stalled, or expired.
    Dropped,
}

/// A connected subscriber that took no packet and acknowledged nothing for
/// this long is stalled: publishers stop waiting for it and its overflow is
/// dropped, as mosquitto does.
pub const STALL_AFTER: Duration = Duration::from_millis(500);

/// The backlog at which publishers are paused when `max_queued_messages` is
/// unlimited.
const UNLIMITED_PAUSE_AT: usize = 750;

/// Limits a session runs under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionLimits {
    /// Most unacknowledged outbound QoS 1/2 messages (`max_inflight_messages`).
    pub max_inflight: u16,
    /// Most messages waiting in the queue (`max_queued_messages`), `None`: no limit.
    pub max_queued: Option<usize>,
    /// Most payload bytes waiting in the queue (`max_queued_bytes`), `None`: no limit.
    pub max_queued_bytes: Option<usize>,
}

impl Default for SessionLimits {
    fn default() -> Self {
        SessionLimits {
            max_inflight: 20,
            max_queued: Some(1000),
            max_queued_bytes: None,
        }
    }
}

/// A subscription as the session remembers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubscriptionEntry {
    /// The options granted.
    pub options: SubscriptionOptions,
    /// The 5.0 subscription identifier.
    pub id: Option<u32>,
}

#[derive(Debug, Clone)]
struct InFlight {
    packet_id: PacketId,
    delivery: Delivery,
    state: OutboundState,
}

/// Why an acknowledgement was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AckError {
    /// No message with that packet id is waiting for this acknowledgement.
    #[error("packet identifier not found")]
    NotFound,
}

/// One client's session. See the module docs for the call order.
#[derive(Debug)]
pub struct Session {
    // The limits, flattened so that the small fields pack (an idle
    // client's session handle must stay in its allocation class).
    max_inflight: u16,
    /// `u32::MAX`: no limit.
    max_queued: u32,
    /// `u64::MAX`: no limit.
    max_queued_bytes: u64,
    /// The client's Receive Maximum (5.0), capping the window further.
    client_receive_maximum: u16,
    connected: bool,
    next_id: u16,
    // The collections are `Lazy`: an idle session allocates none of them.
    /// Unacknowledged outbound messages, oldest first. Their packet ids are
    /// in allocation order unless `ids_unordered` (restored from a store).
    inflight: Lazy<VecDeque<InFlight>>,
    ids_unordered: bool,
    queue: Lazy<VecDeque<Delivery>>,
    ready: Lazy<VecDeque<Outgoing>>,
    ready_qos0: usize,
    /// Payload bytes of the QoS 0 messages in `ready`.
    ready_qos0_bytes: usize,
    incoming_qos2: Lazy<HashSet<PacketId>>,
    drops: DropLog,
    /// A limit dropped a message since the backlog last drained: the
    /// runtime logs the first drop of each such spell.
    dropping: bool,
    drop_notice: bool,
    queued_bytes: usize,
    /// When the connection last took a packet or acknowledged one.
    last_progress: Moment,
    /// Boxed: most sessions journal nothing, and `None` is then 8 bytes.
    #[allow(clippy::box_collection)]
    journal: Option<Box<Vec<Change>>>,
    /// Subscriptions by filter (as written, `$share/…` included): the
    /// session's copy of what the core keeps in the tree and the store.
    subscriptions: Lazy<HashMap<String, SubscriptionEntry>>,
}

impl Session {
    /// A new, empty, detached session.
    pub fn new(limits: SessionLimits) -> Session {
        Session {
            max_inflight: limits.max_inflight,
            max_queued: limits
                .max_queued
                .map_or(u32::MAX, |m| u32::try_from(m).unwrap_or(u32::MAX - 1)),
            max_queued_bytes: limits
                .max_queued_bytes
                .map_or(u64::MAX, |m| u64::try_from(m).unwrap_or(u64::MAX - 1)),
            client_receive_maximum: u16::MAX,
            connected: false,
            next_id: 1,
            inflight: Lazy::new(),
            ids_unordered: false,
            queue: Lazy::new(),
            ready: Lazy::new(),
            ready_qos0: 0,
            ready_qos0_bytes: 0,
            incoming_qos2: Lazy::new(),
            drops: DropLog::default(),
            dropping: false,
            drop_notice: false,
            queued_bytes: 0,
            last_progress: Moment::NONE,
            journal: None,
            subscriptions: Lazy::new(),
        }
    }

    /// Records a subscription (the core adds it to the tree and the store).
    pub fn subscribe(&mut self, filter: String, entry: SubscriptionEntry) {
        self.subscriptions.insert(filter, entry);
    }

    /// Forgets a subscription; `true` when it existed.
    pub fn unsubscribe(&mut self, filter: &str) -> bool {
        self.subscriptions.remove(filter).is_some()
    }

    /// The session's subscriptions, filter and entry.
    pub fn subscriptions(&self) -> impl Iterator<Item = (&str, &SubscriptionEntry)> {
        self.subscriptions.iter().map(|(f, e)| (f.as_str(), e))
    }

    /// Takes every subscription's filter (the session ends or starts clean).
    pub fn take_subscriptions(&mut self) -> Vec<String> {
        self.subscriptions.drain().map(|(f, _)| f).collect()
    }

    /// Whether a connection holds the session.
    pub fn is_attached(&self) -> bool {
        self.connected
    }

    /// A connection takes the session: unacknowledged messages are queued for
    /// re-sending first, in their original order, PUBLISH with DUP set or
    /// PUBREL [MQTT-4.4.0-1], then queued messages fill the window.
    pub fn attach(&mut self, client_receive_maximum: u16, now: Instant) {
        self.connected = true;
        self.last_progress = Moment::at(now);
        self.client_receive_maximum = client_receive_maximum.max(1);
        self.ready.clear();
        self.ready_qos0 = 0;
        self.ready_qos0_bytes = 0;
        for f in self.inflight.iter() {
            self.ready.push_back(match f.state {
                OutboundState::AwaitingAck => Outgoing::Publish {
                    packet_id: Some(f.packet_id),
                    dup: true,
                    delivery: f.delivery.clone(),
                },
                OutboundState::AwaitingComp => Outgoing::PubRel(f.packet_id),
            });
        }
        self.fill(now);
    }

    /// The connection went away; in-flight and queued messages stay, QoS 0
    /// messages not yet written are lost.
    pub fn detach(&mut self) {
        self.connected = false;
        self.ready.clear();
        self.ready_qos0 = 0;
        self.ready_qos0_bytes = 0;
    }

    /// Resets everything but the limits (a clean start on an old session).
    pub fn clear(&mut self) {
        let limits = self.limits();
        let journaling = self.journal.is_some();
        *self = Session::new(limits);
        self.set_journaling(journaling);
    }

    /// Turns the journal of durable changes on or off (on only for sessions
    /// that outlive their connection, with a durable store).
    pub fn set_journaling(&mut self, on: bool) {
        self.journal = if on {
            Some(self.journal.take().unwrap_or_default())
        } else {
            None
        };
    }

    /// The durable changes since the last call, oldest first.
    pub fn take_changes(&mut self) -> Vec<Change> {
        match &mut self.journal {
            Some(j) => std::mem::take(&mut **j),
            None => Vec::new(),
        }
    }

    fn record(&mut self, change: impl FnOnce() -> Change) {
        if let Some(j) = &mut self.journal {
            j.push(change());
        }
    }

    /// Hands one message to the session.
    pub fn deliver(&mut self, delivery: Delivery, now: Instant) -> Delivered {
        self.admit(delivery, now, true)
    }

    /// Hands over a retained message sent because of a new subscription
    /// [MQTT-3.3.1-6]. The queue limits do not drop it: they bound live
    /// traffic, and the burst is bounded by the retained messages there are
    /// (their payloads are shared with the retained store). It is paced by
    /// the in-flight window and the connection like any other.
    pub fn deliver_retained(&mut self, delivery: Delivery, now: Instant) -> Delivered {
        self.admit(delivery, now, false)
    }

    fn admit(&mut self, delivery: Delivery, now: Instant, limited: bool) -> Delivered {
        if delivery.msg.is_expired(now) {
            self.drops.record(DropReason::Expired);
            return Delivered::Dropped;
        }
        let size = delivery.msg.payload.len();
        if delivery.qos == QoS::AtMostOnce {
            // QoS 0 is never queued for an offline client, and dropped when
            // the connection cannot keep up (mosquitto's overflow rule).
            if !self.connected {
                self.drops.record(DropReason::Qos0Offline);
                return Delivered::Dropped;
            }
            if limited && self.over_limits(self.ready_qos0, self.ready_qos0_bytes, size) {
                let reason = if self.is_draining(now) {
                    DropReason::QueueFull
                } else {
                    DropReason::Qos0Stalled
                };
                return self.drop_for_limits(reason);
            }
            self.ready_qos0 = self.ready_qos0.saturating_add(1);
            self.ready_qos0_bytes = self.ready_qos0_bytes.saturating_add(size);
            self.ready.push_back(Outgoing::Publish {
                packet_id: None,
                dup: false,
                delivery,
            });
            return Delivered::Ready;
        }
        if self.connected && self.queue.is_empty() && self.inflight.len() < self.window() {
            if let Some(id) = self.alloc_id() {
                self.start_flight(id, delivery);
                return Delivered::Ready;
            }
        }
        if limited && self.over_limits(self.queue.len(), self.queued_bytes, size) {
            return self.drop_for_limits(DropReason::QueueFull);
        }
        self.record(|| Change::Queued(delivery.clone()));
        self.queued_bytes = self.queued_bytes.saturating_add(size);
        self.queue.push_back(delivery);
        Delivered::Queued
    }

    /// Whether one more message of `size` bytes would pass
    /// `max_queued_messages` or `max_queued_bytes`, given what waits.
    fn over_limits(&self, waiting: usize, bytes: usize, size: usize) -> bool {
        let limits = self.limits();
        let too_many = limits.max_queued.is_some_and(|max| waiting >= max);
        let too_big = limits
            .max_queued_bytes
            .is_some_and(|max| bytes.saturating_add(size) > max);
        too_many || too_big
    }

    /// The limits the session was made with.
    fn limits(&self) -> SessionLimits {
        SessionLimits {
            max_inflight: self.max_inflight,
            max_queued: (self.max_queued != u32::MAX).then_some(self.max_queued as usize),
            max_queued_bytes: (self.max_queued_bytes != u64::MAX)
                .then(|| usize::try_from(self.max_queued_bytes).unwrap_or(usize::MAX)),
        }
    }

    fn drop_for_limits(&mut self, reason: DropReason) -> Delivered {
        self.drops.record(reason);
        if !self.dropping {
            self.dropping = true;
            self.drop_notice = true;
        }
        Delivered::Dropped
    }

    /// Whether a limit started dropping messages since the last call (once
    /// per spell, until the backlog drains): the runtime logs it, as
    /// mosquitto logs "Outgoing messages are being dropped".
    pub fn take_drop_notice(&mut self) -> bool {
        std::mem::take(&mut self.drop_notice)
    }

    /// PUBACK for an outbound QoS 1 message; frees its slot in the window.
    pub fn puback(&mut self, id: PacketId, now: Instant) -> Result<(), AckError> {
        let pos = self
            .inflight
            .iter()
            .position(|f| {
                f.packet_id == id
                    && f.state == OutboundState::AwaitingAck
                    && f.delivery.qos == QoS::AtLeastOnce
            })
            .ok_or(AckError::NotFound)?;
        self.inflight.remove(pos);
        self.record(|| Change::Outbound(id, None));
        self.last_progress = Moment::at(now);
        self.fill(now);
        Ok(())
    }

    /// PUBREC for an outbound QoS 2 message: queues the PUBREL ([MQTT-4.3.3-4] in 5.0,
    /// [MQTT-4.3.3-1] in 3.1.1).
    /// A repeated PUBREC gets the PUBREL again.
    pub fn pubrec(&mut self, id: PacketId) -> Result<(), AckError> {
        let flight = self
            .inflight
            .iter_mut()
            .find(|f| f.packet_id == id && f.delivery.qos == QoS::ExactlyOnce)
            .ok_or(AckError::NotFound)?;
        flight.state = OutboundState::AwaitingComp;
        self.record(|| Change::Outbound(id, Some(OutboundState::AwaitingComp)));
        if self.connected {
            self.ready.push_back(Outgoing::PubRel(id));
        }
        Ok(())
    }

    /// PUBCOMP for an outbound QoS 2 message: the flow is complete.
    pub fn pubcomp(&mut self, id: PacketId, now: Instant) -> Result<(), AckError> {
        let pos = self
            .inflight
            .iter()
            .position(|f| f.packet_id == id && f.state == OutboundState::AwaitingComp)
            .ok_or(AckError::NotFound)?;
        self.inflight.remove(pos);
        self.record(|| Change::Outbound(id, None));
        self.last_progress = Moment::at(now);
        self.fill(now);
        Ok(())
    }

    /// An inbound QoS 2 PUBLISH: `true` when it is new and must be routed,
    /// `false` for a re-send of one not yet released, which must not be
    /// delivered again [MQTT-4.3.3-2].
    pub fn receive_qos2(&mut self, id: PacketId) -> bool {
        let new = self.incoming_qos2.insert(id);
        if new {
            self.record(|| Change::Inbound(id, true));
        }
        new
    }

    /// An inbound PUBREL: forgets the packet id; `false` when it was unknown.
    pub fn release_qos2(&mut self, id: PacketId) -> bool {
        let known = self.incoming_qos2.remove(&id);
        if known {
            self.record(|| Change::Inbound(id, false));
        }
        known
    }

    /// Whether an inbound QoS 2 id is waiting for its PUBREL.
    pub fn is_pending_qos2(&self, id: PacketId) -> bool {
        self.incoming_qos2.contains(&id)
    }

    /// Inbound QoS 2 messages waiting for PUBREL.
    pub fn incoming_qos2_len(&self) -> usize {
        self.incoming_qos2.len()
    }

    /// Moves up to `max` ready packets, and about `max_bytes` of payload,
    /// into `out` (at least one when any is ready); expired QoS 0 messages
    /// are dropped here.
    pub fn take_ready(
        &mut self,
        out: &mut Vec<Outgoing>,
        max: usize,
        max_bytes: usize,
        now: Instant,
    ) {
        let mut taken = 0;
        let mut bytes = 0usize;
        while taken < max && (taken == 0 || bytes < max_bytes) {
            let Some(item) = self.ready.pop_front() else {
                break;
            };
            if let Outgoing::Publish { delivery, .. } = &item {
                let size = delivery.msg.payload.len();
                bytes = bytes.saturating_add(size);
                if let Outgoing::Publish {
                    packet_id: None, ..
                } = &item
                {
                    self.ready_qos0 = self.ready_qos0.saturating_sub(1);
                    self.ready_qos0_bytes = self.ready_qos0_bytes.saturating_sub(size);
                    if delivery.msg.is_expired(now) {
                        self.drops.record(DropReason::Expired);
                        continue;
                    }
                }
            }
            out.push(item);
            taken += 1;
        }
        if taken > 0 {
            self.last_progress = Moment::at(now);
        }
        if self.dropping && self.backlog() == 0 {
            self.dropping = false;
        }
    }

    /// Messages waiting for the connection: QoS 0 packets not yet taken plus
    /// queued QoS 1/2 messages (the in-flight window is not counted).
    pub fn backlog(&self) -> usize {
        self.ready_qos0.saturating_add(self.queue.len())
    }

    /// Whether a connection holds the session and made progress (took a
    /// packet, or had one acknowledged) within [`STALL_AFTER`].
    pub fn is_draining(&self, now: Instant) -> bool {
        self.connected
            && self
                .last_progress
                .get()
                .is_some_and(|t| now.saturating_duration_since(t) < STALL_AFTER)
    }

    /// Back-pressure: whether the publisher that just delivered here should
    /// stop reading until the session drains. True when the session is
    /// draining and its backlog reached three quarters of
    /// `max_queued_messages`, so that a fast publisher waits instead of
    /// having messages dropped at the limit; a stalled or offline session
    /// never pauses anyone.
    pub fn wants_pause(&self, now: Instant) -> bool {
        self.backlog() >= self.pause_at() && self.is_draining(now)
    }

    /// Whether publishers paused by [`Session::wants_pause`] may resume: the
    /// backlog fell to a third of the pause threshold, or the session is
    /// detached.
    pub fn can_resume(&self) -> bool {
        !self.connected || self.backlog() <= self.pause_at() / 3
    }

    fn pause_at(&self) -> usize {
        match self.limits().max_queued {
            Some(max) => max.saturating_sub(max / 4).max(1),
            None => UNLIMITED_PAUSE_AT,
        }
    }

    /// Restores an outbound message in flight (from a store, before attach).
    pub fn restore_outbound(&mut self, id: PacketId, delivery: Delivery, state: OutboundState) {
        if !self.inflight.iter().any(|f| f.packet_id == id) {
            self.inflight.push_back(InFlight {
                packet_id: id,
                delivery,
                state,
            });
            self.ids_unordered = true;
            self.next_id = id.get().wrapping_add(1);
        }
    }

    /// Restores a queued message (from a store, oldest first).
    pub fn restore_queued(&mut self, delivery: Delivery) {
        self.queued_bytes = self.queued_bytes.saturating_add(delivery.msg.payload.len());
        self.queue.push_back(delivery);
    }

    /// Takes everything the session holds for its client, for another
    /// node: unacknowledged outbound messages (with their ids and states),
    /// queued messages, and inbound QoS 2 ids awaiting PUBREL.
    pub fn export(&mut self) -> Exported {
        let outbound = self
            .inflight
            .drain(..)
            .map(|f| (f.packet_id, f.delivery, f.state))
            .collect();
        let queued = self.queue.drain(..).collect();
        self.queued_bytes = 0;
        let inbound_qos2 = self.incoming_qos2.drain().collect();
        Exported {
            outbound,
            queued,
            inbound_qos2,
        }
    }

    /// Takes over what another node's session held (see [`Session::export`])
    /// while detached: its outbound messages keep their ids, its queued
    /// messages go before any queued here since (they are older).
    pub fn import(&mut self, exported: Exported) {
        for (id, delivery, state) in exported.outbound {
            self.restore_outbound(id, delivery, state);
        }
        let newer: Vec<Delivery> = self.queue.drain(..).collect();
        self.queued_bytes = 0;
        for delivery in exported.queued.into_iter().chain(newer) {
            self.restore_queued(delivery);
        }
        for id in exported.inbound_qos2 {
            self.restore_inbound_qos2(id);
        }
    }

    /// When the oldest message the client has not acknowledged arrived.
    pub fn oldest_pending(&self) -> Option<Instant> {
        let flying = self.inflight.iter().map(|f| f.delivery.msg.received);
        let queued = self.queue.iter().map(|d| d.msg.received);
        flying.chain(queued).min()
    }

    /// Restores an inbound QoS 2 id awaiting PUBREL.
    pub fn restore_inbound_qos2(&mut self, id: PacketId) {
        self.incoming_qos2.insert(id);
    }

    /// Whether a new QoS 1/2 message would be sent at once (attached, window
    /// not full, nothing queued): shared subscriptions prefer such members.
    pub fn has_window(&self) -> bool {
        self.connected && self.queue.is_empty() && self.inflight.len() < self.window()
    }

    /// How a shared group should rank this member: 2 when
    /// [`Session::has_window`], 1 when only attached (its window is full),
    /// 0 when offline, which new messages of the group skip (5.0 §4.8.2).
    pub fn share_rank(&self) -> u8 {
        if self.has_window() {
            super::subscriptions::READY
        } else {
            u8::from(self.connected)
        }
    }

    /// Takes the messages that came through a shared subscription and may go
    /// to the group's other members when this session ends: queued ones, and
    /// unacknowledged QoS 1 ones (5.0 §4.8.2). A QoS 2 message already sent
    /// stays: it is never sent to another member [MQTT-4.8.2-5].
    pub fn take_shared(&mut self) -> Vec<Delivery> {
        let mut taken = Vec::new();
        let mut kept = VecDeque::new();
        for f in self.inflight.drain(..) {
            if f.delivery.share().is_some() && f.delivery.qos == QoS::AtLeastOnce {
                taken.push(f.delivery);
            } else {
                kept.push_back(f);
            }
        }
        self.inflight = kept.into();
        let (shared, rest): (Vec<Delivery>, Vec<Delivery>) =
            self.queue.drain(..).partition(|d| d.share().is_some());
        self.queued_bytes = rest.iter().map(|d| d.msg.payload.len()).sum();
        self.queue = rest.into();
        taken.extend(shared);
        taken
    }

    /// Whether packets are waiting to be written.
    pub fn has_ready(&self) -> bool {
        !self.ready.is_empty()
    }

    /// Unacknowledged outbound QoS 1/2 messages.
    pub fn inflight_len(&self) -> usize {
        self.inflight.len()
    }

    /// Messages waiting in the queue.
    pub fn queued_len(&self) -> usize {
        self.queue.len()
    }

    /// Messages dropped for this session, in all.
    pub fn dropped(&self) -> u64 {
        self.drops.total().total()
    }

    /// Messages dropped for this session, by reason.
    pub fn drops(&self) -> Drops {
        self.drops.total()
    }

    /// Records a drop the session did not see itself (the ACL refused a
    /// delivery, or a packet was too large for the client).
    pub fn record_drop(&mut self, reason: DropReason) {
        self.drops.record(reason);
    }

    /// The drops since the last call, for the broker-wide counters.
    pub fn take_unreported_drops(&mut self) -> Option<Drops> {
        self.drops.take_unreported()
    }

    /// Forgets an outbound message that will not be sent: the client
    /// refused it (an error in its PUBREC), or — with `reason` — it could
    /// not be sent at all (e.g. larger than the client's Maximum Packet
    /// Size), which counts as a drop.
    pub fn abandon(&mut self, id: PacketId, reason: Option<DropReason>, now: Instant) {
        if let Some(pos) = self.inflight.iter().position(|f| f.packet_id == id) {
            self.inflight.remove(pos);
            self.record(|| Change::Outbound(id, None));
            if let Some(reason) = reason {
                self.drops.record(reason);
            }
            self.fill(now);
        }
    }

    fn window(&self) -> usize {
        let ours = if self.max_inflight == 0 {
            u16::MAX
        } else {
            self.max_inflight
        };
        usize::from(ours.min(self.client_receive_maximum))
    }

    fn fill(&mut self, now: Instant) {
        while self.connected && self.inflight.len() < self.window() {
            let Some(front) = self.queue.front() else {
                break;
            };
            if !front.msg.is_expired(now) && self.alloc_id_peek().is_none() {
                break;
            }
            let Some(delivery) = self.queue.pop_front() else {
                break;
            };
            self.queued_bytes = self.queued_bytes.saturating_sub(delivery.msg.payload.len());
            self.record(|| Change::Dequeued);
            if delivery.msg.is_expired(now) {
                self.drops.record(DropReason::Expired);
                continue;
            }
            if let Some(id) = self.alloc_id() {
                self.start_flight(id, delivery);
            }
        }
    }

    /// Whether a packet id is free, without taking it.
    fn alloc_id_peek(&self) -> Option<()> {
        (self.inflight.len() < usize::from(u16::MAX)).then_some(())
    }

    fn start_flight(&mut self, id: PacketId, delivery: Delivery) {
        self.record(|| Change::Sent(id, delivery.clone()));
        self.ready.push_back(Outgoing::Publish {
            packet_id: Some(id),
            dup: false,
            delivery: delivery.clone(),
        });
        self.inflight.push_back(InFlight {
            packet_id: id,
            delivery,
            state: OutboundState::AwaitingAck,
        });
    }

    /// The next packet id not in flight [MQTT-2.3.1-4], or `None` when all
    /// 65535 are in use.
    fn alloc_id(&mut self) -> Option<PacketId> {
        if self.inflight.is_empty() {
            self.ids_unordered = false;
        }
        for _ in 0..=u16::MAX {
            let raw = self.next_id;
            self.next_id = raw.wrapping_add(1);
            let Some(id) = PacketId::new(raw) else {
                continue;
            };
            if !self.in_flight(id) {
                return Some(id);
            }
        }
        None
    }

    /// Whether `id` is in flight. Ids are handed out in increasing order
    /// (wrapping), so the ids in flight lie on the arc from the oldest to
    /// the newest: an id off that arc is free without a scan of the window.
    fn in_flight(&self, id: PacketId) -> bool {
        let (Some(oldest), Some(newest)) = (self.inflight.front(), self.inflight.back()) else {
            return false;
        };
        if !self.ids_unordered {
            // Ids 1..=65535 as 0..65535, measured from the oldest.
            let oldest = u32::from(oldest.packet_id.get());
            let from_oldest = |x: PacketId| (u32::from(x.get()) + 65535 - oldest) % 65535;
            if from_oldest(id) > from_oldest(newest.packet_id) {
                return false;
            }
        }
        self.inflight.iter().any(|f| f.packet_id == id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn msg(topic: &str, qos: QoS, t: Instant) -> Arc<Message> {
        Arc::new(Message::new(topic, topic.to_owned(), qos, false, t))
    }

    fn d(m: &Arc<Message>, qos: QoS) -> Delivery {
        Delivery::new(m.clone(), qos, false)
    }

    /// Deliveries cross from the publisher's thread to the subscriber's in
    /// the queue, the window and the ready list: each byte is paid per
    /// message per subscriber.
    #[test]
    fn deliveries_stay_compact() {
        let size = std::mem::size_of::<Delivery>();
        assert!(size <= 24, "Delivery is {size} bytes");
        let outgoing = std::mem::size_of::<Outgoing>();
        assert!(outgoing <= 32, "Outgoing is {outgoing} bytes");
    }

    /// Subscription identifiers and the shared group travel with the
    /// delivery only when there are any.
    #[test]
    fn a_delivery_carries_its_identifiers_and_group() {
        let m = msg("t", QoS::AtLeastOnce, Instant::now());
        let plain = Delivery::with(m.clone(), QoS::AtLeastOnce, false, Vec::new(), None);
        assert!(plain.extra.is_none());
        assert_eq!(plain.subscription_ids(), &[] as &[u32]);
        let share: Arc<str> = Arc::from("$share/g/t");
        let rich = Delivery::with(m, QoS::AtLeastOnce, false, vec![7, 9], Some(share.clone()));
        assert_eq!(rich.subscription_ids(), &[7, 9]);
        assert_eq!(rich.share(), Some(&share));
    }

    fn pid(n: u16) -> PacketId {
        PacketId::new(n).unwrap()
    }

    fn take(s: &mut Session, now: Instant) -> Vec<Outgoing> {
        let mut v = Vec::new();
        s.take_ready(&mut v, usize::MAX, usize::MAX, now);
        v
    }

    fn ids(v: &[Outgoing]) -> Vec<(u16, bool)> {
        v.iter()
            .filter_map(|o| match o {
                Outgoing::Publish {
                    packet_id: Some(id),
                    dup,
                    ..
                } => Some((id.get(), *dup)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn qos0_is_not_queued_offline() {
        let t = Instant::now();
        let mut s = Session::new(SessionLimits::default());
        assert_eq!(
            s.deliver(d(&msg("a", QoS::AtMostOnce, t), QoS::AtMostOnce), t),
            Delivered::Dropped
        );
        s.attach(u16::MAX, t);
        assert_eq!(
            s.deliver(d(&msg("a", QoS::AtMostOnce, t), QoS::AtMostOnce), t),
            Delivered::Ready
        );
        assert_eq!(take(&mut s, t).len(), 1);
    }

    /// Offline QoS 1/2 messages are queued up to max_queued_messages and
    /// delivered in order on reconnect; the rest are dropped and counted.
    #[test]
    fn offline_queue_limit_and_order() {
        let t = Instant::now();
        let mut s = Session::new(SessionLimits {
            max_inflight: 2,
            max_queued: Some(3),
            max_queued_bytes: None,
        });
        for i in 0..5 {
            let m = msg(&format!("t{i}"), QoS::AtLeastOnce, t);
            let r = s.deliver(d(&m, QoS::AtLeastOnce), t);
            assert_eq!(
                r,
                if i < 3 {
                    Delivered::Queued
                } else {
                    Delivered::Dropped
                }
            );
        }
        assert_eq!(s.dropped(), 2);
        s.attach(u16::MAX, t);
        let out = take(&mut s, t);
        assert_eq!(ids(&out), vec![(1, false), (2, false)], "window of 2");
        s.puback(pid(1), t).unwrap();
        let out = take(&mut s, t);
        match &out[..] {
            [Outgoing::Publish {
                packet_id: Some(id),
                delivery,
                ..
            }] => {
                assert_eq!(id.get(), 3);
                assert_eq!(&*delivery.msg.topic, "t2");
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    /// Unacknowledged messages are re-sent with DUP on resume [MQTT-4.4.0-1],
    /// [MQTT-3.3.1-1]; a PUBLISH acknowledged by PUBREC is resumed with PUBREL.
    #[test]
    fn resume_resends_with_dup_and_pubrel() {
        let t = Instant::now();
        let mut s = Session::new(SessionLimits::default());
        s.attach(u16::MAX, t);
        let m1 = msg("a", QoS::AtLeastOnce, t);
        let m2 = msg("b", QoS::ExactlyOnce, t);
        s.deliver(d(&m1, QoS::AtLeastOnce), t);
        s.deliver(d(&m2, QoS::ExactlyOnce), t);
        assert_eq!(ids(&take(&mut s, t)), vec![(1, false), (2, false)]);
        s.pubrec(pid(2)).unwrap();
        assert!(matches!(take(&mut s, t)[..], [Outgoing::PubRel(id)] if id.get() == 2));
        s.detach();
        s.attach(u16::MAX, t);
        let out = take(&mut s, t);
        assert_eq!(ids(&out), vec![(1, true)]);
        assert!(matches!(out[1], Outgoing::PubRel(id) if id.get() == 2));
        s.puback(pid(1), t).unwrap();
        s.pubcomp(pid(2), t).unwrap();
        assert_eq!(s.inflight_len(), 0);
        assert_eq!(s.puback(pid(1), t), Err(AckError::NotFound));
    }

    /// A re-sent QoS 2 PUBLISH before PUBREL is not delivered twice [MQTT-4.3.3-2].
    #[test]
    fn inbound_qos2_exactly_once() {
        let mut s = Session::new(SessionLimits::default());
        assert!(s.receive_qos2(pid(7)));
        assert!(!s.receive_qos2(pid(7)), "DUP before PUBREL");
        assert!(s.release_qos2(pid(7)));
        assert!(!s.release_qos2(pid(7)));
        assert!(s.receive_qos2(pid(7)), "the id may be reused after PUBREL");
    }

    /// Packet ids wrap from 65535 to 1 and skip ids still in flight [MQTT-2.3.1-4].
    #[test]
    fn packet_ids_wrap_and_skip_inflight() {
        let t = Instant::now();
        let mut s = Session::new(SessionLimits {
            max_inflight: 0,
            max_queued: None,
            max_queued_bytes: None,
        });
        s.attach(u16::MAX, t);
        let m = msg("a", QoS::AtLeastOnce, t);
        s.deliver(d(&m, QoS::AtLeastOnce), t); // id 1 stays in flight
        for i in 2..=u16::MAX {
            s.deliver(d(&m, QoS::AtLeastOnce), t);
            s.puback(pid(i), t).unwrap();
        }
        take(&mut s, t);
        s.deliver(d(&m, QoS::AtLeastOnce), t);
        assert_eq!(
            ids(&take(&mut s, t)),
            vec![(2, false)],
            "1 is in flight, so 2 after the wrap"
        );
    }

    /// Ids restored from a store, in any order, are never handed out again
    /// while in flight [MQTT-2.3.1-4].
    #[test]
    fn restored_ids_are_skipped() {
        let t = Instant::now();
        let mut s = Session::new(limits(0, 100));
        let m = msg("a", QoS::AtLeastOnce, t);
        s.restore_outbound(pid(4), d(&m, QoS::AtLeastOnce), OutboundState::AwaitingAck);
        s.restore_outbound(pid(2), d(&m, QoS::AtLeastOnce), OutboundState::AwaitingAck);
        s.attach(u16::MAX, t);
        take(&mut s, t);
        for _ in 0..3 {
            s.deliver(d(&m, QoS::AtLeastOnce), t);
        }
        assert_eq!(
            ids(&take(&mut s, t)),
            vec![(3, false), (5, false), (6, false)]
        );
    }

    /// The client's Receive Maximum caps the window [MQTT-3.3.4-9].
    #[test]
    fn receive_maximum_caps_window() {
        let t = Instant::now();
        let mut s = Session::new(SessionLimits {
            max_inflight: 20,
            max_queued: None,
            max_queued_bytes: None,
        });
        s.attach(3, t);
        let m = msg("a", QoS::ExactlyOnce, t);
        for _ in 0..10 {
            s.deliver(d(&m, QoS::ExactlyOnce), t);
        }
        assert_eq!(take(&mut s, t).len(), 3);
        assert_eq!(s.queued_len(), 7);
    }

    /// Expired messages are never delivered [MQTT-3.3.2-5].
    #[test]
    fn expired_messages_are_dropped_from_queue() {
        let t = Instant::now();
        let mut s = Session::new(SessionLimits::default());
        let mut m = Message::new("a", "x", QoS::AtLeastOnce, false, t);
        m.props = Some(Box::new(crate::core::message::MessageProps {
            message_expiry_interval: Some(5),
            ..Default::default()
        }));
        s.deliver(d(&Arc::new(m), QoS::AtLeastOnce), t);
        s.attach(u16::MAX, t + Duration::from_secs(6));
        assert!(take(&mut s, t + Duration::from_secs(6)).is_empty());
    }

    /// The journal records every durable change, in order, for the Store.
    #[test]
    fn journal_records_durable_changes() {
        let t = Instant::now();
        let mut s = Session::new(SessionLimits {
            max_inflight: 1,
            max_queued: None,
            max_queued_bytes: None,
        });
        s.set_journaling(true);
        let m = msg("a", QoS::AtLeastOnce, t);
        s.deliver(d(&m, QoS::AtLeastOnce), t);
        s.attach(u16::MAX, t);
        s.puback(pid(1), t).unwrap();
        assert!(s.receive_qos2(pid(9)));
        assert!(s.release_qos2(pid(9)));
        let kinds: Vec<String> = s
            .take_changes()
            .iter()
            .map(|c| match c {
                Change::Queued(_) => "queued".to_owned(),
                Change::Dequeued => "dequeued".to_owned(),
                Change::Outbound(id, st) => format!("out {} {st:?}", id.get()),
                Change::Sent(id, _) => format!("out {} Some(AwaitingAck)", id.get()),
                Change::Inbound(id, p) => format!("in {} {p}", id.get()),
            })
            .collect();
        assert_eq!(
            kinds,
            vec![
                "queued",
                "dequeued",
                "out 1 Some(AwaitingAck)",
                "out 1 None",
                "in 9 true",
                "in 9 false"
            ]
        );
        assert!(s.take_changes().is_empty());
        s.set_journaling(false);
        s.deliver(d(&m, QoS::AtLeastOnce), t);
        assert!(s.take_changes().is_empty());
    }

    /// `max_queued_bytes` bounds the queue by payload size too.
    #[test]
    fn queued_bytes_limit() {
        let t = Instant::now();
        let mut s = Session::new(SessionLimits {
            max_inflight: 1,
            max_queued: None,
            max_queued_bytes: Some(5),
        });
        let big = Arc::new(Message::new("a", "abc", QoS::AtLeastOnce, false, t));
        assert_eq!(s.deliver(d(&big, QoS::AtLeastOnce), t), Delivered::Queued);
        assert_eq!(s.deliver(d(&big, QoS::AtLeastOnce), t), Delivered::Dropped);
        s.attach(u16::MAX, t);
        assert_eq!(
            s.deliver(d(&big, QoS::AtLeastOnce), t),
            Delivered::Queued,
            "room again after sending"
        );
    }

    /// `max_queued_bytes` bounds QoS 0 messages waiting for the connection
    /// too (mosquitto counts every queued message).
    #[test]
    fn queued_bytes_limit_counts_qos0() {
        let t = Instant::now();
        let mut s = Session::new(SessionLimits {
            max_inflight: 20,
            max_queued: None,
            max_queued_bytes: Some(5),
        });
        s.attach(u16::MAX, t);
        let big = Arc::new(Message::new("a", "abc", QoS::AtMostOnce, false, t));
        assert_eq!(s.deliver(d(&big, QoS::AtMostOnce), t), Delivered::Ready);
        assert_eq!(s.deliver(d(&big, QoS::AtMostOnce), t), Delivered::Dropped);
        take(&mut s, t);
        assert_eq!(s.deliver(d(&big, QoS::AtMostOnce), t), Delivered::Ready);
    }

    /// Retained messages sent on subscribe [MQTT-3.3.1-6] are not dropped by
    /// the queue limits, and go out paced by the window like any other.
    #[test]
    fn retained_on_subscribe_pass_the_queue_limits() {
        let t = Instant::now();
        let mut s = Session::new(limits(2, 3));
        s.attach(u16::MAX, t);
        for i in 0..10 {
            let m = msg(&format!("r/{i}"), QoS::AtLeastOnce, t);
            assert_ne!(
                s.deliver_retained(d(&m, QoS::AtLeastOnce), t),
                Delivered::Dropped
            );
            let m = msg(&format!("z/{i}"), QoS::AtMostOnce, t);
            assert_eq!(
                s.deliver_retained(d(&m, QoS::AtMostOnce), t),
                Delivered::Ready
            );
        }
        let mut sent = 0;
        loop {
            let out = take(&mut s, t);
            if out.is_empty() {
                break;
            }
            for o in out {
                if let Outgoing::Publish {
                    packet_id: Some(id),
                    ..
                } = o
                {
                    s.puback(id, t).unwrap();
                }
                sent += 1;
            }
        }
        assert_eq!(sent, 20);
        // Live messages still meet the limits.
        for _ in 0..4 {
            s.deliver(d(&msg("l", QoS::AtMostOnce, t), QoS::AtMostOnce), t);
        }
        assert_eq!(s.dropped(), 1);
    }

    /// The first drop of a spell is reported once, and again only after the
    /// backlog drained.
    #[test]
    fn drops_are_noticed_once_per_spell() {
        let t = Instant::now();
        let mut s = Session::new(limits(20, 1));
        s.attach(u16::MAX, t);
        let m = msg("a", QoS::AtMostOnce, t);
        s.deliver(d(&m, QoS::AtMostOnce), t);
        assert!(!s.take_drop_notice());
        for _ in 0..3 {
            assert_eq!(s.deliver(d(&m, QoS::AtMostOnce), t), Delivered::Dropped);
        }
        assert!(s.take_drop_notice());
        assert!(!s.take_drop_notice());
        take(&mut s, t);
        s.deliver(d(&m, QoS::AtMostOnce), t);
        assert_eq!(s.deliver(d(&m, QoS::AtMostOnce), t), Delivered::Dropped);
        assert!(s.take_drop_notice(), "a new spell");
    }

    /// `take_ready` stops at its byte budget, but always takes one.
    #[test]
    fn take_ready_keeps_to_a_byte_budget() {
        let t = Instant::now();
        let mut s = Session::new(limits(20, 100));
        s.attach(u16::MAX, t);
        let m = Arc::new(Message::new("a", vec![0u8; 100], QoS::AtMostOnce, false, t));
        for _ in 0..10 {
            s.deliver(d(&m, QoS::AtMostOnce), t);
        }
        let mut out = Vec::new();
        s.take_ready(&mut out, usize::MAX, 250, t);
        assert_eq!(out.len(), 3);
        out.clear();
        s.take_ready(&mut out, usize::MAX, 0, t);
        assert_eq!(out.len(), 1);
    }

    /// QoS 0 overflow: dropped when the connection's queue is full.
    #[test]
    fn qos0_overflow_is_dropped() {
        let t = Instant::now();
        let mut s = Session::new(SessionLimits {
            max_inflight: 20,
            max_queued: Some(2),
            max_queued_bytes: None,
        });
        s.attach(u16::MAX, t);
        let m = msg("a", QoS::AtMostOnce, t);
        let r: Vec<_> = (0..3)
            .map(|_| s.deliver(d(&m, QoS::AtMostOnce), t))
            .collect();
        assert_eq!(
            r,
            vec![Delivered::Ready, Delivered::Ready, Delivered::Dropped]
        );
        assert_eq!(take(&mut s, t).len(), 2);
        assert_eq!(s.deliver(d(&m, QoS::AtMostOnce), t), Delivered::Ready);
    }

    fn limits(max_inflight: u16, max_queued: usize) -> SessionLimits {
        SessionLimits {
            max_inflight,
            max_queued: Some(max_queued),
            max_queued_bytes: None,
        }
    }

    /// Back-pressure: a draining subscriber asks publishers to pause at three
    /// quarters of `max_queued_messages`, and lets them go at a third of that.
    #[test]
    fn pause_at_three_quarters_resume_at_a_third() {
        let t = Instant::now();
        let mut s = Session::new(limits(20, 8));
        s.attach(u16::MAX, t);
        let m = msg("a", QoS::AtMostOnce, t);
        for _ in 0..5 {
            assert_eq!(s.deliver(d(&m, QoS::AtMostOnce), t), Delivered::Ready);
            assert!(!s.wants_pause(t));
        }
        s.deliver(d(&m, QoS::AtMostOnce), t);
        assert_eq!(s.backlog(), 6);
        assert!(s.wants_pause(t));
        assert!(!s.can_resume());
        let mut out = Vec::new();
        s.take_ready(&mut out, 3, usize::MAX, t);
        assert!(!s.can_resume());
        s.take_ready(&mut out, 1, usize::MAX, t);
        assert_eq!(s.backlog(), 2);
        assert!(s.can_resume());
    }

    /// Queued QoS 1 messages count towards the backlog; the in-flight window does not.
    #[test]
    fn queued_qos1_counts_towards_pause() {
        let t = Instant::now();
        let mut s = Session::new(limits(1, 4));
        s.attach(u16::MAX, t);
        let m = msg("a", QoS::AtLeastOnce, t);
        assert_eq!(s.deliver(d(&m, QoS::AtLeastOnce), t), Delivered::Ready);
        assert_eq!(s.backlog(), 0);
        for _ in 0..3 {
            assert_eq!(s.deliver(d(&m, QoS::AtLeastOnce), t), Delivered::Queued);
        }
        assert!(s.wants_pause(t));
        // The acknowledgement is progress and moves one message into the window.
        s.puback(pid(1), t).unwrap();
        assert_eq!(s.backlog(), 2);
        assert!(s.is_draining(t));
    }

    /// A subscriber that takes nothing for STALL_AFTER, or is offline, never
    /// pauses anyone: its overflow is dropped as mosquitto does.
    #[test]
    fn stalled_or_offline_subscriber_pauses_nobody() {
        let t = Instant::now();
        let mut s = Session::new(limits(20, 4));
        s.attach(u16::MAX, t);
        let m = msg("a", QoS::AtMostOnce, t);
        for _ in 0..3 {
            s.deliver(d(&m, QoS::AtMostOnce), t);
        }
        assert!(s.wants_pause(t));
        let later = t + STALL_AFTER;
        assert!(!s.is_draining(later));
        assert!(!s.wants_pause(later));
        // Taking packets is progress again.
        let mut out = Vec::new();
        s.take_ready(&mut out, 1, usize::MAX, later);
        assert!(s.is_draining(later));
        s.detach();
        assert!(!s.wants_pause(later));
        assert!(s.can_resume());
    }
}
