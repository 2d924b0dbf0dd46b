//! The node's control subject `NS.ctl.<node>.>`: one subscription per node
//! for every request other nodes send it (today: kicks).

use std::sync::Arc;

use futures_util::StreamExt;
use tokio::sync::oneshot;

use crate::node::{Core, Event, KickRequest};
use crate::session::{KickBody, KickReply};

/// The last token of a kick request's subject.
pub(crate) const KICK: &str = "kick";

/// Answers control requests until the subscription ends.
pub(crate) async fn serve(core: Arc<Core>, mut requests: async_nats::Subscriber) {
    while let Some(request) = requests.next().await {
        let Some(reply_to) = request.reply.clone() else {
            continue;
        };
        if !request.subject.as_str().ends_with(KICK) {
            tracing::warn!("cluster: unknown control request {}", request.subject);
            continue;
        }
        let kick = match KickBody::decode(request.payload) {
            Ok(kick) => kick,
            Err(err) => {
                tracing::warn!("cluster: dropped a kick request: {err}");
                continue;
            }
        };
        let (tx, rx) = oneshot::channel();
        // A kick meant for an earlier run of this node finds nothing here.
        let reply = if kick.target_incarnation == core.id.incarnation {
            let event = Event::Kick(KickRequest {
                client_id: kick.client_id,
                by: kick.by,
                epoch: kick.epoch,
                reply: tx,
            });
            if core.events.send(event).await.is_err() {
                return;
            }
            Some(rx)
        } else {
            None
        };
        let client = core.main.clone();
        let timeout = core.options.kick_timeout;
        // The broker answers in its own time; other requests go on meanwhile.
        tokio::spawn(async move {
            let answer = match reply {
                Some(rx) => match tokio::time::timeout(timeout, rx).await {
                    Ok(Ok(answer)) => answer,
                    _ => KickReply::NotConnected,
                },
                None => KickReply::NotConnected,
            };
            if let Err(err) = client.publish(reply_to, answer.encode()).await {
                tracing::warn!("cluster: cannot answer a kick: {err}");
            }
        });
    }
}
