//! The session records this node owns in the cluster: written when a
//! session's subscriptions, will or connection change, released when it
//! ends, and their replay cursor moved on now and then. Writes are
//! coalesced per session and fenced by revision: a write that finds the
//! session claimed by another node (`Fenced`) means it is theirs, and the
//! session here goes.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use culex_cluster::{Node, SessionRecord, Will};
use parking_lot::Mutex;
use tokio::sync::Notify;

use super::wire::{self, RecordBody};
use super::ClusterLink;
use crate::core::remote::SessionState;
use crate::core::Core;

/// How far before the oldest unacknowledged message a cursor is put: the
/// clocks of two nodes, and a message's way from JetStream to this node.
const CURSOR_MARGIN: Duration = Duration::from_secs(5);

/// How often the cursors of sessions with nothing pending move on.
const CURSOR_EVERY: Duration = Duration::from_secs(10);

/// Writes done at once, at most.
const WRITES_AT_ONCE: usize = 64;

/// One owned session.
#[derive(Debug)]
struct Owned {
    record: SessionRecord,
    /// The broker's part of `record`, decoded.
    body: RecordBody,
    revision: u64,
}

/// Owned sessions, and those waiting for a write.
#[derive(Debug, Default)]
pub(super) struct Records {
    owned: Mutex<HashMap<Arc<str>, Owned>>,
    /// Changed since written (`false`) or ended (`true`).
    dirty: Mutex<HashMap<Arc<str>, bool>>,
    wake: Notify,
}

impl Records {
    /// This node now owns `record` at `revision` (claimed or adopted).
    pub fn own(&self, record: SessionRecord, revision: u64) {
        let client_id: Arc<str> = Arc::from(record.client_id.as_str());
        let body = wire::decode_record(record.subscriptions.clone()).unwrap_or_default();
        self.owned.lock().insert(
            client_id,
            Owned {
                record,
                body,
                revision,
            },
        );
    }

    /// Another node owns it now.
    pub fn disown(&self, client_id: &str) {
        self.owned.lock().remove(client_id);
        self.dirty.lock().remove(client_id);
    }

    pub fn changed(&self, client_id: &str) {
        if self.owned.lock().contains_key(client_id) {
            self.dirty
                .lock()
                .entry(Arc::from(client_id))
                .or_insert(false);
            self.wake.notify_one();
        }
    }

    pub fn ended(&self, client_id: &str) {
        if self.owned.lock().contains_key(client_id) {
            self.dirty.lock().insert(Arc::from(client_id), true);
            self.wake.notify_one();
        }
    }

    fn take_dirty(&self) -> Vec<(Arc<str>, bool)> {
        self.dirty.lock().drain().collect()
    }

    fn owned_ids(&self) -> Vec<Arc<str>> {
        self.owned.lock().keys().cloned().collect()
    }
}

/// Writes changed records until shutdown; moves cursors on every
/// [`CURSOR_EVERY`].
pub(super) async fn run(
    link: Arc<ClusterLink>,
    node: Node,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(CURSOR_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = link.records.wake.notified() => {}
            _ = tick.tick() => {
                for id in link.records.owned_ids() {
                    link.records.changed(&id);
                }
            }
            _ = crate::runtime::state::shutdown_requested(&mut shutdown) => return,
        }
        if link.up.load(std::sync::atomic::Ordering::Acquire) {
            write_dirty(&link, &node).await;
        }
    }
}

async fn write_dirty(link: &ClusterLink, node: &Node) {
    let Some(core) = link.core() else {
        return;
    };
    let dirty = link.records.take_dirty();
    for chunk in dirty.chunks(WRITES_AT_ONCE) {
        let writes = chunk
            .iter()
            .map(|(id, ended)| write_one(link, node, &core, id, *ended, false));
        futures_util::future::join_all(writes).await;
    }
}

