//! The summary of a run: a table for people, JSON for machines.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use hdrhistogram::Histogram;
use serde::Serialize;

/// Everything a run measured.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Scenario name (`pairs`, `fanout`, ...).
    pub scenario: String,
    /// The broker, as `host:port`.
    pub target: String,
    /// MQTT version.
    pub protocol: String,
    /// QoS of publications and subscriptions.
    pub qos: u8,
    /// Payload bytes.
    pub payload_size: usize,
    /// Messages per second per publisher; `None` is flat out.
    pub rate_per_publisher: Option<f64>,
    /// Publishers asked for.
    pub publishers: u32,
    /// Subscribers asked for.
    pub subscribers: u32,
    /// The shared subscription group the subscribers joined, if any.
    pub share: Option<String>,
    /// The duration asked for, in seconds.
    pub duration_s: f64,
    /// The measured phase as it ran (shorter when interrupted), in seconds.
    pub elapsed_s: f64,
    /// Connection figures.
    pub connections: Connections,
    /// Message counts.
    pub messages: Messages,
    /// Rates over the measured phase.
    pub throughput: Throughput,
    /// Latency from the timestamp in each payload to its arrival; `None` when
    /// no stamped message arrived.
    pub latency_us: Option<Latency>,
    /// Errors, by kind.
    pub errors: Errors,
    /// This process's own CPU use over the whole run (setup and measured phase).
    pub cpu: Cpu,
    /// This process's peak resident set size.
    pub peak_rss_kib: Option<u64>,
}

/// Connection figures.
#[derive(Debug, Clone, Serialize)]
pub struct Connections {
    /// Connections the run asked for.
    pub wanted: u64,
    /// Connections that got their CONNACK (and SUBACK).
    pub established: u64,
    /// Connections that failed to set up.
    pub failed: u64,
    /// Connections lost during the run.
    pub lost: u64,
    /// From the first attempt to the last CONNACK, in seconds.
    pub connect_s: f64,
    /// Established connections per second of `connect_s`.
    pub connect_rate: f64,
    /// Most connections between `connect` and their answer at once.
    pub concurrency: u32,
    /// When CONNECT was written: `handshake`, once the runtime reported the
    /// TCP handshake complete (as clients do), or `connect`, right after
    /// `connect` (`--early-connect`).
    pub connect_after: String,
    /// Time from `connect` to CONNACK, per connection.
    pub connect_latency_us: Option<Latency>,
}

/// Message counts.
#[derive(Debug, Clone, Serialize)]
pub struct Messages {
    /// PUBLISH packets sent.
    pub sent: u64,
    /// QoS 1/2 publications acknowledged.
    pub acked: u64,
    /// PUBLISH packets received by the subscribers (in runs with their own
    /// publishers, only messages this run sent).
    pub received: u64,
    /// Messages received that another run sent: left over in the broker.
    pub stray: u64,
    /// Deliveries expected (sent × subscribers per message), when the run has both sides.
    pub expected: Option<u64>,
    /// `received / expected`; `None` when nothing was expected.
    pub delivered_fraction: Option<f64>,
}

/// Rates over the measured phase.
#[derive(Debug, Clone, Serialize)]
pub struct Throughput {
    /// Messages sent per second.
    pub sent_per_s: f64,
    /// Messages received per second.
    pub received_per_s: f64,
    /// Messages per second the publishers were asked to send together;
    /// `None` when flat out.
    pub offered_per_s: Option<f64>,
}

/// Latency percentiles in microseconds.
#[derive(Debug, Clone, Serialize)]
pub struct Latency {
    /// Messages timed.
    pub count: u64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Largest.
    pub max: f64,
    /// Mean.
    pub mean: f64,
}

impl Latency {
    /// Percentiles of a histogram in nanoseconds, or `None` when it is empty.
    pub fn from_histogram(h: &Histogram<u64>) -> Option<Latency> {
        if h.is_empty() {
            return None;
        }
        let us = |ns: u64| ns as f64 / 1000.0;
        Some(Latency {
            count: h.len(),
            p50: us(h.value_at_quantile(0.50)),
            p90: us(h.value_at_quantile(0.90)),
            p99: us(h.value_at_quantile(0.99)),
            p999: us(h.value_at_quantile(0.999)),
            max: us(h.max()),
            mean: h.mean() / 1000.0,
        })
    }
}

/// Errors.
#[derive(Debug, Clone, Serialize)]
pub struct Errors {
    /// All errors.
    pub total: u64,
    /// Count per kind.
    pub kinds: BTreeMap<String, u64>,
}

/// CPU use.
#[derive(Debug, Clone, Serialize)]
pub struct Cpu {
    /// User seconds.
    pub user_s: f64,
    /// System seconds.
    pub system_s: f64,
    /// (user + system) / wall time of the run, in percent of one core.
    pub core_percent: f64,
}

