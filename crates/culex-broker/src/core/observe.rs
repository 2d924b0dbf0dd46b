//! Read-only views of the broker's state, for `$SYS`, metrics and the
//! admin API. Each takes the locks it needs briefly and returns owned
//! values; none changes anything. Lists come in pages: the items after a
//! cursor (the last key of the previous page), at most a given number, so
//! that no request copies the whole broker.

use ::core::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use culex_codec::{Protocol, SubscriptionOptions};

use super::drops::Drops;
use super::message::Message;
use super::sessions::{SessionHandle, SessionInner};
use super::state::Core;
use super::topics::{TopicDetail, TopicPage};

/// Sizes of the broker's state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Sessions, connected or not.
    pub sessions: usize,
    /// Clients connected now.
    pub connected: usize,
    /// Retained messages.
    pub retained: usize,
    /// Payload bytes of the retained messages.
    pub retained_bytes: usize,
    /// Subscriptions.
    pub subscriptions: usize,
}

/// What every session holds together (a walk over all of them).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SessionTotals {
    /// Outbound QoS 1/2 messages not yet acknowledged.
    pub inflight: u64,
    /// Messages waiting in queues.
    pub queued: u64,
}

/// One session, as the admin API shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientInfo {
    /// The client id.
    pub client_id: Arc<str>,
    /// Whether a connection holds the session.
    pub connected: bool,
    /// The user name it connected with.
    pub username: Option<Arc<str>>,
    /// The listener it came through (index in the config).
    pub listener: usize,
    /// The address of its last connection (`None` for a session restored
    /// from the store that nobody claimed since).
    pub address: Option<SocketAddr>,
    /// The protocol version of its last connection.
    pub protocol: Protocol,
    /// The keep-alive its last connection asked for, in seconds.
    pub keep_alive: u16,
    /// When its last connection claimed the session.
    pub connected_at: Option<Instant>,
    /// When its last connection left.
    pub disconnected_at: Option<Instant>,
    /// Seconds the session outlives its connection; `None`: forever.
    pub expiry: Option<u32>,
    /// Outbound QoS 1/2 messages not yet acknowledged.
    pub inflight: usize,
    /// Messages waiting in its queue.
    pub queued: usize,
    /// Messages dropped for it, by reason.
    pub drops: Drops,
    /// Its will, if it has one.
    pub will: Option<WillInfo>,
    /// Its subscriptions, by filter.
    pub subscriptions: Vec<SubscriptionInfo>,
}

/// A client's will, as the admin API shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WillInfo {
    /// Its topic.
    pub topic: Arc<str>,
    /// Its QoS.
    pub qos: culex_codec::QoS,
    /// Whether it is retained.
    pub retain: bool,
    /// Its payload's size.
    pub payload_len: usize,
    /// Its 5.0 Will Delay Interval, in seconds.
    pub delay: u32,
}

/// One subscription of a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionInfo {
    /// The client id.
    pub client_id: Arc<str>,
    /// The filter as subscribed (`$share/…` and mount point included).
    pub filter: String,
    /// The options granted.
    pub options: SubscriptionOptions,
    /// Its 5.0 subscription identifier.
    pub id: Option<u32>,
}

/// Which clients a page lists.
#[derive(Debug, Clone, Copy, Default)]
pub struct ClientQuery<'a> {
    /// Only clients whose id or user name contains this (ASCII case ignored).
    pub search: Option<&'a str>,
    /// Only connected clients.
    pub connected_only: bool,
    /// Only clients whose id sorts after this (the previous page's last).
    pub after: Option<&'a str>,
    /// At most this many.
    pub limit: usize,
}

/// A page of clients, by client id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientPage {
    /// The clients.
    pub clients: Vec<ClientInfo>,
    /// How many clients match the query in all (every page).
    pub matched: usize,
    /// Whether more follow this page.
    pub more: bool,
}

/// A page of retained messages, by topic.
#[derive(Debug, Clone)]
pub struct RetainedPage {
    /// The messages.
    pub messages: Vec<Arc<Message>>,
    /// How many match the filter in all.
    pub matched: usize,
    /// Whether more follow this page.
    pub more: bool,
}

