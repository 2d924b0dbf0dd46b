//! Acknowledgements that wait for the store: with persistence on, a
//! PUBACK, PUBREC, SUBACK or UNSUBACK goes out only once the changes of its
//! packet are durable (the core returns a [`Durability`] for each), and
//! acknowledgements keep their order [MQTT-4.6.0-2].

use std::sync::atomic::Ordering;

use bytes::BytesMut;

use super::connection::Connection;
use super::error::Close;
use super::held::Held;
use crate::core::store::Durability;

impl Connection {
    /// Sends an acknowledgement at once, or once its `durability` is
    /// reached. One that needs nothing still waits behind an earlier held
    /// one: acknowledgements keep their order [MQTT-4.6.0-2].
    pub(super) fn acknowledge(&mut self, held: Held, durability: Durability, out: &mut BytesMut) {
        if self.acks.held.is_empty() && !durability.is_pending() {
            self.send_held(held, out);
            return;
        }
        self.acks.held.push_back((durability, held));
        if let Durability::Pending(ticket) = durability {
            let state = self.acks.state.clone();
            let signal = self.origin.signal.clone();
            self.core.store().on_durable(
                ticket,
                Box::new(move |ok| {
                    if !ok {
                        state.failed.store(true, Ordering::Release);
                    }
                    state.durable.fetch_max(ticket, Ordering::AcqRel);
                    signal.wake();
                }),
            );
        }
    }

    /// Sends the held acknowledgements that became durable, oldest first.
    /// A failed commit closes the connection unacknowledged: the client
    /// sends again.
    pub fn release_acks(&mut self, out: &mut BytesMut) -> Result<(), Close> {
        let result = self.release_durable_acks(out);
        self.count_packets();
        result
    }

    fn release_durable_acks(&mut self, out: &mut BytesMut) -> Result<(), Close> {
        if self.acks.held.is_empty() {
            return Ok(());
        }
        if self.acks.state.failed.load(Ordering::Acquire) {
            return Err(Close::StoreFailed);
        }
        let durable = self.acks.state.durable.load(Ordering::Acquire);
        while let Some((durability, _)) = self.acks.held.front() {
            if let Durability::Pending(ticket) = durability {
                if *ticket > durable {
                    break;
                }
            }
            if let Some((_, held)) = self.acks.held.pop_front() {
                self.send_held(held, out);
            }
        }
        Ok(())
    }

    fn send_held(&mut self, held: Held, out: &mut BytesMut) {
        match held {
            Held::Pub(kind, id, reason) => self.send_ack(kind, id, reason, out),
            Held::Sub(suback) => self.send_suback(*suback, out),
            Held::Unsub(id, codes) => self.send_unsuback(id, &codes, out),
        }
    }
}
