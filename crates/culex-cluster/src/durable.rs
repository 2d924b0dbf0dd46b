//! Tier B: QoS 1/2 messages stored in the `NS_MSGS` stream before PUBACK.
//!
//! A durable publish is a JetStream publish to `NS.q.<topic>`. JetStream
//! stores it, and NATS also delivers it, as any message, to the nodes
//! subscribed to matching `NS.q.…` patterns: that is how it is routed.

use async_nats::jetstream::stream::{Config, DiscardPolicy, RetentionPolicy, StorageType};

use crate::error::Result;
use crate::message::Message;
use crate::node::{Node, Options};
use crate::subject::Subjects;

/// The `NS_MSGS` stream: every durable message for
/// [`Options::durable_max_age`], the oldest dropped first; the default
/// two-minute duplicate window, in which retried writes are stored once.
pub(crate) fn stream_config(options: &Options, subjects: &Subjects, replicas: usize) -> Config {
    Config {
        name: format!("{}_MSGS", options.namespace),
        description: Some("culex durable QoS 1/2 messages".to_owned()),
        subjects: vec![subjects.durable_all()],
        retention: RetentionPolicy::Limits,
        max_age: options.durable_max_age,
        discard: DiscardPolicy::Old,
        storage: StorageType::File,
        num_replicas: replicas,
        allow_direct: true,
        ..Default::default()
    }
}

impl Node {
    /// Stores a locally published QoS 1/2 message in the `MSGS` stream and
    /// so sends it to the other nodes with a matching subscriber, instead
    /// of [`Node::publish`]. Returns the stream sequence once JetStream
    /// acknowledged the write (replicated to a majority): answer the
    /// PUBLISH after that. Attempts are repeated with one `Nats-Msg-Id`
    /// until [`Options::store_timeout`]; the
    /// stream keeps one copy, and receivers drop the extra copies that
    /// repeated attempts deliver.
    pub async fn publish_durable(&self, message: &Message, publisher: &str) -> Result<u64> {
        let subject = self.core.subjects.durable(&message.topic)?;
        let body = self.envelope(&subject, message, publisher)?;
        self.store(subject, body, "storing a durable message").await
    }
}
