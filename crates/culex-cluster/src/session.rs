//! Session records in the `SESS` bucket, and what claiming, kicking and
//! adopting a session hand back.

use bytes::Bytes;
use sha2::{Digest, Sha256};

use crate::message::{Message, NodeId};
use crate::wire::{Reader, WireError, Writer};

/// The key of a client id's session in `SESS` (and its offline queue's
/// subject token): `c_` and 32 hex digits of its SHA-256. KV keys allow
/// only `[-/_=.A-Za-z0-9]`, and a client id can hold anything.
pub fn session_key(client_id: &str) -> String {
    let digest = Sha256::digest(client_id.as_bytes());
    let mut key = String::with_capacity(34);
    key.push_str("c_");
    for byte in digest.iter().take(16) {
        key.push_str(&format!("{byte:02x}"));
    }
    key
}

/// What the cluster knows of one client's session. The owner and epoch are
/// written by [`Node::claim`](crate::Node::claim); the rest is the
/// broker's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    /// The client id (the key is only its hash).
    pub client_id: String,
    /// The node that owns the session: the one its client is connected to,
    /// or that keeps its offline queue.
    pub owner: NodeId,
    /// Counts the claims of this client id; each claim adds one.
    pub epoch: u64,
    /// Session expiry interval in seconds once the client is gone (0: the
    /// session ends with its connection; `u32::MAX`: never).
    pub expiry_interval: u32,
    /// Whether the client is connected to the owner now.
    pub connected: bool,
    /// The will to publish if the client goes away without DISCONNECT.
    pub will: Option<Will>,
    /// The session's subscriptions and their options, encoded by the broker.
    pub subscriptions: Bytes,
}

/// A will message and its delay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Will {
    /// The message to publish.
    pub message: Message,
    /// MQTT 5 Will Delay Interval, in seconds.
    pub delay_interval: u32,
}

impl SessionRecord {
    pub(crate) fn encode(&self) -> Bytes {
        let mut writer = Writer::new(64 + self.client_id.len() + self.subscriptions.len());
        writer
            .str(&self.client_id)
            .str(&self.owner.name)
            .u64(self.owner.incarnation)
            .u64(self.epoch)
            .u32(self.expiry_interval)
            .u8(u8::from(self.connected));
        match &self.will {
            None => {
                writer.u8(0);
            }
            Some(will) => {
                writer.u8(1).u32(will.delay_interval);
                will.message.write_nested(&mut writer);
            }
        }
        writer.bytes(&self.subscriptions).finish()
    }

    pub(crate) fn decode(record: Bytes) -> Result<SessionRecord, WireError> {
        let mut reader = Reader::new(record)?;
        let client_id = reader.str()?;
        let owner = NodeId {
            name: reader.str()?,
            incarnation: reader.u64()?,
        };
        let epoch = reader.u64()?;
        let expiry_interval = reader.u32()?;
        let connected = match reader.u8()? {
            0 => false,
            1 => true,
            _ => return Err(WireError::Value),
        };
        let will = match reader.u8()? {
            0 => None,
            1 => {
                let delay_interval = reader.u32()?;
                Some(Will {
                    message: Message::read_nested(&mut reader)?,
                    delay_interval,
                })
            }
            _ => return Err(WireError::Value),
        };
        let subscriptions = reader.bytes()?;
        reader.end()?;
        Ok(SessionRecord {
            client_id,
            owner,
            epoch,
            expiry_interval,
            connected,
            will,
            subscriptions,
        })
    }
}

/// A successful [`Node::claim`](crate::Node::claim).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    /// The record as it was before this claim, if there was one: its owner
    /// is the node to kick (unless it is this node), its subscriptions the
    /// session to resume.
    pub previous: Option<SessionRecord>,
    /// The record as stored now (owner: this node, epoch: previous + 1).
    pub record: SessionRecord,
    /// The KV revision of the stored record: every later write of this
    /// session by this node passes it, and fails once another node claims.
    pub revision: u64,
}

impl Claim {
    /// The node that owned the session before, if any.
    pub fn previous_owner(&self) -> Option<&NodeId> {
        self.previous.as_ref().map(|record| &record.owner)
    }
}

/// A session a dead node owned, now owned by this node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Adoption {
    /// The node that died (the previous owner).
    pub dead: NodeId,
    /// The record as stored now, owned by this node, without its will.
    pub record: SessionRecord,
    /// The KV revision of that record, for later writes.
    pub revision: u64,
    /// The will to publish now (after its delay): it was removed from the
    /// stored record by the same compare-and-set, so exactly one node gets
    /// it.
    pub will: Option<Will>,
}

