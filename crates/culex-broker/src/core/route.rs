//! Routing: a message to the retained store and to every matching
//! subscriber's session.
//!
//! There is no router task: the connection that reads a PUBLISH routes it
//! itself. It read-locks the subscription tree for one match, then hands
//! the shared message to each subscriber's session (a short per-session
//! mutex) and wakes that subscriber's connection. A publisher's batch of
//! frames is routed through its [`Origin`]: deliveries to one session are
//! gathered in the origin's outbox and handed over under one lock, and the
//! subscribers' connections are woken once the whole batch is routed.
//!
//! An origin also keeps the subscribers of the topic it last published to,
//! for as long as the subscription tree does not change: a client that
//! publishes to one topic again and again (a sensor, a benchmark's
//! publisher) is matched once, and each of its messages reaches each
//! subscriber without a walk of the tree or a new reference to the
//! subscriber's session (whose count other threads write). A shared group
//! is kept whole, and its member picked per message.

use std::borrow::Borrow;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use culex_codec::{QoS, SubscriptionOptions};

use super::drops::DropReason;
use super::message::Message;
use super::session::{Delivered, Delivery, DeliveryExtra};
use super::sessions::{SessionHandle, SessionKey};
use super::state::{Core, Event};
use super::store::Durability;
use super::subscriptions::{pick_turn, GroupMatch, Match};
use super::wake::ConnWaker;

/// Sessions one batch may hold deliveries for; deliveries to others go at once.
const OUTBOX_SESSIONS: usize = 16;
/// Deliveries held for one session before they are handed over.
const OUTBOX_FLUSH_AT: usize = 16;

/// What routing one message did.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Routed {
    /// Subscribers that matched.
    pub matched: usize,
    /// Whether some subscriber's queue was full (the message was dropped for it).
    pub overflow: bool,
    /// A subscriber asked the publisher to pause (back-pressure).
    pub pause: bool,
    /// What the acknowledgement of the message must wait for.
    pub durability: Durability,
}

/// A connection publishing what it read. Owned by the connection and lent
/// to the core for each batch of frames.
#[derive(Debug)]
pub(crate) struct Origin {
    /// The publishing connection, to pause and resume (back-pressure).
    pub signal: ConnWaker,
    /// Connections with deliveries ready, woken once the batch is routed,
    /// so that each subscriber writes the batch in one go.
    pub wakes: Vec<ConnWaker>,
    /// Deliveries held per session until [`Core::deliver_outbox`]. Only
    /// used when acknowledgements need not wait for the store: a held
    /// delivery has not been journaled yet.
    outbox: Vec<Held>,
    /// Matches of the message being routed (reused).
    matches: Vec<Match<SessionKey>>,
    /// The subscribers of the topic last routed.
    last: LastTopic,
}

/// The subscribers of the topic an origin last published to, as the
/// subscription tree of `generation` matched it: each subscriber outside
/// shared groups, and each shared group whole (its member is picked per
/// message).
#[derive(Debug, Default)]
struct LastTopic {
    topic: Option<Arc<str>>,
    generation: u64,
    targets: Vec<Target>,
    groups: Vec<SharedGroup>,
}

/// A shared group the last topic matched: every member, and whose turn is
/// next (this origin's own turn, which started at the group's).
#[derive(Debug)]
struct SharedGroup {
    members: Vec<Target>,
    turn: usize,
}

impl SharedGroup {
    /// The member whose turn it is, ranked on its session's state now (see
    /// [`Session::share_rank`]); the turn moves past it.
    ///
    /// [`Session::share_rank`]: super::session::Session::share_rank
    fn pick(&mut self) -> Option<&Target> {
        let rank = |t: &Target| t.handle.inner.lock().session.share_rank();
        let (i, skipped) = pick_turn(&self.members, self.turn, rank)?;
        self.turn = self.turn.wrapping_add(skipped).wrapping_add(1);
        self.members.get(i)
    }
}

/// One subscriber a message goes to, with what each delivery to it
/// carries.
#[derive(Debug)]
struct Target {
    handle: Arc<SessionHandle>,
    qos: QoS,
    options: SubscriptionOptions,
    extra: Option<Arc<DeliveryExtra>>,
}

impl From<Match<SessionKey>> for Target {
    fn from(m: Match<SessionKey>) -> Target {
        Target {
            handle: m.key.0,
            qos: m.qos,
            options: m.options,
            extra: DeliveryExtra::new(m.ids, m.share),
        }
    }
}

impl LastTopic {
    fn is_for(&self, topic: &Arc<str>, generation: u64) -> bool {
        self.generation == generation
            && self
                .topic
                .as_ref()
                .is_some_and(|t| Arc::ptr_eq(t, topic) || t == topic)
    }

