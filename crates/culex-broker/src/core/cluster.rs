//! The seam towards other broker nodes.
//!
//! The core tells a [`Cluster`] about every event another node may need:
//! a message published here, this node's interest in a filter appearing or
//! going, a retained message set or cleared, a client id claimed here.
//! [`LocalCluster`] is the single node: it does nothing, and the core skips
//! the calls entirely when [`Cluster::is_local`] says so. A clustered
//! backend (issue 21) hands remote messages back through the core's owner
//! API like any other publisher.

use std::sync::Arc;

use super::message::Message;

/// Everything another node may need to know. Calls are made with no lock
/// of the core held, and must not block (queue the work).
pub trait Cluster: Send + Sync + std::fmt::Debug + 'static {
    /// A single node: the core makes no other call.
    fn is_local(&self) -> bool {
        false
    }
    /// A message published on this node (already routed to local
    /// subscribers).
    fn published(&self, msg: &Arc<Message>);
    /// This node gained (`true`) or lost (`false`) a subscription to
    /// `filter` (as subscribed, `$share/…` included). Called once per
    /// subscription; the backend counts them.
    fn interest(&self, filter: &str, present: bool);
    /// A retained message was set (`Some`) or cleared (`None`) on `topic`.
    fn retained(&self, topic: &str, msg: Option<&Arc<Message>>);
    /// A client connected here as `client_id`: another node holding it
    /// must let it go.
    fn claimed(&self, client_id: &str);
}

/// One node alone: nothing to tell anyone.
#[derive(Debug, Default, Clone, Copy)]
pub struct LocalCluster;

impl Cluster for LocalCluster {
    fn is_local(&self) -> bool {
        true
    }
    fn published(&self, _msg: &Arc<Message>) {}
    fn interest(&self, _filter: &str, _present: bool) {}
    fn retained(&self, _topic: &str, _msg: Option<&Arc<Message>>) {}
    fn claimed(&self, _client_id: &str) {}
}
