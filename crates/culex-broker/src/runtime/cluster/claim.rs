//! A connecting client's session, made this node's before its CONNACK.
//!
//! 1. The record is claimed by compare-and-set: this node owns the client
//!    id from now on, and the previous owner's later writes are fenced.
//! 2. Unless the client starts clean, the previous session's subscriptions
//!    are installed here first and routed to this node (make before break:
//!    a message published meanwhile reaches one node or both, never none).
//! 3. The previous owner is kicked: it closes the old connection and hands
//!    over the session's messages, which go ahead of any queued since.
//!    When it cannot (it died, or the session is too large for one NATS
//!    message), the durable stream is replayed from the record's cursor.
//! 4. The connection then claims the session in the core like any other.

use std::time::Instant;

use culex_cluster::{KickOutcome, Node, SessionRecord, Will};

use super::records::{cursor_ms, replay_filters};
use super::wire::{self, RecordBody};
use super::ClusterLink;
use crate::core::store::SessionSnapshot;
use crate::core::Core;
use crate::protocol::{ClaimOutcome, ClusterClaim};

/// The most messages a replay brings back for one session.
const REPLAY_LIMIT: usize = 100_000;

impl ClusterLink {
    /// Makes `claim`'s session this node's (see the module docs).
    pub async fn claim(&self, claim: ClusterClaim) -> ClaimOutcome {
        let persistent = claim.expiry != Some(0);
        let refused = if persistent {
            ClaimOutcome::Unavailable
        } else {
            ClaimOutcome::Ready
        };
        let (Some(node), Some(core)) = (self.node_if_up(), self.core()) else {
            return refused;
        };
        let now = Instant::now();
        let record = SessionRecord {
            client_id: claim.client_id.to_string(),
            owner: node.id().clone(),
            epoch: 0,
            expiry_interval: claim.expiry.unwrap_or(u32::MAX),
            connected: true,
            will: claim.will.as_ref().map(|(w, delay)| Will {
                message: wire::to_cluster(w, now),
                delay_interval: *delay,
            }),
            subscriptions: wire::encode_record(&RecordBody {
                cursor_ms: cursor_ms(None),
                subscriptions: Vec::new(),
            }),
        };
        let claimed = match node.claim(&claim.client_id, record).await {
            Ok(claimed) => claimed,
            Err(e) => {
                tracing::warn!("Cluster: session of {} not claimed: {e}", claim.client_id);
                return refused;
            }
        };
        self.records.own(claimed.record.clone(), claimed.revision);
        let Some(previous) = claimed.previous.clone() else {
            return ClaimOutcome::Ready;
        };
        // Taken over from a connection of this very node: the core does it.
        if previous.owner == *node.id() {
            return ClaimOutcome::Ready;
        }
        let take = !claim.clean_start && previous.expiry_interval != 0;
        let body = wire::decode_record(previous.subscriptions.clone()).unwrap_or_default();
        if take {
            core.install_session(
                SessionSnapshot {
                    client_id: claim.client_id.to_string(),
                    expiry_interval: expiry(previous.expiry_interval),
                    subscriptions: body.subscriptions.clone(),
                    ..SessionSnapshot::default()
                },
                now,
            );
            if let Err(e) = node.interest_synced().await {
                tracing::debug!("Cluster: interest of {} not synced: {e}", claim.client_id);
            }
        }
        let kicked = node.kick(&claimed).await;
        if !take {
            return ClaimOutcome::Ready;
        }
        let handed = match kicked {
            Ok(KickOutcome::Kicked { pending }) => {
                match wire::decode_session(pending, &claim.client_id, Instant::now()) {
                    Ok((saved, true)) => Some(saved),
                    Ok((_, false)) => None,
                    Err(e) => {
                        tracing::warn!("Cluster: session of {} unreadable: {e}", claim.client_id);
                        None
                    }
                }
            }
            Ok(_) => None,
            Err(e) => {
                tracing::warn!(
                    "Cluster: previous node of {} not asked: {e}",
                    claim.client_id
                );
                None
            }
        };
        match handed {
            Some(saved) => core.install_session(saved, Instant::now()),
            None => {
                replay_into(
                    &node,
                    &core,
                    &claim.client_id,
                    &body,
                    previous.expiry_interval,
                )
                .await
            }
        }
        ClaimOutcome::Ready
    }
}

/// A session's expiry as the core keeps it.
pub(super) fn expiry(interval: u32) -> Option<u32> {
    (interval != u32::MAX).then_some(interval)
}

/// Rebuilds a session whose node is gone from the durable stream: every
/// stored QoS 1/2 message since the record's cursor that matches its
/// subscriptions, queued at the QoS it was subscribed with. Its client
/// may get some of them a second time.
pub(super) async fn replay_into(
    node: &Node,
    core: &Core,
    client_id: &str,
    body: &RecordBody,
    expiry_interval: u32,
) {
    let filters = replay_filters(body);
    let since = wire::system_time(body.cursor_ms);
    let found = if filters.is_empty() {
        Vec::new()
    } else {
        match node.replay(since, &filters, REPLAY_LIMIT).await {
            Ok(found) => found,
            Err(e) => {
                tracing::warn!("Cluster: messages of {client_id} not replayed: {e}");
                Vec::new()
            }
        }
    };
    let now = Instant::now();
    let mut queued = Vec::new();
    for envelope in found {
        let Ok(msg) = wire::from_cluster(envelope.message, Some(&envelope.publisher), now) else {
            continue;
        };
        let granted = body
            .subscriptions
            .iter()
            .filter(|(f, _, _)| culex_codec::topic::matches(f, &msg.topic))
            .filter(|(_, o, _)| !(o.no_local && msg.origin.as_deref() == Some(client_id)))
            .map(|(_, o, _)| o.qos)
            .max();
        if let Some(qos) = granted {
            queued.push((msg.clone(), msg.qos.min(qos)));
        }
    }
    if !queued.is_empty() {
        tracing::info!(
            "Cluster: session of {client_id} rebuilt with {} stored messages.",
            queued.len()
        );
    }
    core.install_session(
        SessionSnapshot {
            client_id: client_id.to_owned(),
            expiry_interval: expiry(expiry_interval),
            subscriptions: body.subscriptions.clone(),
            queued,
            ..SessionSnapshot::default()
        },
        now,
    );
}
