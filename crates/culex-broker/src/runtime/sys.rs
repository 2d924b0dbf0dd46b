//! mosquitto's `$SYS/broker/…` tree, and culex's optional presence events.
//!
//! Every `sys_interval` seconds the broker publishes, retained, each `$SYS`
//! value that changed since the last round (`$SYS/broker/version` once at
//! start). The `load/…/1min|5min|15min` values are exponentially weighted
//! per-minute rates, as mosquitto computes them.
//!
//! Presence events (`presence_events true`, off by default): when a client
//! connects, `$SYS/broker/clients/ID/state` is set, retained, to `1` and a
//! non-retained `$SYS/broker/clients/ID/event` carries
//! `{"event":"connected","address":"IP:PORT","protocol":"p2"}`; when it
//! disconnects, the state becomes `0` and the event is
//! `{"event":"disconnected"}`. Client ids that are not valid topic levels
//! (containing `+`, `#` or `/`) get no presence events.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use culex_codec::{Protocol, QoS};

use super::state::{shutdown_requested, Runtime};
use crate::core::message::Message;
use crate::core::Core;
use crate::protocol::{protocol_tag, Peer};

/// Publishes the `$SYS` tree until shutdown.
pub(crate) async fn publish_sys(rt: Arc<Runtime>) {
    let shared = &rt.core;
    let mut shutdown = rt.shutdown.clone();
    let interval = shared.config().sys_interval;
    let started = Instant::now();
    let mut tick = tokio::time::interval(interval);
    let mut last: HashMap<String, String> = HashMap::new();
    let mut loads = Loads::default();
    publish(
        shared,
        "$SYS/broker/version",
        format!("culex version {}", env!("CARGO_PKG_VERSION")),
    );
    loop {
        tokio::select! {
            _ = shutdown_requested(&mut shutdown) => return,
            _ = tick.tick() => {}
        }
        let values = snapshot(shared, started, &mut loads, interval);
        for (topic, value) in values {
            if last.get(&topic) != Some(&value) {
                publish(shared, &topic, value.clone());
                last.insert(topic, value);
            }
        }
    }
}

fn publish(core: &Core, topic: &str, value: String) {
    let msg = Message::new(topic, value, QoS::AtMostOnce, true, Instant::now());
    core.publish(Arc::new(msg), Instant::now());
}

/// The current `$SYS` values by topic.
fn snapshot(
    core: &Core,
    started: Instant,
    loads: &mut Loads,
    interval: Duration,
) -> Vec<(String, String)> {
    let s = core.stats();
    let get = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    let counts = core.counts();
    let (connected, total) = (counts.connected, counts.sessions);
    let (retained, subscriptions) = (counts.retained, counts.subscriptions);
    let mut v: Vec<(String, String)> = vec![
        (
            "$SYS/broker/uptime".into(),
            format!("{} seconds", started.elapsed().as_secs()),
        ),
        ("$SYS/broker/clients/total".into(), total.to_string()),
        (
            "$SYS/broker/clients/connected".into(),
            connected.to_string(),
        ),
        ("$SYS/broker/clients/active".into(), connected.to_string()),
        (
            "$SYS/broker/clients/disconnected".into(),
            (total - connected).to_string(),
        ),
        (
            "$SYS/broker/clients/inactive".into(),
            (total - connected).to_string(),
        ),
        (
            "$SYS/broker/clients/maximum".into(),
            s.clients_maximum.load(Ordering::Relaxed).to_string(),
        ),
        (
            "$SYS/broker/clients/expired".into(),
            get(&s.clients_expired).to_string(),
        ),
        (
            "$SYS/broker/messages/received".into(),
            get(&s.packets_received).to_string(),
        ),
        (
            "$SYS/broker/messages/sent".into(),
            get(&s.packets_sent).to_string(),
        ),
        ("$SYS/broker/messages/stored".into(), retained.to_string()),
        (
            "$SYS/broker/store/messages/count".into(),
            retained.to_string(),
        ),
        (
            "$SYS/broker/publish/messages/received".into(),
            s.publish_received_total().to_string(),
        ),
        (
            "$SYS/broker/publish/messages/sent".into(),
            s.publish_sent_total().to_string(),
        ),
        (
            "$SYS/broker/publish/messages/dropped".into(),
            s.dropped_total().to_string(),
        ),
        (
            "$SYS/broker/bytes/received".into(),
            get(&s.bytes_received).to_string(),
        ),
        (
            "$SYS/broker/bytes/sent".into(),
            get(&s.bytes_sent).to_string(),
        ),
        (
            "$SYS/broker/subscriptions/count".into(),
            subscriptions.to_string(),
        ),
        (
            "$SYS/broker/retained messages/count".into(),
            retained.to_string(),
        ),
    ];
    let counters = [
        ("messages/received", get(&s.packets_received)),
        ("messages/sent", get(&s.packets_sent)),
        ("publish/messages/received", s.publish_received_total()),
        ("publish/messages/sent", s.publish_sent_total()),
        ("publish/dropped", s.dropped_total()),
        ("bytes/received", get(&s.bytes_received)),
        ("bytes/sent", get(&s.bytes_sent)),
        ("connections", get(&s.connects)),
    ];
    for (name, value) in counters {
        let averages = loads.update(name, value, interval);
        for (window, avg) in ["1min", "5min", "15min"].iter().zip(averages) {
            v.push((
                format!("$SYS/broker/load/{name}/{window}"),
                format!("{avg:.2}"),
            ));
        }
    }
    v
}

