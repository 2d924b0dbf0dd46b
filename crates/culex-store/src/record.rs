//! The records the store keeps, and their byte encoding inside the engine.
//!
//! Every value starts with a format byte ([`FORMAT`]) so that a later version
//! can read older records. Decoding never panics: a short or malformed value
//! is a [`DecodeError`], and the caller sets that record aside.

use bytes::Bytes;

/// The format byte at the start of every encoded value.
pub(crate) const FORMAT: u8 = 1;

/// Quality of service of a stored message or delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Qos {
    /// QoS 0.
    AtMostOnce,
    /// QoS 1.
    AtLeastOnce,
    /// QoS 2.
    ExactlyOnce,
}

impl Qos {
    /// The QoS as its MQTT number.
    pub fn as_u8(self) -> u8 {
        match self {
            Qos::AtMostOnce => 0,
            Qos::AtLeastOnce => 1,
            Qos::ExactlyOnce => 2,
        }
    }

    /// The QoS for an MQTT number, `None` for anything but 0, 1 and 2.
    pub fn from_u8(n: u8) -> Option<Qos> {
        match n {
            0 => Some(Qos::AtMostOnce),
            1 => Some(Qos::AtLeastOnce),
            2 => Some(Qos::ExactlyOnce),
            _ => None,
        }
    }
}

/// An application message as stored: retained, queued, in flight or a will.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMessage {
    /// The topic it was published to.
    pub topic: String,
    /// The payload.
    pub payload: Bytes,
    /// QoS as published.
    pub qos: Qos,
    /// RETAIN as published.
    pub retain: bool,
    /// MQTT 5.0 properties that travel with the message, if any.
    pub props: Option<StoredProps>,
    /// When the broker received it, in milliseconds since the Unix epoch
    /// (wall clock, so that message expiry survives a restart).
    pub received_unix_ms: u64,
    /// The publisher's client id (for 5.0's no-local option), if known.
    pub origin: Option<String>,
}

/// The MQTT 5.0 properties kept with a message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoredProps {
    /// Payload Format Indicator.
    pub payload_format_indicator: Option<u8>,
    /// Message Expiry Interval in seconds, as published.
    pub message_expiry_interval: Option<u32>,
    /// Content Type.
    pub content_type: Option<String>,
    /// Response Topic.
    pub response_topic: Option<String>,
    /// Correlation Data.
    pub correlation_data: Option<Bytes>,
    /// User properties, in order.
    pub user_properties: Vec<(String, String)>,
}

/// A subscription of a stored session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSubscription {
    /// The topic filter as subscribed (including any `$share/GROUP/` prefix).
    pub filter: String,
    /// The subscription options byte as MQTT 5.0 encodes it (bits 0-1 QoS,
    /// bit 2 no-local, bit 3 retain-as-published, bits 4-5 retain handling).
    pub options: u8,
    /// The subscription identifier, if one was given.
    pub identifier: Option<u32>,
}

/// A message waiting in a session's queue, with the QoS it will be sent at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedMessage {
    /// The QoS of the delivery (the lower of publish and subscription QoS).
    pub qos: Qos,
    /// The message.
    pub message: StoredMessage,
}

/// Where an outbound QoS 1/2 message stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutboundPhase {
    /// PUBLISH sent, waiting for PUBACK (QoS 1) or PUBREC (QoS 2).
    AwaitingAck,
    /// PUBREC received and PUBREL sent, waiting for PUBCOMP.
    AwaitingComp,
}

/// An outbound message in flight to a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundRecord {
    /// Its packet identifier (non-zero).
    pub packet_id: u16,
    /// Where it stands.
    pub phase: OutboundPhase,
    /// The message and delivery QoS, needed to re-send the PUBLISH while
    /// [`OutboundPhase::AwaitingAck`]; `None` when the caller did not keep it
    /// (a PUBREL needs only the packet id).
    pub message: Option<QueuedMessage>,
}

/// A will that waits for its delay to pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DelayedWill {
    /// The will message.
    pub message: StoredMessage,
    /// When to publish it, in milliseconds since the Unix epoch.
    pub publish_at_unix_ms: u64,
}

