//! [`Core`]: the broker's state and its owner API (see the module docs of
//! `core`).

use ::core::net::SocketAddr;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use culex_codec::{PacketId, Protocol, SubscriptionOptions};
use parking_lot::{Mutex, RwLock};

use super::cluster::Cluster;
use super::compact::Moment;
use super::drops::DropReason;
use super::message::Message;
use super::retained::RetainedTree;
use super::session::{Change, Outgoing, Session, SessionLimits, SubscriptionEntry};
use super::sessions::{resume_all, SessionHandle, SessionInner, SessionKey, SessionRef, Sessions};
use super::stats::Stats;
use super::store::{Durability, Snapshot, Store};
use super::subscriptions::SharedTree;
use super::topics::TopicWatch;
use super::wake::ConnWaker;
use crate::auth::backoff::AuthBackoff;
use crate::auth::{Policy, SharedPolicy};
use crate::config::Config;

/// Something notable the core did, for the runtime to log.
#[derive(Debug, Clone, Copy)]
pub enum Event<'a> {
    /// A client connected with the id of a connected client, whose
    /// connection is closed [MQTT-3.1.4-2].
    TakenOver {
        /// The client id.
        client_id: &'a str,
    },
    /// A queue limit started dropping a client's messages (once per spell).
    Dropping {
        /// The client id.
        client_id: &'a str,
    },
    /// A will was not published: its client may not write to its topic.
    WillDenied {
        /// The client id.
        client_id: &'a str,
        /// The will's topic.
        topic: &'a str,
    },
    /// A client connected (its session claimed).
    Connected {
        /// The client id.
        client_id: &'a str,
        /// Its address.
        address: SocketAddr,
        /// Its protocol version.
        protocol: Protocol,
        /// The user name it gave.
        username: Option<&'a str>,
    },
    /// A connected client left, its session still its own (a client taken
    /// over is [`Event::TakenOver`]).
    Disconnected {
        /// The client id.
        client_id: &'a str,
        /// Why, in a few words ("disconnected", "exceeded timeout", …).
        why: &'a str,
    },
}

/// Where the core's [`Event`]s go.
pub trait EventSink: Send + Sync + std::fmt::Debug {
    /// Called with no lock of the core held.
    fn event(&self, event: Event<'_>);
}

/// An [`EventSink`] that drops every event.
#[derive(Debug, Default)]
pub struct NoEvents;

impl EventSink for NoEvents {
    fn event(&self, _event: Event<'_>) {}
}

/// What a connecting client asks of [`Core::claim`].
#[derive(Debug)]
pub(crate) struct Claim<'a> {
    /// The client id (assigned already when the client sent none).
    pub client_id: &'a Arc<str>,
    /// Clean Session / Clean Start.
    pub clean_start: bool,
    /// Seconds the session outlives the connection; `None`: forever.
    pub expiry: Option<u32>,
    /// The will, with its delay in seconds.
    pub will: Option<(Box<Message>, u32)>,
    /// The user name.
    pub username: Option<Arc<str>>,
    /// The listener the client came through.
    pub listener: usize,
    /// The client's Receive Maximum.
    pub receive_maximum: u16,
    /// The connection, to wake and to kick.
    pub conn: ConnWaker,
    /// The client's address.
    pub peer: SocketAddr,
    /// Its protocol version.
    pub protocol: Protocol,
    /// The keep-alive it asked for, in seconds.
    pub keep_alive: u16,
}

/// How a connection leaves its session ([`Core::leave`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Leave<'a> {
    /// Whether the will is published (or delayed).
    pub send_will: bool,
    /// The broker is shutting down: a delayed will goes out at once.
    pub shutting_down: bool,
    /// The listener the connection came through.
    pub listener: usize,
    /// Its protocol version.
    pub protocol: Protocol,
    /// Why, in a few words, for [`Event::Disconnected`].
    pub why: &'a str,
}

/// What [`Core::claim`] did.
#[derive(Debug)]
pub(crate) struct Claimed {
    /// The connection's hold on the session.
    pub session: SessionRef,
    /// Whether a previous session was resumed (CONNACK's session present).
    pub present: bool,
}

