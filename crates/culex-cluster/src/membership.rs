//! Membership (bucket `NODES`): each node renews its key `n.<name>` every
//! heartbeat; the bucket's max age removes the key of a node that stopped.
//! Each node watches the bucket, and when a peer's key goes (deleted, a new
//! incarnation, or no renewal for a whole `node_ttl`, confirmed by a read),
//! adopts the sessions the dead node owned: a compare-and-set per session,
//! so exactly one survivor wins each.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use async_nats::jetstream::kv;
use bytes::Bytes;
use futures_util::StreamExt;
use tokio::task::JoinSet;

use crate::error::{Error, Result};
use crate::message::NodeId;
use crate::node::{scan, Core, Event};
use crate::session::{Adoption, SessionRecord};
use crate::wire::{Reader, Writer};

/// The membership key of a node.
pub(crate) fn key(name: &str) -> String {
    format!("n.{name}")
}

fn value(id: &NodeId) -> Bytes {
    Writer::new(8).u64(id.incarnation).finish()
}

fn incarnation(value: Bytes) -> Option<u64> {
    Reader::new(value).ok()?.u64().ok()
}

/// How long the first heartbeat is tried again, and the pause between tries.
const REGISTER_FOR: std::time::Duration = std::time::Duration::from_secs(2);
const REGISTER_RETRY: std::time::Duration = std::time::Duration::from_millis(100);

/// The first heartbeat, before anything else: a node owns no session
/// before other nodes can see it.
///
/// On a NATS cluster that has just created the bucket (this node or
/// another, a moment ago), the first write can fail with "no stream found"
/// until the bucket's replicas have elected a leader: a failed write is
/// tried again until two seconds have passed since the first, then the
/// node gives up (a NATS that does not answer at all costs one store
/// timeout per try).
pub(crate) async fn register(core: &Core) -> Result<()> {
    let give_up = Instant::now() + REGISTER_FOR;
    let mut tries = 1;
    loop {
        match core.nodes.put(key(&core.id.name), value(&core.id)).await {
            Ok(_) => return Ok(()),
            Err(err) if Instant::now() < give_up => {
                tracing::debug!("cluster: joining, try {tries}: {err}");
                tries += 1;
                tokio::time::sleep(REGISTER_RETRY).await;
            }
            Err(err) => return Err(Error::nats("joining the cluster")(err)),
        }
    }
}

/// Renews the membership key until another process takes the name.
pub(crate) async fn heartbeat(core: Arc<Core>) {
    let key = key(&core.id.name);
    let mut ticks = tokio::time::interval(core.options.heartbeat_interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        match core.nodes.entry(key.as_str()).await {
            Ok(Some(entry))
                if entry.operation == kv::Operation::Put
                    && incarnation(entry.value.clone())
                        .is_some_and(|i| i > core.id.incarnation) =>
            {
                let by = NodeId {
                    name: core.id.name.clone(),
                    incarnation: incarnation(entry.value).unwrap_or_default(),
                };
                tracing::error!("cluster: node name {} taken by {by}", core.id.name);
                let _ = core.events.send(Event::NameTaken(by)).await;
                return;
            }
            Ok(_) => {}
            // Cut off: the next tick tries again.
            Err(_) => continue,
        }
        if let Err(err) = core.nodes.put(key.as_str(), value(&core.id)).await {
            tracing::warn!("cluster: heartbeat failed: {err}");
        }
    }
}

struct Peer {
    incarnation: u64,
    last_seen: Instant,
}

/// Watches the membership bucket, reports joins and leaves, and starts
/// adoptions.
pub(crate) async fn watch(core: Arc<Core>) {
    let mut peers: HashMap<String, Peer> = HashMap::new();
    let mut adoptions = JoinSet::new();
    let mut swept = false;
    let mut ticks = tokio::time::interval(core.options.heartbeat_interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let mut entries = match core.nodes.watch_with_history(">").await {
            Ok(entries) => entries,
            Err(err) => {
                tracing::warn!("cluster: cannot watch membership: {err}");
                ticks.tick().await;
                continue;
            }
        };
        loop {
            tokio::select! {
                entry = entries.next() => {
                    let Some(Ok(entry)) = entry else {
                        break;
                    };
                    let caught_up = entry.delta == 0;
                    let downs = on_entry(&core, &mut peers, entry).await;
                    for dead in downs {
                        adoptions.spawn(adopt(core.clone(), Some(dead)));
                    }
                    if caught_up && !swept {
                        swept = true;
                        adoptions.spawn(adopt(core.clone(), None));
                    }
                }
                _ = ticks.tick() => {
                    for dead in expired(&core, &mut peers).await {
                        adoptions.spawn(adopt(core.clone(), Some(dead)));
                    }
                }
                Some(_) = adoptions.join_next(), if !adoptions.is_empty() => {}
            }
        }
    }
}

