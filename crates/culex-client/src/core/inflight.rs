//! Fixed-capacity in-flight tables and packet id allocation.

use culex_codec::PacketId;

/// What an outgoing packet id in flight is waiting for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InflightKind {
    /// QoS 1 PUBLISH sent, waiting for PUBACK.
    PubAck,
    /// QoS 2 PUBLISH sent, waiting for PUBREC.
    PubRec,
    /// QoS 2 PUBREL sent, waiting for PUBCOMP. The message itself is
    /// delivered; after a reconnect only the PUBREL is re-sent.
    PubComp,
    /// SUBSCRIBE sent, waiting for SUBACK.
    SubAck,
    /// UNSUBSCRIBE sent, waiting for UNSUBACK.
    UnsubAck,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OutSlot {
    pub(crate) id: PacketId,
    pub(crate) kind: InflightKind,
    /// A PUBREL for this id still has to be written.
    pub(crate) rel_pending: bool,
}

/// The outgoing in-flight table: `N` slots, no allocation.
#[derive(Debug, Clone)]
pub(crate) struct OutTable<const N: usize> {
    slots: [Option<OutSlot>; N],
}

impl<const N: usize> OutTable<N> {
    pub(crate) const fn new() -> Self {
        OutTable { slots: [None; N] }
    }

    pub(crate) fn is_full(&self) -> bool {
        self.slots.iter().all(|s| s.is_some())
    }

    pub(crate) fn contains(&self, id: PacketId) -> bool {
        self.get(id).is_some()
    }

    pub(crate) fn get(&self, id: PacketId) -> Option<&OutSlot> {
        self.slots.iter().flatten().find(|s| s.id == id)
    }

    pub(crate) fn get_mut(&mut self, id: PacketId) -> Option<&mut OutSlot> {
        self.slots.iter_mut().flatten().find(|s| s.id == id)
    }

    /// Publishes in flight (not SUBSCRIBE/UNSUBSCRIBE), counted against the
    /// server's Receive Maximum.
    pub(crate) fn publishes(&self) -> usize {
        self.slots
            .iter()
            .flatten()
            .filter(|s| {
                matches!(
                    s.kind,
                    InflightKind::PubAck | InflightKind::PubRec | InflightKind::PubComp
                )
            })
            .count()
    }

    pub(crate) fn insert(&mut self, slot: OutSlot) -> bool {
        match self.slots.iter_mut().find(|s| s.is_none()) {
            Some(free) => {
                *free = Some(slot);
                true
            }
            None => false,
        }
    }

    pub(crate) fn remove(&mut self, id: PacketId) -> Option<OutSlot> {
        self.slots
            .iter_mut()
            .find(|s| matches!(s, Some(slot) if slot.id == id))
            .and_then(Option::take)
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &OutSlot> + '_ {
        self.slots.iter().flatten()
    }

    pub(crate) fn iter_mut(&mut self) -> impl Iterator<Item = &mut OutSlot> + '_ {
        self.slots.iter_mut().flatten()
    }

    pub(crate) fn retain(&mut self, mut keep: impl FnMut(&OutSlot) -> bool) {
        for slot in self.slots.iter_mut() {
            if matches!(slot, Some(s) if !keep(s)) {
                *slot = None;
            }
        }
    }
}

/// Incoming QoS 2 packet ids received (PUBREC sent) and not yet released by
/// PUBREL: a message with one of these ids is not delivered again.
#[derive(Debug, Clone)]
pub(crate) struct InTable<const N: usize> {
    ids: [Option<PacketId>; N],
}

impl<const N: usize> InTable<N> {
    pub(crate) const fn new() -> Self {
        InTable { ids: [None; N] }
    }

    pub(crate) fn contains(&self, id: PacketId) -> bool {
        self.ids.iter().flatten().any(|&i| i == id)
    }

    /// Records `id`; false when the table is full.
    pub(crate) fn insert(&mut self, id: PacketId) -> bool {
        if self.contains(id) {
            return true;
        }
        match self.ids.iter_mut().find(|s| s.is_none()) {
            Some(free) => {
                *free = Some(id);
                true
            }
            None => false,
        }
    }

    pub(crate) fn remove(&mut self, id: PacketId) -> bool {
        match self.ids.iter_mut().find(|s| **s == Some(id)) {
            Some(slot) => {
                *slot = None;
                true
            }
            None => false,
        }
    }

    pub(crate) fn clear(&mut self) {
        self.ids = [None; N];
    }
}

/// Packet id allocation: 1..=65535, wrapping from 65535 to 1 and skipping ids
/// that are still in flight [MQTT-2.3.1-2].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PacketIds {
    last: u16,
}

impl Default for PacketIds {
    fn default() -> Self {
        PacketIds::new()
    }
}

impl PacketIds {
    /// The first id handed out is 1.
    pub const fn new() -> PacketIds {
        PacketIds { last: 0 }
    }

    /// Starts so that the next id is the one after `last` (for tests of
    /// wrapping, or to continue a stored session).
    pub const fn starting_after(last: u16) -> PacketIds {
        PacketIds { last }
    }

    /// The next id after the last one handed out for which `in_use` is false,
    /// or `None` when all 65535 are in use.
    pub fn next(&mut self, mut in_use: impl FnMut(PacketId) -> bool) -> Option<PacketId> {
        let mut candidate = self.last;
        for _ in 0..u16::MAX {
            candidate = if candidate == u16::MAX {
                1
            } else {
                candidate + 1
            };
            if let Some(id) = PacketId::new(candidate) {
                if !in_use(id) {
                    self.last = candidate;
                    return Some(id);
                }
            }
        }
        None
    }
}