/// The broker's state: see the module docs.
pub struct Core {
    pub(super) config: Config,
    pub(super) limits: SessionLimits,
    pub(super) policies: Vec<SharedPolicy>,
    /// Whether any listener has an ACL: without one, deliveries skip the check.
    pub(super) acl_active: AtomicBool,
    pub(super) store: Arc<dyn Store>,
    pub(super) cluster: Arc<dyn Cluster>,
    pub(super) cluster_is_local: bool,
    pub(super) events: Arc<dyn EventSink>,
    pub(super) sessions: Sessions,
    pub(super) subscriptions: SharedTree<SessionKey>,
    pub(super) retained: RwLock<RetainedTree>,
    /// 5.0 wills waiting for their Will Delay Interval, by client id.
    pub(super) delayed_wills: Mutex<HashMap<Arc<str>, (Instant, Message)>>,
    pub(super) stats: Stats,
    pub(super) auth_backoff: AuthBackoff,
    /// The dashboard's topic tree, fed while someone watches.
    pub(super) topics: TopicWatch,
}

impl std::fmt::Debug for Core {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Core").finish_non_exhaustive()
    }
}

impl Core {
    /// A core with no session, for `config`, with each listener's policy.
    pub(crate) fn new(
        config: Config,
        policies: Vec<SharedPolicy>,
        store: Arc<dyn Store>,
        cluster: Arc<dyn Cluster>,
        events: Arc<dyn EventSink>,
    ) -> Core {
        let limits = SessionLimits {
            max_inflight: config.limits.max_inflight_messages.unwrap_or(0),
            max_queued: config.limits.max_queued_messages,
            max_queued_bytes: config.limits.max_queued_bytes,
        };
        let auth_backoff = AuthBackoff::new(config.limits.auth_backoff_max);
        let stats = Stats::new(config.listeners.len());
        let core = Core {
            config,
            limits,
            policies,
            acl_active: AtomicBool::new(false),
            store,
            cluster_is_local: cluster.is_local(),
            cluster,
            events,
            sessions: Sessions::new(),
            subscriptions: SharedTree::default(),
            retained: RwLock::new(RetainedTree::new()),
            delayed_wills: Mutex::new(HashMap::new()),
            stats,
            auth_backoff,
            topics: TopicWatch::default(),
        };
        core.update_acl_active();
        core
    }

    /// The configuration the broker runs with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// The store.
    pub fn store(&self) -> &dyn Store {
        &*self.store
    }

    /// Failed logins per source address.
    pub fn auth_backoff(&self) -> &AuthBackoff {
        &self.auth_backoff
    }

    /// The current policy of a listener.
    pub fn policy(&self, listener: usize) -> Arc<Policy> {
        match self
            .policies
            .get(listener)
            .or_else(|| self.policies.first())
        {
            Some(p) => p.read().clone(),
            None => Arc::new(Policy::default()),
        }
    }

    /// Whether any listener has an ACL.
    pub fn acl_active(&self) -> bool {
        self.acl_active.load(Ordering::Relaxed)
    }

    /// Swaps in new policies, one per listener, in listener order (SIGHUP).
    pub fn replace_policies(&self, policies: Vec<Policy>) {
        for (slot, policy) in self.policies.iter().zip(policies) {
            *slot.write() = Arc::new(policy);
        }
        self.update_acl_active();
    }

    fn update_acl_active(&self) {
        let active = self.policies.iter().any(|p| p.read().acl.is_some());
        self.acl_active.store(active, Ordering::Relaxed);
    }

