//! Connection threads: one single-threaded tokio runtime per core, each
//! serving the connections it accepted on its own listen socket (see
//! `listener.rs`) and those handed to it round-robin (resumed after
//! parking, or from a unix socket).
//!
//! A connection's task stays on its thread until it parks. Nothing is stolen: a wake-up
//! of a connection on the same thread is a push on that thread's run queue,
//! one on another thread is a push on its queue and, when that thread
//! sleeps, one write to its event descriptor. On tokio's work-stealing
//! runtime, a publisher that woke its subscribers woke an idle worker too,
//! which took half of them, and their sessions' and messages' cache lines
//! crossed over with them: measured with one publisher and eight
//! subscribers, that cost half again as much CPU per delivery (see
//! BENCHMARKS.md, "Connection threads").
//!
//! Nothing may take a thread's connections from it, so nothing may hold a
//! thread long: TLS handshake steps run on blocking threads (`transport.rs`).
//! Unix listeners, housekeeping, the admin listener, bridges and the
//! cluster stay on the runtime the broker was started on.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::runtime::Handle;
use tokio::sync::oneshot;

/// The connection threads of one broker.
pub(crate) struct ConnThreads {
    handles: Vec<Handle>,
    /// The next thread to hand a connection to.
    next: AtomicUsize,
    /// Ends each thread's runtime (and the tasks on it).
    stops: Mutex<Vec<oneshot::Sender<()>>>,
}

impl std::fmt::Debug for ConnThreads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnThreads")
            .field("threads", &self.handles.len())
            .finish_non_exhaustive()
    }
}

impl ConnThreads {
    /// Starts `count` threads (at least one), each running its own runtime
    /// until [`ConnThreads::stop`].
    pub fn start(count: usize) -> std::io::Result<Arc<ConnThreads>> {
        let mut handles = Vec::new();
        let mut stops = Vec::new();
        for i in 0..count.max(1) {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let (stop, stopped) = oneshot::channel::<()>();
            handles.push(runtime.handle().clone());
            stops.push(stop);
            std::thread::Builder::new()
                .name(format!("culex-conn-{i}"))
                .spawn(move || {
                    // A dropped sender stops the thread as well.
                    let _ = runtime.block_on(stopped);
                    // Drops the tasks left (their connections close) without
                    // waiting for blocking file reads of `http_dir`.
                    runtime.shutdown_background();
                })?;
        }
        Ok(Arc::new(ConnThreads {
            handles,
            next: AtomicUsize::new(0),
            stops: Mutex::new(stops),
        }))
    }

    /// How many threads there are.
    pub fn len(&self) -> usize {
        self.handles.len()
    }

    /// Runs a connection's task on the next thread.
    pub fn spawn<F>(&self, task: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.spawn_on(self.next.fetch_add(1, Ordering::Relaxed), task);
    }

    /// Runs a task on thread `i` (modulo their number).
    pub fn spawn_on<F>(&self, i: usize, task: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        if let Some(handle) = self.handles.get(i % self.handles.len().max(1)) {
            handle.spawn(task);
        }
    }

    /// Ends every thread; the tasks still on them are dropped.
    pub fn stop(&self) {
        for stop in self.stops.lock().drain(..) {
            let _ = stop.send(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Tasks run on the connection threads, spread over all of them, and
    /// the threads end on stop.
    #[test]
    fn tasks_are_spread_over_the_threads_and_end_with_them() {
        let threads = ConnThreads::start(2).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        for _ in 0..4 {
            let tx = tx.clone();
            threads.spawn(async move {
                let name = std::thread::current().name().map(str::to_owned);
                let _ = tx.send(name);
            });
        }
        let mut names: Vec<_> = (0..4)
            .map(|_| rx.recv_timeout(std::time::Duration::from_secs(5)).unwrap())
            .collect();
        names.sort();
        names.dedup();
        assert_eq!(
            names,
            [
                Some("culex-conn-0".to_owned()),
                Some("culex-conn-1".to_owned())
            ]
        );
        // A task still running when the threads stop is dropped.
        let (dropped_tx, dropped_rx) = std::sync::mpsc::channel::<()>();
        threads.spawn(async move {
            let _keep = dropped_tx;
            std::future::pending::<()>().await;
        });
        threads.stop();
        assert!(matches!(
            dropped_rx.recv_timeout(std::time::Duration::from_secs(5)),
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected)
        ));
    }
}
