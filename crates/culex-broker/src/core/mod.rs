//! The broker's state and its one owner API.
//!
//! [`Core`] holds every session, the subscription tree, the retained
//! messages and the delayed wills, and is the only code that locks them.
//! Every change goes through its methods — connect (claim by generation),
//! subscribe, unsubscribe, route, leave, expire, restore — which keep the
//! copies of a fact (the tree, the session, the store, the cluster) in step
//! and return what their caller must wait for before acknowledging
//! ([`store::Durability`]). Read-only views for `$SYS`, metrics and the dashboard
//! are in [`observe`].
//!
//! No sockets, tasks or clock here: time comes in as `now`; connections are
//! reached through [`wake::Waker`]; durable changes go to a [`store::Store`];
//! other nodes hear of events through a [`cluster::Cluster`]; notable events go to
//! an [`EventSink`] (the runtime logs them).
//!
//! Lock order: a session-map shard before a session; the subscription tree
//! before a session (ranking shared-group members while matching); a
//! session before a listener's policy. The retained tree and the delayed
//! wills are locked alone. No lock is held while calling a [`wake::Waker`],
//! the [`cluster::Cluster`] or the [`EventSink`].

pub mod cluster;
mod compact;
pub mod drops;
pub mod lazy;
pub mod message;
pub mod observe;
pub mod remote;
pub mod retained;
mod route;
pub mod session;
mod sessions;
mod state;
pub mod stats;
pub mod store;
pub mod subscriptions;
pub mod topics;
pub mod wake;

pub(crate) use compact::Moment;
pub(crate) use route::Origin;
pub(crate) use sessions::SessionRef;
pub(crate) use state::{Claim, Leave};
pub use state::{Core, Event, EventSink, NoEvents};
pub use stats::Stats;
