//! Counters and latency histograms shared by the connections of one run.
//!
//! Connections add to the counters once per batch (a write of many packets,
//! or a read of many frames), never once per message, so the counters cost
//! nothing measurable even flat out.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use hdrhistogram::Histogram;

/// Longest latency recorded, in nanoseconds; longer ones are clamped.
const MAX_LATENCY_NS: u64 = 60_000_000_000;
/// Latency histograms are sharded so connections on different threads rarely
/// meet on a lock.
const SHARDS: usize = 16;
/// Marks a payload that carries our stamp: send time (8 bytes), this magic,
/// then the id of the run that sent it (4 bytes).
pub const STAMP_MAGIC: [u8; 4] = *b"CXB1";
/// Payload bytes needed for a stamp.
pub const STAMP_LEN: usize = 16;

/// Everything the connections of a run report.
#[derive(Debug)]
pub struct Shared {
    /// Connections with a CONNACK (and SUBACK for subscribers).
    pub connected: AtomicU64,
    /// Connections that failed or broke.
    pub disconnected: AtomicU64,
    /// PUBLISH packets written.
    pub sent: AtomicU64,
    /// QoS 1/2 publications acknowledged (PUBACK, or PUBCOMP).
    pub acked: AtomicU64,
    /// PUBLISH packets received by subscribers.
    pub received: AtomicU64,
    /// PUBLISH packets received that another run sent (left over in the broker).
    pub stray: AtomicU64,
    /// Publishers still running.
    pub publishers_active: AtomicU64,
    /// Errors of every kind.
    pub error_count: AtomicU64,
    errors: Mutex<BTreeMap<String, u64>>,
    shards: Vec<Mutex<Histogram<u64>>>,
}

impl Shared {
    /// Fresh counters.
    pub fn new() -> Shared {
        Shared {
            connected: AtomicU64::new(0),
            disconnected: AtomicU64::new(0),
            sent: AtomicU64::new(0),
            acked: AtomicU64::new(0),
            received: AtomicU64::new(0),
            stray: AtomicU64::new(0),
            publishers_active: AtomicU64::new(0),
            error_count: AtomicU64::new(0),
            errors: Mutex::new(BTreeMap::new()),
            shards: (0..SHARDS).map(|_| Mutex::new(new_histogram())).collect(),
        }
    }

    /// Counts an error under a short description of its kind.
    pub fn error(&self, kind: impl Into<String>) {
        self.error_count.fetch_add(1, Relaxed);
        // A lock is right here: errors are rare and off the hot path.
        let mut errors = self.errors.lock().unwrap_or_else(|e| e.into_inner());
        *errors.entry(kind.into()).or_insert(0) += 1;
    }

