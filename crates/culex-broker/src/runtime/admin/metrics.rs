//! `/metrics`: the broker's counters in Prometheus's text format (0.0.4).
//!
//! Names follow Prometheus's conventions: a `culex_` prefix, base units
//! (bytes, seconds), `_total` on counters only, and the `process_*`
//! families of its client libraries. Everything is read at scrape time;
//! nothing here runs between scrapes. `promtool check metrics` checks it
//! in the tests.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

use super::process::ProcessStats;
use super::shared::Admin;
use crate::core::drops::DropReason;
use crate::core::stats::{protocol_label, PROTOCOLS};

/// The text of one scrape.
pub(crate) fn render(admin: &Admin) -> String {
    let mut out = Families::default();
    broker(&mut out, admin);
    messages(&mut out, admin);
    state(&mut out, admin);
    store(&mut out, admin);
    process(&mut out);
    out.0
}

fn broker(out: &mut Families, admin: &Admin) {
    let stats = admin.core.stats();
    out.family(
        "culex_build_info",
        "gauge",
        "The running culex, by version.",
    );
    out.sample(
        "culex_build_info",
        &[("version", env!("CARGO_PKG_VERSION"))],
        1,
    );
    out.family(
        "culex_connections",
        "gauge",
        "Clients connected now, by listener and protocol version.",
    );
    for (listener, name) in stats.listeners().iter().zip(&admin.listeners) {
        for p in PROTOCOLS {
            let labels = [("listener", name.as_str()), ("protocol", protocol_label(p))];
            out.sample("culex_connections", &labels, listener.connected(p));
        }
    }
    out.family(
        "culex_connections_total",
        "counter",
        "Clients accepted, by listener and protocol version.",
    );
    for (listener, name) in stats.listeners().iter().zip(&admin.listeners) {
        for p in PROTOCOLS {
            let labels = [("listener", name.as_str()), ("protocol", protocol_label(p))];
            out.sample("culex_connections_total", &labels, listener.connects(p));
        }
    }
    let max = stats.clients_maximum.load(Ordering::Relaxed) as u64;
    out.single(
        "culex_connections_maximum",
        "gauge",
        "The most clients connected at once.",
        max,
    );
    let expired = load(&stats.clients_expired);
    out.single(
        "culex_sessions_expired_total",
        "counter",
        "Sessions that expired.",
        expired,
    );
}

fn messages(out: &mut Families, admin: &Admin) {
    let stats = admin.core.stats();
    let by_qos = [
        (
            "culex_messages_received_total",
            "PUBLISH packets received, by QoS.",
            &stats.publish_received,
        ),
        (
            "culex_messages_sent_total",
            "PUBLISH packets sent, by QoS.",
            &stats.publish_sent,
        ),
        (
            "culex_messages_received_bytes_total",
            "Payload bytes of the PUBLISH packets received, by QoS.",
            &stats.publish_received_bytes,
        ),
        (
            "culex_messages_sent_bytes_total",
            "Payload bytes of the PUBLISH packets sent, by QoS.",
            &stats.publish_sent_bytes,
        ),
    ];
    for (name, help, counters) in by_qos {
        out.family(name, "counter", help);
        for (qos, counter) in ["0", "1", "2"].iter().zip(counters.iter()) {
            out.sample(name, &[("qos", qos)], load(counter));
        }
    }
    out.family(
        "culex_deliveries_dropped_total",
        "counter",
        "Deliveries dropped, by reason.",
    );
    for reason in DropReason::ALL {
        let labels = [("reason", reason.label())];
        out.sample(
            "culex_deliveries_dropped_total",
            &labels,
            stats.dropped(reason),
        );
    }
    let totals = [
        (
            "culex_packets_received_total",
            "Control packets received.",
            &stats.packets_received,
        ),
        (
            "culex_packets_sent_total",
            "Control packets sent.",
            &stats.packets_sent,
        ),
        (
            "culex_network_received_bytes_total",
            "Bytes read from client connections.",
            &stats.bytes_received,
        ),
        (
            "culex_network_sent_bytes_total",
            "Bytes written to client connections.",
            &stats.bytes_sent,
        ),
    ];
    for (name, help, counter) in totals {
        out.single(name, "counter", help, load(counter));
    }
}

