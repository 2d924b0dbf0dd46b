//! The live log: the core's events (connects, disconnects, drops, …) and
//! the administrators' actions, kept in a bounded ring that the page
//! polls for what came after the last entry it saw.
//!
//! Installed only with the HTTP listener: the core's [`EventSink`] is then
//! a [`Tee`] that logs as before and appends here. Events come per
//! connect, disconnect or spell of drops, never per message.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;

use crate::core::{Event, EventSink};
use crate::protocol::protocol_tag;
use crate::runtime::sys::LogEvents;

/// Entries the ring keeps.
pub(crate) const CAPACITY: usize = 1000;

/// One line of the live log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    /// Numbers every entry, from 1.
    pub seq: u64,
    /// Milliseconds since the Unix epoch.
    pub unix_ms: u64,
    /// `connect`, `disconnect`, `drop`, `takeover`, `will` or `admin`.
    pub kind: &'static str,
    /// The client it is about (empty for some admin actions).
    pub client_id: String,
    /// The line itself.
    pub text: String,
}

/// The last [`CAPACITY`] entries.
#[derive(Debug, Default)]
pub(crate) struct EventRing {
    // A mutex: appended to per connect or disconnect, read once a second
    // by a watching page; never held across an await.
    inner: Mutex<Ring>,
}

#[derive(Debug, Default)]
struct Ring {
    next: u64,
    entries: VecDeque<Entry>,
}

impl EventRing {
    /// Appends an entry.
    pub fn push(&self, kind: &'static str, client_id: &str, text: String) {
        let mut ring = self.inner.lock();
        ring.next += 1;
        let entry = Entry {
            seq: ring.next,
            unix_ms: unix_ms(),
            kind,
            client_id: client_id.to_owned(),
            text,
        };
        if ring.entries.len() == CAPACITY {
            ring.entries.pop_front();
        }
        ring.entries.push_back(entry);
    }

    /// The entries after `since`, oldest first, at most `limit` (the
    /// newest ones), and the last sequence number.
    pub fn since(&self, since: u64, limit: usize) -> (Vec<Entry>, u64) {
        let ring = self.inner.lock();
        let newer: Vec<&Entry> = ring.entries.iter().filter(|e| e.seq > since).collect();
        let skip = newer.len().saturating_sub(limit);
        let entries = newer.into_iter().skip(skip).cloned().collect();
        (entries, ring.next)
    }
}

/// The core's events to the log lines and to the ring.
#[derive(Debug)]
pub(crate) struct Tee(pub Arc<EventRing>);

impl EventSink for Tee {
    fn event(&self, event: Event<'_>) {
        LogEvents.event(event);
        let (kind, client_id, text) = describe(event);
        self.0.push(kind, client_id, text);
    }
}

fn describe(event: Event<'_>) -> (&'static str, &str, String) {
    match event {
        Event::Connected {
            client_id,
            address,
            protocol,
            username,
        } => {
            let user = username.map(|u| format!(", u'{u}'")).unwrap_or_default();
            let text = format!(
                "New client connected from {address} as {client_id} ({}{user}).",
                protocol_tag(protocol)
            );
            ("connect", client_id, text)
        }
        Event::Disconnected { client_id, why } => (
            "disconnect",
            client_id,
            format!("Client {client_id} disconnected: {why}."),
        ),
        Event::TakenOver { client_id } => (
            "takeover",
            client_id,
            format!("Client {client_id} already connected, closing old connection."),
        ),
        Event::Dropping { client_id } => (
            "drop",
            client_id,
            format!("Outgoing messages are being dropped for client {client_id}."),
        ),
        Event::WillDenied { client_id, topic } => (
            "will",
            client_id,
            format!("Denied will of client {client_id} on topic '{topic}': not authorised."),
        ),
    }
}

/// Milliseconds since the Unix epoch.
pub(crate) fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ring_keeps_the_newest_and_answers_deltas() {
        let ring = EventRing::default();
        for i in 0..CAPACITY + 5 {
            ring.push("connect", "c", format!("line {i}"));
        }
        let (all, last) = ring.since(0, usize::MAX);
        assert_eq!(all.len(), CAPACITY);
        assert_eq!(last, (CAPACITY + 5) as u64);
        assert_eq!(all[0].seq, 6, "the oldest went");
        let (newer, _) = ring.since(last - 2, 100);
        assert_eq!(newer.len(), 2);
        let (few, _) = ring.since(0, 3);
        assert_eq!(few.last().unwrap().seq, last, "the newest of a long gap");
        let tee = Tee(Arc::new(EventRing::default()));
        tee.event(Event::Disconnected {
            client_id: "x",
            why: "exceeded timeout",
        });
        let (lines, _) = tee.0.since(0, 10);
        assert_eq!(lines[0].text, "Client x disconnected: exceeded timeout.");
    }
}