    /// Keeps `matches` and `groups` as the subscribers of `topic`.
    fn refill(
        &mut self,
        topic: &Arc<str>,
        generation: u64,
        matches: impl Iterator<Item = Match<SessionKey>>,
        groups: impl Iterator<Item = GroupMatch<SessionKey>>,
    ) {
        self.topic = Some(topic.clone());
        self.generation = generation;
        self.targets.clear();
        self.targets.extend(matches.map(Target::from));
        self.groups.clear();
        self.groups.extend(groups.map(|g| SharedGroup {
            members: g.members.into_iter().map(Target::from).collect(),
            turn: g.turn,
        }));
    }
}

/// One session's deliveries in the outbox; `None` marks a free slot.
type Held = (Option<Arc<SessionHandle>>, Vec<Delivery>);

impl Origin {
    /// The origin of a connection's publishes.
    pub fn new(signal: ConnWaker) -> Origin {
        Origin {
            signal,
            wakes: Vec::new(),
            outbox: Vec::new(),
            matches: Vec::new(),
            last: LastTopic::default(),
        }
    }

    /// Wakes the connections the batch made ready.
    pub fn wake_all(&mut self) {
        for conn in self.wakes.drain(..) {
            conn.wake();
        }
    }
}

/// The outcome of handing deliveries to one session.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Handed {
    overflow: bool,
    pause: bool,
    durability: Durability,
}

impl Handed {
    fn add(&mut self, other: Handed) {
        self.overflow |= other.overflow;
        self.pause |= other.pause;
        self.durability = self.durability.and(other.durability);
    }
}

impl Core {
    /// Routes a message the broker itself publishes ($SYS, wills).
    pub(crate) fn publish(&self, msg: Arc<Message>, now: Instant) {
        let mut matches = Vec::new();
        self.route_matches(msg, &mut matches, now, None);
    }

    /// Routes one message from the connection `from`: retained store, then
    /// every matching subscriber. When a subscriber's backlog is full but
    /// draining, the publisher is registered with it and [`Routed::pause`]
    /// tells it to stop reading until it is resumed.
    pub(crate) fn route(&self, msg: Arc<Message>, from: &mut Origin, now: Instant) -> Routed {
        let mut matches = std::mem::take(&mut from.matches);
        let routed = self.route_matches(msg, &mut matches, now, Some(from));
        from.matches = matches;
        routed
    }

    fn route_matches(
        &self,
        msg: Arc<Message>,
        matches: &mut Vec<Match<SessionKey>>,
        now: Instant,
        from: Option<&mut Origin>,
    ) -> Routed {
        let mut routed = Routed::default();
        if msg.retain {
            routed.durability = self.set_retained(&msg);
        }
        // One relaxed load per message unless the dashboard watches topics.
        if self.topics.is_active() {
            self.topics.record(&msg);
        }
        let handed = self.hand_to_matches(&msg, matches, now, from, &mut routed.matched);
        // `$SYS` is about this node: it stays here.
        if !self.cluster_is_local && !msg.topic.starts_with("$SYS/") {
            routed.durability = routed.durability.and(self.cluster.published(&msg));
        }
        routed.overflow = handed.overflow;
        routed.pause = handed.pause;
        routed.durability = routed.durability.and(handed.durability);
        routed
    }

    /// Hands `msg` to every local subscription it matches (shared ones
    /// only when the cluster does not serve them), counting the matches.
    pub(super) fn hand_to_matches(
        &self,
        msg: &Arc<Message>,
        matches: &mut Vec<Match<SessionKey>>,
        now: Instant,
        from: Option<&mut Origin>,
        matched: &mut usize,
    ) -> Handed {
        let skip_shared = !self.cluster_is_local && self.cluster.serving();
        let Some(o) = from else {
            matches.clear();
            let rank = |k: &SessionKey| k.0.inner.lock().session.share_rank();
            self.subscriptions
                .read()
                .matches_ranked(&msg.topic, matches, &rank);
            *matched = matches.len();
            let targets = matches
                .drain(..)
                .filter(|m| !(skip_shared && m.share.is_some()))
                .map(Target::from);
            return self.hand_to_targets(msg, targets, now, None);
        };
        let generation = self.subscriptions.generation();
        if !o.last.is_for(&msg.topic, generation) {
            matches.clear();
            // Allocates only when a shared group matched.
            let mut groups = Vec::new();
            self.subscriptions
                .read()
                .matches_grouped(&msg.topic, matches, &mut groups);
            o.last.refill(
                &msg.topic,
                generation,
                matches.drain(..),
                groups.into_iter(),
            );
        }
        let mut last = std::mem::take(&mut o.last);
        *matched = last.targets.len() + last.groups.len();
        let mut handed = self.hand_to_targets(msg, &last.targets, now, Some(o));
        if !skip_shared {
            for group in &mut last.groups {
                if let Some(member) = group.pick() {
                    handed.add(self.hand_to_targets(msg, [member], now, Some(o)));
                }
            }
        }
        o.last = last;
        handed
    }

