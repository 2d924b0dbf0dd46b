//! mosquitto-style log output on top of `tracing`: `EPOCH: message` lines
//! (or `log_timestamp_format`), to the configured `log_dest`s, filtered by
//! `log_type`.
//!
//! The runtime logs with plain `tracing` macros: `info!` for mosquitto's
//! notice and information lines, `warn!`/`error!` for warnings and errors,
//! `debug!` for the per-packet lines of `-v`. The sans-IO core never logs.

use std::io::Write;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use parking_lot::{Condvar, Mutex};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::Layer;

use crate::config::{LogConfig, LogDest};

/// Where formatted lines go.
#[derive(Debug, Clone)]
pub enum Sink {
    /// Standard error.
    Stderr,
    /// Standard output.
    Stdout,
    /// An open file, appended to.
    File(Arc<Mutex<std::fs::File>>),
    /// In memory (tests).
    Memory(Arc<Mutex<Vec<String>>>),
}

/// The formatting layer.
#[derive(Debug, Clone)]
pub struct MosquittoLayer {
    /// In-memory sinks, written at once.
    memory: Vec<Arc<Mutex<Vec<String>>>>,
    /// Standard streams and files, written by the writer thread.
    writer: Option<Arc<WriterHandle>>,
    max_level: Level,
    errors: bool,
    warnings: bool,
    notices: bool,
    timestamp: bool,
    timestamp_format: Option<String>,
}

impl MosquittoLayer {
    /// A layer for `config`; opens `log_dest file` targets.
    pub fn new(config: &LogConfig) -> std::io::Result<MosquittoLayer> {
        let mut sinks = Vec::new();
        for dest in &config.dest {
            match dest {
                LogDest::Stderr | LogDest::Syslog => sinks.push(Sink::Stderr),
                LogDest::Stdout => sinks.push(Sink::Stdout),
                LogDest::File(path) => {
                    let file = std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(path)?;
                    sinks.push(Sink::File(Arc::new(Mutex::new(file))));
                }
                LogDest::Topic | LogDest::None => {}
            }
        }
        Ok(MosquittoLayer::with_sinks(config, sinks))
    }

    /// A layer writing to the given sinks.
    pub fn with_sinks(config: &LogConfig, sinks: Vec<Sink>) -> MosquittoLayer {
        let has = |t: &str| config.verbose || config.types.iter().any(|x| x == t || x == "all");
        let max_level = if has("debug") {
            Level::DEBUG
        } else {
            Level::INFO
        };
        let mut memory = Vec::new();
        let mut outputs = Vec::new();
        for sink in sinks {
            match sink {
                Sink::Memory(lines) => memory.push(lines),
                other => outputs.push(other),
            }
        }
        MosquittoLayer {
            memory,
            writer: WriterHandle::start(outputs),
            max_level,
            errors: has("error"),
            warnings: has("warning"),
            notices: has("notice") || has("information"),
            timestamp: config.timestamp,
            timestamp_format: config.timestamp_format.clone(),
        }
    }

    fn wants(&self, level: &Level) -> bool {
        match *level {
            Level::ERROR => self.errors,
            Level::WARN => self.warnings,
            Level::INFO => self.notices,
            _ => *level <= self.max_level,
        }
    }

    /// Formats one line as mosquitto does.
    pub fn format_line(&self, message: &str) -> String {
        let mut line = String::new();
        self.put_timestamp(&mut line);
        line.push_str(message);
        line
    }

    /// Appends the timestamp and its `": "`, if lines have one.
    fn put_timestamp(&self, line: &mut String) {
        use std::fmt::Write as _;
        if !self.timestamp {
            return;
        }
        let at = line.len();
        let written = match &self.timestamp_format {
            Some(fmt) => write!(line, "{}: ", chrono::Local::now().format(fmt)),
            None => Err(std::fmt::Error),
        };
        // An invalid strftime format must not take the broker down: it gets
        // the default, seconds since the epoch.
        if written.is_err() {
            line.truncate(at);
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            let _ = write!(line, "{now}: ");
        }
    }
}

impl<S: Subscriber> Layer<S> for MosquittoLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let meta = event.metadata();
        if !meta.target().starts_with("culex") || !self.wants(meta.level()) {
            return;
        }
        // The timestamp first, then the message, into one string.
        let mut visitor = MessageVisitor(String::with_capacity(128));
        self.put_timestamp(&mut visitor.0);
        event.record(&mut visitor);
        let line = visitor.0;
        if let Some(writer) = &self.writer {
            writer.0.push(&line);
        }
        for lines in &self.memory {
            lines.lock().push(line.clone());
        }
    }
}

impl MosquittoLayer {
    /// Writes every line logged so far before returning.
    pub fn flush(&self) {
        if let Some(writer) = &self.writer {
            writer.0.flush();
        }
    }
}

