//! Durable, crash-safe storage of MQTT broker state on [redb].
//!
//! Start at [`DurableStore::open`]: it opens (or creates) the store file,
//! returns everything it holds as [`Recovered`], and starts a writer thread.
//! Each mutation method ([`DurableStore::retained_set`],
//! [`DurableStore::queued_add`], …) only queues the change and returns a
//! [`Ticket`] at once; the writer thread applies all queued changes in one
//! transaction and commits them with one flush (group commit). A caller that
//! must know a change is on disk — a broker about to send PUBACK or PUBREC —
//! waits for its ticket with [`DurableStore::wait_durable`] or registers a
//! callback with [`DurableStore::on_durable`]. Nothing else ever blocks on
//! I/O.
//!
//! How often the writer commits is the [`Durability`] mode: [`Durability::Sync`]
//! (the default) commits as soon as changes are waiting, so a ticket is
//! durable within one flush; [`Durability::Periodic`] commits every N
//! milliseconds and can lose up to that window on a crash.
//! [`Durability::from_mosquitto`] maps mosquitto's `autosave_interval` and
//! `autosave_on_changes` onto these modes.
//!
//! Guarantees: every commit is atomic and in submission order, so after any
//! crash the store holds an exact prefix of the mutations — never half of
//! one, never one twice (QoS 2 state stays exactly-once). In `Sync` mode a
//! durable ticket survives kill -9 and power loss (each commit is fsynced);
//! in `Periodic(N)` mode a crash loses at most the mutations of the last N
//! milliseconds plus one commit. Mutations wait in memory until their commit;
//! that list grows only while the disk is slower than the broker
//! ([`DurableStore::pending_len`] shows it).
//!
//! A damaged store never prevents start-up: a file the engine cannot open is
//! moved aside and replaced by an empty one, a file that opens but cannot be
//! read completely is moved aside and everything readable is carried into a
//! fresh file, and records that cannot be decoded are removed and written to
//! a side file. Each of these is reported in [`Recovered::warnings`].
//!
//! [`dump`] prints a store's contents (`culex store dump PATH`, see
//! [`store_main`]). The crate knows nothing of the broker: its records
//! ([`StoredMessage`], [`StoredSession`], …) are its own, and the broker
//! converts.

mod dump;
mod engine;
mod latency;
mod record;
mod recover;

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use parking_lot::{Condvar, Mutex};

pub use dump::{dump, store_main};
pub use latency::{LatencySnapshot, BUCKETS_US};
pub use record::{
    DecodeError, DelayedWill, OutboundPhase, OutboundRecord, Qos, QueuedMessage, StoredMessage,
    StoredProps, StoredSession, StoredSubscription,
};
pub use recover::{Recovered, Warning};

use record::SessionValue;

/// When the writer thread commits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// Commit as soon as changes are waiting; changes that arrive during a
    /// commit share the next one (group commit). A ticket is durable after
    /// at most two flushes. Nothing acknowledged is ever lost.
    #[default]
    Sync,
    /// Commit every given number of milliseconds. A crash (kill -9, power
    /// loss) loses at most the changes of the last window; a ticket becomes
    /// durable at the end of its window.
    Periodic(u32),
}

impl Durability {
    /// The mode for mosquitto's persistence options: `autosave_interval`
    /// (seconds, or a number of changes when `autosave_on_changes` is true)
    /// and `autosave_on_changes`, each `None` when the config does not set it.
    ///
    /// - Neither set (Debian's stock config): [`Durability::Sync`], the safe
    ///   default — mosquitto's implicit 1800 s snapshot is what culex replaces.
    /// - `autosave_interval 0`: mosquitto saves only at shutdown; culex keeps
    ///   every change durable instead, [`Durability::Sync`].
    /// - `autosave_interval N` (seconds): the user accepted losing up to N
    ///   seconds, [`Durability::Periodic`] with N × 1000 ms (saturating) —
    ///   but incremental, so it never stalls the broker as mosquitto's
    ///   snapshot does.
    /// - `autosave_on_changes true`: mosquitto saves after N changes; group
    ///   commit already batches changes without a count, so this is
    ///   [`Durability::Sync`] (it loses nothing, where mosquitto loses up to N).
    pub fn from_mosquitto(
        autosave_interval: Option<u64>,
        autosave_on_changes: Option<bool>,
    ) -> Durability {
        match (autosave_interval, autosave_on_changes.unwrap_or(false)) {
            (_, true) | (None, false) | (Some(0), false) => Durability::Sync,
            (Some(secs), false) => {
                Durability::Periodic(u32::try_from(secs.saturating_mul(1000)).unwrap_or(u32::MAX))
            }
        }
    }
}

