//! Incremental, zero-copy decoding.

use crate::packet::{
    Auth, ConnAck, Connect, Disconnect, PubResponse, Publish, SubAck, Subscribe, UnsubAck,
    Unsubscribe, Will,
};
use crate::properties::{self, Context, Properties};
use crate::reader::Reader;
use crate::seq::{Seq, Wire};
use crate::topic::{TopicFilter, TopicName};
use crate::{varint, DecodeError, Packet, PacketId, PacketType, Protocol, QoS, ReasonCode};

/// Reads the fixed header at the front of `buf` and returns the total length
/// of the first packet once all of it is in `buf`.
///
/// `Ok(None)` means more bytes are needed. The size limit is checked as soon
/// as the remaining length is readable, before the body is buffered, so a
/// peer cannot make the caller buffer more than `max_packet_size` bytes.
pub fn check_frame(buf: &[u8], max_packet_size: u32) -> Result<Option<usize>, DecodeError> {
    let size = frame_size(buf, max_packet_size)?;
    Ok(size.filter(|&size| buf.len() >= size))
}

/// The total length of the first packet in `buf` as soon as its fixed
/// header is there, whether or not the rest has arrived; the checks of
/// [`check_frame`]. A reader uses it to make room for exactly one packet.
pub fn frame_size(buf: &[u8], max_packet_size: u32) -> Result<Option<usize>, DecodeError> {
    let Some((&first, rest)) = buf.split_first() else {
        return Ok(None);
    };
    if first >> 4 == 0 {
        return Err(DecodeError::Malformed(
            "[MQTT 3.1.1, 2.2.1] [MQTT 5.0, 2.1.2] packet type 0 is reserved",
        ));
    }
    let Some((remaining, n)) = varint::decode(rest)? else {
        return Ok(None);
    };
    let size = 1 + n as u64 + u64::from(remaining);
    if size > u64::from(max_packet_size) {
        return Err(DecodeError::PacketTooLarge {
            size,
            max: max_packet_size,
        });
    }
    let size = usize::try_from(size).map_err(|_| DecodeError::PacketTooLarge {
        size,
        max: max_packet_size,
    })?;
    Ok(Some(size))
}

/// The packet type and id of `frame` when it is a four-byte success
/// PUBACK, PUBREC, PUBREL or PUBCOMP (the only form in 3.x, the short form
/// of 5.0, [MQTT 5.0, 3.4.2.1]), as [`decode_packet`] would read it; `None`
/// for anything else, including malformed frames, which `decode_packet`
/// then reports. For receivers of millions of acknowledgements.
pub fn decode_success_response(frame: &[u8]) -> Option<(PacketType, PacketId)> {
    let [first, 2, hi, lo] = *frame else {
        return None;
    };
    let kind = match first {
        0x40 => PacketType::PubAck,
        0x50 => PacketType::PubRec,
        0x62 => PacketType::PubRel,
        0x70 => PacketType::PubComp,
        _ => return None,
    };
    Some((kind, PacketId::new(u16::from_be_bytes([hi, lo]))?))
}