    /// A connecting client takes its session (a new one, its persistent
    /// one, or — when clean — a cleared one), kicking any connection that
    /// holds it [MQTT-3.1.4-2]. Claimed under the session map's lock, so
    /// that an old connection of a clean session cannot end it after it
    /// was found (see `Sessions::claim`).
    pub(crate) fn claim(&self, mut claim: Claim<'_>, now: Instant) -> Claimed {
        let client_id = claim.client_id;
        let will = claim.will.take();
        // A reconnect within the will delay cancels the delayed will [MQTT-3.1.3-9].
        if self.delayed_wills.lock().remove(client_id).is_some() {
            self.store.delayed_will(client_id, None);
        }
        let (handle, existed) = self.sessions.claim(client_id, self.limits);
        let (generation, present, old_filters, old_will, took_over) = {
            let mut inner = handle.inner.lock();
            let (old_will, took_over) = take_over(&mut inner, claim.clean_start);
            // A session with expiry 0 (clean session, or 5.0 Session Expiry
            // 0) ends with its connection, even one still being torn down
            // or taken over here: it is never present, as in mosquitto 2.0
            // (which resumes only a session with a non-zero expiry).
            let present = existed && !claim.clean_start && !inner.ended && inner.expiry != Some(0);
            // Clean start discards any previous session [MQTT-3.1.2-6].
            let old_filters = if present {
                Vec::new()
            } else {
                let filters = inner.session.take_subscriptions();
                inner.session.clear();
                filters
            };
            let generation = attach(&mut inner, &claim, will, now);
            let durable = self.store.is_durable() && claim.expiry != Some(0);
            inner.session.set_journaling(durable);
            inner.session.attach(claim.receive_maximum, now);
            self.flush_changes(client_id, &mut inner.session);
            self.report_drops(&mut inner.session);
            (generation, present, old_filters, old_will, took_over)
        };
        self.stats.connection_opened(claim.listener, claim.protocol);
        if took_over {
            self.events.event(Event::TakenOver { client_id });
        }
        self.events.event(Event::Connected {
            client_id,
            address: claim.peer,
            protocol: claim.protocol,
            username: claim.username.as_deref(),
        });
        if let Some((will, username, listener)) = old_will {
            self.fire_will(client_id, username.as_deref(), listener, *will, now);
        }
        self.remove_subscriptions(&handle, &old_filters);
        if claim.expiry != Some(0) {
            self.store.session_put(client_id, claim.expiry);
        }
        if !self.cluster_is_local {
            self.cluster.session_changed(client_id);
        }
        Claimed {
            session: SessionRef { handle, generation },
            present,
        }
    }

    /// Subscribes the session to `filter` (as the client wrote it, under
    /// the listener's mount point): the tree, the session and the store.
    /// Returns whether it is new, and what the SUBACK must wait for.
    pub(crate) fn subscribe(
        &self,
        s: &SessionRef,
        filter: &str,
        options: SubscriptionOptions,
        id: Option<u32>,
    ) -> (bool, Durability) {
        let key = SessionKey(s.handle.clone());
        let is_new = self
            .subscriptions
            .write()
            .subscribe(filter, key, options, id);
        let persistent = {
            let mut inner = s.handle.inner.lock();
            inner
                .session
                .subscribe(filter.to_owned(), SubscriptionEntry { options, id });
            inner.expiry != Some(0)
        };
        let durability = self
            .store
            .subscription_put(&s.handle.client_id, filter, options, id);
        if !self.cluster_is_local {
            if is_new {
                self.cluster.interest(filter, true);
            }
            self.cluster.session_changed(&s.handle.client_id);
        }
        // The subscriptions of an expiry-0 session are gone with it anyway.
        (
            is_new,
            if persistent {
                durability
            } else {
                Durability::Done
            },
        )
    }

    /// Removes the session's subscription to `filter`; whether it existed,
    /// and what the UNSUBACK must wait for.
    pub(crate) fn unsubscribe(&self, s: &SessionRef, filter: &str) -> (bool, Durability) {
        self.unsubscribe_session(&s.handle, filter)
    }

    /// Removes a subscription of `handle`'s session: the session, the tree,
    /// the cluster and the store.
    fn unsubscribe_session(&self, handle: &Arc<SessionHandle>, filter: &str) -> (bool, Durability) {
        let (existed, persistent) = {
            let mut inner = handle.inner.lock();
            (inner.session.unsubscribe(filter), inner.expiry != Some(0))
        };
        if !existed {
            return (false, Durability::Done);
        }
        self.subscriptions
            .write()
            .unsubscribe(filter, &SessionKey(handle.clone()));
        if !self.cluster_is_local {
            self.cluster.interest(filter, false);
            self.cluster.session_changed(&handle.client_id);
        }
        let durability = self.store.subscription_delete(&handle.client_id, filter);
        (
            true,
            if persistent {
                durability
            } else {
                Durability::Done
            },
        )
    }

    /// An administrator removes a subscription of `client_id`'s session
    /// (`filter` as the client subscribed, `$share/…` included), whether
    /// or not it is connected; its client is not told (MQTT has no way
    /// to). `false` when there is no such subscription.
    pub fn remove_subscription(&self, client_id: &str, filter: &str) -> bool {
        match self.sessions.get(client_id) {
            Some(handle) => self.unsubscribe_session(&handle, filter).0,
            None => false,
        }
    }