impl std::str::FromStr for Durability {
    type Err = String;

    /// Parses a config value: `sync`, or `periodic MS` (also `periodic:MS`)
    /// with MS from 1 to 4294967295.
    fn from_str(s: &str) -> Result<Durability, String> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("sync") {
            return Ok(Durability::Sync);
        }
        let ms = s
            .strip_prefix("periodic")
            .map(|rest| rest.trim_start_matches([' ', '\t', ':']))
            .and_then(|n| n.parse::<u32>().ok())
            .filter(|&n| n > 0);
        match ms {
            Some(ms) => Ok(Durability::Periodic(ms)),
            None => Err(format!(
                "invalid durability '{s}': expected 'sync' or 'periodic MILLISECONDS'"
            )),
        }
    }
}

/// The store file name used when the config names none (mosquitto's
/// `persistence_file` defaults to `mosquitto.db`, a different format that
/// culex must not mistake for its own).
pub const DEFAULT_FILE_NAME: &str = "culex.db";

/// The store file for mosquitto's `persistence_location` (a directory,
/// default: the working directory) and `persistence_file` (default:
/// [`DEFAULT_FILE_NAME`]).
pub fn store_path(persistence_location: Option<&Path>, persistence_file: Option<&str>) -> PathBuf {
    let dir = persistence_location.unwrap_or_else(|| Path::new(""));
    dir.join(persistence_file.unwrap_or(DEFAULT_FILE_NAME))
}

/// Identifies one mutation; see [`DurableStore::wait_durable`]. Tickets
/// grow in submission order, and a ticket is durable once every mutation up
/// to it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ticket(u64);

impl Ticket {
    /// The ticket's number, for a caller that keeps tickets as plain numbers.
    pub fn get(self) -> u64 {
        self.0
    }

    /// The ticket numbered `n` (as [`Ticket::get`] returned it).
    pub fn from_raw(n: u64) -> Ticket {
        Ticket(n)
    }
}

/// Errors of opening or closing a store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store's directory or file could not be created or moved.
    #[error("{path}: {source}")]
    Io {
        /// The path concerned.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Another process (a running broker) has the store open.
    #[error("{0}: the store is in use by another process")]
    Locked(PathBuf),
    /// The engine failed on a fresh store, where setting aside cannot help.
    #[error("{path}: {message}")]
    Engine {
        /// The store file.
        path: PathBuf,
        /// The engine's message.
        message: String,
    },
    /// A commit failed (see [`DurabilityError`]).
    #[error(transparent)]
    Durability(#[from] DurabilityError),
}

/// Why a ticket did not become durable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurabilityError {
    /// The commit holding the mutation failed; the mutation is not stored.
    #[error("commit failed: {0}")]
    CommitFailed(Arc<str>),
    /// The store was closed before the mutation was committed, or the writer
    /// thread is gone.
    #[error("store closed")]
    Closed,
    /// [`DurableStore::wait_durable_timeout`] gave up.
    #[error("timed out waiting for durability")]
    TimedOut,
}

/// One queued mutation.
#[derive(Debug, Clone)]
pub(crate) enum Op {
    RetainedSet(StoredMessage),
    RetainedClear(String),
    SessionPut {
        client_id: String,
        value: SessionValue,
    },
    SessionDelete(String),
    SubscriptionPut {
        client_id: String,
        filter: String,
        options: u8,
        identifier: Option<u32>,
    },
    SubscriptionDelete {
        client_id: String,
        filter: String,
    },
    QueuedAdd {
        client_id: String,
        message: QueuedMessage,
    },
    QueuedRemoveFront(String),
    OutboundPut {
        client_id: String,
        packet_id: u16,
        phase: OutboundPhase,
        message: Option<QueuedMessage>,
    },
    OutboundDelete {
        client_id: String,
        packet_id: u16,
    },
    InboundQos2 {
        client_id: String,
        packet_id: u16,
        pending: bool,
    },
    WillPut {
        client_id: String,
        will: DelayedWill,
    },
    WillDelete(String),
}

type Callback = Box<dyn FnOnce(Result<(), DurabilityError>) + Send>;