/// While lines come in a burst, the writer thread writes them this often
/// rather than once per line (a line after a quiet spell is written at once).
const WRITE_EVERY: Duration = Duration::from_millis(1);
/// Bytes of lines that may wait for the writer thread. Past this (an
/// output that does not take them: a full pipe, a slow disk), whoever logs
/// writes them itself and waits for the output, as it would unbatched:
/// memory stays bounded however many clients connect.
const MAX_PENDING: usize = 1024 * 1024;

/// Lines on their way to the standard streams and files. Logging appends a
/// line to `pending`; one thread writes whatever is pending in a single
/// write per output. A connect logs two lines: written one by one, they
/// cost the broker two system calls per connection.
#[derive(Debug)]
struct Writer {
    pending: Mutex<Pending>,
    wake: Condvar,
    /// The outputs, locked while a batch is written so batches keep their order.
    outputs: Mutex<Vec<Sink>>,
}

#[derive(Debug, Default)]
struct Pending {
    bytes: Vec<u8>,
    /// The thread waits for `wake`.
    asleep: bool,
    /// Every layer is gone: the thread writes what is left and ends.
    closed: bool,
}

/// Shared by the clones of a layer; the writer thread ends when the last goes.
#[derive(Debug)]
struct WriterHandle(Arc<Writer>);

impl WriterHandle {
    fn start(outputs: Vec<Sink>) -> Option<Arc<WriterHandle>> {
        if outputs.is_empty() {
            return None;
        }
        let writer = Arc::new(Writer {
            pending: Mutex::new(Pending::default()),
            wake: Condvar::new(),
            outputs: Mutex::new(outputs),
        });
        let thread = writer.clone();
        let spawned = std::thread::Builder::new()
            .name("culex-log".into())
            .spawn(move || thread.run());
        if spawned.is_err() {
            // Without the thread, every line is written by whoever logs it.
            writer.pending.lock().closed = true;
        }
        Some(Arc::new(WriterHandle(writer)))
    }
}

impl Drop for WriterHandle {
    fn drop(&mut self) {
        self.0.pending.lock().closed = true;
        self.0.wake.notify_one();
    }
}

impl Writer {
    fn push(&self, line: &str) {
        let mut pending = self.pending.lock();
        pending.bytes.extend_from_slice(line.as_bytes());
        pending.bytes.push(b'\n');
        if pending.closed || pending.bytes.len() > MAX_PENDING {
            drop(pending);
            self.flush();
        } else if pending.asleep {
            pending.asleep = false;
            drop(pending);
            self.wake.notify_one();
        }
    }

    /// Writes what is pending now, from the calling thread.
    fn flush(&self) {
        let mut outputs = self.outputs.lock();
        let batch = std::mem::take(&mut self.pending.lock().bytes);
        write_batch(&mut outputs, &batch);
    }

    fn run(&self) {
        let mut spare = Vec::new();
        loop {
            {
                let mut pending = self.pending.lock();
                while pending.bytes.is_empty() && !pending.closed {
                    pending.asleep = true;
                    self.wake.wait(&mut pending);
                }
            }
            // Lines are taken with the outputs held, as `flush` takes them,
            // so that batches are written in order.
            let mut outputs = self.outputs.lock();
            let closed = {
                let mut pending = self.pending.lock();
                std::mem::swap(&mut pending.bytes, &mut spare);
                pending.closed
            };
            write_batch(&mut outputs, &spare);
            drop(outputs);
            spare.clear();
            if closed {
                return;
            }
            std::thread::sleep(WRITE_EVERY);
        }
    }
}

fn write_batch(outputs: &mut [Sink], batch: &[u8]) {
    if batch.is_empty() {
        return;
    }
    for sink in outputs {
        let _ = match sink {
            Sink::Stderr => std::io::stderr().lock().write_all(batch),
            Sink::Stdout => std::io::stdout().lock().write_all(batch),
            Sink::File(f) => f.lock().write_all(batch),
            Sink::Memory(_) => Ok(()),
        };
    }
}

struct MessageVisitor(String);

impl tracing::field::Visit for MessageVisitor {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            use std::fmt::Write as _;
            let _ = write!(self.0, "{value:?}");
        }
    }

    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        if field.name() == "message" {
            self.0.push_str(value);
        }
    }
}

/// The global subscriber's layer, for [`flush`].
static GLOBAL: OnceLock<MosquittoLayer> = OnceLock::new();

/// Installs the layer as the process's global subscriber (`culex broker`).
pub fn init(config: &LogConfig) -> std::io::Result<()> {
    let layer = MosquittoLayer::new(config)?;
    let _ = GLOBAL.set(layer.clone());
    let subscriber =
        tracing_subscriber::registry().with(layer.with_filter(LevelFilterFor(config.verbose)));
    // A second init (tests, embedding) keeps the first subscriber.
    let _ = tracing::subscriber::set_global_default(subscriber);
    Ok(())
}

/// Writes every line logged so far through the global subscriber: called
/// before the process exits.
pub fn flush() {
    if let Some(layer) = GLOBAL.get() {
        layer.flush();
    }
}

/// A static level filter so that disabled `debug!` lines cost nothing.
struct LevelFilterFor(bool);

