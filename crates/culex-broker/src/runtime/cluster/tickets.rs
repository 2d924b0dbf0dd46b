//! One ticket space for two kinds of durable writes: the local store's and
//! the cluster's (a QoS 1/2 message or a retained message stored in
//! JetStream). A connection holds an acknowledgement until its ticket is
//! durable ([`Store::on_durable`]), and tickets are ordered: a ticket is
//! reported once it and every earlier one completed, so that a later
//! ticket covers the earlier ones as the store's own do. [`ClusterStore`] wraps
//! the local store so that its tickets live in this space too.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use culex_codec::{PacketId, QoS, SubscriptionOptions};
use parking_lot::Mutex;

use crate::core::message::Message;
use crate::core::store::{Durability, OutboundState, Snapshot, Store, StoreError};

type Done = Box<dyn FnOnce(bool) + Send>;

/// Failed tickets remembered, newest kept.
const MAX_FAILED_KEPT: usize = 65_536;

/// Tickets issued, completed and waited for.
#[derive(Default)]
pub(crate) struct Tickets {
    state: Mutex<State>,
}

impl std::fmt::Debug for Tickets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tickets").finish_non_exhaustive()
    }
}

#[derive(Default)]
struct State {
    /// The last ticket issued.
    last: u64,
    /// Issued and not completed yet.
    open: BTreeSet<u64>,
    /// Completed without being made durable, not yet reported.
    failed: BTreeSet<u64>,
    /// Callbacks by the ticket they wait for.
    waiting: BTreeMap<u64, Vec<Done>>,
}

impl State {
    /// Every ticket up to this one is complete.
    fn watermark(&self) -> u64 {
        self.open.first().map_or(self.last, |first| first - 1)
    }

    /// The callbacks that may run now, with their result.
    fn take_ready(&mut self) -> Vec<(Done, bool)> {
        let mark = self.watermark();
        let mut ready = Vec::new();
        while let Some(entry) = self.waiting.first_entry() {
            let ticket = *entry.key();
            if ticket > mark {
                break;
            }
            let ok = !self.failed.contains(&ticket);
            ready.extend(entry.remove().into_iter().map(|done| (done, ok)));
        }
        ready
    }
}

impl Tickets {
    /// A new ticket, open until [`Tickets::complete`].
    pub fn issue(&self) -> u64 {
        let mut state = self.state.lock();
        state.last += 1;
        let ticket = state.last;
        state.open.insert(ticket);
        ticket
    }

    /// `ticket`'s write ended: stored (`true`) or given up (`false`).
    pub fn complete(&self, ticket: u64, ok: bool) {
        let ready = {
            let mut state = self.state.lock();
            state.open.remove(&ticket);
            if !ok {
                state.failed.insert(ticket);
                // A failure is kept for the waiters that may still ask
                // about it (they ask right after their ticket is issued).
                if state.failed.len() > MAX_FAILED_KEPT {
                    state.failed.pop_first();
                }
            }
            state.take_ready()
        };
        for (done, ok) in ready {
            done(ok);
        }
    }

    /// Calls `done` once `ticket` and every earlier one completed: with
    /// `false` if `ticket` itself failed (each connection asks about each
    /// of its own tickets, so a failure reaches the connection it is of).
    pub fn on_durable(&self, ticket: u64, done: Done) {
        let ready = {
            let mut state = self.state.lock();
            state.waiting.entry(ticket).or_default().push(done);
            state.take_ready()
        };
        for (done, ok) in ready {
            done(ok);
        }
    }

    /// A ticket in this space for a write of the local store.
    fn wrap(self: &Arc<Self>, inner: &dyn Store, durability: Durability) -> Durability {
        let Durability::Pending(local) = durability else {
            return Durability::Done;
        };
        let ticket = self.issue();
        let tickets = self.clone();
        inner.on_durable(local, Box::new(move |ok| tickets.complete(ticket, ok)));
        Durability::Pending(ticket)
    }
}

/// The local store, its tickets moved into the cluster's ticket space.
#[derive(Debug)]
pub(crate) struct ClusterStore {
    pub inner: Arc<dyn Store>,
    pub tickets: Arc<Tickets>,
}

impl ClusterStore {
    fn wrap(&self, durability: Durability) -> Durability {
        self.tickets.wrap(&*self.inner, durability)
    }
}

