//! What a cluster backend asks of the core: routing messages published on
//! other nodes, handing a session to another node and taking one over, and
//! reading what a session's cluster record is made of.
//!
//! A session moves between nodes as a [`SessionSnapshot`], the form the
//! store restores one from: subscriptions, in-flight and queued messages,
//! inbound QoS 2 ids. The node that loses it `Core::export_session`s it
//! (its connection is kicked, the session ends here without its will); the
//! node that gains it `Core::install_session`s it, before the client's
//! connection claims it like any local session.

use std::sync::Arc;
use std::time::Instant;

use culex_codec::{QoS, SubscriptionOptions};

use super::cluster::RetainedRequest;
use super::compact::Moment;
use super::message::Message;
use super::session::{Delivery, Exported, SubscriptionEntry};
use super::sessions::{resume_all, SessionHandle, SessionKey};
use super::state::{Core, Event};
use super::store::SessionSnapshot;

/// What a session's cluster record is made of ([`Core::session_state`]).
#[derive(Debug)]
pub struct SessionState {
    /// Seconds it outlives its connection; `None`: forever.
    pub expiry: Option<u32>,
    /// Whether a connection holds it.
    pub connected: bool,
    /// Its subscriptions: filter as subscribed, options, identifier.
    pub subscriptions: Vec<(String, SubscriptionOptions, Option<u32>)>,
    /// The will its connection left, with its delay in seconds.
    pub will: Option<(Message, u32)>,
    /// When the oldest message its client has not acknowledged arrived.
    pub oldest_pending: Option<Instant>,
}

impl Core {
    /// Whether this broker is a node of a cluster.
    pub fn is_clustered(&self) -> bool {
        !self.cluster_is_local
    }

    /// Routes a message published on another node to the local
    /// subscriptions it matches (shared ones come through
    /// [`Core::deliver_shared`]). Its retained copy is the cluster's.
    pub(crate) fn route_remote(&self, msg: Arc<Message>, now: Instant) -> usize {
        let mut matches = Vec::new();
        let mut matched = 0;
        self.hand_to_matches(&msg, &mut matches, now, None, &mut matched);
        matched
    }

    /// Hands a message the cluster gave this node for the shared
    /// subscription `filter` (`$share/G/F` as subscribed) to one local
    /// member of the group. `false` when the group has no member here
    /// any more.
    pub(crate) fn deliver_shared(&self, filter: &str, msg: Arc<Message>, now: Instant) -> bool {
        let mut matches = Vec::new();
        let rank = |k: &SessionKey| k.0.inner.lock().session.share_rank();
        self.subscriptions
            .read()
            .matches_ranked(&msg.topic, &mut matches, &rank);
        let Some(m) = matches
            .into_iter()
            .find(|m| m.share.as_deref() == Some(filter))
        else {
            return false;
        };
        let Some((handle, delivery)) = self.delivery_for(&msg, m) else {
            return false;
        };
        self.hand_over(&handle, [delivery], now, None, false);
        true
    }

    /// Asks the cluster for the retained messages of a new subscription
    /// (`filter` without `$share/`); they reach the session through
    /// [`Core::deliver_retained`] when they arrive.
    pub(crate) fn fetch_retained(
        &self,
        session: &Arc<SessionHandle>,
        filter: &str,
        qos: QoS,
        subscription_id: Option<u32>,
    ) {
        self.cluster.retained_for(RetainedRequest {
            session: session.clone(),
            filter: filter.to_owned(),
            qos,
            subscription_id,
        });
    }

    /// The retained messages a cluster fetched for a new subscription.
    pub(crate) fn deliver_fetched_retained(
        &self,
        request: &RetainedRequest,
        messages: Vec<Arc<Message>>,
        now: Instant,
    ) {
        let deliveries = messages
            .into_iter()
            .filter(|m| !m.is_expired(now))
            .map(|msg| {
                let qos = msg.qos.min(request.qos);
                let ids = request.subscription_id.into_iter().collect();
                Delivery::with(msg, qos, true, ids, None)
            });
        self.deliver_retained(&request.session, deliveries, now);
    }