impl Core {
    /// How much state the broker holds.
    pub fn counts(&self) -> Counts {
        let connected = self.stats.connected.load(Ordering::Relaxed);
        let (retained, retained_bytes) = {
            let r = self.retained.read();
            (r.len(), r.bytes())
        };
        Counts {
            sessions: self.sessions.len().max(connected),
            connected,
            retained,
            retained_bytes,
            subscriptions: self.subscriptions.read().len(),
        }
    }

    /// In-flight and queued messages of every session together: visits
    /// every session, for metrics (not for each message).
    pub fn session_totals(&self) -> SessionTotals {
        let mut totals = SessionTotals::default();
        for handle in self.sessions.all() {
            let inner = handle.inner.lock();
            totals.inflight += inner.session.inflight_len() as u64;
            totals.queued += inner.session.queued_len() as u64;
        }
        totals
    }

    /// A page of clients matching `query`, by client id.
    pub fn client_page(&self, query: &ClientQuery<'_>) -> ClientPage {
        let mut handles: Vec<Arc<SessionHandle>> = self.sessions.all();
        handles.retain(|h| self.client_matches(h, query));
        let matched = handles.len();
        handles.retain(|h| query.after.is_none_or(|a| &*h.client_id > a));
        let more = handles.len() > query.limit;
        smallest(&mut handles, query.limit, |a, b| {
            a.client_id.cmp(&b.client_id)
        });
        ClientPage {
            clients: handles
                .iter()
                .map(|h| client_info(&h.client_id, &h.inner.lock()))
                .collect(),
            matched,
            more,
        }
    }

    fn client_matches(&self, handle: &SessionHandle, query: &ClientQuery<'_>) -> bool {
        let search = query.search.filter(|s| !s.is_empty());
        if search.is_none() && !query.connected_only {
            return true;
        }
        let inner = handle.inner.lock();
        if query.connected_only && inner.conn.is_none() {
            return false;
        }
        search.is_none_or(|s| {
            contains_ignore_case(&handle.client_id, s)
                || inner
                    .username
                    .as_deref()
                    .is_some_and(|u| contains_ignore_case(u, s))
        })
    }

    /// Every session, sorted by client id.
    pub fn clients(&self) -> Vec<ClientInfo> {
        self.client_page(&ClientQuery {
            limit: usize::MAX,
            ..ClientQuery::default()
        })
        .clients
    }

    /// The session of `client_id`, if there is one.
    pub fn client(&self, client_id: &str) -> Option<ClientInfo> {
        let handle = self.sessions.get(client_id)?;
        let inner = handle.inner.lock();
        Some(client_info(&handle.client_id, &inner))
    }

    /// A page of every session's subscriptions whose filter contains
    /// `search` (all without), by filter then client id; `after` is the
    /// previous page's last (filter, client id).
    pub fn subscription_page(
        &self,
        search: Option<&str>,
        after: Option<(&str, &str)>,
        limit: usize,
    ) -> (Vec<SubscriptionInfo>, bool) {
        let mut all = Vec::new();
        for handle in self.sessions.all() {
            let inner = handle.inner.lock();
            for (filter, entry) in inner.session.subscriptions() {
                let key = (filter, &*handle.client_id);
                if search.is_some_and(|s| !filter.contains(s)) || after.is_some_and(|a| key <= a) {
                    continue;
                }
                all.push(SubscriptionInfo {
                    client_id: handle.client_id.clone(),
                    filter: filter.to_owned(),
                    options: entry.options,
                    id: entry.id,
                });
            }
        }
        let more = all.len() > limit;
        smallest(&mut all, limit, |a, b| {
            (&a.filter, &a.client_id).cmp(&(&b.filter, &b.client_id))
        });
        (all, more)
    }

    /// A page of the unexpired retained messages matching `filter` (a valid
    /// filter, no `$share/`), by topic, those after `after`.
    pub fn retained_page(
        &self,
        filter: &str,
        after: Option<&str>,
        limit: usize,
        now: Instant,
    ) -> RetainedPage {
        let mut all = self.retained.read().matching(filter, now);
        let matched = all.len();
        all.retain(|m| after.is_none_or(|a| &*m.topic > a));
        let more = all.len() > limit;
        smallest(&mut all, limit, |a, b| a.topic.cmp(&b.topic));
        RetainedPage {
            messages: all,
            matched,
            more,
        }
    }

