//! The broker's [`Store`] on top of `culex_store::DurableStore` (issue 10):
//! converts the broker's records to the store's and back.
//!
//! Wiring (see the store crate's docs for the guarantees):
//! - start-up: open it with [`DurableBrokerStore::open`] (the path from
//!   `culex_store::store_path`, the mode from `Durability::from_mosquitto`)
//!   and pass it to `Broker::start_with_store`; [`Store::load`] hands the
//!   restored state over once (and logs what a damaged store set aside);
//! - every mutation returns its ticket as a `Durability` in `sync` mode
//!   (nothing in `periodic` mode, see [`DurableBrokerStore::acks_wait`]);
//!   PUBACK (QoS 1) and PUBREC (QoS 2) are sent only once the changes the
//!   PUBLISH caused are durable: the connection holds them until
//!   [`Store::on_durable`] calls back.

use std::sync::Arc;
use std::time::{Duration, Instant};

use culex_codec::{PacketId, QoS, SubscriptionOptions};
use culex_store::{
    DelayedWill, Durability, DurabilityError, DurableStore, OutboundPhase, Qos, QueuedMessage,
    Recovered, StoreError, StoredMessage, StoredProps, Ticket,
};
use parking_lot::Mutex;

use crate::core::message::{Message, MessageProps};
use crate::core::store::{self as core_store, OutboundState, SessionSnapshot, Snapshot, Store};

/// A [`Store`] that keeps everything in a `culex_store::DurableStore`.
#[derive(Debug)]
pub struct DurableBrokerStore {
    store: DurableStore,
    /// What the file held at open, until [`Store::load`] takes it.
    recovered: Mutex<Option<Recovered>>,
}

impl DurableBrokerStore {
    /// Opens the store file at `path` in `mode` (creating it when missing).
    /// Damage never makes this fail; a store locked by another running
    /// broker or an unwritable directory does.
    pub fn open(
        path: &std::path::Path,
        mode: Durability,
    ) -> Result<DurableBrokerStore, StoreError> {
        let (store, recovered) = DurableStore::open(path, mode)?;
        Ok(DurableBrokerStore {
            store,
            recovered: Mutex::new(Some(recovered)),
        })
    }

    /// The store `persistence true` asks for: the file named by
    /// `persistence_location`/`persistence_file` (`culex.db` by default,
    /// never mosquitto's own `mosquitto.db` format), in the durability mode
    /// `autosave_interval`/`autosave_on_changes` map to.
    pub fn open_from_config(
        persistence: &crate::config::Persistence,
    ) -> Result<DurableBrokerStore, StoreError> {
        let path =
            culex_store::store_path(persistence.location.as_deref(), persistence.file.as_deref());
        let mode = persistence.mode.unwrap_or_else(|| {
            Durability::from_mosquitto(
                persistence.autosave_interval,
                Some(persistence.autosave_on_changes),
            )
        });
        DurableBrokerStore::open(&path, mode)
    }

    /// The underlying store (tickets, flush, close).
    pub fn inner(&self) -> &DurableStore {
        &self.store
    }

    /// Whether PUBACK/PUBREC must wait for durability: in `Sync` mode (the
    /// default). In `Periodic` mode the broker acknowledges at once, and a
    /// crash may lose the last window (that is the mode's documented trade).
    pub fn acks_wait(&self) -> bool {
        self.store.mode() == Durability::Sync
    }

    /// What an acknowledgement of a change with `ticket` waits for: the
    /// ticket in `sync` mode; nothing in `periodic` mode (a crash may lose
    /// the last window: that is the mode's documented trade).
    fn wait(&self, ticket: Ticket) -> core_store::Durability {
        if self.acks_wait() {
            core_store::Durability::Pending(ticket.get())
        } else {
            core_store::Durability::Done
        }
    }

    /// Commits what is pending and waits for it (shutdown).
    pub fn flush(&self) -> Result<(), DurabilityError> {
        self.store.flush()
    }
}

fn qos_to_store(q: QoS) -> Qos {
    match q {
        QoS::AtMostOnce => Qos::AtMostOnce,
        QoS::AtLeastOnce => Qos::AtLeastOnce,
        QoS::ExactlyOnce => Qos::ExactlyOnce,
    }
}

/// The broker's QoS for a stored one.
pub fn qos_from_store(q: Qos) -> QoS {
    match q {
        Qos::AtMostOnce => QoS::AtMostOnce,
        Qos::AtLeastOnce => QoS::AtLeastOnce,
        Qos::ExactlyOnce => QoS::ExactlyOnce,
    }
}

