//! Encoding: exact size first, then one pass into the caller's output.
//!
//! One function per packet writes the body into a [`Sink`]. It runs twice: once
//! into a [`Counter`], which validates the packet and yields the exact length
//! without writing anything, then into the caller's [`Output`] after a single
//! reservation. Sharing the code makes `encoded_len` exact by construction.

use crate::packet::{
    Auth, ConnAck, Connect, Disconnect, PubResponse, Publish, SubAck, Subscribe, UnsubAck,
    Unsubscribe,
};
use crate::properties::{self, Context, Properties};
use crate::topic::TopicName;
use crate::{varint, EncodeError, Output, Packet, PacketId, PacketType, Protocol, QoS, ReasonCode};

/// Where a packet body is written: a counter or the caller's output.
pub(crate) trait Sink {
    /// Whether this pass validates. The counting pass does, and always runs
    /// first, so the writing pass skips checks whose outcome it already knows.
    const VALIDATES: bool;
    fn put(&mut self, bytes: &[u8]);
}

/// A sink that only counts.
#[derive(Debug, Default)]
pub(crate) struct Counter(pub(crate) usize);

impl Sink for Counter {
    const VALIDATES: bool = true;
    fn put(&mut self, bytes: &[u8]) {
        self.0 = self.0.saturating_add(bytes.len());
    }
}

/// A sink that writes to the caller's output.
struct Out<'o, O>(&'o mut O);

impl<O: Output> Sink for Out<'_, O> {
    const VALIDATES: bool = false;
    fn put(&mut self, bytes: &[u8]) {
        self.0.put(bytes);
    }
}

pub(crate) fn put_varint<S: Sink>(s: &mut S, value: u32) -> Result<(), EncodeError> {
    let (buf, n) = varint::to_bytes(value).ok_or(EncodeError::TooLarge)?;
    s.put(buf.get(..n).unwrap_or_default());
    Ok(())
}

/// Binary data: two-byte length, then the bytes.
pub(crate) fn put_bin<S: Sink>(s: &mut S, bytes: &[u8]) -> Result<(), EncodeError> {
    let len = u16::try_from(bytes.len()).map_err(|_| EncodeError::FieldTooLong)?;
    s.put(&len.to_be_bytes());
    s.put(bytes);
    Ok(())
}

/// A UTF-8 string the receiver will accept: at most 65535 bytes, no U+0000
/// [MQTT-1.5.3-2].
pub(crate) fn put_str<S: Sink>(s: &mut S, text: &str) -> Result<(), EncodeError> {
    if S::VALIDATES && text.as_bytes().contains(&0) {
        return Err(EncodeError::NotAllowed("string containing U+0000"));
    }
    put_bin(s, text.as_bytes())
}

fn put_id<S: Sink>(s: &mut S, id: PacketId) {
    s.put(&id.get().to_be_bytes());
}

/// Properties, refused in 3.x unless empty.
fn put_props<S: Sink>(
    s: &mut S,
    protocol: Protocol,
    props: &Properties<'_>,
    ctx: Context,
) -> Result<(), EncodeError> {
    if protocol.is_v5() {
        properties::encode(props, ctx, s)
    } else if !S::VALIDATES || props.is_empty() {
        Ok(())
    } else {
        Err(EncodeError::NotAllowed("properties in MQTT 3.x"))
    }
}

/// A PUBACK, PUBREC, PUBREL or PUBCOMP with reason Success and no
/// properties, as [`Packet::encode`] writes it: four bytes, the same in every
/// version (5.0 leaves out a success's reason code and properties,
/// [MQTT 5.0, 3.4.2.1]).
/// For senders of millions of acknowledgements; `None` for other packet types.
pub fn success_response(kind: PacketType, id: PacketId) -> Option<[u8; 4]> {
    let flags = match kind {
        PacketType::PubAck | PacketType::PubRec | PacketType::PubComp => 0,
        PacketType::PubRel => 0b0010,
        _ => return None,
    };
    let [hi, lo] = id.get().to_be_bytes();
    Some([((kind as u8) << 4) | flags, 2, hi, lo])
}

