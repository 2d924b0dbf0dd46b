//! SUBSCRIBE and UNSUBSCRIBE, and the retained messages a subscription
//! brings.

use std::time::Instant;

use bytes::BytesMut;
use culex_codec::packet::{SubAck, Subscribe, UnsubAck, Unsubscribe};
use culex_codec::{
    Packet, PacketId, Properties, QoS, ReasonCode, RetainHandling, Seq, SubscriptionOptions,
};

use super::connection::{too_deep, Connection};
use super::error::{Close, Violation};
use super::held::{Held, HeldSubAck};
use crate::core::session::Delivery;
use crate::core::store::Durability;

impl Connection {
    pub(super) fn on_subscribe(
        &mut self,
        s: &Subscribe<'_>,
        now: Instant,
        out: &mut BytesMut,
    ) -> Result<(), Close> {
        tracing::debug!("Received SUBSCRIBE from {}", self.client_id);
        if self.session.is_none() {
            return Ok(());
        }
        let sub_id = s.properties.subscription_identifiers.iter().next();
        let mut codes = Vec::with_capacity(s.filters.len());
        let mut retained = Vec::new();
        let mut remote_retained = Vec::new();
        let mut durability = Durability::Done;
        for (filter, options) in s.filters.iter() {
            tracing::debug!("\t{} (QoS {})", filter.as_str(), options.qos as u8);
            let shared = filter.share_group().is_some();
            if shared && self.protocol.is_v5() && options.no_local {
                return Err(Violation::NoLocalOnShared.into());
            }
            let (code, d) = self.subscribe_one(
                filter.as_str(),
                options,
                shared,
                sub_id,
                now,
                &mut retained,
                &mut remote_retained,
            );
            tracing::debug!("{} {} {}", self.client_id, code as u8, filter.as_str());
            codes.push(code);
            durability = durability.and(d);
        }
        // The retained messages follow the SUBACK, held or not.
        let suback = HeldSubAck {
            packet_id: s.packet_id,
            codes,
            retained,
            remote_retained,
            sub_id,
        };
        self.acknowledge(Held::Sub(Box::new(suback)), durability, out);
        Ok(())
    }

    /// One filter of a SUBSCRIBE: its SUBACK code, what the SUBACK waits
    /// for, and the retained messages it brings (into `retained`).
    #[allow(clippy::too_many_arguments)]
    fn subscribe_one(
        &mut self,
        filter: &str,
        options: SubscriptionOptions,
        shared: bool,
        sub_id: Option<u32>,
        now: Instant,
        retained: &mut Vec<(std::sync::Arc<crate::core::message::Message>, QoS)>,
        remote_retained: &mut Vec<(String, QoS)>,
    ) -> (ReasonCode, Durability) {
        let v5 = self.protocol.is_v5();
        // With a listener mount point, filters live under it.
        let full = self.mounted_filter(filter);
        let matched = crate::core::subscriptions::split_shared(&full).1;
        let limits = &self.core.config().limits;
        if too_deep(matched, limits.max_topic_levels) {
            let code = if v5 {
                ReasonCode::TopicFilterInvalid
            } else {
                ReasonCode::UnspecifiedError
            };
            return (code, Durability::Done);
        }
        let policy = self.core.policy(self.listener);
        if !policy.can_subscribe(&self.client_id, self.username.as_deref(), matched) {
            let code = if v5 {
                ReasonCode::NotAuthorized
            } else {
                ReasonCode::UnspecifiedError
            };
            return (code, Durability::Done);
        }
        let mut granted = options;
        granted.qos = options.qos.min(limits.max_qos);
        if self.bridge {
            granted.no_local = true;
            granted.retain_as_published = true;
        }
        let Some(session) = &self.session else {
            return (ReasonCode::UnspecifiedError, Durability::Done);
        };
        let (is_new, durability) = self.core.subscribe(session, &full, granted, sub_id);
        // Retained messages go out on subscribe with RETAIN set [MQTT-3.3.1-6],
        // [MQTT-3.3.1-8], as retain handling says [MQTT-3.3.1-9..11].
        // No retained messages on a shared subscribe [MQTT 5.0, 4.8.2].
        let send = !shared
            && match granted.retain_handling {
                RetainHandling::SendAtSubscribe => true,
                RetainHandling::SendIfNew => is_new,
                RetainHandling::DoNotSend => false,
            };
        if send {
            for m in self.core.retained_matching(matched, now) {
                retained.push((m, granted.qos));
            }
            // In a cluster the cluster holds them (`$SYS` aside): fetched
            // once the SUBACK is out.
            if self.core.is_clustered() {
                remote_retained.push((matched.to_owned(), granted.qos));
            }
        }
        let code = match granted.qos {
            QoS::AtMostOnce => ReasonCode::Success,
            QoS::AtLeastOnce => ReasonCode::GrantedQoS1,
            QoS::ExactlyOnce => ReasonCode::GrantedQoS2,
        };
        (code, durability)
    }