/// Subscription options from the stored options byte (`None` if the byte
/// is not valid, which the store never writes).
pub fn options_from_byte(byte: u8) -> Option<SubscriptionOptions> {
    SubscriptionOptions::from_byte(byte)
}

/// The store's record of a broker message. `received` (an `Instant`) is
/// turned into wall-clock time so that message expiry counts across a
/// restart.
pub fn message_to_stored(m: &Message) -> StoredMessage {
    let age = Instant::now().saturating_duration_since(m.received);
    let age_ms = u64::try_from(age.as_millis()).unwrap_or(u64::MAX);
    StoredMessage {
        topic: m.topic.to_string(),
        payload: m.payload.clone(),
        qos: qos_to_store(m.qos),
        retain: m.retain,
        props: m.props.as_deref().map(|p| StoredProps {
            payload_format_indicator: p.payload_format_indicator,
            message_expiry_interval: p.message_expiry_interval,
            content_type: p.content_type.as_deref().map(str::to_owned),
            response_topic: p.response_topic.as_deref().map(str::to_owned),
            correlation_data: p.correlation_data.clone(),
            user_properties: p
                .user_properties
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }),
        received_unix_ms: culex_store::unix_ms_now().saturating_sub(age_ms),
        origin: m.origin.as_deref().map(str::to_owned),
    }
}

/// A broker message from a stored one, `received` placed in the past by the
/// message's wall-clock age (clamped to `now` for clocks that went back).
pub fn message_from_stored(s: &StoredMessage, now: Instant) -> Message {
    let age_ms = culex_store::unix_ms_now().saturating_sub(s.received_unix_ms);
    let received = now
        .checked_sub(Duration::from_millis(age_ms))
        .unwrap_or(now);
    Message {
        topic: Arc::from(s.topic.as_str()),
        payload: s.payload.clone(),
        qos: qos_from_store(s.qos),
        retain: s.retain,
        props: s.props.as_ref().map(|p| {
            Box::new(MessageProps {
                payload_format_indicator: p.payload_format_indicator,
                message_expiry_interval: p.message_expiry_interval,
                content_type: p.content_type.as_deref().map(Box::from),
                response_topic: p.response_topic.as_deref().map(Box::from),
                correlation_data: p.correlation_data.clone(),
                user_properties: p
                    .user_properties
                    .iter()
                    .map(|(k, v)| (Box::from(k.as_str()), Box::from(v.as_str())))
                    .collect(),
            })
        }),
        received,
        origin: s.origin.as_deref().map(Arc::from),
    }
}

/// The broker's [`Snapshot`] of `recovered`. Messages whose expiry passed
/// while the broker was down come back already expired (the broker drops
/// them as usual). An outbound flight whose message was not kept is left
/// out unless it only awaits PUBCOMP (a PUBREL needs only the packet id).
pub fn snapshot(recovered: &Recovered, now: Instant) -> Snapshot {
    let retained = recovered
        .retained
        .iter()
        .map(|m| message_from_stored(m, now))
        .collect();
    let mut delayed_wills = Vec::new();
    let sessions = recovered
        .sessions
        .iter()
        .map(|s| {
            if let Some(w) = &s.will {
                delayed_wills.push((s.client_id.clone(), message_from_stored(&w.message, now)));
            }
            SessionSnapshot {
                client_id: s.client_id.clone(),
                expiry_interval: s.expiry_interval,
                subscriptions: s
                    .subscriptions
                    .iter()
                    .filter_map(|sub| {
                        options_from_byte(sub.options)
                            .map(|o| (sub.filter.clone(), o, sub.identifier))
                    })
                    .collect(),
                queued: s
                    .queued
                    .iter()
                    .map(|q| (message_from_stored(&q.message, now), qos_from_store(q.qos)))
                    .collect(),
                outbound: s
                    .outbound
                    .iter()
                    .filter_map(|o| {
                        let id = PacketId::new(o.packet_id)?;
                        match (o.phase, &o.message) {
                            (phase, Some(q)) => Some((
                                id,
                                message_from_stored(&q.message, now),
                                qos_from_store(q.qos),
                                state_from_phase(phase),
                            )),
                            (OutboundPhase::AwaitingComp, None) => Some((
                                id,
                                Message::new("", Vec::new(), QoS::ExactlyOnce, false, now),
                                QoS::ExactlyOnce,
                                OutboundState::AwaitingComp,
                            )),
                            (OutboundPhase::AwaitingAck, None) => None,
                        }
                    })
                    .collect(),
                inbound_qos2: s
                    .inbound_qos2
                    .iter()
                    .filter_map(|&id| PacketId::new(id))
                    .collect(),
            }
        })
        .collect();
    Snapshot {
        retained,
        sessions,
        delayed_wills,
    }
}