    /// An administrator disconnects the client connected as `client_id`:
    /// its connection closes (5.0: DISCONNECT 0x98 Administrative action)
    /// and its session stays, as its expiry says. Its will is discarded,
    /// as mosquitto's kick does. `false` when no such client is connected.
    pub fn kick(&self, client_id: &str) -> bool {
        let Some(handle) = self.sessions.get(client_id) else {
            return false;
        };
        let conn = {
            let mut inner = handle.inner.lock();
            let Some(conn) = inner.conn.clone() else {
                return false;
            };
            inner.will = None;
            inner.will_delay = 0;
            inner.kicked = true;
            conn
        };
        conn.kick();
        true
    }

    /// Whether the connection holding `s` was kicked by [`Core::kick`] (a
    /// kick that left it the session's holder: not a takeover).
    pub(crate) fn kicked_by_admin(&self, s: &SessionRef) -> bool {
        let inner = s.handle.inner.lock();
        inner.generation == s.generation && inner.kicked
    }

    /// An administrator deletes the retained message of `topic`: the tree,
    /// the store and the cluster, as an empty retained PUBLISH would.
    /// `false` when there was none.
    pub fn delete_retained(&self, topic: &str) -> bool {
        let sys = topic.starts_with("$SYS/");
        if !self.cluster_is_local && !sys && self.cluster.serving() {
            // The cluster holds it: cleared there (whether it was set is
            // not known here).
            let _ = self.cluster.retained(topic, None);
            return true;
        }
        let removed = self.retained.write().remove(topic);
        if removed && !sys {
            self.store.retained_clear(topic);
        }
        removed
    }

    /// Starts watching the topic tree ([`Core::topic_children`]): from now
    /// on routing feeds it, until as many [`Core::unwatch_topics`]. The
    /// first watcher's view starts with the retained messages (shown, not
    /// counted).
    pub fn watch_topics(&self, now: Instant) {
        let Some(mut view) = self.topics.start() else {
            return;
        };
        let mut seed = self.retained.read().matching("#", now);
        seed.extend(self.retained.read().matching("$SYS/#", now));
        for msg in seed.iter().take(super::topics::MAX_NODES) {
            view.record(msg, false);
        }
        self.topics.install(view);
    }

    /// Stops one [`Core::watch_topics`]; the last one drops the view.
    pub fn unwatch_topics(&self) {
        self.topics.stop();
    }

    /// The unexpired retained messages matching `filter` (no `$share/`).
    pub fn retained_matching(&self, filter: &str, now: Instant) -> Vec<Arc<Message>> {
        self.retained.read().matching(filter, now)
    }

    /// The retained message of `topic`, if any.
    pub fn retained(&self, topic: &str) -> Option<Arc<Message>> {
        self.retained.read().get(topic).cloned()
    }

    /// Changes the session's expiry interval (5.0 DISCONNECT).
    pub(crate) fn set_expiry(&self, s: &SessionRef, expiry: Option<u32>) {
        s.handle.inner.lock().expiry = expiry;
        self.store.session_put(&s.handle.client_id, expiry);
    }

    /// Runs `f` on the session the connection holds (a QoS flow step) and
    /// hands its durable changes to the store; publishers paused for the
    /// session resume if it drained.
    pub(crate) fn with_session<R>(
        &self,
        s: &SessionRef,
        f: impl FnOnce(&mut Session) -> R,
    ) -> (R, Durability) {
        let mut inner = s.handle.inner.lock();
        let result = f(&mut inner.session);
        let durability = self.flush_changes(&s.handle.client_id, &mut inner.session);
        self.report_drops(&mut inner.session);
        // An acknowledgement may have moved queued messages into the window.
        let resumable = inner.take_resumable();
        drop(inner);
        resume_all(resumable);
        (result, durability)
    }

    /// Moves up to `max` ready packets (about `max_bytes` of payload) into
    /// `out`. `false` when another connection holds the session now.
    pub(crate) fn take_ready(
        &self,
        s: &SessionRef,
        out: &mut Vec<Outgoing>,
        max: usize,
        max_bytes: usize,
        now: Instant,
    ) -> bool {
        let mut inner = s.handle.inner.lock();
        if inner.generation != s.generation {
            return false;
        }
        inner.session.take_ready(out, max, max_bytes, now);
        self.report_drops(&mut inner.session);
        let resumable = inner.take_resumable();
        drop(inner);
        resume_all(resumable);
        true
    }

