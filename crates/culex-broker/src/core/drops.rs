//! Deliveries that did not reach their client, by reason: counted per
//! session (the admin API's client detail) and broker-wide (metrics).
//!
//! A session records each drop in its [`DropLog`]; the core moves what the
//! session recorded since the last look into the broker-wide counters
//! after each session operation that may drop ([`DropLog::take_unreported`]),
//! one atomic add per reason and operation, not per message.

/// Why a delivery was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// `max_queued_messages` or `max_queued_bytes` reached: a QoS 1/2
    /// message, or a QoS 0 one for a client that is keeping up.
    QueueFull,
    /// A QoS 0 message for a client that is not connected (never queued).
    Qos0Offline,
    /// A QoS 0 message past the limits for a connected client that took
    /// nothing for `STALL_AFTER` (mosquitto's overflow rule).
    Qos0Stalled,
    /// Larger than the client's 5.0 Maximum Packet Size [MQTT-3.1.2-24].
    PacketTooLarge,
    /// The ACL does not let the subscriber read the topic.
    AclDenied,
    /// Its Message Expiry Interval passed before it could be sent.
    Expired,
}

impl DropReason {
    /// How many reasons there are.
    pub const COUNT: usize = 6;
    /// Every reason, in the order of [`DropReason::index`].
    pub const ALL: [DropReason; DropReason::COUNT] = [
        DropReason::QueueFull,
        DropReason::Qos0Offline,
        DropReason::Qos0Stalled,
        DropReason::PacketTooLarge,
        DropReason::AclDenied,
        DropReason::Expired,
    ];

    /// The reason's position in [`DropReason::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// A stable name, for metric labels and the admin API.
    pub fn label(self) -> &'static str {
        match self {
            DropReason::QueueFull => "queue_full",
            DropReason::Qos0Offline => "qos0_offline",
            DropReason::Qos0Stalled => "qos0_stalled",
            DropReason::PacketTooLarge => "packet_too_large",
            DropReason::AclDenied => "acl_denied",
            DropReason::Expired => "expired",
        }
    }
}

/// Drop counts by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Drops([u64; DropReason::COUNT]);

impl Drops {
    /// The count of one reason.
    pub fn get(&self, reason: DropReason) -> u64 {
        self.0.get(reason.index()).copied().unwrap_or(0)
    }

    /// Every reason's count together.
    pub fn total(&self) -> u64 {
        self.0.iter().fold(0u64, |a, b| a.saturating_add(*b))
    }

    /// Each reason with its count.
    pub fn iter(&self) -> impl Iterator<Item = (DropReason, u64)> + '_ {
        DropReason::ALL.into_iter().map(|r| (r, self.get(r)))
    }

    pub(crate) fn add(&mut self, reason: DropReason, n: u64) {
        if let Some(c) = self.0.get_mut(reason.index()) {
            *c = c.saturating_add(n);
        }
    }
}

/// A session's drops: allocated at its first drop (most sessions never
/// drop anything and then hold 8 bytes for it).
#[derive(Debug, Default)]
pub struct DropLog(Option<Box<DropState>>);

#[derive(Debug, Default)]
struct DropState {
    total: Drops,
    unreported: Drops,
    pending: bool,
}

impl DropLog {
    /// Records one drop.
    pub fn record(&mut self, reason: DropReason) {
        let state = self.0.get_or_insert_with(Box::default);
        state.total.add(reason, 1);
        state.unreported.add(reason, 1);
        state.pending = true;
    }

    /// Every drop so far.
    pub fn total(&self) -> Drops {
        self.0.as_ref().map(|s| s.total).unwrap_or_default()
    }

    /// The drops recorded since the last call, if any.
    pub fn take_unreported(&mut self) -> Option<Drops> {
        let state = self.0.as_mut().filter(|s| s.pending)?;
        state.pending = false;
        Some(std::mem::take(&mut state.unreported))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drops_are_counted_and_reported_once() {
        let mut log = DropLog::default();
        assert_eq!(log.take_unreported(), None);
        log.record(DropReason::Expired);
        log.record(DropReason::Expired);
        log.record(DropReason::AclDenied);
        let new = log.take_unreported().unwrap();
        assert_eq!(new.get(DropReason::Expired), 2);
        assert_eq!(new.total(), 3);
        assert_eq!(log.take_unreported(), None);
        log.record(DropReason::QueueFull);
        assert_eq!(log.take_unreported().unwrap().total(), 1);
        assert_eq!(log.total().total(), 4);
        let labels: Vec<&str> = DropReason::ALL.iter().map(|r| r.label()).collect();
        assert_eq!(labels.len(), DropReason::COUNT);
        for (i, r) in DropReason::ALL.iter().enumerate() {
            assert_eq!(r.index(), i);
        }
    }
}
