//! What the broker puts in the cluster's opaque bytes: a message's 5.0
//! properties, a session record's body (subscriptions and replay cursor),
//! and a session handed over on a kick. A version byte leads each; a
//! decode error is an answer, never a panic.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use culex_codec::{PacketId, QoS, SubscriptionOptions};

use crate::core::message::{Message, MessageProps};
use crate::core::store::{OutboundState, SessionSnapshot};

const VERSION: u8 = 1;

/// Bytes that do not decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("malformed cluster data")]
pub(crate) struct Malformed;

type Result<T> = std::result::Result<T, Malformed>;

/// A subscription as a session record keeps it.
pub(crate) type Subscription = (String, SubscriptionOptions, Option<u32>);

/// The broker's part of a session record.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct RecordBody {
    /// Every durable message stored before this time (ms since the epoch)
    /// that matched the session was acknowledged by its client: a node
    /// that rebuilds the session replays from here.
    pub cursor_ms: u64,
    pub subscriptions: Vec<Subscription>,
}

/// Milliseconds since the epoch of a point in monotonic time.
pub(crate) fn unix_ms(at: Instant, now: Instant) -> u64 {
    let wall = SystemTime::now()
        .checked_sub(now.saturating_duration_since(at))
        .unwrap_or(UNIX_EPOCH);
    u64::try_from(
        wall.duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis(),
    )
    .unwrap_or(u64::MAX)
}

/// The wall-clock time of `ms` since the epoch.
pub(crate) fn system_time(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms)
}

pub(crate) fn encode_record(body: &RecordBody) -> Bytes {
    let mut out = BytesMut::new();
    out.put_u8(VERSION);
    out.put_u64(body.cursor_ms);
    put_subscriptions(&mut out, &body.subscriptions);
    out.freeze()
}

pub(crate) fn decode_record(mut bytes: Bytes) -> Result<RecordBody> {
    if bytes.is_empty() {
        return Ok(RecordBody::default());
    }
    version(&mut bytes)?;
    let cursor_ms = u64_(&mut bytes)?;
    let subscriptions = get_subscriptions(&mut bytes)?;
    Ok(RecordBody {
        cursor_ms,
        subscriptions,
    })
}

/// A session handed over on a kick. `complete`: every message it held is
/// in it; otherwise (too large for one NATS message) only its
/// subscriptions are, and the new owner replays from the cursor.
pub(crate) fn encode_session(saved: &SessionSnapshot, complete: bool, now: Instant) -> Bytes {
    let mut out = BytesMut::new();
    out.put_u8(VERSION);
    out.put_u8(u8::from(complete));
    put_expiry(&mut out, saved.expiry_interval);
    put_subscriptions(&mut out, &saved.subscriptions);
    if !complete {
        return out.freeze();
    }
    out.put_u32(len32(saved.outbound.len()));
    for (id, msg, qos, state) in &saved.outbound {
        out.put_u16(id.get());
        out.put_u8(*qos as u8);
        out.put_u8(u8::from(*state == OutboundState::AwaitingComp));
        put_message(&mut out, msg, now);
    }
    out.put_u32(len32(saved.queued.len()));
    for (msg, qos) in &saved.queued {
        out.put_u8(*qos as u8);
        put_message(&mut out, msg, now);
    }
    out.put_u32(len32(saved.inbound_qos2.len()));
    for id in &saved.inbound_qos2 {
        out.put_u16(id.get());
    }
    out.freeze()
}