/// A PUBLISH without properties (a 5.0 one has property length 0), written
/// as [`Packet::encode`] writes it but without building a [`Packet`]: for a
/// broker forwarding millions of plain messages. Fails as `encode` would;
/// returns the length written.
#[allow(clippy::too_many_arguments)]
pub fn encode_plain_publish(
    protocol: Protocol,
    dup: bool,
    qos: QoS,
    retain: bool,
    topic: TopicName<'_>,
    packet_id: Option<PacketId>,
    payload: &[u8],
    out: &mut impl Output,
) -> Result<usize, EncodeError> {
    if topic.is_empty() {
        return Err(EncodeError::NotAllowed(
            "empty topic name without a 5.0 topic alias",
        ));
    }
    check_publish_id(qos, packet_id, dup)?;
    let name = topic.as_str().as_bytes();
    let name_len = u16::try_from(name.len()).map_err(|_| EncodeError::FieldTooLong)?;
    let body =
        2 + name.len() + packet_id.map_or(0, |_| 2) + usize::from(protocol.is_v5()) + payload.len();
    let body = u32::try_from(body)
        .ok()
        .filter(|&len| len <= varint::MAX)
        .ok_or(EncodeError::TooLarge)?;
    let (header, n) = varint::to_bytes(body).ok_or(EncodeError::TooLarge)?;
    let total = 1 + n + body as usize;
    out.reserve(total)?;
    let flags = (u8::from(dup) << 3) | ((qos as u8) << 1) | u8::from(retain);
    out.put(&[((PacketType::Publish as u8) << 4) | flags]);
    out.put(header.get(..n).unwrap_or_default());
    out.put(&name_len.to_be_bytes());
    out.put(name);
    if let Some(id) = packet_id {
        out.put(&id.get().to_be_bytes());
    }
    if protocol.is_v5() {
        out.put(&[0]);
    }
    out.put(payload);
    Ok(total)
}

impl Packet<'_> {
    /// The exact number of bytes [`Packet::encode`] writes for `protocol`.
    ///
    /// It also validates the packet, failing as `encode` would.
    pub fn encoded_len(&self, protocol: Protocol) -> Result<usize, EncodeError> {
        let body = self.body_len(protocol)?;
        let header = varint::len(body).ok_or(EncodeError::TooLarge)?;
        Ok(1 + header + body as usize)
    }

    /// Appends the packet to `out` as `protocol` and returns its length.
    /// Nothing is written when it fails.
    ///
    /// A CONNECT is written in the version it names itself
    /// ([`Connect::protocol`]), whatever `protocol` says. In 5.0 the short
    /// forms are used where the spec allows them: an acknowledgement or
    /// DISCONNECT with reason `Success` and no properties has no reason byte.
    pub fn encode(&self, protocol: Protocol, out: &mut impl Output) -> Result<usize, EncodeError> {
        let body = self.body_len(protocol)?;
        let (header, n) = varint::to_bytes(body).ok_or(EncodeError::TooLarge)?;
        let total = 1 + n + body as usize;
        out.reserve(total)?;
        let mut sink = Out(out);
        sink.put(&[self.first_byte()]);
        sink.put(header.get(..n).unwrap_or_default());
        self.write_body(protocol, &mut sink)?;
        Ok(total)
    }

    /// Validates the packet and returns its remaining length.
    fn body_len(&self, protocol: Protocol) -> Result<u32, EncodeError> {
        let mut counter = Counter::default();
        self.write_body(protocol, &mut counter)?;
        u32::try_from(counter.0)
            .ok()
            .filter(|&len| len <= varint::MAX)
            .ok_or(EncodeError::TooLarge)
    }

    fn first_byte(&self) -> u8 {
        let flags = match self {
            Packet::Publish(p) => {
                (u8::from(p.dup) << 3) | ((p.qos as u8) << 1) | u8::from(p.retain)
            }
            Packet::PubRel(_) | Packet::Subscribe(_) | Packet::Unsubscribe(_) => 0b0010,
            _ => 0,
        };
        ((self.packet_type() as u8) << 4) | flags
    }

    fn write_body<S: Sink>(&self, protocol: Protocol, s: &mut S) -> Result<(), EncodeError> {
        match self {
            Packet::Connect(c) => connect(c, s),
            Packet::ConnAck(c) => connack(c, protocol, s),
            Packet::Publish(p) => publish(p, protocol, s),
            Packet::PubAck(r) | Packet::PubRec(r) => {
                pub_response(r, protocol, ReasonCode::valid_for_puback, s)
            }
            Packet::PubRel(r) | Packet::PubComp(r) => {
                pub_response(r, protocol, ReasonCode::valid_for_pubrel, s)
            }
            Packet::Subscribe(sub) => subscribe(sub, protocol, s),
            Packet::SubAck(ack) => suback(ack, protocol, s),
            Packet::Unsubscribe(unsub) => unsubscribe(unsub, protocol, s),
            Packet::UnsubAck(ack) => unsuback(ack, protocol, s),
            Packet::PingReq | Packet::PingResp => Ok(()),
            Packet::Disconnect(d) => disconnect(d, protocol, s),
            Packet::Auth(a) => auth(a, protocol, s),
        }
    }
}