impl<S: Subscriber> tracing_subscriber::layer::Filter<S> for LevelFilterFor {
    fn enabled(&self, meta: &tracing::Metadata<'_>, _cx: &Context<'_, S>) -> bool {
        self.0 || *meta.level() <= Level::INFO
    }

    fn max_level_hint(&self) -> Option<tracing::level_filters::LevelFilter> {
        Some(if self.0 {
            tracing::level_filters::LevelFilter::DEBUG
        } else {
            tracing::level_filters::LevelFilter::INFO
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file_layer(dir: &tempfile::TempDir) -> (MosquittoLayer, std::path::PathBuf) {
        let path = dir.path().join("culex.log");
        let config = LogConfig {
            dest: vec![LogDest::File(path.clone())],
            timestamp: false,
            ..LogConfig::default()
        };
        (MosquittoLayer::new(&config).unwrap(), path)
    }

    fn log_through(layer: &MosquittoLayer, f: impl FnOnce()) {
        let subscriber = tracing_subscriber::registry().with(layer.clone());
        tracing::subscriber::with_default(subscriber, f);
    }

    /// Lines from several threads are all written, each thread's in order,
    /// once `flush` returns.
    #[test]
    fn batched_lines_keep_their_order() {
        let dir = tempfile::tempdir().unwrap();
        let (layer, path) = file_layer(&dir);
        std::thread::scope(|scope| {
            for t in 0..4 {
                let layer = &layer;
                scope.spawn(move || {
                    log_through(layer, || {
                        for i in 0..2000 {
                            tracing::info!(target: "culex_broker", "t{t} {i}");
                        }
                    });
                });
            }
        });
        layer.flush();
        let text = std::fs::read_to_string(&path).unwrap();
        let mut next = [0u32; 4];
        for line in text.lines() {
            let (t, i) = line.split_once(' ').unwrap();
            let t: usize = t.trim_start_matches('t').parse().unwrap();
            assert_eq!(i.parse::<u32>().unwrap(), next[t], "{line}");
            next[t] += 1;
        }
        assert_eq!(next, [2000; 4]);
    }

    /// The writer thread writes a line without being asked to flush.
    #[test]
    fn lines_are_written_without_a_flush() {
        let dir = tempfile::tempdir().unwrap();
        let (layer, path) = file_layer(&dir);
        log_through(&layer, || tracing::info!(target: "culex_broker", "hello"));
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::fs::read_to_string(&path).unwrap_or_default() != "hello\n" {
            assert!(std::time::Instant::now() < deadline, "line not written");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Lines do not pile up in memory while the output is blocked: past
    /// `MAX_PENDING` the logging thread writes them itself, waiting for the
    /// output. Fails if lines are only ever queued.
    #[test]
    fn pending_lines_are_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let (layer, path) = file_layer(&dir);
        let writer = layer.writer.clone().unwrap();
        // The output is busy for a while, as a full pipe would be.
        let (held_tx, held_rx) = std::sync::mpsc::channel();
        let blocker = {
            let writer = writer.clone();
            std::thread::spawn(move || {
                let _outputs = writer.0.outputs.lock();
                held_tx.send(()).unwrap();
                std::thread::sleep(Duration::from_millis(300));
            })
        };
        held_rx.recv().unwrap();
        let line = "x".repeat(99);
        let mut most = 0;
        log_through(&layer, || {
            for _ in 0..20_000 {
                tracing::info!(target: "culex_broker", "{line}");
                most = most.max(writer.0.pending.lock().bytes.len());
            }
        });
        blocker.join().unwrap();
        assert!(most <= MAX_PENDING + 100, "{most} bytes waited");
        layer.flush();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 20_000);
    }

    /// When the last clone of a layer goes, what it logged is written.
    #[test]
    fn dropping_the_layer_writes_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let (layer, path) = file_layer(&dir);
        log_through(&layer, || {
            for i in 0..1000 {
                tracing::info!(target: "culex_broker", "{i}");
            }
        });
        drop(layer);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::fs::read_to_string(&path)
            .unwrap_or_default()
            .lines()
            .count()
            < 1000
        {
            assert!(std::time::Instant::now() < deadline, "lines lost");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    #[test]
    fn timestamps_as_mosquitto() {
        let mut config = LogConfig::default();
        let layer = MosquittoLayer::with_sinks(&config, Vec::new());
        let line = layer.format_line("Client x disconnected.");
        let (ts, rest) = line.split_once(": ").unwrap();
        assert!(ts.parse::<i64>().unwrap() > 1_600_000_000);
        assert_eq!(rest, "Client x disconnected.");
        config.timestamp_format = Some("%Y-%m-%d".into());
        let line = MosquittoLayer::with_sinks(&config, Vec::new()).format_line("m");
        assert_eq!(line.len(), "2026-01-01: m".len());
        config.timestamp = false;
        assert_eq!(
            MosquittoLayer::with_sinks(&config, Vec::new()).format_line("m"),
            "m"
        );
    }
}