    /// Forgets an outbound message that will not be sent: the client
    /// refused it, or — with `reason`, then counted as a drop — it could
    /// not be sent at all (e.g. larger than the client's Maximum Packet
    /// Size). A QoS 0 message (`id` None) is only counted.
    pub(crate) fn abandon(
        &self,
        s: &SessionRef,
        id: Option<PacketId>,
        reason: Option<DropReason>,
        now: Instant,
    ) {
        let mut inner = s.handle.inner.lock();
        match (id, reason) {
            (Some(id), _) => inner.session.abandon(id, reason, now),
            (None, Some(reason)) => inner.session.record_drop(reason),
            (None, None) => {}
        }
        self.flush_changes(&s.handle.client_id, &mut inner.session);
        self.report_drops(&mut inner.session);
    }

    /// Moves what a session dropped since the last look into the counters.
    pub(super) fn report_drops(&self, session: &mut Session) {
        if let Some(drops) = session.take_unreported_drops() {
            self.stats.add_drops(&drops);
        }
    }

    /// The connection leaves its session, unless a newer connection already
    /// holds it; the will the session holds for it is published or delayed
    /// when `how.send_will`. `true` when the session was still this
    /// connection's (not taken over).
    pub(crate) fn leave(&self, s: &SessionRef, how: Leave<'_>, now: Instant) -> bool {
        self.stats.connection_closed(how.listener, how.protocol);
        let Leave {
            send_will,
            shutting_down,
            ..
        } = how;
        let (end, will) = {
            let mut inner = s.handle.inner.lock();
            if inner.generation != s.generation {
                return false;
            }
            inner.conn = None;
            inner.session.detach();
            // Nobody waits for a session without a connection.
            resume_all(inner.paused.take_all());
            inner.since = Moment::at(now);
            let will = inner.will.take().map(|w| {
                (
                    w,
                    inner.will_delay,
                    inner.username.clone(),
                    inner.listener as usize,
                )
            });
            (inner.expiry == Some(0), will)
        };
        self.events.event(Event::Disconnected {
            client_id: &s.handle.client_id,
            why: how.why,
        });
        if let (true, Some((will, delay, username, listener))) = (send_will, will) {
            let client_id = &s.handle.client_id;
            // Published on abnormal disconnection [MQTT-3.1.2-8], never after
            // a normal DISCONNECT [MQTT-3.1.2-10]. A 5.0 Will Delay Interval
            // holds it back until the delay passes or the session ends,
            // whichever is first; a new connection cancels it [MQTT-3.1.3-9].
            // At shutdown a delayed will goes out at once, as mosquitto's
            // will_delay__send_all does.
            if delay > 0 && !end && !shutting_down {
                if self.will_allowed(client_id, username.as_deref(), listener, &will.topic) {
                    let due = now + Duration::from_secs(u64::from(delay));
                    self.store.delayed_will(client_id, Some(&will));
                    self.delayed_wills
                        .lock()
                        .insert(client_id.clone(), (due, *will));
                }
            } else {
                self.fire_will(client_id, username.as_deref(), listener, *will, now);
            }
        }
        if end {
            self.end_session(&s.handle, Some(s.generation), now);
        } else if !self.cluster_is_local {
            self.cluster.session_changed(&s.handle.client_id);
        }
        true
    }

    /// Whether the ACL lets a client publish its will on `topic`; when it
    /// does not, the will is dropped (an [`Event::WillDenied`]). Checked when
    /// the will fires, not at CONNECT: a will outside the ACL does not keep a
    /// client from connecting, as in mosquitto.
    fn will_allowed(
        &self,
        client_id: &str,
        username: Option<&str>,
        listener: usize,
        topic: &str,
    ) -> bool {
        if !self.acl_active() || self.policy(listener).can_write(client_id, username, topic) {
            return true;
        }
        self.events.event(Event::WillDenied { client_id, topic });
        false
    }

    /// Publishes a will that fires now, if the ACL allows it.
    pub(super) fn fire_will(
        &self,
        client_id: &str,
        username: Option<&str>,
        listener: usize,
        will: Message,
        now: Instant,
    ) {
        if self.will_allowed(client_id, username, listener, &will.topic) {
            self.publish(Arc::new(will), now);
        }
    }