/// A handed-over session and whether it is complete.
pub(crate) fn decode_session(
    mut bytes: Bytes,
    client_id: &str,
    now: Instant,
) -> Result<(SessionSnapshot, bool)> {
    version(&mut bytes)?;
    let complete = u8_(&mut bytes)? == 1;
    let mut saved = SessionSnapshot {
        client_id: client_id.to_owned(),
        expiry_interval: get_expiry(&mut bytes)?,
        subscriptions: get_subscriptions(&mut bytes)?,
        ..SessionSnapshot::default()
    };
    if !complete {
        return Ok((saved, false));
    }
    for _ in 0..u32_(&mut bytes)? {
        let id = PacketId::new(u16_(&mut bytes)?).ok_or(Malformed)?;
        let qos = qos(&mut bytes)?;
        let state = if u8_(&mut bytes)? == 1 {
            OutboundState::AwaitingComp
        } else {
            OutboundState::AwaitingAck
        };
        saved
            .outbound
            .push((id, get_message(&mut bytes, now)?, qos, state));
    }
    for _ in 0..u32_(&mut bytes)? {
        let qos = qos(&mut bytes)?;
        saved.queued.push((get_message(&mut bytes, now)?, qos));
    }
    for _ in 0..u32_(&mut bytes)? {
        let id = PacketId::new(u16_(&mut bytes)?).ok_or(Malformed)?;
        saved.inbound_qos2.push(id);
    }
    Ok((saved, true))
}

/// A message as the cluster carries it.
pub(crate) fn to_cluster(msg: &Message, now: Instant) -> culex_cluster::Message {
    let mut props = BytesMut::new();
    if let Some(p) = &msg.props {
        put_props(&mut props, p, msg.remaining_expiry(now));
    }
    culex_cluster::Message {
        topic: msg.topic.to_string(),
        payload: msg.payload.clone(),
        qos: msg.qos,
        retain: msg.retain,
        properties: props.freeze(),
    }
}

/// A message from the cluster, arrived `now`, published by `origin`.
pub(crate) fn from_cluster(
    msg: culex_cluster::Message,
    origin: Option<&str>,
    now: Instant,
) -> Result<Message> {
    let mut props = msg.properties;
    let props = if props.is_empty() {
        None
    } else {
        Some(Box::new(get_props(&mut props)?))
    };
    Ok(Message {
        topic: Arc::from(msg.topic.as_str()),
        payload: msg.payload,
        qos: msg.qos,
        retain: msg.retain,
        props,
        received: now,
        origin: origin.filter(|o| !o.is_empty()).map(Arc::from),
    })
}

fn put_message(out: &mut BytesMut, msg: &Message, now: Instant) {
    put_str(out, &msg.topic);
    put_bytes(out, &msg.payload);
    out.put_u8(msg.qos as u8 | (u8::from(msg.retain) << 2));
    put_str(out, msg.origin.as_deref().unwrap_or(""));
    let mut props = BytesMut::new();
    if let Some(p) = &msg.props {
        put_props(&mut props, p, msg.remaining_expiry(now));
    }
    put_bytes(out, &props);
}

fn get_message(bytes: &mut Bytes, now: Instant) -> Result<Message> {
    let topic = get_str(bytes)?;
    let payload = get_bytes(bytes)?;
    let flags = u8_(bytes)?;
    let origin = get_str(bytes)?;
    let properties = get_bytes(bytes)?;
    let msg = culex_cluster::Message {
        topic,
        payload,
        qos: QoS::from_u8(flags & 0b11).ok_or(Malformed)?,
        retain: flags & 0b100 != 0,
        properties,
    };
    from_cluster(msg, Some(&origin), now)
}

/// 5.0 properties; the expiry interval is what is left of it.
fn put_props(out: &mut BytesMut, p: &MessageProps, expiry: Option<u32>) {
    out.put_u8(VERSION);
    let mut present = 0u8;
    for (bit, set) in [
        p.payload_format_indicator.is_some(),
        expiry.is_some(),
        p.content_type.is_some(),
        p.response_topic.is_some(),
        p.correlation_data.is_some(),
    ]
    .into_iter()
    .enumerate()
    {
        present |= u8::from(set) << bit;
    }
    out.put_u8(present);
    if let Some(v) = p.payload_format_indicator {
        out.put_u8(v);
    }
    if let Some(v) = expiry {
        out.put_u32(v);
    }
    if let Some(v) = &p.content_type {
        put_str(out, v);
    }
    if let Some(v) = &p.response_topic {
        put_str(out, v);
    }
    if let Some(v) = &p.correlation_data {
        put_bytes(out, v);
    }
    out.put_u32(len32(p.user_properties.len()));
    for (k, v) in &p.user_properties {
        put_str(out, k);
        put_str(out, v);
    }
}