    /// The errors so far, by kind.
    pub fn errors(&self) -> BTreeMap<String, u64> {
        self.errors
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Records a batch of latencies (nanoseconds) into the shard of `client`.
    pub fn record_latencies(&self, client: usize, latencies: &[u64]) {
        if latencies.is_empty() {
            return;
        }
        if let Some(shard) = self.shards.get(client % SHARDS) {
            // One lock per read batch; only the progress reporter competes.
            let mut hist = shard.lock().unwrap_or_else(|e| e.into_inner());
            for &ns in latencies {
                hist.saturating_record(ns.clamp(1, MAX_LATENCY_NS));
            }
        }
    }

    /// Moves every recorded latency into `into`, leaving the shards empty.
    pub fn drain_latencies(&self, into: &mut Histogram<u64>) {
        for shard in &self.shards {
            let mut hist = shard.lock().unwrap_or_else(|e| e.into_inner());
            // Both histograms have the same bounds, so adding cannot fail.
            let _ = into.add(&*hist);
            hist.reset();
        }
    }
}

impl Default for Shared {
    fn default() -> Self {
        Shared::new()
    }
}

/// An empty latency histogram in nanoseconds, three significant digits.
pub fn new_histogram() -> Histogram<u64> {
    match Histogram::new_with_bounds(1, MAX_LATENCY_NS, 3) {
        Ok(h) => h,
        // The bounds are constants that hdrhistogram accepts.
        Err(e) => unreachable!("histogram bounds: {e}"),
    }
}

/// Wall-clock nanoseconds since the Unix epoch: comparable across processes
/// on one machine, so `culex bench sub` can time another process's `pub`.
pub fn wall_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// An id for this run, to tell its messages from those another run left in
/// the broker.
pub fn new_run_id() -> u32 {
    let mixed = wall_ns() ^ (u64::from(std::process::id()) << 32);
    (mixed ^ (mixed >> 29)) as u32
}

/// Writes the send time and run id into a payload of at least [`STAMP_LEN`]
/// bytes; shorter payloads are left as they are.
pub fn stamp(payload: &mut [u8], now_ns: u64, run_id: u32) {
    if let Some(head) = payload.get_mut(..STAMP_LEN) {
        head[..8].copy_from_slice(&now_ns.to_le_bytes());
        head[8..12].copy_from_slice(&STAMP_MAGIC);
        head[12..].copy_from_slice(&run_id.to_le_bytes());
    }
}

/// The send time and run id of a stamped payload.
pub fn read_stamp(payload: &[u8]) -> Option<(u64, u32)> {
    // The payload comes from the broker: split it by pattern, so no index
    // can panic whatever arrives.
    let (ts, rest) = payload.split_first_chunk::<8>()?;
    let (magic, rest) = rest.split_first_chunk::<4>()?;
    let (run, _) = rest.split_first_chunk::<4>()?;
    (*magic == STAMP_MAGIC).then(|| (u64::from_le_bytes(*ts), u32::from_le_bytes(*run)))
}

/// CPU time this process has used, from `/proc/self/stat`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CpuTime {
    /// User seconds.
    pub user: f64,
    /// System seconds.
    pub system: f64,
}

impl CpuTime {
    /// Now; zero where `/proc` is unavailable.
    pub fn now() -> CpuTime {
        std::fs::read_to_string("/proc/self/stat")
            .ok()
            .and_then(|s| parse_stat(&s))
            .unwrap_or_default()
    }

    /// Time used since `earlier`.
    pub fn since(self, earlier: CpuTime) -> CpuTime {
        CpuTime {
            user: (self.user - earlier.user).max(0.0),
            system: (self.system - earlier.system).max(0.0),
        }
    }
}

/// utime and stime are fields 14 and 15, in clock ticks; Linux reports
/// them in USER_HZ, which is 100 on every architecture it exports to user space.
fn parse_stat(stat: &str) -> Option<CpuTime> {
    const USER_HZ: f64 = 100.0;
    // The command name (field 2) may contain spaces; fields resume after ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3, so field N is at index N - 3.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some(CpuTime {
        user: utime / USER_HZ,
        system: stime / USER_HZ,
    })
}

/// Peak resident set size of this process in KiB, from `/proc/self/status`.
pub fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_round_trip() {
        let mut payload = vec![0u8; 64];
        stamp(&mut payload, 123_456_789, 77);
        assert_eq!(read_stamp(&payload), Some((123_456_789, 77)));
        assert_eq!(read_stamp(&[0u8; 64]), None, "no magic, no stamp");
        let mut short = vec![0u8; STAMP_LEN - 1];
        stamp(&mut short, 5, 1);
        assert_eq!(read_stamp(&short), None);
    }

    #[test]
    fn stat_fields() {
        let line = "42 (a b) S 1 2 3 4 5 6 7 8 9 10 250 130 0 0 20 0 1 0";
        let cpu = parse_stat(line).unwrap();
        assert_eq!(
            cpu,
            CpuTime {
                user: 2.5,
                system: 1.3
            }
        );
        assert!(CpuTime::now().user >= 0.0);
    }

    #[test]
    fn latencies_are_merged() {
        let shared = Shared::new();
        shared.record_latencies(0, &[1_000, 2_000]);
        shared.record_latencies(5, &[3_000]);
        let mut all = new_histogram();
        shared.drain_latencies(&mut all);
        assert_eq!(all.len(), 3);
        let mut again = new_histogram();
        shared.drain_latencies(&mut again);
        assert_eq!(again.len(), 0);
    }
}