/// Exponentially weighted per-minute rates of each counter.
#[derive(Debug, Default)]
struct Loads {
    state: HashMap<&'static str, (u64, [f64; 3])>,
}

impl Loads {
    fn update(&mut self, name: &'static str, value: u64, interval: Duration) -> [f64; 3] {
        let secs = interval.as_secs_f64().max(1.0);
        let entry = self.state.entry(name).or_insert((value, [0.0; 3]));
        let delta = value.saturating_sub(entry.0) as f64;
        entry.0 = value;
        let per_minute = delta * 60.0 / secs;
        for (avg, minutes) in entry.1.iter_mut().zip([1.0f64, 5.0, 15.0]) {
            let k = (-secs / (minutes * 60.0)).exp();
            *avg = *avg * k + per_minute * (1.0 - k);
        }
        entry.1
    }
}

/// Presence events for `client_id`: `Some((address, protocol))` on connect,
/// `None` on disconnect. Does nothing unless `presence_events` is on.
pub(crate) fn presence(core: &Core, client_id: &str, connected: Option<(&Peer, Protocol)>) {
    if !core.config().presence_events
        || client_id.contains(['+', '#', '/', '\0'])
        || client_id.is_empty()
    {
        return;
    }
    let now = Instant::now();
    let base = format!("$SYS/broker/clients/{client_id}");
    let (state, event) = match connected {
        Some((addr, protocol)) => (
            "1",
            format!(
                "{{\"event\":\"connected\",\"address\":\"{}\",\"protocol\":\"{}\"}}",
                json_escape(&addr.to_string()),
                protocol_tag(protocol)
            ),
        ),
        None => ("0", "{\"event\":\"disconnected\"}".to_owned()),
    };
    let state = Message::new(&format!("{base}/state"), state, QoS::AtMostOnce, true, now);
    core.publish(Arc::new(state), now);
    let event = Message::new(&format!("{base}/event"), event, QoS::AtMostOnce, false, now);
    core.publish(Arc::new(event), now);
}

/// `text` as the inside of a JSON string (a unix socket's path may hold
/// quotes or backslashes).
fn json_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out
}

/// The core's events as mosquitto's log lines.
#[derive(Debug, Default)]
pub(crate) struct LogEvents;

impl crate::core::EventSink for LogEvents {
    fn event(&self, event: crate::core::Event<'_>) {
        use crate::core::Event;
        match event {
            Event::TakenOver { client_id } => {
                tracing::info!("Client {client_id} already connected, closing old connection.");
            }
            Event::Dropping { client_id } => {
                tracing::info!("Outgoing messages are being dropped for client {client_id}.");
            }
            Event::WillDenied { client_id, topic } => {
                tracing::info!(
                    "Denied will of client {client_id} on topic '{topic}': not authorised."
                );
            }
            // The protocol and the serve loop log these in mosquitto's words.
            Event::Connected { .. } | Event::Disconnected { .. } => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn load_averages_follow_the_rate() {
        let mut loads = Loads::default();
        let interval = Duration::from_secs(10);
        let mut value = 0;
        let mut last = [0.0; 3];
        for _ in 0..200 {
            value += 100; // 600 per minute
            last = loads.update("x", value, interval);
        }
        assert!((last[0] - 600.0).abs() < 1.0, "{last:?}");
        assert!(last[2] > 500.0 && last[2] <= 600.0, "{last:?}");
    }
}