/// How a kick request ended, seen from the node that sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KickOutcome {
    /// The owner closed the client's connection; `pending` is what its
    /// broker put in the reply (its queued and in-flight messages).
    Kicked {
        /// The broker's bytes; empty if it had nothing to hand over.
        pending: Bytes,
    },
    /// The owner answered but had no such connection (any more).
    NotConnected,
    /// No answer in time: the owner is gone or cut off. Its later writes of
    /// the session are fenced, so it closes the client on its own.
    Unreachable,
}

/// What a broker answers to a kick.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KickReply {
    /// The connection was closed; the bytes go to the new owner.
    Closed(Bytes),
    /// No connection of that client id here.
    NotConnected,
}

impl KickReply {
    pub(crate) fn encode(&self) -> Bytes {
        let mut writer = Writer::new(8);
        match self {
            KickReply::Closed(pending) => writer.u8(1).tail(pending),
            KickReply::NotConnected => writer.u8(0),
        };
        writer.finish()
    }

    pub(crate) fn decode(body: Bytes) -> Result<KickOutcome, WireError> {
        let mut reader = Reader::new(body)?;
        match reader.u8()? {
            0 => Ok(KickOutcome::NotConnected),
            1 => Ok(KickOutcome::Kicked {
                pending: reader.tail(),
            }),
            _ => Err(WireError::Value),
        }
    }
}

/// The body of a kick request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct KickBody {
    pub(crate) client_id: String,
    /// The incarnation of the owner being asked: a restarted owner ignores it.
    pub(crate) target_incarnation: u64,
    pub(crate) by: NodeId,
    pub(crate) epoch: u64,
}

impl KickBody {
    pub(crate) fn encode(&self) -> Bytes {
        Writer::new(32 + self.client_id.len())
            .str(&self.client_id)
            .u64(self.target_incarnation)
            .str(&self.by.name)
            .u64(self.by.incarnation)
            .u64(self.epoch)
            .finish()
    }

    pub(crate) fn decode(body: Bytes) -> Result<KickBody, WireError> {
        let mut reader = Reader::new(body)?;
        let kick = KickBody {
            client_id: reader.str()?,
            target_incarnation: reader.u64()?,
            by: NodeId {
                name: reader.str()?,
                incarnation: reader.u64()?,
            },
            epoch: reader.u64()?,
        };
        reader.end()?;
        Ok(kick)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use culex_codec::QoS;

    #[test]
    fn keys_are_valid_kv_keys_of_fixed_length() {
        for id in ["", "a", "é/x y.*>", &"z".repeat(70_000)] {
            let key = session_key(id);
            assert_eq!(key.len(), 34);
            assert!(key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'));
        }
        assert_ne!(session_key("a"), session_key("b"));
    }

    #[test]
    fn records_round_trip() {
        let mut record = SessionRecord {
            client_id: "c1".into(),
            owner: NodeId {
                name: "n1".into(),
                incarnation: 3,
            },
            epoch: 9,
            expiry_interval: 3600,
            connected: true,
            will: Some(Will {
                message: Message {
                    topic: "will/c1".into(),
                    payload: Bytes::from_static(b"gone"),
                    qos: QoS::AtLeastOnce,
                    retain: true,
                    properties: Bytes::new(),
                },
                delay_interval: 5,
            }),
            subscriptions: Bytes::from_static(b"subs"),
        };
        assert_eq!(SessionRecord::decode(record.encode()), Ok(record.clone()));
        record.will = None;
        let bytes = record.encode();
        assert_eq!(SessionRecord::decode(bytes.clone()), Ok(record));
        assert!(SessionRecord::decode(bytes.slice(..bytes.len() - 1)).is_err());
    }

    #[test]
    fn kicks_round_trip() {
        let body = KickBody {
            client_id: "c".into(),
            target_incarnation: 1,
            by: NodeId {
                name: "n2".into(),
                incarnation: 2,
            },
            epoch: 4,
        };
        assert_eq!(KickBody::decode(body.encode()), Ok(body));
        assert_eq!(
            KickReply::decode(KickReply::Closed(Bytes::from_static(b"q")).encode()),
            Ok(KickOutcome::Kicked {
                pending: Bytes::from_static(b"q")
            })
        );
        assert_eq!(
            KickReply::decode(KickReply::NotConnected.encode()),
            Ok(KickOutcome::NotConnected)
        );
    }
}
