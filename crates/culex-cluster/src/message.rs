//! The messages that cross the cluster, and the envelope they travel in.

use bytes::Bytes;
use culex_codec::QoS;

use crate::wire::{Reader, WireError, Writer};

/// One run of one culex node: its configured name and an incarnation
/// number that changes every time the node connects to the cluster, so
/// that a restarted node is a new member.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId {
    /// The node's name, unique in the cluster (`[A-Za-z0-9_-]`, 1–64 bytes).
    pub name: String,
    /// Distinguishes this run of the node from earlier ones.
    pub incarnation: u64,
}

impl std::fmt::Display for NodeId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}#{}", self.name, self.incarnation)
    }
}

/// An application message: what a PUBLISH carries, without its packet id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The topic name (valid MQTT, no wildcards).
    pub topic: String,
    /// The payload, shared and never copied.
    pub payload: Bytes,
    /// The QoS it was published with.
    pub qos: QoS,
    /// The RETAIN flag as published.
    pub retain: bool,
    /// MQTT 5 PUBLISH properties, encoded by the broker; opaque here.
    pub properties: Bytes,
}

/// A message routed between nodes, stamped by the node it was published on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// The node the message was published on.
    pub origin: NodeId,
    /// Counts the origin's publishes, from 1 for each incarnation.
    pub sequence: u64,
    /// The publishing client's id, for No-Local.
    pub publisher: String,
    /// The message.
    pub message: Message,
}

const FLAG_RETAIN: u8 = 0b100;

fn flags(message: &Message) -> u8 {
    let mut flags = message.qos as u8;
    if message.retain {
        flags |= FLAG_RETAIN;
    }
    flags
}

fn read_flags(reader: &mut Reader) -> Result<(QoS, bool), WireError> {
    let flags = reader.u8()?;
    if flags & !(0b11 | FLAG_RETAIN) != 0 {
        return Err(WireError::Value);
    }
    let qos = QoS::from_u8(flags & 0b11).ok_or(WireError::Value)?;
    Ok((qos, flags & FLAG_RETAIN != 0))
}

impl Envelope {
    /// Reads the body of a routed NATS message, whose subject gave `topic`.
    pub(crate) fn decode(body: Bytes, topic: String) -> Result<Envelope, WireError> {
        let mut reader = Reader::new(body)?;
        let (qos, retain) = read_flags(&mut reader)?;
        let origin = NodeId {
            name: reader.str()?,
            incarnation: reader.u64()?,
        };
        let sequence = reader.u64()?;
        let publisher = reader.str()?;
        let properties = reader.bytes()?;
        Ok(Envelope {
            origin,
            sequence,
            publisher,
            message: Message {
                topic,
                payload: reader.tail(),
                qos,
                retain,
                properties,
            },
        })
    }
}

/// The body of a routed NATS message: everything but the topic, which is
/// the subject. Takes borrowed parts, so that publishing copies nothing but
/// the bytes it sends.
pub(crate) fn encode_envelope(
    origin: &NodeId,
    sequence: u64,
    publisher: &str,
    message: &Message,
) -> Bytes {
    Writer::new(
        32 + origin.name.len() + publisher.len() + message.properties.len() + message.payload.len(),
    )
    .u8(flags(message))
    .str(&origin.name)
    .u64(origin.incarnation)
    .u64(sequence)
    .str(publisher)
    .bytes(&message.properties)
    .tail(&message.payload)
    .finish()
}

impl Message {
    /// A stored message (retained, spooled, a will): all fields.
    pub(crate) fn encode(&self) -> Bytes {
        let mut writer =
            Writer::new(16 + self.topic.len() + self.properties.len() + self.payload.len());
        writer
            .u8(flags(self))
            .str(&self.topic)
            .bytes(&self.properties)
            .tail(&self.payload)
            .finish()
    }

    /// Reads what [`Message::encode`] wrote.
    pub(crate) fn decode(record: Bytes) -> Result<Message, WireError> {
        let mut reader = Reader::new(record)?;
        Self::read(&mut reader, true)
    }

    fn read(reader: &mut Reader, with_tail: bool) -> Result<Message, WireError> {
        let (qos, retain) = read_flags(reader)?;
        let topic = reader.str()?;
        let properties = reader.bytes()?;
        let payload = if with_tail {
            reader.tail()
        } else {
            reader.bytes()?
        };
        Ok(Message {
            topic,
            payload,
            qos,
            retain,
            properties,
        })
    }

    /// Writes the message as a nested field (length-prefixed payload).
    pub(crate) fn write_nested(&self, writer: &mut Writer) {
        writer
            .u8(flags(self))
            .str(&self.topic)
            .bytes(&self.properties)
            .bytes(&self.payload);
    }

    /// Reads what [`Message::write_nested`] wrote.
    pub(crate) fn read_nested(reader: &mut Reader) -> Result<Message, WireError> {
        Self::read(reader, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(qos: QoS, retain: bool) -> Message {
        Message {
            topic: "a/b".into(),
            payload: Bytes::from_static(b"payload"),
            qos,
            retain,
            properties: Bytes::from_static(&[0x01, 0x01]),
        }
    }

    #[test]
    fn envelopes_round_trip() {
        for (qos, retain) in [
            (QoS::AtMostOnce, false),
            (QoS::AtLeastOnce, true),
            (QoS::ExactlyOnce, false),
        ] {
            let envelope = Envelope {
                origin: NodeId {
                    name: "n1".into(),
                    incarnation: 42,
                },
                sequence: 7,
                publisher: "client".into(),
                message: message(qos, retain),
            };
            let body = encode_envelope(&envelope.origin, 7, "client", &envelope.message);
            assert_eq!(Envelope::decode(body.clone(), "a/b".into()), Ok(envelope));
            assert!(Envelope::decode(body.slice(..10), "a/b".into()).is_err());
        }
    }

    #[test]
    fn stored_messages_round_trip_and_bad_flags_are_refused() {
        let stored = message(QoS::AtLeastOnce, true);
        assert_eq!(Message::decode(stored.encode()), Ok(stored.clone()));
        let mut bytes = stored.encode().to_vec();
        bytes[1] = 0b11;
        assert_eq!(Message::decode(bytes.into()), Err(WireError::Value));
        let mut writer = Writer::new(8);
        stored.write_nested(&mut writer);
        writer.u8(9);
        let mut reader = Reader::new(writer.finish()).expect("version");
        assert_eq!(Message::read_nested(&mut reader), Ok(stored));
        assert_eq!(reader.u8(), Ok(9));
    }
}