/// Decodes exactly one complete packet (`frame` as delimited by
/// [`check_frame`]). `protocol` is the connection's version; a CONNECT is read
/// whatever it says, since it carries its own.
pub fn decode_packet(frame: &[u8], protocol: Protocol) -> Result<Packet<'_>, DecodeError> {
    let mut r = Reader::new(frame);
    let first = r.u8()?;
    let remaining = r.varint()?;
    if r.len() as u64 != u64::from(remaining) {
        return Err(DecodeError::Malformed(
            "[MQTT 3.1.1, 2.2.3] frame length does not match the remaining length",
        ));
    }
    let flags = first & 0x0F;
    let v5 = protocol.is_v5();
    let packet = match first >> 4 {
        1 => {
            reserved_flags(flags, 0)?;
            Packet::Connect(connect(&mut r)?)
        }
        2 => {
            reserved_flags(flags, 0)?;
            Packet::ConnAck(connack(&mut r, protocol)?)
        }
        // The payload takes the rest of the frame: nothing can be left over.
        3 => return publish(flags, &mut r, protocol),
        4 => {
            reserved_flags(flags, 0)?;
            Packet::PubAck(pub_response(&mut r, v5, ReasonCode::valid_for_puback)?)
        }
        5 => {
            reserved_flags(flags, 0)?;
            Packet::PubRec(pub_response(&mut r, v5, ReasonCode::valid_for_puback)?)
        }
        6 => {
            if flags != 0b0010 {
                return Err(DecodeError::Malformed(
                    "[MQTT-3.6.1-1] PUBREL fixed header flags must be 0010",
                ));
            }
            Packet::PubRel(pub_response(&mut r, v5, ReasonCode::valid_for_pubrel)?)
        }
        7 => {
            reserved_flags(flags, 0)?;
            Packet::PubComp(pub_response(&mut r, v5, ReasonCode::valid_for_pubrel)?)
        }
        8 => {
            if flags != 0b0010 {
                return Err(DecodeError::Malformed(
                    "[MQTT-3.8.1-1] SUBSCRIBE fixed header flags must be 0010",
                ));
            }
            Packet::Subscribe(subscribe(&mut r, v5)?)
        }
        9 => {
            reserved_flags(flags, 0)?;
            Packet::SubAck(suback(&mut r, v5)?)
        }
        10 => {
            if flags != 0b0010 {
                return Err(DecodeError::Malformed(
                    "[MQTT-3.10.1-1] UNSUBSCRIBE fixed header flags must be 0010",
                ));
            }
            Packet::Unsubscribe(unsubscribe(&mut r, v5)?)
        }
        11 => {
            reserved_flags(flags, 0)?;
            Packet::UnsubAck(unsuback(&mut r, v5)?)
        }
        12 => {
            reserved_flags(flags, 0)?;
            Packet::PingReq
        }
        13 => {
            reserved_flags(flags, 0)?;
            Packet::PingResp
        }
        14 => {
            reserved_flags(flags, 0)?;
            Packet::Disconnect(disconnect(&mut r, v5)?)
        }
        15 if v5 => {
            reserved_flags(flags, 0)?;
            Packet::Auth(auth(&mut r)?)
        }
        15 => {
            return Err(DecodeError::Malformed(
                "[MQTT 3.1.1, 2.2.1] packet type 15 is reserved before MQTT 5.0",
            ))
        }
        _ => {
            return Err(DecodeError::Malformed(
                "[MQTT 3.1.1, 2.2.1] [MQTT 5.0, 2.1.2] packet type 0 is reserved",
            ))
        }
    };
    if !r.is_empty() {
        return Err(DecodeError::Malformed(
            "[MQTT 3.1.1, 2.2.3] bytes left over after the packet's fields",
        ));
    }
    Ok(packet)
}

/// Decodes the first packet in `buf`: [`check_frame`] then [`decode_packet`].
///
/// Returns the packet and the number of bytes it took, or `Ok(None)` when
/// `buf` does not yet hold a whole packet.
#[inline]
pub fn decode(
    buf: &[u8],
    protocol: Protocol,
    max_packet_size: u32,
) -> Result<Option<(Packet<'_>, usize)>, DecodeError> {
    match check_frame(buf, max_packet_size)? {
        None => Ok(None),
        Some(len) => {
            let frame = buf
                .get(..len)
                .ok_or(DecodeError::Malformed("frame length"))?;
            Ok(Some((decode_packet(frame, protocol)?, len)))
        }
    }
}

fn reserved_flags(flags: u8, expected: u8) -> Result<(), DecodeError> {
    if flags != expected {
        return Err(DecodeError::Malformed(
            "[MQTT-2.2.2-1] [MQTT-2.2.2-2] reserved fixed header flags must be 0",
        ));
    }
    Ok(())
}

fn packet_id(r: &mut Reader<'_>) -> Result<PacketId, DecodeError> {
    PacketId::new(r.u16()?).ok_or(DecodeError::Malformed("[MQTT-2.3.1-1] packet identifier 0"))
}

fn props<'a>(r: &mut Reader<'a>, v5: bool, ctx: Context) -> Result<Properties<'a>, DecodeError> {
    if v5 {
        properties::decode(r, ctx)
    } else {
        Ok(Properties::default())
    }
}

fn topic_error(e: crate::topic::TopicError) -> DecodeError {
    DecodeError::Malformed(e.rule())
}