    /// Removes a session for good: from the map, its subscriptions from the
    /// tree; its delayed will goes out, and what it held for shared groups
    /// goes to other members. With `generation`, only if no newer
    /// connection claimed it; without, only if no connection holds it.
    fn end_session(&self, handle: &Arc<SessionHandle>, generation: Option<u64>, now: Instant) {
        let filters = {
            let mut shard = self.sessions.shard(&handle.client_id).lock();
            let mut inner = handle.inner.lock();
            if inner.ended
                || generation.is_some_and(|g| g != inner.generation)
                || (generation.is_none() && inner.conn.is_some())
            {
                return;
            }
            inner.ended = true;
            resume_all(inner.paused.take_all());
            if shard.get(&*handle.client_id).is_some_and(|e| e.is(handle)) {
                shard.remove(&*handle.client_id);
            }
            inner.session.take_subscriptions()
        };
        self.remove_subscriptions(handle, &filters);
        self.store.session_delete(&handle.client_id);
        if !self.cluster_is_local {
            self.cluster.session_ended(&handle.client_id);
        }
        // A delayed will goes out when the session ends, if that comes first.
        let will = self.delayed_wills.lock().remove(&handle.client_id);
        if let Some((_, will)) = will {
            self.store.delayed_will(&handle.client_id, None);
            self.publish(Arc::new(will), now);
        }
        self.reroute_shared(handle, now);
    }

    /// What an ending session held for shared groups goes to another member
    /// of each group (5.0 §4.8.2).
    fn reroute_shared(&self, handle: &SessionHandle, now: Instant) {
        let orphans = handle.inner.lock().session.take_shared();
        for delivery in orphans {
            let Some(filter) = delivery.share().cloned() else {
                continue;
            };
            let members = self.subscriptions.read().group_members(&filter);
            let chosen = members
                .iter()
                .find(|k| k.0.inner.lock().session.has_window())
                .or_else(|| {
                    members
                        .iter()
                        .find(|k| k.0.inner.lock().session.is_attached())
                })
                .or_else(|| members.first())
                .cloned();
            if let Some(member) = chosen {
                self.hand_over(&member.0, [delivery], now, None, false);
            }
        }
    }

    /// Removes `handle`'s subscriptions to `filters` from the tree.
    pub(super) fn remove_subscriptions(&self, handle: &Arc<SessionHandle>, filters: &[String]) {
        if filters.is_empty() {
            return;
        }
        let key = SessionKey(handle.clone());
        let mut tree = self.subscriptions.write();
        // The tree takes filters as the session stores them, `$share/G/` and
        // mount point included.
        for f in filters {
            tree.unsubscribe(f, &key);
        }
        drop(tree);
        if !self.cluster_is_local {
            for f in filters {
                self.cluster.interest(f, false);
            }
        }
    }

    /// Hands a session's journaled durable changes to the store.
    pub(super) fn flush_changes(&self, client_id: &str, session: &mut Session) -> Durability {
        let mut durability = Durability::Done;
        for change in session.take_changes() {
            let d = match change {
                Change::Queued(d) => self.store.queued_add(client_id, &d.msg, d.qos),
                Change::Dequeued => self.store.queued_remove_front(client_id),
                Change::Outbound(id, state) => self.store.outbound_state(client_id, id, state),
                Change::Sent(id, d) => self.store.outbound_sent(client_id, id, &d.msg, d.qos),
                Change::Inbound(id, pending) => self.store.inbound_qos2(client_id, id, pending),
            };
            durability = durability.and(d);
        }
        durability
    }

    /// Shutdown, first step: publishes the will of every client still
    /// connected, and every delayed will, while every connection still
    /// serves (as mosquitto 2.0 does at exit). Returns the connections, for
    /// the runtime to tell them to close.
    pub(crate) fn fire_wills_at_shutdown(&self, now: Instant) -> Vec<ConnWaker> {
        let mut conns = Vec::new();
        for handle in self.sessions.all() {
            let fired = {
                let mut inner = handle.inner.lock();
                let Some(conn) = inner.conn.clone() else {
                    continue;
                };
                conns.push(conn);
                inner
                    .will
                    .take()
                    .map(|w| (w, inner.username.clone(), inner.listener as usize))
            };
            if let Some((will, username, listener)) = fired {
                self.fire_will(&handle.client_id, username.as_deref(), listener, *will, now);
            }
        }
        let wills: Vec<_> = self.delayed_wills.lock().drain().collect();
        for (client_id, (_, will)) in wills {
            self.store.delayed_will(&client_id, None);
            self.publish(Arc::new(will), now);
        }
        conns
    }

