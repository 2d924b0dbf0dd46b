//! The seam towards other broker nodes.
//!
//! The core tells a [`Cluster`] about every event another node may need:
//! a message published here, this node's interest in a filter appearing or
//! going, a retained message set or cleared, a session changed or ended.
//! [`LocalCluster`] is the single node: it does nothing, and the core skips
//! the calls entirely when [`Cluster::is_local`] says so. The clustered
//! backend (`runtime::cluster`) hands remote messages, sessions and
//! retained messages back through the core's owner API (`remote.rs`).

use std::sync::Arc;

use culex_codec::QoS;

use super::message::Message;
use super::sessions::SessionHandle;
use super::store::Durability;

/// A new subscription's retained messages, which in a cluster the cluster
/// holds: the backend fetches those matching `filter` and hands them to
/// `Core::deliver_retained` for `session`.
#[derive(Debug)]
pub struct RetainedRequest {
    pub(crate) session: Arc<SessionHandle>,
    /// The filter (without `$share/`).
    pub filter: String,
    /// The subscription's granted QoS.
    pub qos: QoS,
    /// Its 5.0 subscription identifier.
    pub subscription_id: Option<u32>,
}

/// Everything another node may need to know. Calls are made with no lock
/// of the core held, and must not block (queue the work).
pub trait Cluster: Send + Sync + std::fmt::Debug + 'static {
    /// A single node: the core makes no other call.
    fn is_local(&self) -> bool {
        false
    }
    /// Whether the cluster serves now: shared subscriptions (each message
    /// of a group goes to one node, which hands it to one local member
    /// through `Core::deliver_shared`) and retained messages. The core
    /// then leaves shared matches out of its own routing and keeps no
    /// retained message of its own; otherwise it serves both locally.
    fn serving(&self) -> bool {
        false
    }
    /// A message published on this node (already routed to local
    /// subscribers), and what its acknowledgement must wait for.
    fn published(&self, msg: &Arc<Message>) -> Durability;
    /// This node gained (`true`) or lost (`false`) a subscription to
    /// `filter` (as subscribed, `$share/…` included). Called once per
    /// subscription; the backend counts them.
    fn interest(&self, filter: &str, present: bool);
    /// A retained message was set (`Some`) or cleared (`None`) on `topic`,
    /// and what its acknowledgement must wait for. In a cluster the
    /// cluster holds retained messages, not the core.
    fn retained(&self, topic: &str, msg: Option<&Arc<Message>>) -> Durability;
    /// A new subscription wants its retained messages.
    fn retained_for(&self, request: RetainedRequest);
    /// A session's state that other nodes adopt it by changed: its
    /// subscriptions, its will, whether it is connected.
    fn session_changed(&self, client_id: &str);
    /// A session ended here (clean disconnect or expiry).
    fn session_ended(&self, client_id: &str);
}

/// One node alone: nothing to tell anyone.
#[derive(Debug, Default, Clone, Copy)]
pub struct LocalCluster;

impl Cluster for LocalCluster {
    fn is_local(&self) -> bool {
        true
    }
    fn published(&self, _msg: &Arc<Message>) -> Durability {
        Durability::Done
    }
    fn interest(&self, _filter: &str, _present: bool) {}
    fn retained(&self, _topic: &str, _msg: Option<&Arc<Message>>) -> Durability {
        Durability::Done
    }
    fn retained_for(&self, _request: RetainedRequest) {}
    fn session_changed(&self, _client_id: &str) {}
    fn session_ended(&self, _client_id: &str) {}
}
