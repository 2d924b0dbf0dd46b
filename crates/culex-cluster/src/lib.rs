//! The NATS JetStream side of a culex cluster: routing between nodes,
//! retained messages, session ownership and takeover, offline queues,
//! membership and the adoption of a dead node's sessions.
//!
//! Start at [`Node`]: its documentation gives the call order. The broker's
//! runtime owns a `Node` and bridges it to the broker's core: the core's
//! local events become calls here, and the [`Receivers`] bring back what
//! other nodes send ([`Inbound`]) and what happens to the cluster
//! ([`Event`]). This crate knows nothing of the broker: messages, session
//! records and kick replies are plain types, and what only the broker
//! understands (MQTT 5 properties, subscription options, a queue handed
//! over on takeover) travels as opaque bytes.
//!
//! What it creates in NATS (names under [`Options::namespace`], `culex` by
//! default), whatever the number of clients:
//! - KV bucket `NS_NODES` (memory, history 1, max age [`Options::node_ttl`]):
//!   key `n.<node>`, the membership heartbeat;
//! - KV bucket `NS_SESS` (file, history 1): key [`session_key`]`(client id)`,
//!   a [`SessionRecord`];
//! - stream `NS_RET` (`NS.r.>`, one message per subject): retained messages;
//! - stream `NS_SQ` (`NS.sq.>`): offline queues, one subject per session;
//! - stream `NS_MSGS` (`NS.q.>`, max age [`Options::durable_max_age`]):
//!   QoS 1/2 messages, routed by being stored (a JetStream publish reaches
//!   ordinary subscribers too), read back after a crash or a netsplit;
//! - subjects `NS.m.<topic>` (routed QoS 0 messages, core NATS) and
//!   `NS.ctl.<node>.>` (requests to one node);
//! - per node at most one long-lived consumer (the ordered one watching
//!   `NODES`) and short-lived ordered consumers for scans.
//!
//! [`subject`] is the topic ↔ subject mapping.
#![cfg_attr(
    not(test),
    warn(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

mod control;
mod dedup;
mod durable;
mod error;
mod membership;
mod message;
mod node;
mod routing;
mod session;
pub mod subject;
mod wire;

pub use culex_codec::QoS;
pub use error::{Error, Result};
pub use message::{Envelope, Message, NodeId};
pub use node::{Event, Inbound, KickRequest, Node, Options, Receivers, Spool};
pub use session::{session_key, Adoption, Claim, KickOutcome, KickReply, SessionRecord, Will};
pub use wire::WireError;