/// What callers hand to the writer thread.
#[derive(Default)]
struct Pending {
    ops: Vec<Op>,
    /// The ticket of the last op submitted (0: none yet).
    last_ticket: u64,
    callbacks: Vec<(u64, Callback)>,
    /// A caller asked for a commit now ([`DurableStore::flush`]).
    flush_requested: bool,
    closing: bool,
}

/// What the writer thread reports back.
#[derive(Debug, Default)]
struct Done {
    /// Every ticket up to this one has been handled (committed or failed).
    handled: u64,
    /// Ticket ranges (inclusive) whose commit failed, newest last; capped.
    failed: VecDeque<(u64, u64, Arc<str>)>,
    /// The writer thread has exited.
    stopped: bool,
}

const FAILED_RANGES_KEPT: usize = 1024;

/// In `Periodic` mode, a batch this large is committed before its period
/// ends, so the pending list stays small while the disk keeps up.
pub const EARLY_COMMIT_OPS: usize = 8_192;

/// The most mutations waiting at once: past it, `submit` waits for the
/// writer to take them, the only way memory stays bounded when the disk is
/// slower than the broker in `Periodic` mode (in `Sync` mode, the waits for
/// durability already pace the broker).
pub const MAX_PENDING_OPS: usize = 4 * EARLY_COMMIT_OPS;

