//! mosquitto-style log output on top of `tracing`: `EPOCH: message` lines
//! (or `log_timestamp_format`), to the configured `log_dest`s, filtered by
//! `log_type`.
//!
//! The runtime logs with plain `tracing` macros: `info!` for mosquitto's
//! notice and information lines, `warn!`/`error!` for warnings and errors,
//! `debug!` for the per-packet lines of `-v`. The sans-IO core never logs.

use std::io::Write;
use std::sync::Arc;

use parking_lot::Mutex;
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
    sinks: Vec<Sink>,
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
        MosquittoLayer {
            sinks,
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
        if !self.timestamp {
            return message.to_owned();
        }
        match &self.timestamp_format {
            Some(fmt) => {
                use std::fmt::Write as _;
                let mut ts = String::new();
                // An invalid strftime format must not take the broker down.
                if write!(ts, "{}", chrono::Local::now().format(fmt)).is_err() {
                    ts = chrono::Utc::now().timestamp().to_string();
                }
                format!("{ts}: {message}")
            }
            None => format!("{}: {message}", chrono::Utc::now().timestamp()),
        }
    }
}

impl<S: Subscriber> Layer<S> for MosquittoLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let meta = event.metadata();
        if !meta.target().starts_with("culex") || !self.wants(meta.level()) {
            return;
        }
        let mut visitor = MessageVisitor(String::new());
        event.record(&mut visitor);
        let mut line = self.format_line(&visitor.0);
        // One write per line: `writeln!` on unbuffered stderr makes two
        // system calls, and a connect logs two lines.
        line.push('\n');
        for sink in &self.sinks {
            match sink {
                Sink::Stderr => {
                    let _ = std::io::stderr().lock().write_all(line.as_bytes());
                }
                Sink::Stdout => {
                    let _ = std::io::stdout().lock().write_all(line.as_bytes());
                }
                Sink::File(f) => {
                    let mut f = f.lock();
                    let _ = f.write_all(line.as_bytes());
                    let _ = f.flush();
                }
                Sink::Memory(v) => v.lock().push(line.trim_end_matches('\n').to_owned()),
            }
        }
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

/// Installs the layer as the process's global subscriber (`culex broker`).
pub fn init(config: &LogConfig) -> std::io::Result<()> {
    let layer = MosquittoLayer::new(config)?;
    let subscriber =
        tracing_subscriber::registry().with(layer.with_filter(LevelFilterFor(config.verbose)));
    // A second init (tests, embedding) keeps the first subscriber.
    let _ = tracing::subscriber::set_global_default(subscriber);
    Ok(())
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