/// At shutdown (wills already published): every owned session's record
/// says it is offline without a will; clean ones are released.
pub(super) async fn flush_all(link: &ClusterLink, node: &Node) {
    let Some(core) = link.core() else {
        return;
    };
    let ids = link.records.owned_ids();
    for chunk in ids.chunks(WRITES_AT_ONCE) {
        let writes = chunk
            .iter()
            .map(|id| write_one(link, node, &core, id, false, true));
        futures_util::future::join_all(writes).await;
    }
}

/// Writes one record; `leaving`: as at shutdown.
async fn write_one(
    link: &ClusterLink,
    node: &Node,
    core: &Core,
    client_id: &Arc<str>,
    ended: bool,
    leaving: bool,
) {
    let state = core.session_state(client_id);
    let Some((record, body, revision)) = link
        .records
        .owned
        .lock()
        .get(client_id)
        .map(|o| (o.record.clone(), o.body.clone(), o.revision))
    else {
        return;
    };
    let clean = state.as_ref().is_none_or(|s| s.expiry == Some(0));
    if ended || state.is_none() || (leaving && clean) {
        link.records.owned.lock().remove(client_id);
        if let Err(e) = node.release(client_id, revision).await {
            tracing::debug!("Cluster: session of {client_id} not released: {e}");
        }
        return;
    }
    let Some(state) = state else {
        return;
    };
    // A clean session's record only matters for its will, set at claim.
    if clean && !leaving {
        return;
    }
    let (new, new_body) = updated(record.clone(), &state, leaving);
    let only_cursor = new.connected == record.connected
        && new.will == record.will
        && new.expiry_interval == record.expiry_interval
        && new_body.subscriptions == body.subscriptions;
    let step = u64::try_from(CURSOR_EVERY.as_millis()).unwrap_or(u64::MAX);
    if only_cursor && !leaving && new_body.cursor_ms < body.cursor_ms.saturating_add(step) {
        return;
    }
    match node.update_session(&new, revision).await {
        Ok(revision) => {
            if let Some(owned) = link.records.owned.lock().get_mut(client_id) {
                owned.record = new;
                owned.body = new_body;
                owned.revision = revision;
            }
        }
        Err(culex_cluster::Error::Fenced) => {
            // Another node claimed it: it is theirs.
            tracing::info!("Cluster: session of {client_id} is owned by another node now.");
            link.records.disown(client_id);
            core.export_session(client_id, Instant::now());
        }
        Err(e) => {
            tracing::warn!("Cluster: session of {client_id} not written: {e}");
            link.records.changed(client_id);
        }
    }
}

/// Where a session's replay would start if it were rebuilt now: before
/// the oldest message its client has not acknowledged.
pub(super) fn cursor_ms(oldest_pending: Option<Instant>) -> u64 {
    let now = Instant::now();
    wire::unix_ms(oldest_pending.unwrap_or(now), now)
        .saturating_sub(u64::try_from(CURSOR_MARGIN.as_millis()).unwrap_or(0))
}

/// The record of a session as it stands, and its body.
fn updated(
    mut record: SessionRecord,
    state: &SessionState,
    leaving: bool,
) -> (SessionRecord, RecordBody) {
    let now = Instant::now();
    let cursor_ms = cursor_ms(state.oldest_pending);
    record.expiry_interval = state.expiry.unwrap_or(u32::MAX);
    record.connected = state.connected && !leaving;
    record.will = match (&state.will, leaving) {
        (Some((will, delay)), false) => Some(Will {
            message: wire::to_cluster(will, now),
            delay_interval: *delay,
        }),
        _ => None,
    };
    let body = RecordBody {
        cursor_ms,
        subscriptions: state.subscriptions.clone(),
    };
    record.subscriptions = wire::encode_record(&body);
    (record, body)
}

/// Filters of a record's subscriptions that the durable stream can be
/// replayed by (shared ones are served by their group).
pub(super) fn replay_filters(body: &RecordBody) -> Vec<String> {
    let filters: HashSet<String> = body
        .subscriptions
        .iter()
        .filter(|(f, _, _)| !f.starts_with("$share/"))
        .map(|(f, _, _)| f.clone())
        .collect();
    filters.into_iter().collect()
}
