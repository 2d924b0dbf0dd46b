//! Tier B: QoS 1/2 messages stored in the `NS_MSGS` stream before PUBACK.
//!
//! A durable publish is a JetStream publish to `NS.q.<topic>`. JetStream
//! stores it, and NATS also delivers it, as any message, to the nodes
//! subscribed to matching `NS.q.…` patterns: that is how it is routed. The
//! stream is then read back to rebuild what a node missed: a crashed
//! node's sessions ([`Node::replay`]) or a gap in a live node's routed
//! traffic ([`Node::recover_routed`]).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_nats::jetstream::consumer::DeliverPolicy;
use async_nats::jetstream::stream::{Config, DiscardPolicy, RetentionPolicy, StorageType};
use tokio::sync::oneshot;

use crate::error::{Error, Result};
use crate::message::{Envelope, Message};
use crate::node::{first_sequence, Node, Options, Scan, Stored};
use crate::routing::InterestCommand;
use crate::subject::Subjects;

/// The most stored messages [`Node::recover_routed`] reads in one call.
const MAX_RECOVERED: usize = 1_000_000;

impl Node {
    /// Stores a locally published QoS 1/2 message in the `MSGS` stream and
    /// so sends it to the other nodes with a matching subscriber, instead
    /// of [`Node::publish`]. Returns the stream sequence once JetStream
    /// acknowledged the write (replicated to a majority): answer the
    /// PUBLISH after that. Attempts are repeated with one `Nats-Msg-Id`
    /// until [`Options::store_timeout`]; the stream keeps one copy, and
    /// receivers drop the extra copies that repeated attempts deliver.
    pub async fn publish_durable(&self, message: &Message, publisher: &str) -> Result<u64> {
        let subject = self.core.subjects.durable(&message.topic)?;
        let body = self.envelope(&subject, message, publisher)?;
        self.store(subject, body, "storing a durable message").await
    }

    /// The durable messages stored at or after `since` (the stream's clock)
    /// whose topic matches any of `filters` (a `$share/G/` prefix is
    /// ignored), oldest first, at most `limit`. This node's own messages
    /// are included; nothing is de-duplicated. For rebuilding the sessions
    /// of a node that crashed: their QoS 1/2 messages since it was last
    /// known to have delivered them. One short-lived ordered consumer.
    pub async fn replay(
        &self,
        since: SystemTime,
        filters: &[String],
        limit: usize,
    ) -> Result<Vec<Envelope>> {
        if filters.is_empty() || limit == 0 {
            return Ok(Vec::new());
        }
        let selection = self.core.subjects.durable_selection(filters)?;
        // A widened selection reads more than asked for: match here too.
        let matching: Vec<&str> = if selection.exact {
            Vec::new()
        } else {
            filters.iter().map(|filter| match_filter(filter)).collect()
        };
        let mut scan = self.scan_durable(since, selection.subjects).await?;
        let mut found = Vec::new();
        while found.len() < limit {
            let Some(stored) = scan.next().await? else {
                break;
            };
            let Some(envelope) = self.durable_envelope(stored) else {
                continue;
            };
            let topic = envelope.message.topic.as_str();
            if selection.exact
                || matching
                    .iter()
                    .any(|filter| culex_codec::topic::matches(filter, topic))
            {
                found.push(envelope);
            }
        }
        Ok(found)
    }

    /// Fills a gap in this node's routed traffic, after its NATS connection
    /// was lost and came back ([`Event::Connected`](crate::Event)): passes
    /// on as [`Inbound::Routed`](crate::Inbound) the durable messages stored
    /// at or after `since` (the stream's clock: take the time of
    /// [`Event::Disconnected`](crate::Event) less a margin for clock skew)
    /// that match the node's current interest and that it has not passed on
    /// already. Shared filters are left out (their messages went to other
    /// members), and so are this node's own messages.
    ///
    /// Copies are recognised by the same record of recent sequence numbers
    /// as live traffic (the last 8,192 per origin), so a `since` far back
    /// can deliver messages a second time. The selection may be wider than
    /// the interest (overlapping filters, very many of them): the broker's
    /// matching drops what no subscription matches. Reads at most 1,000,000
    /// messages. Returns how many it passed on.
    pub async fn recover_routed(&self, since: SystemTime) -> Result<usize> {
        // Subscriptions come back with the connection: make sure the
        // server has them, so that whatever the scan misses arrives live.
        self.interest_synced().await?;
        let (tx, rx) = oneshot::channel();
        self.send_interest(InterestCommand::Filters(tx))?;
        let filters = rx.await.map_err(Error::nats("reading the interest"))?;
        if filters.is_empty() {
            return Ok(0);
        }
        let selection = self.core.subjects.durable_selection(&filters)?;
        let mut scan = self.scan_durable(since, selection.subjects).await?;
        let (mut read, mut passed) = (0, 0);
        while read < MAX_RECOVERED {
            let Some(stored) = scan.next().await? else {
                break;
            };
            read += 1;
            let Some(envelope) = self.durable_envelope(stored) else {
                continue;
            };
            if self.core.routing.pass_routed(envelope).await? {
                passed += 1;
            }
        }
        if !scan.finished() {
            tracing::warn!(
                "cluster: recovery stopped after {read} stored messages; later ones are not passed on"
            );
        }
        Ok(passed)
    }

    /// An ordered consumer of the `MSGS` messages on `subjects` stored at
    /// or after `since`.
    async fn scan_durable(&self, since: SystemTime, subjects: Vec<String>) -> Result<Scan> {
        // The stream's time type cannot hold every SystemTime; nothing is
        // stored before 1970 or a year from now anyway.
        let latest = SystemTime::now() + Duration::from_secs(366 * 24 * 3600);
        let by_time = DeliverPolicy::ByStartTime {
            start_time: since.clamp(UNIX_EPOCH, latest).into(),
        };
        let (stream, timeout) = (&self.core.messages, self.core.options.store_timeout);
        if subjects.is_empty() {
            return Ok(Scan::empty(timeout));
        }
        if subjects.len() == 1 {
            return Scan::open(stream, subjects, by_time, timeout).await;
        }
        // A consumer with several filters that starts by time can start too
        // late (nats-server 2.15.1 skips messages, measured): find where
        // `since` starts without a filter, and start there by sequence.
        let Some(start) = first_sequence(stream, by_time, timeout).await? else {
            return Ok(Scan::empty(timeout));
        };
        let by_sequence = DeliverPolicy::ByStartSequence {
            start_sequence: start,
        };
        Scan::open(stream, subjects, by_sequence, timeout).await
    }

    /// Decodes a message read from `MSGS`; one that does not decode is
    /// skipped, as in live traffic.
    fn durable_envelope(&self, stored: Stored) -> Option<Envelope> {
        let decoded = self
            .core
            .subjects
            .durable_topic(&stored.subject)
            .map_err(|err| err.to_string())
            .and_then(|topic| {
                Envelope::decode(stored.payload, topic).map_err(|err| err.to_string())
            });
        match decoded {
            Ok(envelope) => Some(envelope),
            Err(err) => {
                tracing::warn!(
                    "cluster: skipped stored message {} on {}: {err}",
                    stored.sequence,
                    stored.subject
                );
                None
            }
        }
    }
}

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

/// The filter messages are matched against (without `$share/G/`); the
/// filter was checked when the selection was made.
fn match_filter(filter: &str) -> &str {
    culex_codec::topic::TopicFilter::new(filter).map_or(filter, |parsed| parsed.match_filter())
}
