//! The persistence boundary: every durable mutation of broker state passes
//! through [`Store`]. The trait belongs to its caller, the core.
//!
//! The broker keeps its working state in memory (sessions, the subscription
//! tree, retained messages) and tells the store about each change that must
//! survive a restart. [`MemoryStore`] keeps nothing; `DurableBrokerStore`
//! (crate `durable_store`) adapts culex-store's engine.
//!
//! Every mutation returns a [`Durability`]: nothing to wait for, or a ticket
//! that becomes durable once the store has committed it (and everything
//! submitted before it). The core hands these back to its callers, which
//! hold an acknowledgement until [`Store::on_durable`] says so. Calls may be
//! made while a session's lock is held: an implementation must not block
//! (queue the write and group-commit on its own thread).

use culex_codec::{PacketId, QoS, SubscriptionOptions};

use super::message::Message;

/// What a change needs before it may be acknowledged: nothing, or its
/// store ticket to become durable. Tickets grow in submission order, so the
/// later of two covers both ([`Durability::and`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub enum Durability {
    /// Durable already, or nothing durable changed.
    #[default]
    Done,
    /// Durable once the store reports this ticket durable.
    Pending(u64),
}

impl Durability {
    /// Both this and `other`.
    #[must_use]
    pub fn and(self, other: Durability) -> Durability {
        self.max(other)
    }

    /// Whether there is something to wait for.
    pub fn is_pending(self) -> bool {
        self != Durability::Done
    }
}

/// Everything a store hands back on start-up ([`Store::load`]).
#[derive(Debug, Default)]
pub struct Snapshot {
    /// Retained messages.
    pub retained: Vec<Message>,
    /// Persistent sessions, all disconnected.
    pub sessions: Vec<SessionSnapshot>,
    /// Wills that were waiting for their delay: published once the broker is up.
    pub delayed_wills: Vec<(String, Message)>,
}

/// One persistent session as stored.
#[derive(Debug, Default)]
pub struct SessionSnapshot {
    /// The client identifier.
    pub client_id: String,
    /// Seconds it lives after disconnect; `None`: forever.
    pub expiry_interval: Option<u32>,
    /// Filter (as subscribed, `$share/…` included), options, identifier.
    pub subscriptions: Vec<(String, SubscriptionOptions, Option<u32>)>,
    /// Queued messages, oldest first, with their delivery QoS.
    pub queued: Vec<(Message, QoS)>,
    /// Outbound QoS 1/2 messages in flight, in the order they were sent.
    pub outbound: Vec<(PacketId, Message, QoS, OutboundState)>,
    /// Inbound QoS 2 ids received and not yet released.
    pub inbound_qos2: Vec<PacketId>,
}

/// Why a store could not be read.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct StoreError(pub String);

/// Where a message sent to a client stands in the QoS flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutboundState {
    /// PUBLISH sent (QoS 1 or 2), waiting for PUBACK or PUBREC.
    AwaitingAck,
    /// PUBREC received and PUBREL sent, waiting for PUBCOMP.
    AwaitingComp,
}

/// How a durable store is doing, for metrics.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StoreMetrics {
    /// Commits so far.
    pub commits: u64,
    /// Mutations waiting for the next commit.
    pub pending: usize,
    /// How long commits took: upper bounds in seconds with the commits
    /// that took at most each (cumulative).
    pub commit_buckets: Vec<(f64, u64)>,
    /// Every commit timed.
    pub commit_count: u64,
    /// Their durations together, in seconds.
    pub commit_seconds: f64,
}

