//! Interest and inbound routing: one task owns the node's NATS
//! subscriptions (reference-counted per filter, then per subject pattern),
//! and one small task per subscription forwards what arrives, decoded and
//! de-duplicated, to [`Inbound`](crate::Inbound).
//!
//! A filter needs subscriptions of two kinds: `NS.m.…` for messages
//! published on core NATS (QoS 0) and `NS.q.…` for durable ones (QoS 1/2),
//! which a JetStream publish delivers to ordinary subscribers as well.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures_util::StreamExt;
use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, oneshot};
use tokio::task::AbortHandle;

use crate::dedup::Dedup;
use crate::error::{Error, Result};
use crate::message::{Envelope, NodeId};
use crate::node::Inbound;
use crate::subject::Subjects;

/// A change of interest, applied in call order by [`run`].
#[derive(Debug)]
pub(crate) enum InterestCommand {
    Add(String, Vec<SubscriptionKey>),
    Remove(String),
    Sync(oneshot::Sender<Result<()>>),
    /// The filters with at least one subscriber that are not shared.
    Filters(oneshot::Sender<Vec<String>>),
}

/// One NATS subscription: a subject pattern, in a queue group for a shared
/// filter.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct SubscriptionKey {
    subject: String,
    /// A `NS.q.…` pattern (durable messages), not `NS.m.…`.
    durable: bool,
    /// For `$share/G/F`: the queue group and the filter as given.
    shared: Option<(String, String)>,
}

/// The subscriptions a filter needs. Checks the filter and its length.
pub(crate) fn subscription_keys(subjects: &Subjects, filter: &str) -> Result<Vec<SubscriptionKey>> {
    let core = subjects.route_filters(filter)?;
    let durable = subjects.durable_filters(filter)?;
    let parsed = culex_codec::topic::TopicFilter::new(filter)
        .map_err(|err| Error::Topic(crate::subject::MapError::Filter(err)))?;
    let shared = parsed
        .share_group()
        .map(|group| (queue_group(group, parsed.match_filter()), filter.to_owned()));
    let core = core.into_iter().map(|subject| (subject, false));
    let durable = durable.into_iter().map(|subject| (subject, true));
    Ok(core
        .chain(durable)
        .map(|(subject, durable)| SubscriptionKey {
            subject,
            durable,
            shared: shared.clone(),
        })
        .collect())
}

/// A NATS queue group name for a shared subscription (G, F): a hash, since
/// group names and filters may hold anything.
fn queue_group(group: &str, filter: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(group.as_bytes());
    hasher.update([0]);
    hasher.update(filter.as_bytes());
    let digest = hasher.finalize();
    let mut name = String::with_capacity(34);
    name.push_str("g_");
    for byte in digest.iter().take(16) {
        name.push_str(&format!("{byte:02x}"));
    }
    name
}

/// What the forwarding tasks share, and recovery with them.
#[derive(Debug, Clone)]
pub(crate) struct Route {
    route: async_nats::Client,
    main: async_nats::Client,
    subjects: Subjects,
    id: NodeId,
    inbound: mpsc::Sender<Inbound>,
    /// Shared by the forwarders of ordinary subscriptions and recovery;
    /// held only to check one sequence number, never across an await.
    dedup: Arc<Mutex<Dedup>>,
}

impl Route {
    /// `route` is the `no_echo` connection, `main` the other one.
    pub(crate) fn new(
        route: &async_nats::Client,
        main: &async_nats::Client,
        subjects: &Subjects,
        id: &NodeId,
        inbound: mpsc::Sender<Inbound>,
    ) -> Route {
        Route {
            route: route.clone(),
            main: main.clone(),
            subjects: subjects.clone(),
            id: id.clone(),
            inbound,
            dedup: Arc::default(),
        }
    }

    /// Passes a message for the ordinary (not shared) subscriptions on as
    /// [`Inbound::Routed`], unless this node published it (durable
    /// publishes go out on the echo connection, so they come back) or a
    /// copy of it was passed on already. Returns whether it was passed on;
    /// fails once the receiver is gone.
    pub(crate) async fn pass_routed(&self, envelope: Envelope) -> Result<bool> {
        if envelope.origin == self.id {
            return Ok(false);
        }
        let first = match self.dedup.lock() {
            Ok(mut dedup) => dedup.first_copy(&envelope.origin, envelope.sequence),
            Err(poisoned) => poisoned
                .into_inner()
                .first_copy(&envelope.origin, envelope.sequence),
        };
        if !first {
            return Ok(false);
        }
        self.send(Inbound::Routed(envelope)).await?;
        Ok(true)
    }

    async fn send(&self, inbound: Inbound) -> Result<()> {
        self.inbound.send(inbound).await.map_err(|_| Error::Nats {
            operation: "passing a message on",
            source: "the inbound receiver was dropped".into(),
        })
    }
}

/// Stops a forwarding task (and so drops its subscription, which
/// unsubscribes) when dropped.
struct Forwarder(Option<AbortHandle>);

impl Drop for Forwarder {
    fn drop(&mut self) {
        if let Some(task) = &self.0 {
            task.abort();
        }
    }
}