fn connect<'a>(r: &mut Reader<'a>) -> Result<Connect<'a>, DecodeError> {
    let name = r.string()?;
    let level = r.u8()?;
    // mosquitto's bridges set the top bit of the level (`try_private`).
    let bridge = level & 0x80 != 0;
    let protocol = match (name, level & 0x7F) {
        ("MQIsdp", 3) => Protocol::V3_1,
        ("MQTT", 4) => Protocol::V3_1_1,
        ("MQTT", 5) => Protocol::V5,
        ("MQTT" | "MQIsdp", _) => return Err(DecodeError::UnsupportedProtocol { level }),
        _ => return Err(DecodeError::UnsupportedProtocol { level: 0 }),
    };
    let v5 = protocol.is_v5();
    let flags = r.u8()?;
    if flags & 0x01 != 0 {
        return Err(DecodeError::Malformed(
            "[MQTT-3.1.2-3] reserved CONNECT flag must be 0",
        ));
    }
    let will_flag = flags & 0x04 != 0;
    let will_qos_bits = (flags >> 3) & 0x03;
    let will_retain = flags & 0x20 != 0;
    let password_flag = flags & 0x40 != 0;
    let username_flag = flags & 0x80 != 0;
    let will_qos =
        QoS::from_u8(will_qos_bits).ok_or(DecodeError::Malformed("[MQTT-3.1.2-14] will QoS 3"))?;
    if !will_flag && will_qos_bits != 0 {
        return Err(DecodeError::Malformed(
            "[MQTT-3.1.2-13] will QoS without the will flag",
        ));
    }
    if !will_flag && will_retain {
        return Err(DecodeError::Malformed(
            "[MQTT-3.1.2-15] will retain without the will flag",
        ));
    }
    if !v5 && password_flag && !username_flag {
        return Err(DecodeError::Malformed(
            "[MQTT-3.1.2-22] password flag without user name flag",
        ));
    }
    let keep_alive = r.u16()?;
    let properties = props(r, v5, Context::Connect)?;
    let client_id = r.string()?;
    let will = if will_flag {
        let properties = props(r, v5, Context::Will)?;
        let topic = TopicName::new(r.string()?).map_err(topic_error)?;
        let payload = r.binary()?;
        Some(Will {
            topic,
            payload,
            qos: will_qos,
            retain: will_retain,
            properties,
        })
    } else {
        None
    };
    let username = if username_flag {
        Some(r.string()?)
    } else {
        None
    };
    let password = if password_flag {
        Some(r.binary()?)
    } else {
        None
    };
    Ok(Connect {
        protocol,
        clean_start: flags & 0x02 != 0,
        keep_alive,
        client_id,
        will,
        username,
        password,
        properties,
        bridge,
    })
}

fn connack<'a>(r: &mut Reader<'a>, protocol: Protocol) -> Result<ConnAck<'a>, DecodeError> {
    let flags = r.u8()?;
    if flags & 0xFE != 0 {
        return Err(DecodeError::Malformed(
            "[MQTT 3.1.1, 3.2.2.1] [MQTT 5.0, 3.2.2.1] reserved CONNACK flags must be 0",
        ));
    }
    let session_present = flags & 0x01 != 0;
    let code = r.u8()?;
    let reason = if protocol.is_v5() {
        ReasonCode::from_u8(code).filter(|r| r.valid_for_connack())
    } else {
        ReasonCode::from_v3_connack(code)
    }
    .ok_or(DecodeError::Malformed(
        "[MQTT 3.1.1, 3.2.2.3] [MQTT 5.0, 3.2.2.2] invalid CONNACK return code",
    ))?;
    if session_present && reason.is_error() {
        return Err(DecodeError::Protocol(
            "[MQTT-3.2.2-4] [MQTT-3.2.2-6] session present with a refusal",
        ));
    }
    let properties = props(r, protocol.is_v5(), Context::ConnAck)?;
    Ok(ConnAck {
        session_present,
        reason,
        properties,
    })
}

