//! The demo's view of the traffic: a client subscribed to `+/btn/0` whose
//! messages are kept as `mosquitto_sub -v` prints them.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

use crate::board::Signal;

/// The filter the monitor subscribes to: every board's button.
pub const MONITOR_FILTER: &str = "+/btn/0";

/// How many lines the log keeps.
const LOG_CAPACITY: usize = 500;

/// The longest line the log keeps whole, in bytes; longer ones are cut
/// (at a character boundary) and end in `…`, so the log stays small
/// whatever anyone publishes.
pub const MAX_LINE: usize = 1024;

/// The last lines the monitor saw, numbered so that readers can ask for the
/// ones they have not seen yet.
#[derive(Debug)]
pub struct Log {
    lines: Mutex<LogLines>,
    signal: Arc<Signal>,
}

#[derive(Debug, Default)]
struct LogLines {
    next_seq: u64,
    lines: VecDeque<String>,
}

impl Log {
    /// An empty log that wakes `signal` on every new line.
    pub fn new(signal: Arc<Signal>) -> Arc<Log> {
        Arc::new(Log {
            lines: Mutex::new(LogLines::default()),
            signal,
        })
    }

    /// Appends a line, forgetting the oldest when full.
    pub fn push(&self, mut line: String) {
        if line.len() > MAX_LINE {
            let mut cut = MAX_LINE;
            while !line.is_char_boundary(cut) {
                cut -= 1;
            }
            line.truncate(cut);
            line.push('…');
        }
        {
            let mut log = self.lines.lock().unwrap_or_else(PoisonError::into_inner);
            if log.lines.len() == LOG_CAPACITY {
                log.lines.pop_front();
            }
            log.lines.push_back(line);
            log.next_seq += 1;
        }
        self.signal.notify();
    }

    /// The number the next line will get.
    pub fn next_seq(&self) -> u64 {
        self.lines
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .next_seq
    }

    /// The lines numbered `first` and later that are still kept.
    pub fn since(&self, first: u64) -> Vec<(u64, String)> {
        let log = self.lines.lock().unwrap_or_else(PoisonError::into_inner);
        let oldest = log.next_seq - log.lines.len() as u64;
        let skip = first.saturating_sub(oldest);
        log.lines
            .iter()
            .enumerate()
            .skip(usize::try_from(skip).unwrap_or(usize::MAX))
            .map(|(i, line)| (oldest + i as u64, line.clone()))
            .collect()
    }
}

/// A message as `mosquitto_sub -v` prints it: the topic, a space, and the
/// payload (`(null)` when empty).
pub fn format_verbose(topic: &str, payload: &[u8]) -> String {
    if payload.is_empty() {
        format!("{topic} (null)")
    } else {
        format!("{topic} {}", String::from_utf8_lossy(payload))
    }
}

/// The running monitor client. Dropping it disconnects.
#[derive(Debug)]
pub struct Monitor {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Monitor {
    /// Connects to `host:port` as `client_id`, subscribes to
    /// [`MONITOR_FILTER`] and appends every message to `log`.
    pub fn start(
        client_id: String,
        host: String,
        port: u16,
        log: Arc<Log>,
    ) -> std::io::Result<Monitor> {
        let stop = Arc::new(AtomicBool::new(false));
        let thread = std::thread::Builder::new().name("monitor".into()).spawn({
            let stop = Arc::clone(&stop);
            move || crate::firmware::run_monitor(&client_id, &host, port, &log, &stop)
        })?;
        Ok(Monitor {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_mosquitto_sub_verbose() {
        assert_eq!(format_verbose("blue/btn/0", b"1"), "blue/btn/0 1");
        assert_eq!(format_verbose("blue/btn/0", b""), "blue/btn/0 (null)");
    }

    #[test]
    fn long_lines_are_cut_at_a_character_boundary() {
        let log = Log::new(Signal::new());
        log.push(format!("a/btn/0 {}", "é".repeat(MAX_LINE)));
        let (_, line) = log.since(0).remove(0);
        assert!(line.ends_with('…'));
        assert!(line.len() <= MAX_LINE + '…'.len_utf8());
        assert!(line.starts_with("a/btn/0 éé"));
    }

    #[test]
    fn readers_get_the_lines_they_missed() {
        let log = Log::new(Signal::new());
        for i in 0..LOG_CAPACITY + 3 {
            log.push(format!("line {i}"));
        }
        assert_eq!(log.next_seq(), LOG_CAPACITY as u64 + 3);
        // The first three were forgotten.
        let all = log.since(0);
        assert_eq!(all.len(), LOG_CAPACITY);
        assert_eq!(all[0], (3, "line 3".to_owned()));
        let tail = log.since(LOG_CAPACITY as u64 + 1);
        assert_eq!(tail.len(), 2);
        assert_eq!(tail[1].1, format!("line {}", LOG_CAPACITY + 2));
        assert!(log.since(10_000).is_empty());
    }
}
