//! Idle connections parked outside tokio.
//!
//! A connected client with nothing pending would cost tokio a task and a
//! registered socket (about 770 bytes) while it sits idle. Instead its task
//! hands a compact [`ParkedConn`] to the broker's [`Parker`] — one thread
//! with its own epoll (mio) — and ends. The parker waits for the socket to
//! become readable or close, for the keep-alive deadline, or for a wake of
//! the connection's [`Wake`] (a delivery, a takeover, shutdown, a resume
//! after back-pressure), and then spawns the connection's task again
//! (through the `Resume` it was started with), which carries on as if it
//! had never left.
//!
//! The hand-over cannot lose a wake. A [`Wake`] is `RUNNING` (a wake
//! notifies the task), `PARKING` (the task is checking that nothing is
//! pending; a wake only sets `WOKEN`, and the task stays), or `PARKED` (the
//! record is in the parker's inbox or slab; the first wake queues the slot
//! for the parker). The task goes `PARKING` → `PARKED` under the inbox lock,
//! in the same critical section that queues its record, so a wake queued
//! for the slot always comes after the record.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::sync::Notify;

use super::transport::ParkedSocket;
use crate::core::wake::Waker;
use crate::protocol::Idle;

const RUNNING: u32 = 0;
const PARKING: u32 = 1;
const PARKED: u32 = 2;
const MODE: u32 = 3;
const WOKEN: u32 = 4;
/// What a wake may be for, kept beside the mode (one word for all: the
/// connection's signal then fits a 64-byte allocation).
const KICKED: u32 = 8;
const RESUME: u32 = 16;
const FLAGS: u32 = KICKED | RESUME;

/// The parker's own wake-up (new records or wakes in the inbox).
const INBOX: mio::Token = mio::Token(usize::MAX);
/// Slots per slab chunk: the slab grows by chunks, never by doubling.
const CHUNK: usize = 1024;
/// While connections park in numbers, the parker takes them this often
/// rather than being woken for each (a wake still reaches it at once).
const BATCH: Duration = Duration::from_millis(1);
/// Resumed tasks that may be spawned and not yet have run their first pass.
const MAX_RESUMING: usize = 64;
/// Keep-alive deadlines are checked no more often than this: a scan visits
/// every parked connection.
const SCAN_EVERY: Duration = Duration::from_millis(50);

/// What a parked connection keeps: its socket (TCP or unix), out of
/// tokio, its transport layers if it has any (TLS session state, where a
/// WebSocket stands: no buffers), and the protocol's compact [`Idle`]
/// state. Everything else is empty when a connection parks and made anew
/// when it resumes.
#[derive(Debug)]
pub(crate) struct ParkedConn {
    pub stream: ParkedSocket,
    /// Boxed: a plain connection pays one pointer for it (8 bytes in the
    /// parker's slot).
    pub layers: Option<Box<culex_transport::Stack>>,
    pub signal: Arc<ConnSignal>,
    /// Keeps `shutdown()` waiting while the connection lives.
    pub alive: Option<tokio::sync::mpsc::Sender<()>>,
    pub idle: Idle,
}

impl ParkedConn {
    fn wake(&self) -> &Wake {
        &self.signal.wake
    }
}

/// How the core and the parker reach one connection: its [`Wake`], whose
/// state word also holds what a wake may be for: another connection took
/// the session over (`KICKED`), or a session this connection's publishes
/// were paused for has drained (`RESUME`).
#[derive(Debug)]
pub(crate) struct ConnSignal {
    /// Reaches the connection whether its task runs or it is parked.
    pub wake: Wake,
}

impl ConnSignal {
    pub fn new(parker: Arc<Parker>) -> ConnSignal {
        ConnSignal {
            wake: Wake::new(parker),
        }
    }
}