// Builds the packet in place and returns it whole: PUBLISH is the hot path,
// and moving its large properties struct between frames costs more than
// decoding a small packet.
#[inline(always)]
fn publish<'a>(
    flags: u8,
    r: &mut Reader<'a>,
    protocol: Protocol,
) -> Result<Packet<'a>, DecodeError> {
    let v5 = protocol.is_v5();
    let qos = QoS::from_u8((flags >> 1) & 0x03)
        .ok_or(DecodeError::Malformed("[MQTT-3.3.1-4] PUBLISH with QoS 3"))?;
    let dup = flags & 0x08 != 0;
    if dup && qos == QoS::AtMostOnce {
        return Err(DecodeError::Malformed(
            "[MQTT-3.3.1-2] DUP set on a QoS 0 PUBLISH",
        ));
    }
    let topic = r.string()?;
    if topic.bytes().any(|b| b == b'+' || b == b'#') {
        return Err(DecodeError::Malformed(
            "[MQTT-3.3.2-2] topic name contains a wildcard",
        ));
    }
    let packet_id = match qos {
        QoS::AtMostOnce => None,
        QoS::AtLeastOnce | QoS::ExactlyOnce => Some(packet_id(r)?),
    };
    let mut packet = Packet::Publish(Publish {
        dup,
        qos,
        retain: flags & 0x01 != 0,
        topic: TopicName::from_validated(topic),
        packet_id,
        properties: Properties::default(),
        payload: &[],
    });
    let Packet::Publish(publish) = &mut packet else {
        return Err(DecodeError::Malformed("PUBLISH"));
    };
    if v5 {
        properties::decode_into(r, Context::Publish, &mut publish.properties)?;
    }
    if topic.is_empty() {
        if !v5 {
            return Err(DecodeError::Malformed("[MQTT-4.7.3-1] empty topic name"));
        }
        if publish.properties.topic_alias.is_none() {
            return Err(DecodeError::Protocol(
                "[MQTT 5.0, 3.3.2.1] empty topic name without a topic alias",
            ));
        }
    }
    // The payload is the rest of the frame, borrowed.
    publish.payload = r.bytes(r.len())?;
    Ok(packet)
}

fn pub_response<'a>(
    r: &mut Reader<'a>,
    v5: bool,
    valid: fn(ReasonCode) -> bool,
) -> Result<PubResponse<'a>, DecodeError> {
    let packet_id = packet_id(r)?;
    let (reason, properties) = if v5 {
        short_form_tail(r, valid, Context::PubResponse)?
    } else {
        (ReasonCode::Success, Properties::default())
    };
    Ok(PubResponse {
        packet_id,
        reason,
        properties,
    })
}

/// A reason code and properties that 5.0 lets the sender omit when the
/// remaining length ends first ([MQTT 5.0, 3.4.2.1], [MQTT 5.0, 3.14.2.1]).
fn short_form_tail<'a>(
    r: &mut Reader<'a>,
    valid: fn(ReasonCode) -> bool,
    ctx: Context,
) -> Result<(ReasonCode, Properties<'a>), DecodeError> {
    if r.is_empty() {
        return Ok((ReasonCode::Success, Properties::default()));
    }
    let reason = reason_code(r, valid)?;
    if r.is_empty() {
        return Ok((reason, Properties::default()));
    }
    Ok((reason, properties::decode(r, ctx)?))
}

fn reason_code(
    r: &mut Reader<'_>,
    valid: fn(ReasonCode) -> bool,
) -> Result<ReasonCode, DecodeError> {
    ReasonCode::from_u8(r.u8()?)
        .filter(|&code| valid(code))
        .ok_or(DecodeError::Malformed(
            "[MQTT 5.0, 2.4] reason code not allowed in this packet",
        ))
}

fn subscribe<'a>(r: &mut Reader<'a>, v5: bool) -> Result<Subscribe<'a>, DecodeError> {
    let packet_id = packet_id(r)?;
    let properties = props(r, v5, Context::Subscribe)?;
    let start = r.rest();
    let mut count = 0;
    while !r.is_empty() {
        let filter = TopicFilter::new(r.string()?).map_err(topic_error)?;
        let byte = r.u8()?;
        if v5 {
            if byte & 0xC0 != 0 {
                return Err(DecodeError::Malformed(
                    "[MQTT-3.8.3-5] reserved subscription option bits must be 0",
                ));
            }
            if byte & 0x03 == 3 {
                return Err(DecodeError::Protocol(
                    "[MQTT 5.0, 3.8.3.1] subscription maximum QoS 3",
                ));
            }
            if (byte >> 4) & 0x03 == 3 {
                return Err(DecodeError::Protocol(
                    "[MQTT 5.0, 3.8.3.1] retain handling 3",
                ));
            }
            if byte & 0x04 != 0 && filter.share_group().is_some() {
                return Err(DecodeError::Protocol(
                    "[MQTT-3.8.3-4] no local set on a shared subscription",
                ));
            }
        } else if byte & 0xFC != 0 || byte & 0x03 == 3 {
            return Err(DecodeError::Malformed(
                "[MQTT-3-8.3-4] reserved requested QoS bits set, or QoS 3",
            ));
        }
        count += 1;
    }
    if count == 0 {
        return Err(DecodeError::Protocol(
            "[MQTT-3.8.3-3] SUBSCRIBE without a topic filter",
        ));
    }
    Ok(Subscribe {
        packet_id,
        properties,
        filters: Seq::Wire(Wire {
            bytes: start,
            count,
        }),
    })
}

