//! The broker's counters, for `$SYS` and metrics: relaxed atomics, each
//! added to where its event happens, once per batch where the caller
//! works in batches (a read of frames, a write of deliveries).

use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};

use culex_codec::{Protocol, QoS};

use super::drops::{DropReason, Drops};

/// The protocol versions, in the order of the per-version counters.
pub const PROTOCOLS: [Protocol; 3] = [Protocol::V3_1, Protocol::V3_1_1, Protocol::V5];

/// Counters for `$SYS` and metrics (relaxed atomics).
#[derive(Debug, Default)]
pub struct Stats {
    /// Control packets read from clients.
    pub packets_received: AtomicU64,
    /// Control packets written to clients.
    pub packets_sent: AtomicU64,
    /// PUBLISH packets read, by QoS.
    pub publish_received: [AtomicU64; 3],
    /// Payload bytes of the PUBLISH packets read, by QoS.
    pub publish_received_bytes: [AtomicU64; 3],
    /// PUBLISH packets written, by QoS.
    pub publish_sent: [AtomicU64; 3],
    /// Payload bytes of the PUBLISH packets written, by QoS.
    pub publish_sent_bytes: [AtomicU64; 3],
    /// Deliveries dropped, by [`DropReason::index`].
    pub dropped: [AtomicU64; DropReason::COUNT],
    /// Bytes read from clients.
    pub bytes_received: AtomicU64,
    /// Bytes written to clients.
    pub bytes_sent: AtomicU64,
    /// Sessions that expired.
    pub clients_expired: AtomicU64,
    /// The most clients connected at once.
    pub clients_maximum: AtomicUsize,
    /// Successful connects.
    pub connects: AtomicU64,
    /// Clients connected now.
    pub connected: AtomicUsize,
    /// Connections per listener, in config order.
    listeners: Vec<ListenerStats>,
}

/// One listener's connections, by protocol version (see [`PROTOCOLS`]).
#[derive(Debug, Default)]
pub struct ListenerStats {
    connects: [AtomicU64; 3],
    connected: [AtomicI64; 3],
}

impl ListenerStats {
    /// Clients accepted through this listener with `protocol`, in all.
    pub fn connects(&self, protocol: Protocol) -> u64 {
        load(&self.connects, protocol_index(protocol))
    }

    /// Clients connected through this listener now, any protocol.
    pub fn connected_all(&self) -> u64 {
        PROTOCOLS.iter().map(|&p| self.connected(p)).sum()
    }

    /// Clients connected through this listener with `protocol` now.
    pub fn connected(&self, protocol: Protocol) -> u64 {
        let n = self
            .connected
            .get(protocol_index(protocol))
            .map_or(0, |c| c.load(Ordering::Relaxed));
        u64::try_from(n).unwrap_or(0)
    }
}

impl Stats {
    /// Counters for a broker with `listeners` listeners.
    pub fn new(listeners: usize) -> Stats {
        Stats {
            listeners: (0..listeners).map(|_| ListenerStats::default()).collect(),
            ..Stats::default()
        }
    }

    /// Each listener's connection counters, in config order.
    pub fn listeners(&self) -> &[ListenerStats] {
        &self.listeners
    }

    /// A client connected through `listener` with `protocol`.
    pub(crate) fn connection_opened(&self, listener: usize, protocol: Protocol) {
        let Some(l) = self.listeners.get(listener) else {
            return;
        };
        let i = protocol_index(protocol);
        if let (Some(total), Some(now)) = (l.connects.get(i), l.connected.get(i)) {
            total.fetch_add(1, Ordering::Relaxed);
            now.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A client that [`Stats::connection_opened`] counted is gone.
    pub(crate) fn connection_closed(&self, listener: usize, protocol: Protocol) {
        let now = self
            .listeners
            .get(listener)
            .and_then(|l| l.connected.get(protocol_index(protocol)));
        if let Some(now) = now {
            now.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Adds a session's new drops.
    pub(crate) fn add_drops(&self, drops: &Drops) {
        for (counter, (_, n)) in self.dropped.iter().zip(drops.iter()) {
            if n > 0 {
                counter.fetch_add(n, Ordering::Relaxed);
            }
        }
    }

    /// Deliveries dropped for `reason`.
    pub fn dropped(&self, reason: DropReason) -> u64 {
        load(&self.dropped, reason.index())
    }

    /// Deliveries dropped, by reason.
    pub fn drops(&self) -> Drops {
        let mut drops = Drops::default();
        for reason in DropReason::ALL {
            drops.add(reason, self.dropped(reason));
        }
        drops
    }

    /// Deliveries dropped, for every reason together.
    pub fn dropped_total(&self) -> u64 {
        sum(&self.dropped)
    }

    /// PUBLISH packets read, of every QoS.
    pub fn publish_received_total(&self) -> u64 {
        sum(&self.publish_received)
    }

    /// PUBLISH packets written, of every QoS.
    pub fn publish_sent_total(&self) -> u64 {
        sum(&self.publish_sent)
    }
}

/// What one connection counted over a batch, added to [`Stats`] at its end.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Tally {
    messages: [u32; 3],
    bytes: [u64; 3],
}

impl Tally {
    /// One PUBLISH of `qos` with `payload` bytes.
    pub fn add(&mut self, qos: QoS, payload: usize) {
        let i = qos as usize;
        if let (Some(m), Some(b)) = (self.messages.get_mut(i), self.bytes.get_mut(i)) {
            *m = m.saturating_add(1);
            *b = b.saturating_add(payload as u64);
        }
    }

    /// Adds the batch to `counts` and `bytes`, and starts over.
    pub fn flush(&mut self, counts: &[AtomicU64; 3], bytes: &[AtomicU64; 3]) {
        let batch = self.messages.iter().zip(self.bytes.iter());
        for ((n, b), (count, total)) in batch.zip(counts.iter().zip(bytes.iter())) {
            if *n > 0 {
                count.fetch_add(u64::from(*n), Ordering::Relaxed);
                total.fetch_add(*b, Ordering::Relaxed);
            }
        }
        *self = Tally::default();
    }
}

/// The position of `protocol` in [`PROTOCOLS`].
pub fn protocol_index(protocol: Protocol) -> usize {
    match protocol {
        Protocol::V3_1 => 0,
        Protocol::V3_1_1 => 1,
        Protocol::V5 => 2,
    }
}

/// The protocol version as people write it: `3.1`, `3.1.1`, `5.0`.
pub fn protocol_label(protocol: Protocol) -> &'static str {
    match protocol {
        Protocol::V3_1 => "3.1",
        Protocol::V3_1_1 => "3.1.1",
        Protocol::V5 => "5.0",
    }
}

fn sum(counters: &[AtomicU64]) -> u64 {
    counters
        .iter()
        .fold(0u64, |a, c| a.saturating_add(c.load(Ordering::Relaxed)))
}

fn load(counters: &[AtomicU64], i: usize) -> u64 {
    counters.get(i).map_or(0, |c| c.load(Ordering::Relaxed))
}