impl Waker for ConnSignal {
    fn wake(&self) {
        self.wake.notify_one();
    }
    fn kick(&self) {
        self.wake.state.fetch_or(KICKED, Ordering::SeqCst);
        self.wake.notify_one();
    }
    fn resume(&self) {
        self.wake.state.fetch_or(RESUME, Ordering::SeqCst);
        self.wake.notify_one();
    }
    fn is_kicked(&self) -> bool {
        self.wake.state.load(Ordering::Acquire) & KICKED != 0
    }
    fn take_resume(&self) -> bool {
        self.wake.state.fetch_and(!RESUME, Ordering::AcqRel) & RESUME != 0
    }
}

/// Runs a parked connection again: handed to the parker at start.
pub(crate) type Resume = Box<dyn Fn(ParkedConn, FirstPass) + Send>;

/// The wake-up of one connection, whether its task runs or it is parked.
#[derive(Debug)]
pub(crate) struct Wake {
    notify: Notify,
    state: AtomicU32,
    /// The parker's slot while `PARKED`; written under the inbox lock.
    slot: AtomicU32,
    parker: Arc<Parker>,
}

impl Wake {
    pub fn new(parker: Arc<Parker>) -> Wake {
        Wake {
            notify: Notify::new(),
            state: AtomicU32::new(RUNNING),
            slot: AtomicU32::new(0),
            parker,
        }
    }

    /// Wakes the connection: its running task, or the parker holding it.
    /// Set whatever the wake is for (kicked, resume) before calling this.
    pub fn notify_one(&self) {
        let prev = self.state.fetch_or(WOKEN, Ordering::SeqCst);
        match prev & MODE {
            RUNNING => self.notify.notify_one(),
            PARKED if prev & WOKEN == 0 => self.parker.wake(self),
            // Parking: the task sees `WOKEN` and stays. Parked and already
            // woken: the parker has it queued.
            _ => {}
        }
    }

    /// Completes at the next wake while the task runs.
    pub fn notified(&self) -> tokio::sync::futures::Notified<'_> {
        self.notify.notified()
    }

    /// The task is about to check that nothing is pending before parking.
    pub fn begin_park(&self) {
        // A read-modify-write, not a store: it reads the last wake's
        // `fetch_or`, so what that waker set before waking is visible to
        // the checks that follow.
        self.set_mode(PARKING);
    }

    /// The task found something to do and stays; a wake that came while it
    /// was checking is delivered to it now.
    pub fn cancel_park(&self) {
        let prev = self.set_mode(RUNNING);
        if prev & WOKEN != 0 {
            self.notify.notify_one();
        }
    }

    /// Sets the mode and clears `WOKEN`, keeping the flags; the state
    /// before.
    fn set_mode(&self, mode: u32) -> u32 {
        self.replace_mode(|_| Some(mode))
            .unwrap_or_else(|prev| prev)
    }

    /// Moves to the mode `to` returns for the mode and `WOKEN` bits,
    /// clearing `WOKEN` and keeping the flags; the state before, `Err` when
    /// `to` said no.
    fn replace_mode(&self, to: impl Fn(u32) -> Option<u32>) -> Result<u32, u32> {
        self.state
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |s| {
                to(s & !FLAGS).map(|mode| mode | (s & FLAGS))
            })
    }

    fn key(&self) -> usize {
        std::ptr::from_ref(self) as usize
    }
}

/// The broker's parker: an inbox the connection tasks and wakers write to,
/// drained by the parker thread.
#[derive(Debug)]
pub(crate) struct Parker {
    inbox: Mutex<Inbox>,
    waker: Option<mio::Waker>,
    /// Whether records are taken (the thread runs, and is not stopping).
    open: AtomicBool,
    /// Resumed tasks that have not yet done what they were woken for.
    resuming: AtomicUsize,
    /// Connections the thread holds.
    parked: AtomicUsize,
}

/// Held by a resumed task until it has done what it was woken for. The
/// parker resumes at most `MAX_RESUMING` at a time: when thousands of
/// parked clients leave at once, each resumed task costs about 1.5 KiB
/// until it has run, and the parker would spawn them faster than the
/// runtime runs them.
#[derive(Debug)]
pub(crate) struct FirstPass(Arc<Parker>);