    /// Hands `msg` to each target: through the origin's outbox when there
    /// is one (the index of a target is where its slot is looked for
    /// first), else at once.
    fn hand_to_targets<T: Borrow<Target>>(
        &self,
        msg: &Arc<Message>,
        targets: impl IntoIterator<Item = T>,
        now: Instant,
        mut from: Option<&mut Origin>,
    ) -> Handed {
        let defer = !self.store.is_durable();
        let mut handed = Handed::default();
        for (i, t) in targets.into_iter().enumerate() {
            let t = t.borrow();
            let Some(delivery) = self.delivery_to(msg, t) else {
                continue;
            };
            // Shared-group members are ranked on their state at routing
            // time, so their deliveries are not held back.
            let delivery = match from.as_deref_mut() {
                Some(o) if defer && delivery.share().is_none() => {
                    match self.hold(&t.handle, delivery, now, o, Some(i)) {
                        Ok(h) => {
                            handed.add(h);
                            continue;
                        }
                        Err(delivery) => delivery,
                    }
                }
                _ => delivery,
            };
            handed.add(self.hand_over(&t.handle, [delivery], now, from.as_deref_mut(), false));
        }
        handed
    }

    /// The delivery of `msg` for one match, or `None` when 5.0 No Local
    /// keeps it from the publisher [MQTT-3.8.3-3].
    pub(super) fn delivery_for(
        &self,
        msg: &Arc<Message>,
        m: Match<SessionKey>,
    ) -> Option<(Arc<SessionHandle>, Delivery)> {
        let target = Target::from(m);
        let delivery = self.delivery_to(msg, &target)?;
        Some((target.handle, delivery))
    }

    /// The delivery of `msg` to one target, or `None` when 5.0 No Local
    /// keeps it from the publisher [MQTT-3.8.3-3].
    fn delivery_to(&self, msg: &Arc<Message>, t: &Target) -> Option<Delivery> {
        if t.options.no_local && msg.origin.as_deref() == Some(&*t.handle.client_id) {
            return None;
        }
        let qos = if self.config.limits.upgrade_outgoing_qos {
            t.qos
        } else {
            msg.qos.min(t.qos)
        };
        // Normal deliveries clear RETAIN unless retain-as-published [MQTT-3.3.1-9].
        let retain = msg.retain && t.options.retain_as_published;
        Some(Delivery::with_extra(
            msg.clone(),
            qos,
            retain,
            t.extra.clone(),
        ))
    }

    fn set_retained(&self, msg: &Arc<Message>) -> Durability {
        // `$SYS` values are regenerated at start; they are not stored.
        let sys = msg.topic.starts_with("$SYS/");
        // In a cluster, the cluster holds retained messages (`$SYS` aside).
        if !self.cluster_is_local && !sys && self.cluster.serving() {
            let set = (!msg.payload.is_empty()).then_some(msg);
            return self.cluster.retained(&msg.topic, set);
        }
        if msg.payload.is_empty() {
            // An empty retained payload clears the topic [MQTT-3.3.1-10].
            if self.retained.write().remove(&msg.topic) && !sys {
                self.store.retained_clear(&msg.topic)
            } else {
                Durability::Done
            }
        } else {
            // A new retained message replaces the old one [MQTT-3.3.1-5].
            self.retained.write().insert(msg.clone());
            if sys {
                Durability::Done
            } else {
                self.store.retained_set(msg)
            }
        }
    }

    /// Holds `delivery` for `handle` in the origin's outbox, or gives it
    /// back when the outbox has no room for another session. A session's
    /// share is handed over as soon as it reaches [`OUTBOX_FLUSH_AT`], so
    /// that a publisher overshoots a full subscriber's pause threshold by
    /// at most that much.
    fn hold(
        &self,
        handle: &Arc<SessionHandle>,
        delivery: Delivery,
        now: Instant,
        from: &mut Origin,
        hint: Option<usize>,
    ) -> Result<Handed, Delivery> {
        let Some(slot) = outbox_slot(&mut from.outbox, handle, hint) else {
            return Err(delivery);
        };
        let Some((held, list)) = from.outbox.get_mut(slot) else {
            return Err(delivery);
        };
        if held.is_none() {
            *held = Some(handle.clone());
        }
        list.push(delivery);
        if list.len() < OUTBOX_FLUSH_AT {
            return Ok(Handed::default());
        }
        let mut batch = std::mem::take(list);
        let handed = self.hand_over(handle, batch.drain(..), now, Some(from), false);
        // The emptied list goes back, its allocation kept.
        if let Some((_, list)) = from.outbox.get_mut(slot) {
            *list = batch;
        }
        Ok(handed)
    }

