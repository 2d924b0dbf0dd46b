//! What the session has ready, encoded for the client.

use std::time::Instant;

use bytes::BytesMut;
use culex_codec::packet::Publish;
use culex_codec::topic::TopicName;
use culex_codec::{Packet, PacketId, Properties, ReasonCode, Seq};

use super::connection::Connection;
use crate::core::drops::DropReason;
use crate::core::session::{Delivery, Outgoing};

impl Connection {
    /// Moves ready deliveries from the session into `out`, up to
    /// `high_water` bytes. Returns `true` when it stopped there with
    /// deliveries possibly still waiting (no wake will come for them: the
    /// session only wakes a connection that had nothing ready).
    pub fn poll_transmit(&mut self, now: Instant, out: &mut BytesMut, high_water: usize) -> bool {
        let Some(session) = self.session.clone() else {
            return false;
        };
        let mut items = std::mem::take(&mut self.outgoing);
        let mut more = true;
        while out.len() < high_water {
            let budget = high_water.saturating_sub(out.len());
            if !self.core.take_ready(&session, &mut items, 256, budget, now) {
                // Taken over: this connection is on its way out.
                more = false;
                break;
            }
            if items.is_empty() {
                more = false;
                break;
            }
            for item in items.drain(..) {
                self.encode_outgoing(item, now, out);
            }
        }
        self.outgoing = items;
        let stats = self.core.stats();
        self.sent
            .flush(&stats.publish_sent, &stats.publish_sent_bytes);
        self.count_packets();
        more
    }

    fn encode_outgoing(&mut self, item: Outgoing, now: Instant, out: &mut BytesMut) {
        match item {
            Outgoing::PubRel(id) => {
                tracing::debug!("Sending PUBREL to {} (m{})", self.client_id, id.get());
                self.send_ack(Packet::PubRel, id, ReasonCode::Success, out);
            }
            Outgoing::Publish {
                packet_id,
                dup,
                delivery,
            } => self.encode_publish(packet_id, dup, &delivery, now, out),
        }
    }

    fn encode_publish(
        &mut self,
        packet_id: Option<PacketId>,
        dup: bool,
        delivery: &Delivery,
        now: Instant,
        out: &mut BytesMut,
    ) {
        let msg = &delivery.msg;
        // Clients behind a mount point see topics without it.
        let shown = match &self.mount {
            Some(mount) => msg.topic.strip_prefix(&**mount),
            None => Some(&*msg.topic),
        };
        let Some(Ok(topic)) = shown.map(TopicName::new) else {
            self.abandon(packet_id, None, now);
            return;
        };
        if self.protocol.is_v5() {
            if !self.encode_publish_v5(packet_id, dup, topic, delivery, now, out) {
                return;
            }
        } else {
            self.log_publish(packet_id, dup, delivery);
            // 3.x has no properties: the codec writes its PUBLISH without
            // building a `Packet` (the common case, per subscriber per message).
            self.encode_with(culex_codec::PacketType::Publish, out, |protocol, out| {
                culex_codec::encode_plain_publish(
                    protocol,
                    dup,
                    delivery.qos,
                    delivery.retain,
                    topic,
                    packet_id,
                    &msg.payload,
                    out,
                )
            });
        }
        self.sent.add(delivery.qos, msg.payload.len());
    }

    /// A 5.0 PUBLISH with the message's properties and an outbound topic
    /// alias; `false` when it is larger than the client's Maximum Packet
    /// Size [MQTT-3.1.2-24] (then abandoned, not sent).
    #[allow(clippy::too_many_arguments)]
    fn encode_publish_v5(
        &mut self,
        packet_id: Option<PacketId>,
        dup: bool,
        mut topic: TopicName<'_>,
        delivery: &Delivery,
        now: Instant,
        out: &mut BytesMut,
    ) -> bool {
        let msg = &delivery.msg;
        let mut user: Vec<(&str, &str)> = Vec::new();
        let mut properties = Properties::default();
        if let Some(mp) = &msg.props {
            properties.payload_format_indicator = mp.payload_format_indicator;
            properties.content_type = mp.content_type.as_deref();
            properties.response_topic = mp.response_topic.as_deref();
            properties.correlation_data = mp.correlation_data.as_deref();
            user.extend(mp.user_properties.iter().map(|(k, v)| (&**k, &**v)));
        }
        properties.message_expiry_interval = msg.remaining_expiry(now);
        // Topic aliases towards the client, within its maximum
        // [MQTT-3.3.2-11]: the first message on a topic carries the topic
        // and a new alias, later ones only the alias.
        if self.out_alias_max > 0 {
            let aliases = &mut self.aliases.get_or_insert_with(Box::default).outbound;
            if let Some(&alias) = aliases.get(&msg.topic) {
                properties.topic_alias = Some(alias);
                topic = TopicName::EMPTY;
            } else if aliases.len() < usize::from(self.out_alias_max) {
                let alias = u16::try_from(aliases.len() + 1).unwrap_or(u16::MAX);
                aliases.insert(msg.topic.clone(), alias);
                properties.topic_alias = Some(alias);
            }
        }
        properties.subscription_identifiers = Seq::Items(delivery.subscription_ids());
        properties.user_properties = Seq::Items(&user);
        let packet = Packet::Publish(Publish {
            dup,
            qos: delivery.qos,
            retain: delivery.retain,
            topic,
            packet_id,
            properties,
            payload: &msg.payload,
        });
        let too_big = self.client_max_packet_size.is_some_and(|max| {
            packet
                .encoded_len(self.protocol)
                .map_or(true, |len| len > max as usize)
        });
        if too_big {
            self.abandon(packet_id, Some(DropReason::PacketTooLarge), now);
            return false;
        }
        self.log_publish(packet_id, dup, delivery);
        self.encode(&packet, out);
        true
    }

    fn log_publish(&self, packet_id: Option<PacketId>, dup: bool, delivery: &Delivery) {
        tracing::debug!(
            "Sending PUBLISH to {} (d{}, q{}, r{}, m{}, '{}', ... ({} bytes))",
            self.client_id,
            u8::from(dup),
            delivery.qos as u8,
            u8::from(delivery.retain),
            packet_id.map_or(0, PacketId::get),
            delivery.msg.topic,
            delivery.msg.payload.len()
        );
    }

    /// Forgets a message that cannot be sent (counted as a drop with
    /// `reason`).
    fn abandon(&self, packet_id: Option<PacketId>, reason: Option<DropReason>, now: Instant) {
        if let Some(session) = &self.session {
            self.core.abandon(session, packet_id, reason, now);
        }
    }
}