fn connect<S: Sink>(c: &Connect<'_>, s: &mut S) -> Result<(), EncodeError> {
    let protocol = c.protocol;
    let name: &[u8] = match protocol {
        Protocol::V3_1 => b"MQIsdp",
        Protocol::V3_1_1 | Protocol::V5 => b"MQTT",
    };
    if !protocol.is_v5() && c.password.is_some() && c.username.is_none() {
        return Err(EncodeError::NotAllowed(
            "[MQTT-3.1.2-22] password without user name in MQTT 3.x",
        ));
    }
    put_bin(s, name)?;
    let mut flags = u8::from(c.clean_start) << 1;
    if let Some(will) = &c.will {
        flags |= 0b100 | ((will.qos as u8) << 3) | (u8::from(will.retain) << 5);
    }
    flags |= u8::from(c.password.is_some()) << 6;
    flags |= u8::from(c.username.is_some()) << 7;
    let level = protocol.level() | if c.bridge { 0x80 } else { 0 };
    s.put(&[level, flags]);
    s.put(&c.keep_alive.to_be_bytes());
    put_props(s, protocol, &c.properties, Context::Connect)?;
    put_str(s, c.client_id)?;
    if let Some(will) = &c.will {
        put_props(s, protocol, &will.properties, Context::Will)?;
        if will.topic.is_empty() {
            return Err(EncodeError::NotAllowed("[MQTT-4.7.3-1] empty will topic"));
        }
        put_bin(s, will.topic.as_str().as_bytes())?;
        put_bin(s, will.payload)?;
    }
    if let Some(username) = c.username {
        put_str(s, username)?;
    }
    if let Some(password) = c.password {
        put_bin(s, password)?;
    }
    Ok(())
}

fn connack<S: Sink>(c: &ConnAck<'_>, protocol: Protocol, s: &mut S) -> Result<(), EncodeError> {
    if !c.reason.valid_for_connack() {
        return Err(EncodeError::NotAllowed(
            "reason code not allowed in CONNACK",
        ));
    }
    if c.session_present && c.reason.is_error() {
        return Err(EncodeError::NotAllowed(
            "[MQTT-3.2.2-4] session present with a refusal",
        ));
    }
    let code = if protocol.is_v5() {
        c.reason as u8
    } else {
        c.reason.to_v3_connack()
    };
    s.put(&[u8::from(c.session_present), code]);
    put_props(s, protocol, &c.properties, Context::ConnAck)
}

/// A PUBLISH has a packet id exactly when its QoS is above 0, and no DUP at QoS 0.
fn check_publish_id(qos: QoS, packet_id: Option<PacketId>, dup: bool) -> Result<(), EncodeError> {
    match (qos, packet_id) {
        (QoS::AtMostOnce, None) if dup => {
            Err(EncodeError::NotAllowed("[MQTT-3.3.1-2] DUP set on QoS 0"))
        }
        (QoS::AtMostOnce, None) | (QoS::AtLeastOnce | QoS::ExactlyOnce, Some(_)) => Ok(()),
        _ => Err(EncodeError::NotAllowed(
            "[MQTT-2.3.1-5] packet id present exactly when QoS > 0",
        )),
    }
}

fn publish<S: Sink>(p: &Publish<'_>, protocol: Protocol, s: &mut S) -> Result<(), EncodeError> {
    if p.topic.is_empty() && !(protocol.is_v5() && p.properties.topic_alias.is_some()) {
        return Err(EncodeError::NotAllowed(
            "empty topic name without a 5.0 topic alias",
        ));
    }
    check_publish_id(p.qos, p.packet_id, p.dup)?;
    put_bin(s, p.topic.as_str().as_bytes())?;
    if let Some(id) = p.packet_id {
        put_id(s, id);
    }
    put_props(s, protocol, &p.properties, Context::Publish)?;
    s.put(p.payload);
    Ok(())
}

fn pub_response<S: Sink>(
    r: &PubResponse<'_>,
    protocol: Protocol,
    valid: fn(ReasonCode) -> bool,
    s: &mut S,
) -> Result<(), EncodeError> {
    put_id(s, r.packet_id);
    short_form_tail(
        protocol,
        r.reason,
        &r.properties,
        valid,
        Context::PubResponse,
        s,
    )
}

/// The reason code and properties that 5.0 lets a sender omit: nothing for
/// `Success` without properties, the code alone without properties.
fn short_form_tail<S: Sink>(
    protocol: Protocol,
    reason: ReasonCode,
    props: &Properties<'_>,
    valid: fn(ReasonCode) -> bool,
    ctx: Context,
    s: &mut S,
) -> Result<(), EncodeError> {
    if !protocol.is_v5() {
        if reason != ReasonCode::Success {
            return Err(EncodeError::NotAllowed(
                "reason code other than Success in MQTT 3.x",
            ));
        }
        return put_props(s, protocol, props, ctx);
    }
    if !valid(reason) {
        return Err(EncodeError::NotAllowed(
            "reason code not allowed in this packet",
        ));
    }
    let empty = props.is_empty();
    if reason == ReasonCode::Success && empty {
        return Ok(());
    }
    s.put(&[reason as u8]);
    if empty {
        return Ok(());
    }
    put_props(s, protocol, props, ctx)
}