/// The interest task: applies [`InterestCommand`]s in order.
pub(crate) async fn run(route: Route, mut commands: mpsc::UnboundedReceiver<InterestCommand>) {
    let mut interest = Interest::default();
    while let Some(command) = commands.recv().await {
        match command {
            InterestCommand::Add(filter, keys) => interest.add(&route, filter, keys).await,
            InterestCommand::Remove(filter) => interest.remove(&filter),
            InterestCommand::Sync(done) => {
                // The server handles a connection's protocol in order, so
                // an answered request means every earlier SUB was applied.
                let mut result = Ok(());
                for client in [&route.route, &route.main] {
                    if let Err(err) = client.request("$JS.API.INFO", "".into()).await {
                        result = Err(Error::nats("syncing interest")(err));
                    }
                }
                let _ = done.send(result);
            }
            InterestCommand::Filters(reply) => {
                let _ = reply.send(interest.plain_filters());
            }
        }
    }
}

/// The node's interest: subscribers per filter, then per subscription.
#[derive(Default)]
struct Interest {
    filters: HashMap<String, (usize, Vec<SubscriptionKey>)>,
    subscriptions: HashMap<SubscriptionKey, (usize, Forwarder)>,
}

impl Interest {
    async fn add(&mut self, route: &Route, filter: String, keys: Vec<SubscriptionKey>) {
        let (count, _) = self.filters.entry(filter).or_insert((0, keys.clone()));
        *count += 1;
        if *count > 1 {
            return;
        }
        for key in keys {
            if let Some((count, _)) = self.subscriptions.get_mut(&key) {
                *count += 1;
                continue;
            }
            let forwarder = subscribe(route, &key).await;
            self.subscriptions.insert(key, (1, forwarder));
        }
    }

    fn remove(&mut self, filter: &str) {
        let Some((count, keys)) = self.filters.get_mut(filter) else {
            return;
        };
        *count -= 1;
        if *count > 0 {
            return;
        }
        let keys = std::mem::take(keys);
        self.filters.remove(filter);
        for key in keys {
            if let Some((count, _)) = self.subscriptions.get_mut(&key) {
                *count -= 1;
                if *count == 0 {
                    self.subscriptions.remove(&key);
                }
            }
        }
    }

    fn plain_filters(&self) -> Vec<String> {
        self.filters
            .iter()
            .filter(|(_, (_, keys))| keys.iter().all(|key| key.shared.is_none()))
            .map(|(filter, _)| filter.clone())
            .collect()
    }
}

async fn subscribe(route: &Route, key: &SubscriptionKey) -> Forwarder {
    let subject = key.subject.clone();
    let subscribed = match &key.shared {
        None => route.route.subscribe(subject).await,
        Some((group, _)) => route.main.queue_subscribe(subject, group.clone()).await,
    };
    match subscribed {
        Ok(subscriber) => {
            let task = tokio::spawn(forward(route.clone(), subscriber, key.clone()));
            Forwarder(Some(task.abort_handle()))
        }
        Err(err) => {
            tracing::warn!("cluster: cannot subscribe to {}: {err}", key.subject);
            Forwarder(None)
        }
    }
}

/// Decodes what one subscription receives and passes it on.
async fn forward(route: Route, mut subscriber: async_nats::Subscriber, key: SubscriptionKey) {
    while let Some(message) = subscriber.next().await {
        let subject = message.subject.as_str();
        let topic = if key.durable {
            route.subjects.durable_topic(subject)
        } else {
            route.subjects.route_topic(subject)
        };
        let envelope = topic.map_err(|err| err.to_string()).and_then(|topic| {
            Envelope::decode(message.payload, topic).map_err(|err| err.to_string())
        });
        let envelope = match envelope {
            Ok(envelope) => envelope,
            Err(err) => {
                tracing::warn!("cluster: dropped a message on {}: {err}", message.subject);
                continue;
            }
        };
        let passed = match &key.shared {
            // A shared group sees this node's own messages too.
            Some((_, filter)) => {
                let filter = filter.clone();
                route.send(Inbound::Shared { filter, envelope }).await
            }
            None => route.pass_routed(envelope).await.map(drop),
        };
        if passed.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_filters_get_a_queue_group_per_group_and_filter() {
        let subjects = Subjects::new("culex");
        let a = subscription_keys(&subjects, "$share/g/a/#").expect("valid");
        let patterns: Vec<(&str, bool)> =
            a.iter().map(|k| (k.subject.as_str(), k.durable)).collect();
        assert_eq!(
            patterns,
            [
                ("culex.m.u.a", false),
                ("culex.m.u.a.>", false),
                ("culex.q.u.a", true),
                ("culex.q.u.a.>", true)
            ]
        );
        assert!(a
            .iter()
            .all(|k| k.shared == a[0].shared && k.shared.is_some()));
        let b = subscription_keys(&subjects, "$share/h/a/#").expect("valid");
        let c = subscription_keys(&subjects, "$share/g/a/+").expect("valid");
        assert_ne!(a[0].shared, b[0].shared);
        assert_ne!(a[0].shared, c[0].shared);
        let plain = subscription_keys(&subjects, "a/#").expect("valid");
        assert_eq!(plain[0].subject, a[0].subject);
        assert!(plain[0].shared.is_none());
        assert!(subscription_keys(&subjects, "a/#/b").is_err());
    }
}
