//! Application messages as the broker keeps them: owned, shared between
//! every subscriber and queue through an `Arc`, payload never copied.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use culex_codec::packet::Publish;
use culex_codec::{Properties, QoS};

/// One application message, as published (QoS and retain as the publisher
/// sent them; each delivery picks its own QoS and retain flag).
#[derive(Debug, Clone)]
pub struct Message {
    /// The topic it was published to.
    pub topic: Arc<str>,
    /// The payload, a slice of the frame it arrived in.
    pub payload: Bytes,
    /// QoS as published.
    pub qos: QoS,
    /// RETAIN as published.
    pub retain: bool,
    /// The 5.0 properties that travel with the message; `None` when it has none
    /// (always for 3.x publishers), so a plain message costs nothing extra.
    pub props: Option<Box<MessageProps>>,
    /// When the message arrived (for Message Expiry).
    pub received: Instant,
    /// The client id of the publisher, for 5.0's no-local option.
    pub origin: Option<Arc<str>>,
}

/// The 5.0 PUBLISH properties passed from publisher to subscribers unchanged
/// (except the expiry interval, which counts down).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MessageProps {
    /// Payload Format Indicator.
    pub payload_format_indicator: Option<u8>,
    /// Message Expiry Interval in seconds, as published.
    pub message_expiry_interval: Option<u32>,
    /// Content Type.
    pub content_type: Option<Box<str>>,
    /// Response Topic.
    pub response_topic: Option<Box<str>>,
    /// Correlation Data.
    pub correlation_data: Option<Bytes>,
    /// User properties, order kept.
    pub user_properties: Vec<(Box<str>, Box<str>)>,
}

impl MessageProps {
    /// The pass-through properties of a decoded PUBLISH or will, `None` when
    /// there are none.
    pub fn from_properties(p: &Properties<'_>, frame: &Bytes) -> Option<Box<MessageProps>> {
        if p.payload_format_indicator.is_none()
            && p.message_expiry_interval.is_none()
            && p.content_type.is_none()
            && p.response_topic.is_none()
            && p.correlation_data.is_none()
            && p.user_properties.is_empty()
        {
            return None;
        }
        Some(Box::new(MessageProps {
            payload_format_indicator: p.payload_format_indicator,
            message_expiry_interval: p.message_expiry_interval,
            content_type: p.content_type.map(Box::from),
            response_topic: p.response_topic.map(Box::from),
            correlation_data: p.correlation_data.map(|d| slice_or_copy(frame, d)),
            user_properties: p
                .user_properties
                .iter()
                .map(|(k, v)| (Box::from(k), Box::from(v)))
                .collect(),
        }))
    }
}

impl Message {
    /// A message from a decoded PUBLISH whose bytes live in `frame`.
    pub fn from_publish(
        publish: &Publish<'_>,
        topic: Arc<str>,
        frame: &Bytes,
        origin: Option<Arc<str>>,
        now: Instant,
    ) -> Message {
        Message {
            topic,
            payload: slice_or_copy(frame, publish.payload),
            qos: publish.qos,
            retain: publish.retain,
            props: MessageProps::from_properties(&publish.properties, frame),
            received: now,
            origin,
        }
    }

    /// A message built by the broker itself (tests, `$SYS`).
    pub fn new(
        topic: &str,
        payload: impl Into<Bytes>,
        qos: QoS,
        retain: bool,
        now: Instant,
    ) -> Message {
        Message {
            topic: Arc::from(topic),
            payload: payload.into(),
            qos,
            retain,
            props: None,
            received: now,
            origin: None,
        }
    }

    /// When the message expires, if it has a Message Expiry Interval.
    pub fn expires_at(&self) -> Option<Instant> {
        let secs = self.props.as_ref()?.message_expiry_interval?;
        self.received
            .checked_add(Duration::from_secs(u64::from(secs)))
    }

    /// Whether the message has expired at `now` [MQTT-3.3.2-5].
    pub fn is_expired(&self, now: Instant) -> bool {
        self.expires_at().is_some_and(|at| now >= at)
    }

    /// The expiry interval to send on at `now`: the remaining lifetime
    /// [MQTT-3.3.2-6].
    pub fn remaining_expiry(&self, now: Instant) -> Option<u32> {
        let at = self.expires_at()?;
        let left = at.saturating_duration_since(now).as_secs();
        Some(u32::try_from(left).unwrap_or(u32::MAX).max(1))
    }
}

/// `sub` as a slice of `frame` when it lies inside it (no copy), else a copy.
pub(crate) fn slice_or_copy(frame: &Bytes, sub: &[u8]) -> Bytes {
    if sub.is_empty() {
        return Bytes::new();
    }
    let start = frame.as_ptr() as usize;
    let end = start.saturating_add(frame.len());
    let sub_start = sub.as_ptr() as usize;
    if sub_start >= start && sub_start.saturating_add(sub.len()) <= end {
        frame.slice_ref(sub)
    } else {
        Bytes::copy_from_slice(sub)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_is_sliced_not_copied() {
        let frame = Bytes::from_static(b"0123456789");
        let sub = frame.get(3..7).unwrap_or_default();
        let sliced = slice_or_copy(&frame, sub);
        assert_eq!(&sliced[..], b"3456");
        assert_eq!(sliced.as_ptr(), sub.as_ptr());
    }

    #[test]
    fn expiry_counts_down_and_expires() {
        let t0 = Instant::now();
        let mut m = Message::new("a", "x", QoS::AtLeastOnce, false, t0);
        assert!(!m.is_expired(t0 + Duration::from_secs(1000)));
        m.props = Some(Box::new(MessageProps {
            message_expiry_interval: Some(10),
            ..MessageProps::default()
        }));
        assert_eq!(m.remaining_expiry(t0 + Duration::from_secs(4)), Some(6));
        assert!(!m.is_expired(t0 + Duration::from_secs(9)));
        assert!(m.is_expired(t0 + Duration::from_secs(10)));
    }
}