fn reasons<'a>(
    r: &mut Reader<'a>,
    valid: impl Fn(u8) -> bool,
) -> Result<Seq<'a, ReasonCode>, DecodeError> {
    let bytes = r.bytes(r.len())?;
    if !bytes.iter().all(|&b| valid(b)) {
        return Err(DecodeError::Malformed(
            "[MQTT-3.9.3-2] [MQTT 5.0, 3.9.3] [MQTT 5.0, 3.11.3] reason code not allowed here",
        ));
    }
    Ok(Seq::Wire(Wire {
        bytes,
        count: bytes.len(),
    }))
}

fn suback<'a>(r: &mut Reader<'a>, v5: bool) -> Result<SubAck<'a>, DecodeError> {
    let packet_id = packet_id(r)?;
    let properties = props(r, v5, Context::SubAck)?;
    let reasons = if v5 {
        reasons(r, |b| {
            ReasonCode::from_u8(b).is_some_and(ReasonCode::valid_for_suback)
        })?
    } else {
        reasons(r, |b| matches!(b, 0x00..=0x02 | 0x80))?
    };
    Ok(SubAck {
        packet_id,
        properties,
        reasons,
    })
}

fn unsubscribe<'a>(r: &mut Reader<'a>, v5: bool) -> Result<Unsubscribe<'a>, DecodeError> {
    let packet_id = packet_id(r)?;
    let properties = props(r, v5, Context::Unsubscribe)?;
    let start = r.rest();
    let mut count = 0;
    while !r.is_empty() {
        TopicFilter::new(r.string()?).map_err(topic_error)?;
        count += 1;
    }
    if count == 0 {
        return Err(DecodeError::Protocol(
            "[MQTT-3.10.3-2] UNSUBSCRIBE without a topic filter",
        ));
    }
    Ok(Unsubscribe {
        packet_id,
        properties,
        filters: Seq::Wire(Wire {
            bytes: start,
            count,
        }),
    })
}

fn unsuback<'a>(r: &mut Reader<'a>, v5: bool) -> Result<UnsubAck<'a>, DecodeError> {
    let packet_id = packet_id(r)?;
    let properties = props(r, v5, Context::UnsubAck)?;
    let reasons = if v5 {
        reasons(r, |b| {
            ReasonCode::from_u8(b).is_some_and(ReasonCode::valid_for_unsuback)
        })?
    } else {
        Seq::default()
    };
    Ok(UnsubAck {
        packet_id,
        properties,
        reasons,
    })
}

fn disconnect<'a>(r: &mut Reader<'a>, v5: bool) -> Result<Disconnect<'a>, DecodeError> {
    let (reason, properties) = if v5 {
        short_form_tail(r, ReasonCode::valid_for_disconnect, Context::Disconnect)?
    } else {
        (ReasonCode::Success, Properties::default())
    };
    Ok(Disconnect { reason, properties })
}

fn auth<'a>(r: &mut Reader<'a>) -> Result<Auth<'a>, DecodeError> {
    // Both the reason code and the properties, or neither ([MQTT 5.0, 3.15.2.1]).
    if r.is_empty() {
        return Ok(Auth {
            reason: ReasonCode::Success,
            properties: Properties::default(),
        });
    }
    let reason = reason_code(r, ReasonCode::valid_for_auth)?;
    let properties = properties::decode(r, Context::Auth)?;
    Ok(Auth { reason, properties })
}
