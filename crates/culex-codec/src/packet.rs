//! The control packets, borrowed from the buffer they were decoded from or
//! built by the caller for encoding.

use crate::properties::Properties;
use crate::seq::Seq;
use crate::topic::{TopicFilter, TopicName};
use crate::{PacketId, Protocol, QoS, ReasonCode, SubscriptionOptions};

/// One MQTT control packet.
// Packets are short-lived values that borrow their buffer; boxing the large
// variants would need an allocator, which the codec must not require.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Packet<'a> {
    /// CONNECT (client to server).
    Connect(Connect<'a>),
    /// CONNACK (server to client).
    ConnAck(ConnAck<'a>),
    /// PUBLISH (both ways).
    Publish(Publish<'a>),
    /// PUBACK: QoS 1 acknowledgement.
    PubAck(PubResponse<'a>),
    /// PUBREC: QoS 2, part 1.
    PubRec(PubResponse<'a>),
    /// PUBREL: QoS 2, part 2.
    PubRel(PubResponse<'a>),
    /// PUBCOMP: QoS 2, part 3.
    PubComp(PubResponse<'a>),
    /// SUBSCRIBE (client to server).
    Subscribe(Subscribe<'a>),
    /// SUBACK (server to client).
    SubAck(SubAck<'a>),
    /// UNSUBSCRIBE (client to server).
    Unsubscribe(Unsubscribe<'a>),
    /// UNSUBACK (server to client).
    UnsubAck(UnsubAck<'a>),
    /// PINGREQ.
    PingReq,
    /// PINGRESP.
    PingResp,
    /// DISCONNECT (both ways in 5.0; client to server before).
    Disconnect(Disconnect<'a>),
    /// AUTH (5.0 only).
    Auth(Auth<'a>),
}

/// CONNECT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Connect<'a> {
    /// The version asked for, from the protocol name and level.
    pub protocol: Protocol,
    /// Clean Session (3.x) or Clean Start (5.0).
    pub clean_start: bool,
    /// Keep alive in seconds; 0 turns it off.
    pub keep_alive: u16,
    /// The client identifier; may be empty.
    pub client_id: &'a str,
    /// The will, if the will flag is set.
    pub will: Option<Will<'a>>,
    /// The user name, if the flag is set.
    pub username: Option<&'a str>,
    /// The password, if the flag is set.
    pub password: Option<&'a [u8]>,
    /// 5.0 CONNECT properties; empty for 3.x.
    pub properties: Properties<'a>,
    /// The bridge bit (0x80) of the protocol level: set by a mosquitto
    /// bridge with `try_private true` (its default), which asks the server
    /// not to echo its own messages back and to keep their RETAIN flag.
    pub bridge: bool,
}

/// The will message of a CONNECT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Will<'a> {
    /// Where the will is published.
    pub topic: TopicName<'a>,
    /// The will payload.
    pub payload: &'a [u8],
    /// QoS of the will.
    pub qos: QoS,
    /// Whether the will is retained.
    pub retain: bool,
    /// 5.0 will properties; empty for 3.x.
    pub properties: Properties<'a>,
}

/// CONNACK.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnAck<'a> {
    /// Whether the server had a session for this client.
    pub session_present: bool,
    /// The outcome; for 3.x mapped to and from the return code.
    pub reason: ReasonCode,
    /// 5.0 CONNACK properties; empty for 3.x.
    pub properties: Properties<'a>,
}

/// PUBLISH.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Publish<'a> {
    /// The DUP flag: this may be a re-delivery.
    pub dup: bool,
    /// QoS of this delivery.
    pub qos: QoS,
    /// The RETAIN flag.
    pub retain: bool,
    /// The topic; empty only in a 5.0 packet that carries a topic alias.
    pub topic: TopicName<'a>,
    /// Present exactly when `qos` is 1 or 2 [MQTT-2.3.1-5].
    pub packet_id: Option<PacketId>,
    /// 5.0 PUBLISH properties; empty for 3.x.
    pub properties: Properties<'a>,
    /// The application message, borrowed from the decode buffer.
    pub payload: &'a [u8],
}

/// PUBACK, PUBREC, PUBREL and PUBCOMP share one layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PubResponse<'a> {
    /// The packet id being acknowledged.
    pub packet_id: PacketId,
    /// 5.0 reason; `Success` for 3.x and when omitted on the wire.
    pub reason: ReasonCode,
    /// 5.0 properties (reason string, user properties).
    pub properties: Properties<'a>,
}

/// SUBSCRIBE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subscribe<'a> {
    /// The packet id.
    pub packet_id: PacketId,
    /// 5.0 properties (subscription identifier, user properties).
    pub properties: Properties<'a>,
    /// At least one filter with its options [MQTT-3.8.3-3].
    pub filters: Seq<'a, (TopicFilter<'a>, SubscriptionOptions)>,
}

/// SUBACK.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubAck<'a> {
    /// The packet id of the SUBSCRIBE.
    pub packet_id: PacketId,
    /// 5.0 properties.
    pub properties: Properties<'a>,
    /// One code per filter: granted QoS (0x00-0x02) or a failure (0x80 and up;
    /// 3.1.1 has only 0x80).
    pub reasons: Seq<'a, ReasonCode>,
}

/// UNSUBSCRIBE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unsubscribe<'a> {
    /// The packet id.
    pub packet_id: PacketId,
    /// 5.0 properties.
    pub properties: Properties<'a>,
    /// At least one filter [MQTT-3.10.3-2].
    pub filters: Seq<'a, TopicFilter<'a>>,
}

/// UNSUBACK.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnsubAck<'a> {
    /// The packet id of the UNSUBSCRIBE.
    pub packet_id: PacketId,
    /// 5.0 properties.
    pub properties: Properties<'a>,
    /// 5.0: one code per filter; empty for 3.x, which carries none.
    pub reasons: Seq<'a, ReasonCode>,
}

/// DISCONNECT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Disconnect<'a> {
    /// 5.0 reason; `Success` (normal disconnection) for 3.x.
    pub reason: ReasonCode,
    /// 5.0 properties (session expiry, reason string, server reference).
    pub properties: Properties<'a>,
}

/// AUTH (5.0 only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Auth<'a> {
    /// Success, ContinueAuthentication or ReAuthenticate.
    pub reason: ReasonCode,
    /// Properties (authentication method and data).
    pub properties: Properties<'a>,
}

impl Packet<'_> {
    /// The packet's type.
    pub fn packet_type(&self) -> crate::PacketType {
        use crate::PacketType as T;
        match self {
            Packet::Connect(_) => T::Connect,
            Packet::ConnAck(_) => T::ConnAck,
            Packet::Publish(_) => T::Publish,
            Packet::PubAck(_) => T::PubAck,
            Packet::PubRec(_) => T::PubRec,
            Packet::PubRel(_) => T::PubRel,
            Packet::PubComp(_) => T::PubComp,
            Packet::Subscribe(_) => T::Subscribe,
            Packet::SubAck(_) => T::SubAck,
            Packet::Unsubscribe(_) => T::Unsubscribe,
            Packet::UnsubAck(_) => T::UnsubAck,
            Packet::PingReq => T::PingReq,
            Packet::PingResp => T::PingResp,
            Packet::Disconnect(_) => T::Disconnect,
            Packet::Auth(_) => T::Auth,
        }
    }
}
