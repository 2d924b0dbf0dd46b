//! The one error type of the crate. Misuse (bad names, a topic or message
//! the cluster cannot carry) is kept apart from NATS failing or refusing,
//! so that the broker can turn each into its own reason code.

use crate::subject::MapError;
use crate::wire::WireError;

/// What can go wrong in a cluster operation.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The node name is not 1 to 64 of `[A-Za-z0-9_-]`.
    #[error("invalid node name {0:?}: use 1 to 64 of A-Z a-z 0-9 _ -")]
    NodeName(String),
    /// The namespace is not 1 to 32 of `[A-Za-z0-9_-]`.
    #[error("invalid cluster namespace {0:?}: use 1 to 32 of A-Z a-z 0-9 _ -")]
    Namespace(String),
    /// No NATS server address was given, or one does not parse.
    #[error("invalid nats server address {0:?}")]
    Address(String),
    /// The topic or filter cannot be a subject (invalid, or too long once
    /// escaped: MQTT 5 reason Topic Name invalid / Topic Filter invalid).
    #[error(transparent)]
    Topic(#[from] MapError),
    /// The message is larger than NATS carries (MQTT 5 reason Packet too
    /// large; advertise [`Node::max_message_size`](crate::Node::max_message_size)).
    #[error("message of {size} bytes is larger than the cluster carries ({max} bytes)")]
    TooLarge {
        /// The encoded size.
        size: usize,
        /// The largest NATS accepts.
        max: usize,
    },
    /// The session was claimed by another node since this node's revision:
    /// this node must close the client and stop writing the session.
    #[error("session was taken over by another node")]
    Fenced,
    /// A claim lost the compare-and-set race many times in a row.
    #[error("client id contended: claim kept losing the race")]
    Contended,
    /// A record read from NATS does not decode.
    #[error("corrupt record in the cluster store: {0}")]
    Corrupt(#[from] WireError),
    /// NATS or JetStream failed or timed out (no connection, no quorum, a
    /// leader election): retry later (MQTT 5 reason Server unavailable).
    #[error("{operation} failed: {source}")]
    Nats {
        /// What this crate was doing.
        operation: &'static str,
        /// The client's error.
        source: async_nats::Error,
    },
}

impl Error {
    /// Wraps an `async-nats` error with what was being done.
    pub(crate) fn nats<E>(operation: &'static str) -> impl FnOnce(E) -> Error
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        move |source| Error::Nats {
            operation,
            source: Box::new(source),
        }
    }
}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