thread_local! {
    /// Mutations submitted by this thread; see
    /// [`DurableStore::submitted_by_this_thread`].
    static SUBMITTED_HERE: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

struct Shared {
    pending: Mutex<Pending>,
    /// Wakes the writer thread.
    work: Condvar,
    /// Wakes submitters waiting for room below [`MAX_PENDING_OPS`].
    room: Condvar,
    done: Mutex<Done>,
    /// Wakes callers waiting for durability.
    durable: Condvar,
    /// Successful commits so far.
    commits: AtomicU64,
    /// How long each commit took (one transaction and its flush).
    latency: latency::CommitLatency,
    /// Set when the writer thread exits (also by a panic).
    writer_gone: AtomicBool,
}

impl Shared {
    fn outcome(done: &Done, ticket: u64) -> Result<(), DurabilityError> {
        for (first, last, why) in &done.failed {
            if (*first..=*last).contains(&ticket) {
                return Err(DurabilityError::CommitFailed(why.clone()));
            }
        }
        Ok(())
    }
}

/// A durable store: the writer side of a store file. See the crate docs.
///
/// Cheap to share behind an `Arc`; every method takes `&self`. Dropping it
/// commits what is pending and stops the writer thread (as [`close`]
/// does, without reporting errors).
///
/// [`close`]: DurableStore::close
pub struct DurableStore {
    shared: Arc<Shared>,
    writer: Mutex<Option<JoinHandle<()>>>,
    path: PathBuf,
    mode: Durability,
}

impl std::fmt::Debug for DurableStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DurableStore")
            .field("path", &self.path)
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

/// Milliseconds since the Unix epoch, for timestamps kept across restarts.
pub fn unix_ms_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

impl DurableStore {
    /// Opens the store file at `path` (creating it and its directory when
    /// missing), restores its contents and starts the writer thread.
    ///
    /// Damage never makes this fail (see the crate docs); it fails only when
    /// the file is locked by another process or the directory cannot be
    /// written.
    pub fn open(
        path: impl AsRef<Path>,
        mode: Durability,
    ) -> Result<(DurableStore, Recovered), StoreError> {
        let path = path.as_ref().to_path_buf();
        let (db, recovered, next_seq) = recover::open_and_recover(&path)?;
        let shared = Arc::new(Shared {
            pending: Mutex::new(Pending::default()),
            work: Condvar::new(),
            room: Condvar::new(),
            done: Mutex::new(Done::default()),
            durable: Condvar::new(),
            commits: AtomicU64::new(0),
            latency: latency::CommitLatency::default(),
            writer_gone: AtomicBool::new(false),
        });
        let writer_shared = shared.clone();
        let writer = std::thread::Builder::new()
            .name("culex-store-writer".into())
            .spawn(move || writer_loop(&writer_shared, &db, mode, next_seq))
            .map_err(|source| StoreError::Io {
                path: path.clone(),
                source,
            })?;
        Ok((
            DurableStore {
                shared,
                writer: Mutex::new(Some(writer)),
                path,
                mode,
            },
            recovered,
        ))
    }

    /// The store file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The durability mode it was opened with.
    pub fn mode(&self) -> Durability {
        self.mode
    }

    fn submit(&self, op: Op) -> Ticket {
        SUBMITTED_HERE.with(|n| n.set(n.get().wrapping_add(1)));
        let mut p = self.shared.pending.lock();
        while p.ops.len() >= MAX_PENDING_OPS
            && !p.closing
            && !self.shared.writer_gone.load(Ordering::Acquire)
        {
            self.shared.work.notify_one();
            self.shared.room.wait(&mut p);
        }
        // Once the writer is gone nothing would ever drain the list; the
        // ticket then reports Closed.
        if !self.shared.writer_gone.load(Ordering::Acquire) {
            p.ops.push(op);
        }
        p.last_ticket = p.last_ticket.saturating_add(1);
        let t = Ticket(p.last_ticket);
        let wake = self.mode == Durability::Sync || p.ops.len() == EARLY_COMMIT_OPS;
        drop(p);
        if wake {
            self.shared.work.notify_one();
        }
        t
    }

    /// Sets the retained message of `message.topic`, replacing any.
    pub fn retained_set(&self, message: StoredMessage) -> Ticket {
        self.submit(Op::RetainedSet(message))
    }

    /// Clears the retained message of `topic`.
    pub fn retained_clear(&self, topic: &str) -> Ticket {
        self.submit(Op::RetainedClear(topic.to_owned()))
    }

    /// Creates a session or updates its expiry interval (seconds after
    /// disconnect; `None`: never). Also stamps the record with the time now,
    /// from which a restored offline session's expiry counts.
    pub fn session_put(&self, client_id: &str, expiry_interval: Option<u32>) -> Ticket {
        self.submit(Op::SessionPut {
            client_id: client_id.to_owned(),
            value: SessionValue {
                expiry_interval,
                updated_unix_ms: unix_ms_now(),
            },
        })
    }

    /// Deletes a session and everything hanging off it (subscriptions,
    /// queue, in-flight state, delayed will).
    pub fn session_delete(&self, client_id: &str) -> Ticket {
        self.submit(Op::SessionDelete(client_id.to_owned()))
    }

    /// Adds or replaces a subscription. `options` is the MQTT 5.0
    /// subscription options byte.
    pub fn subscription_put(
        &self,
        client_id: &str,
        filter: &str,
        options: u8,
        identifier: Option<u32>,
    ) -> Ticket {
        self.submit(Op::SubscriptionPut {
            client_id: client_id.to_owned(),
            filter: filter.to_owned(),
            options,
            identifier,
        })
    }

    /// Removes a subscription.
    pub fn subscription_delete(&self, client_id: &str, filter: &str) -> Ticket {
        self.submit(Op::SubscriptionDelete {
            client_id: client_id.to_owned(),
            filter: filter.to_owned(),
        })
    }

    /// Appends a message to a session's queue.
    pub fn queued_add(&self, client_id: &str, message: QueuedMessage) -> Ticket {
        self.submit(Op::QueuedAdd {
            client_id: client_id.to_owned(),
            message,
        })
    }

    /// Removes the oldest message of a session's queue (nothing when empty).
    pub fn queued_remove_front(&self, client_id: &str) -> Ticket {
        self.submit(Op::QueuedRemoveFront(client_id.to_owned()))
    }

    /// Records an outbound message in flight, or its new phase. Pass the
    /// message while [`OutboundPhase::AwaitingAck`], so it can be re-sent
    /// after a restart.
    pub fn outbound_put(
        &self,
        client_id: &str,
        packet_id: u16,
        phase: OutboundPhase,
        message: Option<QueuedMessage>,
    ) -> Ticket {
        self.submit(Op::OutboundPut {
            client_id: client_id.to_owned(),
            packet_id,
            phase,
            message,
        })
    }

    /// An outbound message completed (PUBACK or PUBCOMP received) or was
    /// dropped.
    pub fn outbound_delete(&self, client_id: &str, packet_id: u16) -> Ticket {
        self.submit(Op::OutboundDelete {
            client_id: client_id.to_owned(),
            packet_id,
        })
    }

    /// An inbound QoS 2 packet id was received (`pending`: PUBREC sent, the
    /// message already routed) or released (PUBREL received).
    pub fn inbound_qos2(&self, client_id: &str, packet_id: u16, pending: bool) -> Ticket {
        self.submit(Op::InboundQos2 {
            client_id: client_id.to_owned(),
            packet_id,
            pending,
        })
    }

    /// A will now waits for its delay.
    pub fn will_put(&self, client_id: &str, will: DelayedWill) -> Ticket {
        self.submit(Op::WillPut {
            client_id: client_id.to_owned(),
            will,
        })
    }

    /// A delayed will was published or cancelled.
    pub fn will_delete(&self, client_id: &str) -> Ticket {
        self.submit(Op::WillDelete(client_id.to_owned()))
    }

    /// How many commits (flushes) the writer has made: with group commit,
    /// far fewer than mutations.
    pub fn commit_count(&self) -> u64 {
        self.shared.commits.load(Ordering::Relaxed)
    }

    /// How long the commits so far took (a histogram for monitoring).
    pub fn commit_latency(&self) -> LatencySnapshot {
        self.shared.latency.snapshot()
    }

    /// Mutations waiting for the next commit (a gauge for monitoring: it
    /// grows only while the disk is slower than the broker).
    pub fn pending_len(&self) -> usize {
        self.shared.pending.lock().ops.len()
    }

    /// How many mutations the calling thread has submitted (to any store),
    /// wrapping. Compare two readings around a piece of work to learn whether
    /// it changed anything durable: a broker acknowledges at once a PUBLISH
    /// that changed nothing (no retained message, no persistent recipient).
    pub fn submitted_by_this_thread() -> u64 {
        SUBMITTED_HERE.with(std::cell::Cell::get)
    }

    /// The ticket of the latest mutation submitted so far (waiting for it
    /// waits for everything before it too).
    pub fn last_ticket(&self) -> Ticket {
        Ticket(self.shared.pending.lock().last_ticket)
    }

    /// Whether `ticket` is durable now (`None`: not yet handled).
    pub fn is_durable(&self, ticket: Ticket) -> Option<Result<(), DurabilityError>> {
        let done = self.shared.done.lock();
        (done.handled >= ticket.0).then(|| Shared::outcome(&done, ticket.0))
    }

    /// Blocks until `ticket` is durable (or its commit failed). The only
    /// blocking call besides [`flush`](DurableStore::flush) and
    /// [`close`](DurableStore::close); async callers use
    /// [`on_durable`](DurableStore::on_durable) instead.
    pub fn wait_durable(&self, ticket: Ticket) -> Result<(), DurabilityError> {
        let mut done = self.shared.done.lock();
        loop {
            if done.handled >= ticket.0 {
                return Shared::outcome(&done, ticket.0);
            }
            if done.stopped {
                return Err(DurabilityError::Closed);
            }
            self.shared.durable.wait(&mut done);
        }
    }

    /// As [`wait_durable`](DurableStore::wait_durable), giving up after
    /// `timeout` with [`DurabilityError::TimedOut`].
    pub fn wait_durable_timeout(
        &self,
        ticket: Ticket,
        timeout: Duration,
    ) -> Result<(), DurabilityError> {
        let deadline = Instant::now() + timeout;
        let mut done = self.shared.done.lock();
        loop {
            if done.handled >= ticket.0 {
                return Shared::outcome(&done, ticket.0);
            }
            if done.stopped {
                return Err(DurabilityError::Closed);
            }
            if self
                .shared
                .durable
                .wait_until(&mut done, deadline)
                .timed_out()
            {
                return Err(DurabilityError::TimedOut);
            }
        }
    }

    /// Calls `f` once `ticket` is durable (or its commit failed): at once on
    /// this thread if it already is, otherwise on the writer thread right
    /// after the commit. `f` must be quick and must not block — typically it
    /// sends on a channel or completes a oneshot that the connection task
    /// awaits before sending PUBACK/PUBREC.
    pub fn on_durable(
        &self,
        ticket: Ticket,
        f: impl FnOnce(Result<(), DurabilityError>) + Send + 'static,
    ) {
        // Lock order: pending, then done (as the writer: it never holds both).
        let mut p = self.shared.pending.lock();
        {
            let done = self.shared.done.lock();
            if done.handled >= ticket.0 {
                let outcome = Shared::outcome(&done, ticket.0);
                drop(done);
                drop(p);
                f(outcome);
                return;
            }
            if done.stopped {
                drop(done);
                drop(p);
                f(Err(DurabilityError::Closed));
                return;
            }
        }
        p.callbacks.push((ticket.0, Box::new(f)));
    }

    /// Commits everything submitted so far now (whatever the mode) and waits
    /// for it.
    pub fn flush(&self) -> Result<(), DurabilityError> {
        let ticket = {
            let mut p = self.shared.pending.lock();
            p.flush_requested = true;
            Ticket(p.last_ticket)
        };
        self.shared.work.notify_one();
        self.wait_durable(ticket)
    }

    /// Commits what is pending, stops the writer thread and closes the file.
    pub fn close(self) -> Result<(), DurabilityError> {
        let last = self.last_ticket();
        self.stop();
        let done = self.shared.done.lock();
        if done.handled >= last.0 {
            Shared::outcome(&done, last.0)
        } else {
            Err(DurabilityError::Closed)
        }
    }

    fn stop(&self) {
        self.shared.pending.lock().closing = true;
        self.shared.work.notify_one();
        if let Some(handle) = self.writer.lock().take() {
            // A panicking writer already marked itself stopped (see writer_loop).
            let _ = handle.join();
        }
    }
}

impl Drop for DurableStore {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Marks the writer stopped even if it panics, so no waiter hangs.
struct StopGuard<'a>(&'a Shared);

impl Drop for StopGuard<'_> {
    fn drop(&mut self) {
        self.0.writer_gone.store(true, Ordering::Release);
        let callbacks = {
            let mut p = self.0.pending.lock();
            // Under the lock, so a submitter cannot check `writer_gone` and
            // then miss this wake-up.
            self.0.room.notify_all();
            std::mem::take(&mut p.callbacks)
        };
        self.0.done.lock().stopped = true;
        self.0.durable.notify_all();
        for (_, f) in callbacks {
            f(Err(DurabilityError::Closed));
        }
    }
}