    /// Another node took `client_id` over: its connection here is kicked
    /// and its session ends here, handed over whole. Its will goes out
    /// only if it was a clean session (as on a local takeover); a delayed
    /// will is cancelled by the new connection [MQTT-3.1.3-9]. `None` when
    /// there is no such session here.
    pub(crate) fn export_session(&self, client_id: &str, now: Instant) -> Option<SessionSnapshot> {
        let handle = self.sessions.get(client_id)?;
        let (snapshot, filters, will) = {
            let mut shard = self.sessions.shard(client_id).lock();
            let mut inner = handle.inner.lock();
            if inner.ended {
                return None;
            }
            inner.ended = true;
            if let Some(conn) = inner.conn.take() {
                conn.kick();
            }
            resume_all(inner.paused.take_all());
            if shard.get(client_id).is_some_and(|e| e.is(&handle)) {
                shard.remove(client_id);
            }
            let clean = inner.expiry == Some(0);
            let will = inner.will.take().filter(|_| clean);
            let will = will.map(|w| (w, inner.username.clone(), inner.listener as usize));
            let subscriptions = subscriptions_of(&inner.session);
            let filters = inner.session.take_subscriptions();
            let Exported {
                outbound,
                queued,
                inbound_qos2,
            } = inner.session.export();
            let snapshot = SessionSnapshot {
                client_id: client_id.to_owned(),
                expiry_interval: inner.expiry,
                subscriptions,
                queued: queued.into_iter().map(|d| (owned(&d.msg), d.qos)).collect(),
                outbound: outbound
                    .into_iter()
                    .map(|(id, d, state)| (id, owned(&d.msg), d.qos, state))
                    .collect(),
                inbound_qos2,
            };
            (snapshot, filters, will)
        };
        self.remove_subscriptions(&handle, &filters);
        self.store.session_delete(client_id);
        if self.delayed_wills.lock().remove(client_id).is_some() {
            self.store.delayed_will(client_id, None);
        }
        self.events.event(Event::TakenOver { client_id });
        if let Some((will, username, listener)) = will {
            self.fire_will(client_id, username.as_deref(), listener, *will, now);
        }
        Some(snapshot)
    }

    /// Makes `saved` a session of this node, detached (as from a store, or
    /// handed over by another node): merged into the local session of that
    /// client id if there is one — subscriptions added, its messages ahead
    /// of those queued here since.
    pub(crate) fn install_session(&self, saved: SessionSnapshot, now: Instant) {
        let client_id: Arc<str> = Arc::from(saved.client_id.as_str());
        let (handle, _) = self.sessions.get_or_create(&client_id, self.limits);
        let delivery = |(msg, qos): (Message, QoS)| Delivery::new(Arc::new(msg), qos, false);
        {
            let mut inner = handle.inner.lock();
            if inner.conn.is_none() {
                inner.expiry = saved.expiry_interval;
                inner.since = Moment::at(now);
            }
            let session = &mut inner.session;
            // A persistent session's changes (messages queued for it while
            // offline) reach a durable store.
            session.set_journaling(self.store.is_durable());
            session.import(Exported {
                outbound: saved
                    .outbound
                    .into_iter()
                    .map(|(id, msg, qos, state)| (id, delivery((msg, qos)), state))
                    .collect(),
                queued: saved.queued.into_iter().map(delivery).collect(),
                inbound_qos2: saved.inbound_qos2,
            });
            for (filter, options, id) in &saved.subscriptions {
                let entry = SubscriptionEntry {
                    options: *options,
                    id: *id,
                };
                session.subscribe(filter.clone(), entry);
            }
        }
        let mut fresh = Vec::new();
        {
            let mut tree = self.subscriptions.write();
            for (filter, options, id) in saved.subscriptions {
                if tree.subscribe(&filter, SessionKey(handle.clone()), options, id) {
                    fresh.push(filter);
                }
            }
        }
        if !self.cluster_is_local {
            for filter in &fresh {
                self.cluster.interest(filter, true);
            }
        }
    }

    /// A will a cluster handed this node (its client's node died): goes
    /// out now, or after its delay unless the client comes back first.
    pub(crate) fn adopt_will(&self, client_id: &str, will: Message, delay: u32, now: Instant) {
        if delay == 0 {
            self.publish(Arc::new(will), now);
            return;
        }
        let due = now + std::time::Duration::from_secs(u64::from(delay));
        self.delayed_wills
            .lock()
            .insert(Arc::from(client_id), (due, will));
    }

    /// What `client_id`'s cluster record is made of, if it has a session here.
    pub fn session_state(&self, client_id: &str) -> Option<SessionState> {
        let handle = self.sessions.get(client_id)?;
        let inner = handle.inner.lock();
        if inner.ended {
            return None;
        }
        Some(SessionState {
            expiry: inner.expiry,
            connected: inner.conn.is_some(),
            subscriptions: subscriptions_of(&inner.session),
            will: inner.will.as_deref().map(|w| (w.clone(), inner.will_delay)),
            oldest_pending: inner.session.oldest_pending(),
        })
    }

    /// The client ids of every session here.
    pub fn session_ids(&self) -> Vec<Arc<str>> {
        self.sessions
            .all()
            .into_iter()
            .map(|h| h.client_id.clone())
            .collect()
    }
}

fn subscriptions_of(
    session: &super::session::Session,
) -> Vec<(String, SubscriptionOptions, Option<u32>)> {
    session
        .subscriptions()
        .map(|(f, e)| (f.to_owned(), e.options, e.id))
        .collect()
}

/// A message as owned data (shared payload, copied header).
fn owned(msg: &Arc<Message>) -> Message {
    Message::clone(msg)
}
