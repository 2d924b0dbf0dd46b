//! Dropping the extra copies that overlapping subscriptions bring.
//!
//! A node subscribes once per distinct subject pattern, so a message that
//! matches two of them (`a/+` and `a/#`) arrives twice. NATS writes the
//! copies one after the other, but each subscription has its own queue in
//! the client, so they can be read out of order with other messages of the
//! same origin. Hence a set of recent sequence numbers per origin, not a
//! "highest seen": a copy is dropped when its `(origin, sequence)` was seen
//! among that origin's last [`WINDOW`] received messages.

use std::collections::{HashMap, HashSet, VecDeque};

use crate::message::NodeId;

/// How many received sequence numbers are remembered per origin. Copies of
/// one message are queued together, so they arrive within a few messages of
/// each other unless a subscription's queue holds this many.
pub(crate) const WINDOW: usize = 8192;

/// How many origins are tracked; the least recently heard is forgotten
/// first. Far more than the nodes of a cluster, each restart included.
const MAX_ORIGINS: usize = 64;

#[derive(Debug, Default)]
pub(crate) struct Dedup {
    origins: HashMap<NodeId, Recent>,
    clock: u64,
}

#[derive(Debug, Default)]
struct Recent {
    seen: HashSet<u64>,
    order: VecDeque<u64>,
    last_used: u64,
}

impl Dedup {
    /// Whether this is the first copy of `(origin, sequence)`.
    pub(crate) fn first_copy(&mut self, origin: &NodeId, sequence: u64) -> bool {
        self.clock += 1;
        let clock = self.clock;
        if !self.origins.contains_key(origin) {
            if self.origins.len() >= MAX_ORIGINS {
                self.forget_least_recent();
            }
            self.origins.insert(origin.clone(), Recent::default());
        }
        let Some(recent) = self.origins.get_mut(origin) else {
            return true;
        };
        recent.last_used = clock;
        if !recent.seen.insert(sequence) {
            return false;
        }
        recent.order.push_back(sequence);
        if recent.order.len() > WINDOW {
            if let Some(old) = recent.order.pop_front() {
                recent.seen.remove(&old);
            }
        }
        true
    }

    fn forget_least_recent(&mut self) {
        let oldest = self
            .origins
            .iter()
            .min_by_key(|(_, recent)| recent.last_used)
            .map(|(origin, _)| origin.clone());
        if let Some(origin) = oldest {
            self.origins.remove(&origin);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, incarnation: u64) -> NodeId {
        NodeId {
            name: name.into(),
            incarnation,
        }
    }

    #[test]
    fn copies_are_dropped_in_any_order_per_origin() {
        let mut dedup = Dedup::default();
        let (a, b) = (node("a", 1), node("b", 1));
        assert!(dedup.first_copy(&a, 2));
        assert!(dedup.first_copy(&a, 1));
        assert!(!dedup.first_copy(&a, 2));
        assert!(!dedup.first_copy(&a, 1));
        assert!(dedup.first_copy(&b, 1));
        assert!(
            dedup.first_copy(&node("a", 2), 1),
            "a new incarnation starts afresh"
        );
    }

    #[test]
    fn memory_is_bounded() {
        let mut dedup = Dedup::default();
        let a = node("a", 1);
        for seq in 0..(WINDOW as u64 + 10) {
            assert!(dedup.first_copy(&a, seq));
        }
        assert!(dedup.first_copy(&a, 0), "forgotten after the window");
        assert!(!dedup.first_copy(&a, WINDOW as u64));
        for i in 0..(MAX_ORIGINS as u64 + 5) {
            dedup.first_copy(&node("x", i), 1);
        }
        assert_eq!(dedup.origins.len(), MAX_ORIGINS);
    }
}