fn get_props(bytes: &mut Bytes) -> Result<MessageProps> {
    version(bytes)?;
    let present = u8_(bytes)?;
    let has = |bit: u8| present & (1 << bit) != 0;
    let mut p = MessageProps::default();
    if has(0) {
        p.payload_format_indicator = Some(u8_(bytes)?);
    }
    if has(1) {
        p.message_expiry_interval = Some(u32_(bytes)?);
    }
    if has(2) {
        p.content_type = Some(get_str(bytes)?.into());
    }
    if has(3) {
        p.response_topic = Some(get_str(bytes)?.into());
    }
    if has(4) {
        p.correlation_data = Some(get_bytes(bytes)?);
    }
    for _ in 0..u32_(bytes)? {
        let k = get_str(bytes)?;
        let v = get_str(bytes)?;
        p.user_properties.push((k.into(), v.into()));
    }
    Ok(p)
}

fn put_subscriptions(out: &mut BytesMut, subs: &[Subscription]) {
    out.put_u32(len32(subs.len()));
    for (filter, options, id) in subs {
        put_str(out, filter);
        out.put_u8(options.to_byte());
        out.put_u32(id.unwrap_or(0));
    }
}

fn get_subscriptions(bytes: &mut Bytes) -> Result<Vec<Subscription>> {
    let n = u32_(bytes)?;
    let mut subs = Vec::with_capacity(usize::try_from(n).unwrap_or(0).min(1024));
    for _ in 0..n {
        let filter = get_str(bytes)?;
        let options = SubscriptionOptions::from_byte(u8_(bytes)?).ok_or(Malformed)?;
        let id = Some(u32_(bytes)?).filter(|&id| id != 0);
        subs.push((filter, options, id));
    }
    Ok(subs)
}

fn put_expiry(out: &mut BytesMut, expiry: Option<u32>) {
    match expiry {
        Some(secs) => {
            out.put_u8(1);
            out.put_u32(secs);
        }
        None => out.put_u8(0),
    }
}

fn get_expiry(bytes: &mut Bytes) -> Result<Option<u32>> {
    Ok(match u8_(bytes)? {
        0 => None,
        _ => Some(u32_(bytes)?),
    })
}

fn len32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

fn put_str(out: &mut BytesMut, s: &str) {
    put_bytes(out, s.as_bytes());
}

fn put_bytes(out: &mut BytesMut, b: &[u8]) {
    out.put_u32(len32(b.len()));
    out.put_slice(b);
}

fn get_bytes(bytes: &mut Bytes) -> Result<Bytes> {
    let n = usize::try_from(u32_(bytes)?).map_err(|_| Malformed)?;
    if bytes.remaining() < n {
        return Err(Malformed);
    }
    Ok(bytes.split_to(n))
}

fn get_str(bytes: &mut Bytes) -> Result<String> {
    String::from_utf8(get_bytes(bytes)?.to_vec()).map_err(|_| Malformed)
}

fn version(bytes: &mut Bytes) -> Result<()> {
    if u8_(bytes)? != VERSION {
        return Err(Malformed);
    }
    Ok(())
}

fn qos(bytes: &mut Bytes) -> Result<QoS> {
    QoS::from_u8(u8_(bytes)?).ok_or(Malformed)
}

fn u8_(bytes: &mut Bytes) -> Result<u8> {
    bytes.try_get_u8().map_err(|_| Malformed)
}

fn u16_(bytes: &mut Bytes) -> Result<u16> {
    bytes.try_get_u16().map_err(|_| Malformed)
}

fn u32_(bytes: &mut Bytes) -> Result<u32> {
    bytes.try_get_u32().map_err(|_| Malformed)
}