impl Store for ClusterStore {
    fn is_durable(&self) -> bool {
        self.inner.is_durable()
    }
    fn load(&self) -> Result<Snapshot, StoreError> {
        self.inner.load()
    }
    fn on_durable(&self, ticket: u64, done: Done) {
        self.tickets.on_durable(ticket, done);
    }
    fn retained_set(&self, msg: &Message) -> Durability {
        self.wrap(self.inner.retained_set(msg))
    }
    fn retained_clear(&self, topic: &str) -> Durability {
        self.wrap(self.inner.retained_clear(topic))
    }
    fn session_put(&self, client_id: &str, expiry_interval: Option<u32>) -> Durability {
        self.wrap(self.inner.session_put(client_id, expiry_interval))
    }
    fn subscription_put(
        &self,
        client_id: &str,
        filter: &str,
        options: SubscriptionOptions,
        id: Option<u32>,
    ) -> Durability {
        self.wrap(self.inner.subscription_put(client_id, filter, options, id))
    }
    fn subscription_delete(&self, client_id: &str, filter: &str) -> Durability {
        self.wrap(self.inner.subscription_delete(client_id, filter))
    }
    fn session_delete(&self, client_id: &str) -> Durability {
        self.wrap(self.inner.session_delete(client_id))
    }
    fn queued_add(&self, client_id: &str, msg: &Message, qos: QoS) -> Durability {
        self.wrap(self.inner.queued_add(client_id, msg, qos))
    }
    fn queued_remove_front(&self, client_id: &str) -> Durability {
        self.wrap(self.inner.queued_remove_front(client_id))
    }
    fn outbound_sent(&self, client_id: &str, id: PacketId, msg: &Message, qos: QoS) -> Durability {
        self.wrap(self.inner.outbound_sent(client_id, id, msg, qos))
    }
    fn outbound_state(
        &self,
        client_id: &str,
        id: PacketId,
        state: Option<OutboundState>,
    ) -> Durability {
        self.wrap(self.inner.outbound_state(client_id, id, state))
    }
    fn inbound_qos2(&self, client_id: &str, id: PacketId, pending: bool) -> Durability {
        self.wrap(self.inner.inbound_qos2(client_id, id, pending))
    }
    fn delayed_will(&self, client_id: &str, will: Option<&Message>) -> Durability {
        self.wrap(self.inner.delayed_will(client_id, will))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    fn recorder(log: &Arc<Mutex<Vec<(u64, bool)>>>, ticket: u64) -> Done {
        let log = log.clone();
        Box::new(move |ok| log.lock().push((ticket, ok)))
    }

    #[test]
    fn a_ticket_is_durable_once_every_earlier_one_completed() {
        let tickets = Tickets::default();
        let log = Arc::new(Mutex::new(Vec::new()));
        let (a, b, c) = (tickets.issue(), tickets.issue(), tickets.issue());
        tickets.on_durable(b, recorder(&log, b));
        tickets.on_durable(c, recorder(&log, c));
        tickets.complete(b, true);
        assert!(log.lock().is_empty(), "a is still open");
        tickets.complete(a, true);
        assert_eq!(*log.lock(), vec![(b, true)]);
        tickets.complete(c, true);
        assert_eq!(*log.lock(), vec![(b, true), (c, true)]);
        // Asking about a ticket already durable answers at once.
        tickets.on_durable(a, recorder(&log, a));
        assert_eq!(log.lock().last(), Some(&(a, true)));
    }

    #[test]
    fn a_failure_reaches_the_waiter_of_that_ticket_only() {
        let tickets = Tickets::default();
        let log = Arc::new(Mutex::new(Vec::new()));
        let (a, b) = (tickets.issue(), tickets.issue());
        tickets.on_durable(a, recorder(&log, a));
        tickets.on_durable(b, recorder(&log, b));
        tickets.complete(b, true);
        tickets.complete(a, false);
        assert_eq!(*log.lock(), vec![(a, false), (b, true)]);
        let c = tickets.issue();
        tickets.on_durable(c, recorder(&log, c));
        tickets.complete(c, true);
        assert_eq!(log.lock().last(), Some(&(c, true)));
    }

    #[test]
    fn local_store_tickets_are_renumbered_and_wait_for_the_store() {
        #[derive(Default)]
        struct Deferred(Mutex<Vec<Done>>, AtomicUsize);
        impl std::fmt::Debug for Deferred {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("Deferred")
            }
        }
        impl Store for Deferred {
            fn on_durable(&self, _ticket: u64, done: Done) {
                self.0.lock().push(done);
            }
            fn retained_set(&self, _msg: &Message) -> Durability {
                Durability::Pending(self.1.fetch_add(1, Ordering::Relaxed) as u64 + 100)
            }
            fn retained_clear(&self, _topic: &str) -> Durability {
                Durability::Done
            }
            fn session_put(&self, _: &str, _: Option<u32>) -> Durability {
                Durability::Done
            }
            fn subscription_put(
                &self,
                _: &str,
                _: &str,
                _: SubscriptionOptions,
                _: Option<u32>,
            ) -> Durability {
                Durability::Done
            }
            fn subscription_delete(&self, _: &str, _: &str) -> Durability {
                Durability::Done
            }
            fn session_delete(&self, _: &str) -> Durability {
                Durability::Done
            }
            fn queued_add(&self, _: &str, _: &Message, _: QoS) -> Durability {
                Durability::Done
            }
            fn queued_remove_front(&self, _: &str) -> Durability {
                Durability::Done
            }
            fn outbound_sent(&self, _: &str, _: PacketId, _: &Message, _: QoS) -> Durability {
                Durability::Done
            }
            fn outbound_state(&self, _: &str, _: PacketId, _: Option<OutboundState>) -> Durability {
                Durability::Done
            }
            fn inbound_qos2(&self, _: &str, _: PacketId, _: bool) -> Durability {
                Durability::Done
            }
            fn delayed_will(&self, _: &str, _: Option<&Message>) -> Durability {
                Durability::Done
            }
        }
        let inner = Arc::new(Deferred::default());
        let store = ClusterStore {
            inner: inner.clone(),
            tickets: Arc::new(Tickets::default()),
        };
        let msg = Message::new("t", "x", QoS::AtLeastOnce, true, std::time::Instant::now());
        assert_eq!(store.session_delete("c"), Durability::Done);
        let Durability::Pending(ticket) = store.retained_set(&msg) else {
            panic!("the local write is pending");
        };
        let log = Arc::new(Mutex::new(Vec::new()));
        store.on_durable(ticket, recorder(&log, ticket));
        assert!(log.lock().is_empty());
        for done in inner.0.lock().drain(..) {
            done(true);
        }
        assert_eq!(*log.lock(), vec![(ticket, true)]);
    }
}