    /// Housekeeping: publishes delayed wills that are due, and ends
    /// disconnected sessions whose expiry interval has passed.
    pub(crate) fn handle_timeout(&self, now: Instant) {
        let due: Vec<(Arc<str>, Message)> = {
            let mut wills = self.delayed_wills.lock();
            let ids: Vec<Arc<str>> = wills
                .iter()
                .filter(|(_, (at, _))| *at <= now)
                .map(|(id, _)| id.clone())
                .collect();
            ids.into_iter()
                .filter_map(|id| wills.remove(&id).map(|(_, m)| (id, m)))
                .collect()
        };
        for (id, will) in due {
            self.store.delayed_will(&id, None);
            self.publish(Arc::new(will), now);
        }
        for handle in self.sessions.all() {
            let expired = {
                let inner = handle.inner.lock();
                match (inner.conn.is_some(), inner.since.get(), inner.expiry) {
                    (false, Some(at), Some(secs)) => {
                        now.saturating_duration_since(at) >= Duration::from_secs(u64::from(secs))
                    }
                    _ => false,
                }
            };
            if expired {
                self.stats.clients_expired.fetch_add(1, Ordering::Relaxed);
                self.end_session(&handle, None, now);
            }
        }
    }

    /// How often the runtime runs the core's housekeeping (`handle_timeout`).
    pub const HOUSEKEEPING_EVERY: Duration = Duration::from_secs(1);

    /// Rebuilds retained messages, sessions and delayed wills from a
    /// store's snapshot, before any client can connect.
    pub(crate) fn restore(&self, snapshot: Snapshot, now: Instant) {
        {
            let mut retained = self.retained.write();
            for msg in snapshot.retained {
                retained.insert(Arc::new(msg));
            }
        }
        for saved in snapshot.sessions {
            self.install_session(saved, now);
        }
        let mut wills = self.delayed_wills.lock();
        for (client_id, will) in snapshot.delayed_wills {
            // Due at once: the delay ran while the broker was down.
            wills.insert(Arc::from(client_id.as_str()), (now, will));
        }
    }
}

/// On a claim: takes the session from the connection holding it, kicking
/// it. Its will goes out only when one of the two sessions is clean, as in
/// mosquitto: a device that reconnects at once to its persistent session
/// (the broker had not noticed it drop) must not look offline. Returns
/// that will, with its owner's user name and listener, and whether there
/// was a connection to take over.
#[allow(clippy::type_complexity)]
fn take_over(
    inner: &mut SessionInner,
    clean_start: bool,
) -> (Option<(Box<Message>, Option<Arc<str>>, usize)>, bool) {
    let Some(old) = inner.conn.take() else {
        return (None, false);
    };
    old.kick();
    let old_clean = inner.expiry == Some(0);
    let will = inner.will.take().filter(|_| old_clean || clean_start);
    (
        will.map(|w| (w, inner.username.clone(), inner.listener as usize)),
        true,
    )
}

/// Hands the session to the claiming connection, with its will; returns
/// the generation it holds.
fn attach(
    inner: &mut SessionInner,
    claim: &Claim<'_>,
    will: Option<(Box<Message>, u32)>,
    now: Instant,
) -> u64 {
    inner.generation = inner.generation.wrapping_add(1);
    inner.peer = claim.peer.into();
    inner.protocol = claim.protocol;
    inner.keep_alive = claim.keep_alive;
    inner.since = Moment::at(now);
    inner.has_connected = true;
    inner.kicked = false;
    inner.conn = Some(claim.conn.clone());
    (inner.will, inner.will_delay) = match will {
        Some((will, delay)) => (Some(will), delay),
        None => (None, 0),
    };
    inner.username = claim.username.clone();
    // Listeners are few: an index fits.
    inner.listener = u32::try_from(claim.listener).unwrap_or(u32::MAX);
    inner.expiry = claim.expiry;
    inner.session.detach();
    inner.generation
}