impl Drop for FirstPass {
    fn drop(&mut self) {
        let before = self.0.resuming.fetch_sub(1, Ordering::AcqRel);
        if before == MAX_RESUMING {
            let inbox = self.0.inbox.lock();
            self.0.signal(inbox);
        }
    }
}

#[derive(Debug, Default)]
struct Inbox {
    parks: Vec<(u32, ParkedConn)>,
    /// Slot and key of each woken parked connection.
    wakes: Vec<(u32, usize)>,
    free: Vec<u32>,
    next_slot: u32,
    /// The thread will drain the inbox soon without being woken: it has
    /// been woken already, or it is taking parks in batches (see `BATCH`).
    draining: bool,
    /// The thread has been woken for a wake since it last drained.
    woken: bool,
    stop: bool,
}

impl Parker {
    /// A parker and the poll its thread will wait on; `None` for the poll
    /// when epoll is unavailable (connections then never park).
    pub fn new() -> (Arc<Parker>, Option<mio::Poll>) {
        let poll = mio::Poll::new().ok();
        let waker = poll
            .as_ref()
            .and_then(|p| mio::Waker::new(p.registry(), INBOX).ok());
        let poll = if waker.is_some() { poll } else { None };
        let parker = Arc::new(Parker {
            inbox: Mutex::new(Inbox::default()),
            waker,
            open: AtomicBool::new(false),
            resuming: AtomicUsize::new(0),
            parked: AtomicUsize::new(0),
        });
        (parker, poll)
    }

    /// Starts the parker thread; `resume` runs a connection the parker lets
    /// go (it is called on the parker's thread and must only spawn). Records
    /// still parked are dropped (their sockets closed) when the current
    /// tokio runtime goes away or [`Parker::stop`] is called.
    pub fn start(self: &Arc<Self>, poll: Option<mio::Poll>, resume: Resume) {
        let Some(poll) = poll else { return };
        let parker = self.clone();
        let spawned = std::thread::Builder::new()
            .name("culex-parker".into())
            .spawn(move || {
                let mut thread = ParkerThread {
                    poll,
                    parker,
                    resume,
                    slab: Vec::new(),
                    next_due: None,
                    last_scan: Instant::now(),
                    freed: Vec::new(),
                    batching: false,
                    deferred: std::collections::VecDeque::new(),
                };
                thread.run();
            });
        if spawned.is_ok() {
            self.open.store(true, Ordering::SeqCst);
            // Dropped with the runtime's tasks: a broker whose runtime ends
            // without a shutdown must not keep parked sockets open.
            let parker = self.clone();
            super::when_runtime_ends(move || parker.stop());
        }
    }

    /// Counts a task about to be resumed.
    pub fn first_pass(self: &Arc<Self>) -> FirstPass {
        self.resuming.fetch_add(1, Ordering::AcqRel);
        FirstPass(self.clone())
    }

    /// How many connections are parked now.
    pub fn parked(&self) -> usize {
        self.parked.load(Ordering::Relaxed)
    }

    /// Whether a connection may park now.
    pub fn is_open(&self) -> bool {
        self.open.load(Ordering::Relaxed)
    }

    /// Takes a connection whose task called [`Wake::begin_park`] and found
    /// nothing pending. Gives it back when it was woken meanwhile or the
    /// parker is stopping: the caller then resumes it at once.
    pub fn park(&self, parked: ParkedConn) -> Result<(), ParkedConn> {
        let mut inbox = self.inbox.lock();
        let wake = parked.wake();
        if inbox.stop
            || wake
                .replace_mode(|s| (s == PARKING).then_some(PARKED))
                .is_err()
        {
            drop(inbox);
            wake.cancel_park();
            return Err(parked);
        }
        let slot = match inbox.free.pop() {
            Some(slot) => slot,
            None => {
                let slot = inbox.next_slot;
                inbox.next_slot = inbox.next_slot.wrapping_add(1);
                slot
            }
        };
        wake.slot.store(slot, Ordering::Relaxed);
        inbox.parks.push((slot, parked));
        // Parks may wait for the next batch: nothing is lost meanwhile (the
        // socket is registered with readiness it already has).
        if !inbox.draining {
            inbox.draining = true;
            self.signal(inbox);
        }
        Ok(())
    }