impl Report {
    /// The report as an aligned two-column table.
    pub fn table(&self) -> String {
        let mut rows: Vec<(String, String)> = Vec::new();
        let mut row = |k: &str, v: String| rows.push((k.to_string(), v));
        let rate = match (self.rate_per_publisher, self.throughput.offered_per_s) {
            (Some(r), Some(total)) if self.publishers > 1 => {
                format!("{} msg/s per publisher, {}/s in all", si(r), si(total))
            }
            (Some(r), _) => format!("{} msg/s per publisher", si(r)),
            (None, _) => "flat out".to_string(),
        };
        row(
            "scenario",
            format!(
                "{} against {} (MQTT {}, QoS {}, {} B payload, {})",
                self.scenario, self.target, self.protocol, self.qos, self.payload_size, rate
            ),
        );
        if self.publishers + self.subscribers > 0 {
            row(
                "clients",
                match &self.share {
                    Some(group) => format!(
                        "{} publishers, {} subscribers sharing $share/{group}/",
                        self.publishers, self.subscribers
                    ),
                    None => format!(
                        "{} publishers, {} subscribers",
                        self.publishers, self.subscribers
                    ),
                },
            );
        }
        let c = &self.connections;
        row(
            "connections",
            format!(
                "{} of {} established, {} failed, {} lost",
                c.established, c.wanted, c.failed, c.lost
            ),
        );
        row(
            "connect rate",
            format!(
                "{}/s ({:.3} s; {} at once, CONNECT after {})",
                si(c.connect_rate),
                c.connect_s,
                c.concurrency,
                c.connect_after
            ),
        );
        if let Some(l) = &c.connect_latency_us {
            row(
                "connect time",
                format!(
                    "p50 {} p99 {} max {} (connect to CONNACK)",
                    micros(l.p50),
                    micros(l.p99),
                    micros(l.max)
                ),
            );
        }
        row(
            "elapsed",
            format!("{:.3} s of {:.3} s", self.elapsed_s, self.duration_s),
        );
        if self.publishers + self.subscribers > 0 {
            let m = &self.messages;
            row(
                "sent",
                format!("{} ({}/s)", m.sent, si(self.throughput.sent_per_s)),
            );
            if self.qos > 0 && self.publishers > 0 {
                row("acknowledged", m.acked.to_string());
            }
            row(
                "received",
                format!("{} ({}/s)", m.received, si(self.throughput.received_per_s)),
            );
            if let (Some(expected), Some(fraction)) = (m.expected, m.delivered_fraction) {
                row("delivered", format!("{fraction:.4} of {expected} expected"));
            }
            if m.stray > 0 {
                row(
                    "stray",
                    format!("{} from an earlier run, not counted", m.stray),
                );
            }
        }
        match &self.latency_us {
            Some(l) => row(
                "latency",
                format!(
                    "p50 {} p90 {} p99 {} p99.9 {} max {} ({} timed)",
                    micros(l.p50),
                    micros(l.p90),
                    micros(l.p99),
                    micros(l.p999),
                    micros(l.max),
                    l.count
                ),
            ),
            None if self.subscribers > 0 => row("latency", "none timed".into()),
            None => {}
        }
        let mut errors = self.errors.total.to_string();
        for (kind, n) in &self.errors.kinds {
            let _ = write!(errors, "; {n}× {kind}");
        }
        row("errors", errors);
        row(
            "own cpu",
            format!(
                "{:.1}% of a core (user {:.2} s, system {:.2} s)",
                self.cpu.core_percent, self.cpu.user_s, self.cpu.system_s
            ),
        );
        if let Some(rss) = self.peak_rss_kib {
            row("own peak rss", format!("{:.1} MiB", rss as f64 / 1024.0));
        }
        let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
        let mut out = String::new();
        for (k, v) in rows {
            let _ = writeln!(out, "{k:<width$}  {v}");
        }
        out
    }
}

/// A number with a k/M suffix.
pub fn si(x: f64) -> String {
    if x >= 1e6 {
        format!("{:.2}M", x / 1e6)
    } else if x >= 1e4 {
        format!("{:.1}k", x / 1e3)
    } else {
        format!("{x:.0}")
    }
}

/// Microseconds, shown as µs or ms.
pub fn micros(us: f64) -> String {
    if us >= 10_000.0 {
        format!("{:.1} ms", us / 1000.0)
    } else {
        format!("{us:.0} µs")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_well() {
        assert_eq!(si(950.0), "950");
        assert_eq!(si(123_456.0), "123.5k");
        assert_eq!(si(2_500_000.0), "2.50M");
        assert_eq!(micros(210.4), "210 µs");
        assert_eq!(micros(15_300.0), "15.3 ms");
    }
}