fn subscribe<S: Sink>(
    sub: &Subscribe<'_>,
    protocol: Protocol,
    s: &mut S,
) -> Result<(), EncodeError> {
    if sub.filters.is_empty() {
        return Err(EncodeError::NotAllowed(
            "[MQTT-3.8.3-3] SUBSCRIBE without filters",
        ));
    }
    put_id(s, sub.packet_id);
    put_props(s, protocol, &sub.properties, Context::Subscribe)?;
    for (filter, options) in sub.filters.iter() {
        if protocol.is_v5() {
            if options.no_local && filter.share_group().is_some() {
                return Err(EncodeError::NotAllowed(
                    "[MQTT-3.8.3-4] no local on a shared subscription",
                ));
            }
        } else if options.to_byte() & !0x03 != 0 {
            return Err(EncodeError::NotAllowed(
                "5.0 subscription options in MQTT 3.x",
            ));
        }
        put_bin(s, filter.as_str().as_bytes())?;
        s.put(&[options.to_byte()]);
    }
    Ok(())
}

fn suback<S: Sink>(ack: &SubAck<'_>, protocol: Protocol, s: &mut S) -> Result<(), EncodeError> {
    put_id(s, ack.packet_id);
    put_props(s, protocol, &ack.properties, Context::SubAck)?;
    for reason in ack.reasons.iter() {
        let byte = if protocol.is_v5() {
            if !reason.valid_for_suback() {
                return Err(EncodeError::NotAllowed("reason code not allowed in SUBACK"));
            }
            reason as u8
        } else {
            // 3.x has one failure code; every 5.0 failure maps onto it.
            match reason {
                ReasonCode::Success | ReasonCode::GrantedQoS1 | ReasonCode::GrantedQoS2 => {
                    reason as u8
                }
                r if r.is_error() => 0x80,
                _ => return Err(EncodeError::NotAllowed("SUBACK return code in MQTT 3.x")),
            }
        };
        s.put(&[byte]);
    }
    Ok(())
}

fn unsubscribe<S: Sink>(
    unsub: &Unsubscribe<'_>,
    protocol: Protocol,
    s: &mut S,
) -> Result<(), EncodeError> {
    if unsub.filters.is_empty() {
        return Err(EncodeError::NotAllowed(
            "[MQTT-3.10.3-2] UNSUBSCRIBE without filters",
        ));
    }
    put_id(s, unsub.packet_id);
    put_props(s, protocol, &unsub.properties, Context::Unsubscribe)?;
    for filter in unsub.filters.iter() {
        put_bin(s, filter.as_str().as_bytes())?;
    }
    Ok(())
}

fn unsuback<S: Sink>(ack: &UnsubAck<'_>, protocol: Protocol, s: &mut S) -> Result<(), EncodeError> {
    put_id(s, ack.packet_id);
    put_props(s, protocol, &ack.properties, Context::UnsubAck)?;
    if !protocol.is_v5() {
        if !ack.reasons.is_empty() {
            return Err(EncodeError::NotAllowed("UNSUBACK reason codes in MQTT 3.x"));
        }
        return Ok(());
    }
    for reason in ack.reasons.iter() {
        if !reason.valid_for_unsuback() {
            return Err(EncodeError::NotAllowed(
                "reason code not allowed in UNSUBACK",
            ));
        }
        s.put(&[reason as u8]);
    }
    Ok(())
}

fn disconnect<S: Sink>(
    d: &Disconnect<'_>,
    protocol: Protocol,
    s: &mut S,
) -> Result<(), EncodeError> {
    short_form_tail(
        protocol,
        d.reason,
        &d.properties,
        ReasonCode::valid_for_disconnect,
        Context::Disconnect,
        s,
    )
}

fn auth<S: Sink>(a: &Auth<'_>, protocol: Protocol, s: &mut S) -> Result<(), EncodeError> {
    if !protocol.is_v5() {
        return Err(EncodeError::NotAllowed("AUTH in MQTT 3.x"));
    }
    if !a.reason.valid_for_auth() {
        return Err(EncodeError::NotAllowed("reason code not allowed in AUTH"));
    }
    // AUTH omits both or neither of reason code and properties.
    if a.reason == ReasonCode::Success && a.properties.is_empty() {
        return Ok(());
    }
    s.put(&[a.reason as u8]);
    put_props(s, protocol, &a.properties, Context::Auth)
}
