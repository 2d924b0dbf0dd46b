//! Read-only views of the broker's state, for `$SYS`, metrics and the
//! admin API. Each takes the locks it needs briefly and returns owned
//! values; none changes anything.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use culex_codec::QoS;

use super::sessions::SessionInner;
use super::state::Core;

/// Sizes of the broker's state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Sessions, connected or not.
    pub sessions: usize,
    /// Clients connected now.
    pub connected: usize,
    /// Retained messages.
    pub retained: usize,
    /// Subscriptions.
    pub subscriptions: usize,
}

/// One session, as the admin API lists it.
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
    /// Seconds the session outlives its connection; `None`: forever.
    pub expiry: Option<u32>,
    /// Outbound QoS 1/2 messages not yet acknowledged.
    pub inflight: usize,
    /// Messages waiting in its queue.
    pub queued: usize,
    /// Messages dropped for it by a limit.
    pub dropped: u64,
    /// Its subscriptions: filter (as subscribed) and granted QoS.
    pub subscriptions: Vec<(String, QoS)>,
    /// Whether it has a will.
    pub has_will: bool,
}

impl Core {
    /// How much state the broker holds.
    pub fn counts(&self) -> Counts {
        let connected = self.stats.connected.load(Ordering::Relaxed);
        Counts {
            sessions: self.sessions.len().max(connected),
            connected,
            retained: self.retained.read().len(),
            subscriptions: self.subscriptions.read().len(),
        }
    }

    /// Every session, sorted by client id.
    pub fn clients(&self) -> Vec<ClientInfo> {
        let mut all: Vec<ClientInfo> = self
            .sessions
            .all()
            .iter()
            .map(|h| client_info(&h.client_id, &h.inner.lock()))
            .collect();
        all.sort_by(|a, b| a.client_id.cmp(&b.client_id));
        all
    }

    /// The session of `client_id`, if there is one.
    pub fn client(&self, client_id: &str) -> Option<ClientInfo> {
        let handle = self.sessions.get(client_id)?;
        let inner = handle.inner.lock();
        Some(client_info(&handle.client_id, &inner))
    }
}

fn client_info(client_id: &Arc<str>, inner: &SessionInner) -> ClientInfo {
    let mut subscriptions: Vec<(String, QoS)> = inner
        .session
        .subscriptions()
        .map(|(f, e)| (f.to_owned(), e.options.qos))
        .collect();
    subscriptions.sort();
    ClientInfo {
        client_id: client_id.clone(),
        connected: inner.conn.is_some(),
        username: inner.username.clone(),
        listener: inner.listener,
        expiry: inner.expiry,
        inflight: inner.session.inflight_len(),
        queued: inner.session.queued_len(),
        dropped: inner.session.dropped(),
        subscriptions,
        has_will: inner.will.is_some(),
    }
}