    /// Whether anyone watches the topic tree ([`Core::watch_topics`]).
    pub fn topics_watched(&self) -> bool {
        self.topics.is_active()
    }

    /// A page of the children of the topic tree's node at `path` (`None`:
    /// the root) that changed after `since` (see [`TopicPage::seq`]); `None`
    /// when nobody watches or there is no such node.
    pub fn topic_children(
        &self,
        path: Option<&str>,
        since: u64,
        after: Option<&str>,
        limit: usize,
    ) -> Option<TopicPage> {
        self.topics
            .read(|v| v.children(path, since, after, limit))
            .flatten()
    }

    /// One topic of the topic tree with its latest messages; `None` when
    /// nobody watches or it carried nothing since.
    pub fn topic(&self, topic: &str) -> Option<TopicDetail> {
        self.topics.read(|v| v.topic(topic)).flatten()
    }

    /// Nodes in the topic tree, and messages to topics it had no room for.
    pub fn topic_tree_size(&self) -> (usize, u64) {
        self.topics
            .read(|v| (v.nodes(), v.untracked()))
            .unwrap_or_default()
    }
}

fn client_info(client_id: &Arc<str>, inner: &SessionInner) -> ClientInfo {
    let mut subscriptions: Vec<SubscriptionInfo> = inner
        .session
        .subscriptions()
        .map(|(f, e)| SubscriptionInfo {
            client_id: client_id.clone(),
            filter: f.to_owned(),
            options: e.options,
            id: e.id,
        })
        .collect();
    subscriptions.sort_by(|a, b| a.filter.cmp(&b.filter));
    ClientInfo {
        client_id: client_id.clone(),
        connected: inner.conn.is_some(),
        username: inner.username.clone(),
        listener: inner.listener as usize,
        address: inner.has_connected.then(|| inner.peer.get()),
        protocol: inner.protocol,
        keep_alive: inner.keep_alive,
        connected_at: inner.since.get().filter(|_| inner.conn.is_some()),
        disconnected_at: inner.since.get().filter(|_| inner.conn.is_none()),
        expiry: inner.expiry,
        inflight: inner.session.inflight_len(),
        queued: inner.session.queued_len(),
        drops: inner.session.drops(),
        will: inner.will.as_ref().map(|w| WillInfo {
            topic: w.topic.clone(),
            qos: w.qos,
            retain: w.retain,
            payload_len: w.payload.len(),
            delay: inner.will_delay,
        }),
        subscriptions,
    }
}

/// Keeps the `limit` smallest items of `items` by `key`, sorted: a partial
/// selection, so a page of a million items sorts only the page.
fn smallest<T>(items: &mut Vec<T>, limit: usize, cmp: impl Fn(&T, &T) -> std::cmp::Ordering) {
    if items.len() > limit && limit > 0 {
        items.select_nth_unstable_by(limit - 1, &cmp);
    }
    items.truncate(limit);
    items.sort_unstable_by(&cmp);
}

/// Whether `text` contains `needle`, ASCII letters compared without case.
fn contains_ignore_case(text: &str, needle: &str) -> bool {
    let (text, needle) = (text.as_bytes(), needle.as_bytes());
    needle.is_empty()
        || text
            .windows(needle.len())
            .any(|w| w.eq_ignore_ascii_case(needle))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_keep_the_smallest_in_order() {
        let mut v: Vec<u32> = (0..100).rev().collect();
        smallest(&mut v, 5, u32::cmp);
        assert_eq!(v, [0, 1, 2, 3, 4]);
        let mut w = vec![3, 1, 2];
        smallest(&mut w, 10, i32::cmp);
        assert_eq!(w, [1, 2, 3]);
        let mut e = vec![3, 1];
        smallest(&mut e, 0, i32::cmp);
        assert!(e.is_empty());
        assert!(contains_ignore_case("Sensor-42", "sensor"));
        assert!(!contains_ignore_case("abc", "abcd"));
    }
}