/// A stored session and everything that hangs off it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoredSession {
    /// The client id.
    pub client_id: String,
    /// Whether a session record exists (`false` when only records hanging
    /// off it survived; the session is then restored with no expiry).
    pub has_record: bool,
    /// Session expiry interval in seconds after disconnect; `None`: never.
    pub expiry_interval: Option<u32>,
    /// When the session record was last written, in Unix milliseconds (the
    /// start of the expiry countdown for a session that was offline).
    pub updated_unix_ms: u64,
    /// Its subscriptions, ordered by filter.
    pub subscriptions: Vec<StoredSubscription>,
    /// Its queued messages, oldest first.
    pub queued: Vec<QueuedMessage>,
    /// Its outbound messages in flight, by packet id.
    pub outbound: Vec<OutboundRecord>,
    /// Packet ids of inbound QoS 2 messages received but not yet released
    /// (PUBREC sent, PUBREL not yet received).
    pub inbound_qos2: Vec<u16>,
    /// Its will, if one waits for its delay.
    pub will: Option<DelayedWill>,
}

/// Why a stored value could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The value ended before a field did.
    #[error("record truncated")]
    Truncated,
    /// The value starts with a format byte this version does not know.
    #[error("unknown record format {0}")]
    UnknownFormat(u8),
    /// A field holds a value that is not allowed.
    #[error("invalid {0}")]
    Invalid(&'static str),
    /// Bytes are left over after the last field.
    #[error("trailing bytes after record")]
    Trailing,
}

// ---- encoding --------------------------------------------------------------

/// Appends to a value being encoded.
pub(crate) struct Writer(pub(crate) Vec<u8>);

impl Writer {
    pub(crate) fn new() -> Writer {
        Writer(vec![FORMAT])
    }
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    fn bytes(&mut self, v: &[u8]) {
        // Lengths beyond u32 cannot occur: MQTT caps a packet at 256 MiB.
        self.u32(u32::try_from(v.len()).unwrap_or(u32::MAX));
        self.0.extend_from_slice(v);
    }
    fn opt_u32(&mut self, v: Option<u32>) {
        match v {
            Some(v) => {
                self.u8(1);
                self.u32(v);
            }
            None => self.u8(0),
        }
    }
}

/// Reads a value being decoded.
pub(crate) struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    pub(crate) fn new(v: &'a [u8]) -> Result<Reader<'a>, DecodeError> {
        let mut r = Reader(v);
        match r.u8()? {
            FORMAT => Ok(r),
            other => Err(DecodeError::UnknownFormat(other)),
        }
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.0.len() < n {
            return Err(DecodeError::Truncated);
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8, DecodeError> {
        let b = self.take(1)?;
        b.first().copied().ok_or(DecodeError::Truncated)
    }
    fn u32(&mut self) -> Result<u32, DecodeError> {
        let b: [u8; 4] = self
            .take(4)?
            .try_into()
            .map_err(|_| DecodeError::Truncated)?;
        Ok(u32::from_be_bytes(b))
    }
    fn u64(&mut self) -> Result<u64, DecodeError> {
        let b: [u8; 8] = self
            .take(8)?
            .try_into()
            .map_err(|_| DecodeError::Truncated)?;
        Ok(u64::from_be_bytes(b))
    }
    fn bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        let n = self.u32()? as usize;
        self.take(n)
    }
    fn string(&mut self, what: &'static str) -> Result<String, DecodeError> {
        let b = self.bytes()?;
        std::str::from_utf8(b)
            .map(str::to_owned)
            .map_err(|_| DecodeError::Invalid(what))
    }
    fn flag(&mut self, what: &'static str) -> Result<bool, DecodeError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(DecodeError::Invalid(what)),
        }
    }
    fn opt_u32(&mut self, what: &'static str) -> Result<Option<u32>, DecodeError> {
        Ok(if self.flag(what)? {
            Some(self.u32()?)
        } else {
            None
        })
    }
    fn qos(&mut self) -> Result<Qos, DecodeError> {
        Qos::from_u8(self.u8()?).ok_or(DecodeError::Invalid("qos"))
    }
    pub(crate) fn finish(self) -> Result<(), DecodeError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::Trailing)
        }
    }
}

