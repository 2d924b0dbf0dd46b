//! What the cluster tells this node: messages to route here, and events —
//! NATS lost and back, nodes coming and going, a kick (a session leaves
//! for another node), an adoption (a dead node's session and will).

use std::sync::Arc;
use std::time::{Duration, Instant};

use culex_cluster::{Adoption, Event, Inbound, KickReply, KickRequest, Node, Receivers};

use super::claim::replay_into;
use super::wire;
use super::ClusterLink;

/// How far before a lost NATS connection the recovery reads back.
const RECOVER_MARGIN: Duration = Duration::from_secs(2);

/// How long a failed recovery is tried again: right after a NATS server is
/// lost, JetStream elects new leaders and requests time out for a while
/// (4–6 s measured), and a recovery given up loses what it was to fill.
const RECOVER_FOR: Duration = Duration::from_secs(120);

/// The first pause before trying a recovery again (doubling up to 5 s).
const RECOVER_RETRY: Duration = Duration::from_millis(500);

/// How long a kick waits for the round trip that flushes earlier messages.
const KICK_BARRIER: Duration = Duration::from_millis(500);

/// Room left in a kick reply for NATS's own framing.
const REPLY_HEADROOM: usize = 4096;

/// Serves both channels until shutdown or until the node stops.
pub(super) async fn run(
    link: Arc<ClusterLink>,
    node: Node,
    receivers: Receivers,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let Receivers {
        mut inbound,
        mut events,
    } = receivers;
    loop {
        tokio::select! {
            message = inbound.recv() => match message {
                Some(message) => route(&link, message),
                None => return,
            },
            event = events.recv() => match event {
                Some(Event::Kick(request)) => kick(&link, &node, &mut inbound, request).await,
                Some(event) => handle(&link, &node, event).await,
                None => return,
            },
            _ = crate::runtime::state::shutdown_requested(&mut shutdown) => return,
        }
    }
}

/// Routes every message waiting in the inbound channel.
fn drain(link: &ClusterLink, inbound: &mut tokio::sync::mpsc::Receiver<Inbound>) {
    while let Ok(message) = inbound.try_recv() {
        route(link, message);
    }
}

/// A message from another node, into the core.
fn route(link: &ClusterLink, message: Inbound) {
    let Some(core) = link.core() else {
        return;
    };
    let now = Instant::now();
    match message {
        Inbound::Routed(envelope) => {
            if let Ok(msg) = wire::from_cluster(envelope.message, Some(&envelope.publisher), now) {
                core.route_remote(Arc::new(msg), now);
            }
        }
        Inbound::Shared { filter, envelope } => {
            if let Ok(msg) = wire::from_cluster(envelope.message, Some(&envelope.publisher), now) {
                if !core.deliver_shared(&filter, Arc::new(msg), now) {
                    tracing::debug!("Cluster: no member of {filter} here any more.");
                }
            }
        }
    }
}

async fn handle(link: &Arc<ClusterLink>, node: &Node, event: Event) {
    match event {
        Event::Connected => {
            tracing::info!("Cluster: connected to NATS again.");
            let since = *link.down_since.lock();
            link.set_up(true);
            if let Some(since) = since {
                let from = since.checked_sub(RECOVER_MARGIN).unwrap_or(since);
                tokio::spawn(recover(node.clone(), from));
            }
        }
        Event::Disconnected => {
            tracing::warn!(
                "Cluster: lost the connection to NATS. Serving local clients only; new persistent sessions are refused until it is back."
            );
            link.set_up(false);
        }
        Event::NodeUp(id) => tracing::info!("Cluster: node {id} is up."),
        Event::NodeDown(id) => tracing::info!("Cluster: node {id} is down."),
        Event::NameTaken(id) => tracing::error!(
            "Cluster: another process joined as {id}: this node no longer renews its membership. Give each node its own cluster_node."
        ),
        // Handled where the inbound channel is at hand (`run`).
        Event::Kick(request) => request.reply(KickReply::NotConnected),
        Event::Adopted(adoption) => adopt(link, node, *adoption).await,
    }
}

/// Passes on what this node missed since `from` while its NATS connection
/// was down, trying again for [`RECOVER_FOR`] when NATS cannot answer yet.
async fn recover(node: Node, from: std::time::SystemTime) {
    let give_up = Instant::now() + RECOVER_FOR;
    let mut pause = RECOVER_RETRY;
    loop {
        match node.recover_routed(from).await {
            Ok(n) => {
                tracing::info!("Cluster: {n} messages missed meanwhile recovered.");
                return;
            }
            Err(e) if Instant::now() + pause < give_up => {
                tracing::info!("Cluster: recovering missed messages: {e}; trying again.");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(5));
            }
            Err(e) => {
                tracing::warn!("Cluster: missed messages not recovered: {e}");
                return;
            }
        }
    }
}

/// Another node claimed a client id: the session here goes to it, with
/// every message this node received before the kick. Those already read
/// from NATS are routed first (a kick and the messages before it come on
/// different subscriptions): what is queued in the inbound channel, then
/// what a round trip to the NATS server shows was sent before it.
async fn kick(
    link: &ClusterLink,
    node: &Node,
    inbound: &mut tokio::sync::mpsc::Receiver<Inbound>,
    request: KickRequest,
) {
    let Some(core) = link.core() else {
        return;
    };
    drain(link, inbound);
    if tokio::time::timeout(KICK_BARRIER, node.interest_synced())
        .await
        .is_ok()
    {
        // The forwarders pass on what the round trip flushed.
        for _ in 0..4 {
            tokio::task::yield_now().await;
        }
        drain(link, inbound);
    }
    link.records.disown(&request.client_id);
    let now = Instant::now();
    let Some(saved) = core.export_session(&request.client_id, now) else {
        request.reply(KickReply::NotConnected);
        return;
    };
    tracing::info!(
        "Cluster: session of {} handed to node {}.",
        request.client_id,
        request.by
    );
    let mut bytes = wire::encode_session(&saved, true, now);
    if bytes.len() + REPLY_HEADROOM > node.max_message_size() {
        // Too large for one NATS message: the new owner replays it.
        bytes = wire::encode_session(&saved, false, now);
    }
    request.reply(KickReply::Closed(bytes));
}

/// A dead node's session, won by this node: its will goes out, and a
/// persistent session is rebuilt here from the durable stream.
async fn adopt(link: &ClusterLink, node: &Node, adoption: Adoption) {
    let Some(core) = link.core() else {
        return;
    };
    let Adoption {
        dead,
        record,
        revision,
        will,
    } = adoption;
    let client_id = record.client_id.clone();
    tracing::info!("Cluster: session of {client_id} adopted from node {dead}.");
    let now = Instant::now();
    if let Some(will) = will {
        if let Ok(msg) = wire::from_cluster(will.message, Some(&client_id), now) {
            let delay = if record.expiry_interval == 0 {
                0
            } else {
                will.delay_interval
            };
            core.adopt_will(&client_id, msg, delay, now);
        }
    }
    if record.expiry_interval == 0 {
        if let Err(e) = node.release(&client_id, revision).await {
            tracing::debug!("Cluster: session of {client_id} not released: {e}");
        }
        return;
    }
    let body = wire::decode_record(record.subscriptions.clone()).unwrap_or_default();
    let expiry_interval = record.expiry_interval;
    link.records.own(record, revision);
    replay_into(node, &core, &client_id, &body, expiry_interval).await;
    link.records.changed(&client_id);
}