fn state_from_phase(phase: OutboundPhase) -> OutboundState {
    match phase {
        OutboundPhase::AwaitingAck => OutboundState::AwaitingAck,
        OutboundPhase::AwaitingComp => OutboundState::AwaitingComp,
    }
}

impl Store for DurableBrokerStore {
    fn is_durable(&self) -> bool {
        true
    }

    fn metrics(&self) -> Option<core_store::StoreMetrics> {
        let latency = self.store.commit_latency();
        Some(core_store::StoreMetrics {
            commits: self.store.commit_count(),
            pending: self.store.pending_len(),
            commit_buckets: latency
                .bounds_us
                .iter()
                .zip(latency.cumulative)
                .map(|(bound, n)| (*bound as f64 / 1e6, n))
                .collect(),
            commit_count: latency.count,
            commit_seconds: latency.sum_us as f64 / 1e6,
        })
    }

    fn on_durable(&self, ticket: u64, done: Box<dyn FnOnce(bool) + Send>) {
        self.store
            .on_durable(Ticket::from_raw(ticket), move |r| done(r.is_ok()));
    }

    fn outbound_sent(
        &self,
        client_id: &str,
        packet_id: PacketId,
        msg: &Message,
        qos: QoS,
    ) -> core_store::Durability {
        self.wait(self.store.outbound_put(
            client_id,
            packet_id.get(),
            OutboundPhase::AwaitingAck,
            Some(QueuedMessage {
                qos: qos_to_store(qos),
                message: message_to_stored(msg),
            }),
        ))
    }

    fn load(&self) -> Result<Snapshot, core_store::StoreError> {
        let Some(recovered) = self.recovered.lock().take() else {
            return Ok(Snapshot::default());
        };
        for warning in &recovered.warnings {
            tracing::warn!("Persistence: {warning}.");
        }
        tracing::info!(
            "Restored {} retained messages and {} sessions from {}.",
            recovered.retained.len(),
            recovered.sessions.len(),
            self.store.path().display()
        );
        Ok(snapshot(&recovered, Instant::now()))
    }

    fn retained_set(&self, msg: &Message) -> core_store::Durability {
        self.wait(self.store.retained_set(message_to_stored(msg)))
    }

    fn retained_clear(&self, topic: &str) -> core_store::Durability {
        self.wait(self.store.retained_clear(topic))
    }

    fn session_put(&self, client_id: &str, expiry_interval: Option<u32>) -> core_store::Durability {
        self.wait(self.store.session_put(client_id, expiry_interval))
    }

    fn subscription_put(
        &self,
        client_id: &str,
        filter: &str,
        options: SubscriptionOptions,
        id: Option<u32>,
    ) -> core_store::Durability {
        self.wait(
            self.store
                .subscription_put(client_id, filter, options.to_byte(), id),
        )
    }

    fn subscription_delete(&self, client_id: &str, filter: &str) -> core_store::Durability {
        self.wait(self.store.subscription_delete(client_id, filter))
    }

    fn session_delete(&self, client_id: &str) -> core_store::Durability {
        self.wait(self.store.session_delete(client_id))
    }

    fn queued_add(&self, client_id: &str, msg: &Message, qos: QoS) -> core_store::Durability {
        self.wait(self.store.queued_add(
            client_id,
            QueuedMessage {
                qos: qos_to_store(qos),
                message: message_to_stored(msg),
            },
        ))
    }

    fn queued_remove_front(&self, client_id: &str) -> core_store::Durability {
        self.wait(self.store.queued_remove_front(client_id))
    }

    fn outbound_state(
        &self,
        client_id: &str,
        packet_id: PacketId,
        state: Option<OutboundState>,
    ) -> core_store::Durability {
        // The trait does not pass the message of an AwaitingAck flight, so
        // only its packet id and phase are kept (see the module docs).
        let ticket = match state {
            Some(OutboundState::AwaitingAck) => self.store.outbound_put(
                client_id,
                packet_id.get(),
                OutboundPhase::AwaitingAck,
                None,
            ),
            Some(OutboundState::AwaitingComp) => self.store.outbound_put(
                client_id,
                packet_id.get(),
                OutboundPhase::AwaitingComp,
                None,
            ),
            None => self.store.outbound_delete(client_id, packet_id.get()),
        };
        self.wait(ticket)
    }

    fn inbound_qos2(
        &self,
        client_id: &str,
        packet_id: PacketId,
        pending: bool,
    ) -> core_store::Durability {
        self.wait(self.store.inbound_qos2(client_id, packet_id.get(), pending))
    }