const HAS_PROPS: u8 = 1 << 3;
const HAS_ORIGIN: u8 = 1 << 4;
const RETAIN: u8 = 1 << 2;

fn put_message(w: &mut Writer, m: &StoredMessage) {
    let mut flags = m.qos.as_u8();
    if m.retain {
        flags |= RETAIN;
    }
    if m.props.is_some() {
        flags |= HAS_PROPS;
    }
    if m.origin.is_some() {
        flags |= HAS_ORIGIN;
    }
    w.u8(flags);
    w.u64(m.received_unix_ms);
    w.bytes(m.topic.as_bytes());
    w.bytes(&m.payload);
    if let Some(origin) = &m.origin {
        w.bytes(origin.as_bytes());
    }
    if let Some(p) = &m.props {
        put_props(w, p);
    }
}

fn put_props(w: &mut Writer, p: &StoredProps) {
    match p.payload_format_indicator {
        Some(v) => {
            w.u8(1);
            w.u8(v);
        }
        None => w.u8(0),
    }
    w.opt_u32(p.message_expiry_interval);
    for s in [&p.content_type, &p.response_topic] {
        match s {
            Some(s) => {
                w.u8(1);
                w.bytes(s.as_bytes());
            }
            None => w.u8(0),
        }
    }
    match &p.correlation_data {
        Some(d) => {
            w.u8(1);
            w.bytes(d);
        }
        None => w.u8(0),
    }
    w.u32(u32::try_from(p.user_properties.len()).unwrap_or(u32::MAX));
    for (k, v) in &p.user_properties {
        w.bytes(k.as_bytes());
        w.bytes(v.as_bytes());
    }
}

fn get_message(r: &mut Reader<'_>) -> Result<StoredMessage, DecodeError> {
    let flags = r.u8()?;
    if flags & !(0b11 | RETAIN | HAS_PROPS | HAS_ORIGIN) != 0 {
        return Err(DecodeError::Invalid("message flags"));
    }
    let qos = Qos::from_u8(flags & 0b11).ok_or(DecodeError::Invalid("qos"))?;
    let received_unix_ms = r.u64()?;
    let topic = r.string("topic")?;
    let payload = Bytes::copy_from_slice(r.bytes()?);
    let origin = if flags & HAS_ORIGIN != 0 {
        Some(r.string("origin")?)
    } else {
        None
    };
    let props = if flags & HAS_PROPS != 0 {
        Some(get_props(r)?)
    } else {
        None
    };
    Ok(StoredMessage {
        topic,
        payload,
        qos,
        retain: flags & RETAIN != 0,
        props,
        received_unix_ms,
        origin,
    })
}

fn get_props(r: &mut Reader<'_>) -> Result<StoredProps, DecodeError> {
    let payload_format_indicator = if r.flag("payload format flag")? {
        Some(r.u8()?)
    } else {
        None
    };
    let message_expiry_interval = r.opt_u32("expiry flag")?;
    let content_type = if r.flag("content type flag")? {
        Some(r.string("content type")?)
    } else {
        None
    };
    let response_topic = if r.flag("response topic flag")? {
        Some(r.string("response topic")?)
    } else {
        None
    };
    let correlation_data = if r.flag("correlation data flag")? {
        Some(Bytes::copy_from_slice(r.bytes()?))
    } else {
        None
    };
    let n = r.u32()?;
    let mut user_properties = Vec::new();
    for _ in 0..n {
        let k = r.string("user property")?;
        let v = r.string("user property")?;
        user_properties.push((k, v));
    }
    Ok(StoredProps {
        payload_format_indicator,
        message_expiry_interval,
        content_type,
        response_topic,
        correlation_data,
        user_properties,
    })
}