fn u64_(bytes: &mut Bytes) -> Result<u64> {
    bytes.try_get_u64().map_err(|_| Malformed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(now: Instant) -> Message {
        let mut m = Message::new("a/b", "payload", QoS::ExactlyOnce, true, now);
        m.origin = Some(Arc::from("publisher"));
        m.props = Some(Box::new(MessageProps {
            payload_format_indicator: Some(1),
            message_expiry_interval: Some(60),
            content_type: Some("text/plain".into()),
            response_topic: Some("reply/here".into()),
            correlation_data: Some(Bytes::from_static(b"\x00\x01")),
            user_properties: vec![("k".into(), "v".into()), ("k".into(), "w".into())],
        }));
        m
    }

    #[test]
    fn a_handed_over_session_decodes_as_it_was() {
        let now = Instant::now();
        let options = SubscriptionOptions {
            qos: QoS::AtLeastOnce,
            no_local: true,
            retain_as_published: true,
            retain_handling: culex_codec::RetainHandling::SendIfNew,
        };
        let id = |n| PacketId::new(n).unwrap();
        let saved = SessionSnapshot {
            client_id: "c".into(),
            expiry_interval: Some(300),
            subscriptions: vec![
                ("a/#".into(), options, Some(7)),
                ("$share/g/x".into(), options, None),
            ],
            queued: vec![(message(now), QoS::AtLeastOnce)],
            outbound: vec![
                (
                    id(1),
                    message(now),
                    QoS::ExactlyOnce,
                    OutboundState::AwaitingComp,
                ),
                (
                    id(9),
                    message(now),
                    QoS::AtLeastOnce,
                    OutboundState::AwaitingAck,
                ),
            ],
            inbound_qos2: vec![id(3)],
        };
        let bytes = encode_session(&saved, true, now);
        let (back, complete) = decode_session(bytes.clone(), "c", now).unwrap();
        assert!(complete);
        assert_eq!(back.expiry_interval, Some(300));
        assert_eq!(back.subscriptions, saved.subscriptions);
        assert_eq!(back.inbound_qos2, vec![id(3)]);
        assert_eq!(back.outbound.len(), 2);
        assert_eq!(back.outbound[0].0, id(1));
        assert_eq!(back.outbound[0].3, OutboundState::AwaitingComp);
        let (m, qos) = &back.queued[0];
        assert_eq!(*qos, QoS::AtLeastOnce);
        assert_eq!(&*m.topic, "a/b");
        assert_eq!(&m.payload[..], b"payload");
        assert!(m.retain);
        assert_eq!(m.origin.as_deref(), Some("publisher"));
        assert_eq!(m.props, message(now).props);
        // Every truncation is an error, never a panic.
        for cut in 0..bytes.len() {
            assert!(decode_session(bytes.slice(..cut), "c", now).is_err());
        }
        let partial = encode_session(&saved, false, now);
        let (back, complete) = decode_session(partial, "c", now).unwrap();
        assert!(!complete);
        assert!(back.queued.is_empty() && back.outbound.is_empty());
        assert_eq!(back.subscriptions.len(), 2);
    }

    #[test]
    fn a_record_body_round_trips() {
        let body = RecordBody {
            cursor_ms: 1_765_000_000_000,
            subscriptions: vec![("x/+".into(), SubscriptionOptions::default(), None)],
        };
        assert_eq!(decode_record(encode_record(&body)).unwrap(), body);
        assert_eq!(decode_record(Bytes::new()).unwrap(), RecordBody::default());
        assert!(decode_record(Bytes::from_static(b"\x02")).is_err());
    }

    #[test]
    fn expiry_travels_as_what_is_left() {
        let then = Instant::now();
        let m = message(then);
        let later = then + Duration::from_secs(45);
        let carried = to_cluster(&m, later);
        let back = from_cluster(carried, Some("publisher"), later).unwrap();
        let props = back.props.unwrap();
        assert_eq!(props.message_expiry_interval, Some(15));
        assert_eq!(props.user_properties.len(), 2);
    }
}