    /// Sends a SUBACK and then hands the session the retained messages its
    /// subscribe matched.
    pub(super) fn send_suback(&mut self, suback: HeldSubAck, out: &mut BytesMut) {
        self.encode(
            &Packet::SubAck(SubAck {
                packet_id: suback.packet_id,
                properties: Properties::default(),
                reasons: Seq::Items(&suback.codes),
            }),
            out,
        );
        tracing::debug!("Sending SUBACK to {}", self.client_id);
        let Some(session) = &self.session else {
            return;
        };
        let sub_id = suback.sub_id;
        let deliveries = suback.retained.into_iter().map(|(msg, qos)| {
            let qos = msg.qos.min(qos);
            Delivery::with(msg, qos, true, sub_id.into_iter().collect(), None)
        });
        self.core
            .deliver_retained(session.handle(), deliveries, self.last_seen);
        for (filter, qos) in suback.remote_retained {
            self.core
                .fetch_retained(session.handle(), &filter, qos, sub_id);
        }
    }

    pub(super) fn on_unsubscribe(&mut self, u: &Unsubscribe<'_>, out: &mut BytesMut) {
        tracing::debug!("Received UNSUBSCRIBE from {}", self.client_id);
        let Some(session) = self.session.clone() else {
            return;
        };
        let mut codes = Vec::with_capacity(u.filters.len());
        let mut durability = Durability::Done;
        for filter in u.filters.iter() {
            tracing::debug!("\t{}", filter.as_str());
            let full = self.mounted_filter(filter.as_str());
            let (existed, d) = self.core.unsubscribe(&session, &full);
            durability = durability.and(d);
            tracing::debug!("{} {}", self.client_id, filter.as_str());
            codes.push(if existed {
                ReasonCode::Success
            } else {
                ReasonCode::NoSubscriptionExisted
            });
        }
        self.acknowledge(Held::Unsub(u.packet_id, codes), durability, out);
    }

    pub(super) fn send_unsuback(
        &mut self,
        packet_id: PacketId,
        codes: &[ReasonCode],
        out: &mut BytesMut,
    ) {
        let reasons = if self.protocol.is_v5() {
            Seq::Items(codes)
        } else {
            Seq::Items(&[][..])
        };
        self.encode(
            &Packet::UnsubAck(UnsubAck {
                packet_id,
                properties: Properties::default(),
                reasons,
            }),
            out,
        );
        tracing::debug!("Sending UNSUBACK to {}", self.client_id);
    }

    /// `filter` under the listener's mount point (`$share/G/` kept in front).
    fn mounted_filter(&self, filter: &str) -> String {
        let Some(mount) = &self.mount else {
            return filter.to_owned();
        };
        match crate::core::subscriptions::split_shared(filter) {
            (Some(group), f) => format!("$share/{group}/{mount}{f}"),
            (None, f) => format!("{mount}{f}"),
        }
    }
}