    /// Stops the thread; records it still holds are dropped.
    pub fn stop(&self) {
        self.open.store(false, Ordering::SeqCst);
        let mut inbox = self.inbox.lock();
        inbox.stop = true;
        self.signal(inbox);
    }

    /// Wakes go to the thread at once, batch or not.
    fn wake(&self, wake: &Wake) {
        let mut inbox = self.inbox.lock();
        let slot = wake.slot.load(Ordering::Relaxed);
        inbox.wakes.push((slot, wake.key()));
        if !inbox.woken {
            inbox.woken = true;
            inbox.draining = true;
            self.signal(inbox);
        }
    }

    fn signal(&self, inbox: parking_lot::MutexGuard<'_, Inbox>) {
        drop(inbox);
        if let Some(waker) = &self.waker {
            if let Err(e) = waker.wake() {
                tracing::error!("Error: unable to wake the connection parker: {e}");
            }
        }
    }
}

struct ParkerThread {
    poll: mio::Poll,
    parker: Arc<Parker>,
    resume: Resume,
    slab: Vec<Box<[Option<ParkedConn>]>>,
    /// The earliest keep-alive deadline of a parked connection.
    next_due: Option<Instant>,
    last_scan: Instant,
    freed: Vec<u32>,
    /// Parks came in the last round: the next is due after `BATCH`.
    batching: bool,
    /// Slots to unpark once fewer than `MAX_RESUMING` tasks are resuming.
    deferred: std::collections::VecDeque<usize>,
}