    fn delayed_will(&self, client_id: &str, will: Option<&Message>) -> core_store::Durability {
        let ticket = match will {
            // The trait gives no delay: the will is kept as due now, so a
            // restart publishes it (its session's connection is gone).
            Some(m) => self.store.will_put(
                client_id,
                DelayedWill {
                    message: message_to_stored(m),
                    publish_at_unix_ms: culex_store::unix_ms_now(),
                },
            ),
            None => self.store.will_delete(client_id),
        };
        self.wait(ticket)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn persistence_mode_overrides_the_autosave_mapping() {
        let dir = tempfile::tempdir().unwrap();
        let open = |mode: Option<Durability>, file: &str| {
            let persistence = crate::config::Persistence {
                enabled: true,
                location: Some(dir.path().to_path_buf()),
                file: Some(file.to_string()),
                autosave_interval: Some(3600),
                mode,
                ..Default::default()
            };
            DurableBrokerStore::open_from_config(&persistence).unwrap()
        };
        // autosave_interval alone maps to a periodic mode: no waiting.
        assert!(!open(None, "a.db").acks_wait());
        // persistence_mode sync wins over it: acknowledgements wait.
        assert!(open(Some(Durability::Sync), "b.db").acks_wait());
        assert!(!open(Some(Durability::Periodic(50)), "c.db").acks_wait());
    }

    #[test]
    fn messages_convert_both_ways_with_their_age() {
        let now = Instant::now();
        let mut m = Message::new("a/b", "hello", QoS::ExactlyOnce, true, now);
        m.origin = Some(Arc::from("pub"));
        m.props = Some(Box::new(MessageProps {
            message_expiry_interval: Some(60),
            user_properties: vec![(Box::from("k"), Box::from("v"))],
            ..MessageProps::default()
        }));
        let stored = message_to_stored(&m);
        assert_eq!(stored.topic, "a/b");
        assert_eq!(stored.qos, Qos::ExactlyOnce);
        let back = message_from_stored(&stored, Instant::now());
        assert_eq!(back.props, m.props);
        assert_eq!((back.retain, back.qos), (true, QoS::ExactlyOnce));
        assert_eq!(back.origin.as_deref(), Some("pub"));
        assert!(back.received <= Instant::now());
        assert!(matches!(
            back.remaining_expiry(Instant::now()),
            Some(59 | 60)
        ));
    }

    #[test]
    fn every_trait_call_reaches_the_file_and_loads_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("culex.db");
        let store = DurableBrokerStore::open(&path, Durability::Sync).unwrap();
        let now = Instant::now();
        let m = Message::new("t", "p", QoS::AtLeastOnce, true, now);
        store.retained_set(&m);
        store.session_put("c", Some(30));
        let opts = SubscriptionOptions::from_byte(0x01).unwrap();
        store.subscription_put("c", "t/#", opts, Some(2));
        store.queued_add("c", &m, QoS::AtLeastOnce);
        let id = PacketId::new(3).unwrap();
        store.outbound_state("c", id, Some(OutboundState::AwaitingComp));
        store.inbound_qos2("c", PacketId::new(4).unwrap(), true);
        let last = store.delayed_will("c", Some(&m));
        let core_store::Durability::Pending(ticket) = last else {
            panic!("sync mode waits for the store: {last:?}");
        };
        let (tx, rx) = std::sync::mpsc::channel();
        Store::on_durable(&store, ticket, Box::new(move |ok| tx.send(ok).unwrap()));
        assert!(rx.recv_timeout(Duration::from_secs(10)).unwrap());
        drop(store);

        let store = DurableBrokerStore::open(&path, Durability::Sync).unwrap();
        let snap = store.load().unwrap();
        assert_eq!(snap.retained.len(), 1);
        assert_eq!(&*snap.retained[0].topic, "t");
        let s = &snap.sessions[0];
        assert_eq!(s.client_id, "c");
        assert_eq!(s.expiry_interval, Some(30));
        assert_eq!(s.subscriptions, vec![("t/#".to_owned(), opts, Some(2))]);
        assert_eq!(s.queued.len(), 1);
        assert_eq!(s.queued[0].1, QoS::AtLeastOnce);
        assert_eq!(
            (s.outbound[0].0, s.outbound[0].3),
            (id, OutboundState::AwaitingComp)
        );
        assert_eq!(s.inbound_qos2, vec![PacketId::new(4).unwrap()]);
        assert_eq!(snap.delayed_wills.len(), 1);
        assert_eq!(snap.delayed_wills[0].0, "c");
        // Handed over once.
        assert!(store.load().unwrap().sessions.is_empty());
    }
}
