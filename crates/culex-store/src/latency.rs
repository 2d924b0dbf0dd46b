//! A histogram of commit latencies: fixed buckets of relaxed atomic
//! counters, written by the writer thread once per commit and read by
//! anyone (metrics) without a lock.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The buckets' upper bounds, in microseconds (Prometheus-style: a commit
/// is counted in every bucket whose bound it does not exceed).
pub const BUCKETS_US: [u64; 14] = [
    100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000,
    1_000_000, 2_500_000,
];

/// Commit latencies so far (see [`crate::DurableStore::commit_latency`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LatencySnapshot {
    /// Upper bounds of the buckets, in microseconds.
    pub bounds_us: &'static [u64],
    /// Commits that took at most each bound (cumulative, as Prometheus
    /// counts them).
    pub cumulative: Vec<u64>,
    /// Every commit.
    pub count: u64,
    /// Their durations together, in microseconds.
    pub sum_us: u64,
}

/// The live histogram.
#[derive(Debug, Default)]
pub(crate) struct CommitLatency {
    /// Commits per bucket, not cumulative; the last slot counts those
    /// above every bound.
    buckets: [AtomicU64; BUCKETS_US.len() + 1],
    count: AtomicU64,
    sum_us: AtomicU64,
}

impl CommitLatency {
    /// Counts one commit that took `took`.
    pub fn record(&self, took: Duration) {
        let us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        let slot = BUCKETS_US
            .iter()
            .position(|&bound| us <= bound)
            .unwrap_or(BUCKETS_US.len());
        if let Some(bucket) = self.buckets.get(slot) {
            bucket.fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_us.fetch_add(us, Ordering::Relaxed);
    }

    /// The counts now.
    pub fn snapshot(&self) -> LatencySnapshot {
        let mut running = 0u64;
        let cumulative = self
            .buckets
            .iter()
            .take(BUCKETS_US.len())
            .map(|b| {
                running = running.saturating_add(b.load(Ordering::Relaxed));
                running
            })
            .collect();
        LatencySnapshot {
            bounds_us: &BUCKETS_US,
            cumulative,
            count: self.count.load(Ordering::Relaxed),
            sum_us: self.sum_us.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commits_fall_in_cumulative_buckets() {
        let h = CommitLatency::default();
        h.record(Duration::from_micros(80));
        h.record(Duration::from_micros(700));
        h.record(Duration::from_secs(10));
        let s = h.snapshot();
        assert_eq!(s.count, 3);
        assert_eq!(s.cumulative[0], 1);
        assert_eq!(s.cumulative[2], 1);
        assert_eq!(s.cumulative[3], 2);
        assert_eq!(*s.cumulative.last().unwrap(), 2);
        assert_eq!(s.sum_us, 10_000_780);
    }
}