/// Encodes a retained message or a will's message.
pub(crate) fn encode_message(m: &StoredMessage) -> Vec<u8> {
    let mut w = Writer::new();
    put_message(&mut w, m);
    w.0
}

/// Decodes what [`encode_message`] wrote.
pub(crate) fn decode_message(v: &[u8]) -> Result<StoredMessage, DecodeError> {
    let mut r = Reader::new(v)?;
    let m = get_message(&mut r)?;
    r.finish()?;
    Ok(m)
}

/// Encodes a queued message.
pub(crate) fn encode_queued(q: &QueuedMessage) -> Vec<u8> {
    let mut w = Writer::new();
    w.u8(q.qos.as_u8());
    put_message(&mut w, &q.message);
    w.0
}

/// Decodes what [`encode_queued`] wrote.
pub(crate) fn decode_queued(v: &[u8]) -> Result<QueuedMessage, DecodeError> {
    let mut r = Reader::new(v)?;
    let qos = r.qos()?;
    let message = get_message(&mut r)?;
    r.finish()?;
    Ok(QueuedMessage { qos, message })
}

/// The session record's fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SessionValue {
    pub(crate) expiry_interval: Option<u32>,
    pub(crate) updated_unix_ms: u64,
}

pub(crate) fn encode_session(s: SessionValue) -> Vec<u8> {
    let mut w = Writer::new();
    w.opt_u32(s.expiry_interval);
    w.u64(s.updated_unix_ms);
    w.0
}

pub(crate) fn decode_session(v: &[u8]) -> Result<SessionValue, DecodeError> {
    let mut r = Reader::new(v)?;
    let expiry_interval = r.opt_u32("expiry flag")?;
    let updated_unix_ms = r.u64()?;
    r.finish()?;
    Ok(SessionValue {
        expiry_interval,
        updated_unix_ms,
    })
}

/// Encodes a subscription's options and identifier (the filter is in the key).
pub(crate) fn encode_subscription(options: u8, identifier: Option<u32>) -> Vec<u8> {
    let mut w = Writer::new();
    w.u8(options);
    w.opt_u32(identifier);
    w.0
}

pub(crate) fn decode_subscription(v: &[u8]) -> Result<(u8, Option<u32>), DecodeError> {
    let mut r = Reader::new(v)?;
    let options = r.u8()?;
    let identifier = r.opt_u32("identifier flag")?;
    r.finish()?;
    Ok((options, identifier))
}

/// Encodes an outbound record's phase and message (the packet id is in the key).
pub(crate) fn encode_outbound(phase: OutboundPhase, message: Option<&QueuedMessage>) -> Vec<u8> {
    let mut w = Writer::new();
    w.u8(match phase {
        OutboundPhase::AwaitingAck => 1,
        OutboundPhase::AwaitingComp => 2,
    });
    match message {
        Some(q) => {
            w.u8(1);
            w.u8(q.qos.as_u8());
            put_message(&mut w, &q.message);
        }
        None => w.u8(0),
    }
    w.0
}

pub(crate) fn decode_outbound(
    v: &[u8],
) -> Result<(OutboundPhase, Option<QueuedMessage>), DecodeError> {
    let mut r = Reader::new(v)?;
    let phase = match r.u8()? {
        1 => OutboundPhase::AwaitingAck,
        2 => OutboundPhase::AwaitingComp,
        _ => return Err(DecodeError::Invalid("outbound phase")),
    };
    let message = if r.flag("outbound message flag")? {
        let qos = r.qos()?;
        Some(QueuedMessage {
            qos,
            message: get_message(&mut r)?,
        })
    } else {
        None
    };
    r.finish()?;
    Ok((phase, message))
}

pub(crate) fn encode_will(w_: &DelayedWill) -> Vec<u8> {
    let mut w = Writer::new();
    w.u64(w_.publish_at_unix_ms);
    put_message(&mut w, &w_.message);
    w.0
}

pub(crate) fn decode_will(v: &[u8]) -> Result<DelayedWill, DecodeError> {
    let mut r = Reader::new(v)?;
    let publish_at_unix_ms = r.u64()?;
    let message = get_message(&mut r)?;
    r.finish()?;
    Ok(DelayedWill {
        message,
        publish_at_unix_ms,
    })
}

