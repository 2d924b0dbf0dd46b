//! The persistence boundary: every durable mutation of broker state passes
//! through [`Store`].
//!
//! The broker keeps its working state in memory (sessions, the subscription
//! tree, retained messages) and tells the store about each change that must
//! survive a restart. Today only [`MemoryStore`] exists, which keeps nothing
//! (state lives in memory only, as the config warning says); a durable engine
//! (issue 10) implements the same trait, plus a way to load its state on
//! start-up.
//!
//! Calls are made by the runtime, never by the sans-IO session core, and may
//! be made while a session's lock is held: an implementation must not block
//! for long (queue the write and group-commit on its own thread).

use culex_codec::{PacketId, QoS, SubscriptionOptions};

use crate::message::Message;

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

/// Receives every durable mutation. See the module docs for the rules.
pub trait Store: Send + Sync + std::fmt::Debug + 'static {
    /// Whether the store keeps anything. When false the broker skips the
    /// per-message journal of queued and in-flight state entirely.
    fn is_durable(&self) -> bool {
        false
    }
    /// The state to restore, read once at start-up before any listener opens.
    fn load(&self) -> Result<Snapshot, StoreError> {
        Ok(Snapshot::default())
    }
    /// A reading of the changes the calling thread has handed over; equal
    /// readings around routing a PUBLISH mean it changed nothing durable.
    fn durable_mark(&self) -> u64 {
        0
    }
    /// Calls `done` once every change handed to the store so far is durable
    /// (`true`), or could not be made durable (`false`). PUBACK and PUBREC
    /// are sent from there. Stores that keep nothing call it at once.
    fn after_durable(&self, done: Box<dyn FnOnce(bool) + Send>) {
        done(true)
    }
    /// A retained message was set on `msg.topic`.
    fn retained_set(&self, msg: &Message);
    /// The retained message of `topic` was cleared.
    fn retained_clear(&self, topic: &str);
    /// A session was created, or its expiry interval changed (seconds after
    /// disconnect; `None`: never).
    fn session_put(&self, client_id: &str, expiry_interval: Option<u32>);
    /// A subscription was added or replaced.
    fn subscription_put(
        &self,
        client_id: &str,
        filter: &str,
        options: SubscriptionOptions,
        id: Option<u32>,
    );
    /// A subscription was removed.
    fn subscription_delete(&self, client_id: &str, filter: &str);
    /// A session ended (clean session, expiry, clean start).
    fn session_delete(&self, client_id: &str);
    /// A message was queued for an offline or busy persistent session.
    fn queued_add(&self, client_id: &str, msg: &Message, qos: QoS);
    /// The oldest queued message of a session left the queue (sent or dropped).
    fn queued_remove_front(&self, client_id: &str);
    /// An outbound QoS 1/2 message changed state (`None`: completed).
    fn outbound_state(&self, client_id: &str, packet_id: PacketId, state: Option<OutboundState>);
    /// An outbound QoS 1/2 message was sent and awaits PUBACK/PUBREC (a
    /// durable store keeps `msg` to re-send it after a restart).
    fn outbound_sent(&self, client_id: &str, packet_id: PacketId, msg: &Message, qos: QoS) {
        let _ = (msg, qos);
        self.outbound_state(client_id, packet_id, Some(OutboundState::AwaitingAck));
    }
    /// An inbound QoS 2 packet id was received (`true`) or released (`false`).
    fn inbound_qos2(&self, client_id: &str, packet_id: PacketId, pending: bool);
    /// A will waits for its delay (`Some`) or was sent or cancelled (`None`).
    fn delayed_will(&self, client_id: &str, will: Option<&Message>);
}

/// The store used when `persistence` is off (and, until issue 10, when it is
/// on): all state lives in the broker's memory, nothing is written.
#[derive(Debug, Default, Clone, Copy)]
pub struct MemoryStore;

impl Store for MemoryStore {
    fn retained_set(&self, _msg: &Message) {}
    fn retained_clear(&self, _topic: &str) {}
    fn session_put(&self, _client_id: &str, _expiry_interval: Option<u32>) {}
    fn subscription_put(
        &self,
        _client_id: &str,
        _filter: &str,
        _o: SubscriptionOptions,
        _id: Option<u32>,
    ) {
    }
    fn subscription_delete(&self, _client_id: &str, _filter: &str) {}
    fn session_delete(&self, _client_id: &str) {}
    fn queued_add(&self, _client_id: &str, _msg: &Message, _qos: QoS) {}
    fn queued_remove_front(&self, _client_id: &str) {}
    fn outbound_state(&self, _client_id: &str, _id: PacketId, _state: Option<OutboundState>) {}
    fn inbound_qos2(&self, _client_id: &str, _id: PacketId, _pending: bool) {}
    fn delayed_will(&self, _client_id: &str, _will: Option<&Message>) {}
}
