//! Interest and inbound routing: one task owns the node's NATS
//! subscriptions (reference-counted per filter, then per subject pattern),
//! and one small task per subscription forwards what arrives, decoded and
//! de-duplicated, to [`Inbound`](crate::Inbound).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures_util::StreamExt;
use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, oneshot};
use tokio::task::AbortHandle;

use crate::dedup::Dedup;
use crate::error::{Error, Result};
use crate::message::Envelope;
use crate::node::{Core, Inbound};
use crate::subject::Subjects;

/// A change of interest, applied in call order by [`run`].
#[derive(Debug)]
pub(crate) enum InterestCommand {
    Add(String, Vec<SubscriptionKey>),
    Remove(String),
    Sync(oneshot::Sender<Result<()>>),
}

/// One NATS subscription: a subject pattern, in a queue group for a shared
/// filter.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct SubscriptionKey {
    subject: String,
    /// For `$share/G/F`: the queue group and the filter as given.
    shared: Option<(String, String)>,
}

/// The subscriptions a filter needs. Checks the filter and its length.
pub(crate) fn subscription_keys(subjects: &Subjects, filter: &str) -> Result<Vec<SubscriptionKey>> {
    let patterns = subjects.route_filters(filter)?;
    let parsed = culex_codec::topic::TopicFilter::new(filter)
        .map_err(|err| Error::Topic(crate::subject::MapError::Filter(err)))?;
    let shared = parsed
        .share_group()
        .map(|group| (queue_group(group, parsed.match_filter()), filter.to_owned()));
    Ok(patterns
        .into_iter()
        .map(|subject| SubscriptionKey {
            subject,
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

/// What the forwarding tasks share.
#[derive(Debug, Clone)]
pub(crate) struct Route {
    route: async_nats::Client,
    main: async_nats::Client,
    subjects: Subjects,
    inbound: mpsc::Sender<Inbound>,
    /// Shared by the forwarders of ordinary subscriptions; held only to
    /// check one sequence number, never across an await.
    dedup: Arc<Mutex<Dedup>>,
}

impl Route {
    pub(crate) fn new(core: &Core, inbound: mpsc::Sender<Inbound>) -> Route {
        Route {
            route: core.route.clone(),
            main: core.main.clone(),
            subjects: core.subjects.clone(),
            inbound,
            dedup: Arc::default(),
        }
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
    let mut filters: HashMap<String, (usize, Vec<SubscriptionKey>)> = HashMap::new();
    let mut subscriptions: HashMap<SubscriptionKey, (usize, Forwarder)> = HashMap::new();
    while let Some(command) = commands.recv().await {
        match command {
            InterestCommand::Add(filter, keys) => {
                let (count, _) = filters.entry(filter).or_insert((0, keys.clone()));
                *count += 1;
                if *count > 1 {
                    continue;
                }
                for key in keys {
                    if let Some((count, _)) = subscriptions.get_mut(&key) {
                        *count += 1;
                        continue;
                    }
                    let forwarder = subscribe(&route, &key).await;
                    subscriptions.insert(key, (1, forwarder));
                }
            }
            InterestCommand::Remove(filter) => {
                let Some((count, keys)) = filters.get_mut(&filter) else {
                    continue;
                };
                *count -= 1;
                if *count > 0 {
                    continue;
                }
                let keys = std::mem::take(keys);
                filters.remove(&filter);
                for key in keys {
                    if let Some((count, _)) = subscriptions.get_mut(&key) {
                        *count -= 1;
                        if *count == 0 {
                            subscriptions.remove(&key);
                        }
                    }
                }
            }
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
        }
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
            let task = tokio::spawn(forward(route.clone(), subscriber, key.shared.clone()));
            Forwarder(Some(task.abort_handle()))
        }
        Err(err) => {
            tracing::warn!("cluster: cannot subscribe to {}: {err}", key.subject);
            Forwarder(None)
        }
    }
}

/// Decodes what one subscription receives and passes it on.
async fn forward(
    route: Route,
    mut subscriber: async_nats::Subscriber,
    shared: Option<(String, String)>,
) {
    while let Some(message) = subscriber.next().await {
        let envelope = route
            .subjects
            .route_topic(message.subject.as_str())
            .map_err(|err| err.to_string())
            .and_then(|topic| {
                Envelope::decode(message.payload, topic).map_err(|err| err.to_string())
            });
        let envelope = match envelope {
            Ok(envelope) => envelope,
            Err(err) => {
                tracing::warn!("cluster: dropped a message on {}: {err}", message.subject);
                continue;
            }
        };
        let inbound = match &shared {
            Some((_, filter)) => Inbound::Shared {
                filter: filter.clone(),
                envelope,
            },
            None => {
                let first = match route.dedup.lock() {
                    Ok(mut dedup) => dedup.first_copy(&envelope.origin, envelope.sequence),
                    Err(poisoned) => poisoned
                        .into_inner()
                        .first_copy(&envelope.origin, envelope.sequence),
                };
                if !first {
                    continue;
                }
                Inbound::Routed(envelope)
            }
        };
        if route.inbound.send(inbound).await.is_err() {
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
        assert_eq!(a.len(), 2);
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