/// Receives every durable mutation. See the module docs for the rules.
pub trait Store: Send + Sync + std::fmt::Debug + 'static {
    /// Whether the store keeps anything. When false the broker skips the
    /// per-message journal of queued and in-flight state entirely.
    fn is_durable(&self) -> bool {
        false
    }
    /// How the store is doing (`None`: it keeps nothing to report on).
    fn metrics(&self) -> Option<StoreMetrics> {
        None
    }
    /// The state to restore, read once at start-up before any listener opens.
    fn load(&self) -> Result<Snapshot, StoreError> {
        Ok(Snapshot::default())
    }
    /// Calls `done` once `ticket` is durable (`true`), or could not be made
    /// durable (`false`): at once if it already is, else from the store's
    /// own thread. `done` must not block.
    fn on_durable(&self, ticket: u64, done: Box<dyn FnOnce(bool) + Send>) {
        let _ = ticket;
        done(true)
    }
    /// A retained message was set on `msg.topic`.
    fn retained_set(&self, msg: &Message) -> Durability;
    /// The retained message of `topic` was cleared.
    fn retained_clear(&self, topic: &str) -> Durability;
    /// A session was created, or its expiry interval changed (seconds after
    /// disconnect; `None`: never).
    fn session_put(&self, client_id: &str, expiry_interval: Option<u32>) -> Durability;
    /// A subscription was added or replaced.
    fn subscription_put(
        &self,
        client_id: &str,
        filter: &str,
        options: SubscriptionOptions,
        id: Option<u32>,
    ) -> Durability;
    /// A subscription was removed.
    fn subscription_delete(&self, client_id: &str, filter: &str) -> Durability;
    /// A session ended (clean session, expiry, clean start).
    fn session_delete(&self, client_id: &str) -> Durability;
    /// A message was queued for an offline or busy persistent session.
    fn queued_add(&self, client_id: &str, msg: &Message, qos: QoS) -> Durability;
    /// The oldest queued message of a session left the queue (sent or dropped).
    fn queued_remove_front(&self, client_id: &str) -> Durability;
    /// An outbound QoS 1/2 message changed state (`None`: completed).
    fn outbound_state(
        &self,
        client_id: &str,
        packet_id: PacketId,
        state: Option<OutboundState>,
    ) -> Durability;
    /// An outbound QoS 1/2 message was sent and awaits PUBACK/PUBREC (a
    /// durable store keeps `msg` to re-send it after a restart).
    fn outbound_sent(
        &self,
        client_id: &str,
        packet_id: PacketId,
        msg: &Message,
        qos: QoS,
    ) -> Durability {
        let _ = (msg, qos);
        self.outbound_state(client_id, packet_id, Some(OutboundState::AwaitingAck))
    }
    /// An inbound QoS 2 packet id was received (`true`) or released (`false`).
    fn inbound_qos2(&self, client_id: &str, packet_id: PacketId, pending: bool) -> Durability;
    /// A will waits for its delay (`Some`) or was sent or cancelled (`None`).
    fn delayed_will(&self, client_id: &str, will: Option<&Message>) -> Durability;
}

/// The store used when `persistence` is off: all state lives in the
/// broker's memory, nothing is written.
#[derive(Debug, Default, Clone, Copy)]
pub struct MemoryStore;

impl Store for MemoryStore {
    fn retained_set(&self, _msg: &Message) -> Durability {
        Durability::Done
    }
    fn retained_clear(&self, _topic: &str) -> Durability {
        Durability::Done
    }
    fn session_put(&self, _client_id: &str, _expiry_interval: Option<u32>) -> Durability {
        Durability::Done
    }
    fn subscription_put(
        &self,
        _client_id: &str,
        _filter: &str,
        _o: SubscriptionOptions,
        _id: Option<u32>,
    ) -> Durability {
        Durability::Done
    }
    fn subscription_delete(&self, _client_id: &str, _filter: &str) -> Durability {
        Durability::Done
    }
    fn session_delete(&self, _client_id: &str) -> Durability {
        Durability::Done
    }
    fn queued_add(&self, _client_id: &str, _msg: &Message, _qos: QoS) -> Durability {
        Durability::Done
    }
    fn queued_remove_front(&self, _client_id: &str) -> Durability {
        Durability::Done
    }
    fn outbound_state(
        &self,
        _client_id: &str,
        _id: PacketId,
        _state: Option<OutboundState>,
    ) -> Durability {
        Durability::Done
    }
    fn inbound_qos2(&self, _client_id: &str, _id: PacketId, _pending: bool) -> Durability {
        Durability::Done
    }
    fn delayed_will(&self, _client_id: &str, _will: Option<&Message>) -> Durability {
        Durability::Done
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_later_ticket_covers_both() {
        use Durability::{Done, Pending};
        assert_eq!(Done.and(Done), Done);
        assert_eq!(Done.and(Pending(3)), Pending(3));
        assert_eq!(Pending(5).and(Pending(3)), Pending(5));
        assert!(!Done.is_pending());
    }
}