    /// Hands every session its share of the outbox, each under one lock;
    /// returns (overflow, pause) of the batch.
    pub(crate) fn deliver_outbox(&self, from: &mut Origin, now: Instant) -> (bool, bool) {
        // Subscribers the tree no longer holds are let go at the end of a
        // batch, not kept until this client publishes again.
        if from.last.topic.is_some() && from.last.generation != self.subscriptions.generation() {
            from.last = LastTopic::default();
        }
        let mut outbox = std::mem::take(&mut from.outbox);
        let mut handed = Handed::default();
        for (held, list) in outbox.iter_mut() {
            let Some(handle) = held.take() else {
                continue;
            };
            handed.add(self.hand_over(&handle, list.drain(..), now, Some(from), false));
        }
        from.outbox = outbox;
        (handed.overflow, handed.pause)
    }

    /// The retained messages a new subscription matched, under one lock:
    /// never dropped by the queue limits (see `Session::deliver_retained`).
    pub(crate) fn deliver_retained(
        &self,
        handle: &Arc<SessionHandle>,
        deliveries: impl IntoIterator<Item = Delivery>,
        now: Instant,
    ) {
        self.hand_over(handle, deliveries, now, None, true);
    }

    /// Hands deliveries to a session, in order, under one lock of it, after
    /// the ACL check, and wakes its connection when something became ready
    /// (through `from` once its batch is routed, else at once).
    pub(super) fn hand_over(
        &self,
        handle: &SessionHandle,
        deliveries: impl IntoIterator<Item = Delivery>,
        now: Instant,
        from: Option<&mut Origin>,
        retained: bool,
    ) -> Handed {
        let mut handed = Handed::default();
        let drop_notice;
        let wake = {
            let mut inner = handle.inner.lock();
            if inner.ended {
                return handed;
            }
            // The connection is woken when its session goes from nothing
            // ready to something ready; until it drains, later deliveries
            // need no wake-up of their own.
            let was_waiting = inner.session.has_ready();
            let mut ready = false;
            let acl = self.acl_active.load(Ordering::Relaxed);
            for delivery in deliveries {
                if acl
                    && !self.policy(inner.listener as usize).can_read(
                        &handle.client_id,
                        inner.username.as_deref(),
                        &delivery.msg.topic,
                    )
                {
                    inner.session.record_drop(DropReason::AclDenied);
                    continue;
                }
                let delivered = if retained {
                    inner.session.deliver_retained(delivery, now)
                } else {
                    inner.session.deliver(delivery, now)
                };
                match delivered {
                    Delivered::Ready => ready = true,
                    Delivered::Queued => {}
                    Delivered::Dropped => handed.overflow = true,
                }
            }
            self.report_drops(&mut inner.session);
            drop_notice = inner.session.take_drop_notice();
            handed.durability = self.flush_changes(&handle.client_id, &mut inner.session);
            if let Some(from) = &from {
                if inner.session.wants_pause(now) {
                    handed.pause = true;
                    inner.pause(&from.signal);
                }
            }
            if ready && !was_waiting {
                inner.conn.clone()
            } else {
                None
            }
        };
        if drop_notice {
            self.events.event(Event::Dropping {
                client_id: &handle.client_id,
            });
        }
        if let Some(conn) = wake {
            match from {
                Some(from) => from.wakes.push(conn),
                None => conn.wake(),
            }
        }
        handed
    }
}

/// The outbox slot of `handle`: its own (looked for first at `hint`, where
/// a target of the last topic usually finds it), a free one, or a new one
/// while there are fewer than [`OUTBOX_SESSIONS`].
fn outbox_slot(
    outbox: &mut Vec<Held>,
    handle: &Arc<SessionHandle>,
    hint: Option<usize>,
) -> Option<usize> {
    let owns =
        |held: &Option<Arc<SessionHandle>>| held.as_ref().is_some_and(|h| Arc::ptr_eq(h, handle));
    if let Some(i) = hint {
        if outbox.get(i).is_some_and(|(held, _)| owns(held)) {
            return Some(i);
        }
    }
    let mut free = None;
    for (i, (held, _)) in outbox.iter().enumerate() {
        if owns(held) {
            return Some(i);
        }
        if held.is_none() && free.is_none() {
            free = Some(i);
        }
    }
    match free {
        Some(i) => Some(i),
        None if outbox.len() < OUTBOX_SESSIONS => {
            outbox.push((None, Vec::new()));
            Some(outbox.len() - 1)
        }
        None => None,
    }
}