fn writer_loop(shared: &Shared, db: &redb::Database, mode: Durability, mut next_seq: u64) {
    let _guard = StopGuard(shared);
    let period = match mode {
        Durability::Sync => None,
        Durability::Periodic(ms) => Some(Duration::from_millis(u64::from(ms.max(1)))),
    };
    let mut next_commit = period.map(|p| Instant::now() + p);
    loop {
        let (ops, upto, closing) = {
            let mut p = shared.pending.lock();
            loop {
                if p.closing || p.flush_requested {
                    break;
                }
                match next_commit {
                    None if !p.ops.is_empty() => break,
                    Some(_) if p.ops.len() >= EARLY_COMMIT_OPS => break,
                    None => shared.work.wait(&mut p),
                    Some(at) => {
                        if Instant::now() >= at {
                            break;
                        }
                        let _ = shared.work.wait_until(&mut p, at);
                    }
                }
            }
            p.flush_requested = false;
            if let (Some(period), Some(at)) = (period, next_commit.as_mut()) {
                *at = Instant::now() + period;
            }
            (std::mem::take(&mut p.ops), p.last_ticket, p.closing)
        };
        shared.room.notify_all();
        let result = if ops.is_empty() {
            Ok(())
        } else {
            let started = Instant::now();
            let r = commit(db, &ops, &mut next_seq);
            if r.is_ok() {
                shared.latency.record(started.elapsed());
                shared.commits.fetch_add(1, Ordering::Relaxed);
            }
            r
        };
        {
            let mut done = shared.done.lock();
            let first = done.handled.saturating_add(1);
            if let Err(why) = &result {
                done.failed.push_back((first, upto, why.clone()));
                if done.failed.len() > FAILED_RANGES_KEPT {
                    done.failed.pop_front();
                }
            }
            done.handled = upto;
        }
        shared.durable.notify_all();
        // Callbacks are drained after `handled` moved on: one registered in
        // between saw the old value and is in the list by now (on_durable
        // checks `handled` while holding `pending`).
        let ready: Vec<(u64, Callback)> = {
            let mut p = shared.pending.lock();
            let (ready, later) = std::mem::take(&mut p.callbacks)
                .into_iter()
                .partition(|(ticket, _)| *ticket <= upto);
            p.callbacks = later;
            ready
        };
        for (ticket, f) in ready {
            let outcome = Shared::outcome(&shared.done.lock(), ticket);
            f(outcome);
        }
        if closing {
            let p = shared.pending.lock();
            if p.ops.is_empty() {
                return;
            }
        }
    }
}

fn commit(db: &redb::Database, ops: &[Op], next_seq: &mut u64) -> Result<(), Arc<str>> {
    let seq_before = *next_seq;
    let mut run = || -> Result<(), engine::EngineError> {
        let txn = db.begin_write()?;
        engine::apply(&txn, ops, next_seq)?;
        txn.commit()?;
        Ok(())
    };
    run().map_err(|e| {
        *next_seq = seq_before.max(*next_seq);
        Arc::from(e.0.as_str())
    })
}
