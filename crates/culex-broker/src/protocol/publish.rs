//! A PUBLISH from the client: its topic (aliases, mount point), the checks
//! that may refuse it, routing, and its acknowledgement.

use std::sync::Arc;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use culex_codec::packet::Publish;
use culex_codec::{Packet, PacketId, QoS, ReasonCode};

use super::connection::{too_deep, Connection, FLOOD_LOAD, PAUSE_MAX, TOPIC_ALIAS_MAXIMUM};
use super::error::{Close, Violation};
use super::held::{AckKind, Held};
use crate::core::message::Message;
use crate::core::store::Durability;

impl Connection {
    pub(super) fn on_publish(
        &mut self,
        p: &Publish<'_>,
        frame: &Bytes,
        now: Instant,
        out: &mut BytesMut,
    ) -> Result<(), Close> {
        self.batch_load = self
            .batch_load
            .saturating_add(FLOOD_LOAD / 2)
            .saturating_add(u32::try_from(p.payload.len()).unwrap_or(u32::MAX));
        self.received.add(p.qos, p.payload.len());
        let topic = self.publish_topic(p)?;
        tracing::debug!(
            "Received PUBLISH from {} (d{}, q{}, r{}, m{}, '{}', ... ({} bytes))",
            self.client_id,
            u8::from(p.dup),
            p.qos as u8,
            u8::from(p.retain),
            p.packet_id.map_or(0, PacketId::get),
            topic,
            p.payload.len()
        );
        let limits = &self.core.config().limits;
        if p.qos > limits.max_qos {
            return Err(Violation::QoSNotSupported.into());
        }
        if p.retain && !limits.retain_available {
            return Err(Violation::RetainNotSupported.into());
        }
        let mut reason = self.refusal(p, &topic);
        let mut durability = Durability::Done;
        let route = match (p.qos, p.packet_id) {
            (QoS::ExactlyOnce, Some(pid)) => {
                let (new, d) = self.receive_qos2(pid, reason)?;
                durability = d;
                new
            }
            _ => !reason.is_error(),
        };
        if route {
            let msg = Message::from_publish(p, topic, frame, Some(self.client_id.clone()), now);
            let routed = self.core.route(Arc::new(msg), &mut self.origin, now);
            if routed.pause && self.floods() {
                // A subscriber's backlog is full but draining: read nothing
                // more from this publisher until it drains (back-pressure).
                self.paused_until = Some(now + PAUSE_MAX);
            }
            // A subscriber that cannot keep up: give it the CPU before reading
            // more from this publisher (back-pressure instead of busy dropping).
            self.yield_hint |= routed.overflow;
            if routed.matched == 0 {
                // 5.0 tells the publisher nobody was listening [MQTT 5.0, 3.4.2.1].
                reason = ReasonCode::NoMatchingSubscribers;
            }
            durability = durability.and(routed.durability);
        }
        self.ack_publish(p, reason, durability, out);
        Ok(())
    }

    /// The topic of a PUBLISH: its own or its alias's [MQTT-3.3.2-8]
    /// [MQTT-3.3.2-12], under the listener's mount point.
    fn publish_topic(&mut self, p: &Publish<'_>) -> Result<Arc<str>, Close> {
        let topic: Arc<str> = match p.properties.topic_alias {
            Some(alias) if alias == 0 || alias > TOPIC_ALIAS_MAXIMUM || !self.protocol.is_v5() => {
                return Err(Violation::TopicAliasInvalid.into());
            }
            Some(alias) if p.topic.as_str().is_empty() => self
                .aliases
                .as_ref()
                .and_then(|a| a.inbound.get(&alias))
                .cloned()
                .ok_or(Violation::UnknownTopicAlias)?,
            Some(alias) => {
                let t: Arc<str> = Arc::from(p.topic.as_str());
                self.aliases
                    .get_or_insert_with(Box::default)
                    .inbound
                    .insert(alias, t.clone());
                t
            }
            None if p.topic.as_str().is_empty() => return Err(Violation::EmptyTopic.into()),
            None => Arc::from(p.topic.as_str()),
        };
        let topic = match &self.mount {
            Some(mount) => Arc::from(format!("{mount}{topic}")),
            None => topic,
        };
        let max = self.core.config().limits.max_topic_levels;
        if too_deep(&topic, max) {
            return Err(Violation::TopicTooDeep(max).into());
        }
        Ok(topic)
    }

    /// Why the broker takes but does not route a PUBLISH (`Success` when
    /// it routes it): too large, not UTF-8 as announced, `$SYS`, or not
    /// allowed by the ACL.
    fn refusal(&self, p: &Publish<'_>, topic: &str) -> ReasonCode {
        let limits = &self.core.config().limits;
        if limits
            .message_size_limit
            .is_some_and(|max| p.payload.len() > max as usize)
        {
            ReasonCode::PacketTooLarge
        } else if self.protocol.is_v5()
            && p.properties.payload_format_indicator == Some(1)
            && std::str::from_utf8(p.payload).is_err()
        {
            ReasonCode::PayloadFormatInvalid
        } else if topic.starts_with("$SYS/") {
            // The broker owns the `$SYS` tree; clients may not write to it.
            ReasonCode::NotAuthorized
        } else if self.core.acl_active()
            && !self.core.policy(self.listener).can_write(
                &self.client_id,
                self.username.as_deref(),
                topic,
            )
        {
            ReasonCode::NotAuthorized
        } else {
            ReasonCode::Success
        }
    }

    /// An inbound QoS 2 PUBLISH: whether to route it (a re-send before
    /// PUBREL is not routed again [MQTT-4.3.3-2]), and what its PUBREC waits
    /// for. More unacknowledged QoS 2 messages than our Receive Maximum is
    /// a protocol error (0x93) [MQTT-3.3.4-7].
    fn receive_qos2(
        &mut self,
        pid: PacketId,
        reason: ReasonCode,
    ) -> Result<(bool, Durability), Close> {
        let Some(session) = &self.session else {
            return Ok((false, Durability::Done));
        };
        let (pending, _) = self.core.with_session(session, |s| {
            if s.is_pending_qos2(pid) {
                0
            } else {
                s.incoming_qos2_len()
            }
        });
        if self.protocol.is_v5() && pending >= usize::from(self.receive_maximum()) {
            return Err(Violation::ReceiveMaximumExceeded.into());
        }
        if reason.is_error() {
            return Ok((false, Durability::Done));
        }
        Ok(self.core.with_session(session, |s| s.receive_qos2(pid)))
    }

    /// PUBACK or PUBREC, at once or once durable. 3.x has no negative
    /// acknowledgements: a refused message is acknowledged and dropped.
    fn ack_publish(
        &mut self,
        p: &Publish<'_>,
        reason: ReasonCode,
        durability: Durability,
        out: &mut BytesMut,
    ) {
        let reason = if self.protocol.is_v5() {
            reason
        } else {
            ReasonCode::Success
        };
        let (kind, name): (AckKind, &str) = match p.qos {
            QoS::AtMostOnce => return,
            QoS::AtLeastOnce => (Packet::PubAck, "PUBACK"),
            QoS::ExactlyOnce => (Packet::PubRec, "PUBREC"),
        };
        let Some(pid) = p.packet_id else {
            return;
        };
        tracing::debug!(
            "Sending {name} to {} (m{}, rc{})",
            self.client_id,
            pid.get(),
            reason as u8
        );
        self.acknowledge(Held::Pub(kind, pid, reason), durability, out);
    }
}