impl ParkerThread {
    fn run(&mut self) {
        let mut events = mio::Events::with_capacity(1024);
        loop {
            let mut timeout = self
                .next_due
                .map(|due| due.max(self.last_scan + SCAN_EVERY))
                .map(|at| at.saturating_duration_since(Instant::now()));
            if self.batching || !self.deferred.is_empty() {
                timeout = Some(timeout.map_or(BATCH, |t| t.min(BATCH)));
            }
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() != std::io::ErrorKind::Interrupted {
                    tracing::error!("Error: connection parker: {e}");
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
            for event in events.iter() {
                if event.token() != INBOX {
                    // Readable, closed or failed: the task finds out which.
                    self.unpark(event.token().0);
                }
            }
            let (parks, wakes, stop) = {
                let mut inbox = self.parker.inbox.lock();
                inbox.woken = false;
                // While connections park in numbers (a wave of connects),
                // take them every `BATCH` instead of being woken for each.
                self.batching = !inbox.parks.is_empty();
                inbox.draining = self.batching;
                inbox.free.append(&mut self.freed);
                (
                    std::mem::take(&mut inbox.parks),
                    std::mem::take(&mut inbox.wakes),
                    inbox.stop,
                )
            };
            if stop {
                // Dropping the records closes their sockets.
                self.slab.clear();
                self.parker.parked.store(0, Ordering::Relaxed);
                return;
            }
            for (slot, parked) in parks {
                self.insert(slot, parked);
            }
            for (slot, key) in wakes {
                let ours = self
                    .get(slot)
                    .is_some_and(|p| p.as_ref().is_some_and(|p| p.wake().key() == key));
                if ours {
                    self.unpark(slot as usize);
                }
            }
            if self.next_due.is_some_and(|due| due <= Instant::now()) {
                self.scan();
            }
            while self.parker.resuming.load(Ordering::Acquire) < MAX_RESUMING {
                let Some(slot) = self.deferred.pop_front() else {
                    break;
                };
                self.unpark(slot);
            }
            if !self.freed.is_empty() {
                self.parker.inbox.lock().free.append(&mut self.freed);
            }
        }
    }

    fn get(&mut self, slot: u32) -> Option<&mut Option<ParkedConn>> {
        let slot = slot as usize;
        self.slab.get_mut(slot / CHUNK)?.get_mut(slot % CHUNK)
    }

    fn insert(&mut self, slot: u32, mut parked: ParkedConn) {
        while self.slab.len() <= slot as usize / CHUNK {
            self.slab.push(
                (0..CHUNK)
                    .map(|_| None)
                    .collect::<Vec<_>>()
                    .into_boxed_slice(),
            );
        }
        let token = mio::Token(slot as usize);
        if let Err(e) =
            self.poll
                .registry()
                .register(&mut parked.stream, token, mio::Interest::READABLE)
        {
            // The task copes without the parker: it runs again at once.
            tracing::debug!("unable to park a connection: {e}");
            self.freed.push(slot);
            self.spawn(parked);
            return;
        }
        if let Some(due) = parked.idle.deadline() {
            self.next_due = Some(self.next_due.map_or(due, |d| d.min(due)));
        }
        if let Some(entry) = self.get(slot) {
            *entry = Some(parked);
            self.parker.parked.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Unparks every connection past its keep-alive deadline [MQTT-3.1.2-24].
    fn scan(&mut self) {
        let now = Instant::now();
        self.last_scan = now;
        let mut next_due: Option<Instant> = None;
        let mut due = Vec::new();
        for (c, chunk) in self.slab.iter().enumerate() {
            for (i, entry) in chunk.iter().enumerate() {
                let Some(deadline) = entry.as_ref().and_then(|p| p.idle.deadline()) else {
                    continue;
                };
                if deadline <= now {
                    due.push(c * CHUNK + i);
                } else {
                    next_due = Some(next_due.map_or(deadline, |d| d.min(deadline)));
                }
            }
        }
        self.next_due = next_due;
        for slot in due {
            self.unpark(slot);
        }
    }

    fn unpark(&mut self, slot: usize) {
        let Ok(slot) = u32::try_from(slot) else {
            return;
        };
        if self.parker.resuming.load(Ordering::Acquire) >= MAX_RESUMING {
            self.deferred.push_back(slot as usize);
            return;
        }
        let Some(mut parked) = self.get(slot).and_then(Option::take) else {
            return;
        };
        self.parker.parked.fetch_sub(1, Ordering::Relaxed);
        let _ = self.poll.registry().deregister(&mut parked.stream);
        self.freed.push(slot);
        self.spawn(parked);
    }

    fn spawn(&self, parked: ParkedConn) {
        // Running again: from here on a wake notifies the task, which starts
        // by looking at everything a wake may have been for. A
        // read-modify-write, so that what an earlier waker set is visible
        // to the task.
        parked.wake().set_mode(RUNNING);
        let first_pass = self.parker.first_pass();
        (self.resume)(parked, first_pass);
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    /// Every connection holds one signal, in an `Arc` (16 bytes more): it
    /// must fit jemalloc's 64-byte size class, or each idle client pays
    /// the next class, 16 bytes more.
    #[test]
    fn a_connection_signal_fits_its_allocation_class() {
        let arc = std::mem::size_of::<ConnSignal>() + 16;
        assert!(arc <= 64, "Arc<ConnSignal> is {arc} bytes");
    }

    /// The flags a wake is for live beside the mode: moving between modes
    /// keeps them, and taking one clears only it.
    #[test]
    fn flags_survive_the_mode_changes_of_parking() {
        let (parker, _poll) = Parker::new();
        let signal = ConnSignal::new(parker);
        signal.kick();
        signal.resume();
        signal.wake.begin_park();
        assert_eq!(signal.wake.state.load(Ordering::SeqCst) & !FLAGS, PARKING);
        assert!(signal
            .wake
            .replace_mode(|s| (s == PARKING).then_some(PARKED))
            .is_ok());
        signal.wake.set_mode(RUNNING);
        assert!(signal.is_kicked());
        assert!(signal.take_resume());
        assert!(!signal.take_resume());
        assert!(signal.is_kicked());
        // A wake while parking keeps the task: the move to PARKED fails.
        signal.wake.begin_park();
        signal.wake();
        assert!(signal
            .wake
            .replace_mode(|s| (s == PARKING).then_some(PARKED))
            .is_err());
    }
}