/// Applies one membership change; returns the nodes now known dead.
async fn on_entry(core: &Core, peers: &mut HashMap<String, Peer>, entry: kv::Entry) -> Vec<NodeId> {
    let Some(name) = entry.key.strip_prefix("n.") else {
        return Vec::new();
    };
    if name == core.id.name {
        return Vec::new();
    }
    let mut downs = Vec::new();
    let current = match entry.operation {
        kv::Operation::Put => incarnation(entry.value.clone()),
        kv::Operation::Delete | kv::Operation::Purge => None,
    };
    let known = peers.get(name).map(|peer| peer.incarnation);
    if known.is_some() && known != current {
        if let Some(peer) = peers.remove(name) {
            downs.push(NodeId {
                name: name.to_owned(),
                incarnation: peer.incarnation,
            });
        }
    }
    if let Some(incarnation) = current {
        let peer = peers.entry(name.to_owned()).or_insert(Peer {
            incarnation,
            last_seen: Instant::now(),
        });
        peer.last_seen = Instant::now();
        if known != Some(incarnation) {
            let up = NodeId {
                name: name.to_owned(),
                incarnation,
            };
            let _ = core.events.send(Event::NodeUp(up)).await;
        }
    }
    for dead in &downs {
        let _ = core.events.send(Event::NodeDown(dead.clone())).await;
    }
    downs
}

/// Peers silent for a whole TTL whose key is really current (a read
/// confirms: the watch itself may be lagging).
async fn expired(core: &Core, peers: &mut HashMap<String, Peer>) -> Vec<NodeId> {
    let ttl = core.options.node_ttl;
    let silent: Vec<(String, u64)> = peers
        .iter()
        .filter(|(_, peer)| peer.last_seen.elapsed() > ttl)
        .map(|(name, peer)| (name.clone(), peer.incarnation))
        .collect();
    let mut downs = Vec::new();
    for (name, incarnation) in silent {
        let dead = NodeId { name, incarnation };
        match is_alive(core, &dead).await {
            Some(true) => {
                if let Some(peer) = peers.get_mut(&dead.name) {
                    peer.last_seen = Instant::now();
                }
            }
            Some(false) => {
                peers.remove(&dead.name);
                let _ = core.events.send(Event::NodeDown(dead.clone())).await;
                downs.push(dead);
            }
            // Cannot tell while cut off from NATS.
            None => {}
        }
    }
    downs
}

/// Whether `node`'s membership key is there with its incarnation; `None`
/// when the store cannot be read.
async fn is_alive(core: &Core, node: &NodeId) -> Option<bool> {
    match core.nodes.entry(key(&node.name)).await {
        Ok(Some(entry)) if entry.operation == kv::Operation::Put => {
            Some(incarnation(entry.value) == Some(node.incarnation))
        }
        Ok(_) => Some(false),
        Err(_) => None,
    }
}

/// Adopts the sessions of `dead`, or, with `None` (at start-up), of every
/// owner that is not a live member.
async fn adopt(core: Arc<Core>, dead: Option<NodeId>) {
    let stream = &core.sessions.stream;
    let filter = format!("$KV.{}.>", core.sessions.name);
    let stored = match scan(stream, vec![filter], true, core.options.store_timeout).await {
        Ok(stored) => stored,
        Err(err) => {
            tracing::warn!("cluster: cannot scan sessions to adopt: {err}");
            return;
        }
    };
    let mut verdicts: HashMap<NodeId, bool> = HashMap::new();
    if let Some(dead) = &dead {
        verdicts.insert(dead.clone(), true);
    }
    for session in stored {
        if session.deleted {
            continue;
        }
        let Ok(mut record) = SessionRecord::decode(session.payload) else {
            continue;
        };
        if record.owner == core.id {
            continue;
        }
        let orphan = match verdicts.get(&record.owner) {
            Some(&orphan) => orphan,
            None if dead.is_some() => false,
            None => {
                let orphan = is_alive(&core, &record.owner).await == Some(false);
                verdicts.insert(record.owner.clone(), orphan);
                orphan
            }
        };
        let Some(key) = session.subject.rsplit('.').next() else {
            continue;
        };
        if !orphan {
            continue;
        }
        let previous_owner = std::mem::replace(&mut record.owner, core.id.clone());
        let will = record.will.take();
        record.epoch += 1;
        record.connected = false;
        match core
            .sessions
            .update(key, record.encode(), session.sequence)
            .await
        {
            Ok(revision) => {
                let adoption = Adoption {
                    dead: previous_owner,
                    record,
                    revision,
                    will,
                };
                if core
                    .events
                    .send(Event::Adopted(Box::new(adoption)))
                    .await
                    .is_err()
                {
                    return;
                }
            }
            // Another survivor won, or the client came back meanwhile.
            Err(err) if err.kind() == kv::UpdateErrorKind::WrongLastRevision => {}
            Err(err) => tracing::warn!("cluster: cannot adopt a session: {err}"),
        }
    }
}
