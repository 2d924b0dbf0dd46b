//! The admin side's shared state: what every request handler reads (the
//! core, the login check, the live log, the overview samples) and the
//! topic-tree watch it keeps for the page.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::auth::Auth;
use super::error::AdminError;
use super::events::{unix_ms, EventRing};
use super::process::ProcessStats;
use crate::core::Core;

/// How long the topic tree stays fed after the last request that read it.
pub(crate) const WATCH_LEASE: Duration = Duration::from_secs(30);
/// Overview samples kept (one a second: five minutes).
const SAMPLES: usize = 300;

/// The admin side of a running broker.
#[derive(Debug)]
pub(crate) struct Admin {
    pub core: Arc<Core>,
    pub auth: Auth,
    pub events: Arc<EventRing>,
    samples: Mutex<VecDeque<Sample>>,
    /// Until when the topic tree is watched for the admin side.
    lease: Mutex<Option<Instant>>,
    /// Each MQTT listener's label in metrics, in config order.
    pub listeners: Vec<String>,
    pub local_addr: SocketAddr,
    /// Whether it serves HTTPS.
    pub tls: bool,
}

/// One second of the overview charts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Sample {
    pub seq: u64,
    pub unix_ms: u64,
    pub connected: u64,
    pub messages_in: u64,
    pub messages_out: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub dropped: u64,
    pub resident_bytes: u64,
}

impl Admin {
    /// The admin side of `core`, listening on `local_addr`.
    pub fn new(
        core: Arc<Core>,
        auth: Auth,
        events: Arc<EventRing>,
        listeners: Vec<String>,
        local_addr: SocketAddr,
        tls: bool,
    ) -> Admin {
        Admin {
            core,
            auth,
            events,
            samples: Mutex::new(VecDeque::with_capacity(SAMPLES)),
            lease: Mutex::new(None),
            listeners,
            local_addr,
            tls,
        }
    }

    /// Where it listens.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Re-reads the administrators' password file (SIGHUP).
    pub fn reload(&self) -> Result<(), AdminError> {
        self.auth.reload()
    }

    /// Keeps the topic tree fed for [`WATCH_LEASE`] more.
    pub fn touch_topics(&self) {
        let mut lease = self.lease.lock();
        if lease.is_none() {
            self.core.watch_topics(Instant::now());
        }
        *lease = Some(Instant::now() + WATCH_LEASE);
    }

    /// Ends the topic watch once its lease ran out (or at `force`).
    pub fn expire_lease(&self, force: bool) {
        let mut lease = self.lease.lock();
        if lease.is_some_and(|until| force || Instant::now() >= until) {
            *lease = None;
            self.core.unwatch_topics();
        }
    }

    /// Takes this second's overview sample.
    pub fn sample(&self) {
        let stats = self.core.stats();
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let mut samples = self.samples.lock();
        let seq = samples.back().map_or(1, |s| s.seq + 1);
        if samples.len() == SAMPLES {
            samples.pop_front();
        }
        samples.push_back(Sample {
            seq,
            unix_ms: unix_ms(),
            connected: stats.connected.load(Ordering::Relaxed) as u64,
            messages_in: stats.publish_received_total(),
            messages_out: stats.publish_sent_total(),
            bytes_in: load(&stats.bytes_received),
            bytes_out: load(&stats.bytes_sent),
            dropped: stats.dropped_total(),
            resident_bytes: ProcessStats::resident_bytes().unwrap_or(0),
        });
    }

    /// The overview samples after `since`.
    pub fn samples_since(&self, since: u64) -> Vec<Sample> {
        let samples = self.samples.lock();
        samples.iter().filter(|s| s.seq > since).copied().collect()
    }
}