fn state(out: &mut Families, admin: &Admin) {
    let counts = admin.core.counts();
    let totals = admin.core.session_totals();
    let gauges = [
        (
            "culex_sessions",
            "Sessions, connected or not.",
            counts.sessions as u64,
        ),
        (
            "culex_subscriptions",
            "Subscriptions of every session.",
            counts.subscriptions as u64,
        ),
        (
            "culex_retained_messages",
            "Retained messages.",
            counts.retained as u64,
        ),
        (
            "culex_retained_bytes",
            "Payload bytes of the retained messages.",
            counts.retained_bytes as u64,
        ),
        (
            "culex_inflight_messages",
            "Outbound QoS 1 and 2 messages not yet acknowledged, every session together.",
            totals.inflight,
        ),
        (
            "culex_queued_messages",
            "Messages waiting in session queues, every session together.",
            totals.queued,
        ),
    ];
    for (name, help, value) in gauges {
        out.single(name, "gauge", help, value);
    }
}

fn store(out: &mut Families, admin: &Admin) {
    let Some(m) = admin.core.store().metrics() else {
        return;
    };
    out.single(
        "culex_store_commits_total",
        "counter",
        "Commits of the durable store.",
        m.commits,
    );
    out.single(
        "culex_store_pending_mutations",
        "gauge",
        "Changes waiting for the store's next commit.",
        m.pending as u64,
    );
    let name = "culex_store_commit_duration_seconds";
    out.family(
        name,
        "histogram",
        "How long each commit of the durable store took.",
    );
    for (bound, n) in &m.commit_buckets {
        let le = format!("{bound}");
        out.sample_f(&format!("{name}_bucket"), &[("le", &le)], *n as f64);
    }
    let count = m.commit_count as f64;
    out.sample_f(&format!("{name}_bucket"), &[("le", "+Inf")], count);
    out.sample_f(&format!("{name}_sum"), &[], m.commit_seconds);
    out.sample_f(&format!("{name}_count"), &[], count);
}

fn process(out: &mut Families) {
    let p = ProcessStats::read();
    let families = [
        (
            "process_cpu_seconds_total",
            "counter",
            "User and system CPU time spent, in seconds.",
            p.cpu_seconds,
        ),
        (
            "process_resident_memory_bytes",
            "gauge",
            "Resident memory size, in bytes.",
            p.resident_bytes.map(|b| b as f64),
        ),
        (
            "process_virtual_memory_bytes",
            "gauge",
            "Virtual memory size, in bytes.",
            p.virtual_bytes.map(|b| b as f64),
        ),
        (
            "process_open_fds",
            "gauge",
            "Open file descriptors.",
            p.open_fds.map(|n| n as f64),
        ),
        (
            "process_max_fds",
            "gauge",
            "The limit of open file descriptors.",
            p.max_fds.map(|n| n as f64),
        ),
        (
            "process_start_time_seconds",
            "gauge",
            "Start time of the process since the Unix epoch, in seconds.",
            p.start_time_seconds,
        ),
    ];
    for (name, kind, help, value) in families {
        if let Some(value) = value {
            out.family(name, kind, help);
            out.sample_f(name, &[], value);
        }
    }
}

fn load(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

/// The exposition text being written.
#[derive(Debug, Default)]
struct Families(String);

impl Families {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP {name} {help}");
        let _ = writeln!(self.0, "# TYPE {name} {kind}");
    }

    fn single(&mut self, name: &str, kind: &str, help: &str, value: u64) {
        self.family(name, kind, help);
        self.sample(name, &[], value);
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: u64) {
        self.labels(name, labels);
        let _ = writeln!(self.0, " {value}");
    }

    fn sample_f(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.labels(name, labels);
        let _ = writeln!(self.0, " {value}");
    }

    fn labels(&mut self, name: &str, labels: &[(&str, &str)]) {
        self.0.push_str(name);
        if labels.is_empty() {
            return;
        }
        self.0.push('{');
        for (i, (key, value)) in labels.iter().enumerate() {
            if i > 0 {
                self.0.push(',');
            }
            let _ = write!(self.0, "{key}=\"{}\"", escape(value));
        }
        self.0.push('}');
    }
}

/// A label value with `\`, `"` and newlines escaped.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_and_labels() {
        let mut f = Families::default();
        f.family("x_total", "counter", "Things.");
        f.sample("x_total", &[("a", "q\"\\\n")], 3);
        f.sample_f("y", &[], 0.5);
        assert_eq!(
            f.0,
            "# HELP x_total Things.\n# TYPE x_total counter\nx_total{a=\"q\\\"\\\\\\n\"} 3\ny 0.5\n"
        );
    }
}