/// The (empty) value of an inbound QoS 2 record.
pub(crate) fn encode_marker() -> Vec<u8> {
    Writer::new().0
}

pub(crate) fn decode_marker(v: &[u8]) -> Result<(), DecodeError> {
    Reader::new(v)?.finish()
}

// ---- keys ------------------------------------------------------------------

/// The key prefix of every per-session record: the client id's length (u16,
/// big-endian) then its bytes, so that one client's records are contiguous
/// and no client id is a prefix of another's range.
pub(crate) fn client_prefix(client_id: &str) -> Vec<u8> {
    let b = client_id.as_bytes();
    let mut k = Vec::with_capacity(2 + b.len() + 8);
    k.extend_from_slice(&u16::try_from(b.len()).unwrap_or(u16::MAX).to_be_bytes());
    k.extend_from_slice(b);
    k
}

/// Splits a per-session key into the client id and the rest.
pub(crate) fn split_client_key(key: &[u8]) -> Result<(String, &[u8]), DecodeError> {
    let (len, rest) = key.split_at_checked(2).ok_or(DecodeError::Truncated)?;
    let len = u16::from_be_bytes([
        len.first().copied().unwrap_or(0),
        len.get(1).copied().unwrap_or(0),
    ]) as usize;
    let (id, rest) = rest.split_at_checked(len).ok_or(DecodeError::Truncated)?;
    let id = std::str::from_utf8(id).map_err(|_| DecodeError::Invalid("client id"))?;
    Ok((id.to_owned(), rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full_message() -> StoredMessage {
        StoredMessage {
            topic: "a/b/é".into(),
            payload: Bytes::from_static(b"\x00\x01hello"),
            qos: Qos::ExactlyOnce,
            retain: true,
            props: Some(StoredProps {
                payload_format_indicator: Some(1),
                message_expiry_interval: Some(60),
                content_type: Some("text/plain".into()),
                response_topic: Some("r/t".into()),
                correlation_data: Some(Bytes::from_static(b"\xff")),
                user_properties: vec![("k".into(), "v".into()), ("k".into(), "w".into())],
            }),
            received_unix_ms: 1_700_000_000_123,
            origin: Some("pub-1".into()),
        }
    }

    #[test]
    fn message_round_trips_with_and_without_props() {
        let m = full_message();
        assert_eq!(decode_message(&encode_message(&m)), Ok(m.clone()));
        let plain = StoredMessage {
            props: None,
            origin: None,
            retain: false,
            qos: Qos::AtMostOnce,
            ..m
        };
        assert_eq!(decode_message(&encode_message(&plain)), Ok(plain));
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        let v = encode_queued(&QueuedMessage {
            qos: Qos::AtLeastOnce,
            message: full_message(),
        });
        for n in 0..v.len() {
            assert!(decode_queued(&v[..n]).is_err(), "prefix of {n} bytes");
        }
        let mut long = v.clone();
        long.push(0);
        assert_eq!(decode_queued(&long), Err(DecodeError::Trailing));
    }

    #[test]
    fn unknown_format_and_bad_fields_are_reported() {
        assert_eq!(
            decode_marker(&[9]),
            Err(DecodeError::UnknownFormat(9)),
            "format byte"
        );
        assert_eq!(
            decode_outbound(&[FORMAT, 3, 0]),
            Err(DecodeError::Invalid("outbound phase"))
        );
        assert_eq!(
            decode_subscription(&[FORMAT, 1, 2]),
            Err(DecodeError::Invalid("identifier flag"))
        );
    }

    #[test]
    fn client_keys_split_back() {
        let mut k = client_prefix("dev-1");
        k.extend_from_slice(&7u16.to_be_bytes());
        let (id, rest) = split_client_key(&k).unwrap();
        assert_eq!(id, "dev-1");
        assert_eq!(rest, &7u16.to_be_bytes());
        assert!(split_client_key(&[0, 9, b'a']).is_err());
    }
}
